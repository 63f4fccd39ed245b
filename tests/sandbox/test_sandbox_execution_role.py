"""CreateModel checks the execution role as AWS does: SageMaker must be able to assume it, pull each
ECR image with it (another account's repository must grant it in its policy) and read ModelDataUrl;
a deployment whose pull grant was revoked since fails with AWS's wording."""

from __future__ import annotations

import json

import pytest

from byoc.sandbox import ACCOUNT, seed
from support.sandbox import PULL, ROLE, error_of, grant_pull, other_account_image, settle


def _create(sm, image: str, role: str = ROLE, name: str = "m", **container):
    return sm.create_model(ModelName=name, ExecutionRoleArn=role, PrimaryContainer={"Image": image, **container})


def test_a_role_sagemaker_cannot_assume_is_refused(sm, ecr, clients):
    image, _ = seed.push_image(ecr, "sd", "v1")
    missing = f"arn:aws:iam::{ACCOUNT}:role/does-not-exist"
    err = error_of(_create, sm, image, missing)
    assert (err["Code"], err["Message"]) == ("ValidationException", (
        f"Could not assume role {missing}. Please ensure that the role exists and allows principal "
        "'sagemaker.amazonaws.com' to assume the role."))
    iam = clients.client("iam")
    lambda_trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                            "Principal": {"Service": "lambda.amazonaws.com"}}]}
    other = iam.create_role(RoleName="lambda-role", AssumeRolePolicyDocument=json.dumps(lambda_trust))["Role"]["Arn"]
    assert error_of(_create, sm, image, other)["Message"].startswith(f"Could not assume role {other}.")
    assert sm.list_models()["Models"] == []


def test_same_account_role_needs_batch_get_image_from_its_policy_or_the_repository(sm, ecr, clients):
    image, _ = seed.push_image(ecr, "sd", "v1")
    role = seed.execution_role(clients.client("iam"), "no-ecr", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})
    err = error_of(_create, sm, image, role)
    assert err["Message"] == f"The role '{role}' does not have BatchGetImage permission for the image: '{image}'."
    grant_pull(ecr, "sd", role)  # within one account the repository policy alone is enough
    assert _create(sm, image, role)["ModelArn"].endswith(":model/m")


def test_cross_account_image_needs_the_repository_policy_to_grant_the_role(sandbox, sm):
    image, other_ecr = other_account_image(sandbox)
    err = error_of(_create, sm, image)
    assert (err["Code"], err["Message"]) == (
        "ValidationException", f"The role '{ROLE}' does not have BatchGetImage permission for the image: '{image}'.")
    grant_pull(other_ecr, "shared/sd", f"arn:aws:iam::{ACCOUNT}:role/someone-else")
    assert error_of(_create, sm, image)["Message"].startswith(f"The role '{ROLE}' does not have BatchGetImage")
    grant_pull(other_ecr, "shared/sd", ROLE)
    assert _create(sm, image)["ModelArn"].endswith(":model/m")


def test_cross_account_grant_revoked_before_create_endpoint_fails_it_with_aws_wording(sandbox, sm):
    image, other_ecr = other_account_image(sandbox)
    grant_pull(other_ecr, "shared/sd", f"arn:aws:iam::{ACCOUNT}:root")  # the whole account may pull
    _create(sm, image)
    other_ecr.delete_repository_policy(repositoryName="shared/sd")
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    d = settle(sm, "ep")
    assert d["EndpointStatus"] == "Failed"
    assert d["FailureReason"] == f"The role '{ROLE}' does not have BatchGetImage permission for the image: '{image}'."


@pytest.fixture
def bucket(clients):
    s3 = clients.client("s3")
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key="sd/model.tar.gz", Body=b"weights")
    return s3


def test_model_data_must_exist_and_be_readable_by_the_role(sm, ecr, clients, bucket):
    image, _ = seed.push_image(ecr, "sd", "v1")
    assert _create(sm, image, ModelDataUrl="s3://models/sd/model.tar.gz")["ModelArn"]
    missing = error_of(_create, sm, image, name="m2", ModelDataUrl="s3://models/sd/nothing.tar.gz")
    assert missing["Message"] == "Could not find model data at s3://models/sd/nothing.tar.gz."
    role = seed.execution_role(clients.client("iam"), "pull-only", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": PULL, "Resource": "*"}]})
    denied = error_of(_create, sm, image, role, name="m3", ModelDataUrl="s3://models/sd/model.tar.gz")
    assert denied["Message"] == (
        f'Could not access model data at s3://models/sd/model.tar.gz. Please ensure that the role "{role}" exists '
        'and that its trust relationship policy allows the action "sts:AssumeRole" for the service principal '
        '"sagemaker.amazonaws.com". Also ensure that the role has "s3:GetObject" permissions and that the object '
        'is located in us-east-1. If your Model uses multiple models or uncompressed models, please ensure that the '
        'role has "s3:ListBucket" permission.')
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["m"]


def test_model_data_in_another_region_is_refused(sm, ecr, clients):
    s3 = clients.client("s3")
    s3.create_bucket(Bucket="eu-models", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="eu-models", Key="model.tar.gz", Body=b"weights")
    image, _ = seed.push_image(ecr, "sd", "v1")
    err = error_of(_create, sm, image, ModelDataUrl="s3://eu-models/model.tar.gz")
    assert err["Message"].startswith("Could not access model data at s3://eu-models/model.tar.gz.")
    assert "located in us-east-1" in err["Message"]
