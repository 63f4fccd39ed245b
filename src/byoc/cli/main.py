"""`byoc` entry point: the command group, exit codes, and one-line errors."""

from __future__ import annotations

import importlib
import platform
import sys
from typing import List, Optional

import click

from byoc.cli.common import ARGV, DEBUG, closed_pipe
from byoc.cli.completion import COMPLETE_VAR
from byoc.version import __version__

EXIT_CODES = """\b
Exit codes:
  0  success (updated, unchanged, verify PASS)
  1  deployment failed; the endpoint is back on its previous image (verify: FAIL)
  2  bad input or a pre-flight check failed; nothing was changed
  3  timed out while SageMaker goes on (the command to resume is printed)
  4  credentials or permission problem (the missing action is named)
  5  unexpected internal error (re-run with --debug for the traceback)
  6  declined: you answered no at the confirmation prompt; nothing was changed
130  interrupted (Ctrl-C): nothing new is started; SageMaker finishes what it began
     (the summary and the command that resumes watching are printed)
"""

# Modules that define commands; each exposes COMMANDS (a list of click commands/groups).
COMMAND_MODULES = [
    "byoc.cli.endpoints",
    "byoc.cli.update",
    "byoc.cli.fleet",
    "byoc.cli.prune",
    "byoc.cli.policy",
    "byoc.cli.doctor",
    "byoc.cli.build",
    "byoc.cli.sandbox",
    "byoc.cli.demo",
    "byoc.cli.logs",
    "byoc.cli.diagnose",
    "byoc.cli.verify",
    "byoc.cli.completion",
]


def versions() -> str:
    """byoc's, Python's and botocore's versions (read from metadata: botocore is not imported)."""
    from importlib import metadata

    try:
        botocore = metadata.version("botocore")
    except metadata.PackageNotFoundError:
        botocore = "not installed"
    python = f"{platform.python_version()} ({platform.python_implementation()})"
    return f"byoc {__version__}\nPython {python}\nbotocore {botocore}"


def _print_versions(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(versions())
        ctx.exit()


@click.group(
    help="Bring your own container to a SageMaker endpoint: build, permissions, zero-downtime "
    "image updates with rollback, verification and diagnosis.\n\n" + EXIT_CODES,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_versions,
              help="Show byoc's, Python's and botocore's versions and exit.")
def cli() -> None:
    pass


for _name in COMMAND_MODULES:
    for _cmd in importlib.import_module(_name).COMMANDS:
        cli.add_command(_cmd)


def main(argv: Optional[List[str]]=None) -> None:
    """Run the CLI; ByocError becomes one line on stderr and its exit code."""
    from byoc import redaction
    from byoc.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, ByocError

    DEBUG["on"] = False  # set again by --debug; a previous in-process run must not leave it on
    redaction.reveal(False)  # likewise --show-secrets
    ARGV[:] = list(sys.argv[1:] if argv is None else argv)
    try:
        rv = cli.main(args=argv, prog_name="byoc", complete_var=COMPLETE_VAR, standalone_mode=False)
    except BrokenPipeError:
        closed_pipe()  # `byoc logs ... | head`: the reader has all it wanted; a normal end (exit 0)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(EXIT_BAD_INPUT)
    except ByocError as exc:
        if DEBUG["on"]:
            import traceback

            traceback.print_exc()
        click.echo(f"error: {exc.message}", err=True)
        if exc.fix:
            click.echo(f"  fix: {exc.fix}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # one line, not a traceback, unless --debug
        if DEBUG["on"]:
            raise
        click.echo(f"error: unexpected {type(exc).__name__}: {exc}", err=True)
        click.echo("  fix: re-run with --debug for the traceback and report it.", err=True)
        sys.exit(EXIT_INTERNAL)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        closed_pipe()
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)
