"""Bad input gets exit 2 and a fix, never exit 5: regions, policy scope, the sandbox extra, ports,
durations wherever a time is given, revisions as history shows them, and endpoint names that are
close to one that exists or that exist in another region."""

from __future__ import annotations

import json
import sys

import click
import pytest

from byoc.cli.main import cli
from byoc.sandbox import seed
from support.update import ASYNC_EP, deployment, error_lines, run, run_json


def test_a_malformed_region_is_bad_input(capsys):
    code, _, err = run(capsys, "endpoints", "--region", "us_east_1")
    assert code == 2
    lines = error_lines(err)
    assert "'us_east_1' is not an AWS region name" in lines[0]
    assert "us-east-1" in lines[1]


def test_policy_for_every_region_without_an_account_says_what_to_add(capsys):
    code, _, err = run(capsys, "policy", "--region", "*")
    assert code == 2
    lines = error_lines(err)
    assert "--region '*'" in lines[0]
    assert "--account" in lines[1] and "--partition" in lines[1]


@pytest.mark.parametrize("argv", [["sandbox", "serve", "--port", "0"], ["demo"]], ids=["serve", "demo"])
def test_a_missing_sandbox_extra_says_how_to_install_it(capsys, monkeypatch, argv):
    monkeypatch.setitem(sys.modules, "werkzeug.serving", None)  # as after a plain `pip install byoc`
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert error_lines(err) == ["error: The sandbox needs the 'sandbox' extra (werkzeug is not installed).",
                                "  fix: pip install 'byoc[sandbox]'"]


def test_a_port_out_of_range_is_refused(capsys):
    code, _, err = run(capsys, "sandbox", "serve", "--port", "99999")
    assert code == 2
    assert "99999 is not in the range 0<=x<=65535" in err


def test_every_option_has_help_text():
    def walk(cmd, path):
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                yield from walk(sub, path + [name])
            return
        for p in cmd.params:
            if isinstance(p, click.Option) and not p.help:
                yield f"byoc {' '.join(path)} {p.opts[0]}"

    assert list(walk(cli, [])) == []


@pytest.fixture
def dep(sandbox, clients):
    return deployment(clients)


@pytest.mark.parametrize("option, value", [("--timeout", "10m"), ("--timeout", "1h30m"), ("--timeout", "90"),
                                           ("--max-time", "20m")])
def test_durations_are_accepted_wherever_a_time_is_given(capsys, dep, option, value):
    code, doc, err = run_json(capsys, "update", ASYNC_EP, dep["custom_image"], option, value, "--dry-run")
    assert code == 0, err
    if option == "--max-time":
        assert '"MaximumExecutionTimeoutInSeconds": 1200' in json.dumps(doc["plan"])


def test_a_time_that_is_neither_seconds_nor_a_duration_is_refused_with_the_forms(capsys, dep):
    code, _, err = run(capsys, "update", ASYNC_EP, dep["custom_image"], "--timeout", "soon", "--dry-run")
    assert code == 2
    lines = error_lines(err)
    assert lines[0] == "error: --timeout 'soon' is not a number of seconds or a duration."
    assert "10m" in lines[1]


@pytest.mark.parametrize("argv", [["status", "--interval", "2s"], ["verify", "--timeout", "5m", "--help"]])
def test_status_interval_and_verify_timeout_take_durations(capsys, dep, argv):
    code, _, err = run(capsys, argv[0], ASYNC_EP, *argv[1:])
    assert code == 0, err


def test_rollback_takes_a_revision_as_history_shows_it(capsys, dep):
    assert run(capsys, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q")[0] == 0
    code, doc, err = run_json(capsys, "rollback", ASYNC_EP, "--to", "r0", "--dry-run")
    assert code == 0, err
    assert doc["revision"] == 0
    code, _, err = run(capsys, "rollback", ASYNC_EP, "--to", "latest", "--dry-run")
    assert code == 2
    assert "--to r2" in error_lines(err)[1]


def test_a_close_endpoint_name_gets_did_you_mean(capsys, dep):
    code, _, err = run(capsys, "status", "infer-endpoint-a1b2c3")
    assert code == 2
    assert error_lines(err)[0] == ("error: Endpoint 'infer-endpoint-a1b2c3' does not exist in us-east-1. "
                                   "Did you mean infer-endpoint-a1b2c3d?")


def test_an_endpoint_in_another_region_is_named(capsys, sandbox):
    seed.solution(seed.session(sandbox.url, region="us-west-2"), region="us-west-2", realtime_id=None)
    code, _, err = run(capsys, "status", ASYNC_EP, "--region", "us-east-1")
    assert code == 2
    assert error_lines(err) == [f"error: Endpoint '{ASYNC_EP}' does not exist in us-east-1; it exists in us-west-2.",
                                "  fix: Add --region us-west-2."]
