"""What SageMaker checks with a model's execution role: that it can assume the role, pull the
image from ECR and read the model data, with the wording AWS answers (see docs/sandbox.md,
"Wording").
"""

from __future__ import annotations

from typing import Optional

from byoc.sandbox import iam, peers

SAGEMAKER = "sagemaker.amazonaws.com"


def role_problem(role_arn: str) -> Optional[str]:
    """Why SageMaker cannot assume the role (missing, or its trust policy does not name SageMaker)."""
    role = peers.role(role_arn)
    if role is not None and iam.trusts_service(role["trust"], SAGEMAKER):
        return None
    # Wording of SageMaker's refusal of a role it cannot assume: awslabs/predictive-maintenance-using-machine-
    # learning issue #3 ("Could not assume role arn:aws:iam::XXX:role/... Please ensure that the role exists and
    # allows principal 'sagemaker.amazonaws.com' to assume the role.").
    return (f"Could not assume role {role_arn}. Please ensure that the role exists and allows principal "
            f"'{SAGEMAKER}' to assume the role.")


def ecr_pull_problem(role_arn: str, image: str) -> Optional[str]:
    """Why the role may not pull an ECR image: ecr:BatchGetImage must be allowed by the role's identity
    policies or the repository policy within one account, and by both for a repository in another account
    (IAM User Guide, "Cross-account policy evaluation logic"; Amazon ECR User Guide, "Private repository
    policy examples": allow another account's role to pull)."""
    parsed = peers.parse_ecr(image)
    role = peers.role(role_arn)
    if parsed is None or role is None:
        return None
    repo_arn = (f"arn:{peers.partition(parsed['region'])}:ecr:{parsed['region']}:{parsed['account']}:"
                f"repository/{parsed['repository']}")
    identity = iam.evaluate(role["policies"], "ecr:BatchGetImage", repo_arn)
    policy = peers.ecr_repository_policy(parsed["account"], parsed["region"], parsed["repository"])
    resource = iam.resource_policy_allows(policy, role_arn, "ecr:BatchGetImage", repo_arn)
    same_account = role_arn.split(":")[4] == parsed["account"]
    if iam.EXPLICIT_DENY in (identity, resource):
        allowed = False
    elif same_account:
        allowed = iam.ALLOW in (identity, resource)
    else:
        allowed = identity == iam.ALLOW and resource == iam.ALLOW
    if allowed:
        return None
    # SageMaker's wording: aws/deep-learning-containers issue #759, huggingface/notebooks issue #385
    # ("The role 'arn:aws:iam::...:role/...' does not have BatchGetImage permission for the image: '...'.").
    return f"The role '{role_arn}' does not have BatchGetImage permission for the image: '{image}'."


def model_data_problem(account: str, region: str, role_arn: Optional[str], url: str) -> Optional[str]:
    """Why SageMaker cannot read ModelDataUrl with the role: the role cannot be assumed or may not
    s3:GetObject it, or the bucket is in another region; or there is nothing at that URL."""
    bucket, key = peers.split_s3(url)
    part = peers.partition(region)
    obj_arn = f"arn:{part}:s3:::{bucket}/{key}"
    readable = True
    if role_arn:
        role = peers.role(role_arn)
        readable = role is not None and iam.trusts_service(role["trust"], SAGEMAKER)
        if readable and role is not None:
            identity = iam.evaluate(role["policies"], "s3:GetObject", obj_arn)
            resource = iam.resource_policy_allows(peers.s3_bucket_policy(account, region, bucket), role_arn,
                                                  "s3:GetObject", obj_arn)
            readable = iam.EXPLICIT_DENY not in (identity, resource) and iam.ALLOW in (identity, resource)
    located = peers.s3_exists(account, region, url)
    if not readable or (located is not None and located != region):
        # CreateModel's wording: philschmid/llm-sagemaker-sample issue #2 (ValidationException "Could not access
        # model data at ...").
        return (f"Could not access model data at {url}. Please ensure that the role \"{role_arn}\" exists and that "
                f"its trust relationship policy allows the action \"sts:AssumeRole\" for the service principal "
                f"\"{SAGEMAKER}\". Also ensure that the role has \"s3:GetObject\" permissions and that the object is "
                f"located in {region}. If your Model uses multiple models or uncompressed models, please ensure that "
                "the role has \"s3:ListBucket\" permission.")
    if located is None:
        # aws-ia/ecs-blueprints issue #223, aws/amazon-sagemaker-examples pull request #4476 (ValidationException
        # "Could not find model data at s3://...").
        return f"Could not find model data at {url}."
    return None
