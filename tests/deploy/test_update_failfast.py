"""A broken image is known from the new instances' logs long before SageMaker's startup window
closes: the early verdict, --fail-fast (result `failing`, reconciled by the next command), the
countdown, no verdict on a transient traceback, and --startup-timeout in the plan and the copy."""

from __future__ import annotations

import pytest

from byoc.deploy import healthwatch
from byoc.sandbox import seed
from support.update import (
    REALTIME_EP,
    Invoker,
    deployment,
    live,
    resources,
    run,
    run_json,
    served_digest,
    wait_for,
)


@pytest.fixture
def dep(sandbox, clients):
    # The solution's own hour-long window: SageMaker rolls a broken image back only after it.
    return deployment(clients, startup_timeout=3600)


def test_fail_fast_exits_failing_long_before_the_rollback_and_the_next_command_reconciles(sandbox, capsys, sm, dep):
    sandbox.app.clock.time_scale = 0.5  # the window lasts 18 s; the second start comes ~1.2 s in
    old = served_digest(sm, REALTIME_EP)
    before = resources(sm)
    with Invoker(sandbox, REALTIME_EP) as inv:
        code, doc, err = run_json(capsys, "update", REALTIME_EP, dep["broken_image"], "--yes", "--fail-fast")
        assert code == 1, err
        assert doc["result"] == "failing"
        assert doc["diagnosis"][0]["id"] == "python-import" and "xformers" in doc["diagnosis"][0]["title"]
        assert doc["verdict_seconds"] > 0 and doc["rollback_expected_at"].endswith("Z")
        assert "early verdict: Python cannot import xformers" in err
        assert "SageMaker rolls the new fleet back by about" in err
        assert sm.describe_endpoint(EndpointName=REALTIME_EP)["EndpointStatus"] == "Updating"  # not given up yet
        code, st, _ = run_json(capsys, "status", REALTIME_EP)
        assert st["last_update"]["outcome"] == "failing" and st["in_progress"]["target_config"] == doc["endpoint_config"]
        assert doc["endpoint_config"] in resources(sm)[1]  # SageMaker still uses the revision
        wait_for(lambda: live(sm, REALTIME_EP)["EndpointStatus"] == "InService", timeout=60)
    assert inv.failures == [] and inv.digests == [old]
    # The next byoc command records the outcome and sweeps the failed revision.
    code, doc2, err = run_json(capsys, "update", REALTIME_EP, dep["custom_image"], "--yes", "--quiet")
    assert code == 0 and doc2["result"] == "updated", err
    assert doc["executed"][-1]["step"] == "record-outcome" and doc["executed"][-1]["outcome"] == "failing"
    ended = [s for s in doc2["executed"] if s.get("revision") == doc["revision"]]  # steps of the plan, as planned
    assert [(s["step"], s.get("outcome"), s.get("config")) for s in ended] == [
        ("record-outcome", "failed", None), ("delete-revision", None, doc["endpoint_config"])]
    assert doc["endpoint_config"] not in resources(sm)[1]
    assert doc["model"] not in resources(sm)[0]
    code, hist, _ = run_json(capsys, "history", REALTIME_EP)
    assert {r["number"]: r["outcome"] for r in hist["revisions"]}[doc["revision"]] == "failed"
    assert resources(sm)[1] - before[1] == {doc2["endpoint_config"]}


def test_without_fail_fast_the_verdict_comes_first_then_sagemakers_rollback(sandbox, capsys, sm, dep):
    sandbox.app.clock.time_scale = 2.0  # the 10 min window lasts 12 s; the second start comes ~5 s in
    code, doc, err = run_json(capsys, "update", REALTIME_EP, dep["broken_image"], "--yes", "--startup-timeout", "10m")
    assert code == 1, err
    assert doc["result"] == "failed" and doc["verdict_seconds"] < doc["elapsed_seconds"]
    assert err.index("early verdict:") < err.index("did not pass the ping health check")
    assert doc["diagnosis"][0]["id"] == "python-import"  # the crash loop is not mistaken for a slow start


def test_a_transient_traceback_then_a_healthy_ping_gets_no_verdict(sandbox, capsys, sm, ecr, dep, monkeypatch):
    """The sandbox's slow-start image logs nothing wrong; this one logs a traceback, then serves."""
    from byoc.sandbox.sagemaker import containers

    original = containers.boot

    def transient(behavior, *args, **kwargs):
        script = original(behavior, *args, **kwargs)
        if behavior.kind == "slow-start":
            script.start_lines += ["Traceback (most recent call last):", "ModuleNotFoundError: No module named 'xformers'",
                                   "falling back to the PyTorch attention"]
        return script

    monkeypatch.setattr(containers, "boot", transient)
    sandbox.app.clock.time_scale = 0.2
    image, digest = seed.push_image(ecr, "my-sd-webui", "transient", "slow-start=200")
    code, doc, err = run_json(capsys, "update", REALTIME_EP, image, "--yes", "--fail-fast")
    assert code == 0 and doc["result"] == "updated", err
    assert "early verdict" not in err and "verdict_seconds" not in doc
    assert served_digest(sm, REALTIME_EP) == digest


def test_countdown_lines_come_even_when_no_log_line_arrives(sandbox, capsys, sm, ecr, dep, monkeypatch):
    monkeypatch.setattr(healthwatch, "COUNTDOWN_EVERY", 0.3)
    sandbox.app.clock.time_scale = 1.0  # ping-timeout logs its start once, then nothing for the 6 s window
    image, _ = seed.push_image(ecr, "my-sd-webui", "silent", "ping-timeout")
    code, doc, err = run(capsys, "update", REALTIME_EP, image, "--yes", "--startup-timeout", "10m")
    assert code == 1
    countdown = [line for line in err.splitlines() if "waiting for /ping on the new fleet:" in line]
    assert len(countdown) >= 3 and all(" of 10m; SageMaker gives up at " in line for line in countdown)
    assert "early verdict" not in err  # ping-timeout honestly gets only the countdown


def test_startup_timeout_is_in_the_plan_and_the_copy_and_validated(sandbox, capsys, sm, dep):
    code, doc, _ = run_json(capsys, "update", REALTIME_EP, dep["custom_image"], "--dry-run", "--startup-timeout", "10m")
    assert code == 0 and doc["plan"]["startup_timeout"] == 600
    review = doc["plan"]["startup_review"]
    assert review["current_seconds"] == 3600 and review["healthy_seconds"] is not None
    assert review["proposed_seconds"] == 600
    code, _, err = run(capsys, "update", REALTIME_EP, dep["custom_image"], "--dry-run", "--startup-timeout", "10m")
    assert "ContainerStartupHealthCheckTimeoutInSeconds 3600 -> 600" in err
    assert "the current image became healthy in" in err and "consider --startup-timeout 10m" in err
    code, doc, err = run_json(capsys, "update", REALTIME_EP, dep["custom_image"], "--yes", "-q", "--startup-timeout", "15m")
    assert code == 0, err
    cfg = sm.describe_endpoint_config(EndpointConfigName=doc["endpoint_config"])
    old = sm.describe_endpoint_config(EndpointConfigName="infer-config-f9e8d7c")
    assert cfg["ProductionVariants"][0]["ContainerStartupHealthCheckTimeoutInSeconds"] == 900
    strip = ("ModelName", "ContainerStartupHealthCheckTimeoutInSeconds")
    assert {k: v for k, v in cfg["ProductionVariants"][0].items() if k not in strip} == \
        {k: v for k, v in old["ProductionVariants"][0].items() if k not in strip}
    before = resources(sm)
    for bad in ("30s", "2h", "ten"):
        code, _, err = run(capsys, "update", REALTIME_EP, dep["other_image"], "--yes", "--startup-timeout", bad)
        assert code == 2 and "--startup-timeout" in err
    assert resources(sm) == before


def test_max_time_makes_sagemaker_roll_back_a_deployment_still_running(sandbox, capsys, sm, dep):
    sandbox.app.clock.time_scale = 0.2  # the hour's window would last 7.2 s; --max-time 10m ends it at 1.2 s
    code, doc, err = run_json(capsys, "update", REALTIME_EP, dep["broken_image"], "--yes", "-q", "--max-time", "10m")
    assert code == 1, err
    assert doc["result"] == "failed" and "MaximumExecutionTimeoutInSeconds (600 seconds)" in doc["failure_reason"]
    assert live(sm, REALTIME_EP)["EndpointConfigName"] == "infer-config-f9e8d7c"


def test_recreate_reports_the_verdict_but_cannot_cut_the_window_short(sandbox, capsys, sm, dep):
    code, _, err = run(capsys, "update", REALTIME_EP, dep["broken_image"], "--strategy", "recreate", "--dry-run")
    assert code == 0 and "a broken image keeps infer-endpoint-f9e8d7c down for its whole 60-minute startup" in err
    sandbox.app.clock.time_scale = 2.0  # the 10 min window lasts 12 s; the second start comes ~5 s in
    code, doc, err = run_json(capsys, "update", REALTIME_EP, dep["broken_image"], "--yes", "--strategy", "recreate",
                              "--startup-timeout", "10m", "--fail-fast")
    assert code == 1 and doc["result"] == "failed", err
    assert "early verdict: Python cannot import xformers" in err
    assert "The endpoint is not serving, and SageMaker does not delete an endpoint that is Creating" in err
    assert any("--fail-fast does not stop a recreate" in w for w in doc["warnings"])
    assert doc["verdict_seconds"] < doc["downtime_seconds"]
    d = live(sm, REALTIME_EP)
    assert (d["EndpointStatus"], d["EndpointConfigName"]) == ("InService", "infer-config-f9e8d7c")
