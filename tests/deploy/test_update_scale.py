"""An update costs the same in a busy region (issue 11): no region scans, the sweep's promise about
revisions other endpoints use, and SageMaker's own quota refusal turned into exit 2.

Call counts are ceilings, loose on purpose: they catch a return to O(region), not a request more."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from byoc.aws.client import Aws
from byoc.deploy import sweep
from byoc.deploy.apply import apply
from byoc.deploy.plan import plan_update
from byoc.sandbox import seed
from support.sandbox import ROLE, control, endpoint, endpoints
from support.update import error_lines, resources, run, run_json

EP = "infer-endpoint-abc1234"


@pytest.fixture(autouse=True)
def _same_clock(monkeypatch):
    """The sandbox's timestamps come from one clock: no margin, so that endpoints made seconds before
    the update are outside the sweep's window, as those of a real region are (minutes, days)."""
    monkeypatch.setattr(sweep, "CLOCK_MARGIN", sweep.CLOCK_MARGIN * 0)


def _others(sm, ecr, n: int, prefix: str = "other") -> list:
    """`n` InService endpoints sharing one model and config (cheap to make, as many as wanted)."""
    image, _ = seed.push_image(ecr, "others", "v1", "healthy")
    sm.create_model(ModelName=f"{prefix}-m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})
    sm.create_endpoint_config(EndpointConfigName=f"{prefix}-c", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": f"{prefix}-m", "InstanceType": "ml.m5.large",
         "InitialInstanceCount": 1}])
    names = [f"{prefix}-{i:02d}" for i in range(n)]
    for name in names:
        sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{prefix}-c")
    for name in names:
        seed.wait_status(sm, name)
    # botocore sends ListEndpoints' LastModifiedTimeAfter in whole seconds (the sweep's window is
    # that much wider, which is safe): endpoints modified in the same second as a candidate's creation
    # would count as recent. Those of a real region changed minutes or days before.
    time.sleep(1.05 - time.time() % 1)
    return names


def _update(image: str, keep: int = 5) -> tuple:
    """(result, calls by operation) of one update through the library, every request counted."""
    aws = Aws()
    result = apply(aws, plan_update(aws, EP, image), keep=keep, follow_logs=False)
    return result, Counter(aws.calls)


def _reads_of_others(calls: Counter) -> int:
    return calls["sagemaker:DescribeEndpoint"] + calls["sagemaker:DescribeEndpointConfig"] + \
        calls["sagemaker:DescribeModel"]


def _three_updates(ecr) -> list:
    images = [seed.push_image(ecr, "sd", f"r{n}", "healthy")[0] for n in range(1, 4)]
    return [_update(image, keep=1) for image in images]


def quota_pages(sm) -> int:
    """The pages of one listing of SageMaker's quotas (the sandbox lists every hosting type, as AWS
    does, so one read is several pages)."""
    import boto3

    client = boto3.client("service-quotas", endpoint_url=sm.meta.endpoint_url, region_name=sm.meta.region_name,
                          aws_access_key_id="x", aws_secret_access_key="x")
    return sum(1 for _ in client.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker"))


def test_an_update_beside_many_endpoints_costs_what_it_costs_alone(sandbox, sm, ecr):
    endpoint(sm, ecr, EP)
    alone = _three_updates(ecr)
    sandbox.reset()
    seed.execution_role(seed.session(sandbox.url).client("iam"))  # the reset emptied IAM too
    _others(sm, ecr, 30)
    endpoint(sm, ecr, EP)
    beside = _three_updates(ecr)
    for result, calls in alone + beside:
        assert result.result == "updated"
        assert sum(calls.values()) <= 45, calls  # polls included
        assert calls["sagemaker:ListEndpoints"] <= 1, calls
    assert [bool(r.swept) for r, _ in beside] == [False, True, True]  # the sweep ran; it did not give up
    polls = "sagemaker:DescribeEndpoint"
    worst_alone = max(sum(c.values()) - c[polls] for _, c in alone)
    worst_beside = max(sum(c.values()) - c[polls] for _, c in beside)
    assert worst_beside <= worst_alone + 2, (alone, beside)
    assert max(_reads_of_others(c) - c[polls] for _, c in beside) <= 4


def test_a_revision_another_endpoint_uses_is_never_swept(sandbox, sm, ecr):
    endpoint(sm, ecr, EP)
    images = [seed.push_image(ecr, "sd", f"r{n}", "healthy")[0] for n in range(1, 5)]
    assert _update(images[0], keep=5)[0].result == "updated"  # revision 1
    assert _update(images[1], keep=5)[0].result == "updated"  # revision 2
    r1_config, r1_model = "infer-config-abc1234-r1", "infer-model-abc1234-r1"
    r2_config, r2_model = "infer-config-abc1234-r2", "infer-model-abc1234-r2"
    assert {r1_model, r2_model} <= resources(sm)[0] and {r1_config, r2_config} <= resources(sm)[1]
    # Deliberately: one endpoint runs EP's revision 1 config, another a config of its own on EP's revision 2 model.
    sm.create_endpoint(EndpointName="borrows-config", EndpointConfigName=r1_config)
    sm.create_endpoint_config(EndpointConfigName="borrows-model-c", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": r2_model, "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="borrows-model", EndpointConfigName="borrows-model-c")
    for name in ("borrows-config", "borrows-model"):
        seed.wait_status(sm, name)
    result, calls = _update(images[2], keep=1)  # revision 3: revisions 1 and 2 are beyond --keep 1
    assert result.result == "updated"
    models, configs = resources(sm)
    assert r1_config in configs and r1_model in models  # used by borrows-config
    assert r2_model in models  # used by borrows-model
    assert r2_config not in configs and r2_config in result.swept  # used by nobody: swept
    assert calls["sagemaker:ListEndpoints"] == 1


def test_the_sweep_defers_what_it_cannot_check_cheaply(sandbox, sm, ecr, monkeypatch):
    endpoint(sm, ecr, EP)
    images = [seed.push_image(ecr, "sd", f"r{n}", "healthy")[0] for n in range(1, 4)]
    assert _update(images[0])[0].result == "updated"
    _others(sm, ecr, 3)  # changed after revision 1 was made: they could use it
    monkeypatch.setattr(sweep, "MAX_RECENT", 2)
    before = resources(sm)
    result, calls = _update(images[1], keep=1)
    assert result.result == "updated" and result.swept == []
    assert resources(sm)[1] >= before[1]  # nothing deleted
    assert calls["sagemaker:DescribeEndpoint"] < 15  # it did not describe the others to find out
    monkeypatch.setattr(sweep, "MAX_RECENT", 20)
    result, _ = _update(images[2], keep=1)  # three others are few enough to check: both old revisions go
    assert sorted(result.swept) == ["infer-config-abc1234-r1", "infer-config-abc1234-r2", "infer-model-abc1234-r1",
                                    "infer-model-abc1234-r2"]


def test_quota_refusal_is_sagemakers_and_changes_nothing(sandbox, sm, ecr, capsys):
    endpoint(sm, ecr, EP, count=2, instance_type="ml.g5.2xlarge")
    endpoint(sm, ecr, "neighbour", count=1, instance_type="ml.g5.2xlarge")
    control(sandbox, "POST", "/_sandbox/quotas", {"instance_type": "ml.g5.2xlarge", "value": 4})
    image, _ = seed.push_image(ecr, "sd", "v2", "healthy")
    before, tags = resources(sm), sm.list_tags(ResourceArn=sm.describe_endpoint(EndpointName=EP)["EndpointArn"])
    made = []
    original = Aws.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    Aws.__init__ = init
    try:
        code, _, err = run(capsys, "update", EP, image, "--yes")
    finally:
        Aws.__init__ = original
    assert code == 2, err
    assert len(error_lines(err)) == 2
    assert "needs 2 more" in err and "quota 'ml.g5.2xlarge for endpoint usage' is 4 and 3 are in use (1 free)" in err
    assert "SageMaker refused the update; nothing was changed" in err
    assert "--rolling 1:600" in err and "--strategy recreate" in err and "request-service-quota-increase" in err
    assert resources(sm) == before  # the new model and config were deleted
    after = sm.list_tags(ResourceArn=sm.describe_endpoint(EndpointName=EP)["EndpointArn"])
    assert after["Tags"] == tags["Tags"]  # no lock, no attempt recorded
    calls = Counter()
    for aws in made:
        calls.update(aws.calls)
    assert calls["servicequotas:ListServiceQuotas"] == quota_pages(sm)  # one read
    # No count of the account's instances: one look at endpoints changed since the new revision was made,
    # before deleting it (the neighbour, made seconds ago, is one of them).
    assert calls["sagemaker:ListEndpoints"] == 1 and calls["sagemaker:DescribeEndpoint"] <= 2
    code, doc, err = run_json(capsys, "update", EP, image, "--yes", "--rolling", "1:0")
    assert code == 0 and doc["result"] == "updated", err


def test_a_plan_that_can_never_fit_is_refused_before_anything(sandbox, sm, ecr, capsys):
    endpoint(sm, ecr, EP, count=3, instance_type="ml.g5.2xlarge")
    control(sandbox, "POST", "/_sandbox/quotas", {"instance_type": "ml.g5.2xlarge", "value": 2})
    image, _ = seed.push_image(ecr, "sd", "v2", "healthy")
    before = resources(sm)
    code, _, err = run(capsys, "update", EP, image, "--yes")
    assert code == 2 and "needs 3 instance(s) and the quota 'ml.g5.2xlarge for endpoint usage' is 2" in err
    assert resources(sm) == before
    code, doc, _ = run_json(capsys, "update", EP, image, "--dry-run", "--rolling", "1:0")
    assert code == 0 and doc["plan"]["quotas"] == {"ml.g5.2xlarge": 2}


def test_a_fleet_plans_with_one_read_of_what_all_plans_share(sandbox, sm, ecr):
    from byoc.deploy import fleet

    names = endpoints(sm, ecr, [f"team-{i}" for i in range(6)])
    image, _ = seed.push_image(ecr, "sd", "v2", "healthy")
    aws = Aws()
    run = fleet.plan(aws, image, names, concurrency=3)
    assert run.summary() == {"planned": 6}
    calls = aws.calls
    assert calls["sts:GetCallerIdentity"] == 1 and calls["servicequotas:ListServiceQuotas"] == quota_pages(sm)
    assert calls["ecr:BatchGetImage"] == 1 and calls["ecr:DescribeImages"] == 0
    assert calls["sagemaker:ListEndpoints"] == 0  # no count of the region's instances
    assert sum(calls.values()) <= 3 + 8 * len(names)  # each plan reads its own endpoint, config, model, tags
    # Only the endpoint's own tags: the model's and config's are read when their copies are created, so
    # a fleet's plans (all made before any change) do not queue for SageMaker's ListTags rate.
    assert calls["sagemaker:ListTags"] == len(names)


def test_a_fleets_watches_share_one_listing_of_what_is_updating(sandbox, sm, ecr):
    from byoc.deploy import fleet

    _others(sm, ecr, 30)
    names = endpoints(sm, ecr, [f"team-{i}" for i in range(6)])
    image, _ = seed.push_image(ecr, "sd", "v2", "healthy")
    aws = Aws()
    planned = fleet.plan(aws, image, names, concurrency=3)
    described = aws.calls["sagemaker:DescribeEndpoint"]
    fleet.run(aws, planned, concurrency=3)
    assert planned.summary() == {"updated": 6}
    calls = aws.calls
    # One DescribeEndpoint each once SageMaker is done (plus a spare), not one per poll; the shared
    # ListEndpoints lists what is Updating, never the region's 30 others (one page each).
    assert calls["sagemaker:DescribeEndpoint"] - described <= 2 * len(names), calls
    assert 0 < calls["sagemaker:ListEndpoints"] <= 10 * len(names), calls


def test_the_quota_is_one_get_once_its_code_is_known(sandbox, sm, ecr, capsys):
    endpoint(sm, ecr, EP)
    images = [seed.push_image(ecr, "sd", f"r{n}", "healthy")[0] for n in range(1, 4)]
    first = _update(images[0])[1]
    assert first["servicequotas:ListServiceQuotas"] == quota_pages(sm) and first["servicequotas:GetServiceQuota"] == 0
    second = _update(images[1])[1]  # a new run: the codes the first one listed are on disk
    assert second["servicequotas:ListServiceQuotas"] == 0 and second["servicequotas:GetServiceQuota"] == 1
    code, doc, err = run_json(capsys, "update", EP, images[2], "--dry-run")
    assert code == 0 and doc["plan"]["quotas"] == {"ml.g5.xlarge": 100}, err  # the value, as listed
    from byoc.deploy import capacity

    cache = capacity.codes_file()
    data = json.loads(cache.read_text())
    key = next(iter(data))
    data[key]["ml.g5.xlarge"] = "L-MOVED"  # a code that no longer names the quota: listed again
    cache.write_text(json.dumps(data))
    third = _update(images[2])[1]
    assert third["servicequotas:GetServiceQuota"] == 1 and third["servicequotas:ListServiceQuotas"] == quota_pages(sm)
    assert json.loads(cache.read_text())[key]["ml.g5.xlarge"] != "L-MOVED"


def test_a_fleet_reads_each_quota_once_when_its_code_is_known(sandbox, sm, ecr):
    from byoc.deploy import capacity, fleet

    names = endpoints(sm, ecr, [f"team-{i}" for i in range(4)])
    capacity.quotas(Aws())  # an earlier run listed the codes
    image, _ = seed.push_image(ecr, "sd", "v2", "healthy")
    aws = Aws()
    run = fleet.plan(aws, image, names, concurrency=2)  # its plans and its concurrency check
    assert run.summary() == {"planned": 4}
    assert aws.calls["servicequotas:ListServiceQuotas"] == 0 and aws.calls["servicequotas:GetServiceQuota"] == 1
