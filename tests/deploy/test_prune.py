"""`byoc prune` after each generation of the solution deleted its endpoint the way it does
(docs/solution.md): only what byoc left goes, nothing else; a config another endpoint uses stays;
revisions beyond --keep of a live endpoint go; the tag query replaces describing every resource."""

from __future__ import annotations

import pytest

from byoc.aws.client import Aws
from byoc.deploy.prune import plan_prune
from byoc.sandbox import seed
from support.update import resources, run, run_json


def _wait_gone(sm, endpoint: str) -> None:
    import time

    for _ in range(600):
        try:
            sm.describe_endpoint(EndpointName=endpoint)
        except sm.exceptions.ClientError:
            return
        time.sleep(0.05)
    raise AssertionError(f"{endpoint} was not deleted")


def _pair(stem_model: str, stem_config: str, n: int) -> set:
    return {f"{stem_model}-r{n}", f"{stem_config}-r{n}"}


@pytest.mark.parametrize("generation, kwargs, gone, kept", [
    # v1.3 deleted r0 by name and the live r3 on the Deleted event: r1 and r2 are left.
    ("infer", {}, _pair("infer-model-a1b2c3d", "infer-config-a1b2c3d", 1)
     | _pair("infer-model-a1b2c3d", "infer-config-a1b2c3d", 2), set()),
    # v1.5 deleted the live r3: r1, r2 are left, and the solution's own original (not byoc's).
    ("esd", {}, _pair("esd-model-async-a1b2c3d", "esd-config-async-a1b2c3d", 1)
     | _pair("esd-model-async-a1b2c3d", "esd-config-async-a1b2c3d", 2),
     {"esd-config-async-a1b2c3d", "esd-model-async-a1b2c3d"}),
    # v1.7 deleted what is named like the endpoint (r0): r1, r2 and r3 are left.
    ("v1.6", {"service": "comfy"}, {f"comfy-async-a1b2c3d-r{n}" for n in (1, 2, 3)}, set()),
])
def test_prune_after_each_generations_own_delete(capsys, sandbox, clients, sm, generation, kwargs, gone, kept):
    dep = seed.solution(clients, generation=generation, realtime_id=None, **kwargs)
    ecr = clients.client("ecr")
    v2, _ = seed.push_image(ecr, "my-sd-webui", "v2")
    v4, _ = seed.push_image(ecr, "my-sd-webui", "v4")
    v5, _ = seed.push_image(ecr, "my-sd-webui", "v5")
    ep = dep["endpoints"][0]
    for image in (v2, v4, v5):
        code, _, err = run(capsys, "update", ep, image, "--yes", "-q")
        assert code == 0, err
    # Another endpoint runs revision 1's config: prune must keep it and its model.
    first = next(c for c in sorted(resources(sm)[1]) if c.endswith("-r1"))
    sm.create_endpoint(EndpointName="shares-r1", EndpointConfigName=first)
    seed.wait_status(sm, "shares-r1")
    d = sm.describe_endpoint(EndpointName=ep)
    live = sm.describe_endpoint_config(EndpointConfigName=d["EndpointConfigName"])
    sm.delete_endpoint(EndpointName=ep)
    _wait_gone(sm, ep)
    # What the solution's delete does: v1.3 deletes infer-model/config-<id> by name and, on SageMaker's Deleted
    # event, the live config and model; v1.4/v1.5 the live config and its models; v1.6+ the config and model
    # named like the endpoint.
    model, config = dep["models"][0], dep["configs"][0]
    if generation == "infer":
        doomed = [(config, model), (live["EndpointConfigName"], live["ProductionVariants"][0]["ModelName"])]
    elif generation == "esd":
        doomed = [(live["EndpointConfigName"], v["ModelName"]) for v in live["ProductionVariants"]]
    else:
        doomed = [(ep, ep)]
    for cfg, mdl in doomed:
        sm.delete_endpoint_config(EndpointConfigName=cfg)
        sm.delete_model(ModelName=mdl)
    before_models, before_configs = resources(sm)

    code, doc, err = run_json(capsys, "prune", "--dry-run")
    assert code == 0, err
    planned = {n for d in doc["plan"]["deletions"] for n in ([d["config"]] if d["config"] else []) + d["models"]}
    shared = {first, sm.describe_endpoint_config(EndpointConfigName=first)["ProductionVariants"][0]["ModelName"]}
    assert planned == gone - shared and planned  # something to delete, and what "shares-r1" runs is not
    assert set(doc["plan"]["in_use"]) == shared & (gone | {first})
    assert all(d["endpoint"] == ep and d["reason"] == "endpoint deleted" and d["image"] for d in doc["plan"]["deletions"])
    assert resources(sm) == (before_models, before_configs)  # a dry run changes nothing

    code, out, err = run(capsys, "prune", "--yes")
    assert code == 0, err
    models, configs = resources(sm)
    assert (before_models | before_configs) - (models | configs) == gone - shared
    assert kept <= models | configs and shared <= models | configs
    code, doc, err = run_json(capsys, "prune", "--dry-run")
    assert doc["plan"]["deletions"] == []


def test_prune_keeps_the_newest_revisions_of_a_live_endpoint_and_asks_only_the_tag_index(capsys, sandbox, clients,
                                                                                        sm):
    dep = seed.solution(clients, generation="v1.6", realtime_id=None)
    ep = dep["endpoints"][0]
    ecr = clients.client("ecr")
    for tag in ("v2", "v3", "v4"):
        image, _ = seed.push_image(ecr, "my-sd-webui", tag)
        code, _, err = run(capsys, "update", ep, image, "--yes", "-q", "--keep", "5")
        assert code == 0, err
    aws = Aws(region="us-east-1")
    plan = plan_prune(aws, keep=2)
    assert [(d.revision, d.config, d.models, d.reason) for d in plan.deletions] == [
        (1, f"{ep}-r1", [f"{ep}-r1"], "beyond --keep 2")]
    assert aws.calls["tag:GetResources"] == 1
    # Whether the candidates still exist: one listing by name per kind for the one endpoint with candidates.
    assert aws.calls["sagemaker:ListModels"] == aws.calls["sagemaker:ListEndpointConfigs"] == 1
    assert not any(k in aws.calls for k in ("sagemaker:DescribeModel", "sagemaker:ListTags"))
    code, out, err = run(capsys, "prune", "--keep", "2", "--yes")
    assert code == 0, err
    models, configs = resources(sm)
    assert f"{ep}-r1" not in configs | models and {ep, f"{ep}-r2", f"{ep}-r3"} <= configs


def test_prune_without_a_terminal_needs_yes_and_changes_nothing(capsys, sandbox, clients, sm):
    dep = seed.solution(clients, generation="v1.6", realtime_id=None)
    ep = dep["endpoints"][0]
    for tag in ("v2", "v3"):
        image, _ = seed.push_image(clients.client("ecr"), "my-sd-webui", tag)
        assert run(capsys, "update", ep, image, "--yes", "-q")[0] == 0
    before = resources(sm)
    code, out, err = run(capsys, "prune", "--keep", "1")
    assert code == 2 and "error:" in err and "--yes" in err
    assert resources(sm) == before
