"""`byoc update --env/--instance-type` on the solution's async endpoint with autoscaling (min 0, max 2,
a target-tracking and a step policy whose CloudWatch alarm invokes it): the new environment and type
go live with no rejected request and autoscaling exactly as before; a crashing image leaves type,
environment and autoscaling as they were; a run killed between deregistering and registering is
finished by the next run; rollback restores the previous type and environment; history shows it."""

from __future__ import annotations

import threading

import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from byoc.sandbox import seed
from support.sandbox import add_fault, control
from support.update import (
    ASYNC_EP,
    autoscaling,
    deployment,
    finish,
    kill9,
    live,
    model_of,
    release_deployments,
    run,
    run_json,
    served_digest,
    spawn,
    tags_of,
    wait_for,
)

NEW_TYPE = "ml.g6.2xlarge"
OLD_TYPE = "ml.g5.2xlarge"
ALARM = f"{ASYNC_EP}-has-backlog-without-capacity"


@pytest.fixture
def dep(sandbox, clients):
    dep = deployment(clients)
    aas = clients.client("application-autoscaling")
    rid = seed.register_autoscaling(aas, ASYNC_EP, min_capacity=0, max_capacity=2, is_async=True)
    step = [p for p in aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=rid)["ScalingPolicies"]
            if p["PolicyType"] == "StepScaling"][0]
    clients.client("cloudwatch").put_metric_alarm(
        AlarmName=ALARM, Namespace="AWS/SageMaker", MetricName="HasBacklogWithoutCapacity",
        Dimensions=[{"Name": "EndpointName", "Value": ASYNC_EP}], Statistic="Average", Period=60,
        EvaluationPeriods=2, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
        AlarmActions=[step["PolicyARN"]])
    return dep


def state(sm, clients) -> dict:
    """What must be exactly as before (or exactly as asked): type, environment, autoscaling, alarm."""
    d = live(sm, ASYNC_EP)
    cfg = sm.describe_endpoint_config(EndpointConfigName=d["EndpointConfigName"])
    env = dict(model_of(sm, d["EndpointConfigName"])["PrimaryContainer"]["Environment"])
    env.pop("IMAGE_URL", None)
    aas = clients.client("application-autoscaling")
    step = [p["PolicyARN"] for p in aas.describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId=f"endpoint/{ASYNC_EP}/variant/prod")["ScalingPolicies"]
        if p["PolicyType"] == "StepScaling"]
    actions = clients.client("cloudwatch").describe_alarms(AlarmNames=[ALARM])["MetricAlarms"][0]["AlarmActions"]
    return {"status": d["EndpointStatus"], "type": cfg["ProductionVariants"][0]["InstanceType"], "env": env,
            "autoscaling": autoscaling(clients, ASYNC_EP), "alarm_invokes_step_policy": actions == step}


class AsyncInvoker:
    """InvokeEndpointAsync in a loop on a thread, each call tried once; counts calls and rejections."""

    def __init__(self, sandbox, clients, bucket: str):
        import boto3

        clients.client("s3").put_object(Bucket=bucket, Key="in/req.json", Body=b"{}")
        self.client = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                            region_name="us-east-1").client(
            "sagemaker-runtime", endpoint_url=sandbox.url, config=Config(retries={"total_max_attempts": 1}))
        self.location = f"s3://{bucket}/in/req.json"
        self.calls, self.rejected = 0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.calls += 1
            try:
                self.client.invoke_endpoint_async(EndpointName=ASYNC_EP, InputLocation=self.location)
            except (ClientError, BotoCoreError) as exc:
                self.rejected.append(str(exc))
            self._stop.wait(0.01)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)


def test_env_and_instance_type_go_live_with_autoscaling_exactly_as_before(sandbox, capsys, sm, clients, dep):
    before = state(sm, clients)
    assert before["type"] == OLD_TYPE and before["alarm_invokes_step_policy"]
    sandbox.app.clock.time_scale = 0.3  # the update lasts a few seconds: many requests land inside it
    with AsyncInvoker(sandbox, clients, dep["bucket"]) as inv:
        wait_for(lambda: inv.calls >= 10)
        code, out, err = run(capsys, "update", ASYNC_EP, dep["custom_image"], "--env", "FOO=1", "--env",
                             "HF_TOKEN=hf_secret_value", "--instance-type", NEW_TYPE, "--yes")
        after = inv.calls
        wait_for(lambda: inv.calls >= after + 10)
    assert code == 0, err
    assert out.startswith("updated: ")
    assert inv.rejected == [] and inv.calls > 20
    assert "hf_secret_value" not in out + err
    assert f"instance  prod: {OLD_TYPE} -> {NEW_TYPE}" in err
    assert "env       + FOO=1" in err and "env       + HF_TOKEN=****" in err
    assert "autoscaling prod: deregistered before the update (autoscaling is paused meanwhile)" in err
    assert "autoscaling registered again: prod (0..2 instances" in err
    now = state(sm, clients)
    assert now["type"] == NEW_TYPE
    assert now["env"] == {**before["env"], "FOO": "1", "HF_TOKEN": "hf_secret_value"}
    assert now["autoscaling"] == before["autoscaling"] and now["alarm_invokes_step_policy"]
    assert served_digest(sm, ASYNC_EP) == dep["custom_digest"]
    assert not [k for k in tags_of(sm, live(sm, ASYNC_EP)["EndpointArn"]) if k.startswith("byoc:autoscaling")]

    # history records the type and the environment change (names only for secrets); --diff shows it
    code, doc, _ = run_json(capsys, "history", ASYNC_EP)
    r1 = [r for r in doc["revisions"] if r["number"] == 1][0]
    assert r1["instance_types"] == f"prod={NEW_TYPE}"
    assert r1["env_changes"] == "FOO=1 HF_TOKEN"
    code, out, err = run(capsys, "history", ASYNC_EP, "--diff", "1")
    assert code == 0, err
    assert f"instance type  prod: {OLD_TYPE} -> {NEW_TYPE}" in out
    assert "+ FOO=1" in out and "+ HF_TOKEN=****" in out and "hf_secret_value" not in out

    # rollback returns exactly: type and environment, autoscaling as before
    code, out, err = run(capsys, "rollback", ASYNC_EP, "--dry-run")
    assert code == 0, err
    assert f"instance  prod: {NEW_TYPE} -> {OLD_TYPE}" in err
    assert "env       - FOO" in err and "env       - HF_TOKEN" in err
    assert "autoscaling prod: deregistered before the update" in err
    code, doc, err = run_json(capsys, "rollback", ASYNC_EP, "--yes", "-q")
    assert code == 0, err
    assert doc["endpoint_config"] == "infer-config-a1b2c3d"
    assert state(sm, clients) == before


def test_a_crashing_image_leaves_type_env_and_autoscaling_as_before(capsys, sm, clients, dep):
    before = state(sm, clients)
    code, doc, err = run_json(capsys, "update", ASYNC_EP, dep["broken_image"], "--env", "FOO=1",
                              "--instance-type", NEW_TYPE, "--yes", "-q")
    assert code == 1, err
    assert doc["result"] == "failed"
    assert state(sm, clients) == before
    assert not [k for k in tags_of(sm, live(sm, ASYNC_EP)["EndpointArn"]) if k.startswith("byoc:autoscaling")]


def test_a_refused_update_endpoint_registers_autoscaling_again(sandbox, capsys, sm, clients, dep):
    before = state(sm, clients)
    add_fault(sandbox, service="sagemaker", operation="UpdateEndpoint", fail_next=1, error_code="ValidationException",
              status=400, message="refused")
    code, _, err = run(capsys, "update", ASYNC_EP, dep["custom_image"], "--instance-type", NEW_TYPE, "--yes", "-q")
    assert code != 0
    assert state(sm, clients) == before


@pytest.mark.parametrize("phase", ["before-update", "during-deployment"])
def test_kill9_between_deregister_and_register_then_a_rerun_restores_autoscaling(sandbox, capsys, sm, clients, dep,
                                                                                phase):
    before = state(sm, clients)
    argv = ("update", ASYNC_EP, dep["custom_image"], "--env", "FOO=1", "--instance-type", NEW_TYPE, "--yes", "-q")
    if phase == "before-update":  # held inside UpdateEndpoint, after deregistering
        add_fault(sandbox, service="sagemaker", operation="UpdateEndpoint", latency_ms=60_000, fail_next=1)
    else:  # SageMaker is deploying the new type when the run dies
        sandbox.app.clock.time_scale = 50.0
    proc = spawn(sandbox, *argv)
    wait_for(lambda: autoscaling(clients, ASYNC_EP) == ([], []), timeout=60, proc=proc)
    if phase == "during-deployment":
        wait_for(lambda: sm.describe_endpoint(EndpointName=ASYNC_EP)["EndpointStatus"] == "Updating", proc=proc)
    kill9(proc)
    assert autoscaling(clients, ASYNC_EP) == ([], [])  # the interrupted run left it deregistered ...
    arn = sm.describe_endpoint(EndpointName=ASYNC_EP)["EndpointArn"]
    assert "byoc:autoscaling" in tags_of(sm, arn)  # ... with what it needs to restore it in the endpoint's tags
    assert "registers it again" in run_json(capsys, "status", ASYNC_EP)[1]["autoscaling_paused"]
    control(sandbox, "DELETE", "/_sandbox/faults")
    release_deployments(sandbox)
    code, out, err = finish(spawn(sandbox, *argv[:-1]))
    assert code == 0, err
    assert "registered again" in err
    now = state(sm, clients)
    assert now["autoscaling"] == before["autoscaling"] and now["alarm_invokes_step_policy"]
    assert now["type"] == NEW_TYPE and now["env"]["FOO"] == "1"
    assert not [k for k in tags_of(sm, arn) if k.startswith("byoc:autoscaling")]
    code, doc, _ = run_json(capsys, "history", ASYNC_EP)
    assert "registered again" in ([r for r in doc["revisions"] if r["number"] == 1][0]["note"] or "")
