"""Lossless copies: the model and endpoint config `byoc update` plans carry every field of the current
ones, only the image (and IMAGE_URL), the names and byoc's tags change.

Property-based over botocore's own shapes: CreateModel / CreateEndpointConfig requests are generated
from the service model (every member, or any subset), created in the sandbox (which validates them as
SageMaker does), put behind an endpoint, and `plan_update` must plan requests equal to the originals
but for the image, the names and the tags. Then the solution's real deployment field by field, and
multi-variant endpoints through a real update."""

from __future__ import annotations

import copy
import functools
import itertools
import re

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from byoc.aws.client import Aws
from byoc.aws.shapes import as_input
from byoc.deploy import steps
from byoc.deploy.plan import plan_update
from byoc.endpoint import revisions
from byoc.sandbox import seed
from byoc.sandbox.server import ACCOUNT
from support.update import deployment, live, model_of, run_json, served_digest

ROLE = f"arn:aws:iam::{ACCOUNT}:role/ESD-createEndpoint-Role"
MODEL_DATA = "s3://copy-models/model.tar.gz"
X86_TYPES = ["ml.g5.xlarge", "ml.g5.2xlarge", "ml.m5.large", "ml.c5.xlarge", "ml.p4d.24xlarge"]
_SAFE = st.characters(codec="ascii", min_codepoint=32, max_codepoint=126)
_names = itertools.count(1)


def _service():
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
        return True
    except re.error:
        return False


def from_shape(shape, every_member: bool, depth: int = 0):
    """A strategy for values of a botocore shape that satisfy its constraints (lengths, ranges,
    enums, patterns). `every_member` fills every optional member of every structure."""
    t, meta = shape.type_name, shape.metadata
    if t == "structure":
        members = {k: from_shape(v, every_member, depth + 1) for k, v in shape.members.items()}
        required = {k: s for k, s in members.items() if k in shape.required_members}
        optional = {k: s for k, s in members.items() if k not in shape.required_members}
        if every_member and depth < 8:
            return st.fixed_dictionaries({**required, **optional})
        return st.fixed_dictionaries(required, optional=optional)
    if t == "list":
        low, high = meta.get("min", 0), meta.get("max", 2)
        size = min(high, max(low, 2))
        return st.lists(from_shape(shape.member, every_member, depth + 1),
                        min_size=min(size, max(low, 1 if every_member else 0)), max_size=size)
    if t == "map":
        size = min(meta.get("max", 3), 3)
        return st.dictionaries(from_shape(shape.key, every_member, depth + 1),
                               from_shape(shape.value, every_member, depth + 1),
                               min_size=min(size, max(meta.get("min", 0), 1 if every_member else 0)), max_size=size)
    if t == "string":
        if shape.enum:
            return st.sampled_from(shape.enum)
        low, high = meta.get("min", 0), min(meta.get("max", 40), 80)
        pattern = meta.get("pattern")
        if pattern and _compiles(pattern):
            return st.from_regex(pattern, fullmatch=True, alphabet=_SAFE).filter(lambda s: low <= len(s) <= high)
        return st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-_"), min_size=max(low, 1),
                       max_size=max(low, min(high, 20)))
    if t in ("integer", "long"):
        low = meta.get("min", 0)
        return st.integers(min_value=low, max_value=meta.get("max", low + 1000))
    if t in ("float", "double"):
        return st.floats(min_value=meta.get("min", 0.0), max_value=100.0, allow_nan=False, allow_infinity=False)
    if t == "boolean":
        return st.booleans()
    raise AssertionError(f"no strategy for botocore type {t}")


@functools.cache
def request_of(operation: str, every_member: bool):
    return from_shape(_service().operation_model(operation).input_shape, every_member)


def requests(every_member: bool):
    """(CreateModel requests, CreateEndpointConfig request, solution names?, IMAGE_URL?)."""
    return st.tuples(st.lists(request_of("CreateModel", every_member), min_size=1, max_size=2),
                     request_of("CreateEndpointConfig", every_member), st.booleans(), st.booleans())


def _tags(tags: list) -> list:
    """User tags with distinct keys, none in the aws: or byoc: namespaces."""
    out = {}
    for t in tags or []:
        out["k-" + t["Key"][:100]] = t.get("Value", "")
    return [{"Key": k, "Value": v} for k, v in out.items()]


def fix_up(models: list, config: dict, image: str, solution_names: bool, image_url: bool) -> tuple:
    """Make generated requests refer to each other and to a real image, as a deployment would."""
    n = next(_names)
    endpoint = f"infer-endpoint-p{n}" if solution_names else f"sd-async-p{n}"
    for i, m in enumerate(models):
        m["ModelName"] = (f"infer-model-p{n}" if solution_names else f"sd-async-p{n}") + (f"-m{i}" if i else "")
        m["ExecutionRoleArn"] = ROLE
        m["Tags"] = _tags(m.get("Tags"))
        containers = [m["PrimaryContainer"]] if "PrimaryContainer" in m else m.get("Containers") or [{}]
        if "PrimaryContainer" in m:
            m.pop("Containers", None)
        else:
            m["Containers"] = containers
        for c in containers:
            c["Image"] = image
            if str(c.get("ModelDataUrl", "")).startswith("s3://"):
                c["ModelDataUrl"] = MODEL_DATA  # CreateModel reads it with the role, as SageMaker does
            c.pop("ModelPackageName", None)
            c.get("ImageConfig", {}).pop("RepositoryAuthConfig", None)
        if image_url:
            containers[0].setdefault("Environment", {})["IMAGE_URL"] = image
    config["EndpointConfigName"] = f"infer-config-p{n}" if solution_names else f"sd-async-p{n}"
    config["Tags"] = _tags(config.get("Tags"))
    for key in ("ProductionVariants", "ShadowProductionVariants"):
        for i, v in enumerate(config.get(key) or []):
            v["VariantName"] = f"{key[0].lower()}v{i}"
            v["ModelName"] = models[i % len(models)]["ModelName"]
            v["InstanceType"] = X86_TYPES[i % len(X86_TYPES)]
            v["InitialInstanceCount"] = 1
            v.pop("ServerlessConfig", None)
            v.pop("InstancePools", None)
    return endpoint, models, config


def swap_image(model: dict, old: str, new: str) -> dict:
    """What byoc's copy of `model` must be: the same, with `old` replaced by `new` where it ran."""
    out = copy.deepcopy(model)
    for c in ([out["PrimaryContainer"]] if "PrimaryContainer" in out else out.get("Containers", [])):
        if c.get("Image") == old:
            c["Image"] = new
            if "IMAGE_URL" in (c.get("Environment") or {}):
                c["Environment"]["IMAGE_URL"] = new
    return out


def without(request: dict, *keys: str) -> dict:
    """`request` less `keys` (and boto3's ResponseMetadata)."""
    return {k: v for k, v in request.items() if k not in keys and k != "ResponseMetadata"}


@pytest.fixture
def images(sandbox, ecr, clients):
    s3 = clients.client("s3")
    bucket, key = MODEL_DATA[len("s3://"):].split("/", 1)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=b"weights")
    old, _ = seed.push_image(ecr, "copy-src", "v1")
    new, digest = seed.push_image(ecr, "copy-dst", "v2")
    return old, new, digest


@pytest.fixture
def aws(sandbox):
    return Aws(region="us-east-1")


def _plan_of(aws, sm, models, config, endpoint, new_image):
    for m in models:
        sm.create_model(**m)
    sm.create_endpoint_config(**config)
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config["EndpointConfigName"])
    assert live(sm, endpoint)["EndpointStatus"] in ("InService", "Failed")
    # The recreate strategy plans the same copies and also accepts an endpoint that Failed.
    return plan_update(aws, endpoint, new_image, strategy="recreate")


def _created_tags(aws, plan, planned: dict) -> dict:
    """The tags a create step's request gets when it runs: byoc's, then its source's own, read then."""
    step = next(s for s in plan.steps if isinstance(s, (steps.CreateModel, steps.CreateEndpointConfig))
                and s.request == planned)
    return revisions.tags_dict(revisions.merge_tags(revisions.list_tags(aws, step.copy_tags_of), planned["Tags"]))


def _check_plan(aws, plan, models, config, endpoint, old, new_image, digest):
    target = new_image.rsplit(":", 1)[0] + "@" + digest
    used = list(dict.fromkeys(v["ModelName"] for v in config["ProductionVariants"]))
    expected_names, expected_config = revisions.names(endpoint, used, config["EndpointConfigName"], 1)
    assert plan.models == expected_names
    assert [m["ModelName"] for m in plan.create_models] == [expected_names[u] for u in used]
    by_name = {m["ModelName"]: m for m in models}
    for planned in plan.create_models:
        original = by_name[next(k for k, v in expected_names.items() if v == planned["ModelName"])]
        assert without(planned, "ModelName", "Tags") == without(swap_image(original, old, target), "ModelName", "Tags")
        assert len(planned["ModelName"]) <= 63
        tags = _created_tags(aws, plan, planned)
        assert {t["Key"]: t["Value"] for t in original["Tags"]}.items() <= tags.items()
        assert tags[revisions.T_DIGEST] == digest and tags[revisions.T_REVISION] == "1"
    planned = plan.create_config
    assert planned["EndpointConfigName"] == expected_config
    expected = copy.deepcopy(config)
    for v in expected["ProductionVariants"]:
        v["ModelName"] = expected_names[v["ModelName"]]
    assert without(planned, "EndpointConfigName", "Tags") == without(expected, "EndpointConfigName", "Tags")
    tags = _created_tags(aws, plan, planned)
    assert {t["Key"]: t["Value"] for t in config["Tags"]}.items() <= tags.items()
    assert tags[revisions.T_ENDPOINT] == endpoint


# Each example creates resources and an endpoint in the sandbox: few examples, no shrinking (a failure
# prints the whole generated request instead).
SANDBOX_EXAMPLES = dict(deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
                        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                               HealthCheck.filter_too_much, HealthCheck.data_too_large])


@settings(max_examples=5, **SANDBOX_EXAMPLES)
@given(requests(every_member=True))
def test_every_optional_member_is_carried_over(aws, sm, images, generated):
    old, new_image, digest = images
    models, config, solution_names, image_url = copy.deepcopy(generated)
    endpoint, models, config = fix_up(models, config, old, solution_names, image_url)
    plan = _plan_of(aws, sm, models, config, endpoint, new_image)
    _check_plan(aws, plan, models, config, endpoint, old, new_image, digest)


@settings(max_examples=10, **SANDBOX_EXAMPLES)
@given(requests(every_member=False))
def test_any_subset_of_members_is_carried_over(aws, sm, images, generated):
    old, new_image, digest = images
    models, config, solution_names, image_url = copy.deepcopy(generated)
    endpoint, models, config = fix_up(models, config, old, solution_names, image_url)
    plan = _plan_of(aws, sm, models, config, endpoint, new_image)
    _check_plan(aws, plan, models, config, endpoint, old, new_image, digest)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_as_input_keeps_every_input_member_and_drops_only_read_only_fields(data):
    """DescribeModel/DescribeEndpointConfig answers = the create request + read-only fields."""
    sm = _service()
    for create, describe, read_only in (("CreateModel", "DescribeModel", {"ModelArn", "CreationTime",
                                                                          "DeploymentRecommendation"}),
                                        ("CreateEndpointConfig", "DescribeEndpointConfig",
                                         {"EndpointConfigArn", "CreationTime"})):
        request = data.draw(request_of(create, data.draw(st.booleans())))
        output_members = set(sm.operation_model(describe).output_shape.members)
        assert read_only <= output_members
        described = {k: v for k, v in request.items() if k in output_members}
        described.update({k: "read-only" for k in read_only})
        assert as_input(create, described) == {k: v for k, v in request.items() if k in output_members}


def test_describe_outputs_hold_every_create_member_except_tags():
    """The premise of the copy: whatever CreateModel/CreateEndpointConfig accept, Describe* gives back."""
    sm = _service()
    for create, describe in (("CreateModel", "DescribeModel"), ("CreateEndpointConfig", "DescribeEndpointConfig")):
        accepted = set(sm.operation_model(create).input_shape.members) - {"Tags"}
        assert accepted <= set(sm.operation_model(describe).output_shape.members)


# -- the solution's own deployment, field by field ----------------------------------------------------------

@pytest.mark.parametrize("generation, service, names, windows", [
    ("esd", "sd", ("esd-async-a1b2c3d", "esd-model-async-a1b2c3d", "esd-config-async-a1b2c3d"), (1800, 600)),
    ("v1.6", "comfy", ("comfy-async-a1b2c3d",) * 3, (1200, 3600)),
])
def test_solution_async_endpoint_copy_field_by_field(sandbox, clients, sm, capsys, generation, service, names,
                                                     windows):
    """v1.5 and v1.6+ record their image in IMAGE_URL and set startup windows; revisions keep their names."""
    dep = deployment(clients, generation=generation, service=service, realtime_id=None)
    endpoint, model, config = names
    old_model = sm.describe_model(ModelName=model)
    old_config = sm.describe_endpoint_config(EndpointConfigName=config)
    code, doc, err = run_json(capsys, "update", endpoint, dep["custom_image"], "--yes", "-q")
    assert code == 0, err
    target = f"{dep['custom_image'].rsplit(':', 1)[0]}@{dep['custom_digest']}"
    new_model = sm.describe_model(ModelName=f"{model}-r1")
    new_config = sm.describe_endpoint_config(EndpointConfigName=f"{config}-r1")
    # Model: every field but the image and IMAGE_URL.
    assert new_model["ExecutionRoleArn"] == old_model["ExecutionRoleArn"]
    old_c, new_c = old_model["PrimaryContainer"], new_model["PrimaryContainer"]
    assert new_c["Image"] == target
    assert new_c["ModelDataUrl"] == old_c["ModelDataUrl"] == f"s3://{dep['bucket']}/data/model.tar.gz"
    assert new_c["Environment"]["IMAGE_URL"] == target
    for key, value in old_c["Environment"].items():
        if key != "IMAGE_URL":
            assert new_c["Environment"][key] == value, key
    assert set(new_c["Environment"]) == set(old_c["Environment"])
    assert without(new_c, "Image", "Environment") == without(old_c, "Image", "Environment")
    assert without(new_model, "ModelName", "ModelArn", "CreationTime", "PrimaryContainer") == \
        without(old_model, "ModelName", "ModelArn", "CreationTime", "PrimaryContainer")
    # Config: AsyncInferenceConfig untouched (MaxConcurrentInvocationsPerInstance too), every variant field.
    assert new_config["AsyncInferenceConfig"] == old_config["AsyncInferenceConfig"]
    old_v, new_v = old_config["ProductionVariants"][0], new_config["ProductionVariants"][0]
    assert new_v["ModelName"] == f"{model}-r1"
    assert without(new_v, "ModelName") == without(old_v, "ModelName")
    assert (new_v["ModelDataDownloadTimeoutInSeconds"], new_v["ContainerStartupHealthCheckTimeoutInSeconds"]) == windows
    assert without(new_config, "EndpointConfigName", "EndpointConfigArn", "CreationTime", "ProductionVariants") == \
        without(old_config, "EndpointConfigName", "EndpointConfigArn", "CreationTime", "ProductionVariants")
    # Tags: the user's are kept, byoc's record the revision.
    model_tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=new_model["ModelArn"])["Tags"]}
    assert model_tags["solution"] == "esd"
    assert model_tags["byoc:endpoint"] == endpoint and model_tags["byoc:revision"] == "1"
    assert model_tags["byoc:image"] == dep["custom_image"] and model_tags["byoc:digest"] == dep["custom_digest"]
    assert model_tags["byoc:created-by"] == f"arn:aws:sts::{ACCOUNT}:user/moto"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", model_tags["byoc:created-at"])
    config_tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=new_config["EndpointConfigArn"])["Tags"]}
    assert config_tags["solution"] == "esd" and config_tags["byoc:revision"] == "1"
    # The endpoint itself keeps its tags and its async behaviour.
    d = live(sm, endpoint)
    assert d["AsyncInferenceConfig"] == old_config["AsyncInferenceConfig"]
    assert {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=d["EndpointArn"])["Tags"]}["solution"] == "esd"


def test_v1_model_with_only_endpoint_id_gets_no_image_url(sandbox, sm, ecr, capsys):
    old, _ = seed.push_image(ecr, "stable-diffusion-aws-extension/aigc-webui-inference", "latest")
    new, digest = seed.push_image(ecr, "my-sd-webui", "v2")
    sm.create_model(ModelName="infer-model-v1x", ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": old, "Environment": {"EndpointID": "v1x"}})
    sm.create_endpoint_config(EndpointConfigName="infer-config-v1x", ProductionVariants=[
        {"VariantName": "prod", "ModelName": "infer-model-v1x", "InstanceType": "ml.g5.xlarge",
         "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="infer-endpoint-v1x", EndpointConfigName="infer-config-v1x")
    live(sm, "infer-endpoint-v1x")
    code, doc, _ = run_json(capsys, "update", "infer-endpoint-v1x", new, "--yes", "-q")
    assert code == 0
    assert model_of(sm, doc["endpoint_config"])["PrimaryContainer"]["Environment"] == {"EndpointID": "v1x"}


# -- multi-variant endpoints -------------------------------------------------------------------------------

def _two_variant_endpoint(sm, ecr, name: str, shared_model: bool) -> str:
    old, _ = seed.push_image(ecr, "sd", "old")
    sm.create_model(ModelName=f"{name}-a", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": old},
                    Tags=[{"Key": "team", "Value": "a"}])
    if not shared_model:
        sm.create_model(ModelName=f"{name}-b", ExecutionRoleArn=ROLE,
                        PrimaryContainer={"Image": old, "Environment": {"VARIANT": "b"}})
    sm.create_endpoint_config(EndpointConfigName=f"{name}-cfg", ProductionVariants=[
        {"VariantName": "blue", "ModelName": f"{name}-a", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 2,
         "InitialVariantWeight": 3.0, "VolumeSizeInGB": 100},
        {"VariantName": "green", "ModelName": f"{name}-a" if shared_model else f"{name}-b",
         "InstanceType": "ml.m5.large", "InitialInstanceCount": 1, "InitialVariantWeight": 1.0}],
        KmsKeyId="arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        DataCaptureConfig={"EnableCapture": True, "InitialSamplingPercentage": 20,
                           "DestinationS3Uri": "s3://capture-bucket/ep", "CaptureOptions": [{"CaptureMode": "Input"}]})
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-cfg")
    assert live(sm, name)["EndpointStatus"] == "InService"
    return old


@pytest.mark.parametrize("shared_model", [False, True], ids=["a-model-per-variant", "one-model-for-both"])
def test_multi_variant_endpoint_every_variant_moves_to_the_new_image(sandbox, sm, ecr, capsys, shared_model):
    _two_variant_endpoint(sm, ecr, "sd-multi", shared_model)
    new, digest = seed.push_image(ecr, "sd", "new")
    before = sm.describe_endpoint_config(EndpointConfigName="sd-multi-cfg")
    code, doc, err = run_json(capsys, "update", "sd-multi", new, "--yes", "-q")
    assert code == 0, err
    assert doc["endpoint_config"] == "sd-multi-cfg-r1"
    after = sm.describe_endpoint_config(EndpointConfigName="sd-multi-cfg-r1")
    expected_models = {"sd-multi-a": "sd-multi-a-r1", "sd-multi-b": "sd-multi-b-r1"}
    for old_v, new_v in zip(before["ProductionVariants"], after["ProductionVariants"]):
        assert new_v["ModelName"] == expected_models[old_v["ModelName"]]
        assert without(new_v, "ModelName") == without(old_v, "ModelName")
    assert without(after, "EndpointConfigName", "EndpointConfigArn", "CreationTime", "ProductionVariants") == \
        without(before, "EndpointConfigName", "EndpointConfigArn", "CreationTime", "ProductionVariants")
    d = live(sm, "sd-multi")
    assert {v["VariantName"]: v["DeployedImages"][0]["ResolvedImage"].split("@")[1] for v in d["ProductionVariants"]} \
        == {"blue": digest, "green": digest}
    assert {v["VariantName"]: (v["DesiredInstanceCount"], v["CurrentWeight"]) for v in d["ProductionVariants"]} == \
        {"blue": (2, 3.0), "green": (1, 1.0)}
    if not shared_model:
        b = sm.describe_model(ModelName="sd-multi-b-r1")
        assert b["PrimaryContainer"]["Environment"] == {"VARIANT": "b"}
    a_tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=sm.describe_model(
        ModelName="sd-multi-a-r1")["ModelArn"])["Tags"]}
    assert a_tags["team"] == "a"


def test_multi_variant_endpoint_rolls_back_every_variant(sandbox, sm, ecr, capsys):
    _two_variant_endpoint(sm, ecr, "sd-multi", shared_model=False)
    old_digest = served_digest(sm, "sd-multi")
    new, _ = seed.push_image(ecr, "sd", "new")
    assert run_json(capsys, "update", "sd-multi", new, "--yes", "-q")[0] == 0
    code, doc, _ = run_json(capsys, "rollback", "sd-multi", "--yes", "-q")
    assert code == 0
    assert doc["endpoint_config"] == "sd-multi-cfg" and doc["revision"] == 0
    d = live(sm, "sd-multi")
    assert {v["DeployedImages"][0]["ResolvedImage"].split("@")[1] for v in d["ProductionVariants"]} == {old_digest}
