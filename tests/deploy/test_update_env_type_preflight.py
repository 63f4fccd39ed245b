"""Pre-flight of `byoc update --env/--instance-type`: each refusal exits 2 with one error and one fix line
and changes nothing; the dry-run plan shows every change with secret values masked; `fleet update`
takes the same options."""

from __future__ import annotations

import json

import pytest

from byoc.sandbox import seed
from support.sandbox import control
from support.update import (
    ASYNC_EP,
    REALTIME_EP,
    autoscaling,
    deployment,
    live,
    model_of,
    refused,
    run,
    run_json,
)


@pytest.fixture
def dep(sandbox, clients):
    return deployment(clients)


@pytest.mark.parametrize("argv, says, fix", [
    (("--instance-type", "ml.p5.48xlarge"), "ml.p5.48xlarge is not offered for SageMaker hosting in us-east-1",
     "aws service-quotas list-service-quotas"),
    (("--instance-type", "ml.c7g.2xlarge"), "but ml.c7g.2xlarge (the new type of variant prod) is arm64",
     "byoc build --platform linux/arm64"),
    (("--instance-type", "ml.m5.xlarge"), "Variant prod runs on ml.g5.2xlarge, which has an NVIDIA GPU; "
                                          "ml.m5.xlarge has none", "Pick a GPU type"),
    (("--instance-type", "blue=ml.g6.2xlarge"), "Endpoint infer-endpoint-a1b2c3d has no variant blue",
     "--instance-type VARIANT=TYPE"),
    (("--instance-type", "ml.g6.2xlarg"), "did you mean ml.g6.2xlarge", "upgrade botocore"),
    (("--env", "EXTENSIONS=" + "x" * 1025), "The value of EXTENSIONS is 1025 characters long", "Shorten it"),
    (("--env", "9X=1"), "'9X' is not a valid environment variable name", "letters, digits"),
])
def test_refusals_change_nothing(sandbox, capsys, sm, dep, argv, says, fix):
    control(sandbox, "POST", "/_sandbox/quotas", {"instance_type": "ml.p5.48xlarge", "offered": False})
    error, hint = refused(capsys, sm, "update", ASYNC_EP, dep["custom_image"], *argv, "--yes")
    assert says in error
    assert fix in hint


def test_no_room_for_the_new_type_is_refused(sandbox, capsys, sm, dep):
    control(sandbox, "POST", "/_sandbox/quotas", {"instance_type": "ml.g6.2xlarge", "value": 0})
    error, hint = refused(capsys, sm, "update", REALTIME_EP, dep["custom_image"], "--instance-type", "ml.g6.2xlarge")
    assert "Not enough ml.g6.2xlarge capacity" in error
    assert "request-service-quota-increase" in hint


def test_dry_run_shows_every_change_and_never_a_secret(capsys, sm, clients, dep, tmp_path):
    env_file = tmp_path / "x.env"
    env_file.write_text("HF_TOKEN=hf_supersecret\nLOG_LEVEL=DEBUG\n")
    before = autoscaling(clients, ASYNC_EP)
    code, out, err = run(capsys, "update", ASYNC_EP, dep["custom_image"], "--env-file", str(env_file),
                         "--unset-env", "EndpointID", "--instance-type", "ml.g6.2xlarge", "--dry-run")
    assert code == 0, err
    assert "hf_supersecret" not in out + err
    for line in ("instance  prod: ml.g5.2xlarge -> ml.g6.2xlarge", "env       + HF_TOKEN=****",
                 "env       + LOG_LEVEL=DEBUG", "env       - EndpointID",
                 "autoscaling prod: deregistered before the update (autoscaling is paused meanwhile), registered "
                 "again exactly afterwards, also if it fails (0..1 instances"):
        assert line in err
    assert autoscaling(clients, ASYNC_EP) == before  # a dry run deregisters nothing
    code, doc, _ = run_json(capsys, "update", ASYNC_EP, dep["custom_image"], "--env-file", str(env_file),
                            "--instance-type", "ml.g6.2xlarge", "--dry-run")
    assert "hf_supersecret" not in json.dumps(doc)
    plan = doc["plan"]
    assert plan["instance_types"] == {"prod": ["ml.g5.2xlarge", "ml.g6.2xlarge"]}
    assert plan["env_changes"]["infer-model-a1b2c3d"]["added"] == {"HF_TOKEN": "****", "LOG_LEVEL": "DEBUG"}
    assert plan["autoscaling"] == {"paused": ["prod"], "left_by_interrupted_run": False}
    assert plan["extra_capacity"] == {"ml.g6.2xlarge": 1}


def test_a_cpu_type_for_a_cuda_image_is_a_warning(capsys, sm, ecr, dep):
    sm.create_model(ModelName="infer-model-cpu001", ExecutionRoleArn=dep["role"],
                    PrimaryContainer={"Image": dep["default_image"]})
    sm.create_endpoint_config(EndpointConfigName="infer-config-cpu001", ProductionVariants=[
        {"VariantName": "prod", "ModelName": "infer-model-cpu001", "InstanceType": "ml.m5.large",
         "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="infer-endpoint-cpu001", EndpointConfigName="infer-config-cpu001")
    seed.wait_status(sm, "infer-endpoint-cpu001")
    image, _ = seed.push_image(ecr, "my-sd-webui", "v5-cu124", "healthy")
    code, doc, err = run_json(capsys, "update", "infer-endpoint-cpu001", image, "--instance-type", "ml.m5.xlarge",
                              "--dry-run")
    assert code == 0, err
    assert any("looks built for CUDA" in w and "ml.m5.xlarge has no GPU" in w for w in doc["warnings"])


def test_fleet_update_takes_the_same_options(capsys, sm, dep):
    code, doc, err = run_json(capsys, "fleet", "update", dep["custom_image"], "--endpoints",
                              f"{ASYNC_EP},{REALTIME_EP}", "--env", "FOO=1", "--env", "API_KEY=k3y",
                              "--instance-type", "ml.g6.2xlarge", "--dry-run")
    assert code == 0, err
    assert "k3y" not in json.dumps(doc) + err
    assert [i["phase"] for i in doc["endpoints"]] == ["planned", "planned"]
    code, doc, err = run_json(capsys, "fleet", "update", dep["custom_image"], "--endpoints", REALTIME_EP,
                              "--env", "FOO=1", "--unset-env", "EndpointID", "--yes")
    assert code == 0, err
    env = model_of(sm, live(sm, REALTIME_EP)["EndpointConfigName"])["PrimaryContainer"]["Environment"]
    assert env["FOO"] == "1" and "EndpointID" not in env
