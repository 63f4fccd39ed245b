"""SageMaker Runtime in the sandbox through boto3: InvokeEndpoint (who served, errors for missing or
not-ready endpoints), InvokeEndpointAsync (S3 output or failure, SNS notifications seen through a
subscribed SQS queue) and an async endpoint at 0 instances brought back by its backlog."""

from __future__ import annotations

import json

import pytest

from support.sandbox import config, endpoint, error_of, model, settle, wait_for

BUCKET = "async-bucket"


@pytest.fixture
def rt(clients):
    return clients.client("sagemaker-runtime")


def test_invoke_names_image_digest_variant_and_instance(sm, ecr, rt):
    _, digest = endpoint(sm, ecr, count=2)
    instances = set()
    for _ in range(30):
        out = rt.invoke_endpoint(EndpointName="ep", Body=b'{"prompt": "a cat"}', ContentType="application/json")
        body = json.loads(out["Body"].read())
        assert out["InvokedProductionVariant"] == body["variant"] == "AllTraffic"
        assert (body["digest"], body["config"], body["model"], body["input_bytes"]) == (digest, "ep-c-v1", "ep-m-v1", 19)
        assert body["image"].endswith("/sd:v1")
        instances.add(body["instance"])
    assert len(instances) == 2 and all(i.startswith("i-") for i in instances)


@pytest.mark.parametrize("case", ["missing", "creating", "failed"])
def test_invoke_errors_for_missing_or_not_ready_endpoints(sandbox, sm, ecr, rt, case):
    if case == "creating":
        sandbox.app.clock.time_scale = 2.0
        endpoint(sm, ecr, wait=False)
    elif case == "failed":
        endpoint(sm, ecr, behavior="crash")
    err = error_of(rt.invoke_endpoint, EndpointName="ep", Body=b"{}")
    assert (err["Code"], err["Status"]) == ("ValidationError", 400)
    assert err["Message"] == "Endpoint ep of account 123456789012 not found."


def test_invoke_while_deleting_is_refused(sm, ecr, rt):
    endpoint(sm, ecr)
    sm.delete_endpoint(EndpointName="ep")
    assert error_of(rt.invoke_endpoint, EndpointName="ep", Body=b"{}")["Code"] == "ValidationError"


def test_invoke_an_unknown_target_variant(sm, ecr, rt):
    endpoint(sm, ecr)
    err = error_of(rt.invoke_endpoint, EndpointName="ep", Body=b"{}", TargetVariant="Nope")
    assert err["Code"] == "ValidationError" and "Nope" in err["Message"]


# -- asynchronous inference ("Check prediction results", async-inference-check-predictions.html) --------------

@pytest.fixture
def async_world(clients):
    """Bucket with an input object, success/error topics, one SQS queue subscribed to both."""
    s3, sns, sqs = clients.client("s3"), clients.client("sns"), clients.client("sqs")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="in/request.json", Body=b'{"prompt": "a lighthouse"}')
    success = sns.create_topic(Name="success")["TopicArn"]
    failure = sns.create_topic(Name="error")["TopicArn"]
    queue = sqs.create_queue(QueueName="notifications")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for topic in (success, failure):
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return {"s3": s3, "sqs": sqs, "queue": queue, "success": success, "error": failure}


TEST_NOTIFICATION = {"eventVersion": "1.0", "eventSource": "aws:sagemaker", "eventName": "TestNotification"}


def _async_config(world, **notification) -> dict:
    return {"ClientConfig": {"MaxConcurrentInvocationsPerInstance": 1},
            "OutputConfig": {"S3OutputPath": f"s3://{BUCKET}/out/", "S3FailurePath": f"s3://{BUCKET}/failed/",
                             "NotificationConfig": {"SuccessTopic": world["success"], "ErrorTopic": world["error"],
                                                    **notification}}}


def _async_endpoint(sm, ecr, world, behavior="healthy", count=1, **notification):
    model(sm, ecr, "m", behavior=behavior)
    config(sm, "c", "m", count=count, AsyncInferenceConfig=_async_config(world, **notification))
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    # CreateEndpoint sends a test notification to each topic (async-inference-create-endpoint-create-endpoint.html).
    assert _test_notifications(world) == 2
    return settle(sm, "ep")


def _test_notifications(world) -> int:
    """How many test notifications (one per topic) arrived; the queue then holds none of them."""
    found = wait_for(lambda: _notifications(world, keep_tests=True))
    assert all(e == TEST_NOTIFICATION for e in found), found
    return len(found) + len(_notifications(world, keep_tests=True))


def _object(s3, key):
    try:
        return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None


def _notifications(world, keep_tests: bool = False):
    """The notifications in the queue (received and deleted)."""
    sqs, queue = world["sqs"], world["queue"]
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    for m in messages:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    events = [json.loads(json.loads(m["Body"])["Message"]) for m in messages]
    return events if keep_tests else [e for e in events if e != TEST_NOTIFICATION]


def test_async_result_lands_in_s3_and_success_topic(sm, ecr, rt, async_world):
    _async_endpoint(sm, ecr, async_world)
    out = rt.invoke_endpoint_async(EndpointName="ep", InputLocation=f"s3://{BUCKET}/in/request.json",
                                   InferenceId="req-1", ContentType="application/json")
    assert out["InferenceId"] == "req-1"
    assert out["OutputLocation"] == f"s3://{BUCKET}/out/req-1.out"
    assert out["FailureLocation"] == f"s3://{BUCKET}/failed/req-1-error.out"
    result = wait_for(lambda: _object(async_world["s3"], "out/req-1.out"))
    assert result, "the result is written under S3OutputPath"
    body = json.loads(result)
    assert (body["inference_id"], body["variant"], body["input_bytes"]) == ("req-1", "AllTraffic", 26)
    events = wait_for(lambda: _notifications(async_world))
    assert [(e["invocationStatus"], e["inferenceId"]) for e in events] == [("Completed", "req-1")]
    assert events[0]["responseParameters"]["outputLocation"] == out["OutputLocation"]
    assert events[0]["requestParameters"]["endpointName"] == "ep"
    assert _object(async_world["s3"], "failed/req-1-error.out") is None


@pytest.mark.parametrize("behavior,input_key", [("invoke-error", "in/request.json"), ("healthy", "in/missing.json")])
def test_async_failure_lands_in_the_failure_path_and_error_topic(sm, ecr, rt, async_world, behavior, input_key):
    _async_endpoint(sm, ecr, async_world, behavior=behavior)
    rt.invoke_endpoint_async(EndpointName="ep", InputLocation=f"s3://{BUCKET}/{input_key}", InferenceId="req-2")
    failure = wait_for(lambda: _object(async_world["s3"], "failed/req-2-error.out"))
    assert failure, "the error is written under S3FailurePath"
    events = wait_for(lambda: _notifications(async_world))
    assert [(e["invocationStatus"], e["inferenceId"]) for e in events] == [("Failed", "req-2")]
    assert events[0]["failureReason"] == failure.decode()
    assert _object(async_world["s3"], "out/req-2.out") is None


def test_async_invocation_of_a_real_time_endpoint_is_refused(sm, ecr, rt):
    endpoint(sm, ecr)
    err = error_of(rt.invoke_endpoint_async, EndpointName="ep", InputLocation="s3://b/k")
    assert err["Code"] == "ValidationError" and "not configured for asynchronous inference" in err["Message"]


def test_async_endpoint_at_zero_instances_scales_back_on_backlog(sm, ecr, rt, clients, async_world):
    from byoc.sandbox import seed

    _async_endpoint(sm, ecr, async_world)
    seed.register_autoscaling(clients.client("application-autoscaling"), "ep", min_capacity=0, max_capacity=1,
                              is_async=True, variant="AllTraffic")
    sm.update_endpoint_weights_and_capacities(EndpointName="ep", DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": 0}])
    d = settle(sm, "ep")
    variant = d["ProductionVariants"][0]
    assert (variant["DesiredInstanceCount"], variant["CurrentInstanceCount"]) == (0, 0)
    rt.invoke_endpoint_async(EndpointName="ep", InputLocation=f"s3://{BUCKET}/in/request.json", InferenceId="late")
    assert wait_for(lambda: _object(async_world["s3"], "out/late.out")), "processed once an instance is back"
    variant = sm.describe_endpoint(EndpointName="ep")["ProductionVariants"][0]
    assert (variant["DesiredInstanceCount"], variant["CurrentInstanceCount"]) == (1, 1)


def test_update_and_capacity_changes_send_the_test_notification_again(sm, ecr, async_world):
    _async_endpoint(sm, ecr, async_world)
    model(sm, ecr, "m2")
    config(sm, "c2", "m2", AsyncInferenceConfig=_async_config(async_world))
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="c2")
    assert _test_notifications(async_world) == 2
    settle(sm, "ep")
    sm.update_endpoint_weights_and_capacities(EndpointName="ep", DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": 2}])
    assert _test_notifications(async_world) == 2


@pytest.mark.parametrize("include,in_success,in_error", [
    (["SUCCESS_NOTIFICATION_TOPIC"], True, False),
    (["ERROR_NOTIFICATION_TOPIC"], False, True),
    ([], False, False),
])
def test_include_inference_response_in_chooses_the_notifications_that_carry_it(sm, ecr, rt, async_world, include,
                                                                                in_success, in_error):
    _async_endpoint(sm, ecr, async_world, IncludeInferenceResponseIn=include)
    rt.invoke_endpoint_async(EndpointName="ep", InputLocation=f"s3://{BUCKET}/in/request.json", InferenceId="ok")
    rt.invoke_endpoint_async(EndpointName="ep", InputLocation=f"s3://{BUCKET}/in/missing.json", InferenceId="bad")
    events = {}
    wait_for(lambda: events.update({e["inferenceId"]: e for e in _notifications(async_world)}) or len(events) == 2)
    assert ("responseBody" in events["ok"], "responseBody" in events["bad"]) == (in_success, in_error)
    if in_success:
        assert json.loads(events["ok"]["responseBody"]["content"])["inference_id"] == "ok"
    if in_error:
        assert events["bad"]["responseBody"]["content"] == events["bad"]["failureReason"]


def test_a_request_queued_past_its_ttl_expires_with_a_failure_notification_and_object(sm, ecr, rt, async_world):
    _async_endpoint(sm, ecr, async_world)
    sm.update_endpoint_weights_and_capacities(EndpointName="ep", DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": 0}])  # no instance, no autoscaling: it waits
    _test_notifications(async_world)
    settle(sm, "ep")
    rt.invoke_endpoint_async(EndpointName="ep", InputLocation=f"s3://{BUCKET}/in/request.json", InferenceId="old",
                             RequestTTLSeconds=60)
    failure = wait_for(lambda: _object(async_world["s3"], "failed/old-error.out"))
    assert failure and b"expired" in failure
    events = wait_for(lambda: _notifications(async_world))
    assert [(e["invocationStatus"], e["inferenceId"]) for e in events] == [("Failed", "old")]
    assert events[0]["failureReason"] == failure.decode()
    assert _object(async_world["s3"], "out/old.out") is None


@pytest.mark.parametrize("ttl", [59, 21601])
def test_request_ttl_out_of_range_is_refused(sandbox, sm, ecr, async_world, ttl):
    import boto3
    from botocore.config import Config

    _async_endpoint(sm, ecr, async_world)
    unchecked = boto3.client("sagemaker-runtime", region_name="us-east-1", endpoint_url=sandbox.url,
                             aws_access_key_id="testing", aws_secret_access_key="testing",
                             config=Config(parameter_validation=False))  # as a client without botocore's checks
    err = error_of(unchecked.invoke_endpoint_async, EndpointName="ep", InputLocation=f"s3://{BUCKET}/in/request.json",
                   RequestTTLSeconds=ttl)
    assert err["Code"] == "ValidationError" and "requestTTLSeconds" in err["Message"]
