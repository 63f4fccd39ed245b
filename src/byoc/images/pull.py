"""Can SageMaker pull an image with a model's execution role? Checked before anything changes.

CreateModel refuses a role that may not run ecr:BatchGetImage on the image ("The role '<arn>' does
not have BatchGetImage permission for the image: '<image>'."). A repository in another account
must grant it in its repository policy (Amazon ECR User Guide, "Private repository policy examples"; IAM User Guide,
"Cross-account policy evaluation logic").
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any, Optional

from byoc.aws.client import Aws
from byoc.errors import AuthError, AwsError, PreflightFailed
from byoc.images.ref import ImageRef

PULL_ACTIONS = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")


def statement(role_arn: str) -> dict:
    """The repository policy statement that lets `role_arn` pull."""
    return {"Sid": "AllowSageMakerExecutionRolePull", "Effect": "Allow", "Principal": {"AWS": role_arn},
            "Action": list(PULL_ACTIONS)}


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def grants(policy: Optional[dict], role_arn: str, action: str = "ecr:BatchGetImage") -> bool:
    """Whether a repository policy allows `role_arn` (by ARN, its account, or "*") the action, without
    a Deny for it. Conditions are not evaluated: a conditional Allow counts as a grant."""
    if not policy:
        return False
    account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else ""
    names = {role_arn, account, f"arn:{role_arn.split(':')[1]}:iam::{account}:root", "*"}
    allowed = False
    statements = _as_list(policy.get("Statement"))
    for st in statements:
        principal = st.get("Principal")
        listed = _as_list(principal.get("AWS")) if isinstance(principal, dict) else _as_list(principal)
        if not names & set(listed):
            continue
        if not any(fnmatch.fnmatch(action.lower(), str(a).lower()) for a in _as_list(st.get("Action"))):
            continue
        if st.get("Effect") == "Deny":
            return False
        allowed = allowed or st.get("Effect") == "Allow"
    return allowed


def repository_policy(aws: Aws, ref: ImageRef) -> Optional[dict]:
    """The repository's policy ({} when it has none); None when the caller may not read it."""
    try:
        out = aws.ecr.get_repository_policy(registryId=ref.account, repositoryName=ref.repository)
    except AuthError:
        return None
    except AwsError as exc:
        if exc.code == "RepositoryPolicyNotFoundException":
            return {}
        raise
    try:
        return json.loads(out.get("policyText") or "{}")
    except ValueError:
        return None


def check(aws: Aws, ref: ImageRef, role_arn: str) -> Optional[str]:
    """Raise PreflightFailed when CreateModel would refuse an image in another account for this role
    (its repository policy does not grant the role); a warning (str) when that policy could not be read;
    None otherwise. Within one account the role's own policies may grant the pull, which byoc does not
    read: CreateModel itself refuses with AWS's wording."""
    if not role_arn or role_arn.split(":")[4] == ref.account:
        return None
    policy = repository_policy(aws, ref)
    refusal = (f"The role '{role_arn}' does not have BatchGetImage permission for the image: '{ref.uri}'")
    if policy is None:
        return (f"Could not read the repository policy of {ref.repository} in account {ref.account}; make sure it "
                f"lets {role_arn} pull: {json.dumps(statement(role_arn))}")
    if not grants(policy, role_arn):
        raise PreflightFailed(
            f"{refusal}: the repository is in account {ref.account} and its policy does not let the model's "
            "execution role pull (CreateModel would refuse it).",
            f"Add this statement to the repository policy of {ref.repository} in account {ref.account} "
            f"(aws ecr set-repository-policy --registry-id {ref.account} --repository-name {ref.repository}): "
            f"{json.dumps(statement(role_arn))}")
    return None
