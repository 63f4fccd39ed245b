"""The sandbox through the AWS CLI, run as a subprocess with AWS_ENDPOINT_URL set (as a user would):
create / invoke / update (good and failing) / delete, refusals with AWS wording, lists and tags,
autoscaling rules, asynchronous inference and an injected fault."""

from __future__ import annotations

import json

import pytest

from byoc.sandbox import seed
from support.sandbox import (
    ARN_PREFIX,
    PING_FAILURE,
    ROLE,
    add_fault,
    aws,
    aws_json,
    endpoint,
    gone,
    settle,
    wait_for,
)

pytestmark = pytest.mark.cli
OCI = "application/vnd.oci.image.manifest.v1+json"


def _push(sandbox, repository, tag, behavior):
    """ECR PutImage through the CLI with a manifest carrying the sandbox behaviour annotation."""
    manifest = json.dumps(seed.manifest(behavior, seed=f"{repository}:{tag}"))
    out = aws_json(sandbox, "ecr", "put-image", "--repository-name", repository, "--image-tag", tag,
                   "--image-manifest", manifest, "--image-manifest-media-type", OCI)
    return f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{repository}:{tag}", out["image"]["imageId"]["imageDigest"]


def _revision(sandbox, tag, image, instance_type="ml.g5.xlarge"):
    aws_json(sandbox, "sagemaker", "create-model", "--model-name", f"m-{tag}", "--execution-role-arn", ROLE,
             "--primary-container", json.dumps({"Image": image}))
    variants = [{"VariantName": "AllTraffic", "ModelName": f"m-{tag}", "InstanceType": instance_type,
                 "InitialInstanceCount": 1}]
    aws_json(sandbox, "sagemaker", "create-endpoint-config", "--endpoint-config-name", f"c-{tag}",
             "--production-variants", json.dumps(variants))
    return f"c-{tag}"


def test_create_invoke_update_and_delete(sandbox, sm, tmp_path):
    aws_json(sandbox, "ecr", "create-repository", "--repository-name", "sd")
    good, good_digest = _push(sandbox, "sd", "v1", "healthy")
    bad, _ = _push(sandbox, "sd", "v2", "crash")
    c1 = _revision(sandbox, "v1", good)
    c2 = _revision(sandbox, "v2", bad)
    arn = aws_json(sandbox, "sagemaker", "create-endpoint", "--endpoint-name", "ep", "--endpoint-config-name", c1)
    assert arn == {"EndpointArn": f"{ARN_PREFIX}:endpoint/ep"}
    settle(sm, "ep")

    out_file = tmp_path / "out.json"
    invoked = aws_json(sandbox, "sagemaker-runtime", "invoke-endpoint", "--endpoint-name", "ep", "--body", "{}",
                       "--content-type", "application/json", str(out_file))
    assert invoked["InvokedProductionVariant"] == "AllTraffic"
    assert json.loads(out_file.read_text())["digest"] == good_digest

    aws_json(sandbox, "sagemaker", "update-endpoint", "--endpoint-name", "ep", "--endpoint-config-name", c2)
    settle(sm, "ep")
    described = aws_json(sandbox, "sagemaker", "describe-endpoint", "--endpoint-name", "ep")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", c1)
    assert described["FailureReason"] == PING_FAILURE.format(variant="AllTraffic")
    events = aws_json(sandbox, "logs", "filter-log-events", "--log-group-name", "/aws/sagemaker/Endpoints/ep",
                      "--filter-pattern", '"ModuleNotFoundError"')["events"]
    # the container crashed at each of its starts until the startup window (8 minutes) closed
    assert len(events) >= 2 and len({e["logStreamName"] for e in events}) == 1
    assert events[0]["logStreamName"].startswith("AllTraffic/i-")

    aws_json(sandbox, "sagemaker", "delete-endpoint", "--endpoint-name", "ep")
    assert wait_for(lambda: gone(sm, "ep"))
    missing = aws(sandbox, "sagemaker", "describe-endpoint", "--endpoint-name", "ep")
    assert missing.returncode != 0
    assert (f'An error occurred (ValidationException) when calling the DescribeEndpoint operation: Could not find '
            f'endpoint "{ARN_PREFIX}:endpoint/ep".') in missing.stderr
    assert "Traceback" not in missing.stderr


def test_refusals_carry_aws_wording(sandbox, sm, ecr):
    bad_name = aws(sandbox, "sagemaker", "create-endpoint", "--endpoint-name", "bad_name",
                   "--endpoint-config-name", "c")
    assert bad_name.returncode != 0
    assert ("Value 'bad_name' at 'endpointName' failed to satisfy constraint: Member must satisfy regular "
            "expression pattern") in bad_name.stderr
    endpoint(sm, ecr, behavior="crash")
    failed = aws(sandbox, "sagemaker", "update-endpoint", "--endpoint-name", "ep", "--endpoint-config-name", "ep-c-v1")
    assert failed.returncode != 0 and "Cannot update failed endpoint" in failed.stderr
    sandbox.app.clock.time_scale = 20.0  # the next endpoint stays Creating for the rest of the test
    endpoint(sm, ecr, "busy", wait=False)
    busy = aws(sandbox, "sagemaker", "delete-endpoint", "--endpoint-name", "busy")
    assert f'Cannot update in-progress endpoint "{ARN_PREFIX}:endpoint/busy".' in busy.stderr
    busy = aws(sandbox, "sagemaker", "update-endpoint", "--endpoint-name", "busy", "--endpoint-config-name", "busy-c-v1")
    assert f'Cannot update in-progress endpoint "{ARN_PREFIX}:endpoint/busy".' in busy.stderr
    missing_image = aws(sandbox, "sagemaker", "create-model", "--model-name", "m", "--execution-role-arn", ROLE,
                        "--primary-container", json.dumps({"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:y"}))
    assert "Requested image 123456789012.dkr.ecr.us-east-1.amazonaws.com/x:y not found." in missing_image.stderr


def test_lists_pagination_and_tags(sandbox, sm, ecr):
    for name in ("alpha-1", "beta-2", "alpha-3"):
        endpoint(sm, ecr, name)
    names = aws_json(sandbox, "sagemaker", "list-endpoints", "--name-contains", "alpha", "--sort-by", "Name",
                     "--sort-order", "Ascending", "--page-size", "1")
    assert [e["EndpointName"] for e in names["Endpoints"]] == ["alpha-1", "alpha-3"]
    first = aws_json(sandbox, "sagemaker", "list-endpoints", "--sort-by", "Name", "--max-items", "2")
    assert [e["EndpointName"] for e in first["Endpoints"]] == ["beta-2", "alpha-3"] and first["NextToken"]
    arn = f"{ARN_PREFIX}:endpoint/alpha-1"
    aws_json(sandbox, "sagemaker", "add-tags", "--resource-arn", arn, "--tags", "Key=team,Value=ml", "Key=env,Value=dev")
    aws_json(sandbox, "sagemaker", "delete-tags", "--resource-arn", arn, "--tag-keys", "env")
    assert aws_json(sandbox, "sagemaker", "list-tags", "--resource-arn", arn)["Tags"] == [{"Key": "team", "Value": "ml"}]


def test_autoscaling_rules(sandbox, sm, ecr):
    endpoint(sm, ecr)
    aws_json(sandbox, "application-autoscaling", "register-scalable-target", "--service-namespace", "sagemaker",
             "--resource-id", "endpoint/ep/variant/AllTraffic", "--scalable-dimension",
             "sagemaker:variant:DesiredInstanceCount", "--min-capacity", "0", "--max-capacity", "2")
    image, _ = _push(sandbox, "sd", "g6", "healthy")
    other_type = _revision(sandbox, "g6", image, instance_type="ml.g6.xlarge")
    refused = aws(sandbox, "sagemaker", "update-endpoint", "--endpoint-name", "ep", "--endpoint-config-name", other_type)
    assert refused.returncode != 0 and "DeregisterScalableTarget" in refused.stderr
    aws_json(sandbox, "sagemaker", "delete-endpoint", "--endpoint-name", "ep")
    targets = aws_json(sandbox, "application-autoscaling", "describe-scalable-targets", "--service-namespace",
                       "sagemaker")
    assert targets["ScalableTargets"] == []


def test_async_inference_and_an_injected_fault(sandbox, clients, tmp_path):
    deployment = seed.solution(clients, realtime_id=None)
    name, bucket = deployment["endpoints"][0], deployment["bucket"]
    clients.client("s3").put_object(Bucket=bucket, Key="in/req.json", Body=b'{"prompt": "a fox"}')
    queued = aws_json(sandbox, "sagemaker-runtime", "invoke-endpoint-async", "--endpoint-name", name,
                      "--input-location", f"s3://{bucket}/in/req.json", "--inference-id", "cli-1")
    assert queued["OutputLocation"] == f"s3://{bucket}/sagemaker_output/cli-1.out"
    s3 = clients.client("s3")

    def result():
        try:
            return s3.get_object(Bucket=bucket, Key="sagemaker_output/cli-1.out")["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None

    assert wait_for(result)
    copied = aws(sandbox, "s3", "cp", queued["OutputLocation"], str(tmp_path / "result.json"))
    assert copied.returncode == 0, copied.stderr
    assert json.loads((tmp_path / "result.json").read_text())["inference_id"] == "cli-1"

    add_fault(sandbox, service="sagemaker", operation="DescribeEndpoint", fail_next=1,
              error_code="ThrottlingException", status=400, message="Rate exceeded")
    throttled = aws(sandbox, "sagemaker", "describe-endpoint", "--endpoint-name", name, AWS_MAX_ATTEMPTS="1")
    assert throttled.returncode != 0 and "(ThrottlingException)" in throttled.stderr and "Rate exceeded" in throttled.stderr
