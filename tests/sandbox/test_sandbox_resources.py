"""Models and endpoint configs in the sandbox through boto3: what Describe* gives back, and Delete*."""

from __future__ import annotations

from support.sandbox import ARN_PREFIX, ROLE, config, error_of, model


def test_describe_model_returns_what_was_created(sm, ecr):
    image, _ = model(sm, ecr, "m", environment={"ESD_VERSION": "v1.5.0", "LOG_LEVEL": "INFO"})
    d = sm.describe_model(ModelName="m")
    assert (d["ModelName"], d["ModelArn"], d["ExecutionRoleArn"]) == ("m", f"{ARN_PREFIX}:model/m", ROLE)
    assert d["PrimaryContainer"] == {"Image": image, "Environment": {"ESD_VERSION": "v1.5.0", "LOG_LEVEL": "INFO"}}
    assert "CreationTime" in d


def test_describe_endpoint_config_returns_every_field(sm, ecr):
    model(sm, ecr, "m")
    async_config = {"ClientConfig": {"MaxConcurrentInvocationsPerInstance": 1},
                    "OutputConfig": {"S3OutputPath": "s3://bucket/out/"}}
    config(sm, "c", "m", instance_type="ml.g5.2xlarge",
           variant_fields={"ModelDataDownloadTimeoutInSeconds": 1200,
                           "ContainerStartupHealthCheckTimeoutInSeconds": 3600},
           AsyncInferenceConfig=async_config, KmsKeyId="alias/esd")
    d = sm.describe_endpoint_config(EndpointConfigName="c")
    assert d["EndpointConfigArn"] == f"{ARN_PREFIX}:endpoint-config/c"
    variant = d["ProductionVariants"][0]
    assert (variant["InstanceType"], variant["ModelDataDownloadTimeoutInSeconds"],
            variant["ContainerStartupHealthCheckTimeoutInSeconds"]) == ("ml.g5.2xlarge", 1200, 3600)
    assert d["AsyncInferenceConfig"] == async_config and d["KmsKeyId"] == "alias/esd"


def test_delete_model_and_config(sm, ecr):
    model(sm, ecr, "m")
    config(sm, "c", "m")
    sm.delete_endpoint_config(EndpointConfigName="c")
    sm.delete_model(ModelName="m")
    assert error_of(sm.describe_endpoint_config, EndpointConfigName="c")["Message"] == \
        f'Could not find endpoint configuration "{ARN_PREFIX}:endpoint-config/c".'
    assert error_of(sm.describe_model, ModelName="m")["Message"] == f'Could not find model "{ARN_PREFIX}:model/m".'
    assert sm.list_models()["Models"] == [] and sm.list_endpoint_configs()["EndpointConfigs"] == []
