"""`byoc verify` against the sandbox: PASS on healthy real-time and async endpoints, FAIL with
reasons on invoke-error, a wrong image or an endpoint that is not InService."""

from __future__ import annotations

import json

import pytest

from byoc.aws.client import Aws
from byoc.cli.main import main
from byoc.observe.verify import verify
from byoc.sandbox import seed

ROLE = "arn:aws:iam::123456789012:role/ESD-createEndpoint-Role"


@pytest.fixture
def aws(sandbox):
    return Aws(region="us-east-1")


def deploy(sm, ecr, name="ep", behavior="healthy", tag="v1", async_output=None, failure_path=None):
    image, digest = seed.push_image(ecr, "sd", tag, behavior)
    sm.create_model(ModelName=f"{name}-{tag}", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})
    config = {"EndpointConfigName": f"{name}-{tag}", "ProductionVariants": [{
        "VariantName": "prod", "ModelName": f"{name}-{tag}", "InstanceType": "ml.g5.xlarge",
        "InitialInstanceCount": 1, "ContainerStartupHealthCheckTimeoutInSeconds": 120}]}
    if async_output:
        output = {"S3OutputPath": async_output}
        if failure_path:
            output["S3FailurePath"] = failure_path
        config["AsyncInferenceConfig"] = {"OutputConfig": output}
    sm.create_endpoint_config(**config)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-{tag}")
    seed.wait_status(sm, name)
    return image, digest


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return info.value.code, out, err


def by_name(result):
    return {c.name: c for c in result.checks}


def test_healthy_real_time_endpoint_passes(aws, sm, ecr):
    deploy(sm, ecr)
    v = verify(aws, "ep")
    assert v.passed and v.result == "PASS" and v.reasons == [] and v.error_lines == []
    checks = by_name(v)
    assert [c.name for c in v.checks] == ["status", "invocation", "logs"]
    assert "InvokeEndpoint answered from variant prod" in checks["invocation"].detail
    assert checks["logs"].ok and "No error signature" in checks["logs"].detail
    assert aws.calls["sagemaker:InvokeEndpoint"] == 1


def test_healthy_async_endpoint_passes_through_s3(aws, sm, ecr, clients):
    s3 = clients.client("s3")
    s3.create_bucket(Bucket="esd-bucket")
    deploy(sm, ecr, async_output="s3://esd-bucket/sagemaker_output/")
    v = verify(aws, "ep", payload=b'{"prompt": "a cat"}', timeout=30, poll_seconds=0.05)
    assert v.passed, v.to_dict()
    detail = by_name(v)["invocation"].detail
    assert detail.startswith("The async request succeeded") and "s3://esd-bucket/sagemaker_output/" in detail
    inputs = s3.list_objects_v2(Bucket="esd-bucket", Prefix="sagemaker_output/byoc-verify/")["Contents"]
    assert len(inputs) == 1
    assert s3.get_object(Bucket="esd-bucket", Key=inputs[0]["Key"])["Body"].read() == b'{"prompt": "a cat"}'
    assert aws.calls["sagemaker:InvokeEndpointAsync"] == 1


def test_invoke_error_fails_real_time(aws, sm, ecr):
    deploy(sm, ecr, behavior="invoke-error")
    v = verify(aws, "ep")
    assert not v.passed and v.result == "FAIL"
    assert any("Received server error (500)" in r for r in v.reasons)
    logged = [k.message for k in v.error_lines]
    assert "RuntimeError: expected scalar type Half but found Float" in logged  # the container's own reason
    assert logged[logged.index("Traceback (most recent call last):"):][-1].startswith("RuntimeError")


def test_invoke_error_fails_async_with_a_failure_path(aws, sm, ecr, clients):
    clients.client("s3").create_bucket(Bucket="esd-bucket")
    deploy(sm, ecr, behavior="invoke-error", async_output="s3://esd-bucket/out/", failure_path="s3://esd-bucket/err/")
    v = verify(aws, "ep", timeout=30, poll_seconds=0.05)
    assert not v.passed
    assert by_name(v)["invocation"].detail.startswith("The async request failed: Received server error (500)")


def test_invoke_error_fails_async_without_a_failure_path_from_the_logs(aws, sm, ecr, clients):
    clients.client("s3").create_bucket(Bucket="esd-bucket")
    deploy(sm, ecr, behavior="invoke-error", async_output="s3://esd-bucket/out/")
    v = verify(aws, "ep", timeout=30, poll_seconds=0.05)
    assert not v.passed
    detail = by_name(v)["invocation"].detail
    assert "answered the async request with an error" in detail and '"POST /invocations HTTP/1.1" 500' in detail


def test_async_timeout_is_a_fail_with_the_expected_location(aws, sm, ecr, clients, sandbox):
    clients.client("s3").create_bucket(Bucket="esd-bucket")
    deploy(sm, ecr, async_output="s3://esd-bucket/out/")
    sandbox.app.clock.time_scale = 1000.0  # the request will not be processed within the timeout
    v = verify(aws, "ep", timeout=1, poll_seconds=0.2)
    assert not v.passed
    assert by_name(v)["invocation"].detail.startswith("No output or failure object after 1 s (expected s3://esd-bucket/out/")


def test_expected_image_by_tag_and_digest(aws, sm, ecr):
    image, digest = deploy(sm, ecr)
    assert by_name(verify(aws, "ep", image=image))["image"].ok
    pinned = image.split(":v1")[0] + "@" + digest
    assert by_name(verify(aws, "ep", image=pinned))["image"].ok


def test_wrong_image_fails_and_names_what_runs(aws, sm, ecr):
    deploy(sm, ecr)
    other, _ = seed.push_image(ecr, "sd", "v2", "healthy")
    v = verify(aws, "ep", image=other)
    assert not v.passed
    reason = by_name(v)["image"].detail
    assert reason.startswith(f"Expected {other}") and "variant prod runs" in reason and "/sd@sha256:" in reason


def test_expected_image_missing_from_ecr_fails(aws, sm, ecr):
    image, _ = deploy(sm, ecr)
    v = verify(aws, "ep", image=image.replace(":v1", ":v9"))
    assert not v.passed and "does not exist in ECR (ImageNotFoundException)" in by_name(v)["image"].detail


def test_failed_endpoint_fails_without_invoking(aws, sm, ecr):
    deploy(sm, ecr, behavior="crash")
    v = verify(aws, "ep")
    assert not v.passed
    assert by_name(v)["status"].detail.startswith("The endpoint is Failed, not InService: The primary container")
    assert by_name(v)["invocation"].ok is None
    assert aws.calls["sagemaker:InvokeEndpoint"] == 0


def test_rolled_back_update_is_noted(aws, sm, ecr):
    deploy(sm, ecr)
    image, _ = seed.push_image(ecr, "sd", "v2", "crash")
    sm.create_model(ModelName="ep-v2", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})
    sm.create_endpoint_config(EndpointConfigName="ep-v2", ProductionVariants=[{
        "VariantName": "prod", "ModelName": "ep-v2", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}])
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="ep-v2")
    seed.wait_status(sm, "ep", statuses=("InService",))
    import time

    deadline = time.time() + 10
    while not sm.describe_endpoint(EndpointName="ep").get("FailureReason") and time.time() < deadline:
        time.sleep(0.05)
    v = verify(aws, "ep", image=image)
    assert not v.passed  # the crash image is not what runs
    assert any(n.startswith("The last update failed") for n in v.notes)


def test_verify_cli_pass_and_fail_exit_codes(sandbox, sm, ecr, capsys, tmp_path):
    deploy(sm, ecr)
    payload = tmp_path / "request.json"
    payload.write_text('{"prompt": "a lighthouse"}')
    code, out, err = run_cli(capsys, "verify", "ep", "--payload", str(payload))
    assert code == 0, err
    assert out.splitlines()[0].startswith("PASS  ep (us-east-1)")
    deploy(sm, ecr, name="bad", behavior="invoke-error", tag="v2")
    code, out, _ = run_cli(capsys, "verify", "bad", "-o", "json")
    doc = json.loads(out)
    assert code == 1 and doc["result"] == "FAIL"
    assert [c["name"] for c in doc["checks"]] == ["status", "invocation", "logs"]
    assert doc["reasons"] and "Received server error (500)" in doc["reasons"][0]


@pytest.mark.parametrize("args, message", [
    (["verify", "ep", "--image", "my-image:latest"], "'my-image:latest' is not an ECR image URI."),
    (["verify", "bad_name"], "is not a SageMaker endpoint name"),
    (["verify", "nope"], "Endpoint 'nope' does not exist in us-east-1."),
])
def test_verify_bad_input_is_one_line_exit_2_and_no_invocation(sandbox, capsys, args, message):
    code, out, err = run_cli(capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err.splitlines()[0] and "Traceback" not in err


def test_without_log_permissions_the_logs_check_is_skipped_not_failed(aws, sm, ecr, sandbox):
    deploy(sm, ecr)
    sandbox.app.faults.add({
        "service": "logs", "operation": "DescribeLogStreams", "fail_next": 1, "status": 400,
        "error_code": "AccessDeniedException",
        "message": "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: logs:DescribeLogStreams"})
    v = verify(aws, "ep")
    assert v.passed
    assert by_name(v)["logs"].ok is None and "logs:DescribeLogStreams" in by_name(v)["logs"].detail
