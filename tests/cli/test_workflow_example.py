"""The GitHub Actions example runs byoc commands this byoc accepts, non-interactively."""

from __future__ import annotations

import re
import shlex
import warnings
from pathlib import Path

import click
import pytest

from byoc.cli.main import cli

WORKFLOW = Path(__file__).resolve().parents[2] / "examples" / "github-actions" / "deploy.yml"


def byoc_commands() -> list:
    """Each `byoc ...` command of the workflow's run steps (continued lines joined, shell variables
    given sample values, redirections dropped)."""
    text = WORKFLOW.read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        m = re.search(r"(?:run: |^\s+)(byoc .*)$", line)
        if not m:
            continue
        command = re.sub(r'"?\$\{?[A-Z_:0-9]+\}?"?', "x", m.group(1).split(">")[0])
        found.append(shlex.split(command)[1:])
    return found


def unparsed(ctx: click.Context) -> list:
    with warnings.catch_warnings():  # click 8.2 deprecates protected_args (9.0 keeps them in args)
        warnings.simplefilter("ignore", DeprecationWarning)
        return [*ctx.protected_args, *ctx.args]


def parse(argv: list) -> click.Context:
    """Parse `argv` as byoc would, without running anything."""
    group: click.Group = cli
    ctx = group.make_context("byoc", list(argv))
    while True:
        name, command, rest = group.resolve_command(ctx, unparsed(ctx))
        assert command is not None
        ctx = command.make_context(name or "", rest, parent=ctx)
        if not isinstance(command, click.Group):
            return ctx
        group = command


def test_the_workflow_has_the_commands_it_documents():
    assert [c[0] for c in byoc_commands()] == ["build", "update", "verify"]


@pytest.mark.parametrize("argv", byoc_commands(), ids=lambda a: a[0])
def test_each_command_of_the_workflow_parses(argv):
    ctx = parse(argv)
    if argv[0] in ("update", "rollback", "restore"):
        assert ctx.params["yes"], "a runner has no terminal: without --yes byoc refuses to change an endpoint"


def test_a_flag_this_byoc_lacks_is_caught():
    with pytest.raises(click.NoSuchOption):
        parse(["update", "ep", "img", "--no-such-flag"])
