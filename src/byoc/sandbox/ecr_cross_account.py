"""ECR reads of another account's repository (a `registryId` that is not the caller's account).

AWS allows them only when the repository policy grants the caller the action: cross-account access
needs the resource-based policy as well as the caller's own ("Cross-account policy evaluation
logic", IAM User Guide; "Private repository policy examples", Amazon ECR User Guide). Otherwise the
caller gets AccessDeniedException "... because no resource-based policy allows the <action> action"
("Troubleshoot access denied error messages", IAM User Guide). moto serves the allowed call from the
owning account (its x-moto-account-id header).
"""

from __future__ import annotations

from typing import Optional

from byoc.sandbox import iam, peers
from byoc.sandbox.protocol import ServiceError

READS = ("DescribeImages", "BatchGetImage", "BatchCheckLayerAvailability", "GetRepositoryPolicy", "ListImages")


def owner(operation: str, params: dict, access_key: str, region: str) -> Optional[str]:
    """The account whose repository the call reads, when it is not the caller's; raises the error AWS
    answers when the repository policy does not grant the caller the action."""
    registry = str(params.get("registryId") or "")
    caller_arn, caller_account = peers.caller_identity(access_key, region)
    if operation not in READS or not registry or registry == caller_account:
        return None
    name = str(params.get("repositoryName") or "")
    if not peers.ecr_repository_exists(registry, region, name):
        raise ServiceError("RepositoryNotFoundException",
                           f"The repository with name '{name}' does not exist in the registry with id '{registry}'")
    repo_arn = f"arn:{peers.partition(region)}:ecr:{region}:{registry}:repository/{name}"
    action = f"ecr:{operation}"
    policy = peers.ecr_repository_policy(registry, region, name)
    if iam.resource_policy_allows(policy, caller_arn, action, repo_arn) != iam.ALLOW:
        raise ServiceError("AccessDeniedException",
                           f"User: {caller_arn} is not authorized to perform: {action} on resource: {repo_arn} "
                           f"because no resource-based policy allows the {action} action")
    return registry
