"""Can SageMaker assume a model's execution role? Checked before anything changes.

CreateModel refuses a role that does not exist or whose trust policy does not let
sagemaker.amazonaws.com call sts:AssumeRole ("Could not assume role <arn>. Please ensure that the
role exists and allows principal 'sagemaker.amazonaws.com' to assume the role."; IAM User Guide,
"Creating a role to delegate permissions to an AWS service").
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from byoc.aws.client import Aws
from byoc.errors import AuthError, AwsError, PreflightFailed

SAGEMAKER = "sagemaker.amazonaws.com"
TRUST = {"Effect": "Allow", "Principal": {"Service": SAGEMAKER}, "Action": "sts:AssumeRole"}


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def trusts_sagemaker(trust: dict) -> bool:
    allowed = False
    for st in _as_list((trust or {}).get("Statement")):
        principal = st.get("Principal") or {}
        services = _as_list(principal.get("Service")) if isinstance(principal, dict) else []
        if SAGEMAKER not in services and principal != "*":
            continue
        if not any(fnmatch.fnmatch("sts:assumerole", str(a).lower()) for a in _as_list(st.get("Action"))):
            continue
        if st.get("Effect") == "Deny":
            return False
        allowed = allowed or st.get("Effect") == "Allow"
    return allowed


def check(aws: Aws, role_arn: str, model: str) -> None:
    """Raise PreflightFailed when the role is missing or SageMaker may not assume it; nothing when the
    caller may not read the role (iam:GetRole denied)."""
    if not role_arn:
        return
    name = role_arn.rsplit("/", 1)[-1]
    try:
        role = aws.memo(f"iam:GetRole {name}", lambda: aws.iam.get_role(RoleName=name)["Role"])  # once per fleet
    except AuthError:
        return
    except AwsError as exc:
        if exc.code != "NoSuchEntity":
            raise
        raise PreflightFailed(
            f"The execution role {role_arn} of model {model} does not exist; CreateModel would refuse the new model.",
            f"Create the role {name} with a trust policy for {SAGEMAKER} (or restore it), then run the update again."
        ) from exc
    trust = role.get("AssumeRolePolicyDocument") or {}
    if isinstance(trust, str):
        try:
            trust = json.loads(trust)
        except ValueError:
            trust = {}
    if not trusts_sagemaker(trust):
        raise PreflightFailed(
            f"The trust policy of the execution role {role_arn} (model {model}) does not let SageMaker assume it; "
            "CreateModel would refuse the new model.",
            f"Add this statement to the trust policy of role {name} (aws iam update-assume-role-policy): "
            f"{json.dumps(TRUST)}")
