"""What the sandbox's SageMaker refuses, with AWS's codes and wording: requests that break botocore's
service model (names, required members, types, enums), duplicates, missing resources, busy or Failed
endpoints, and instance quotas. Every refusal leaves the sandbox unchanged."""

from __future__ import annotations

import pytest
from botocore.config import Config

from byoc.sandbox import seed
from support.sandbox import ROLE, config, control, endpoint, error_of, model, revision, settle

ARN = "arn:aws:sagemaker:us-east-1:123456789012"
NAME_PATTERN = "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"


@pytest.fixture
def raw_sm(sandbox):
    """A SageMaker client without botocore's client-side validation: the request reaches the sandbox as is."""
    import boto3

    return boto3.client("sagemaker", endpoint_url=sandbox.url, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing",
                        config=Config(parameter_validation=False, retries={"total_max_attempts": 1}))


# -- names and botocore-model validation ---------------------------------------------------------------

def test_a_63_character_name_is_accepted(sm, ecr):
    name = "e" * 63
    model(sm, ecr, "m")
    config(sm, name, "m")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    assert settle(sm, name)["EndpointStatus"] == "InService"


def test_a_64_character_name_is_refused_with_length_and_pattern(sm, ecr):
    model(sm, ecr, "m")
    config(sm, "c", "m")
    name = "e" * 64
    err = error_of(sm.create_endpoint, EndpointName=name, EndpointConfigName="c")
    assert err["Code"] == "ValidationException" and err["Status"] == 400
    assert err["Message"] == (
        f"2 validation errors detected: Value '{name}' at 'endpointName' failed to satisfy constraint: Member must "
        "have length less than or equal to 63; "
        f"Value '{name}' at 'endpointName' failed to satisfy constraint: Member must satisfy regular expression "
        f"pattern: {NAME_PATTERN}")
    assert sm.list_endpoints()["Endpoints"] == []


@pytest.mark.parametrize("name", ["bad_name", "-leading-hyphen", "trailing-", "dots.in.name", "space name"])
def test_names_outside_the_pattern_are_refused(sm, ecr, name):
    pattern = sm.meta.service_model.shape_for("ModelName").metadata["pattern"]
    err = error_of(sm.create_model, ModelName=name, ExecutionRoleArn=ROLE,
                   PrimaryContainer={"Image": seed.push_image(ecr, "sd", "v1")[0]})
    assert err["Message"] == (f"1 validation error detected: Value '{name}' at 'modelName' failed to satisfy "
                              f"constraint: Member must satisfy regular expression pattern: {pattern}")
    assert sm.list_models()["Models"] == []
    err = error_of(sm.create_endpoint, EndpointName=name, EndpointConfigName="c")
    assert err["Message"] == (f"1 validation error detected: Value '{name}' at 'endpointName' failed to satisfy "
                              f"constraint: Member must satisfy regular expression pattern: {NAME_PATTERN}")


def test_missing_required_members_are_named(raw_sm):
    err = error_of(raw_sm.create_endpoint, EndpointName="ep")
    assert err["Message"] == ("1 validation error detected: Value null at 'endpointConfigName' failed to satisfy "
                              "constraint: Member must not be null")


def test_types_enums_and_ranges_come_from_the_service_model(raw_sm):
    err = error_of(raw_sm.create_endpoint_config, EndpointConfigName="c", ProductionVariants=[
        {"VariantName": "v", "ModelName": "m", "InstanceType": "ml.bogus.xlarge", "InitialInstanceCount": "two",
         "InitialVariantWeight": -1}])
    message = err["Message"]
    assert message.startswith("3 validation errors detected: ")
    assert ("Value 'ml.bogus.xlarge' at 'productionVariants.1.member.instanceType' failed to satisfy constraint: "
            "Member must satisfy enum value set: [") in message
    assert "Value 'two' at 'productionVariants.1.member.initialInstanceCount' failed to satisfy constraint: " \
           "Member must be a number" in message
    assert "Value '-1' at 'productionVariants.1.member.initialVariantWeight' failed to satisfy constraint: " \
           "Member must have value greater than or equal to 0" in message


def test_current_gpu_instance_types_are_accepted(sm, ecr):
    model(sm, ecr, "m")
    for itype in ("ml.g5.2xlarge", "ml.g6.xlarge", "ml.g6e.xlarge", "ml.p4d.24xlarge"):
        config(sm, itype.replace(".", "-"), "m", instance_type=itype)
    assert len(sm.list_endpoint_configs()["EndpointConfigs"]) == 4


def test_malformed_role_arn_is_refused(sm, ecr):
    image, _ = seed.push_image(ecr, "sd", "v1")
    err = error_of(sm.create_model, ModelName="m", ExecutionRoleArn="role/ESD-createEndpoint-Role-not-an-arn",
                   PrimaryContainer={"Image": image})
    assert "at 'executionRoleArn' failed to satisfy constraint: Member must satisfy regular expression pattern" \
        in err["Message"]
    assert sm.list_models()["Models"] == []


# -- duplicates and missing resources ----------------------------------------------------------------------

def test_duplicates_are_refused_with_aws_wording(sm, ecr):
    endpoint(sm, ecr)
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sd:v1"
    dup_model = error_of(sm.create_model, ModelName="ep-m-v1", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})
    assert dup_model["Message"] == f'Cannot create already existing model "{ARN}:model/ep-m-v1".'
    dup_config = error_of(sm.create_endpoint_config, EndpointConfigName="ep-c-v1", ProductionVariants=[
        {"VariantName": "v", "ModelName": "ep-m-v1", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}])
    assert dup_config["Message"] == f'Cannot create already existing endpoint configuration "{ARN}:endpoint-config/ep-c-v1".'
    dup_endpoint = error_of(sm.create_endpoint, EndpointName="ep", EndpointConfigName="ep-c-v1")
    assert dup_endpoint["Message"] == f'Cannot create already existing endpoint "{ARN}:endpoint/ep".'
    assert all(e["Code"] == "ValidationException" for e in (dup_model, dup_config, dup_endpoint))


@pytest.mark.parametrize("operation,params,message", [
    ("describe_endpoint", {"EndpointName": "Nope"}, f'Could not find endpoint "{ARN}:endpoint/nope".'),
    ("delete_endpoint", {"EndpointName": "nope"}, f'Could not find endpoint "{ARN}:endpoint/nope".'),
    ("describe_endpoint_config", {"EndpointConfigName": "nope"},
     f'Could not find endpoint configuration "{ARN}:endpoint-config/nope".'),
    ("delete_endpoint_config", {"EndpointConfigName": "nope"},
     f'Could not find endpoint configuration "{ARN}:endpoint-config/nope".'),
    ("describe_model", {"ModelName": "nope"}, f'Could not find model "{ARN}:model/nope".'),
    ("delete_model", {"ModelName": "nope"}, f'Could not find model "{ARN}:model/nope".'),
    ("create_endpoint", {"EndpointName": "ep", "EndpointConfigName": "nope"},
     f'Could not find endpoint configuration "{ARN}:endpoint-config/nope".'),
])
def test_missing_resources(sm, operation, params, message):
    err = error_of(getattr(sm, operation), **params)
    assert (err["Code"], err["Message"], err["Status"]) == ("ValidationException", message, 400)


def test_config_naming_a_missing_model_is_refused(sm):
    err = error_of(sm.create_endpoint_config, EndpointConfigName="c", ProductionVariants=[
        {"VariantName": "v", "ModelName": "ghost", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}])
    assert err["Message"] == f'Could not find model "{ARN}:model/ghost".'
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []


def test_duplicate_variant_names_are_refused(sm, ecr):
    model(sm, ecr, "m")
    twin = {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}
    err = error_of(config, sm, "c", "m", extra_variants=(twin,))
    assert err["Code"] == "ValidationException" and "unique" in err["Message"]


def test_regions_are_separate(clients, sm, ecr):
    endpoint(sm, ecr)
    west = seed.session(clients.client("sagemaker").meta.endpoint_url, "us-west-2").client("sagemaker")
    assert west.list_endpoints()["Endpoints"] == []
    err = error_of(west.describe_endpoint, EndpointName="ep")
    assert err["Message"] == 'Could not find endpoint "arn:aws:sagemaker:us-west-2:123456789012:endpoint/ep".'


# -- lifecycle refusals -----------------------------------------------------------------------------------

def test_failed_endpoint_cannot_be_updated_but_can_be_deleted(sandbox, sm, ecr):
    endpoint(sm, ecr, behavior="crash")
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Failed"
    cfg, _ = revision(sm, ecr, "ep", "v2")
    err = error_of(sm.update_endpoint, EndpointName="ep", EndpointConfigName=cfg)
    assert err["Code"] == "ValidationException" and "Cannot update failed endpoint" in err["Message"]
    assert sm.describe_endpoint(EndpointName="ep")["EndpointConfigName"] == "ep-c-v1"
    sandbox.app.clock.time_scale = 2.0  # Deleting lasts long enough to be observed
    sm.delete_endpoint(EndpointName="ep")
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Deleting"


def test_delete_and_update_are_refused_while_creating(sandbox, sm, ecr):
    sandbox.app.clock.time_scale = 2.0  # creation and deletion take seconds; the test does not wait for them
    endpoint(sm, ecr, wait=False)
    creating = error_of(sm.delete_endpoint, EndpointName="ep")
    assert creating["Message"] == f'Cannot update in-progress endpoint "{ARN}:endpoint/ep".'
    update = error_of(sm.update_endpoint, EndpointName="ep", EndpointConfigName="ep-c-v1")
    assert update["Message"] == f'Cannot update in-progress endpoint "{ARN}:endpoint/ep".'
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Creating"


def test_models_and_configs_outlive_a_deleted_endpoint(sm, ecr):
    from support.sandbox import gone, wait_for

    endpoint(sm, ecr)
    sm.delete_endpoint(EndpointName="ep")
    assert wait_for(lambda: gone(sm, "ep"))
    assert sm.describe_model(ModelName="ep-m-v1")["ModelName"] == "ep-m-v1"
    assert sm.describe_endpoint_config(EndpointConfigName="ep-c-v1")["EndpointConfigName"] == "ep-c-v1"


# -- quotas ("<instance type> for endpoint usage", Service Quotas) -------------------------------------------

def test_instance_quota_refuses_create_and_a_blue_green_update_that_needs_two_fleets(sandbox, sm, ecr):
    status, _ = control(sandbox, "POST", "/_sandbox/quotas", {"instance_type": "ml.g5.xlarge", "value": 1})
    assert status == 200
    endpoint(sm, ecr)
    cfg, _ = revision(sm, ecr, "ep", "v2")
    err = error_of(sm.update_endpoint, EndpointName="ep", EndpointConfigName=cfg)
    assert err["Code"] == "ResourceLimitExceeded"
    assert err["Message"] == ("The account-level service limit 'ml.g5.xlarge for endpoint usage' is 1 Instances, with "
                              "current utilization of 1 Instances and a request delta of 1 Instances. Please use AWS "
                              "Service Quotas to request an increase for this quota.")
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "InService"
    second = error_of(sm.create_endpoint, EndpointName="ep2", EndpointConfigName="ep-c-v1")
    assert second["Code"] == "ResourceLimitExceeded"
    other_type, _ = revision(sm, ecr, "ep", "g6", instance_type="ml.g6.xlarge")
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=other_type)
    assert settle(sm, "ep")["EndpointConfigName"] == other_type


def test_service_quotas_list_every_hosting_type_the_region_offers(sandbox, clients):
    sq = clients.client("service-quotas")

    def names():
        return {q["QuotaName"] for page in sq.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker")
                for q in page["Quotas"]}

    assert {"ml.p5.48xlarge for endpoint usage", "ml.c7g.2xlarge for endpoint usage"} <= names()
    status, _ = control(sandbox, "POST", "/_sandbox/quotas", {"instance_type": "ml.p5.48xlarge", "offered": False})
    assert status == 200
    assert "ml.p5.48xlarge for endpoint usage" not in names()
    control(sandbox, "POST", "/_sandbox/quotas", {"instance_type": "ml.p5.48xlarge", "value": 2})
    assert "ml.p5.48xlarge for endpoint usage" in names()
