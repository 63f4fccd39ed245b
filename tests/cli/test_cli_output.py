"""Output without rough edges: no Python values, one time format in JSON, history that never rewrites
the past, names never cut, COLUMNS respected, per-variant rows, the user's tag kept, the same kind
everywhere, `logs` options (--variant checked, --tail, --follow --until-settled, a closed pipe)."""

from __future__ import annotations

import re
import subprocess
import threading

import pytest

from byoc.sandbox import seed
from support.sandbox import config, endpoint, endpoints, model
from support.update import (
    ASYNC_EP,
    BYOC,
    REALTIME_EP,
    cli_env,
    deployment,
    error_lines,
    hold_deployments,
    release_deployments,
    resources,
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


def test_a_failed_endpoint_shows_no_python_none(capsys, sandbox, sm, ecr):
    endpoint(sm, ecr, "never-served", behavior="crash", wait=False)
    seed.wait_status(sm, "never-served", ("Failed",), timeout=120)
    code, out, _ = run(capsys, "status", "never-served")
    assert code == 0
    assert "None" not in out and "never-served Failed" in out


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


def endpoint_tags(sm, name: str) -> dict:
    arn = sm.describe_endpoint(EndpointName=name)["EndpointArn"]
    return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}


def test_history_times_are_iso_z_and_a_rollback_is_its_own_event(capsys, sm, dep):
    assert run(capsys, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q")[0] == 0
    before = {r["number"]: r for r in run_json(capsys, "history", ASYNC_EP)[1]["revisions"]}
    assert all(ISO_Z.match(r["created_at"]) for r in before.values())
    assert (before[0]["outcome"], before[0]["live"]) == ("original", False)
    r1_tag = endpoint_tags(sm, ASYNC_EP)["byoc:r1"]
    assert run(capsys, "rollback", ASYNC_EP, "--to", "0", "--yes", "-q")[0] == 0
    assert run(capsys, "rollback", ASYNC_EP, "--to", "r1", "--yes", "-q")[0] == 0
    assert run(capsys, "rollback", ASYNC_EP, "--to", "0", "--yes", "-q")[0] == 0
    code, doc, _ = run_json(capsys, "history", ASYNC_EP)
    after = {r["number"]: r for r in doc["revisions"]}
    assert (after[0]["outcome"], after[0]["live"]) == ("original", True)
    assert (after[1]["outcome"], after[1]["live"]) == ("retained", False)
    for n in (0, 1):  # the past is never rewritten: when and by whom each revision was made
        assert (after[n]["created_at"], after[n]["created_by"]) == (before[n]["created_at"], before[n]["created_by"])
    tags = endpoint_tags(sm, ASYNC_EP)
    assert tags["byoc:r1"] == r1_tag and "byoc:r0" not in tags  # each rollback is its own event
    backs = doc["rollbacks"]
    assert [(b["number"], b["revision"], b["outcome"]) for b in backs] == [(3, 0, "deployed"), (2, 1, "deployed"),
                                                                           (1, 0, "deployed")]
    assert all(ISO_Z.match(b["at"]) and b["by"] for b in backs) and backs[0]["at"] > backs[2]["at"]
    _, out, _ = run(capsys, "history", ASYNC_EP)
    assert "Rollbacks of " + ASYNC_EP in out and out.count("deployed") == 3
    status = run_json(capsys, "status", ASYNC_EP)[1]
    assert ISO_Z.match(status["last_modified"]) and ISO_Z.match(status["last_update"]["created_at"])
    assert (status["last_update"]["revision"], status["last_update"]["rollback"]) == (0, True)
    assert "last update: rollback to revision 0 deployed" in run(capsys, "status", ASYNC_EP)[1]


def test_history_keeps_the_newest_events_within_the_tag_limit(capsys, sm, dep):
    from byoc.endpoint.revisions import KEEP_OUTCOME_TAGS

    assert run(capsys, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q")[0] == 0
    for i in range(KEEP_OUTCOME_TAGS + 1):
        assert run(capsys, "rollback", ASYNC_EP, "--to", str(i % 2), "--yes", "-q")[0] == 0
    tags = endpoint_tags(sm, ASYNC_EP)
    events = sorted(k for k in tags if k.startswith("byoc:r"))
    assert len(events) == KEEP_OUTCOME_TAGS and len(tags) <= 50  # SageMaker: at most 50 tags per resource
    assert "byoc:r1" not in events  # the oldest event went first
    backs = run_json(capsys, "history", ASYNC_EP)[1]["rollbacks"]
    assert [b["number"] for b in backs] == list(range(KEEP_OUTCOME_TAGS + 1, 1, -1))


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


def test_logs_follow_until_settled_stops_when_the_update_ends_and_records_it(capsys, sandbox, dep):
    hold_deployments(sandbox)
    assert run(capsys, "update", REALTIME_EP, dep["custom_image"], "--yes", "--no-wait", "-q")[0] == 0
    threading.Timer(1.0, release_deployments, args=(sandbox,)).start()
    code, _, err = run(capsys, "logs", REALTIME_EP, "--follow", "--until-settled")
    assert code == 0
    assert f"{REALTIME_EP} settled: InService." in err
    assert "recorded: revision 1 deployed" in err  # as `update` (or `status --watch`) would have
    revs = run_json(capsys, "history", REALTIME_EP)[1]["revisions"]
    assert [(r["number"], r["outcome"]) for r in revs] == [(1, "live"), (0, "original")]


def test_logs_follow_until_settled_records_a_failed_update_and_exits_1(capsys, sm, dep):
    code, doc, err = run_json(capsys, "update", REALTIME_EP, dep["broken_image"], "--yes", "--no-wait", "-q")
    assert (code, doc["result"]) == (0, "in-progress"), err
    code, _, err = run(capsys, "logs", REALTIME_EP, "--follow", "--until-settled")
    assert code == 1, err
    assert "recorded: revision 1 failed" in err
    revs = run_json(capsys, "history", REALTIME_EP)[1]["revisions"]
    assert [(r["number"], r["outcome"]) for r in revs] == [(1, "failed"), (0, "original")]
    assert doc["endpoint_config"] not in resources(sm)[1]  # the failed attempt's config is swept


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


def test_a_failed_fleet_canary_at_80_columns_cuts_nothing_and_says_where_to_look(capsys, monkeypatch, sandbox, sm,
                                                                                  ecr):
    names = endpoints(sm, ecr, [f"{LONG[:-4]}{i:04d}" for i in range(2)])
    broken, _ = seed.push_image(ecr, "custom", "bad", "crash")
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run(capsys, "fleet", "update", broken, "--endpoints", ",".join(names), "--canary", "1", "--yes")
    assert code == 1, err
    lines = out.splitlines()
    assert lines[0].rstrip() == "Fleet: custom:bad"  # the title never wraps
    assert "…" not in out  # no name and no word of a detail is cut
    assert all(len(line) <= 80 for line in lines if line[:1] in "┏┃┡│└")
    assert any(line.startswith(f"{names[0]}: failed (canary): The primary container for production variant")
               and line.endswith("for this endpoint.") for line in lines)  # the reason whole, on one line
    assert any(line.startswith("  cause: ") for line in lines)  # the diagnosis' first finding
    assert f"  more: byoc diagnose {names[0]} --since 30m" in lines
    assert lines[-1] == "summary: 1 failed, 1 skipped"
    code, doc, _ = run_json(capsys, "fleet", "status", "--endpoints", ",".join(names))
    assert code == 0 and all(ISO_Z.match(e["last_modified"]) for e in doc["endpoints"])  # one time format


def test_policy_help_does_not_promise_an_inline_user_policy(capsys):
    code, out, _ = run(capsys, "policy", "--help")
    text = " ".join(out.split())
    assert code == 0
    assert "2,048" in text and "aws iam create-policy" in text
    assert "ready for `aws iam put-user-policy`" not in text


def test_the_diagnose_an_update_suggests_names_the_wrong_port_beside_the_old_healthy_fleet(capsys, sandbox, ecr, dep):
    image, _ = seed.push_image(ecr, "custom", "port", "wrong-port")
    code, doc, err = run_json(capsys, "update", REALTIME_EP, image, "--yes", "-q")
    assert (code, doc["result"]) == (1, "failed"), err
    assert "wrong-port" in [f["id"] for f in doc["diagnosis"]]
    code, found, _ = run_json(capsys, "diagnose", REALTIME_EP, "--since", "30m")
    assert code == 0
    assert "wrong-port" in [f["id"] for f in found["findings"]]  # judged per instance, not per time window
