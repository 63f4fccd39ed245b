"""The sandbox answers as AWS does where it used to be kinder or different (issue 14): deployment
configs over time, the pending deployment while creating, digest-form images, canary shares, data
capture summaries, and the response-shape check that guards every test."""

from __future__ import annotations

import botocore.session
import pytest

from support import response_shapes
from support.sandbox import config, endpoint, model, revision, settle, wait_for

CANARY = {"BlueGreenUpdatePolicy": {
    "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 600,
                                    "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}},
    "TerminationWaitInSeconds": 0}}
ALL_AT_ONCE = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE",
                                                                         "WaitIntervalInSeconds": 0}}}


def test_retain_deployment_config_keeps_the_last_one_and_its_absence_clears_it(sm, ecr):
    endpoint(sm, ecr)
    cfg2, _ = revision(sm, ecr, "ep", "v2")
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg2, DeploymentConfig=ALL_AT_ONCE)
    assert settle(sm, "ep")["LastDeploymentConfig"] == ALL_AT_ONCE
    cfg3, _ = revision(sm, ecr, "ep", "v3")
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg3, RetainDeploymentConfig=True)
    d = settle(sm, "ep")
    assert d["EndpointConfigName"] == cfg3 and d["LastDeploymentConfig"] == ALL_AT_ONCE
    cfg4, _ = revision(sm, ecr, "ep", "v4")
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg4)
    d = settle(sm, "ep")
    assert d["EndpointConfigName"] == cfg4 and "LastDeploymentConfig" not in d


def test_creating_endpoint_reports_its_pending_deployment_with_the_resolved_digest(sandbox, sm, ecr):
    sandbox.app.clock.time_scale = 2.0  # creation takes seconds; the test looks at it while Creating
    _, digest = endpoint(sm, ecr, wait=False)
    d = sm.describe_endpoint(EndpointName="ep")
    assert d["EndpointStatus"] == "Creating" and "ProductionVariants" not in d
    pending = d["PendingDeploymentSummary"]
    assert pending["EndpointConfigName"] == "ep-c-v1"
    image = pending["ProductionVariants"][0]["DeployedImages"][0]
    assert image["SpecifiedImage"].endswith("/sd:v1")
    assert image["ResolvedImage"] == image["SpecifiedImage"].rsplit(":", 1)[0] + "@" + digest


def test_pending_fleet_of_an_update_reports_the_digest_form(sandbox, sm, ecr):
    endpoint(sm, ecr)
    cfg, digest = revision(sm, ecr, "ep", "v2")
    sandbox.app.clock.time_scale = 2.0
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg)
    image = sm.describe_endpoint(EndpointName="ep")["PendingDeploymentSummary"]["ProductionVariants"][0][
        "DeployedImages"][0]
    assert "@sha256:" not in image["SpecifiedImage"] and image["ResolvedImage"].endswith("/sd@" + digest)


def test_canary_of_one_instance_out_of_two_takes_half_the_traffic(sandbox, sm, ecr):
    endpoint(sm, ecr, count=2)
    cfg, _ = revision(sm, ecr, "ep", "v2", count=2)
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg, DeploymentConfig=CANARY)
    baking = wait_for(lambda: [s for s in (sm.describe_endpoint(EndpointName="ep").get("PendingDeploymentSummary") or
                                            {}).get("ProductionVariants", [{}])[0].get("VariantStatus", [])
                               if s["Status"] == "Baking"])
    assert baking and baking[0]["StatusMessage"].startswith("Baking: 50% of traffic")


@pytest.mark.parametrize("capture,expected", [
    ({}, {"EnableCapture": True, "CaptureStatus": "Started", "KmsKeyId": ""}),
    ({"EnableCapture": False, "KmsKeyId": "alias/capture"},
     {"EnableCapture": False, "CaptureStatus": "Stopped", "KmsKeyId": "alias/capture"}),
])
def test_data_capture_summary_has_every_required_member(sm, ecr, capture, expected):
    model(sm, ecr, "m")
    config(sm, "c", "m", DataCaptureConfig={"InitialSamplingPercentage": 20, "DestinationS3Uri": "s3://b/capture",
                                            "CaptureOptions": [{"CaptureMode": "Input"}], **capture})
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    summary = settle(sm, "ep")["DataCaptureConfig"]
    assert summary == {"CurrentSamplingPercentage": 20, "DestinationS3Uri": "s3://b/capture", **expected}


def _shape(name: str):
    return botocore.session.get_session().get_service_model("sagemaker").shape_for(name)


def test_shape_check_names_each_kind_of_deviation():
    found = response_shapes.check(_shape("DescribeEndpointOutput"), {
        "EndpointName": "ep", "EndpointArn": "arn", "EndpointStatus": "Sleeping", "CreationTime": "yesterday",
        "LastModifiedTime": 1.5, "Surprise": 1,
        "DataCaptureConfig": {"EnableCapture": "yes", "CaptureStatus": "Started", "CurrentSamplingPercentage": 1,
                              "DestinationS3Uri": "s3://b"}}, "DescribeEndpoint")
    assert sorted(found) == sorted([
        "DescribeEndpoint.EndpointStatus: 'Sleeping' is not one of " + str(_shape("EndpointStatus").enum),
        "DescribeEndpoint.CreationTime: 'yesterday' is not an ISO 8601 timestamp",
        "DescribeEndpoint.Surprise: unknown member",
        "DescribeEndpoint.DataCaptureConfig.KmsKeyId: required member missing",
        "DescribeEndpoint.DataCaptureConfig.EnableCapture: str where botocore expects a boolean",
    ])


def test_shape_check_is_installed_for_every_session(sandbox):
    """Any client, however created, reports a deviating response (here a made-up one) to the check."""
    client = botocore.session.get_session().create_client(
        "sagemaker", region_name="us-east-1", endpoint_url=sandbox.url, aws_access_key_id="testing",
        aws_secret_access_key="testing")

    class Response:
        status_code = 200
        content = b'{"EndpointName": "ep", "Extra": true}'

    client.meta.events.emit("after-call.sagemaker.DescribeEndpoint", http_response=Response(), parsed={},
                            model=client.meta.service_model.operation_model("DescribeEndpoint"), context={})
    found = response_shapes.take()
    assert "sagemaker.DescribeEndpoint.Extra: unknown member" in found
    assert "sagemaker.DescribeEndpoint.EndpointArn: required member missing" in found


def test_container_lines_reach_cloudwatch_seconds_after_their_timestamp(sandbox, sm, ecr, clients):
    from byoc.sandbox.sagemaker.deploy import INGEST_LAG

    sandbox.app.clock.time_scale = 2.0  # the lag lasts 0.1 s, creating the endpoint about 4 s
    endpoint(sm, ecr)
    cw = clients.client("logs")
    events = []
    wait_for(lambda: events.extend(cw.filter_log_events(logGroupName="/aws/sagemaker/Endpoints/ep")["events"])
             or any("Uvicorn running" in e["message"] for e in events))
    lags = [e["ingestionTime"] - e["timestamp"] for e in events]
    assert min(lags) >= sandbox.app.clock.real(INGEST_LAG) * 1000 * 0.9, lags  # visible late, stamped when written
