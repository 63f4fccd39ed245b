"""`byoc sandbox serve` as a subprocess: prints the export lines, answers boto3 and the AWS CLI with
those settings, and stops cleanly (exit 0) on SIGTERM and on SIGINT; a taken port is bad input."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading

import boto3
import pytest

from support.sandbox import aws_executable

pytestmark = pytest.mark.cli


class Served:
    """A running `byoc sandbox serve` whose stdout lines are collected by a reader thread."""

    def __init__(self, *args: str):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen([sys.executable, "-m", "byoc", "sandbox", "serve", "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def exports(self, timeout: float = 60.0) -> tuple:
        """(all lines up to the last export, {name: value}) once the export block is printed."""
        printed, env = [], {}
        while "AWS_DEFAULT_REGION" not in env:
            line = self.lines.get(timeout=timeout)
            assert line is not None, f"serve exited early: {self.proc.stderr.read()}"
            printed.append(line)
            if line.startswith("export "):
                name, _, value = line[len("export "):].partition("=")
                env[name] = value
        return printed, env

    def stop(self, sig) -> tuple:
        self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        return self.proc.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_prints_exports_answers_and_stops_cleanly(sig):
    served = Served("--time-scale", "0.05", "--region", "eu-west-1")
    try:
        printed, env = served.exports()
        assert printed[0].startswith("# byoc sandbox listening on http://127.0.0.1:")
        assert "time scale 0.05" in printed[0]
        assert set(env) == {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION",
                            "AWS_DEFAULT_REGION"}
        assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:") and env["AWS_REGION"] == "eu-west-1"
        session = boto3.session.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                                        region_name=env["AWS_REGION"])
        sts = session.client("sts", endpoint_url=env["AWS_ENDPOINT_URL"])
        assert sts.get_caller_identity()["Account"] == "123456789012"
        sm = session.client("sagemaker", endpoint_url=env["AWS_ENDPOINT_URL"])
        assert sm.list_endpoints()["Endpoints"] == []
        cli_env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **env,
                   "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
        cli = subprocess.run([aws_executable(), "sagemaker", "list-endpoints", "--output", "json"], env=cli_env,
                             capture_output=True, text=True, timeout=120)
        assert cli.returncode == 0 and '"Endpoints": []' in cli.stdout
    finally:
        code, err = served.stop(sig)
    assert code == 0
    assert "# sandbox stopped" in err and "Traceback" not in err


def test_serve_on_a_taken_port_is_bad_input():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        out = subprocess.run([sys.executable, "-m", "byoc", "sandbox", "serve", "--port", str(port)], env=env,
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [f"error: Cannot listen on 127.0.0.1:{port}: Address already in use.",
                                       "  fix: Pick another --port."]
    assert out.stdout == ""


def test_serve_refuses_a_non_positive_time_scale():
    out = subprocess.run([sys.executable, "-m", "byoc", "sandbox", "serve", "--time-scale", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--time-scale" in out.stderr and "Traceback" not in out.stderr
