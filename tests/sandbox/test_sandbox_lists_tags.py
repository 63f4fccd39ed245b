"""ListEndpoints / ListModels / ListEndpointConfigs (NameContains, StatusEquals, SortBy, SortOrder,
pagination) and AddTags / ListTags / DeleteTags in the sandbox, through boto3."""

from __future__ import annotations

import time

import pytest

from support.sandbox import ARN_PREFIX, ROLE, config, error_of, model, settle


@pytest.fixture
def three_endpoints(sm, ecr):
    """alpha-1 (InService), beta-2 (Failed), alpha-3 (InService), created in that order."""
    model(sm, ecr, "good")
    model(sm, ecr, "bad", behavior="crash")
    config(sm, "good-c", "good")
    config(sm, "bad-c", "bad")
    for name, cfg in (("alpha-1", "good-c"), ("beta-2", "bad-c"), ("alpha-3", "good-c")):
        sm.create_endpoint(EndpointName=name, EndpointConfigName=cfg)
    for name in ("alpha-1", "beta-2", "alpha-3"):
        settle(sm, name)
    return ["alpha-1", "beta-2", "alpha-3"]


def _names(items, key):
    return [i[key] for i in items]


def test_list_endpoints_defaults_to_newest_first(sm, three_endpoints):
    out = sm.list_endpoints()
    assert _names(out["Endpoints"], "EndpointName") == ["alpha-3", "beta-2", "alpha-1"]
    assert {e["EndpointStatus"] for e in out["Endpoints"]} == {"InService", "Failed"}
    assert out["Endpoints"][0]["EndpointArn"] == f"{ARN_PREFIX}:endpoint/alpha-3"
    assert "NextToken" not in out


def test_list_endpoints_filters(sm, three_endpoints):
    assert _names(sm.list_endpoints(NameContains="alpha")["Endpoints"], "EndpointName") == ["alpha-3", "alpha-1"]
    assert _names(sm.list_endpoints(StatusEquals="Failed")["Endpoints"], "EndpointName") == ["beta-2"]
    assert sm.list_endpoints(NameContains="alpha", StatusEquals="Failed")["Endpoints"] == []


@pytest.mark.parametrize("sort_by,order,expected", [
    ("Name", "Ascending", ["alpha-1", "alpha-3", "beta-2"]),
    ("Name", "Descending", ["beta-2", "alpha-3", "alpha-1"]),
    ("CreationTime", "Ascending", ["alpha-1", "beta-2", "alpha-3"]),
    ("Status", "Ascending", ["beta-2", "alpha-1", "alpha-3"]),
])
def test_list_endpoints_sorting(sm, three_endpoints, sort_by, order, expected):
    out = sm.list_endpoints(SortBy=sort_by, SortOrder=order)
    assert _names(out["Endpoints"], "EndpointName") == expected


def test_list_endpoints_pages_with_next_token(sm, three_endpoints):
    first = sm.list_endpoints(MaxResults=2, SortBy="Name", SortOrder="Ascending")
    assert _names(first["Endpoints"], "EndpointName") == ["alpha-1", "alpha-3"]
    second = sm.list_endpoints(MaxResults=2, SortBy="Name", SortOrder="Ascending", NextToken=first["NextToken"])
    assert _names(second["Endpoints"], "EndpointName") == ["beta-2"]
    assert "NextToken" not in second
    pages = sm.get_paginator("list_endpoints").paginate(PaginationConfig={"PageSize": 1})
    assert sorted(e["EndpointName"] for page in pages for e in page["Endpoints"]) == sorted(three_endpoints)


def test_a_bad_next_token_is_refused(sm):
    err = error_of(sm.list_endpoints, NextToken="not-a-token")
    assert err["Code"] == "ValidationException"


def test_max_results_bounds_come_from_the_model(sm):
    err = error_of(sm.list_endpoints, MaxResults=101)
    assert "at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 100" \
        in err["Message"]


def test_list_models_and_configs(sm, ecr):
    for name in ("infer-model-a", "infer-model-b", "other-model"):
        model(sm, ecr, name)
    for name in ("infer-config-a", "infer-config-b"):
        config(sm, name, "infer-model-a")
    models = sm.list_models(NameContains="infer-model", SortBy="Name", SortOrder="Ascending")["Models"]
    assert _names(models, "ModelName") == ["infer-model-a", "infer-model-b"]
    assert models[0]["ModelArn"] == f"{ARN_PREFIX}:model/infer-model-a"
    assert _names(sm.list_models()["Models"], "ModelName") == ["other-model", "infer-model-b", "infer-model-a"]
    configs = sm.list_endpoint_configs(SortBy="Name", SortOrder="Descending")["EndpointConfigs"]
    assert _names(configs, "EndpointConfigName") == ["infer-config-b", "infer-config-a"]
    page = sm.list_models(MaxResults=2)
    rest = sm.list_models(MaxResults=2, NextToken=page["NextToken"])
    assert len(page["Models"]) == 2 and len(rest["Models"]) == 1
    paged = sm.get_paginator("list_endpoint_configs").paginate(PaginationConfig={"PageSize": 1})
    assert sorted(c["EndpointConfigName"] for p in paged for c in p["EndpointConfigs"]) == \
        ["infer-config-a", "infer-config-b"]


# -- tags --------------------------------------------------------------------------------------------

def test_tags_given_at_creation_are_listed(sm, ecr):
    image, _ = model(sm, ecr, "m")
    sm.create_model(ModelName="tagged", ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": image}, Tags=[{"Key": "solution", "Value": "esd"}])
    assert sm.list_tags(ResourceArn=f"{ARN_PREFIX}:model/tagged")["Tags"] == [{"Key": "solution", "Value": "esd"}]
    assert sm.list_tags(ResourceArn=f"{ARN_PREFIX}:model/m")["Tags"] == []


def test_add_overwrites_and_delete_removes_tags(sm, ecr):
    model(sm, ecr, "m")
    config(sm, "MixedCase-Config", "m")
    arn = sm.describe_endpoint_config(EndpointConfigName="MixedCase-Config")["EndpointConfigArn"]
    assert arn == f"{ARN_PREFIX}:endpoint-config/mixedcase-config"  # SageMaker ARNs are lower case
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "a", "Value": "changed"}])
    assert sorted((t["Key"], t["Value"]) for t in sm.list_tags(ResourceArn=arn)["Tags"]) == \
        [("a", "changed"), ("b", "2")]
    sm.delete_tags(ResourceArn=arn, TagKeys=["a", "not-there"])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "b", "Value": "2"}]


def test_endpoint_tags_and_limits(sm, ecr):
    model(sm, ecr, "m")
    config(sm, "c", "m")
    arn = sm.create_endpoint(EndpointName="ep", EndpointConfigName="c",
                             Tags=[{"Key": "solution", "Value": "esd"}])["EndpointArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(49)])
    assert len(sm.list_tags(ResourceArn=arn)["Tags"]) == 50
    err = error_of(sm.add_tags, ResourceArn=arn, Tags=[{"Key": "one-too-many", "Value": "v"}])
    assert err["Code"] == "ValidationException"
    assert len(sm.list_tags(ResourceArn=arn)["Tags"]) == 50


def test_tags_of_a_missing_resource(sm):
    err = error_of(sm.list_tags, ResourceArn=f"{ARN_PREFIX}:endpoint/nope")
    assert err["Code"] == "ValidationException" and "endpoint/nope" in err["Message"]
    err = error_of(sm.add_tags, ResourceArn=f"{ARN_PREFIX}:model/nope", Tags=[{"Key": "a", "Value": "b"}])
    assert err["Code"] == "ValidationException"


# -- the Resource Groups Tagging API: an index that follows SageMaker's tags late -------------------------------

def test_get_resources_follows_sagemaker_tags_late(sandbox, clients, sm, ecr):
    tagging = clients.client("resourcegroupstaggingapi")
    sandbox.app.clock.time_scale = 10.0  # the index's lag lasts seconds of real time
    model(sm, ecr, "plain")
    tagged = sm.create_model(ModelName="tagged", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": sm.describe_model(ModelName="plain")["PrimaryContainer"]["Image"]},
        Tags=[{"Key": "team", "Value": "a"}])["ModelArn"]
    plain = sm.describe_model(ModelName="plain")["ModelArn"]

    def listed():
        return {m["ResourceARN"]: {t["Key"]: t["Value"] for t in m["Tags"]}
                for m in tagging.get_resources(ResourceARNList=[tagged, plain])["ResourceTagMappingList"]}

    assert listed() == {}  # created moments ago: not in the index yet (and ListTags already has them)
    sandbox.app.clock.due_now()
    assert listed() == {tagged: {"team": "a"}}  # a resource never tagged is never listed
    sm.add_tags(ResourceArn=tagged, Tags=[{"Key": "team", "Value": "b"}])
    assert listed() == {tagged: {"team": "a"}}  # the old value, for a while
    sandbox.app.clock.due_now()
    assert listed() == {tagged: {"team": "b"}}
    sm.delete_model(ModelName="tagged")
    assert listed() == {tagged: {"team": "b"}}  # deleted resources stay listed even longer
    sandbox.app.clock.due_now()
    assert listed() == {}
    # Deleted, then made again under the same name: the index keeps the new one once the old one's
    # deletion reaches it (45 simulated minutes: 27 ms at this scale, in their real order).
    image = sm.describe_model(ModelName="plain")["PrimaryContainer"]["Image"]
    sandbox.app.clock.time_scale = 0.001
    for team in ("c", "d"):
        sm.create_model(ModelName="tagged", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image},
                        Tags=[{"Key": "team", "Value": team}])
        if team == "c":
            sm.delete_model(ModelName="tagged")
    time.sleep(0.3)
    assert listed() == {tagged: {"team": "d"}}


@pytest.mark.parametrize("extra", [{"TagFilters": [{"Key": "team"}]}, {"ResourceTypeFilters": ["sagemaker:model"]},
                                   {"ResourcesPerPage": 10}])
def test_get_resources_by_arn_takes_no_filter_or_paging(clients, extra):
    tagging = clients.client("resourcegroupstaggingapi")
    err = error_of(tagging.get_resources, ResourceARNList=[f"{ARN_PREFIX}:model/x"], **extra)
    assert err["Code"] == "InvalidParameterException"
    assert tagging.get_resources(ResourceARNList=[f"{ARN_PREFIX}:model/x"])["ResourceTagMappingList"] == []
