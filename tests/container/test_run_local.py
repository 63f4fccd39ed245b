"""`byoc test-image`: the recording fake builder on PATH "runs" images as local programs (the
reference serve program or a broken variant); the container is removed after success, failure
and interruption."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from byoc.container import run_local
from byoc.errors import BadInput
from byoc.sandbox import ACCOUNT
from support.cli import first_error, run_cli
from support.fakes.recorder import FakeBuilder, free_port

PASSWORD = f"{ACCOUNT}-auth-token"


@pytest.fixture
def fake(tmp_path, monkeypatch):
    fb = FakeBuilder(tmp_path / "fake", names=("docker", "podman"))
    for key, value in fb.env().items():
        monkeypatch.setenv(key, value)
    return fb




def refused(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) != 0


def container_name(fake) -> str:
    return next(argv[argv.index("--name") + 1] for argv in fake.argvs() if argv[1] == "run")


def test_passing_image_runs_like_sagemaker_streams_logs_and_is_removed(fake, tmp_path, capsys):
    fake.example("byoc-example:ref")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"steps": 2}')
    port = free_port()
    code, out, err = run_cli(capsys, "test-image", "byoc-example:ref", "--port", str(port), "--model-dir", str(model),
                             "--env", "SERVE_STEP_SECONDS=0.02", "--startup-timeout", "20")
    assert code == 0, err
    name = container_name(fake)
    assert fake.argvs()[0] == ["docker", "info"]  # the engine answers: checked before anything runs
    assert fake.argvs()[1] == ["docker", "run", "--detach", "--name", name, "--publish", f"{port}:8080",
                               "--env", "SERVE_STEP_SECONDS", "--volume", f"{model}:/opt/ml/model",
                               "byoc-example:ref", "serve"]
    assert ["docker", "logs", "--follow", name] in fake.argvs()
    assert fake.argvs()[-1] == ["docker", "rm", "--force", name]
    assert not any("0.02" in a for argv in fake.argvs() for a in argv)  # env values stay out of argv
    assert "  | " in err and f"model directory {model}: 1 files" in err and f"loaded {model / 'config.json'}" in err
    assert "Result: PASS" in out
    assert f"Container {name} removed." in out
    assert refused(port)


def test_failing_image_reports_fail_and_is_removed(fake, capsys):
    fake.broken("broken:500", "error-500")
    port = free_port()
    code, out, err = run_cli(capsys, "test-image", "broken:500", "--port", str(port), "-o", "json")
    assert code == 1
    doc = json.loads(out)
    assert doc["result"] == "FAIL" and doc["removed"] is True
    assert [c["status"] for c in doc["contract"]["checks"]][:2] == ["PASS", "FAIL"]
    assert "CUDA out of memory" in " ".join(c["detail"] for c in doc["contract"]["checks"])
    assert "cuda-oom" in [f["id"] for f in doc["diagnosis"]]  # the catalogue read the container log
    assert fake.argvs()[-1] == ["docker", "rm", "--force", doc["container"]]
    assert refused(port)


def test_container_that_exits_at_start_ends_the_wait_and_is_diagnosed(fake, capsys):
    fake.broken("esd:noenv", "exit-early")
    code, out, err = run_cli(capsys, "test-image", "esd:noenv", "--port", str(free_port()),
                             "--startup-timeout", "600", "-o", "json")
    assert code == 1
    doc = json.loads(out)
    ping = doc["contract"]["checks"][0]
    assert ping["status"] == "FAIL" and "exited with code 1" in ping["detail"]
    assert doc["container_exit_code"] == "1"
    missing = [f for f in doc["diagnosis"] if f["id"] == "missing-env"]
    assert missing and "ESD_VERSION" in missing[0]["title"]
    assert "ESD_VERSION is not set" in err  # streamed log
    assert doc["removed"] is True


def test_server_on_the_wrong_port_fails_and_the_diagnosis_names_it(fake, capsys):
    fake.broken("broken:port", "wrong-port")
    code, out, _err = run_cli(capsys, "test-image", "broken:port", "--port", str(free_port()),
                              "--startup-timeout", "1.5", "-o", "json")
    assert code == 1  # a contract FAIL here, not bad input: the image is what is wrong
    doc = json.loads(out)
    assert doc["contract"]["unreachable"] is True
    assert doc["diagnosis"][0]["id"] == "wrong-port"
    assert doc["removed"] is True


def test_ecr_image_logs_in_with_the_password_on_stdin(sandbox, fake, capsys):
    image = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/sd/webui@sha256:{'a' * 64}"
    fake.example(image)
    code, out, err = run_cli(capsys, "test-image", image, "--port", str(free_port()), "--startup-timeout", "20")
    assert code == 0, err
    assert fake.argvs()[1] == ["docker", "login", "--username", "AWS", "--password-stdin",
                               f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"]
    assert fake.calls()[1]["stdin"] is True
    assert fake.logins()[f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"]["password"] == PASSWORD
    assert all(PASSWORD not in a for argv in fake.argvs() for a in argv)
    assert PASSWORD not in out + err


def test_local_ecr_tagged_image_runs_without_aws_credentials(fake, capsys):
    image = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/sd/webui:local"  # built without --push
    fake.example(image)
    code, out, err = run_cli(capsys, "test-image", image, "--region", "us-east-1", "--port", str(free_port()),
                             "--startup-timeout", "20")
    assert code == 0, err
    assert f"warning: no login to {ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com (No AWS credentials found.)" in err
    assert [argv[1] for argv in fake.argvs()][:2] == ["info", "run"]
    assert "Result: PASS" in out


def test_image_that_cannot_start_is_an_error_and_cleanup_stays_quiet(fake, capsys):
    code, out, err = run_cli(capsys, "test-image", "nosuch:image", "--port", str(free_port()))
    assert code == 1
    error = [line for line in err.splitlines() if line.startswith("error:")][0]
    assert error.startswith("error: Starting nosuch:image failed (docker exited with 125)")
    assert fake.argvs()[-1][:3] == ["docker", "rm", "--force"]
    assert "could not remove" not in err


@pytest.mark.parametrize("wording", ["1", "dial"], ids=["daemon-message", "docker-login-dial"])
@pytest.mark.parametrize("image", ["byoc-example:ref", f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/sd/webui:v1"],
                         ids=["local", "ecr"])
def test_a_builder_without_its_engine_is_one_error_and_runs_nothing(sandbox, fake, capsys, monkeypatch, wording,
                                                                     image):
    monkeypatch.setenv("FAKE_NO_DAEMON", wording)
    code, out, err = run_cli(capsys, "test-image", image, "--port", str(free_port()))
    assert code == 2
    assert err.splitlines() == ["error: docker is installed but its daemon is not running.",
                                "  fix: Start Docker Desktop or `sudo systemctl start docker` (`finch vm start` for "
                                "Finch, `podman machine start` for Podman)."]
    assert out == "" and fake.argvs() == [["docker", "info"]]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_still_removes_the_container(fake, tmp_path, sig):
    fake.broken("broken:slow", "slow-start")
    port = free_port()
    env = dict(os.environ, **fake.env())
    proc = subprocess.Popen([sys.executable, "-m", "byoc", "test-image", "broken:slow", "--port", str(port),
                             "--startup-timeout", "600"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 30
    while not any(argv[1] == "logs" for argv in fake.argvs()) and time.monotonic() < deadline:
        time.sleep(0.05)
    while refused(port) and time.monotonic() < deadline:  # the "container" is up
        time.sleep(0.05)
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    name = container_name(fake)
    assert fake.argvs()[-1] == ["docker", "rm", "--force", name]
    assert refused(port)


@pytest.mark.parametrize("args, message", [
    (["--env", "NOEQUALS"], "--env 'NOEQUALS' is not NAME=VALUE."),
    (["--env", "1BAD=x"], "--env '1BAD=x' is not NAME=VALUE."),
    (["--gpus", "lots"], "--gpus 'lots' is not understood."),
    (["--model-dir", "/no/such/dir"], "Model directory '/no/such/dir' does not exist."),
    (["--port", "70000"], "Port 70000 is out of range."),
    (["--builder", "podman", "--gpus", "2"], "podman cannot take --gpus 2."),
])
def test_bad_input_runs_nothing(fake, capsys, args, message):
    code, out, err = run_cli(capsys, "test-image", "byoc-example:ref", *args)
    assert code == 2
    assert first_error(err) == f"error: {message}"
    assert fake.calls() == [] and out == ""


def test_no_builder_installed_is_one_line(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    code, _out, err = run_cli(capsys, "test-image", "byoc-example:ref")
    assert code == 2
    assert "No container builder found" in err and "CloudShell" in err


def test_gpu_flags_per_builder(fake):
    docker = run_local.plan_test("img:1", gpus="all", builder="docker")
    assert docker.run_argv()[-4:] == ["--gpus", "all", "img:1", "serve"]
    podman = run_local.plan_test("img:1", gpus="device=0,1", builder="podman")
    assert podman.run_argv()[-6:] == ["--device", "nvidia.com/gpu=0", "--device", "nvidia.com/gpu=1", "img:1", "serve"]
    assert run_local.plan_test("img:1", gpus="all", builder="podman").run_argv()[-4:-2] == ["--device", "nvidia.com/gpu=all"]
    with pytest.raises(BadInput):
        run_local.plan_test("bad image", builder="docker")
