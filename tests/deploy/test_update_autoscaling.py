"""Autoscaling through updates: blue/green keeps the instance count autoscaling chose and leaves the
scalable target and its policies as they are (update and rollback); the recreate strategy
deregisters them, deletes and recreates the endpoint with the full configuration, registers the
exact same target and policies again and reports the downtime it caused, also when the new image
fails (back on the previous config) and for a Failed endpoint."""

from __future__ import annotations

import pytest

from byoc.sandbox import seed
from byoc.sandbox.server import ACCOUNT
from support.update import (
    ASYNC_EP,
    REALTIME_EP,
    autoscaling,
    deployment,
    live,
    resources,
    run,
    run_json,
    served_digest,
    tags_of,
)

ROLE = f"arn:aws:iam::{ACCOUNT}:role/ESD-createEndpoint-Role"


@pytest.fixture
def dep(sandbox, clients):
    return deployment(clients)


@pytest.fixture
def scaled(sm, clients, dep):
    """The real-time endpoint under target tracking 1..4, scaled out to 3 instances by autoscaling."""
    seed.register_autoscaling(clients.client("application-autoscaling"), REALTIME_EP, min_capacity=1,
                              max_capacity=4, is_async=False)
    sm.update_endpoint_weights_and_capacities(EndpointName=REALTIME_EP, DesiredWeightsAndCapacities=[
        {"VariantName": "prod", "DesiredInstanceCount": 3}])
    assert live(sm, REALTIME_EP)["ProductionVariants"][0]["CurrentInstanceCount"] == 3
    return autoscaling(clients, REALTIME_EP)


def update(capsys, *argv: str, expect: int = 0) -> dict:
    code, doc, err = run_json(capsys, *argv, "--yes", "-q")
    assert code == expect, err
    return doc


def test_blue_green_update_keeps_the_instance_count_and_the_scaling_registration(capsys, sm, clients, dep, scaled):
    target, policies = scaled
    assert target and len(policies) == 1
    doc = update(capsys, "update", REALTIME_EP, dep["custom_image"])
    assert doc["result"] == "updated"
    variant = live(sm, REALTIME_EP)["ProductionVariants"][0]
    assert (variant["DesiredInstanceCount"], variant["CurrentInstanceCount"]) == (3, 3)  # not InitialInstanceCount 1
    assert autoscaling(clients, REALTIME_EP) == scaled
    doc = update(capsys, "rollback", REALTIME_EP)
    assert doc["endpoint_config"] == "infer-config-f9e8d7c"
    assert live(sm, REALTIME_EP)["ProductionVariants"][0]["DesiredInstanceCount"] == 3
    assert autoscaling(clients, REALTIME_EP) == scaled


def test_blue_green_failed_update_keeps_the_scaling_registration(capsys, sm, clients, dep, scaled):
    update(capsys, "update", REALTIME_EP, dep["broken_image"], expect=1)
    assert live(sm, REALTIME_EP)["ProductionVariants"][0]["CurrentInstanceCount"] == 3
    assert autoscaling(clients, REALTIME_EP) == scaled


def test_async_endpoint_scaling_to_zero_survives_update_and_rollback(capsys, clients, dep):
    before = autoscaling(clients, ASYNC_EP)
    assert [p["PolicyName"] for p in before[1]] == [f"{ASYNC_EP}-has-backlog-without-capacity",
                                                     f"{ASYNC_EP}-target-tracking"]
    update(capsys, "update", ASYNC_EP, dep["custom_image"])
    assert autoscaling(clients, ASYNC_EP) == before
    update(capsys, "rollback", ASYNC_EP)
    assert autoscaling(clients, ASYNC_EP) == before


# -- the recreate strategy -------------------------------------------------------------------------------

def test_recreate_re_registers_the_exact_target_and_policies_and_reports_downtime(capsys, sm, clients, dep):
    before = autoscaling(clients, ASYNC_EP)
    endpoint_tags = tags_of(sm, sm.describe_endpoint(EndpointName=ASYNC_EP)["EndpointArn"])
    code, out, err = run(capsys, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q", "--strategy", "recreate")
    assert code == 0, err
    assert out.startswith("updated: ")
    assert "downtime (recreate): " in out
    assert "recreate: deregistering 1 scalable target(s), deleting infer-endpoint-a1b2c3d" in err
    d = live(sm, ASYNC_EP)
    assert (d["EndpointStatus"], d["EndpointConfigName"]) == ("InService", "infer-config-a1b2c3d-r1")
    assert served_digest(sm, ASYNC_EP) == dep["custom_digest"]
    assert autoscaling(clients, ASYNC_EP) == before
    after_tags = tags_of(sm, d["EndpointArn"])
    assert after_tags["solution"] == endpoint_tags["solution"]  # the endpoint's own tags survive
    assert after_tags["byoc:r1"].startswith("deployed ")
    assert d["AsyncInferenceConfig"] == sm.describe_endpoint_config(
        EndpointConfigName="infer-config-a1b2c3d")["AsyncInferenceConfig"]


def test_recreate_json_reports_the_downtime(capsys, clients, dep):
    doc = update(capsys, "update", ASYNC_EP, dep["custom_image"], "--strategy", "recreate")
    assert doc["strategy"] == "recreate"
    assert doc["downtime_seconds"] > 0
    assert doc["downtime_seconds"] <= doc["elapsed_seconds"]


def test_recreate_with_a_failing_image_comes_back_on_the_previous_config(capsys, sm, clients, dep):
    before = autoscaling(clients, ASYNC_EP)
    old = served_digest(sm, ASYNC_EP)
    models_before, configs_before = resources(sm)
    doc = update(capsys, "update", ASYNC_EP, dep["broken_image"], "--strategy", "recreate", expect=1)
    assert doc["result"] == "failed"
    assert "did not pass the ping health check" in doc["failure_reason"]
    assert doc["downtime_seconds"] > 0
    d = live(sm, ASYNC_EP)
    assert (d["EndpointStatus"], d["EndpointConfigName"]) == ("InService", "infer-config-a1b2c3d")
    assert served_digest(sm, ASYNC_EP) == old
    assert autoscaling(clients, ASYNC_EP) == before
    assert resources(sm) == (models_before, configs_before)  # the failed revision is gone


def test_failed_endpoint_is_recreated_with_the_new_image(capsys, sm, ecr, clients, dep):
    image, _ = seed.push_image(ecr, "my-sd-webui", "dead", "crash")
    sm.create_model(ModelName="infer-model-dead01", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image},
                    Tags=[{"Key": "team", "Value": "sd"}])
    sm.create_endpoint_config(EndpointConfigName="infer-config-dead01", ProductionVariants=[
        {"VariantName": "prod", "ModelName": "infer-model-dead01", "InstanceType": "ml.g5.xlarge",
         "InitialInstanceCount": 1, "ContainerStartupHealthCheckTimeoutInSeconds": 600}])
    sm.create_endpoint(EndpointName="infer-endpoint-dead01", EndpointConfigName="infer-config-dead01",
                       Tags=[{"Key": "team", "Value": "sd"}])
    assert live(sm, "infer-endpoint-dead01")["EndpointStatus"] == "Failed"
    seed.register_autoscaling(clients.client("application-autoscaling"), "infer-endpoint-dead01", min_capacity=1,
                              max_capacity=2, is_async=False)
    before = autoscaling(clients, "infer-endpoint-dead01")
    doc = update(capsys, "update", "infer-endpoint-dead01", dep["custom_image"], "--strategy", "recreate")
    assert (doc["result"], doc["endpoint_config"]) == ("updated", "infer-config-dead01-r1")
    d = live(sm, "infer-endpoint-dead01")
    assert d["EndpointStatus"] == "InService" and "FailureReason" not in d
    assert served_digest(sm, "infer-endpoint-dead01") == dep["custom_digest"]
    assert autoscaling(clients, "infer-endpoint-dead01") == before
    assert tags_of(sm, d["EndpointArn"])["team"] == "sd"
    cfg = sm.describe_endpoint_config(EndpointConfigName="infer-config-dead01-r1")
    assert cfg["ProductionVariants"][0]["ContainerStartupHealthCheckTimeoutInSeconds"] == 600
