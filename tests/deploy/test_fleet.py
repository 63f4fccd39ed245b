"""`byoc fleet`: plan all first, canaries, bounded concurrency under throttling, stop on failure."""

from __future__ import annotations

import pytest

from byoc.sandbox import seed
from support.sandbox import control, endpoint
from support.update import resources, run, run_json


def _fleet(sm, ecr, n, prefix="team"):
    for i in range(n):
        endpoint(sm, ecr, f"{prefix}-{i:02d}", wait=False)
    for i in range(n):
        seed.wait_status(sm, f"{prefix}-{i:02d}")


def _digests(sm, names):
    return {n: sm.describe_endpoint(EndpointName=n)["ProductionVariants"][0]["DeployedImages"][0]["ResolvedImage"]
            .split("@")[1] for n in names}


def test_fleet_of_20_with_concurrency_5_under_throttling_all_updated(sandbox, sm, ecr, capsys):
    _fleet(sm, ecr, 20)
    image, digest = seed.push_image(ecr, "custom", "v2", "healthy")
    control(sandbox, "POST", "/_sandbox/faults", {"service": "sagemaker", "throttle_rps": 5})
    code, doc, err = run_json(capsys, "fleet", "update", image, "--match", "team-*", "--concurrency", "5", "--yes")
    faults = control(sandbox, "GET", "/_sandbox/faults")[1]
    control(sandbox, "DELETE", "/_sandbox/faults")
    assert code == 0, err
    assert doc["summary"] == {"updated": 20}
    assert set(_digests(sm, [f"team-{i:02d}" for i in range(20)]).values()) == {digest}
    assert faults["throttled"] > 0  # the throttle really bit, and every throttled call was retried


def test_failing_canary_stops_the_fleet_and_leaves_the_rest_untouched(sandbox, sm, ecr, capsys):
    _fleet(sm, ecr, 4)
    names = [f"team-{i:02d}" for i in range(4)]
    before = _digests(sm, names)
    broken, _ = seed.push_image(ecr, "custom", "bad", "crash")
    code, doc, err = run_json(capsys, "fleet", "update", broken, "--endpoints", ",".join(names), "--canary", "1",
                              "--concurrency", "2", "--yes")
    assert code == 1, err
    phases = {e["endpoint"]: e["phase"] for e in doc["endpoints"]}
    assert phases == {"team-00": "failed", "team-01": "skipped", "team-02": "skipped", "team-03": "skipped"}
    assert _digests(sm, names) == before  # the canary rolled back; the others never changed


def test_fleet_stops_at_the_first_early_verdict_and_fail_fast_ends_it_failing(sandbox, sm, ecr, capsys):
    for i in range(3):
        endpoint(sm, ecr, f"team-{i:02d}", wait=False,
                 variant_fields={"ContainerStartupHealthCheckTimeoutInSeconds": 3600})
    names = [f"team-{i:02d}" for i in range(3)]
    for n in names:
        seed.wait_status(sm, n)
    before = _digests(sm, names)
    sandbox.app.clock.time_scale = 0.5  # an hour's window lasts 18 s; the verdict comes at the second start
    broken, _ = seed.push_image(ecr, "custom", "bad", "crash")
    code, doc, err = run_json(capsys, "fleet", "update", broken, "--endpoints", ",".join(names), "--yes",
                              "--fail-fast", "--startup-timeout", "1h")
    assert code == 1, err
    phases = {e["endpoint"]: e["phase"] for e in doc["endpoints"]}
    assert phases == {"team-00": "failing", "team-01": "skipped", "team-02": "skipped"}
    assert "Python cannot import xformers" in doc["endpoints"][0]["error"]
    assert sm.describe_endpoint(EndpointName="team-00")["EndpointStatus"] == "Updating"  # SageMaker goes on
    assert _digests(sm, names[1:]) == {n: before[n] for n in names[1:]}  # never started


def test_invoke_error_canary_fails_verification(sandbox, sm, ecr, capsys):
    _fleet(sm, ecr, 2)
    image, _ = seed.push_image(ecr, "custom", "500", "invoke-error")
    code, doc, _ = run_json(capsys, "fleet", "update", image, "--match", "team-*", "--canary", "1", "--yes")
    assert code == 1
    canary = next(e for e in doc["endpoints"] if e["canary"])
    assert canary["phase"] == "failed" and canary["detail"] == "canary verification failed"
    assert next(e for e in doc["endpoints"] if not e["canary"])["phase"] == "skipped"


def test_planning_refusal_changes_nothing(sandbox, sm, ecr, capsys):
    _fleet(sm, ecr, 3)
    image, _ = seed.push_image(ecr, "custom", "arm", "healthy", "arm64")  # arm64 image, x86 instances
    before = resources(sm)
    code, doc, err = run_json(capsys, "fleet", "update", image, "--match", "team-*", "--yes")
    assert code == 2
    assert {e["phase"] for e in doc["endpoints"]} == {"refused"}
    assert all("exec format error" in e["error"] for e in doc["endpoints"])
    assert resources(sm) == before


def test_concurrency_beyond_quota_is_refused_with_a_smaller_concurrency(sandbox, sm, ecr, capsys):
    _fleet(sm, ecr, 3)
    control(sandbox, "POST", "/_sandbox/quotas", {"instance_type": "ml.g5.xlarge", "value": 5})
    image, _ = seed.push_image(ecr, "custom", "v2", "healthy")
    code, doc, _ = run_json(capsys, "fleet", "update", image, "--match", "team-*", "--concurrency", "3", "--yes")
    assert code == 2
    assert "Use --concurrency 2" in doc["endpoints"][0]["error"]
    code, doc, err = run_json(capsys, "fleet", "update", image, "--match", "team-*", "--concurrency", "2", "--yes")
    assert code == 0, err


def test_dry_run_and_selection_errors(sandbox, sm, ecr, capsys):
    _fleet(sm, ecr, 2)
    image, _ = seed.push_image(ecr, "custom", "v2", "healthy")
    before = resources(sm)
    code, doc, _ = run_json(capsys, "fleet", "update", image, "--match", "team-*", "--dry-run")
    assert code == 0 and doc["summary"] == {"planned": 2} and resources(sm) == before
    code, _, err = run(capsys, "fleet", "update", image)
    assert code == 2 and "exactly one of --match" in err
    code, _, err = run(capsys, "fleet", "update", image, "--endpoints", "team-00,nope")
    assert code == 2 and "nope" in err


def test_fleet_rollback_and_status(sandbox, sm, ecr, capsys):
    _fleet(sm, ecr, 2)
    names = ["team-00", "team-01"]
    before = _digests(sm, names)
    image, digest = seed.push_image(ecr, "custom", "v2", "healthy")
    assert run(capsys, "fleet", "update", image, "--match", "team-*", "--yes", "--concurrency", "2")[0] == 0
    code, doc, _ = run_json(capsys, "fleet", "status", "--match", "team-*")
    assert code == 0 and {e["variants"][0]["digest"] for e in doc["endpoints"]} == {digest}
    code, doc, err = run_json(capsys, "fleet", "rollback", "--match", "team-*", "--yes", "--concurrency", "2")
    assert code == 0, err
    assert _digests(sm, names) == before


@pytest.mark.parametrize("bad", ["--concurrency=0", "--canary=-1"])
def test_bad_numbers_are_usage_errors(sandbox, capsys, bad):
    code, _, err = run(capsys, "fleet", "update", "x", "--match", "*", bad)
    assert code == 2 and "Invalid value" in err
