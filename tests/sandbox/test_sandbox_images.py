"""CreateModel's image checks in the sandbox, as SageMaker hosting does them: the image must exist in
ECR in the model's region (with the partition's DNS suffix), another region's registry is refused,
and a non-ECR registry needs ImageConfig.RepositoryAccessMode=Vpc."""

from __future__ import annotations

import pytest

from byoc.sandbox import seed
from support.sandbox import ROLE, error_of

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def _create(sm, image, **container):
    return sm.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image, **container})


def test_tag_and_digest_references_are_accepted(sm, ecr):
    image, digest = seed.push_image(ecr, "sd", "v1")
    _create(sm, image)
    sm.create_model(ModelName="by-digest", ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": f"{REGISTRY}/sd@{digest}"})
    assert sm.describe_model(ModelName="by-digest")["PrimaryContainer"]["Image"].endswith(digest)


@pytest.mark.parametrize("image", [
    f"{REGISTRY}/missing-repo:latest",
    f"{REGISTRY}/sd:missing-tag",
    f"{REGISTRY}/sd@sha256:{'0' * 64}",
])
def test_an_image_missing_from_ecr_is_refused(sm, ecr, image):
    seed.push_image(ecr, "sd", "v1")
    err = error_of(_create, sm, image)
    assert (err["Code"], err["Message"]) == ("ValidationException", f"Requested image {image} not found.")
    assert sm.list_models()["Models"] == []


def test_untagged_reference_means_latest(sm, ecr):
    seed.push_image(ecr, "sd", "v1")
    assert error_of(_create, sm, f"{REGISTRY}/sd")["Message"] == f"Requested image {REGISTRY}/sd not found."
    seed.push_image(ecr, "sd", "latest")
    _create(sm, f"{REGISTRY}/sd")


def test_another_regions_registry_is_refused(sm, clients):
    west_ecr = seed.session(clients.client("ecr").meta.endpoint_url, "us-west-2").client("ecr")
    image, _ = seed.push_image(west_ecr, "sd", "v1", region="us-west-2")
    err = error_of(_create, sm, image)
    assert err["Message"] == (f'Region of "{image}" does not match expected region of us-east-1. '
                              "Cross region ECR image pulls are not allowed.")


def test_non_ecr_registry_needs_vpc_access_mode(sm):
    image = "docker.io/library/nginx:latest"
    err = error_of(_create, sm, image)
    assert err["Code"] == "ValidationException" and "without Vpc repository access mode" in err["Message"]
    _create(sm, image, ImageConfig={"RepositoryAccessMode": "Vpc"})
    assert sm.describe_model(ModelName="m")["PrimaryContainer"]["ImageConfig"]["RepositoryAccessMode"] == "Vpc"


def test_china_regions_use_the_amazonaws_com_cn_suffix(sandbox):
    cn = seed.session(sandbox.url, "cn-north-1")
    sm, ecr = cn.client("sagemaker"), cn.client("ecr")
    image, _ = seed.push_image(ecr, "sd", "v1", region="cn-north-1")
    assert ".amazonaws.com.cn/" in image
    role = seed.execution_role(cn.client("iam"), "r")
    assert role == "arn:aws-cn:iam::123456789012:role/r"
    arn = sm.create_model(ModelName="m", ExecutionRoleArn=role, PrimaryContainer={"Image": image})["ModelArn"]
    assert arn == "arn:aws-cn:sagemaker:cn-north-1:123456789012:model/m"
    wrong_suffix = image.replace(".amazonaws.com.cn/", ".amazonaws.com/")
    err = error_of(sm.create_model, ModelName="m2", ExecutionRoleArn="arn:aws-cn:iam::123456789012:role/r",
                   PrimaryContainer={"Image": wrong_suffix})
    assert err["Message"].startswith("Invalid DNS suffix 'amazonaws.com' for region 'cn-north-1'")


def test_an_image_deleted_after_create_model_fails_the_deployment(sm, ecr):
    image, _ = seed.push_image(ecr, "sd", "v1")
    _create(sm, image)
    ecr.batch_delete_image(repositoryName="sd", imageIds=[{"imageTag": "v1"}])
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    d = seed.wait_status(sm, "ep")
    assert d["EndpointStatus"] == "Failed"
    assert d["FailureReason"] == ("Please make sure all images included in the model for the production variant "
                                  "AllTraffic exist, and that the execution role used to create the model has "
                                  "permissions to access them.")
