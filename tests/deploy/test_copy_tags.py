"""The tags a new revision copies from the live model and config: one Tagging API query per plan (per 100
resources for a fleet), ListTags for what its index does not list yet, and ListTags when it is denied."""

from __future__ import annotations

from byoc.aws.client import Aws
from byoc.deploy import apply, fleet, steps
from byoc.deploy.plan import plan_update
from byoc.sandbox import seed
from support.sandbox import add_fault, endpoint, endpoints


def _tags(sm, arn: str) -> dict:
    return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}


def _tag_live(sm, name: str, key: str, value: str) -> tuple:
    """Tag the endpoint's live model and config; returns their ARNs."""
    cfg = sm.describe_endpoint_config(EndpointConfigName=sm.describe_endpoint(EndpointName=name)["EndpointConfigName"])
    model = sm.describe_model(ModelName=cfg["ProductionVariants"][0]["ModelName"])
    for arn in (model["ModelArn"], cfg["EndpointConfigArn"]):
        sm.add_tags(ResourceArn=arn, Tags=[{"Key": key, "Value": value}])
    return model["ModelArn"], cfg["EndpointConfigArn"]


def _copies(plan) -> list:
    return [s for s in plan.steps if isinstance(s, (steps.CreateModel, steps.CreateEndpointConfig))]


def _updated(aws, plan, sm) -> tuple:
    result = apply.apply(aws, plan, wait=True, timeout=60, follow_logs=False)
    assert result.result == "updated", result.failure_reason
    new_cfg = sm.describe_endpoint_config(EndpointConfigName=plan.endpoint_config)
    new_model = sm.describe_model(ModelName=new_cfg["ProductionVariants"][0]["ModelName"])
    return _tags(sm, new_model["ModelArn"]), _tags(sm, new_cfg["EndpointConfigArn"])


def test_the_copied_tags_come_from_one_tag_query(sandbox, sm, ecr):
    endpoint(sm, ecr, "ep")
    _tag_live(sm, "ep", "team", "vision")
    sandbox.app.clock.due_now()  # the tag index has caught up
    image, _ = seed.push_image(ecr, "sd", "v2")
    aws = Aws()
    plan = plan_update(aws, "ep", image)
    assert aws.calls["tag:GetResources"] == 1
    assert [dict(s.their_tags)["team"] for s in _copies(plan)] == ["vision", "vision"]
    listed = aws.calls["sagemaker:ListTags"]
    model_tags, config_tags = _updated(aws, plan, sm)
    assert model_tags["team"] == config_tags["team"] == "vision"
    assert model_tags["byoc:revision"] == "1"
    assert aws.calls["sagemaker:ListTags"] - listed == 1  # the lock's read only: no ListTags per copy


def test_a_tag_the_index_does_not_list_yet_is_read_with_listtags(sandbox, sm, ecr):
    endpoint(sm, ecr, "ep")  # its model and config were never tagged: the index does not know them
    sandbox.app.clock.time_scale = 10.0  # the index learns of the next tags 6 real seconds from now ...
    _tag_live(sm, "ep", "team", "vision")
    sandbox.app.clock.time_scale = 0.05  # ... while the update runs at the tests' pace
    image, _ = seed.push_image(ecr, "sd", "v2")
    aws = Aws()
    plan = plan_update(aws, "ep", image)
    assert aws.calls["tag:GetResources"] == 1
    assert [s.their_tags for s in _copies(plan)] == [None, None]
    model_tags, config_tags = _updated(aws, plan, sm)
    assert model_tags["team"] == config_tags["team"] == "vision"


def test_without_tag_get_resources_the_tags_are_still_copied(sandbox, sm, ecr):
    endpoint(sm, ecr, "ep")
    _tag_live(sm, "ep", "team", "vision")
    sandbox.app.clock.due_now()
    add_fault(sandbox, service="tagging", operation="GetResources", fail_next=1, error_code="AccessDeniedException",
              status=400, message="User: arn:aws:iam::123456789012:user/dev is not authorized to perform: "
                                  "tag:GetResources because no identity-based policy allows the tag:GetResources action")
    image, _ = seed.push_image(ecr, "sd", "v2")
    aws = Aws()
    plan = plan_update(aws, "ep", image)
    assert [s.their_tags for s in _copies(plan)] == [None, None]
    model_tags, config_tags = _updated(aws, plan, sm)
    assert model_tags["team"] == config_tags["team"] == "vision"
    assert not plan.warnings


def test_a_fleet_reads_every_copied_resources_tags_in_one_query(sandbox, sm, ecr):
    names = endpoints(sm, ecr, [f"team-{i}" for i in range(4)])
    for name in names:
        _tag_live(sm, name, "team", name)
    sandbox.app.clock.due_now()
    image, _ = seed.push_image(ecr, "sd", "v2")
    aws = Aws()
    planned = fleet.plan(aws, image, names, concurrency=4)
    assert aws.calls["tag:GetResources"] == 1
    assert {i.endpoint: {dict(s.their_tags)["team"] for s in _copies(i.plan)} for i in planned.items} == \
        {n: {n} for n in names}
    fleet.run(aws, planned, concurrency=4)
    assert planned.summary() == {"updated": 4}
    assert aws.calls["sagemaker:ListTags"] == 2 * len(names)  # each plan's read of its endpoint, each lock's
    for name in names:
        cfg = sm.describe_endpoint_config(EndpointConfigName=sm.describe_endpoint(EndpointName=name)["EndpointConfigName"])
        assert _tags(sm, cfg["EndpointConfigArn"])["team"] == name
