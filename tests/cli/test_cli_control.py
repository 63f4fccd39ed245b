"""Control and safety: a change is never confirmed without a terminal, an answered `n` changes nothing
(exit 6), the recreate prompt says the endpoint stops serving and for how long, and Ctrl-C (SIGINT to a
real process) stops `update` and `fleet update` with the in-progress document, the summary and the
command that resumes watching (exit 130)."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import time

import pytest

from byoc.sandbox import seed
from support.sandbox import endpoints
from support.update import (
    ASYNC_EP,
    BYOC,
    REALTIME_EP,
    cli_env,
    deployment,
    error_lines,
    finish,
    hold_deployments,
    release_deployments,
    run,
    run_json,
    spawn,
    wait_for,
)


@pytest.fixture
def dep(sandbox, clients):
    return deployment(clients)


def config_of(sm, name: str) -> str:
    return sm.describe_endpoint(EndpointName=name)["EndpointConfigName"]


@pytest.mark.parametrize("argv", [["update", ASYNC_EP, "IMAGE"], ["rollback", ASYNC_EP, "--to", "0"],
                                  ["fleet", "update", "IMAGE", "--match", "infer-endpoint-*"]],
                         ids=["update", "rollback", "fleet"])
def test_without_a_terminal_and_without_yes_nothing_changes(capsys, sm, dep, argv):
    if argv[0] == "rollback":
        assert run(capsys, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q")[0] == 0
    argv = [dep["custom_image"] if a == "IMAGE" else a for a in argv]
    before = config_of(sm, ASYNC_EP), config_of(sm, REALTIME_EP)
    code, _, err = run(capsys, *argv)
    assert code == 2
    lines = error_lines(err)
    assert lines[0].startswith("error: No terminal to confirm this change on")
    assert "--yes" in lines[1]
    assert (config_of(sm, ASYNC_EP), config_of(sm, REALTIME_EP)) == before


def on_a_terminal(sandbox, *argv: str):
    """Start `byoc <argv>` with stdin and stderr on a pseudo-terminal; returns (process, terminal fd)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([BYOC, *argv], env=cli_env(sandbox), stdin=slave, stderr=slave, stdout=subprocess.PIPE,
                            text=True)
    os.close(slave)
    return proc, master


def read_until(fd: int, text: str, timeout: float = 60.0) -> str:
    seen = ""
    deadline = time.time() + timeout
    while text not in seen:
        assert time.time() < deadline, f"no {text!r} on the terminal; got {seen!r}"
        if select.select([fd], [], [], 0.5)[0]:
            seen += os.read(fd, 4096).decode(errors="replace")
    return seen


@pytest.mark.parametrize("strategy", ["blue-green", "recreate"])
def test_answering_n_changes_nothing_and_exits_6(sandbox, sm, dep, strategy):
    before = config_of(sm, REALTIME_EP)
    proc, tty = on_a_terminal(sandbox, "update", REALTIME_EP, dep["custom_image"], "--strategy", strategy)
    prompt = read_until(tty, "[y/N]")
    if strategy == "recreate":
        assert "stops serving" in prompt and "5-15 minutes" in prompt
    else:
        assert "keeps serving" in prompt
    os.write(tty, b"n\n")
    out, _ = proc.communicate(timeout=60)
    os.close(tty)
    assert proc.returncode == 6
    assert f"declined: nothing was changed on {REALTIME_EP}." in out
    assert config_of(sm, REALTIME_EP) == before


def test_ctrl_c_during_update_says_sagemaker_carries_on_and_how_to_resume(sandbox, capsys, sm, dep):
    hold_deployments(sandbox)
    proc = spawn(sandbox, "update", REALTIME_EP, dep["custom_image"], "--yes", "-q", "-o", "json")
    wait_for(lambda: sm.describe_endpoint(EndpointName=REALTIME_EP).get("PendingDeploymentSummary"), proc=proc)
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 130, err
    doc = json.loads(out)
    assert (doc["result"], doc["interrupted"]) == ("in-progress", True)
    assert doc["resume_command"] == f"byoc update {REALTIME_EP} {dep['custom_image']} --yes -q -o json"
    assert sm.describe_endpoint(EndpointName=REALTIME_EP)["EndpointStatus"] == "Updating"  # SageMaker carries on
    release_deployments(sandbox)
    code, doc, err = run_json(capsys, "update", REALTIME_EP, dep["custom_image"], "--yes", "-q")
    assert code == 0 and doc["result"] in ("updated", "unchanged"), err  # the resume command converges
    revs = run_json(capsys, "history", REALTIME_EP)[1]["revisions"]
    assert [(r["number"], r["outcome"]) for r in revs] == [(1, "live"), (0, "original")]


def test_ctrl_c_during_update_text(sandbox, sm, dep):
    hold_deployments(sandbox)
    proc = spawn(sandbox, "update", REALTIME_EP, dep["custom_image"], "--yes", "-q")
    wait_for(lambda: sm.describe_endpoint(EndpointName=REALTIME_EP).get("PendingDeploymentSummary"), proc=proc)
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    release_deployments(sandbox)
    assert code == 130, err
    assert "SageMaker carries on" in out and "keeps serving" in out
    assert f"To resume watching and record the outcome: byoc update {REALTIME_EP} {dep['custom_image']} --yes -q" in out


def test_ctrl_c_during_a_rollback_then_its_rerun_records_the_rollback_as_its_own_event(sandbox, capsys, sm, dep):
    assert run(capsys, "update", REALTIME_EP, dep["custom_image"], "--yes", "-q")[0] == 0
    arn = sm.describe_endpoint(EndpointName=REALTIME_EP)["EndpointArn"]
    r1 = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}["byoc:r1"]
    hold_deployments(sandbox)
    proc = spawn(sandbox, "rollback", REALTIME_EP, "--to", "0", "--yes", "-q", "-o", "json")
    wait_for(lambda: sm.describe_endpoint(EndpointName=REALTIME_EP).get("PendingDeploymentSummary"), proc=proc)
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 130, err
    assert json.loads(out)["resume_command"] == f"byoc rollback {REALTIME_EP} --to 0 --yes -q -o json"
    backs = run_json(capsys, "history", REALTIME_EP)[1]["rollbacks"]
    assert [(b["number"], b["revision"], b["outcome"]) for b in backs] == [(1, 0, "in-progress")]
    release_deployments(sandbox)
    seed.wait_status(sm, REALTIME_EP)
    code, doc, err = run_json(capsys, "rollback", REALTIME_EP, "--to", "0", "--yes", "-q")  # the resume command
    assert (code, doc["result"]) == (0, "unchanged"), err
    code, doc, _ = run_json(capsys, "history", REALTIME_EP)
    assert [(b["number"], b["revision"], b["outcome"]) for b in doc["rollbacks"]] == [(1, 0, "deployed")]
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}
    assert tags["byoc:r1"] == r1 and "byoc:r0" not in tags  # revision 1's record and revision 0's are untouched
    assert [(r["number"], r["outcome"], r["live"]) for r in doc["revisions"]] == [(1, "retained", False),
                                                                                   (0, "original", True)]


def test_a_rollback_plans_its_own_event_and_one_left_failing_never_deletes_its_target(capsys, sm, dep):
    assert run(capsys, "update", REALTIME_EP, dep["custom_image"], "--yes", "-q")[0] == 0
    code, dry, err = run_json(capsys, "rollback", REALTIME_EP, "--to", "0", "--dry-run")
    assert code == 0, err
    assert [s.get("tag") for s in dry["plan"]["steps"] if s["step"] in ("lock-endpoint", "record-outcome")] == \
        ["byoc:r0:rollback1", "byoc:r0:rollback1"]
    assert run(capsys, "rollback", REALTIME_EP, "--to", "0", "--yes", "-q")[0] == 0
    # As if a `rollback --to 1 --fail-fast` had ended `failing` and SageMaker had then gone back to revision 0.
    arn = sm.describe_endpoint(EndpointName=REALTIME_EP)["EndpointArn"]
    r1 = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}["byoc:r1"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "byoc:r1:rollback2", "Value": "failing" + r1[len("deployed"):]}])
    code, dry, err = run_json(capsys, "rollback", REALTIME_EP, "--to", "1", "--dry-run")
    assert code == 0, err
    steps = dry["plan"]["steps"]
    assert {"step": "record-outcome", "tag": "byoc:r1:rollback2", "outcome": "failed"}.items() <= steps[1].items()
    assert "delete-revision" not in [s["step"] for s in steps]  # revision 1's config is what it goes back to
    assert steps[0]["tag"] == "byoc:r1:rollback3"
    code, doc, err = run_json(capsys, "rollback", REALTIME_EP, "--to", "1", "--yes", "-q")
    assert (code, doc["result"]) == (0, "updated"), err
    backs = run_json(capsys, "history", REALTIME_EP)[1]["rollbacks"]
    assert [(b["number"], b["revision"], b["outcome"]) for b in backs] == [(3, 1, "deployed"), (2, 1, "failed"),
                                                                           (1, 0, "deployed")]


def test_ctrl_c_during_fleet_update_starts_nothing_new_and_prints_the_summary(sandbox, sm, ecr):
    names = endpoints(sm, ecr, [f"team-{i:02d}" for i in range(4)])
    before = {n: config_of(sm, n) for n in names}
    image, _ = seed.push_image(ecr, "custom", "v2", "healthy")
    hold_deployments(sandbox)
    proc = spawn(sandbox, "fleet", "update", image, "--match", "team-*", "--concurrency", "1", "--yes")
    wait_for(lambda: sm.describe_endpoint(EndpointName=names[0]).get("PendingDeploymentSummary"), proc=proc)
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc, timeout=60)
    release_deployments(sandbox)
    assert code == 130, err
    assert "summary: 1 interrupted, 3 skipped" in out
    assert f"byoc update {names[0]} {image} --yes" in out
    assert "Interrupted: no endpoint was started after Ctrl-C" in err
    time.sleep(0.5)
    for name in names[1:]:  # never started
        d = sm.describe_endpoint(EndpointName=name)
        assert (d["EndpointConfigName"], d.get("PendingDeploymentSummary")) == (before[name], None)


def test_status_watch_records_a_failed_no_wait_update_and_exits_1(capsys, sm, dep):
    from support.update import resources

    code, doc, err = run_json(capsys, "update", REALTIME_EP, dep["broken_image"], "--yes", "--no-wait", "-q")
    assert (code, doc["result"]) == (0, "in-progress"), err
    new_config = doc["endpoint_config"]
    code, out, err = run(capsys, "status", REALTIME_EP, "--watch", "--interval", "0.2")
    assert code == 1, err
    assert "recorded: revision 1 failed" in err
    revs = run_json(capsys, "history", REALTIME_EP)[1]["revisions"]
    assert [(r["number"], r["outcome"]) for r in revs] == [(1, "failed"), (0, "original")]
    assert run_json(capsys, "status", REALTIME_EP)[1]["last_update"]["outcome"] == "failed"
    assert new_config not in resources(sm)[1]  # the failed attempt's config is deleted, as `update` does


def test_status_watch_records_a_deployed_no_wait_update_and_exits_0(capsys, sm, dep):
    code, doc, err = run_json(capsys, "update", REALTIME_EP, dep["custom_image"], "--yes", "--no-wait", "-q")
    assert code == 0, err
    code, out, err = run(capsys, "status", REALTIME_EP, "--watch", "--interval", "0.2")
    assert code == 0, err
    assert "recorded: revision 1 deployed" in err
    revs = run_json(capsys, "history", REALTIME_EP)[1]["revisions"]
    assert [(r["number"], r["outcome"]) for r in revs] == [(1, "live"), (0, "original")]


def test_a_failed_rollback_seen_by_status_watch_keeps_the_retained_revision(capsys, sandbox, sm, dep):
    from support.update import resources

    assert run(capsys, "update", REALTIME_EP, dep["custom_image"], "--yes", "-q")[0] == 0
    assert run(capsys, "rollback", REALTIME_EP, "--to", "0", "--yes", "-q")[0] == 0
    retained = "infer-config-f9e8d7c-r1"
    assert retained in resources(sm)[1]
    # A rollback's attempt never carries its target config's creation stamp.
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(
        ResourceArn=sm.describe_endpoint(EndpointName=REALTIME_EP)["EndpointArn"])["Tags"]}
    cfg_arn = sm.describe_endpoint_config(EndpointConfigName=retained)["EndpointConfigArn"]
    made = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=cfg_arn)["Tags"]}["byoc:created-at"]
    assert made not in tags["byoc:r0:rollback1"]
