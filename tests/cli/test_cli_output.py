"""Output without rough edges: no Python values, one time format in JSON, history that never rewrites
the past, names never cut, COLUMNS respected, per-variant rows, the user's tag kept, the same kind
everywhere, `logs` options (--variant checked, --tail, --follow --until-settled, a closed pipe)."""

from __future__ import annotations

import re
import subprocess
import threading

import pytest

from byoc.sandbox import seed
from support.sandbox import config, model
from support.update import (
    ASYNC_EP,
    BYOC,
    REALTIME_EP,
    cli_env,
    deployment,
    error_lines,
    hold_deployments,
    release_deployments,
    run,
    run_json,
)

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
LONG = "infer-endpoint-with-a-long-generation-name-0001"


@pytest.fixture
def dep(sandbox, clients):
    return deployment(clients)


@pytest.fixture
def two_variants(sandbox, sm, ecr):
    """A real-time endpoint with a long name and two variants on different instance types."""
    model(sm, ecr, "m-a")
    model(sm, ecr, "m-b", tag="b")
    config(sm, "c-two", "m-a", "ml.g5.xlarge", variant="a",
           extra_variants=({"VariantName": "b", "ModelName": "m-b", "InstanceType": "ml.g4dn.xlarge",
                            "InitialInstanceCount": 1, "InitialVariantWeight": 1.0},))
    sm.create_endpoint(EndpointName=LONG, EndpointConfigName="c-two")
    seed.wait_status(sm, LONG)
    return LONG


def test_endpoints_never_cut_names_and_respect_columns_when_piped(capsys, monkeypatch, two_variants):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run(capsys, "endpoints")
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(LONG in line for line in lines)
    rows = [line for line in lines if "ml.g" in line]
    assert len(rows) == 2 and "ml.g5.xlarge" in rows[0] and "ml.g4dn.xlarge" in rows[1]


def test_endpoints_json_has_every_variant(capsys, two_variants):
    code, doc, _ = run_json(capsys, "endpoints")
    assert code == 0
    (ep,) = [e for e in doc["endpoints"] if e["name"] == LONG]
    assert [(v["name"], v["instance_type"]) for v in ep["variants"]] == [("a", "ml.g5.xlarge"), ("b", "ml.g4dn.xlarge")]


def test_serverless_is_serverless_everywhere_and_shows_no_python_none(capsys, sandbox, sm, ecr):
    model(sm, ecr, "m-sl")
    sm.create_endpoint_config(EndpointConfigName="c-sl", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "m-sl", "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 1}}])
    sm.create_endpoint(EndpointName="sl", EndpointConfigName="c-sl")
    seed.wait_status(sm, "sl")
    assert run_json(capsys, "status", "sl")[1]["kind"] == "serverless"
    assert [e["kind"] for e in run_json(capsys, "endpoints")[1]["endpoints"]] == ["serverless"]
    code, out, _ = run(capsys, "status", "sl")
    assert code == 0
    assert "None" not in out and "serverless" in out


def test_status_while_creating_shows_no_placeholder_values(capsys, sandbox, sm, ecr):
    model(sm, ecr, "m-c")
    config(sm, "c-c", "m-c")
    hold_deployments(sandbox)
    sm.create_endpoint(EndpointName="creating", EndpointConfigName="c-c")
    try:
        code, out, _ = run(capsys, "status", "creating")
        doc = run_json(capsys, "status", "creating")[1]
    finally:
        release_deployments(sandbox)
    assert code == 0
    assert "None" not in out and "?" not in out
    assert "in progress: Creating" in out
    assert ISO_Z.match(doc["last_modified"])


def test_history_times_are_iso_z_and_a_rollback_rewrites_no_revision(capsys, dep):
    assert run(capsys, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q")[0] == 0
    before = {r["number"]: r for r in run_json(capsys, "history", ASYNC_EP)[1]["revisions"]}
    assert all(ISO_Z.match(r["created_at"]) for r in before.values())
    assert (before[0]["outcome"], before[0]["live"]) == ("original", False)
    assert run(capsys, "rollback", ASYNC_EP, "--to", "0", "--yes", "-q")[0] == 0
    after = {r["number"]: r for r in run_json(capsys, "history", ASYNC_EP)[1]["revisions"]}
    assert (after[0]["outcome"], after[0]["live"]) == ("original", True)
    for n in (0, 1):
        assert (after[n]["created_at"], after[n]["created_by"]) == (before[n]["created_at"], before[n]["created_by"])
    status = run_json(capsys, "status", ASYNC_EP)[1]
    assert ISO_Z.match(status["last_modified"]) and ISO_Z.match(status["last_update"]["created_at"])


def test_listings_keep_the_tag_the_user_gave(capsys, dep):
    assert run(capsys, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q")[0] == 0
    _, out, _ = run(capsys, "endpoints")
    assert "my-sd-webui:v2 (" in out
    _, out, _ = run(capsys, "status", ASYNC_EP)
    assert "my-sd-webui:v2" in out


def test_fleet_summary_is_words_and_rollback_dry_run_names_the_revision(capsys, dep):
    code, out, err = run(capsys, "fleet", "update", dep["custom_image"], "--match", "infer-endpoint-*", "--yes")
    assert code == 0, err
    assert "summary: 2 updated" in out and "{" not in out
    code, out, err = run(capsys, "fleet", "rollback", "--match", "infer-endpoint-*", "--dry-run")
    assert code == 0
    assert err.count("to revision 0") == 2


def test_logs_of_a_variant_that_does_not_exist_is_bad_input(capsys, dep):
    code, _, err = run(capsys, "logs", REALTIME_EP, "--variant", "nope")
    assert code == 2
    assert error_lines(err)[0] == (f"error: Endpoint {REALTIME_EP} has no variant 'nope' (its variants: prod).")


def test_logs_tail_prints_the_last_lines(capsys, dep):
    every = run_json(capsys, "logs", REALTIME_EP, "--since", "1d")[1]["events"]
    code, doc, _ = run_json(capsys, "logs", REALTIME_EP, "--since", "1d", "--tail", "2")
    assert code == 0
    assert len(every) > 2 and doc["events"] == every[-2:]


def test_logs_into_a_closed_pipe_exits_0(sandbox, dep):
    shell = f"'{BYOC}' logs {REALTIME_EP} --since 1d | head -1"
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", shell], env=cli_env(sandbox), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Error" not in proc.stderr and "Traceback" not in proc.stderr


def test_logs_follow_until_settled_stops_when_the_update_ends(capsys, sandbox, dep):
    hold_deployments(sandbox)
    assert run(capsys, "update", REALTIME_EP, dep["custom_image"], "--yes", "--no-wait", "-q")[0] == 0
    threading.Timer(1.0, release_deployments, args=(sandbox,)).start()
    code, _, err = run(capsys, "logs", REALTIME_EP, "--follow", "--until-settled")
    assert code == 0
    assert f"{REALTIME_EP} settled: InService." in err


def test_until_settled_needs_follow(capsys, dep):
    code, _, err = run(capsys, "logs", REALTIME_EP, "--until-settled")
    assert code == 2 and "--follow" in error_lines(err)[1]


def test_a_fix_is_never_broken_inside_a_command(capsys, monkeypatch, sandbox, dep):
    monkeypatch.setenv("COLUMNS", "50")
    assert run(capsys, "update", REALTIME_EP, dep["broken_image"], "--yes", "-q")[0] == 1
    doc = run_json(capsys, "diagnose", REALTIME_EP, "--since", "30m")[1]
    fixes = [f["fix"] for f in doc["findings"] if f.get("fix")]
    assert fixes
    _, out, _ = run(capsys, "diagnose", REALTIME_EP, "--since", "30m")
    for fix in fixes:
        assert f"   fix: {fix}" in out.splitlines()



def test_verify_invokes_every_variant_with_target_variant(capsys, two_variants):
    code, doc, err = run_json(capsys, "verify", LONG)
    assert code == 0, err
    answered = [c["detail"] for c in doc["checks"] if c["name"] == "invocation"]
    assert len(answered) == 2
    assert "from variant a " in answered[0] and "from variant b " in answered[1]
