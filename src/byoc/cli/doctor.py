"""`byoc doctor`: check credentials, region, clock, permissions, builder and Python."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from byoc.cli.common import Ctx, aws_options, complete_endpoint

if TYPE_CHECKING:
    from rich.console import Console

_STYLE = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red"}


@click.command("doctor")
@click.option("--endpoint", metavar="NAME", shell_complete=complete_endpoint, help="Also check this endpoint and the permissions on its resources.")
@click.option("--features", default="all", show_default=True, metavar="LIST",
              help="Features whose permissions to check: update,verify,logs,build,fleet, or all.")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Check this identity policy document (e.g. the guide's) instead of simulating yours.")
@aws_options
def doctor_cmd(c: Ctx, endpoint: str, features: Any, policy_file: Any) -> int:
    """A table of checks, each PASS, WARN or FAIL with its fix. Changes nothing.

    Exit 0 when nothing FAILs, 4 when credentials or permissions FAIL, 1 otherwise.
    """
    from byoc.iam import doctor

    report = doctor.run(lambda: c.aws, endpoint, features, document=_read_policy(policy_file) if policy_file else None)

    def text(console: Console) -> None:
        from rich.table import Table
        from rich.text import Text

        table = Table(title="byoc doctor", title_justify="left")
        for col in ("Check", "Status", "Detail", "Fix"):
            table.add_column(col, overflow="fold")
        for check in report.checks:
            table.add_row(check.name, Text(check.status, style=_STYLE[check.status]), Text(check.detail),
                          Text(check.fix))
        console.print(table)
        if report.missing:
            console.print(Text(f"Missing: {', '.join(report.missing)}"))

    c.emit(report.to_dict(), text)
    return report.exit_code


def _read_policy(path: str) -> dict:
    import json

    from byoc.errors import BadInput

    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except OSError as exc:
        raise BadInput(f"Cannot read --policy {path}: {exc.strerror}.", "Pass the path of a JSON policy file.") from exc
    except ValueError as exc:
        raise BadInput(f"--policy {path} is not JSON: {exc}.",
                       "Pass an IAM policy document ({\"Version\": ..., \"Statement\": [...]}).") from exc
    if not isinstance(document, dict) or "Statement" not in document:
        raise BadInput(f"--policy {path} has no Statement.", "Pass an IAM policy document, not a list or a role.")
    return document


COMMANDS = [doctor_cmd]
