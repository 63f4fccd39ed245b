"""SageMaker lifecycle in the sandbox, through boto3: create, update (good and failing), delete."""

from __future__ import annotations

import threading
import time

import pytest
from botocore.exceptions import ClientError

from byoc.sandbox import seed

ROLE = "arn:aws:iam::123456789012:role/ESD-createEndpoint-Role"


def make_endpoint(sm, ecr, name="ep", behavior="healthy", instance_type="ml.g5.xlarge", count=1, tag="v1", **variant):
    image, digest = seed.push_image(ecr, "sd", tag, behavior)
    sm.create_model(ModelName=f"{name}-m-{tag}", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})
    sm.create_endpoint_config(
        EndpointConfigName=f"{name}-c-{tag}",
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": f"{name}-m-{tag}", "InstanceType": instance_type,
                             "InitialInstanceCount": count, **variant}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c-{tag}")
    return image, digest


def new_config(sm, ecr, name, tag, behavior, instance_type="ml.g5.xlarge", count=1, architecture=None):
    image, digest = seed.push_image(ecr, "sd", tag, behavior, architecture)
    sm.create_model(ModelName=f"{name}-m-{tag}", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})
    sm.create_endpoint_config(
        EndpointConfigName=f"{name}-c-{tag}",
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": f"{name}-m-{tag}", "InstanceType": instance_type,
                             "InitialInstanceCount": count}])
    return f"{name}-c-{tag}", digest


def test_create_reaches_in_service_with_deployed_image_digest(sandbox, sm, ecr):
    sandbox.app.clock.time_scale = 0.5  # slow enough to observe the Creating state
    image, digest = make_endpoint(sm, ecr)
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Creating"
    d = seed.wait_status(sm, "ep")
    assert d["EndpointStatus"] == "InService"
    variant = d["ProductionVariants"][0]
    assert variant["DeployedImages"][0]["SpecifiedImage"] == image
    assert variant["DeployedImages"][0]["ResolvedImage"].endswith("/sd@" + digest)
    assert variant["CurrentInstanceCount"] == 1


@pytest.mark.parametrize("behavior", ["crash", "ping-timeout", "wrong-port", "oom", "missing-env=ESD_VERSION"])
def test_failing_image_on_create_leaves_failed_endpoint_with_reason(sm, ecr, clients, behavior):
    make_endpoint(sm, ecr, behavior=behavior, ContainerStartupHealthCheckTimeoutInSeconds=120)
    d = seed.wait_status(sm, "ep")
    assert d["EndpointStatus"] == "Failed"
    assert d["FailureReason"] == ("The primary container for production variant AllTraffic did not pass the ping "
                                  "health check. Please check CloudWatch logs for this endpoint.")
    logs = clients.client("logs")
    stream = logs.describe_log_streams(logGroupName="/aws/sagemaker/Endpoints/ep")["logStreams"][0]["logStreamName"]
    assert stream.startswith("AllTraffic/i-")
    text = "\n".join(e["message"] for e in logs.get_log_events(
        logGroupName="/aws/sagemaker/Endpoints/ep", logStreamName=stream)["events"])
    expected = {"crash": "ModuleNotFoundError: No module named", "ping-timeout": "Loading model weights",
                "wrong-port": "http://127.0.0.1:8000", "oom": "CUDA out of memory",
                "missing-env=ESD_VERSION": "ESD_VERSION is not set"}[behavior]
    assert expected in text


def test_arm64_image_on_x86_instance_fails_with_exec_format_error(sm, ecr, clients):
    make_endpoint(sm, ecr)
    seed.wait_status(sm, "ep")
    cfg, _ = new_config(sm, ecr, "ep", "arm", "healthy", architecture="arm64")
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg)
    d = seed.wait_status(sm, "ep", statuses=("InService",))
    assert d["EndpointConfigName"] == "ep-c-v1"
    assert "did not pass the ping health check" in d.get("FailureReason", "")
    logs = clients.client("logs")
    events = logs.filter_log_events(logGroupName="/aws/sagemaker/Endpoints/ep", filterPattern='"exec format error"')
    assert events["events"], "the arm64 instance logs exec format error"


def test_arm64_image_runs_on_graviton(sm, ecr):
    image, _ = seed.push_image(ecr, "sd", "arm", "healthy", "arm64")
    sm.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
        {"VariantName": "v", "ModelName": "m", "InstanceType": "ml.c7g.xlarge", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    assert seed.wait_status(sm, "ep")["EndpointStatus"] == "InService"


def _invoke_continuously(clients, name, stop, results):
    rt = clients.client("sagemaker-runtime")
    while not stop.is_set():
        try:
            body = rt.invoke_endpoint(EndpointName=name, Body=b"{}", ContentType="application/json")["Body"].read()
            results.append(("ok", body))
        except ClientError as exc:
            results.append(("error", exc.response["Error"]["Code"]))


@pytest.mark.parametrize("behavior", ["healthy", "crash", "ping-timeout", "oom", "slow-start=900"])
def test_update_keeps_serving_and_returns_to_previous_config_on_failure(sandbox, sm, ecr, clients, behavior):
    _, old_digest = make_endpoint(sm, ecr, count=2)
    seed.wait_status(sm, "ep")
    sandbox.app.clock.time_scale = 0.3  # the Updating state lasts long enough to be observed
    cfg, new_digest = new_config(sm, ecr, "ep", "v2", behavior, count=2)
    stop, results = threading.Event(), []
    worker = threading.Thread(target=_invoke_continuously, args=(clients, "ep", stop, results))
    worker.start()
    try:
        time.sleep(0.05)
        sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg, RetainAllVariantProperties=True)
        d = sm.describe_endpoint(EndpointName="ep")
        assert d["EndpointStatus"] == "Updating"
        assert d["PendingDeploymentSummary"]["EndpointConfigName"] == cfg
        with pytest.raises(ClientError, match="Cannot update in-progress endpoint"):
            sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg)
        d = seed.wait_status(sm, "ep", statuses=("InService", "Failed"))
        time.sleep(0.1)
    finally:
        stop.set()
        worker.join()
    assert d["EndpointStatus"] == "InService"
    errors = [r for r in results if r[0] == "error"]
    assert not errors and len(results) > 10
    served = {b'"digest": "%s"' % dg.encode() for dg in (old_digest, new_digest)}
    bodies = [r[1] for r in results]
    if behavior == "healthy":
        assert d["EndpointConfigName"] == cfg and "FailureReason" not in d
        assert any(b'"digest": "%s"' % new_digest.encode() in b for b in bodies[-3:])
    else:
        assert d["EndpointConfigName"] == "ep-c-v1"
        assert "did not pass the ping health check" in d["FailureReason"]
        assert all(b'"digest": "%s"' % old_digest.encode() in b for b in bodies)
    assert all(any(s in b for s in served) for b in bodies)


def test_retain_all_variant_properties_keeps_current_instance_count(sandbox, sm, ecr):
    make_endpoint(sm, ecr, count=1)
    seed.wait_status(sm, "ep")
    sandbox.app.clock.time_scale = 0.5  # slow enough to observe the Updating state
    sm.update_endpoint_weights_and_capacities(
        EndpointName="ep", DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 3}])
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Updating"
    sandbox.app.clock.time_scale = 0.05
    d = seed.wait_status(sm, "ep", statuses=("InService",))
    deadline = time.time() + 5
    while d["ProductionVariants"][0]["CurrentInstanceCount"] != 3 and time.time() < deadline:
        d = sm.describe_endpoint(EndpointName="ep")
    assert d["ProductionVariants"][0]["DesiredInstanceCount"] == 3
    cfg, _ = new_config(sm, ecr, "ep", "v2", "healthy", count=1)
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg, RetainAllVariantProperties=True)
    d = seed.wait_status(sm, "ep")
    assert d["ProductionVariants"][0]["DesiredInstanceCount"] == 3
    cfg3, _ = new_config(sm, ecr, "ep", "v3", "healthy", count=1)
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg3)
    d = seed.wait_status(sm, "ep", statuses=("InService",))
    assert seed.wait_status(sm, "ep")["ProductionVariants"][0]["DesiredInstanceCount"] == 1


def test_failed_endpoint_cannot_be_updated_and_delete_removes_it(sandbox, sm, ecr):
    make_endpoint(sm, ecr, behavior="crash")
    seed.wait_status(sm, "ep")
    with pytest.raises(ClientError, match="Cannot update failed endpoint"):
        sm.update_endpoint(EndpointName="ep", EndpointConfigName="ep-c-v1")
    sandbox.app.clock.time_scale = 1.0  # slow enough to observe the Deleting state
    sm.delete_endpoint(EndpointName="ep")
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Deleting"
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            sm.describe_endpoint(EndpointName="ep")
        except ClientError as exc:
            assert "Could not find endpoint" in str(exc)
            break
        time.sleep(0.02)
    else:
        pytest.fail("endpoint was not deleted")


def test_delete_in_progress_is_refused(sandbox, sm, ecr):
    sandbox.app.clock.time_scale = 2.0  # Creating lasts seconds; the test does not wait for it
    make_endpoint(sm, ecr)
    with pytest.raises(ClientError, match="Cannot update in-progress endpoint"):
        sm.delete_endpoint(EndpointName="ep")


def test_delete_of_a_serving_endpoint_stops_its_instances_and_keeps_its_logs(sm, ecr, clients):
    make_endpoint(sm, ecr, count=2)
    seed.wait_status(sm, "ep")
    sm.delete_endpoint(EndpointName="ep")
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            sm.describe_endpoint(EndpointName="ep")
        except ClientError:
            break
        time.sleep(0.02)
    assert sm.list_endpoints()["Endpoints"] == []
    logs = clients.client("logs")
    group = "/aws/sagemaker/Endpoints/ep"
    names = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]]
    assert len(names) == 2
    for name in names:
        messages = [e["message"] for e in logs.get_log_events(logGroupName=group, logStreamName=name)["events"]]
        assert messages[-1] == "INFO:     Finished server process [1]"


def test_due_now_returns_once_what_it_made_due_has_run():
    import threading

    from byoc.sandbox.clock import Clock

    clock = Clock(threading.RLock(), time_scale=1.0)
    ran: list = []
    try:
        for n in range(3):
            clock.after(3600, lambda n=n: (time.sleep(0.05), ran.append(n)))  # an hour at scale 1: 36 s
        clock.due_now()
        assert ran == [0, 1, 2]
    finally:
        clock.stop()
