"""The early verdict from container starts: a cause seen on a restart, once for causes that never
heal, never on a start that answered /ping; and the healthy-start time measured from log lines."""

from __future__ import annotations

from byoc.deploy.verdict import decide
from byoc.diagnosis.starts import healthy_start_seconds, split
from byoc.sandbox.sagemaker import containers

PING_OK = 'INFO:     169.254.178.2:50412 - "GET /ping HTTP/1.1" 200 OK'


def _lines(behavior: str, architecture: str = "amd64") -> list:
    kind, _, arg = behavior.partition("=")
    script = containers.boot(containers.Behavior(kind, arg or None, architecture), "ep", "prod", "ml.g5.xlarge",
                             {"ESD_VERSION": "v1"} if kind == "healthy" else {}, 3600)
    return script.start_lines


def _events(stream: str, starts: list, t0: int = 1_700_000_000_000, every_ms: int = 75_000) -> list:
    """Log events of consecutive container starts (each a list of lines) on one stream."""
    out = []
    for n, lines in enumerate(starts):
        out += [{"logStreamName": stream, "timestamp": t0 + n * every_ms + i, "message": m} for i, m in enumerate(lines)]
    return out


def test_a_crash_loop_gets_a_verdict_at_its_second_start():
    crash = _lines("crash")
    assert decide(_events("prod/i-1", [crash])) is None  # one start: it may still be a transient failure
    verdict = decide(_events("prod/i-1", [crash, crash]))
    assert verdict is not None and verdict.finding.id == "python-import" and verdict.starts == 2
    assert "xformers" in verdict.finding.title and verdict.finding.fix


def test_oom_and_missing_env_loops_get_their_own_verdicts():
    assert decide(_events("prod/i-1", [_lines("oom")] * 2)).finding.id == "cuda-oom"
    assert decide(_events("prod/i-1", [_lines("missing-env=ESD_VERSION")] * 2)).finding.id == "missing-env"


def test_exec_format_error_needs_one_start():
    verdict = decide(_events("prod/i-1", [_lines("healthy", "arm64")]), context={"instance_type": "ml.g5.xlarge"})
    assert verdict is not None and verdict.finding.id == "exec-format" and verdict.starts == 1
    assert "amd64" in verdict.finding.fix


def test_one_transient_traceback_then_a_healthy_ping_gets_no_verdict():
    transient = _lines("crash") + ["Retrying the import with the fallback attention ...",
                                   "INFO:     Uvicorn running on http://0.0.0.0:8080 (Press CTRL+C to quit)", PING_OK]
    assert decide(_events("prod/i-1", [transient])) is None
    # two instances logging the same transient traceback: no restart, so still no verdict
    assert decide(_events("prod/i-1", [_lines("crash")]) + _events("prod/i-2", [_lines("crash")])) is None
    # a start that later served never counts, even when the container was started again
    assert decide(_events("prod/i-1", [transient, _lines("crash")])) is None


def test_ping_timeout_and_slow_start_get_no_verdict():
    assert decide(_events("prod/i-1", [_lines("ping-timeout")] * 3)) is None
    assert decide(_events("prod/i-1", [_lines("slow-start=900")])) is None


def test_starts_split_on_the_first_line_coming_back_and_healthy_time_is_measured():
    healthy = _lines("healthy")
    events = _events("prod/i-1", [_lines("crash"), healthy + [PING_OK]], every_ms=90_000)
    starts = split(events)
    assert [s.number for s in starts] == [1, 2] and starts[1].events[-1]["message"] == PING_OK
    # the healthy start's first line and its 200: len(healthy) ms apart in these synthetic events
    assert healthy_start_seconds(events) == len(healthy) / 1000.0
    assert healthy_start_seconds(_events("prod/i-1", [_lines("crash")])) is None
