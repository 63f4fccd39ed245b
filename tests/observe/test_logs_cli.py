"""`byoc logs` from the command line against the sandbox: every --since form, clear errors,
stream prefixes, --last-update, --grep and JSON output."""

from __future__ import annotations

import json
import threading
import time

import pytest

from byoc.aws.client import Aws
from byoc.cli.main import main
from byoc.observe import logs
from byoc.sandbox import seed
from byoc.timespec import iso

ROLE = "arn:aws:iam::123456789012:role/ESD-createEndpoint-Role"


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return info.value.code, out, err


def deploy(sm, ecr, name="ep", behavior="healthy", tag="v1"):
    image, _ = seed.push_image(ecr, "sd", tag, behavior)
    sm.create_model(ModelName=f"{name}-{tag}", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})
    sm.create_endpoint_config(EndpointConfigName=f"{name}-{tag}", ProductionVariants=[{
        "VariantName": "prod", "ModelName": f"{name}-{tag}", "InstanceType": "ml.g5.xlarge",
        "InitialInstanceCount": 1}])
    return f"{name}-{tag}"


@pytest.fixture
def endpoint(sandbox, sm, ecr):
    config = deploy(sm, ecr)
    sm.create_endpoint(EndpointName="ep", EndpointConfigName=config)
    seed.wait_status(sm, "ep")
    return "ep"


@pytest.mark.parametrize("since", ["30s", "10m", "2h", "3d", "1w", "1h30m", "iso", "date"])
def test_every_since_form_is_accepted(endpoint, capsys, since):
    now = int(time.time() * 1000)
    value = {"iso": iso(now - 600_000), "date": time.strftime("%Y-%m-%d", time.gmtime())}.get(since, since)
    code, out, err = run_cli(capsys, "logs", endpoint, "--since", value)
    assert code == 0, err
    assert "Uvicorn running on http://0.0.0.0:8080" in out


def test_lines_carry_time_and_stream(endpoint, capsys):
    code, out, _ = run_cli(capsys, "logs", endpoint)
    first = out.splitlines()[0]
    stamp, stream, rest = first.split(" ", 2)
    assert stamp.endswith("Z") and stamp[10] == "T" and stream.startswith("prod/i-") and rest.startswith("| ")


@pytest.mark.parametrize("args, message", [
    (["--since", "yesterday"], "--since 'yesterday' is neither a duration nor a time."),
    (["--until", "10 minutes"], "--until '10 minutes' is neither a duration nor a time."),
    (["--since", "1h", "--until", "2h"], "is not after --since"),
    (["--follow", "--until", "1m"], "--until cannot be used with --follow."),
])
def test_bad_window_is_one_line_and_exit_2(sandbox, capsys, args, message):
    code, out, err = run_cli(capsys, "logs", "ep", *args)
    assert code == 2 and out == ""
    first, fix = err.strip().splitlines()
    assert first.startswith("error: ") and message in first and fix.startswith("  fix: ")


def test_missing_group_explains_why(sandbox, capsys):
    code, _, err = run_cli(capsys, "logs", "never-deployed")
    assert code == 2
    assert "log group /aws/sagemaker/Endpoints/never-deployed does not exist" in err
    assert "the endpoint does not exist in us-east-1" in err


def test_json_document_and_grep(endpoint, capsys):
    code, out, _ = run_cli(capsys, "logs", endpoint, "-o", "json", "--grep", "Uvicorn")
    doc = json.loads(out)
    assert code == 0 and doc["log_group"] == "/aws/sagemaker/Endpoints/ep"
    assert [e["message"] for e in doc["events"]] == ["INFO:     Uvicorn running on http://0.0.0.0:8080 (Press CTRL+C to quit)"]
    assert doc["events"][0]["stream"].startswith("prod/i-") and doc["events"][0]["time"].endswith("Z")


def test_variant_and_instance_options(endpoint, capsys, clients):
    stream = clients.client("logs").describe_log_streams(
        logGroupName="/aws/sagemaker/Endpoints/ep")["logStreams"][0]["logStreamName"]
    code, out, _ = run_cli(capsys, "logs", endpoint, "--variant", "prod", "-o", "json")
    assert {e["stream"] for e in json.loads(out)["events"]} == {stream}
    code, out, err = run_cli(capsys, "logs", endpoint, "--variant", "shadow", "-o", "json")
    assert code == 2 and "has no variant 'shadow'" in err  # a variant the endpoint lacks is bad input
    code, out, _ = run_cli(capsys, "logs", endpoint, "--instance", stream.split("/")[1], "-o", "json")
    assert {e["stream"] for e in json.loads(out)["events"]} == {stream}


def test_last_update_keeps_the_new_fleet(endpoint, sm, ecr, capsys):
    time.sleep(0.01)
    config = deploy(sm, ecr, tag="v2")
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=config)
    time.sleep(0.05)
    seed.wait_status(sm, "ep")
    code, out, _ = run_cli(capsys, "logs", endpoint, "--last-update", "-o", "json")
    doc = json.loads(out)
    streams = {e["stream"] for e in doc["events"]}
    assert code == 0 and len(streams) == 1
    code, out, _ = run_cli(capsys, "logs", endpoint, "-o", "json")
    assert len({e["stream"] for e in json.loads(out)["events"]}) == 2  # old and new fleet


def test_follow_with_last_update_skips_the_old_fleet(endpoint, sm, ecr, sandbox):
    aws = Aws(region="us-east-1")
    old_stream = aws.logs.describe_log_streams(logGroupName="/aws/sagemaker/Endpoints/ep")["logStreams"][0]
    time.sleep(0.01)
    config = deploy(sm, ecr, tag="v2")
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=config)
    time.sleep(0.05)
    seed.wait_status(sm, "ep")
    sel = logs.select(aws, "ep", last_update=True, follow=True)
    stop, seen = threading.Event(), []

    def reader():
        for event in logs.follow(aws, "ep", sel, stop, poll_seconds=0.05):
            seen.append(event)

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.5)
    stop.set()
    thread.join(timeout=5)
    streams = {e["logStreamName"] for e in seen}
    assert seen and old_stream["logStreamName"] not in streams and len(streams) == 1
