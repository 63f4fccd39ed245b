"""`byoc build`: exact builder command lines (recording fake builder on PATH), ECR repository
creation and login against the sandbox, the password kept out of argv and output, refusals."""

from __future__ import annotations

import json
import shutil

import pytest

from byoc.images import ref as image_ref
from byoc.sandbox import ACCOUNT
from support.cli import first_error, run_cli
from support.fakes.recorder import ROOT, FakeBuilder

REGISTRY = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
PASSWORD = f"{ACCOUNT}-auth-token"  # what the sandbox's GetAuthorizationToken encodes after "AWS:"


@pytest.fixture
def fake(tmp_path, monkeypatch):
    fb = FakeBuilder(tmp_path / "fake", names=("docker", "finch"))
    for key, value in fb.env().items():
        monkeypatch.setenv(key, value)
    return fb


@pytest.fixture
def context(tmp_path):
    """A copy of the reference container (Dockerfile + serve)."""
    dest = tmp_path / "ctx"
    shutil.copytree(ROOT / "examples", dest)
    return dest




def assert_password_hidden(fake, *texts):
    for argv in fake.argvs():
        assert not any(PASSWORD in a for a in argv), argv
    for text in texts:
        assert PASSWORD not in text


def repositories(ecr) -> dict:
    return {r["repositoryName"]: r for r in ecr.describe_repositories()["repositories"]}


def test_push_creates_the_repository_logs_in_via_stdin_and_prints_the_pinned_uri(sandbox, ecr, fake, context, capsys):
    code, out, err = run_cli(capsys, "build", str(context), "--repository", "sd/webui", "--tag", "v1", "--push")
    assert code == 0, err
    digest = ecr.describe_images(repositoryName="sd/webui", imageIds=[{"imageTag": "v1"}])["imageDetails"][0]["imageDigest"]
    assert out == f"{REGISTRY}/sd/webui@{digest}\n"
    ref = image_ref.parse(out.strip())  # the form `byoc update` takes
    assert (ref.repository, ref.digest, ref.tag) == ("sd/webui", digest, None)
    assert fake.argvs() == [
        ["docker", "login", "--username", "AWS", "--password-stdin", REGISTRY],
        ["docker", "build", "--platform", "linux/amd64", "--tag", f"{REGISTRY}/sd/webui:v1",
         "--file", str(context / "Dockerfile"), str(context)],
        ["docker", "push", f"{REGISTRY}/sd/webui:v1"],
    ]
    assert fake.calls()[0]["stdin"] is True
    assert fake.logins()[REGISTRY] == {"username": "AWS", "password": PASSWORD}
    assert_password_hidden(fake, out, err)
    repo = repositories(ecr)["sd/webui"]
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    assert "Created ECR repository sd/webui (scan on push)" in err
    assert "naming to" in err  # the builder's progress is shown (on stderr)


def test_json_output_and_an_existing_repository_is_reused(sandbox, ecr, fake, context, capsys):
    ecr.create_repository(repositoryName="webui")
    code, out, err = run_cli(capsys, "build", str(context), "--repository", "webui", "--tag", "t1", "--push", "-o", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["repository_created"] is False and doc["pushed"] is True
    assert doc["pinned"] == f"{REGISTRY}/webui@{doc['digest']}"
    assert doc["image"] == f"{REGISTRY}/webui:t1" and doc["builder"] == "docker" and doc["platform"] == "linux/amd64"
    assert repositories(ecr)["webui"]["imageScanningConfiguration"]["scanOnPush"] is False  # left as it was


def test_build_without_push_logs_in_to_the_base_registry_of_another_region(sandbox, ecr, fake, context, capsys):
    base = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.6.0-gpu-py312-cu124-ubuntu22.04-sagemaker"
    (context / "Dockerfile").write_text(f"ARG BASE={base}\nFROM ${{BASE}} AS app\nCOPY serve /opt/program/serve\n")
    code, out, err = run_cli(capsys, "build", str(context), "--repository", "webui", "--tag", "local", "--builder", "finch")
    assert code == 0, err
    assert out == f"{REGISTRY}/webui:local\n"
    assert fake.argvs() == [
        ["finch", "login", "--username", "AWS", "--password-stdin", "763104351884.dkr.ecr.eu-west-1.amazonaws.com"],
        ["finch", "build", "--platform", "linux/amd64", "--tag", f"{REGISTRY}/webui:local",
         "--file", str(context / "Dockerfile"), str(context)],
    ]
    assert fake.logins()["763104351884.dkr.ecr.eu-west-1.amazonaws.com"]["password"] == PASSWORD
    assert "webui" not in repositories(ecr)  # nothing created without --push
    assert_password_hidden(fake, out, err)


def test_dry_run_runs_nothing_and_shows_the_commands(sandbox, ecr, fake, context, capsys):
    code, out, err = run_cli(capsys, "build", str(context), "--repository", "webui", "--tag", "v2", "--push",
                             "--dry-run", "-o", "json")
    assert code == 0, err
    plan = json.loads(out)["plan"]
    assert plan["create_repository"] is True
    assert plan["commands"] == [
        f"docker login --username AWS --password-stdin {REGISTRY}",
        f"docker build --platform linux/amd64 --tag {REGISTRY}/webui:v2 --file {context / 'Dockerfile'} {context}",
        f"docker push {REGISTRY}/webui:v2",
    ]
    assert fake.calls() == []
    assert repositories(ecr) == {}


def test_push_denied_names_the_missing_permission(sandbox, ecr, fake, context, capsys, monkeypatch):
    monkeypatch.setenv("FAKE_PUSH_DENIED", "ecr:InitiateLayerUpload")
    code, out, err = run_cli(capsys, "build", str(context), "--repository", "webui", "--tag", "v1", "--push")
    assert code == 4
    lines = [line for line in err.splitlines() if line.startswith(("error:", "  fix:"))]
    assert lines[0] == f"error: Pushing {REGISTRY}/webui:v1 was denied: your identity lacks ecr:InitiateLayerUpload."
    assert '"Action": "ecr:InitiateLayerUpload"' in lines[1]
    assert out == ""
    assert_password_hidden(fake, out, err)


def test_create_repository_denied_is_an_auth_error(sandbox, ecr, fake, context, capsys):
    sandbox.app.faults.add({"service": "ecr", "operation": "CreateRepository", "fail_next": 1,
                            "error_code": "AccessDeniedException", "status": 400,
                            "message": f"User: arn:aws:iam::{ACCOUNT}:user/dev is not authorized to perform: "
                                       f"ecr:CreateRepository on resource: arn:aws:ecr:us-east-1:{ACCOUNT}:repository/webui"})
    code, _out, err = run_cli(capsys, "build", str(context), "--repository", "webui", "--push")
    assert code == 4
    assert "error: Permission denied: ecr:CreateRepository" in err
    assert not any(argv[1] == "push" for argv in fake.argvs())


def test_failed_build_shows_the_builder_error_and_changes_nothing(sandbox, ecr, fake, context, capsys, monkeypatch):
    monkeypatch.setenv("FAKE_BUILD_FAIL", "1")
    code, out, err = run_cli(capsys, "build", str(context), "--repository", "webui", "--push")
    assert code == 1
    assert "E: Unable to locate package nosuchpackage" in err  # streamed builder output
    error = [line for line in err.splitlines() if line.startswith("error:")][0]
    assert error.startswith("error: The build failed (docker exited with 1): ERROR: failed to solve")
    assert repositories(ecr) == {}
    assert out == ""


@pytest.mark.parametrize("wording", ["1", "dial"], ids=["daemon-message", "docker-login-dial"])
def test_daemon_not_running_is_one_clear_line(sandbox, fake, context, capsys, monkeypatch, wording):
    monkeypatch.setenv("FAKE_NO_DAEMON", wording)
    code, _out, err = run_cli(capsys, "build", str(context), "--repository", "webui", "--push")
    assert code == 2
    assert "error: docker is installed but its daemon is not running." in err
    assert_password_hidden(fake, err)


def test_no_builder_installed_says_which_to_install(sandbox, tmp_path, context, capsys, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    code, out, err = run_cli(capsys, "build", str(context), "--repository", "webui", "--push")
    assert code == 2
    assert first_error(err) == "error: No container builder found: none of docker, finch or podman is on PATH."
    assert "Install Docker" in err and "CloudShell" in err
    code, _out, err = run_cli(capsys, "build", str(context), "--repository", "webui", "--builder", "podman")
    assert code == 2 and "podman is not installed" in err


@pytest.mark.parametrize("args, message", [
    (["--repository", "My_Repo"], "'My_Repo' is not a valid ECR repository name."),
    (["--repository", "a"], "'a' is not a valid ECR repository name."),
    (["--repository", "sd//webui"], "is not a valid ECR repository name."),
    (["--repository", "-webui"], "is not a valid ECR repository name."),
    (["--repository", "sd__webui"], "is not a valid ECR repository name."),
    (["--repository", "webui", "--tag", ".hidden"], "'.hidden' is not a valid image tag."),
    (["--repository", "webui", "--platform", "windows/amd64"], "is not a platform SageMaker runs."),
])
def test_invalid_names_are_refused_before_anything_runs(sandbox, ecr, fake, context, capsys, args, message):
    code, _out, err = run_cli(capsys, "build", str(context), *args, "--push")
    assert code == 2
    assert message in first_error(err)
    assert fake.calls() == [] and repositories(ecr) == {}


def test_missing_dockerfile_and_missing_copy_source_are_refused(sandbox, ecr, fake, tmp_path, context, capsys):
    code, _out, err = run_cli(capsys, "build", str(tmp_path / "nothing"), "--repository", "webui")
    assert code == 2 and "does not exist" in err
    (tmp_path / "empty").mkdir()
    code, _out, err = run_cli(capsys, "build", str(tmp_path / "empty"), "--repository", "webui")
    assert code == 2 and f"No Dockerfile in '{tmp_path / 'empty'}'" in err and "byoc init" in err
    (context / "serve").unlink()
    code, _out, err = run_cli(capsys, "build", str(context), "--repository", "webui", "--push")
    assert code == 2 and "The Dockerfile copies 'serve', which is not in" in err
    assert fake.calls() == [] and repositories(ecr) == {}


def test_the_reference_example_builds_as_is(sandbox, fake, capsys):
    code, out, err = run_cli(capsys, "build", str(ROOT / "examples"), "--repository", "byoc-example",
                             "--tag", "ref", "--push")
    assert code == 0, err
    assert out.startswith(f"{REGISTRY}/byoc-example@sha256:")
    assert fake.argvs()[1][-1] == str(ROOT / "examples")
