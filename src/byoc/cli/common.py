"""Options every AWS-facing command shares, and the context object they build.

Heavy imports (boto3, rich) happen inside functions so `byoc --help` stays fast.
"""

from __future__ import annotations

import functools
import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import click

# Set by the --debug option wherever it appears; read by main() to decide on tracebacks.
DEBUG = {"on": False}


@dataclass
class Ctx:
    region: Optional[str] = None
    profile: Optional[str] = None
    output: str = "text"
    debug: bool = False
    endpoint_url: Optional[str] = None
    _aws: Any = field(default=None, repr=False)

    @property
    def json(self) -> bool:
        return self.output == "json"

    @property
    def aws(self) -> Any:
        """The `byoc.aws.client.Aws` for this invocation, created on first use."""
        if self._aws is None:
            from byoc.aws.client import Aws

            self._aws = Aws(region=self.region, profile=self.profile, endpoint_url=self.endpoint_url)
        return self._aws

    # -- rendering -------------------------------------------------------------------------
    def emit(self, data: Any, text: Optional[Callable[[Any], None]] = None) -> None:
        """One JSON document on stdout with --output json; otherwise `text(console)`."""
        if self.json or text is None:
            click.echo(json.dumps(data, indent=2, default=str, sort_keys=False))
        else:
            text(self.console())

    def console(self) -> Any:
        from rich.console import Console

        console = Console(highlight=False, width=output_width())
        console.on_broken_pipe = closed_pipe  # type: ignore[method-assign]  # rich would exit 1; `byoc logs | head` is a normal end
        return console

    def err_console(self) -> Any:
        from rich.console import Console

        return Console(stderr=True, highlight=False, soft_wrap=True)

    def progress(self, message: str) -> None:
        """Human progress on stderr (never on stdout, which JSON owns)."""
        click.echo(message, err=True)


class Duration(click.ParamType):
    """Seconds given as a number (600) or a duration (10m, 1h30m), the forms --since takes."""

    name = "DURATION"

    def __init__(self, minimum: float = 0.0) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> Any:
        if isinstance(value, (int, float)):
            return value
        from byoc.timespec import seconds

        return seconds(value, f"--{param.name.replace('_', '-')}" if param else "value", self.minimum)


class RevisionNumber(click.ParamType):
    """A revision as `byoc history` shows it: 3 or r3."""

    name = "N"

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> Any:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        digits = text[1:] if text.startswith("r") else text
        if not digits.isdigit():
            from byoc.errors import BadInput

            flag = param.opts[0] if param is not None and param.opts else "--to"
            raise BadInput(f"{flag} '{value}' is not a revision number.",
                           f"Give a number from `byoc history`, e.g. {flag} 2 or {flag} r2.")
        return int(digits)


# Top-level modules the `sandbox` extra installs (pyproject.toml [project.optional-dependencies]).
SANDBOX_MODULES = ("moto", "werkzeug", "flask", "flask_cors", "responses", "xmltodict")


@contextmanager
def sandbox_extra() -> Any:
    """Turn a missing sandbox dependency (a plain `pip install byoc`) into BadInput with the install line."""
    try:
        yield
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in SANDBOX_MODULES:
            raise
        from byoc.errors import BadInput

        raise BadInput(f"The sandbox needs the 'sandbox' extra ({missing} is not installed).",
                       "pip install 'byoc[sandbox]'") from exc


def complete_endpoint(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
    """Shell completion of an endpoint name: one ListEndpoints with short timeouts (with the
    command line's --region/--profile/--endpoint-url), nothing at all on any error."""
    try:
        from byoc.aws.client import Aws
        from byoc.observe.endpoints import names_starting

        p = ctx.params
        aws = Aws(region=p.get("region"), profile=p.get("profile"), endpoint_url=p.get("endpoint_url"), quick=True)
        return names_starting(aws, incomplete)
    except Exception:
        return []


def complete_endpoint_list(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
    """Shell completion of the last name in a comma-separated list of endpoint names."""
    done, _, last = incomplete.rpartition(",")
    head = f"{done}," if done else ""
    return [head + name for name in complete_endpoint(ctx, param, last)]


def closed_pipe() -> None:
    """The reader of stdout went away (`| head`): stop quietly with exit 0."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (tests capture stdout)
        pass
    raise SystemExit(0)


def output_width() -> Optional[int]:
    """The terminal's width on a terminal; otherwise COLUMNS when set, else 200 (piped output keeps
    whole lines so scripts and logs stay readable)."""
    import os

    if sys.stdout.isatty():
        return None
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else 200


def fit_columns(columns: list, rows: list, width: int, droppable: tuple = (), last: str = "",
                min_last: int = 32) -> list:
    """The columns of a table that fit `width`: those in `droppable` go first, in that order, until
    every other column fits whole and `last` (which may wrap) keeps at least `min_last` characters.
    When even that does not fit, `last` is left out too: the caller shows it under the first column."""
    def natural(col: str) -> int:
        return max([len(col)] + [len(str(r.get(col, ""))) for r in rows])

    kept = list(columns)
    for col in (None,) + tuple(droppable):
        if col in kept:
            kept.remove(col)
        fixed = sum(natural(k) + 3 for k in kept if k != last) + 3  # rich: padding and a gap per column
        if fixed + min(natural(last), min_last) <= width:
            return kept
    return [k for k in kept if k != last]


# The command line of this run (set by main), for the command that resumes an interrupted one.
ARGV: list = []


def rerun_command(extra: str = "--yes") -> str:
    """`byoc <this run's arguments>` (with --yes), to resume what an interrupt left to SageMaker."""
    import shlex

    argv = list(ARGV)
    if extra and extra not in argv and "-y" not in argv:
        argv.append(extra)
    return "byoc " + " ".join(shlex.quote(a) for a in argv)


def report_recorded(c: Ctx, recorded: list) -> int:
    """Say what `deploy.settle.record` recorded for a deployment this command saw settle, and return
    the exit code `update` would have given (1 when it failed)."""
    from byoc.errors import EXIT_FAILED, EXIT_OK

    for n, outcome, swept in recorded:
        c.progress(f"recorded: revision {n} {outcome}" + (f"; swept {', '.join(swept)}" if swept else ""))
    return EXIT_FAILED if any(outcome == "failed" for _, outcome, _ in recorded) else EXIT_OK


def confirm_change(question: str) -> bool:
    """Ask on the terminal (default: no). Without a terminal (a pipe, CI) refuse: a change to a
    production endpoint is never confirmed by default (as terraform apply without -auto-approve)."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        from byoc.errors import BadInput

        raise BadInput("No terminal to confirm this change on (stdin or stderr is not a terminal); nothing was changed.",
                       "Check the plan with --dry-run, then use --yes to confirm without a prompt.")
    return click.confirm(question, default=False, err=True)


def _set_debug(ctx: click.Context, param: Optional[click.Parameter], value: Any) -> Any:
    if value:
        DEBUG["on"] = True
    return value


def aws_options(func: Callable) -> Callable:
    """Add --region/--profile/--output/--debug/--endpoint-url/--show-secrets and pass a `Ctx` as `c`."""

    @click.option("--region", envvar=None, help="AWS region (default: the profile's or AWS_REGION).")
    @click.option("--profile", help="AWS named profile (default: boto3's credential chain).")
    @click.option(
        "--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True,
        help="text for people, json for scripts (one document on stdout).",
    )
    @click.option("--debug", is_flag=True, callback=_set_debug, expose_value=True, is_eager=True,
                  help="Show tracebacks.")
    @click.option("--endpoint-url", help="Send every AWS call to this URL (AWS_ENDPOINT_URL works too).")
    @click.option("--show-secrets", is_flag=True,
                  help="Show the values of secret-looking variables (TOKEN, SECRET, PASSWORD, API_KEY ...) in "
                       "log lines and container output instead of ****.")
    @functools.wraps(func)
    def wrapper(region: Optional[str], profile: Optional[str], output: str, debug: bool, endpoint_url: Optional[str], show_secrets: Any, **kwargs: Any) -> Any:
        from byoc import redaction

        redaction.reveal(show_secrets)  # per run: an earlier in-process run must not leave it on
        c = Ctx(region=region, profile=profile, output=output, debug=debug, endpoint_url=endpoint_url)
        return func(c, **kwargs)

    return wrapper


def output_option(func: Callable) -> Callable:
    """--output and --debug only, for commands that need no AWS session."""

    @click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True,
                  help="text for people, json for scripts.")
    @click.option("--debug", is_flag=True, callback=_set_debug, is_eager=True, help="Show tracebacks.")
    @functools.wraps(func)
    def wrapper(output: str, debug: bool, **kwargs: Any) -> Any:
        return func(Ctx(output=output, debug=debug), **kwargs)

    return wrapper
