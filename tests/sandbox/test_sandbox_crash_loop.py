"""As on AWS, a crashing container is started again and again until the variant's startup window
closes, and only then does the deployment fail; MaximumExecutionTimeoutInSeconds rolls a deployment
back; the guardrails' documented limits are refused with a ValidationException."""

from __future__ import annotations

import pytest

from support.sandbox import PING_FAILURE, endpoint, error_of, revision, settle, wait_for


@pytest.mark.parametrize("behavior,architecture", [("crash", None), ("oom", None), ("missing-env", None),
                                                   ("healthy", "arm64")])
def test_a_crashing_container_restarts_until_the_startup_window_closes(sm, ecr, clients, behavior, architecture):
    endpoint(sm, ecr)
    cfg, _ = revision(sm, ecr, "ep", "v2", behavior, architecture=architecture,
                      variant_fields={"ContainerStartupHealthCheckTimeoutInSeconds": 3600})
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg)
    logs = clients.client("logs")
    group = "/aws/sagemaker/Endpoints/ep"
    assert wait_for(lambda: _new_stream_starts(logs, group) >= 2)
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Updating"  # the window is still open
    d = settle(sm, "ep")
    assert d["EndpointConfigName"] == "ep-c-v1" and d["FailureReason"] == PING_FAILURE.format(variant="AllTraffic")
    assert _new_stream_starts(logs, group) >= 5  # it kept restarting for the whole window


def _new_stream_starts(logs, group) -> int:
    """Container starts in the newest stream: each start writes its banner (or exec error) again."""
    names = sorted(logs.describe_log_streams(logGroupName=group)["logStreams"], key=lambda s: s["creationTime"])
    events = logs.get_log_events(logGroupName=group, logStreamName=names[-1]["logStreamName"])["events"]
    first = events[0]["message"] if events else None
    return sum(e["message"] == first for e in events)


def test_create_with_a_crashing_image_fails_only_after_the_window(sm, ecr):
    endpoint(sm, ecr, behavior="crash", wait=False, variant_fields={"ContainerStartupHealthCheckTimeoutInSeconds": 600})
    d = settle(sm, "ep")
    assert d["EndpointStatus"] == "Failed" and d["FailureReason"] == PING_FAILURE.format(variant="AllTraffic")


def test_a_deployment_past_its_maximum_execution_timeout_is_rolled_back(sm, ecr):
    endpoint(sm, ecr)
    cfg, _ = revision(sm, ecr, "ep", "v2", "crash", variant_fields={"ContainerStartupHealthCheckTimeoutInSeconds": 3600})
    policy = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
                                        "MaximumExecutionTimeoutInSeconds": 600}}
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg, DeploymentConfig=policy)
    d = settle(sm, "ep")
    assert d["EndpointConfigName"] == "ep-c-v1"
    assert "MaximumExecutionTimeoutInSeconds (600 seconds)" in d["FailureReason"]


def test_a_bake_running_past_the_maximum_execution_timeout_is_rolled_back(sm, ecr):
    endpoint(sm, ecr, count=2)
    cfg, _ = revision(sm, ecr, "ep", "v2", count=2)
    policy = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
        "Type": "CANARY", "WaitIntervalInSeconds": 550, "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}},
        "MaximumExecutionTimeoutInSeconds": 600}}
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg, DeploymentConfig=policy)
    d = settle(sm, "ep")
    assert d["EndpointConfigName"] == "ep-c-v1" and "MaximumExecutionTimeoutInSeconds" in d["FailureReason"]


def _routing(kind: str, size: dict, wait: int = 60) -> dict:
    key = "CanarySize" if kind == "CANARY" else "LinearStepSize"
    return {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": kind, "WaitIntervalInSeconds": wait,
                                                                      key: size}}}


@pytest.mark.parametrize("policy,where,constraint", [
    (_routing("CANARY", {"Type": "CAPACITY_PERCENT", "Value": 60}), "canarySize.value",
     "less than or equal to 50% of the variant's total instance count (2)"),
    (_routing("CANARY", {"Type": "INSTANCE_COUNT", "Value": 2}), "canarySize.value", "less than or equal to 50%"),
    (_routing("LINEAR", {"Type": "CAPACITY_PERCENT", "Value": 5}), "linearStepSize.value", "between 10% and 50%"),
    ({"RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 75},
                              "WaitIntervalInSeconds": 60}}, "maximumBatchSize.value", "between 5% and 50%"),
    ({"RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 2}, "WaitIntervalInSeconds": 60}},
     "maximumBatchSize.value", "between 5% and 50%"),
    ({"BlueGreenUpdatePolicy": {**_routing("CANARY", {"Type": "INSTANCE_COUNT", "Value": 1}, 500)["BlueGreenUpdatePolicy"],
                                "TerminationWaitInSeconds": 300, "MaximumExecutionTimeoutInSeconds": 700}},
     "maximumExecutionTimeoutInSeconds", "larger than the total waiting time of the deployment (800 seconds)"),
], ids=["canary-percent", "canary-count", "linear-step", "rolling-percent", "rolling-count", "max-time"])
def test_guardrail_limits_are_refused_and_nothing_changes(sm, ecr, policy, where, constraint):
    endpoint(sm, ecr, count=2)
    cfg, _ = revision(sm, ecr, "ep", "v2", count=2)
    err = error_of(sm.update_endpoint, EndpointName="ep", EndpointConfigName=cfg, DeploymentConfig=policy)
    assert err["Code"] == "ValidationException" and err["Message"].startswith("1 validation error detected: Value ")
    assert f"{where}' failed to satisfy constraint: Member must be" in err["Message"] and constraint in err["Message"]
    d = sm.describe_endpoint(EndpointName="ep")
    assert d["EndpointStatus"] == "InService" and d["EndpointConfigName"] == "ep-c-v1"
