"""UpdateEndpoint in the sandbox through boto3: blue/green success, every failing container behaviour
returning the endpoint to its previous config, RetainAllVariantProperties / ExcludeRetainedVariantProperties,
UpdateEndpointWeightsAndCapacities, and the refusals around them."""

from __future__ import annotations

import json

import pytest

from support.sandbox import (
    PING_FAILURE,
    config,
    digest_served,
    endpoint,
    error_of,
    model,
    revision,
    settle,
    streams,
    wait_for,
)

SHORT_TIMEOUT = {"ContainerStartupHealthCheckTimeoutInSeconds": 120}

FAILING = [
    # (behaviour annotation, architecture, a line the failing instance writes to its log stream)
    ("crash", None, "ModuleNotFoundError: No module named 'xformers'"),
    ("ping-timeout", None, "Compiling UNet with torch.compile, this can take a while ..."),
    ("wrong-port", None, "Uvicorn running on http://127.0.0.1:8000"),
    ("slow-start=900", None, "Still loading model weights ..."),
    ("oom", None, "torch.cuda.OutOfMemoryError: CUDA out of memory."),
    ("missing-env=ESD_VERSION", None, "ESD_VERSION is not set"),
    ("healthy", "arm64", "exec format error"),
]


@pytest.fixture
def rt(clients):
    return clients.client("sagemaker-runtime")


@pytest.mark.parametrize("behavior,architecture,line", FAILING, ids=[f[0] + ("-arm64" if f[1] else "") for f in FAILING])
def test_failed_update_returns_to_previous_config_with_reason_and_logs(sm, ecr, clients, rt, behavior, architecture,
                                                                        line):
    _, old_digest = endpoint(sm, ecr)
    before = set(streams(clients.client("logs"), "ep"))
    cfg, new_digest = revision(sm, ecr, "ep", "v2", behavior, architecture=architecture, variant_fields=SHORT_TIMEOUT)
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg)
    d = settle(sm, "ep")
    assert d["EndpointStatus"] == "InService"
    assert d["EndpointConfigName"] == "ep-c-v1"
    assert d["FailureReason"] == PING_FAILURE.format(variant="AllTraffic")
    assert "PendingDeploymentSummary" not in d
    variant = d["ProductionVariants"][0]
    assert variant["DeployedImages"][0]["ResolvedImage"].endswith("@" + old_digest)
    assert variant["CurrentInstanceCount"] == 1
    assert digest_served(rt, "ep") == old_digest != new_digest
    after = streams(clients.client("logs"), "ep")
    new_streams = [name for name in after if name not in before]
    assert len(new_streams) == 1 and new_streams[0].startswith("AllTraffic/i-")
    assert any(line in message for message in after[new_streams[0]])
    assert not any(line in message for name in before for message in after[name])


def test_slow_start_within_the_health_check_timeout_succeeds(sm, ecr):
    endpoint(sm, ecr)
    cfg, new_digest = revision(sm, ecr, "ep", "v2", "slow-start=90", variant_fields=SHORT_TIMEOUT)
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg)
    d = settle(sm, "ep")
    assert d["EndpointConfigName"] == cfg and "FailureReason" not in d
    assert d["ProductionVariants"][0]["DeployedImages"][0]["ResolvedImage"].endswith("@" + new_digest)


def test_missing_env_image_is_healthy_when_the_model_sets_the_variable(sm, ecr):
    endpoint(sm, ecr)
    cfg, _ = revision(sm, ecr, "ep", "v2", "missing-env=ESD_VERSION", environment={"ESD_VERSION": "v1.5.0"})
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg)
    d = settle(sm, "ep")
    assert d["EndpointConfigName"] == cfg and "FailureReason" not in d


def test_successful_update_shifts_traffic_then_terminates_the_old_fleet(sandbox, sm, ecr, clients, rt):
    _, old_digest = endpoint(sm, ecr, count=2)
    logs = clients.client("logs")
    old_streams = set(streams(logs, "ep"))
    assert len(old_streams) == 2
    cfg, new_digest = revision(sm, ecr, "ep", "v2", count=2)
    sandbox.app.clock.time_scale = 1.0  # slow enough to observe the Updating state
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg)
    d = sm.describe_endpoint(EndpointName="ep")
    assert d["EndpointStatus"] == "Updating"
    assert d["EndpointConfigName"] == "ep-c-v1"
    assert d["PendingDeploymentSummary"]["EndpointConfigName"] == cfg
    assert digest_served(rt, "ep") == old_digest  # the old fleet serves while the new one boots
    sandbox.app.clock.time_scale = 0.05
    d = settle(sm, "ep")
    assert d["EndpointConfigName"] == cfg and "FailureReason" not in d
    assert d["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    assert d["ProductionVariants"][0]["DeployedImages"][0]["ResolvedImage"].endswith("@" + new_digest)
    assert digest_served(rt, "ep") == new_digest

    def old_fleet_stopped():
        logged = streams(logs, "ep")
        return all("INFO:     Shutting down" in logged[name] for name in old_streams)

    assert wait_for(old_fleet_stopped), "the old instances log their shutdown once traffic moved"
    assert len(streams(logs, "ep")) == 4


def test_a_later_successful_update_clears_the_failure_reason(sm, ecr):
    endpoint(sm, ecr)
    bad, _ = revision(sm, ecr, "ep", "bad", "crash")
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=bad)
    assert "FailureReason" in settle(sm, "ep")
    good, _ = revision(sm, ecr, "ep", "good")
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=good)
    d = settle(sm, "ep")
    assert d["EndpointConfigName"] == good and "FailureReason" not in d


def test_invoke_error_image_passes_ping_but_answers_model_error(sm, ecr, clients, rt):
    endpoint(sm, ecr)
    cfg, _ = revision(sm, ecr, "ep", "v2", "invoke-error")
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg)
    assert settle(sm, "ep")["EndpointConfigName"] == cfg
    err = error_of(rt.invoke_endpoint, EndpointName="ep", Body=b"{}", ContentType="application/json")
    assert err["Code"] == "ModelError" and err["Status"] == 424
    assert err["Message"].startswith('Received server error (500) from primary with message "Internal Server Error".')
    logged = "\n".join(m for lines in streams(clients.client("logs"), "ep").values() for m in lines)
    assert '"POST /invocations HTTP/1.1" 500 Internal Server Error' in logged


def test_update_refusals_leave_the_endpoint_unchanged(sandbox, sm, ecr):
    cfg1, _ = endpoint(sm, ecr)
    missing_cfg = error_of(sm.update_endpoint, EndpointName="ep", EndpointConfigName="nope")
    assert missing_cfg["Code"] == "ValidationException"
    assert missing_cfg["Message"] == ('Could not find endpoint configuration '
                                      '"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/nope".')
    missing_ep = error_of(sm.update_endpoint, EndpointName="nope", EndpointConfigName=cfg1)
    assert missing_ep["Message"] == 'Could not find endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/nope".'
    cfg2, _ = revision(sm, ecr, "ep", "v2")
    sm.delete_model(ModelName="ep-m-v2")
    no_model = error_of(sm.update_endpoint, EndpointName="ep", EndpointConfigName=cfg2)
    assert no_model["Message"] == 'Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/ep-m-v2".'
    d = sm.describe_endpoint(EndpointName="ep")
    assert d["EndpointStatus"] == "InService" and d["EndpointConfigName"] == cfg1


def test_update_and_delete_are_refused_while_updating(sandbox, sm, ecr):
    endpoint(sm, ecr)
    cfg, _ = revision(sm, ecr, "ep", "v2")
    sandbox.app.clock.time_scale = 2.0  # the update takes several seconds; the test does not wait for it
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg)
    arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ep"
    assert error_of(sm.update_endpoint, EndpointName="ep", EndpointConfigName=cfg)["Message"] == \
        f'Cannot update in-progress endpoint "{arn}".'
    assert error_of(sm.delete_endpoint, EndpointName="ep")["Message"] == f'Cannot update in-progress endpoint "{arn}".'
    weights = error_of(sm.update_endpoint_weights_and_capacities, EndpointName="ep",
                       DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredWeight": 0.5}])
    assert weights["Message"] == f'Cannot update in-progress endpoint "{arn}".'
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Updating"


# -- RetainAllVariantProperties / ExcludeRetainedVariantProperties (API_UpdateEndpoint, API_VariantProperty) --

def _scale(sm, count=None, weight=None, variant="AllTraffic"):
    change = {"VariantName": variant}
    if count is not None:
        change["DesiredInstanceCount"] = count
    if weight is not None:
        change["DesiredWeight"] = weight
    sm.update_endpoint_weights_and_capacities(EndpointName="ep", DesiredWeightsAndCapacities=[change])
    return settle(sm, "ep")


def _variant(sm, name="AllTraffic") -> dict:
    return next(v for v in sm.describe_endpoint(EndpointName="ep")["ProductionVariants"] if v["VariantName"] == name)


def test_retain_all_variant_properties_keeps_count_and_weight(sm, ecr):
    endpoint(sm, ecr)
    _scale(sm, count=2, weight=0.5)
    assert wait_for(lambda: _variant(sm)["CurrentInstanceCount"] == 2)
    cfg, _ = revision(sm, ecr, "ep", "v2", count=1)
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg, RetainAllVariantProperties=True)
    settle(sm, "ep")
    v = _variant(sm)
    assert (v["DesiredInstanceCount"], v["CurrentInstanceCount"], v["CurrentWeight"]) == (2, 2, 0.5)


@pytest.mark.parametrize("excluded,expected", [
    (["DesiredInstanceCount"], (1, 0.5)),
    (["DesiredWeight"], (2, 1.0)),
    (["DesiredInstanceCount", "DesiredWeight"], (1, 1.0)),
])
def test_excluded_properties_come_from_the_new_config(sm, ecr, excluded, expected):
    endpoint(sm, ecr)
    _scale(sm, count=2, weight=0.5)
    cfg, _ = revision(sm, ecr, "ep", "v2", count=1)
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg, RetainAllVariantProperties=True,
                       ExcludeRetainedVariantProperties=[{"VariantPropertyType": p} for p in excluded])
    settle(sm, "ep")
    v = _variant(sm)
    assert (v["DesiredInstanceCount"], v["CurrentWeight"]) == expected


def test_without_retain_the_new_config_counts_apply(sm, ecr):
    endpoint(sm, ecr)
    _scale(sm, count=3)
    cfg, _ = revision(sm, ecr, "ep", "v2", count=1)
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg)
    settle(sm, "ep")
    assert _variant(sm)["DesiredInstanceCount"] == 1


# -- UpdateEndpointWeightsAndCapacities (API_UpdateEndpointWeightsAndCapacities) --

def _two_variant_endpoint(sm, ecr):
    model(sm, ecr, "m")
    b = {"VariantName": "B", "ModelName": "m", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1,
         "InitialVariantWeight": 1.0}
    config(sm, "c", "m", variant="A", extra_variants=(b,))
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    settle(sm, "ep")


def test_weights_route_traffic_between_variants(sm, ecr, rt):
    _two_variant_endpoint(sm, ecr)
    sm.update_endpoint_weights_and_capacities(EndpointName="ep", DesiredWeightsAndCapacities=[
        {"VariantName": "A", "DesiredWeight": 0.0}])
    assert settle(sm, "ep")["EndpointStatus"] == "InService"
    assert (_variant(sm, "A")["CurrentWeight"], _variant(sm, "B")["CurrentWeight"]) == (0.0, 1.0)
    served = {rt.invoke_endpoint(EndpointName="ep", Body=b"{}")["InvokedProductionVariant"] for _ in range(20)}
    assert served == {"B"}
    targeted = rt.invoke_endpoint(EndpointName="ep", Body=b"{}", TargetVariant="A")
    assert targeted["InvokedProductionVariant"] == "A"
    assert json.loads(targeted["Body"].read())["variant"] == "A"


def test_capacity_changes_add_and_remove_instances(sandbox, sm, ecr, clients):
    endpoint(sm, ecr)
    sandbox.app.clock.time_scale = 0.5  # slow enough to observe the Updating state
    sm.update_endpoint_weights_and_capacities(EndpointName="ep", DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": 3}])
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Updating"
    sandbox.app.clock.time_scale = 0.05
    settle(sm, "ep")
    assert wait_for(lambda: _variant(sm)["CurrentInstanceCount"] == 3)
    assert len(streams(clients.client("logs"), "ep")) == 3
    _scale(sm, count=1)
    v = _variant(sm)
    assert (v["DesiredInstanceCount"], v["CurrentInstanceCount"]) == (1, 1)


def test_weights_and_capacities_refusals(sm, ecr):
    endpoint(sm, ecr)
    unknown = error_of(sm.update_endpoint_weights_and_capacities, EndpointName="ep",
                       DesiredWeightsAndCapacities=[{"VariantName": "Nope", "DesiredWeight": 1.0}])
    assert unknown["Code"] == "ValidationException" and "Nope" in unknown["Message"]
    missing = error_of(sm.update_endpoint_weights_and_capacities, EndpointName="other",
                       DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredWeight": 1.0}])
    assert missing["Message"] == 'Could not find endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/other".'
    assert _variant(sm)["CurrentWeight"] == 1.0


def test_update_with_deployment_config_is_reported(sm, ecr):
    endpoint(sm, ecr)
    cfg, _ = revision(sm, ecr, "ep", "v2")
    policy = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
                                        "TerminationWaitInSeconds": 0}}
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg, DeploymentConfig=policy)
    d = settle(sm, "ep")
    assert d["EndpointConfigName"] == cfg
    assert d["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"

