"""Shell completion: `byoc completion SHELL` and click's completion protocol, endpoint names from
one ListEndpoints (issue 13)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from byoc.aws.client import Aws
from byoc.cli.main import main
from support.cli import run_cli
from support.sandbox import endpoint

BIN = Path(sys.executable).parent  # the virtualenv's bin, where the `byoc` console script is


def completion_env(*words: str) -> dict:
    """click's completion protocol as the sourced bash script speaks it: complete the last word."""
    return {"_BYOC_COMPLETE": "bash_complete", "COMP_WORDS": " ".join(words), "COMP_CWORD": str(len(words) - 1)}


def complete(monkeypatch, capsys, *words: str) -> list:
    """The completions `byoc` answers for the last word (run in this process)."""
    for key, value in completion_env(*words).items():
        monkeypatch.setenv(key, value)
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([])
    out, err = capsys.readouterr()
    assert info.value.code == 0 and err == "", err
    return [line.split(",", 1)[1] for line in out.splitlines() if line.startswith("plain,")]


@pytest.mark.parametrize("shell, marker", [
    ("bash", "complete -o nosort -F _byoc_completion byoc"),
    ("zsh", "#compdef byoc"),
    ("fish", "complete --no-files --command byoc"),
])
def test_completion_prints_the_script_for_each_shell(capsys, shell, marker):
    code, out, _ = run_cli(capsys, "completion", shell)
    assert code == 0 and marker in out and "_BYOC_COMPLETE" in out


def test_completion_of_an_unknown_shell_is_bad_input(capsys):
    code, _, err = run_cli(capsys, "completion", "powershell")
    assert code == 2 and "powershell" in err


def test_subcommands_options_and_choices_complete(monkeypatch, capsys):
    assert complete(monkeypatch, capsys, "byoc", "ver") == ["verify"]
    assert complete(monkeypatch, capsys, "byoc", "res") == ["restore"]
    assert "--dry-run" in complete(monkeypatch, capsys, "byoc", "update", "--d")
    assert complete(monkeypatch, capsys, "byoc", "completion", "") == ["bash", "zsh", "fish"]


def test_the_bash_script_sourced_in_bash_completes_subcommands():
    script = subprocess.run([str(BIN / "byoc"), "completion", "bash"], capture_output=True, text=True,
                            check=True).stdout
    drive = (script + "\nCOMP_WORDS=(byoc roll); COMP_CWORD=1; _byoc_completion byoc; printf '%s\\n' \"${COMPREPLY[@]}\""
             "\nCOMPREPLY=(); COMP_WORDS=(byoc fleet s); COMP_CWORD=2; _byoc_completion byoc; "
             "printf '%s\\n' \"${COMPREPLY[@]}\"")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    out = subprocess.run([shutil.which("bash") or "bash", "--norc", "-c", drive], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert out.split() == ["rollback", "status"]


def test_endpoint_names_complete_from_the_region(sandbox, sm, ecr, monkeypatch, capsys):
    for name in ("infer-endpoint-a1b2c3d", "infer-endpoint-f9e8d7c", "other-endpoint"):
        endpoint(sm, ecr, name, wait=False)
    # The console script, as the shell runs it.
    proc = subprocess.run([str(BIN / "byoc")], env={**os.environ, **completion_env("byoc", "update", "infer")},
                          capture_output=True, text=True, timeout=60)
    assert (proc.stdout.split(), proc.stderr) == (["plain,infer-endpoint-a1b2c3d", "plain,infer-endpoint-f9e8d7c"], "")
    assert complete(monkeypatch, capsys, "byoc", "verify", "--region", "us-east-1", "o") == ["other-endpoint"]
    assert complete(monkeypatch, capsys, "byoc", "doctor", "--endpoint", "infer-endpoint-f") == ["infer-endpoint-f9e8d7c"]
    assert complete(monkeypatch, capsys, "byoc", "fleet", "status", "--endpoints", "other-endpoint,infer-endpoint-a") == [
        "other-endpoint,infer-endpoint-a1b2c3d"]
    assert complete(monkeypatch, capsys, "byoc", "history", "") == [
        "infer-endpoint-a1b2c3d", "infer-endpoint-f9e8d7c", "other-endpoint"]


def test_endpoint_completion_makes_one_list_endpoints_call(sandbox, sm, ecr, monkeypatch, capsys):
    endpoint(sm, ecr, "infer-endpoint-a1b2c3d", wait=False)
    made = []
    real_init = Aws.__init__

    def recording_init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Aws, "__init__", recording_init)
    assert complete(monkeypatch, capsys, "byoc", "status", "in") == ["infer-endpoint-a1b2c3d"]
    assert [(aws.quick, dict(aws.calls)) for aws in made] == [(True, {"sagemaker:ListEndpoints": 1})]


@pytest.mark.parametrize("env", [
    {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"},  # nothing listens: connection refused
    {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""},  # no credentials
    {"AWS_REGION": "", "AWS_DEFAULT_REGION": ""},  # no region
])
def test_endpoint_completion_is_silent_on_any_error(sandbox, sm, ecr, monkeypatch, capsys, env):
    endpoint(sm, ecr, "infer-endpoint-a1b2c3d", wait=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert complete(monkeypatch, capsys, "byoc", "status", "infer") == []
