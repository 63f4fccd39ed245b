"""Can SageMaker pull an image with a model's execution role? Checked before anything changes.

CreateModel refuses a role that may not run ecr:BatchGetImage on the image ("The role '<arn>' does
not have BatchGetImage permission for the image: '<image>'."). Within one account the role's
policies or the repository policy may grant it; a repository in another account must grant it in
its repository policy (Amazon ECR User Guide, "Private repository policy examples"; IAM User Guide,
"Cross-account policy evaluation logic").
"""

from __future__ import annotations

import fnmatch
import json
from typing import Optional

from byoc.errors import AuthError, AwsError, PreflightFailed
from byoc.images.ref import ImageRef

PULL_ACTIONS = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")


def statement(role_arn: str) -> dict:
    """The repository policy statement that lets `role_arn` pull."""
    return {"Sid": "AllowSageMakerExecutionRolePull", "Effect": "Allow", "Principal": {"AWS": role_arn},
            "Action": list(PULL_ACTIONS)}


def _as_list(value) -> list:
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


def repository_policy(aws, ref: ImageRef) -> Optional[dict]:
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


def _identity_allows(aws, role_arn: str, repo_arn: str) -> Optional[bool]:
    """iam:SimulatePrincipalPolicy for the role; None when the caller may not simulate."""
    try:
        out = aws.iam.simulate_principal_policy(PolicySourceArn=role_arn, ActionNames=["ecr:BatchGetImage"],
                                                ResourceArns=[repo_arn])
    except (AuthError, AwsError):
        return None
    results = out.get("EvaluationResults") or []
    return bool(results) and all(r.get("EvalDecision") == "allowed" for r in results)


def check(aws, ref: ImageRef, role_arn: str, partition: str) -> Optional[str]:
    """Raise PreflightFailed when CreateModel would refuse the image for this role; a warning (str)
    when it could not be checked; None when the role may pull."""
    if not role_arn:
        return None
    repo_arn = f"arn:{partition}:ecr:{ref.region}:{ref.account}:repository/{ref.repository}"
    policy = repository_policy(aws, ref)
    cross_account = role_arn.split(":")[4] != ref.account
    refusal = (f"The role '{role_arn}' does not have BatchGetImage permission for the image: '{ref.uri}'")
    if cross_account:
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
    elif policy and grants(policy, role_arn):
        return None
    identity = _identity_allows(aws, role_arn, repo_arn)
    if identity is False:
        raise PreflightFailed(
            f"{refusal}: no policy of the role allows ecr:BatchGetImage on {repo_arn} (CreateModel would refuse it).",
            f"Allow {', '.join(PULL_ACTIONS)} on {repo_arn} in a policy of the role "
            f"{role_arn.rsplit('/', 1)[-1]}" + (", as well as in the repository policy." if cross_account else "."))
    return None
