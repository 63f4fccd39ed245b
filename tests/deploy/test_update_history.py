"""Revisions: history kept in AWS tags (and in the -r<N> names when tags are missing), rollback to a
retained revision, restore to the default image, --keep sweeping (never revision 0 nor anything an
endpoint uses), and the other ways an update ends: --dry-run, unchanged/--force, --no-wait, --timeout."""

from __future__ import annotations

import pytest

from byoc.sandbox import seed
from byoc.sandbox.server import ACCOUNT
from support.update import (
    ASYNC_EP,
    JSON_KEYS,
    REALTIME_EP,
    deployment,
    hold_deployments,
    live,
    release_deployments,
    resources,
    run,
    run_json,
    served_digest,
    tags_of,
)

CALLER = f"arn:aws:sts::{ACCOUNT}:user/moto"


@pytest.fixture
def dep(sandbox, clients):
    return deployment(clients)


def update(capsys, *argv: str, expect: int = 0) -> dict:
    code, doc, err = run_json(capsys, *argv, "--yes", "-q")
    assert code == expect, err
    return doc


def history(capsys, endpoint: str = ASYNC_EP) -> list:
    code, doc, err = run_json(capsys, "history", endpoint)
    assert code == 0, err
    assert doc["endpoint"] == endpoint
    return doc["revisions"]


def ours(names: set, stem: str) -> set:
    return {n for n in names if n.startswith(stem)}


# -- history ----------------------------------------------------------------------------------------

def test_history_lists_every_attempt_newest_first_with_who_when_and_which_is_live(capsys, sm, dep):
    original = served_digest(sm, ASYNC_EP)
    update(capsys, "update", ASYNC_EP, dep["custom_image"])
    update(capsys, "update", ASYNC_EP, dep["broken_image"], expect=1)
    revs = history(capsys)
    assert [r["number"] for r in revs] == [2, 1, 0]
    failed, good, zero = revs
    assert failed["outcome"] == "failed" and not failed["live"] and failed["config"] is None
    assert failed["digest"] == dep["broken_digest"]
    assert failed["image"] == f"my-sd-webui:v3-broken@{dep['broken_digest']}"
    assert good["outcome"] == "live" and good["live"]
    assert good["config"] == "infer-config-a1b2c3d-r1" and good["models"] == ["infer-model-a1b2c3d-r1"]
    assert good["image"] == dep["custom_image"] and good["digest"] == dep["custom_digest"]
    assert good["created_by"] == CALLER
    assert zero["outcome"] == "original" and zero["config"] == "infer-config-a1b2c3d"
    assert zero["digest"] == original
    assert zero["image"].endswith("/stable-diffusion-aws-extension/aigc-webui-inference")  # v1.3: untagged
    for r in revs:
        assert r["created_at"]


def test_history_text_table(capsys, dep):
    update(capsys, "update", ASYNC_EP, dep["custom_image"])
    code, out, _ = run(capsys, "history", ASYNC_EP)
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert [r.split("│")[1].strip() for r in rows] == ["1", "0"]
    live_row, original_row = rows
    assert "*" in live_row.split("│")[2] and "my-sd-webui:v2" in live_row and "user/moto" in live_row
    assert dep["custom_digest"][7:19] in live_row
    assert "original" in original_row and "aigc-webui-inference" in original_row


def test_history_of_an_endpoint_never_updated_is_revision_0(capsys, dep):
    revs = history(capsys)
    assert [(r["number"], r["outcome"], r["live"]) for r in revs] == [(0, "original", True)]


def test_history_is_kept_in_tags_on_the_models_and_configs(capsys, sm, dep):
    update(capsys, "update", ASYNC_EP, dep["custom_image"])
    for arn in (sm.describe_model(ModelName="infer-model-a1b2c3d-r1")["ModelArn"],
                sm.describe_endpoint_config(EndpointConfigName="infer-config-a1b2c3d-r1")["EndpointConfigArn"]):
        tags = tags_of(sm, arn)
        assert {k: tags[k] for k in ("byoc:endpoint", "byoc:revision", "byoc:image", "byoc:digest", "byoc:created-by")} \
            == {"byoc:endpoint": ASYNC_EP, "byoc:revision": "1", "byoc:image": dep["custom_image"],
                "byoc:digest": dep["custom_digest"], "byoc:created-by": CALLER}
    # Revision 0 is the endpoint's original model and config, marked on the first update.
    zero = tags_of(sm, sm.describe_endpoint_config(EndpointConfigName="infer-config-a1b2c3d")["EndpointConfigArn"])
    assert zero["byoc:revision"] == "0"
    endpoint_tags = tags_of(sm, sm.describe_endpoint(EndpointName=ASYNC_EP)["EndpointArn"])
    assert endpoint_tags["byoc:original-config"] == "infer-config-a1b2c3d"
    assert endpoint_tags["byoc:r1"].startswith("deployed ")


def test_history_falls_back_to_the_revision_names_without_byoc_tags(capsys, sm, dep):
    update(capsys, "update", ASYNC_EP, dep["custom_image"])
    update(capsys, "update", ASYNC_EP, dep["other_image"])
    # As if tagging had been denied: no byoc tag anywhere.
    for arn in [sm.describe_endpoint(EndpointName=ASYNC_EP)["EndpointArn"]] + \
            [sm.describe_model(ModelName=m)["ModelArn"] for m in ours(resources(sm)[0], "infer-model-a1b2c3d")] + \
            [sm.describe_endpoint_config(EndpointConfigName=c)["EndpointConfigArn"]
             for c in ours(resources(sm)[1], "infer-config-a1b2c3d")]:
        keys = [k for k in tags_of(sm, arn) if k.startswith("byoc:")]
        if keys:
            sm.delete_tags(ResourceArn=arn, TagKeys=keys)
    revs = history(capsys)
    assert [(r["number"], r["live"]) for r in revs] == [(2, True), (1, False)]
    assert revs[0]["digest"] == dep["other_digest"] and revs[1]["digest"] == dep["custom_digest"]
    assert revs[1]["image"].endswith("@" + dep["custom_digest"])  # read from the model itself
    doc = update(capsys, "rollback", ASYNC_EP)
    assert (doc["result"], doc["revision"]) == ("updated", 1)
    assert served_digest(sm, ASYNC_EP) == dep["custom_digest"]


# -- rollback -------------------------------------------------------------------------------------------

def test_rollback_goes_to_the_previous_revision_without_new_resources(capsys, sm, dep):
    update(capsys, "update", ASYNC_EP, dep["custom_image"])
    update(capsys, "update", ASYNC_EP, dep["other_image"])
    before = resources(sm)
    doc = update(capsys, "rollback", ASYNC_EP)
    assert JSON_KEYS <= set(doc)
    assert (doc["result"], doc["revision"], doc["endpoint_config"]) == ("updated", 1, "infer-config-a1b2c3d-r1")
    assert doc["digest"] == dep["custom_digest"]
    assert live(sm, ASYNC_EP)["EndpointConfigName"] == "infer-config-a1b2c3d-r1"
    assert served_digest(sm, ASYNC_EP) == dep["custom_digest"]
    assert resources(sm) == before
    assert [(r["number"], r["live"]) for r in history(capsys)] == [(2, False), (1, True), (0, False)]


def test_rollback_to_a_chosen_revision(capsys, sm, dep):
    original = served_digest(sm, ASYNC_EP)
    update(capsys, "update", ASYNC_EP, dep["custom_image"])
    update(capsys, "update", ASYNC_EP, dep["other_image"])
    doc = update(capsys, "rollback", ASYNC_EP, "--to", "0")
    assert (doc["revision"], doc["endpoint_config"]) == (0, "infer-config-a1b2c3d")
    assert served_digest(sm, ASYNC_EP) == original
    doc = update(capsys, "rollback", ASYNC_EP, "--to", "2")
    assert doc["endpoint_config"] == "infer-config-a1b2c3d-r2"
    assert served_digest(sm, ASYNC_EP) == dep["other_digest"]


def test_rollback_to_the_live_revision_is_unchanged(capsys, sm, dep):
    update(capsys, "update", ASYNC_EP, dep["custom_image"])
    before = resources(sm)
    doc = update(capsys, "rollback", ASYNC_EP, "--to", "1")
    assert doc["result"] == "unchanged"
    assert resources(sm) == before


def test_rollback_after_a_failed_update_skips_the_failed_attempt(capsys, sm, dep):
    original = served_digest(sm, ASYNC_EP)
    update(capsys, "update", ASYNC_EP, dep["custom_image"])
    update(capsys, "update", ASYNC_EP, dep["broken_image"], expect=1)
    doc = update(capsys, "rollback", ASYNC_EP)
    assert (doc["revision"], doc["endpoint_config"]) == (0, "infer-config-a1b2c3d")
    assert served_digest(sm, ASYNC_EP) == original


# -- restore -----------------------------------------------------------------------------------------------

def test_restore_returns_to_revision_0s_image(capsys, sm, dep):
    original = served_digest(sm, ASYNC_EP)
    update(capsys, "update", ASYNC_EP, dep["custom_image"])
    doc = update(capsys, "restore", ASYNC_EP)
    assert doc["result"] == "updated"
    assert doc["digest"] == original
    assert served_digest(sm, ASYNC_EP) == original
    assert doc["image"].startswith(f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/"
                                   "stable-diffusion-aws-extension/aigc-webui-inference@")


def test_update_default_is_restore(capsys, sm, dep):
    update(capsys, "update", ASYNC_EP, dep["custom_image"])
    planned_restore = update(capsys, "restore", ASYNC_EP, "--dry-run")
    planned_default = update(capsys, "update", ASYNC_EP, "default", "--dry-run")
    for key in ("result", "image", "digest", "revision", "endpoint_config", "model", "previous_image"):
        assert planned_restore[key] == planned_default[key], key
    assert planned_default["plan"]["image"] == planned_restore["plan"]["image"]
    doc = update(capsys, "update", ASYNC_EP, "default")
    assert doc["result"] == "updated"
    assert served_digest(sm, ASYNC_EP) == planned_restore["digest"]


def test_restore_when_already_on_the_default_is_unchanged(capsys, sm, dep):
    before = resources(sm)
    doc = update(capsys, "restore", ASYNC_EP)
    assert doc["result"] == "unchanged"
    assert resources(sm) == before


def _endpoint_without_revision_0(sm, ecr, environment: dict) -> str:
    """An endpoint whose original config byoc cannot know (its name already ends in -r<N>)."""
    role = f"arn:aws:iam::{ACCOUNT}:role/ESD-createEndpoint-Role"
    image, _ = seed.push_image(ecr, "my-sd-webui", "custom-from-elsewhere")
    sm.create_model(ModelName="sd-async-zz-r3", ExecutionRoleArn=role,
                    PrimaryContainer={"Image": image, "Environment": environment})
    sm.create_endpoint_config(EndpointConfigName="sd-async-zz-r3", ProductionVariants=[
        {"VariantName": "prod", "ModelName": "sd-async-zz-r3", "InstanceType": "ml.g5.xlarge",
         "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="sd-async-zz", EndpointConfigName="sd-async-zz-r3")
    live(sm, "sd-async-zz")
    return "sd-async-zz"


def test_restore_derives_the_default_from_esd_version(capsys, sm, ecr, dep):
    endpoint = _endpoint_without_revision_0(sm, ecr, {"ESD_VERSION": "v1.6.0"})
    _, digest = seed.push_image(ecr, "esd-inference", "v1.6.0")
    doc = update(capsys, "restore", endpoint)
    assert doc["image"] == f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/esd-inference@{digest}"
    assert served_digest(sm, endpoint) == digest


def test_restore_derives_the_solution_default_without_esd_version(capsys, sm, ecr, dep):
    endpoint = _endpoint_without_revision_0(sm, ecr, {"EndpointID": "zz"})
    code, doc, err = run_json(capsys, "restore", endpoint, "--dry-run")
    assert code == 0, err
    assert doc["image"].startswith(f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/"
                                   "stable-diffusion-aws-extension/aigc-webui-inference@")


def test_restore_default_image_option_wins(capsys, sm, dep):
    update(capsys, "update", ASYNC_EP, dep["custom_image"])
    doc = update(capsys, "restore", ASYNC_EP, "--default-image", dep["other_image"])
    assert doc["digest"] == dep["other_digest"]
    assert served_digest(sm, ASYNC_EP) == dep["other_digest"]


# -- --keep ----------------------------------------------------------------------------------------------

def test_keep_sweeps_older_revisions_but_never_revision_0(capsys, sm, ecr, dep):
    digests = {}
    for n in range(1, 5):
        image, digests[n] = seed.push_image(ecr, "my-sd-webui", f"k{n}")
        doc = update(capsys, "update", ASYNC_EP, image, "--keep", "2")
        assert doc["revision"] == n
    models, configs = resources(sm)
    assert ours(configs, "infer-config-a1b2c3d") == {"infer-config-a1b2c3d", "infer-config-a1b2c3d-r3",
                                                      "infer-config-a1b2c3d-r4"}
    assert ours(models, "infer-model-a1b2c3d") == {"infer-model-a1b2c3d", "infer-model-a1b2c3d-r3",
                                                    "infer-model-a1b2c3d-r4"}
    assert set(doc["swept"]) == {"infer-config-a1b2c3d-r2", "infer-model-a1b2c3d-r2"}
    revs = history(capsys)
    assert [(r["number"], r["config"] is not None) for r in revs] == [(4, True), (3, True), (2, False), (1, False),
                                                                       (0, True)]
    assert {r["number"]: r["outcome"] for r in revs}[1] == "superseded"
    # The real-time endpoint's revision 0 is untouched too.
    assert "infer-config-f9e8d7c" in configs and "infer-model-f9e8d7c" in models


def test_keep_never_deletes_what_another_endpoint_uses(capsys, sm, ecr, dep):
    update(capsys, "update", ASYNC_EP, dep["custom_image"])
    sm.create_endpoint(EndpointName="copy-of-r1", EndpointConfigName="infer-config-a1b2c3d-r1")
    live(sm, "copy-of-r1")
    for n in range(2, 5):
        image, _ = seed.push_image(ecr, "my-sd-webui", f"k{n}")
        update(capsys, "update", ASYNC_EP, image, "--keep", "1")
    models, configs = resources(sm)
    assert "infer-config-a1b2c3d-r1" in configs and "infer-model-a1b2c3d-r1" in models
    assert ours(configs, "infer-config-a1b2c3d") == {"infer-config-a1b2c3d", "infer-config-a1b2c3d-r1",
                                                      "infer-config-a1b2c3d-r4"}
    assert served_digest(sm, "copy-of-r1") == dep["custom_digest"]


def test_sweeping_spares_configs_and_models_byoc_did_not_create(capsys, sm, ecr, dep):
    cfg = sm.describe_endpoint_config(EndpointConfigName="infer-config-f9e8d7c")
    sm.create_endpoint_config(EndpointConfigName="infer-config-f9e8d7c-handmade",
                              ProductionVariants=cfg["ProductionVariants"])
    for n in range(1, 4):
        image, _ = seed.push_image(ecr, "my-sd-webui", f"k{n}")
        update(capsys, "update", REALTIME_EP, image, "--keep", "1")
    models, configs = resources(sm)
    assert ours(configs, "infer-config-f9e8d7c") == {"infer-config-f9e8d7c", "infer-config-f9e8d7c-handmade",
                                                      "infer-config-f9e8d7c-r3"}
    assert ours(models, "infer-model-f9e8d7c") == {"infer-model-f9e8d7c", "infer-model-f9e8d7c-r3"}


def test_keep_never_deletes_an_original_config_named_like_a_revision(capsys, sm, ecr, dep):
    endpoint = _endpoint_without_revision_0(sm, ecr, {"EndpointID": "zz"})  # its own config is "sd-async-zz-r3"
    for n in range(1, 4):
        image, _ = seed.push_image(ecr, "my-sd-webui", f"k{n}")
        update(capsys, "update", endpoint, image, "--keep", "1")
    models, configs = resources(sm)
    assert ours(configs, "sd-async-zz") == {"sd-async-zz-r3", "sd-async-zz-r6"}
    assert ours(models, "sd-async-zz") == {"sd-async-zz-r3", "sd-async-zz-r6"}


# -- how an update ends ------------------------------------------------------------------------------------

def test_dry_run_plans_and_creates_nothing(capsys, sm, dep):
    before = resources(sm)
    endpoint_tags = tags_of(sm, sm.describe_endpoint(EndpointName=ASYNC_EP)["EndpointArn"])
    code, doc, err = run_json(capsys, "update", ASYNC_EP, dep["custom_image"], "--dry-run")
    assert code == 0, err
    assert JSON_KEYS <= set(doc)
    assert doc["result"] == "planned"
    plan = doc["plan"]
    assert plan["create_models"] == ["infer-model-a1b2c3d-r1"] and plan["create_config"] == "infer-config-a1b2c3d-r1"
    assert plan["previous_config"] == "infer-config-a1b2c3d" and plan["strategy"] == "blue-green"
    assert plan["extra_capacity"] == {"ml.g5.2xlarge": 1}
    assert plan["digest"] == dep["custom_digest"]
    assert resources(sm) == before
    assert tags_of(sm, sm.describe_endpoint(EndpointName=ASYNC_EP)["EndpointArn"]) == endpoint_tags
    assert live(sm, ASYNC_EP)["EndpointConfigName"] == "infer-config-a1b2c3d"


def test_same_digest_is_unchanged_unless_forced(capsys, sm, dep):
    update(capsys, "update", ASYNC_EP, dep["custom_image"])
    before = resources(sm)
    code, out, err = run(capsys, "update", ASYNC_EP, dep["custom_image"], "--yes")
    assert code == 0
    assert out.startswith("unchanged: ")
    assert "nothing to do: the endpoint already runs this digest (use --force to redeploy)" in err
    # Addressed by digest instead of tag: the same image, still unchanged.
    pinned = dep["custom_image"].rsplit(":", 1)[0] + "@" + dep["custom_digest"]
    assert update(capsys, "update", ASYNC_EP, pinned)["result"] == "unchanged"
    assert resources(sm) == before
    doc = update(capsys, "update", ASYNC_EP, dep["custom_image"], "--force")
    assert (doc["result"], doc["revision"], doc["endpoint_config"]) == ("updated", 2, "infer-config-a1b2c3d-r2")
    assert served_digest(sm, ASYNC_EP) == dep["custom_digest"]


def test_no_wait_returns_while_sagemaker_deploys(sandbox, capsys, sm, dep):
    hold_deployments(sandbox)
    doc = update(capsys, "update", ASYNC_EP, dep["custom_image"], "--no-wait")
    assert doc["result"] == "in-progress"
    assert doc["resume_command"] == f"byoc status {ASYNC_EP} --watch"
    d = sm.describe_endpoint(EndpointName=ASYNC_EP)
    assert d["EndpointStatus"] == "Updating"
    assert d["PendingDeploymentSummary"]["EndpointConfigName"] == "infer-config-a1b2c3d-r1"
    release_deployments(sandbox)
    assert live(sm, ASYNC_EP)["EndpointConfigName"] == "infer-config-a1b2c3d-r1"
    assert served_digest(sm, ASYNC_EP) == dep["custom_digest"]


def test_timeout_exits_3_deletes_nothing_and_prints_how_to_resume(sandbox, capsys, sm, dep):
    hold_deployments(sandbox)  # the deployment outlasts --timeout 1
    code, out, err = run(capsys, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q", "--timeout", "1")
    assert code == 3, err
    assert out.startswith("timeout: ")
    resume = f"byoc update {ASYNC_EP} {dep['custom_image'].rsplit(':', 1)[0]}@{dep['custom_digest']}"
    assert f"SageMaker goes on; to resume watching: {resume}" in out.splitlines()  # whole, ready to paste
    models, configs = resources(sm)
    assert "infer-model-a1b2c3d-r1" in models and "infer-config-a1b2c3d-r1" in configs
    assert sm.describe_endpoint(EndpointName=ASYNC_EP)["EndpointStatus"] == "Updating"
    # SageMaker goes on; once it is done, the printed command records the outcome.
    release_deployments(sandbox)
    assert live(sm, ASYNC_EP)["EndpointConfigName"] == "infer-config-a1b2c3d-r1"
    code, doc, err = run_json(capsys, *resume.split()[1:], "--yes", "-q")
    assert code == 0, err
    assert doc["result"] == "unchanged"
    assert served_digest(sm, ASYNC_EP) == dep["custom_digest"]
    code, status, _ = run_json(capsys, "status", ASYNC_EP)
    assert status["last_update"]["outcome"] == "deployed" and status["in_progress"] is None


def test_timeout_json(sandbox, capsys, dep):
    hold_deployments(sandbox)
    code, doc, _ = run_json(capsys, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q", "--timeout", "1")
    release_deployments(sandbox)
    assert code == 3
    assert JSON_KEYS <= set(doc)
    assert doc["result"] == "timeout" and doc["swept"] == []
    assert doc["resume_command"].startswith(f"byoc update {ASYNC_EP} ")


# -- status ---------------------------------------------------------------------------------------------------

def test_status_reports_variants_autoscaling_and_the_last_update(capsys, sm, dep):
    update(capsys, "update", ASYNC_EP, dep["custom_image"])
    code, st, _ = run_json(capsys, "status", ASYNC_EP)
    assert code == 0
    assert (st["endpoint"], st["status"], st["config"], st["kind"], st["revision"]) == \
        (ASYNC_EP, "InService", "infer-config-a1b2c3d-r1", "async", 1)
    [variant] = st["variants"]
    assert variant["name"] == "prod" and variant["instance_type"] == "ml.g5.2xlarge"
    assert variant["digest"] == dep["custom_digest"] and variant["model"] == "infer-model-a1b2c3d-r1"
    assert (variant["current_instances"], variant["desired_instances"]) == (1, 1)
    assert st["autoscaling"] == [{"variant": "prod", "min": 0, "max": 1, "policies": [
        f"{ASYNC_EP}-target-tracking", f"{ASYNC_EP}-has-backlog-without-capacity"]}]
    assert st["last_update"]["revision"] == 1 and st["last_update"]["outcome"] == "deployed"
    assert st["failure_reason"] is None and st["in_progress"] is None
    code, st, _ = run_json(capsys, "status", REALTIME_EP)
    assert st["kind"] == "real-time" and st["autoscaling"] == [] and st["last_update"] is None


def test_status_after_a_failed_update_shows_its_reason(capsys, dep):
    update(capsys, "update", REALTIME_EP, dep["broken_image"], expect=1)
    code, st, _ = run_json(capsys, "status", REALTIME_EP)
    assert st["status"] == "InService" and st["config"] == "infer-config-f9e8d7c"
    assert "did not pass the ping health check" in st["failure_reason"]
    assert (st["last_update"]["revision"], st["last_update"]["outcome"]) == (1, "failed")
    code, out, _ = run(capsys, "status", REALTIME_EP)
    assert "FailureReason: The primary container for production variant prod" in " ".join(out.split())


def test_status_last_update_is_the_latest_attempt_even_a_rollback(capsys, dep):
    update(capsys, "update", REALTIME_EP, dep["custom_image"])
    update(capsys, "update", REALTIME_EP, dep["broken_image"], expect=1)
    update(capsys, "rollback", REALTIME_EP, "--to", "0")
    code, st, _ = run_json(capsys, "status", REALTIME_EP)
    assert st["config"] == "infer-config-f9e8d7c"
    assert (st["last_update"]["revision"], st["last_update"]["outcome"]) == (0, "deployed")
