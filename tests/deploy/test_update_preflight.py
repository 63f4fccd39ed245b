"""Pre-flight refusals of `byoc update` (and restore/rollback): each exits 2 with one line saying what is
wrong and one with the fix, no traceback, and leaves SageMaker exactly as it was (models, configs, tags).
China-region endpoints accept only `.amazonaws.com.cn` images; arm64 images only run on Graviton."""

from __future__ import annotations

import pytest

from byoc.sandbox import seed
from byoc.sandbox.server import ACCOUNT
from support.update import (
    ASYNC_EP,
    deployment,
    error_lines,
    hold_deployments,
    live,
    refused,
    resources,
    run,
    run_json,
    snapshot,
    tags_of,
)

ROLE = f"arn:aws:iam::{ACCOUNT}:role/ESD-createEndpoint-Role"
REGISTRY = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"


@pytest.fixture
def dep(sandbox, clients):
    return deployment(clients)


@pytest.mark.parametrize("image,says", [
    ("nginx:latest", "has no repository part"),
    ("docker.io/library/nginx:latest", "is not an ECR image URI"),
    (f"{REGISTRY}/my sd:v2", "contains a space"),
    (f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/my-sd-webui@sha256:abc", "is not an ECR image URI"),
    ("12345.dkr.ecr.us-east-1.amazonaws.com/my-sd-webui:v2", "is not an ECR image URI"),
])
def test_malformed_uri(capsys, sm, dep, image, says):
    error, fix = refused(capsys, sm, "update", ASYNC_EP, image, "--yes")
    assert says in error
    assert "<account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>" in fix


def test_image_in_another_region(capsys, sm, dep):
    error, fix = refused(capsys, sm, "update", ASYNC_EP,
                         f"{ACCOUNT}.dkr.ecr.us-west-2.amazonaws.com/my-sd-webui:v2", "--yes")
    assert "is in us-west-2 but the endpoint is in us-east-1" in error
    assert f"{REGISTRY}/my-sd-webui" in fix


def test_china_domain_for_a_commercial_region(capsys, sm, dep):
    error, fix = refused(capsys, sm, "update", ASYNC_EP,
                         f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com.cn/my-sd-webui:v2", "--yes")
    assert "'amazonaws.com.cn' does not fit region us-east-1" in error
    assert fix == f"Use {REGISTRY}/my-sd-webui."


def test_missing_repository(capsys, sm, dep):
    error, fix = refused(capsys, sm, "update", ASYNC_EP, f"{REGISTRY}/nothing-here:v1", "--yes")
    assert error == f"ECR repository 'nothing-here' does not exist in account {ACCOUNT}, region us-east-1."
    assert "byoc build --push" in fix


def test_missing_tag_names_the_tags_that_exist(capsys, sm, dep):
    error, fix = refused(capsys, sm, "update", ASYNC_EP, f"{REGISTRY}/my-sd-webui:v9", "--yes")
    assert error.startswith(f"Image {REGISTRY}/my-sd-webui:v9 not found in ECR.")
    assert "Tags in that repository: v2, v3-broken, v4." in error
    assert "fix the tag" in fix


def test_missing_digest(capsys, sm, dep):
    digest = "sha256:" + "0" * 64
    error, _ = refused(capsys, sm, "update", ASYNC_EP, f"{REGISTRY}/my-sd-webui@{digest}", "--yes")
    assert error.startswith(f"Image {REGISTRY}/my-sd-webui@{digest} not found in ECR.")


def test_arm64_image_for_an_x86_instance(capsys, sm, ecr, dep):
    image, _ = seed.push_image(ecr, "my-sd-webui", "v5-arm", "healthy", architecture="arm64")
    error, fix = refused(capsys, sm, "update", ASYNC_EP, image, "--yes")
    assert "is built for arm64 but variant prod runs on ml.g5.2xlarge (amd64)" in error
    assert "--platform linux/amd64" in fix


def test_missing_endpoint(capsys, sm, dep):
    error, fix = refused(capsys, sm, "update", "infer-endpoint-nope", dep["custom_image"], "--yes")
    assert error == "Endpoint 'infer-endpoint-nope' does not exist in us-east-1."
    assert "byoc endpoints" in fix


def test_malformed_endpoint_name(capsys, sm, dep):
    error, _ = refused(capsys, sm, "update", "infer_endpoint!", dep["custom_image"], "--yes")
    assert error == "'infer_endpoint!' is not a SageMaker endpoint name."


def test_failed_endpoint_needs_the_recreate_strategy(capsys, sm, ecr, dep):
    image, _ = seed.push_image(ecr, "my-sd-webui", "dead", "crash")
    sm.create_model(ModelName="infer-model-dead01", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})
    sm.create_endpoint_config(EndpointConfigName="infer-config-dead01", ProductionVariants=[
        {"VariantName": "prod", "ModelName": "infer-model-dead01", "InstanceType": "ml.g5.xlarge",
         "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="infer-endpoint-dead01", EndpointConfigName="infer-config-dead01")
    assert live(sm, "infer-endpoint-dead01")["EndpointStatus"] == "Failed"
    error, fix = refused(capsys, sm, "update", "infer-endpoint-dead01", dep["custom_image"], "--yes")
    assert "infer-endpoint-dead01 is Failed (The primary container for production variant prod" in error
    assert "SageMaker cannot update a Failed endpoint" in error
    assert fix.startswith("Run again with --strategy recreate")


def test_endpoint_with_an_update_in_progress(sandbox, capsys, sm, dep):
    hold_deployments(sandbox)  # the update started below stays in progress
    cfg = sm.describe_endpoint_config(EndpointConfigName="infer-config-a1b2c3d")
    sm.create_endpoint_config(EndpointConfigName="someone-elses-config", ProductionVariants=cfg["ProductionVariants"],
                              AsyncInferenceConfig=cfg["AsyncInferenceConfig"])
    sm.update_endpoint(EndpointName=ASYNC_EP, EndpointConfigName="someone-elses-config")
    error, fix = refused(capsys, sm, "update", ASYNC_EP, dep["custom_image"], "--yes")
    assert error == (f"Endpoint {ASYNC_EP} is Updating; another update is in progress "
                     "(not by a byoc run that is still watching it).")
    assert f"byoc status {ASYNC_EP} --watch" in fix


def test_rollback_without_an_earlier_revision(capsys, sm, dep):
    error, fix = refused(capsys, sm, "rollback", ASYNC_EP, "--yes")
    assert error == f"Endpoint {ASYNC_EP} has no earlier revision to roll back to."
    assert f"byoc restore {ASYNC_EP}" in fix


def test_rollback_to_a_revision_that_is_not_retained(capsys, sm, dep):
    assert run(capsys, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q")[0] == 0
    error, fix = refused(capsys, sm, "rollback", ASYNC_EP, "--to", "7", "--yes")
    assert error == f"Revision 7 of {ASYNC_EP} is not retained (retained: 1, 0)."
    assert f"byoc history {ASYNC_EP}" in fix


def test_restore_with_a_malformed_default_image(capsys, sm, dep):
    error, _ = refused(capsys, sm, "restore", ASYNC_EP, "--default-image", "latest", "--yes")
    assert "'latest' is not an ECR image URI" in error


@pytest.mark.parametrize("argv", [
    ["update", ASYNC_EP, "IMAGE", "--strategy", "sideways"],
    ["update", ASYNC_EP, "IMAGE", "--keep", "0"],
    ["update", ASYNC_EP, "IMAGE", "--timeout", "0"],
    ["update", ASYNC_EP],
])
def test_bad_options_exit_2_before_any_aws_call(capsys, sm, dep, argv):
    before = snapshot(sm)
    code, _, err = run(capsys, *[dep["custom_image"] if a == "IMAGE" else a for a in argv])
    assert code == 2
    assert "Traceback" not in err and ("Error:" in err or "error:" in err)
    assert snapshot(sm) == before


# -- architecture on Graviton ----------------------------------------------------------------------------

@pytest.fixture
def graviton(sm, ecr, dep):
    image, _ = seed.push_image(ecr, "arm-app", "v1", "healthy", architecture="arm64")
    sm.create_model(ModelName="infer-model-arm001", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})
    sm.create_endpoint_config(EndpointConfigName="infer-config-arm001", ProductionVariants=[
        {"VariantName": "prod", "ModelName": "infer-model-arm001", "InstanceType": "ml.c7g.xlarge",
         "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="infer-endpoint-arm001", EndpointConfigName="infer-config-arm001")
    assert live(sm, "infer-endpoint-arm001")["EndpointStatus"] == "InService"
    return "infer-endpoint-arm001"


def test_arm64_image_runs_on_graviton(capsys, sm, ecr, graviton):
    image, digest = seed.push_image(ecr, "arm-app", "v2", "healthy", architecture="arm64")
    code, doc, err = run_json(capsys, "update", graviton, image, "--yes", "-q")
    assert code == 0, err
    assert doc["result"] == "updated" and doc["digest"] == digest


def test_x86_image_for_a_graviton_instance(capsys, sm, graviton, dep):
    error, fix = refused(capsys, sm, "update", graviton, dep["custom_image"], "--yes")
    assert "is built for amd64 but variant prod runs on ml.c7g.xlarge (arm64)" in error
    assert "--platform linux/arm64" in fix


# -- China regions ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("region", ["cn-north-1", "cn-northwest-1"])
def test_china_region_takes_amazonaws_com_cn_images_and_refuses_amazonaws_com(sandbox, capsys, region):
    cn = seed.session(sandbox.url, region=region)
    dep = deployment(cn, region=region, realtime_id=None)
    sm = cn.client("sagemaker")
    assert dep["custom_image"] == f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com.cn/my-sd-webui:v2"
    wrong = dep["custom_image"].replace(".amazonaws.com.cn/", ".amazonaws.com/")
    error, fix = refused(capsys, sm, "update", ASYNC_EP, wrong, "--yes", "--region", region)
    assert f"The image domain 'amazonaws.com' does not fit region {region}, whose ECR domain is 'amazonaws.com.cn'." \
        == error
    assert fix == f"Use {ACCOUNT}.dkr.ecr.{region}.amazonaws.com.cn/my-sd-webui."
    code, doc, err = run_json(capsys, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q", "--region", region)
    assert code == 0, err
    assert doc["result"] == "updated"
    assert doc["image"] == f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com.cn/my-sd-webui@{dep['custom_digest']}"
    arn = sm.describe_model(ModelName=doc["model"])["ModelArn"]
    assert arn.startswith(f"arn:aws-cn:sagemaker:{region}:")


@pytest.mark.parametrize("region", ["cn-north-1", "cn-northwest-1"])
def test_china_region_restore_derives_the_default_on_amazonaws_com_cn(sandbox, capsys, region):
    cn = seed.session(sandbox.url, region=region)
    deployment(cn, region=region, realtime_id=None)
    code, doc, err = run_json(capsys, "restore", ASYNC_EP, "--dry-run", "--region", region)
    assert code == 0, err
    assert doc["result"] == "unchanged"  # revision 0 already runs the default image
    assert doc["image"].startswith(f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com.cn/stable-diffusion-aws-extension/")


# -- warnings that do not refuse ---------------------------------------------------------------------

def _to_zero(sm):
    sm.update_endpoint_weights_and_capacities(EndpointName=ASYNC_EP, DesiredWeightsAndCapacities=[
        {"VariantName": "prod", "DesiredInstanceCount": 0}])
    assert live(sm, ASYNC_EP)["ProductionVariants"][0]["DesiredInstanceCount"] == 0


def _autoscaling(clients):
    aas = clients.client("application-autoscaling")
    rid = f"endpoint/{ASYNC_EP}/variant/prod"
    targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[rid])["ScalableTargets"]
    policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=rid)["ScalingPolicies"]
    strip = ("CreationTime", "Alarms")
    return ([{k: v for k, v in t.items() if k not in strip} for t in targets],
            [{k: v for k, v in p.items() if k not in strip} for p in policies])


def test_async_endpoint_at_zero_proves_a_good_image_with_a_request(capsys, sm, clients, dep):
    _to_zero(sm)
    scaling = _autoscaling(clients)
    code, out, err = run(capsys, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q")
    assert code == 0, err
    assert "prove     prod at 0 instances" in err
    assert "the new fleet starts on the config's initial instance count)" in err  # the plan's steps
    assert "send one request to the new image; if it fails, roll infer-endpoint-a1b2c3d back" in err
    assert "the new image answered the verification request" in err
    d = live(sm, ASYNC_EP)
    assert d["ProductionVariants"][0]["DeployedImages"][0]["ResolvedImage"].endswith(dep["custom_digest"])
    assert d["ProductionVariants"][0]["DesiredInstanceCount"] == 1  # the proof's instance; autoscaling scales it in
    assert _autoscaling(clients) == scaling


@pytest.mark.parametrize("behavior", ["crash", "invoke-error"])
def test_async_endpoint_at_zero_rolls_a_failing_image_back(capsys, sm, ecr, clients, dep, behavior):
    _to_zero(sm)
    scaling = _autoscaling(clients)
    image, _ = seed.push_image(ecr, "my-sd-webui", f"v5-{behavior}", behavior)
    before = resources(sm)
    code, doc, err = run_json(capsys, "update", ASYNC_EP, image, "--yes")
    assert code == 1, err
    assert doc["result"] == "failed"
    if behavior == "crash":  # SageMaker's health check on the one instance failed: the crash loop's cause
        assert doc["diagnosis"][0]["id"] == "python-import"
    else:  # it passed /ping, but the verification request failed, so byoc rolled it back
        assert "failed its verification request" in doc["failure_reason"]
        assert [s["step"] for s in doc["executed"]][-3:] == ["prove-image", "record-outcome", "delete-revision"]
    d = live(sm, ASYNC_EP)
    assert d["EndpointConfigName"] == "infer-config-a1b2c3d"  # back on the previous revision
    assert _autoscaling(clients) == scaling  # exactly as before
    assert resources(sm) == before  # the failed revision is swept


def test_no_verify_leaves_an_async_endpoint_at_zero_unproven_and_says_so(capsys, sm, clients, dep):
    _to_zero(sm)
    code, doc, err = run_json(capsys, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q", "--no-verify")
    assert code == 0 and doc["result"] == "updated", err
    assert any("--no-verify is set: the new image is not proven" in w for w in doc["warnings"])
    executed = {s["step"]: s for s in doc["executed"]}
    assert executed["update-endpoint"]["start_instances"] is False and "prove-image" not in executed
    assert live(sm, ASYNC_EP)["ProductionVariants"][0]["DesiredInstanceCount"] == 0  # autoscaling's choice kept


def test_real_time_endpoint_gets_no_zero_instance_warning(capsys, dep):
    code, doc, _ = run_json(capsys, "update", "infer-endpoint-f9e8d7c", dep["custom_image"], "--yes", "-q")
    assert code == 0
    assert doc["warnings"] == []


# -- credentials and permissions (exit 4) ------------------------------------------------------------------

def _user(clients, monkeypatch, name: str, statements: list) -> None:
    """An IAM user with these statements, whose keys the CLI then uses (the sandbox enforces IAM)."""
    import json

    iam = clients.client("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="byoc", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": statements}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])


READ_ONLY = [{"Effect": "Allow", "Resource": "*", "Action": [
    "sagemaker:Describe*", "sagemaker:List*", "ecr:DescribeImages", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
    "ecr:ListImages", "servicequotas:ListServiceQuotas"]}]


def test_no_credentials_exit_4_and_change_nothing(capsys, sm, dep, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    before = snapshot(sm)
    code, _, err = run(capsys, "update", ASYNC_EP, dep["custom_image"], "--yes")
    assert code == 4
    assert error_lines(err)[0] == "error: No AWS credentials found."
    assert snapshot(sm) == before


def test_a_denied_action_exits_4_naming_it_and_changes_nothing(sandbox, clients, capsys, sm, dep, monkeypatch):
    _user(clients, monkeypatch, "reader", READ_ONLY)
    sandbox.app.enforce_iam = True
    before = snapshot(sm)
    code, out, err = run(capsys, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q")
    assert code == 4, err
    error, fix = error_lines(err)
    assert error == (f"error: Permission denied: sagemaker:CreateModel on "
                     f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/infer-model-a1b2c3d-r1.")
    assert '"Action": "sagemaker:CreateModel"' in fix
    sandbox.app.enforce_iam = False
    assert snapshot(sm) == before


def test_update_without_tagging_permissions_still_deploys(sandbox, clients, capsys, sm, dep, monkeypatch):
    _user(clients, monkeypatch, "no-tags", READ_ONLY + [
        {"Effect": "Allow", "Resource": "*", "Action": ["sagemaker:CreateModel", "sagemaker:CreateEndpointConfig",
                                                         "sagemaker:UpdateEndpoint", "sagemaker:DeleteModel",
                                                         "sagemaker:DeleteEndpointConfig", "iam:PassRole"]}])
    sandbox.app.enforce_iam = True
    code, doc, err = run_json(capsys, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q")
    assert code == 0, err
    assert (doc["result"], doc["revision"]) == ("updated", 1)
    code, history, _ = run_json(capsys, "history", ASYNC_EP)
    sandbox.app.enforce_iam = False
    assert [(r["number"], r["live"], r["digest"]) for r in history["revisions"]][0] == (1, True, dep["custom_digest"])
    d = live(sm, ASYNC_EP)
    assert d["EndpointConfigName"] == "infer-config-a1b2c3d-r1"
    assert not [k for k in tags_of(sm, d["EndpointArn"]) if k.startswith("byoc:")]  # no lock, no outcome tags
