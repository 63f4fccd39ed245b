"""check-contract against the reference serve program and deliberately broken variants, all
started as local processes on free ports (no container engine needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from byoc.container import contract
from support.cli import first_error, run_cli
from support.fakes.recorder import BROKEN_SERVE, EXAMPLE_SERVE, free_port

HEAVY = b'{"prompt": "a lighthouse", "steps": 50}'  # 50 x 0.05 s: a 2.5 s generation


@pytest.fixture
def serve(tmp_path):
    """Start the example (mode None) or a broken variant; yields its URL."""
    procs = []

    def start(mode=None, **env):
        port = free_port()
        full = dict(os.environ, SAGEMAKER_BIND_TO_PORT=str(port), MODEL_DIR=str(tmp_path / "model"),
                    SERVE_STEP_SECONDS="0.05", **env)
        argv = [sys.executable, str(EXAMPLE_SERVE), "serve"] if mode is None else [sys.executable, str(BROKEN_SERVE), mode]
        procs.append(subprocess.Popen(argv, env=full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return f"http://127.0.0.1:{port}"

    yield start
    for p in procs:
        p.terminate()
        p.wait(timeout=10)




def by_name(report) -> dict:
    return {c.name: c for c in report.checks}


def test_example_serve_passes_every_check_and_answers_ping_while_generating(serve):
    report = contract.check(serve(), HEAVY, startup_timeout=20)
    checks = by_name(report)
    assert report.ok, report.to_dict()
    assert list(checks) == ["ping", "invocation", "ping-while-busy", "response"]
    assert report.timings["pings_while_busy"] >= 3
    assert report.timings["ping_max_seconds"] < contract.PING_LIMIT
    assert "images, parameters, info" in checks["response"].detail


def test_example_serve_returns_png_when_asked_and_skips_the_json_check(serve):
    report = contract.check(serve(), b'{"prompt": "x", "steps": 1}', accept="image/png", startup_timeout=20)
    checks = by_name(report)
    assert report.ok
    assert "response" not in checks
    assert "image/png" in checks["invocation"].detail


def test_payload_the_server_rejects_fails_with_the_payload_fix(serve):
    report = contract.check(serve(), b'{"prompt": 7}', startup_timeout=20)
    inv = by_name(report)["invocation"]
    assert not inv.ok
    assert "400" in inv.detail and "prompt must be a string" in inv.detail
    assert "--payload" in inv.fix


def test_wrong_port_is_unreachable_and_the_cli_says_so_in_one_line(serve, capsys):
    url = serve("wrong-port")
    report = contract.check(url, startup_timeout=1.5)
    assert report.unreachable and not report.ok
    assert "8080" in report.checks[0].fix
    code, out, err = run_cli(capsys, "check-contract", "--url", url, "--startup-timeout", "1")
    assert code == 2
    assert out == ""
    lines = [line for line in err.splitlines() if line.startswith(("error:", "  fix:"))]
    assert lines[0].startswith(f"error: Nothing answered at {url}")
    assert lines[1].startswith("  fix:") and "8080" in lines[1]
    assert "Traceback" not in err


def test_slow_startup_past_the_window_fails_ping_with_the_startup_fix(serve, capsys):
    url = serve("slow-start")
    code, out, err = run_cli(capsys, "check-contract", "--url", url, "--startup-timeout", "1.5")
    assert code == 1
    assert "FAIL  ping" in out and "503" in out
    assert "ContainerStartupHealthCheckTimeoutInSeconds" in out
    assert "Result: FAIL" in out


def test_ping_blocked_during_inference_fails_ping_while_busy(serve):
    report = contract.check(serve("blocking-ping", BROKEN_SECONDS="3"), startup_timeout=20)
    checks = by_name(report)
    assert checks["ping"].ok and checks["invocation"].ok
    busy = checks["ping-while-busy"]
    assert not busy.ok
    assert "no answer within 2 s" in busy.detail
    assert "worker thread" in busy.fix
    assert not report.ok


def test_500_on_invocations_fails_with_the_server_error_text(serve):
    report = contract.check(serve("error-500"), startup_timeout=20)
    inv = by_name(report)["invocation"]
    assert not inv.ok
    assert "answered 500" in inv.detail and "CUDA out of memory" in inv.detail
    assert "response" not in by_name(report)


def test_non_json_answer_fails_the_response_check(serve, capsys):
    url = serve("non-json")
    code, out, _err = run_cli(capsys, "check-contract", "--url", url, "-o", "json")
    doc = json.loads(out)
    assert code == 1
    assert doc["result"] == "FAIL"
    response = [c for c in doc["checks"] if c["name"] == "response"][0]
    assert response["status"] == "FAIL" and "text/html" in response["detail"]
    assert [c["status"] for c in doc["checks"] if c["name"] != "response"] == ["PASS", "PASS", "PASS"]


def test_cli_passes_with_a_payload_file_and_reports_timings_as_json(serve, capsys, tmp_path):
    payload = tmp_path / "req.json"
    payload.write_bytes(b'{"prompt": "cat", "steps": 4}')
    code, out, err = run_cli(capsys, "check-contract", "--url", serve(), "--payload", str(payload), "-o", "json")
    doc = json.loads(out)
    assert code == 0, err
    assert doc["result"] == "PASS"
    assert set(doc["timings"]) >= {"startup_seconds", "invocation_seconds", "pings_while_busy", "ping_max_seconds"}


@pytest.mark.parametrize("url, message", [
    ("127.0.0.1:8080", "is not an http://HOST:PORT URL"),
    ("https://127.0.0.1:8080", "is not an http://HOST:PORT URL"),
    ("http://127.0.0.1:8080/invocations", "has a path"),
    ("http://127.0.0.1:99999", "invalid port"),
    ("http://no-such-host.invalid:8080", "Cannot resolve host"),
])
def test_bad_urls_are_one_line_bad_input(capsys, url, message):
    code, out, err = run_cli(capsys, "check-contract", "--url", url)
    assert code == 2
    assert message in first_error(err)
    assert out == "" and "Traceback" not in err


def test_missing_payload_file_is_bad_input(capsys, tmp_path):
    code, _out, err = run_cli(capsys, "check-contract", "--url", "http://127.0.0.1:8080",
                              "--payload", str(tmp_path / "nope.json"))
    assert code == 2
    assert "Payload file" in err and "does not exist" in err


def test_example_serve_stops_cleanly_on_sigterm_as_sagemaker_sends_it(tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, str(EXAMPLE_SERVE), "serve"], stdout=fh, stderr=subprocess.STDOUT,
                                env=dict(os.environ, SAGEMAKER_BIND_TO_PORT=str(port), MODEL_DIR=str(tmp_path)))
        report = contract.check(f"http://127.0.0.1:{port}", b'{"steps": 1}', startup_timeout=20)
        proc.terminate()
        assert proc.wait(timeout=20) == 0
    assert report.ok
    assert log.read_text().splitlines()[-1].endswith("serve: stopped")


def test_example_serve_refuses_other_arguments():
    done = subprocess.run([sys.executable, str(EXAMPLE_SERVE), "train"], capture_output=True, text=True)
    assert done.returncode == 2 and "usage:" in done.stderr


def test_a_refused_url_is_said_once_and_given_up_after_the_grace_period(capsys, monkeypatch):
    """Nothing listens: one "connection refused" line, then byoc stops after the grace period, not
    after the whole --startup-timeout; --wait keeps waiting (here for the short startup timeout)."""
    from byoc.cli import build

    monkeypatch.setattr(build, "REFUSED_GRACE", 1.0)
    monkeypatch.setattr(contract, "PROGRESS_EVERY", 0.1)
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = run_cli(capsys, "check-contract", "--url", url, "--startup-timeout", "10m")
    assert code == 2
    assert err.count("connection refused") == 1 + first_error(err).count("connection refused")
    assert "within 1 s" in first_error(err)
    code, _, err = run_cli(capsys, "check-contract", "--url", url, "--startup-timeout", "2", "--wait")
    assert code == 2 and "during the 2 s startup window" in first_error(err)
