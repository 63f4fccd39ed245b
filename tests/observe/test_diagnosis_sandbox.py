"""`byoc diagnose` end to end against the sandbox: every failing behaviour it offers is named
first, with its evidence, and the console link closes the report."""

from __future__ import annotations

import json
import time

import pytest

from byoc.aws.client import Aws
from byoc.cli.main import main
from byoc.observe.diagnose import diagnose
from byoc.sandbox import seed

ROLE = "arn:aws:iam::123456789012:role/ESD-createEndpoint-Role"


def deploy(sm, ecr, name, behavior="healthy", architecture=None, instance_type="ml.g5.xlarge", wait=True):
    image, _ = seed.push_image(ecr, "sd", name, behavior, architecture)
    sm.create_model(ModelName=f"{name}-model", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})
    sm.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=[{
        "VariantName": "prod", "ModelName": f"{name}-model", "InstanceType": instance_type,
        "InitialInstanceCount": 1, "ContainerStartupHealthCheckTimeoutInSeconds": 120}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
    return seed.wait_status(sm, name) if wait else None


@pytest.fixture
def aws(sandbox):
    return Aws(region="us-east-1")


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.mark.parametrize(
    "behavior, architecture, instance_type, cause, evidence",
    [
        ("crash", None, "ml.g5.xlarge", "python-import", "ModuleNotFoundError: No module named 'xformers'"),
        ("wrong-port", None, "ml.g5.xlarge", "wrong-port", "http://127.0.0.1:8000"),
        ("oom", None, "ml.g5.xlarge", "cuda-oom", "torch.cuda.OutOfMemoryError: CUDA out of memory"),
        ("missing-env=ESD_VERSION", None, "ml.g5.xlarge", "missing-env", "ESD_VERSION is not set"),
        ("healthy", "arm64", "ml.g5.xlarge", "exec-format", "exec format error"),
        ("healthy", None, "ml.c7g.xlarge", "exec-format", "exec format error"),
        ("slow-start=900", None, "ml.g5.xlarge", "startup-timeout", "was still writing start-up lines"),
    ],
)
def test_diagnose_names_the_cause_first(aws, sm, ecr, behavior, architecture, instance_type, cause, evidence):
    assert deploy(sm, ecr, "ep", behavior, architecture, instance_type)["EndpointStatus"] == "Failed"
    d = diagnose(aws, "ep")
    assert d.status == "Failed" and "ping health check" in d.failure_reason
    assert d.findings[0].id == cause, [f.id for f in d.findings]
    assert evidence in str(d.findings[0].evidence[0])
    assert "ping-health-check" in [f.id for f in d.findings[1:]]  # the symptom comes after the cause
    assert d.explained


def test_log_evidence_carries_time_and_stream(aws, sm, ecr):
    deploy(sm, ecr, "ep", "crash")
    top = diagnose(aws, "ep").findings[0].evidence[0]
    assert top.source == "log" and top.stream.startswith("prod/i-") and top.timestamp > 0
    assert str(top).startswith(time.strftime("%Y-", time.gmtime(top.timestamp / 1000)))


def test_exec_format_fix_names_the_instance_platform(aws, sm, ecr):
    deploy(sm, ecr, "ep", "healthy", "arm64", "ml.g5.xlarge")
    arm_on_x86 = diagnose(aws, "ep").findings[0]
    assert "linux/amd64" in arm_on_x86.fix and "ml.g5.xlarge (amd64)" in arm_on_x86.cause


def test_ping_timeout_is_the_symptom_with_the_lines_that_matter(aws, sm, ecr):
    deploy(sm, ecr, "ep", "ping-timeout")
    d = diagnose(aws, "ep")
    assert [f.id for f in d.findings] == ["ping-health-check"]
    assert not d.explained and d.show_key_lines
    last = [k.message for k in d.key_lines if k.why == "last"]
    assert "Compiling UNet with torch.compile, this can take a while ..." in last


def test_healthy_endpoint_has_no_findings(aws, sm, ecr):
    assert deploy(sm, ecr, "ep")["EndpointStatus"] == "InService"
    d = diagnose(aws, "ep")
    assert d.findings == [] and d.failure_reason is None and d.events_read > 0
    assert not d.show_key_lines  # nothing is wrong: no excerpt to read


def test_failed_update_is_diagnosed_from_its_start(aws, sm, ecr):
    deploy(sm, ecr, "ep")
    started = int(time.time() * 1000)
    image, _ = seed.push_image(ecr, "sd", "v2", "oom")
    sm.create_model(ModelName="ep-model-v2", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})
    sm.create_endpoint_config(EndpointConfigName="ep-config-v2", ProductionVariants=[{
        "VariantName": "prod", "ModelName": "ep-model-v2", "InstanceType": "ml.g5.xlarge",
        "InitialInstanceCount": 1, "ContainerStartupHealthCheckTimeoutInSeconds": 120}])
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="ep-config-v2")
    time.sleep(0.05)
    rolled_back = seed.wait_status(sm, "ep")
    assert rolled_back["EndpointStatus"] == "InService" and rolled_back["FailureReason"]
    d = diagnose(aws, "ep", since=started)
    assert d.findings[0].id == "cuda-oom"
    assert len(d.streams) == 2  # the serving fleet and the failed one


def test_image_gone_before_the_deployment(aws, sm, ecr):
    image, _ = seed.push_image(ecr, "sd", "v1", "healthy")
    sm.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})
    ecr.batch_delete_image(repositoryName="sd", imageIds=[{"imageTag": "v1"}])
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
        {"VariantName": "prod", "ModelName": "m", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    seed.wait_status(sm, "ep")
    d = diagnose(aws, "ep")
    ids = [f.id for f in d.findings]
    assert ids[0] == "image-not-found" and "no-logs" in ids and "ecr-pull-denied" not in ids
    assert d.facts["log_group"] == "missing" and "ImageNotFoundException" in d.facts["ecr_image"]


def test_diagnose_cli_text_ends_with_the_console_link(sandbox, sm, ecr, capsys):
    deploy(sm, ecr, "ep", "wrong-port")
    code, out, err = run_cli(capsys, "diagnose", "ep")
    assert code == 0, err
    assert "1. [critical] The server listens on 127.0.0.1:8000" in out
    assert "fix: Start the server on 0.0.0.0:8080" in out
    assert out.rstrip().splitlines()[-1] == (
        "CloudWatch console: https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
        "#logsV2:log-groups$3FlogGroupNameFilter$3Dep")


def test_diagnose_cli_json(sandbox, sm, ecr, capsys):
    deploy(sm, ecr, "ep", "crash")
    code, out, _ = run_cli(capsys, "diagnose", "ep", "-o", "json", "--since", "1h")
    doc = json.loads(out)
    assert code == 0 and doc["status"] == "Failed"
    assert [f["id"] for f in doc["findings"]][:2] == ["python-import", "ping-health-check"]
    assert set(doc["findings"][0]) == {"id", "title", "severity", "symptom", "cause", "fix", "count", "evidence"}
    assert doc["findings"][0]["evidence"][0]["stream"].startswith("prod/i-")
    assert doc["console_url"].endswith("logGroupNameFilter$3Dep") and doc["logs"]["events_read"] > 0


def test_console_link_uses_the_china_console(sandbox, monkeypatch, capsys):
    region = "cn-north-1"
    for key, value in sandbox.env(region).items():
        monkeypatch.setenv(key, value)
    clients = seed.session(sandbox.url, region=region)
    sm, ecr = clients.client("sagemaker"), clients.client("ecr")
    image, _ = seed.push_image(ecr, "sd", "v1", "crash", region=region)
    sm.create_model(ModelName="m", ExecutionRoleArn=seed.execution_role(clients.client("iam")),
                    PrimaryContainer={"Image": image})
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
        {"VariantName": "prod", "ModelName": "m", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    seed.wait_status(sm, "ep")
    d = diagnose(Aws(region=region), "ep")
    assert d.console_url.startswith("https://cn-north-1.console.amazonaws.cn/cloudwatch/home?region=cn-north-1#")
    assert d.findings[0].id == "python-import"


@pytest.mark.parametrize("args, message", [
    (["diagnose", "ep", "--since", "yesterday"], "--since 'yesterday' is neither a duration nor a time."),
    (["diagnose", "no_such endpoint"], "is not a SageMaker endpoint name"),
    (["diagnose", "missing-endpoint"], "Endpoint 'missing-endpoint' does not exist in us-east-1."),
])
def test_diagnose_cli_bad_input_is_one_line_and_exit_2(sandbox, capsys, args, message):
    code, out, err = run_cli(capsys, *args)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: ") and message in lines[0]
    assert lines[1].startswith("  fix: ") and "Traceback" not in err


def test_without_log_permissions_the_failure_reason_is_still_diagnosed(aws, sandbox, sm, ecr):
    deploy(sm, ecr, "ep", "crash")
    sandbox.app.faults.add({
        "service": "logs", "operation": "DescribeLogStreams", "fail_next": 1, "status": 400,
        "error_code": "AccessDeniedException",
        "message": "User: arn:aws:iam::123456789012:user/reader is not authorized to perform: "
                   "logs:DescribeLogStreams on resource: arn:aws:logs:us-east-1:123456789012:log-group:"
                   "/aws/sagemaker/Endpoints/ep:log-stream:"})
    d = diagnose(aws, "ep")
    assert [f.id for f in d.findings] == ["ping-health-check"]
    assert d.notes[0].startswith("Logs not read: Permission denied: logs:DescribeLogStreams")
