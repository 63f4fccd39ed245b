"""Guarded rollouts (issue 7): traffic modes, alarm rollback, guardrail exclusions, capacity pre-flight."""

from __future__ import annotations

import threading

import pytest
from botocore.exceptions import ClientError

from byoc.deploy import guardrails
from byoc.errors import BadInput
from byoc.sandbox import seed
from support.sandbox import control, endpoint, wait_for
from support.update import error_lines, resources, run, run_json

IMAGE_TAG = "v2"


def _image(ecr, behavior="healthy", tag=IMAGE_TAG):
    uri, digest = seed.push_image(ecr, "custom", tag, behavior)
    return uri, digest


@pytest.mark.parametrize("spec,expected", [
    ("all-at-once", {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}),
    ("canary:10:300", {"Type": "CANARY", "WaitIntervalInSeconds": 300, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}}),
    ("linear:25:60", {"Type": "LINEAR", "WaitIntervalInSeconds": 60,
                      "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25}}),
])
def test_traffic_specs(spec, expected):
    assert guardrails.traffic(spec) == expected


def test_rolling_and_alarms_build_deployment_config():
    config = guardrails.deployment_config(None, "25%:120", ("latency", "errors"), 900)
    assert config == {
        "RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
                                "WaitIntervalInSeconds": 120, "MaximumExecutionTimeoutInSeconds": 900},
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "latency"}, {"AlarmName": "errors"}]}}
    assert guardrails.deployment_config() is None
    assert guardrails.batch_instances(config, 8) == 2
    assert guardrails.batch_instances(None, 8) == 8


@pytest.mark.parametrize("args", [("canary:0:10", None), ("canary:10:x", None), ("linear:10:4000", None),
                                  ("sideways:1:1", None), (None, "0:10"), (None, "150%:10"), ("canary:10:5", "1:5"),
                                  ("canary:51:10", None), ("linear:5:10", None), ("linear:60:10", None),
                                  (None, "4%:10"), (None, "75%:10"), ("canary:10:600", None, (), 600),
                                  ("linear:10:100", None, (), 900)])
def test_bad_specs_are_one_line_refusals(args):
    with pytest.raises(BadInput) as info:
        guardrails.deployment_config(*args)
    assert "\n" not in str(info.value) and info.value.fix


@pytest.mark.parametrize("mode", ["--traffic=all-at-once", "--traffic=canary:25:60", "--traffic=linear:50:30",
                                  "--rolling=1:30"])
def test_each_traffic_mode_reaches_in_service_on_new_image(sandbox, sm, ecr, capsys, mode):
    endpoint(sm, ecr, "ep", count=2)
    image, digest = _image(ecr)
    code, doc, err = run_json(capsys, "update", "ep", image, "--yes", mode)
    assert code == 0, err
    assert doc["result"] == "updated" and doc["digest"] == digest
    d = sm.describe_endpoint(EndpointName="ep")
    assert d["EndpointConfigName"] == doc["endpoint_config"]
    assert d["ProductionVariants"][0]["DeployedImages"][0]["ResolvedImage"].endswith(digest)
    kind = mode.split("=")[1].split(":")[0]
    policy = d["LastDeploymentConfig"]  # what SageMaker was asked to do
    if mode.startswith("--rolling"):
        assert policy["RollingUpdatePolicy"]["MaximumBatchSize"] == {"Type": "INSTANCE_COUNT", "Value": 1}
    else:
        routing = policy["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
        assert routing["Type"] == kind.upper().replace("-", "_")


def test_progress_shows_the_traffic_steps_sagemaker_reports():
    """A poll during baking prints SageMaker's own step (the sandbox's wording is checked against
    AWS's shape in tests/sandbox/test_sandbox_fidelity.py)."""
    from byoc.deploy import watch

    described = {"EndpointStatus": "Updating", "PendingDeploymentSummary": {
        "EndpointConfigName": "ep-r1", "ProductionVariants": [{"VariantStatus": [
            {"Status": "Baking", "StatusMessage": "Baking: 25% of traffic on the new fleet"}]}]}}
    assert watch.phase_text(described) == "Updating: Baking: 25% of traffic on the new fleet (ep-r1)"
    described["PendingDeploymentSummary"]["ProductionVariants"][0]["VariantStatus"] = [{"Status": "Creating"}]
    assert watch.phase_text(described) == "Updating: new fleet Creating: (ep-r1)"


def test_alarm_during_baking_rolls_back_with_zero_failed_invocations(sandbox, sm, ecr, clients, capsys):
    sandbox.app.clock.time_scale = 0.05
    _, old_digest = endpoint(sm, ecr, "ep", count=2)
    cw = clients.client("cloudwatch")
    cw.put_metric_alarm(AlarmName="p99-latency", MetricName="ModelLatency", Namespace="AWS/SageMaker",
                        Statistic="Average", Period=60, EvaluationPeriods=1, Threshold=1000,
                        ComparisonOperator="GreaterThanThreshold")
    image, _ = _image(ecr)
    rt = clients.client("sagemaker-runtime")
    stop, results = threading.Event(), []

    def invoke():
        while not stop.is_set():
            try:
                rt.invoke_endpoint(EndpointName="ep", Body=b"{}", ContentType="application/json")
                results.append("ok")
            except ClientError as exc:
                results.append(exc.response["Error"]["Code"])

    def fire():
        wait_for(lambda: "Baking" in str(sm.describe_endpoint(EndpointName="ep").get("PendingDeploymentSummary")),
                 timeout=30)
        cw.set_alarm_state(AlarmName="p99-latency", StateValue="ALARM", StateReason="test")

    workers = [threading.Thread(target=invoke), threading.Thread(target=fire)]
    for w in workers:
        w.start()
    try:
        code, doc, err = run_json(capsys, "update", "ep", image, "--yes", "--traffic", "canary:50:600",
                                  "--alarm", "p99-latency")
    finally:
        stop.set()
        for w in workers:
            w.join()
    assert code == 1, err
    assert doc["result"] == "failed" and "p99-latency" in doc["failure_reason"]
    d = sm.describe_endpoint(EndpointName="ep")
    assert d["EndpointConfigName"] == "ep-c-v1"
    assert d["ProductionVariants"][0]["DeployedImages"][0]["ResolvedImage"].endswith(old_digest)
    assert results and set(results) == {"ok"}


def test_exclusions_refused_in_preflight(sandbox, sm, ecr, capsys):
    from support.sandbox import config, model

    model(sm, ecr, "m1")
    model(sm, ecr, "m2")
    config(sm, "multi", "m1", extra_variants=({"VariantName": "B", "ModelName": "m2", "InstanceType": "ml.g5.xlarge",
                                               "InitialInstanceCount": 1},))
    sm.create_endpoint(EndpointName="multi", EndpointConfigName="multi")
    seed.wait_status(sm, "multi")
    image, _ = _image(ecr)
    before = resources(sm)
    code, _, err = run(capsys, "update", "multi", image, "--yes", "--rolling", "1:10")
    assert code == 2 and "multi-variant" in err
    code, _, err = run(capsys, "update", "multi", image, "--yes", "--traffic", "canary:10:10", "--alarm", "nope")
    assert code == 2 and "alarm(s) not found" in err and "nope" in err
    assert len(error_lines(err)) == 2
    assert resources(sm) == before


def test_guardrail_limits_refused_before_anything_changes(sandbox, sm, ecr, capsys):
    endpoint(sm, ecr, "ep", count=2)
    image, _ = _image(ecr)
    before = resources(sm)
    for args, words in ((["--rolling", "2:10"], "100% of AllTraffic's 2 instance(s)"),
                        (["--traffic", "canary:60:10"], "1..50% of the variant's capacity"),
                        (["--rolling", "1:600", "--max-time", "600"], "not larger than the deployment's own waits")):
        code, _, err = run(capsys, "update", "ep", image, "--yes", *args)
        assert code == 2 and words in err, err
        assert len(error_lines(err)) == 2
    assert resources(sm) == before
    assert sm.describe_endpoint(EndpointName="ep")["EndpointConfigName"] == "ep-c-v1"


def test_capacity_refusal_names_the_numbers(sandbox, sm, ecr, capsys):
    endpoint(sm, ecr, "ep", count=2, instance_type="ml.g5.2xlarge")
    endpoint(sm, ecr, "other", count=1, instance_type="ml.g5.2xlarge")
    control(sandbox, "POST", "/_sandbox/quotas", {"instance_type": "ml.g5.2xlarge", "value": 4})
    image, _ = _image(ecr)
    before = resources(sm)
    code, _, err = run(capsys, "update", "ep", image, "--yes")
    assert code == 2
    assert "needs 2 more" in err and "quota 'ml.g5.2xlarge for endpoint usage' is 4 and 3 are in use (1 free)" in err
    assert "--rolling 1:600" in err and "--strategy recreate" in err and "request-service-quota-increase" in err
    assert resources(sm) == before
    code, doc, err = run_json(capsys, "update", "ep", image, "--yes", "--rolling", "1:0")
    assert code == 0 and doc["result"] == "updated", err


def test_the_capacity_fix_names_a_batch_sagemaker_accepts(sandbox, sm, ecr, capsys):
    endpoint(sm, ecr, "ep", count=4, instance_type="ml.g5.2xlarge")
    control(sandbox, "POST", "/_sandbox/quotas", {"instance_type": "ml.g5.2xlarge", "value": 7})
    image, _ = _image(ecr)
    code, _, err = run(capsys, "update", "ep", image, "--yes")
    assert code == 2 and "(3 free)" in err, err
    assert "--rolling 2:600 (a batch of 2)" in err  # 3 would fit, but SageMaker takes at most 50% of 4
    code, _, err = run(capsys, "update", "ep", image, "--yes", "--rolling", "3:0")
    assert code == 2 and "SageMaker accepts 5..50%" in err
    code, doc, err = run_json(capsys, "update", "ep", image, "--yes", "--rolling", "2:0")
    assert code == 0 and doc["result"] == "updated", err


def test_sandbox_refuses_what_exceeds_the_quota(sandbox, sm, ecr):
    control(sandbox, "POST", "/_sandbox/quotas", {"instance_type": "ml.g5.xlarge", "value": 1})
    endpoint(sm, ecr, "ep", count=1)
    cfg = __import__("support.sandbox", fromlist=["revision"]).revision(sm, ecr, "ep", "v2")[0]
    with pytest.raises(ClientError) as info:
        sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg)
    assert info.value.response["Error"]["Code"] == "ResourceLimitExceeded"
    assert "'ml.g5.xlarge for endpoint usage' is 1 Instances" in info.value.response["Error"]["Message"]
