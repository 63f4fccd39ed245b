"""One typed plan: --dry-run shows every step apply then runs, the sweep's deletions included, and the
library's dry run returns the plan the CLI prints."""

from __future__ import annotations

import pytest

import byoc
from byoc.errors import BadInput
from byoc.sandbox import seed
from support.update import ASYNC_EP, REALTIME_EP, deployment, resources, run, run_json


def _two_revisions(capsys, clients) -> dict:
    dep = deployment(clients)
    for image in (dep["custom_image"], dep["other_image"]):
        code, doc, err = run_json(capsys, "update", REALTIME_EP, image, "--yes", "-q")
        assert code == 0 and doc["result"] == "updated", err
    return dep


def test_the_dry_run_lists_the_deletions_and_apply_runs_exactly_its_steps(capsys, sandbox, clients, sm, ecr):
    _two_revisions(capsys, clients)
    image, _ = seed.push_image(ecr, "my-sd-webui", "v5", "healthy")
    before = resources(sm)
    code, dry, err = run_json(capsys, "update", REALTIME_EP, image, "--keep", "1", "--dry-run")
    assert code == 0 and dry["result"] == "planned", err
    assert resources(sm) == before
    plan = dry["plan"]
    assert plan["mode"] == "create" and plan["keep"] == 1
    assert plan["deletions"] == ["infer-config-f9e8d7c-r2", "infer-model-f9e8d7c-r2",
                                 "infer-config-f9e8d7c-r1", "infer-model-f9e8d7c-r1"]
    assert [s["step"] for s in plan["steps"]] == [
        "lock-endpoint", "create-model", "create-endpoint-config", "update-endpoint", "watch", "record-outcome",
        "delete-revision", "delete-revision"]
    assert [s["step"] for s in plan["on_failure"]] == ["record-outcome", "delete-revision"]
    assert all("request" not in s for s in plan["steps"])  # a model's environment may hold secrets

    code, applied, err = run_json(capsys, "update", REALTIME_EP, image, "--keep", "1", "--yes", "-q")
    assert code == 0 and applied["result"] == "updated", err
    assert applied["executed"] == plan["steps"]
    assert applied["swept"] == plan["deletions"]
    models, configs = resources(sm)
    assert not set(plan["deletions"]) & (models | configs)
    assert {"infer-config-f9e8d7c-r3", "infer-model-f9e8d7c-r3"} <= models | configs


def test_the_text_dry_run_shows_the_steps_and_the_sweep(capsys, sandbox, clients, ecr):
    _two_revisions(capsys, clients)
    image, _ = seed.push_image(ecr, "my-sd-webui", "v5", "healthy")
    code, _, err = run(capsys, "update", REALTIME_EP, image, "--keep", "2", "--dry-run")
    assert code == 0, err
    assert "  sweep     infer-config-f9e8d7c-r1, infer-model-f9e8d7c-r1 (after a successful deployment; --keep 2)" in err
    assert "    1. lock infer-endpoint-f9e8d7c (tag byoc:lock), tag byoc:r3 in-progress" in err
    assert ("    7. delete revision 1: config infer-config-f9e8d7c-r1 and model(s) infer-model-f9e8d7c-r1 "
            "(beyond --keep 2)") in err
    assert "  if the deployment fails:" in err


def test_a_failed_deployment_runs_the_on_failure_steps(capsys, sandbox, clients, sm):
    dep = deployment(clients)
    code, dry, _ = run_json(capsys, "update", REALTIME_EP, dep["broken_image"], "--dry-run")
    code, failed, err = run_json(capsys, "update", REALTIME_EP, dep["broken_image"], "--yes", "-q")
    assert code == 1 and failed["result"] == "failed", err
    steps = dry["plan"]["steps"]
    watch = [s["step"] for s in steps].index("watch")
    assert failed["executed"] == steps[:watch + 1] + dry["plan"]["on_failure"]
    assert failed["swept"] == ["infer-config-f9e8d7c-r1", "infer-model-f9e8d7c-r1"]


def test_the_library_dry_run_returns_the_plan_the_cli_prints(capsys, sandbox, clients):
    dep = deployment(clients)
    code, cli, err = run_json(capsys, "update", ASYNC_EP, dep["custom_image"], "--dry-run")
    assert code == 0, err
    library = byoc.update(ASYNC_EP, dep["custom_image"], dry_run=True)
    assert library.plan == cli["plan"]
    assert library.to_dict() == {**cli, "elapsed_seconds": library.elapsed_seconds}


def test_the_library_checks_the_endpoint_name_as_the_cli_does(sandbox):
    with pytest.raises(BadInput) as bad:
        byoc.update("bad_name!", "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:y", region="us-east-1")
    assert bad.value.message == "'bad_name!' is not a SageMaker endpoint name."
