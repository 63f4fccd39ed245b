"""Fault injection (POST/DELETE /_sandbox/faults), POST /_sandbox/reset and the other control paths,
seen through boto3: injected errors reach every service in its own wire protocol."""

from __future__ import annotations

import time

import boto3
import pytest

from byoc.sandbox import seed
from support.sandbox import NO_RETRIES, add_fault, control, endpoint, error_of


def _client(sandbox, service):
    return boto3.client(service, endpoint_url=sandbox.url, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=NO_RETRIES)


def test_throttle_limits_one_operation_to_n_per_second(sandbox, sm, ecr):
    endpoint(sm, ecr)
    add_fault(sandbox, service="sagemaker", operation="DescribeEndpoint", throttle_rps=1)
    client = _client(sandbox, "sagemaker")
    outcomes = []
    for _ in range(20):
        try:
            client.describe_endpoint(EndpointName="ep")
            outcomes.append("ok")
        except client.exceptions.ClientError as exc:
            assert exc.response["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}
            outcomes.append("throttled")
    assert "ok" in outcomes and outcomes.count("throttled") >= 10
    client.list_endpoints()  # other operations are not throttled
    _, state = control(sandbox, "GET", "/_sandbox/faults")
    assert state["throttled"] == outcomes.count("throttled")


def test_throttling_counts_each_operation_separately(sandbox, sm, ecr):
    endpoint(sm, ecr)
    add_fault(sandbox, service="sagemaker", operation="*", throttle_rps=1)
    client = _client(sandbox, "sagemaker")

    def throttled_within_ten_calls(call, **params):
        for _ in range(10):
            try:
                call(**params)
            except client.exceptions.ClientError as exc:
                return exc.response["Error"]["Code"] == "ThrottlingException"
        return False

    assert throttled_within_ten_calls(client.describe_endpoint, EndpointName="ep")
    client.list_endpoints()  # its own bucket (AWS rate-limits each API operation) still has its token
    assert throttled_within_ten_calls(client.list_endpoints)


def test_boto3_retries_through_throttling(sandbox, sm, ecr):
    endpoint(sm, ecr)
    add_fault(sandbox, service="sagemaker", operation="DescribeEndpoint", fail_next=2, error_code="ThrottlingException",
              status=400, message="Rate exceeded")
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "InService"  # standard retry mode
    _, state = control(sandbox, "GET", "/_sandbox/faults")
    assert state["injected"] == 2


CALLS = {
    "sagemaker": ("ListEndpoints", lambda c: c.list_endpoints()),
    "ecr": ("DescribeRepositories", lambda c: c.describe_repositories()),
    "logs": ("DescribeLogGroups", lambda c: c.describe_log_groups()),
    "s3": ("ListBuckets", lambda c: c.list_buckets()),
    "sns": ("ListTopics", lambda c: c.list_topics()),
    "sts": ("GetCallerIdentity", lambda c: c.get_caller_identity()),
    "iam": ("ListRoles", lambda c: c.list_roles()),
    "cloudwatch": ("DescribeAlarms", lambda c: c.describe_alarms()),
    "application-autoscaling": ("DescribeScalableTargets",
                                lambda c: c.describe_scalable_targets(ServiceNamespace="sagemaker")),
}
SIGNING_NAME = {"cloudwatch": "monitoring"}


@pytest.mark.parametrize("service", sorted(CALLS))
def test_fail_next_reaches_each_service_in_its_protocol(sandbox, service):
    operation, call = CALLS[service]
    client = _client(sandbox, service)
    add_fault(sandbox, service=SIGNING_NAME.get(service, service), operation=operation, fail_next=2,
              error_code="ServiceUnavailable", status=503, message="Injected <failure> & co.")
    for _ in range(2):
        err = error_of(call, client)
        assert (err["Code"], err["Message"], err["Status"]) == ("ServiceUnavailable", "Injected <failure> & co.", 503)
    call(client)  # the third call goes through


def test_wildcards_match_any_service_and_operation(sandbox):
    add_fault(sandbox, fail_next=1, error_code="InternalFailure", status=500)
    err = error_of(_client(sandbox, "sts").get_caller_identity)
    assert (err["Code"], err["Status"]) == ("InternalFailure", 500)
    _client(sandbox, "sts").get_caller_identity()


def test_latency_delays_the_answer(sandbox, sm):
    add_fault(sandbox, service="sagemaker", operation="ListEndpoints", latency_ms=300)
    started = time.monotonic()
    sm.list_endpoints()
    assert time.monotonic() - started >= 0.3  # a lower bound: the injected delay, whatever the machine


def test_runtime_operations_can_fail_too(sandbox, sm, ecr, clients):
    endpoint(sm, ecr)
    add_fault(sandbox, service="sagemaker", operation="InvokeEndpoint", fail_next=1,
              error_code="ModelNotReadyException", status=429, message="Model is not ready.")
    rt = _client(sandbox, "sagemaker-runtime")
    err = error_of(rt.invoke_endpoint, EndpointName="ep", Body=b"{}")
    assert (err["Code"], err["Status"]) == ("ModelNotReadyException", 429)
    assert rt.invoke_endpoint(EndpointName="ep", Body=b"{}")["InvokedProductionVariant"] == "AllTraffic"


def test_delete_clears_faults(sandbox, sm):
    add_fault(sandbox, service="sagemaker", operation="*", fail_next=100, error_code="InternalFailure")
    status, state = control(sandbox, "DELETE", "/_sandbox/faults")
    assert status == 200 and state == {"faults": [], "throttled": 0, "injected": 0}
    assert sm.list_endpoints()["Endpoints"] == []


def test_several_faults_in_one_post(sandbox):
    status, state = control(sandbox, "POST", "/_sandbox/faults", [
        {"service": "sagemaker", "operation": "DescribeEndpoint", "throttle_rps": 5},
        {"service": "ecr", "operation": "*", "latency_ms": 10}])
    assert status == 200
    assert [(f["service"], f["operation"]) for f in state["faults"]] == [("sagemaker", "DescribeEndpoint"), ("ecr", "*")]


@pytest.mark.parametrize("spec,needle", [
    ({"service": "sagemaker", "throttle": 3}, "unknown fault fields: throttle"),
    ({"service": "sagemaker"}, "a fault needs throttle_rps, fail_next or latency_ms"),
])
def test_bad_fault_specs_are_refused(sandbox, spec, needle):
    status, body = control(sandbox, "POST", "/_sandbox/faults", spec)
    assert status == 400 and body["__type"] == "ValidationException" and needle in body["message"]
    assert control(sandbox, "GET", "/_sandbox/faults")[1]["faults"] == []


def test_reset_empties_every_service(sandbox, clients, sm, ecr):
    endpoint(sm, ecr)
    clients.client("s3").create_bucket(Bucket="reset-bucket")
    add_fault(sandbox, service="sts", latency_ms=1)
    status, body = control(sandbox, "POST", "/_sandbox/reset")
    assert (status, body) == (200, {"reset": True})
    assert sm.list_endpoints()["Endpoints"] == [] and sm.list_models()["Models"] == []
    assert ecr.describe_repositories()["repositories"] == []
    assert clients.client("s3").list_buckets()["Buckets"] == []
    assert clients.client("logs").describe_log_groups()["logGroups"] == []
    assert control(sandbox, "GET", "/_sandbox/faults")[1]["faults"] == []
    seed.push_image(ecr, "sd", "v1")  # usable again right away


def test_health_and_unknown_control_paths(sandbox):
    status, body = control(sandbox, "GET", "/_sandbox/health")
    assert status == 200 and body["ok"] is True and body["time_scale"] == sandbox.app.clock.time_scale
    status, body = control(sandbox, "GET", "/_sandbox/nope")
    assert status == 404 and body["__type"] == "UnknownOperationException"
