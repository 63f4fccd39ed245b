"""Interruption and concurrency: `byoc update` killed with SIGKILL in each phase leaves the endpoint
serving, and running it again converges (the model and config it created are reused, nothing is
duplicated or orphaned); a second update of the same endpoint is refused while one runs; `status`
shows the update in progress.

The CLI runs as a subprocess. A fault holding one SageMaker operation (latency, then an error so the
held call never takes effect) keeps it inside a phase until it is killed."""

from __future__ import annotations

import socket

import pytest

from byoc.endpoint import lock
from support.sandbox import add_fault, control
from support.update import (
    ASYNC_EP,
    deployment,
    error_lines,
    finish,
    hold_deployments,
    kill9,
    live,
    release_deployments,
    resources,
    run,
    run_json,
    served_digest,
    spawn,
    tags_of,
    wait_for,
)

HOLD_MS = 60_000  # longer than any test: the held call only returns after the kill


@pytest.fixture
def dep(sandbox, clients):
    return deployment(clients)


def hold(sandbox, operation: str) -> None:
    """The next `operation` call waits HOLD_MS, then fails (so it never takes effect)."""
    add_fault(sandbox, service="sagemaker", operation=operation, latency_ms=HOLD_MS, fail_next=1)


def held(sandbox) -> bool:
    return sandbox.app.faults.injected >= 1


def release(sandbox) -> None:
    control(sandbox, "DELETE", "/_sandbox/faults")


def assert_converged(sm, dep, image_key: str = "custom") -> None:
    """The endpoint runs the image from revision 1, with exactly revisions 0 and 1 and no lock left."""
    d = live(sm, ASYNC_EP)
    assert d["EndpointStatus"] == "InService"
    assert d["EndpointConfigName"] == "infer-config-a1b2c3d-r1"
    assert served_digest(sm, ASYNC_EP) == dep[f"{image_key}_digest"]
    models, configs = resources(sm)
    assert {m for m in models if m.startswith("infer-model-a1b2c3d")} == {"infer-model-a1b2c3d", "infer-model-a1b2c3d-r1"}
    assert {c for c in configs if c.startswith("infer-config-a1b2c3d")} == {"infer-config-a1b2c3d",
                                                                           "infer-config-a1b2c3d-r1"}
    tags = tags_of(sm, d["EndpointArn"])
    assert lock.holder(tags.get("byoc:lock")) is None  # a killed run's lock is free again
    assert tags["byoc:r1"].startswith("deployed ")
    assert not [k for k in tags if k.startswith("byoc:r") and k != "byoc:r1"]


def rerun(capsys, dep, image_key: str = "custom") -> dict:
    code, doc, err = run_json(capsys, "update", ASYNC_EP, dep[f"{image_key}_image"], "--yes", "-q")
    assert code == 0, err
    return doc


@pytest.mark.parametrize("operation", ["CreateModel", "CreateEndpointConfig", "UpdateEndpoint"],
                         ids=["before-model", "after-model", "after-config"])
def test_kill_before_update_endpoint_then_rerun_converges(sandbox, capsys, sm, dep, operation):
    old = served_digest(sm, ASYNC_EP)
    hold(sandbox, operation)
    proc = spawn(sandbox, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q")
    wait_for(lambda: held(sandbox), proc=proc)
    kill9(proc)
    release(sandbox)
    # Killed before UpdateEndpoint: the endpoint never stopped serving its image.
    d = live(sm, ASYNC_EP)
    assert (d["EndpointStatus"], d["EndpointConfigName"]) == ("InService", "infer-config-a1b2c3d")
    assert served_digest(sm, ASYNC_EP) == old
    doc = rerun(capsys, dep)
    assert (doc["result"], doc["revision"], doc["endpoint_config"]) == ("updated", 1, "infer-config-a1b2c3d-r1")
    assert_converged(sm, dep)


def test_kill_after_model_then_rerun_with_another_image_never_runs_the_first_one(sandbox, capsys, sm, dep):
    hold(sandbox, "CreateEndpointConfig")
    proc = spawn(sandbox, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q")
    wait_for(lambda: held(sandbox), proc=proc)
    kill9(proc)
    release(sandbox)
    doc = rerun(capsys, dep, "other")
    assert doc["result"] == "updated"
    assert served_digest(sm, ASYNC_EP) == dep["other_digest"]
    cfg = sm.describe_endpoint_config(EndpointConfigName=live(sm, ASYNC_EP)["EndpointConfigName"])
    model = sm.describe_model(ModelName=cfg["ProductionVariants"][0]["ModelName"])
    assert model["PrimaryContainer"]["Image"].endswith("@" + dep["other_digest"])
    models, _ = resources(sm)
    for name in models:  # no model is left that no config references (the killed run's model is swept)
        if name.startswith("infer-model-a1b2c3d"):
            used = [c for c in resources(sm)[1] if name in
                    [v["ModelName"] for v in sm.describe_endpoint_config(EndpointConfigName=c)["ProductionVariants"]]]
            assert used, f"{name} is orphaned"


def _killed_while_updating(sandbox, sm, dep):
    hold_deployments(sandbox)
    proc = spawn(sandbox, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q")
    wait_for(lambda: sm.describe_endpoint(EndpointName=ASYNC_EP).get("PendingDeploymentSummary"), proc=proc)
    kill9(proc)
    assert sm.describe_endpoint(EndpointName=ASYNC_EP)["EndpointStatus"] == "Updating"


def test_kill_while_sagemaker_deploys_then_rerun_resumes_watching(sandbox, capsys, sm, dep, monkeypatch):
    from byoc.deploy import watch

    old = served_digest(sm, ASYNC_EP)
    _killed_while_updating(sandbox, sm, dep)
    assert served_digest(sm, ASYNC_EP) == old  # the old fleet serves while the new one starts
    until_settled = watch.until_settled

    def released_once_watching(*args, **kwargs):  # let SageMaker finish only once the rerun watches it
        release_deployments(sandbox)
        return until_settled(*args, **kwargs)

    monkeypatch.setattr(watch, "until_settled", released_once_watching)
    code, out, err = run(capsys, "update", ASYNC_EP, dep["custom_image"], "--yes")
    assert code == 0, err
    assert out.startswith("updated: ")
    assert "SageMaker is already deploying infer-config-a1b2c3d-r1; watching it" in err
    assert_converged(sm, dep)


def test_kill_while_sagemaker_deploys_then_rerun_after_it_finished(sandbox, capsys, sm, dep):
    _killed_while_updating(sandbox, sm, dep)
    release_deployments(sandbox)
    assert live(sm, ASYNC_EP)["EndpointConfigName"] == "infer-config-a1b2c3d-r1"
    rerun(capsys, dep)
    assert_converged(sm, dep)
    code, status, _ = run_json(capsys, "status", ASYNC_EP)
    assert status["in_progress"] is None
    assert (status["last_update"]["revision"], status["last_update"]["outcome"]) == (1, "deployed")


# -- concurrency -------------------------------------------------------------------------------------

def test_second_update_is_refused_while_the_first_creates_its_revision(sandbox, capsys, sm, dep):
    hold(sandbox, "CreateEndpointConfig")
    first = spawn(sandbox, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q")
    try:
        wait_for(lambda: held(sandbox), proc=first)
        before = resources(sm)
        code, out, err = run(capsys, "update", ASYNC_EP, dep["other_image"], "--yes", "-q")
        assert code == 2
        error, fix = error_lines(err)
        assert error == (f"error: Another byoc run (process {first.pid} on {socket.gethostname()[:60]} since "
                         f"{error.split(' since ')[1].split(')')[0]}) is updating {ASYNC_EP}.")
        assert f"byoc status {ASYNC_EP} --watch" in fix
        assert resources(sm) == before
    finally:
        kill9(first)
        release(sandbox)


@pytest.mark.parametrize("image_key", ["custom", "other"], ids=["same-image", "another-image"])
def test_second_update_is_refused_while_sagemaker_deploys_the_first(sandbox, capsys, sm, dep, image_key):
    hold_deployments(sandbox)
    first = spawn(sandbox, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q")
    try:
        wait_for(lambda: sm.describe_endpoint(EndpointName=ASYNC_EP).get("PendingDeploymentSummary"), proc=first)
        before = resources(sm)
        code, _, err = run(capsys, "update", ASYNC_EP, dep[f"{image_key}_image"], "--yes", "-q")
        assert code == 2
        error, fix = error_lines(err)
        if image_key == "custom":
            assert error.startswith(f"error: Another byoc run (process {first.pid} on ")
        else:
            # The refusal names the run holding the endpoint, and since when (ISO 8601 UTC).
            assert error.startswith(f"error: Endpoint {ASYNC_EP} is Updating; another update is in progress (by byoc "
                                    f"process {first.pid} on {socket.gethostname()[:60]} since 20")
            assert error.endswith("Z).")
        assert f"byoc status {ASYNC_EP} --watch" in fix
        assert resources(sm) == before
    finally:
        release_deployments(sandbox)
    code, out, err = finish(first)
    assert code == 0, err  # the first run was not disturbed
    assert served_digest(sm, ASYNC_EP) == dep["custom_digest"]


def test_status_shows_the_update_in_progress(sandbox, capsys, sm, dep):
    hold_deployments(sandbox)
    first = spawn(sandbox, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q")
    try:
        wait_for(lambda: sm.describe_endpoint(EndpointName=ASYNC_EP).get("PendingDeploymentSummary"), proc=first)
        code, status, _ = run_json(capsys, "status", ASYNC_EP)
        assert code == 0
        assert status["status"] == "Updating"
        assert status["config"] == "infer-config-a1b2c3d"  # still serving the previous config
        progress = status["in_progress"]
        assert progress["status"] == "Updating"
        assert progress["target_config"] == "infer-config-a1b2c3d-r1"
        assert progress["byoc_run"].startswith(f"process {first.pid} on ")
        code, out, _ = run(capsys, "status", ASYNC_EP)
        assert "in progress: Updating -> infer-config-a1b2c3d-r1 (byoc run: process" in " ".join(out.split())
    finally:
        release_deployments(sandbox)
    assert finish(first)[0] == 0
    code, status, _ = run_json(capsys, "status", ASYNC_EP)
    assert status["in_progress"] is None
    assert status["last_update"]["outcome"] == "deployed"


def test_status_watch_follows_an_update_to_its_end(sandbox, capsys, sm, dep, monkeypatch):
    from byoc.observe import status

    hold_deployments(sandbox)
    first = spawn(sandbox, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q")
    real_status, seen = status.status, []

    def released_after_the_first_view(*args, **kwargs):
        st = real_status(*args, **kwargs)
        seen.append(st)
        if len(seen) == 1:
            release_deployments(sandbox)
        return st

    monkeypatch.setattr(status, "status", released_after_the_first_view)
    try:
        wait_for(lambda: sm.describe_endpoint(EndpointName=ASYNC_EP).get("PendingDeploymentSummary"), proc=first)
        code, out, _ = run(capsys, "status", ASYNC_EP, "--watch", "--interval", "0.2")
        assert code == 0
        text = " ".join(out.split())
        assert "in progress: Updating -> infer-config-a1b2c3d-r1" in text
        # Refreshed until nothing is in progress: the last view is the new config, settled.
        last = text[text.rindex("infer-endpoint-a1b2c3d "):]
        assert last.startswith("infer-endpoint-a1b2c3d InService (async), config infer-config-a1b2c3d-r1")
        assert "in progress" not in last
    finally:
        release_deployments(sandbox)
    assert finish(first)[0] == 0


def test_a_plan_made_before_another_run_took_the_lock_is_refused_when_applied(sandbox, sm, dep):
    from byoc.aws.client import Aws
    from byoc.deploy.apply import apply
    from byoc.deploy.plan import plan_update
    from byoc.errors import PreflightFailed

    aws = Aws(region="us-east-1")
    late = plan_update(aws, ASYNC_EP, dep["other_image"])  # planned while the endpoint is free
    hold(sandbox, "CreateModel")
    first = spawn(sandbox, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q")
    try:
        wait_for(lambda: held(sandbox), proc=first)  # the first run holds the lock now
        before = resources(sm)
        with pytest.raises(PreflightFailed) as refused:
            apply(aws, late)
        assert refused.value.message.startswith(f"Another byoc run (process {first.pid} on ")
        assert resources(sm) == before
        lock = tags_of(sm, sm.describe_endpoint(EndpointName=ASYNC_EP)["EndpointArn"])["byoc:lock"]
        assert lock.split(" ")[1] == str(first.pid)  # still the first run's
    finally:
        kill9(first)
        release(sandbox)
