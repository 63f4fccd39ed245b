"""`byoc fleet update | rollback | status`: many endpoints, planned first, canaries, bounded concurrency."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any, Callable

import click

from byoc.cli.common import Ctx, Duration, RevisionNumber, aws_options, complete_endpoint_list, confirm_change
from byoc.cli.options import STRATEGY_HELP, change_options, changes, deployment_config, guard_options
from byoc.cli.options import startup_timeout as startup_timeout_option
from byoc.errors import EXIT_DECLINED

if TYPE_CHECKING:
    from rich.console import Console

FLEET_EXIT = """\b
Exit codes: 0 all updated (or unchanged); 1 some failed and are back on their previous image;
2 planning refused (nothing changed); 4 credentials or permission problem."""

COLOURS = {"updated": "green", "unchanged": "green", "failed": "red", "failing": "red", "refused": "red",
           "timeout": "yellow",
           "updating": "cyan", "verifying": "cyan", "skipped": "dim"}


def _selection(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--match", help="Endpoints whose name matches this glob, e.g. 'infer-endpoint-*'."),
        click.option("--endpoints", shell_complete=complete_endpoint_list, help="Comma-separated endpoint names."),
        click.option("--exclude", help="Leave out endpoints matching this glob."),
    ]):
        func = option(func)
    return func


def _table(fleet: Any, width: int) -> Any:
    from rich.markup import escape
    from rich.table import Table

    from byoc.cli.common import fit_columns
    from byoc.observe.endpoints import short_image

    # The title stays short (repository:tag) so it never wraps; names are never cut; details wrap at
    # words, and when even that leaves them too narrow they go under the name (fit_columns, as `endpoints`).
    title = fleet.image if fleet.image.startswith(("revision", "previous")) else short_image(fleet.image)
    table = Table(title=f"Fleet: {title}", title_justify="left")
    cells = [{"Endpoint": i.endpoint, "Canary": "yes" if i.canary else "", "Phase": i.phase,
              "Detail": i.error or i.detail or ""} for i in fleet.items]
    columns = fit_columns(["Endpoint", "Canary", "Phase", "Detail"], cells, width, droppable=("Canary",),
                          last="Detail", min_last=24)
    for col in columns:
        table.add_column(col, overflow="fold", ratio=1 if col == "Detail" else None,
                         min_width=max((len(i.endpoint) for i in fleet.items), default=8) if col == "Endpoint" else None)
    for i, row in zip(fleet.items, cells):
        colour = COLOURS.get(i.phase, "")
        shown = {**row, "Endpoint": escape(row["Endpoint"]), "Detail": escape(row["Detail"]),
                 "Phase": f"[{colour}]{i.phase}[/]" if colour else i.phase}
        if "Detail" not in columns and row["Detail"]:
            shown["Endpoint"] += f"\n  {escape(row['Detail'])}"
        table.add_row(*(shown[col] for col in columns))
    return table


def summary_text(fleet: Any) -> str:
    """`summary: 2 updated, 1 failed` (phases in their usual order)."""
    counts = fleet.summary()
    return "summary: " + (", ".join(f"{counts[p]} {p}" for p in sorted(counts, key=_phase_order)) or "nothing")


def _phase_order(phase: str) -> int:
    from byoc.deploy.fleet import PHASES

    return PHASES.index(phase) if phase in PHASES else len(PHASES)


def _failures(console: Console, fleet: Any) -> None:
    """Each failed endpoint's reason whole, its diagnosis' first finding, and the commands to look further."""
    for i in fleet.items:
        if i.phase not in ("failed", "timeout"):
            continue
        console.print(f"{i.endpoint}: {i.phase}{' (canary)' if i.canary else ''}: {i.error or i.detail}",
                      markup=False, soft_wrap=True)
        for f in ((i.result or {}).get("diagnosis") or [])[:1]:
            console.print(f"  cause: {f.get('cause')}", markup=False, soft_wrap=True)
            if f.get("fix"):
                console.print(f"  fix: {f.get('fix')}", markup=False, soft_wrap=True)
        console.print(f"  more: byoc diagnose {i.endpoint} --since 30m", markup=False, soft_wrap=True)


def _execute(c: Ctx, fleet: Any, *, yes: bool, dry_run: bool, concurrency: Any, continue_on_failure: Any, timeout: Any, keep: Any, verify_canaries: Any, rollback: bool = False,
             fail_fast: bool = False) -> int:
    from byoc.deploy import fleet as fleet_ops

    err = c.err_console()
    if not c.json:
        err.print(_table(fleet, err.width))
    if fleet.refused or dry_run or not any(i.phase == "planned" for i in fleet.items):
        c.emit(fleet.to_dict(), lambda console: console.print(summary_text(fleet)))
        return fleet.exit_code
    if not yes and not confirm_change(f"{'Roll back' if rollback else 'Update'} "
                                      f"{sum(i.phase == 'planned' for i in fleet.items)} endpoint(s)?"):
        c.emit({**fleet.to_dict(), "exit_code": EXIT_DECLINED, "declined": True},
               lambda console: console.print("declined: nothing was changed."))
        return EXIT_DECLINED
    lock = threading.Lock()
    live = None
    if err.is_terminal and not c.json:
        from rich.live import Live

        live = Live(_table(fleet, err.width), console=err, refresh_per_second=4)
        live.start()

    def on_change(item: Any) -> None:
        with lock:
            if live is not None:
                live.update(_table(fleet, err.width))
            elif not c.json:
                click.echo(f"{item.endpoint}: {item.phase} {item.error or item.detail}".rstrip(), err=True)

    try:
        fleet_ops.run(c.aws, fleet, concurrency=concurrency, continue_on_failure=continue_on_failure, timeout=timeout,
                      keep=keep, verify=fleet_ops.verify_with(c.aws) if verify_canaries else None, on_change=on_change,
                      fail_fast=fail_fast)
    finally:
        if live is not None:
            live.stop()
    if fleet.interrupted:
        c.progress("Interrupted: no endpoint was started after Ctrl-C; SageMaker finishes the deployments in flight "
                   "(each row says how to resume watching it).")

    def text(console: Console) -> None:
        console.print(_table(fleet, console.width))
        _failures(console, fleet)
        console.print(summary_text(fleet))

    c.emit(fleet.to_dict(), text)
    if fleet.interrupted:
        # byoc stopped watching the endpoints in flight; their threads must not hold the exit until SageMaker ends.
        import os

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(fleet.exit_code)
    return fleet.exit_code


@click.group("fleet")
def fleet_group() -> None:
    """Update, roll back or inspect many endpoints at once."""


@fleet_group.command("update", epilog=FLEET_EXIT)
@click.argument("image")
@_selection
@click.option("--concurrency", default=1, show_default=True, type=click.IntRange(min=1, max=50),
              help="At most this many endpoints updating at once.")
@click.option("--canary", default=0, show_default=True, type=click.IntRange(min=0),
              help="Update and verify this many endpoints first; the rest only if they pass.")
@click.option("--continue-on-failure", is_flag=True, help="Keep going after a failed endpoint (canaries still stop it).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Plan every endpoint and stop.")
@click.option("--strategy", type=click.Choice(["blue-green", "recreate"]), default="blue-green", show_default=True,
              help=STRATEGY_HELP)
@click.option("--force", is_flag=True, help="Redeploy endpoints that already run this digest.")
@click.option("--timeout", default="1h", show_default=True, type=Duration(minimum=1),
              help="How long to watch each endpoint before giving up (SageMaker goes on): seconds or 10m, 1h.")
@click.option("--keep", default=5, show_default=True, type=click.IntRange(min=1),
              help="Revisions (models and configs) to keep per endpoint for instant rollback.")
@click.option("--fail-fast", is_flag=True,
              help="An endpoint whose new instances' logs give an early verdict ends `failing` at once (exit 1).")
@change_options
@guard_options
@aws_options
def fleet_update_cmd(c: Ctx, image: str, match: Any, endpoints: Any, exclude: Any, concurrency: Any, canary: Any,
                     continue_on_failure: Any, yes: bool, dry_run: bool, strategy: Any, force: bool, timeout: Any,
                     keep: Any, fail_fast: bool, env: Any, unset_env: Any, env_files: Any, instance_type: Any,
                     traffic: Any, rolling: Any, alarms: Any, max_time: Any, startup_timeout: Any) -> int:
    """Update every selected endpoint to IMAGE: plan all, canaries first, then N at a time."""
    from byoc.deploy import fleet as fleet_ops

    config = deployment_config(traffic, rolling, alarms, max_time)
    names = fleet_ops.select(c.aws, match, endpoints, exclude)
    fleet = fleet_ops.plan(c.aws, image, names, concurrency=concurrency, strategy=strategy,
                           deployment_config=config, force=force, canary=canary, keep=keep,
                           changes=changes(env, unset_env, env_files, instance_type),
                           startup_timeout=startup_timeout_option(startup_timeout))
    return _execute(c, fleet, yes=yes, dry_run=dry_run, concurrency=concurrency,
                    continue_on_failure=continue_on_failure, timeout=timeout, keep=keep, verify_canaries=canary > 0,
                    fail_fast=fail_fast)


@fleet_group.command("rollback", epilog=FLEET_EXIT)
@_selection
@click.option("--to", "to", type=RevisionNumber(),
              help="Revision number, 2 or r2 (default: each endpoint's previous revision).")
@click.option("--concurrency", default=1, show_default=True, type=click.IntRange(min=1, max=50),
              help="At most this many endpoints rolling back at once.")
@click.option("--continue-on-failure", is_flag=True, help="Keep going after a failed endpoint.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Show the revision each endpoint returns to, and stop.")
@click.option("--timeout", default="1h", show_default=True, type=Duration(minimum=1),
              help="How long to watch each endpoint before giving up (SageMaker goes on): seconds or 10m, 1h.")
@aws_options
def fleet_rollback_cmd(c: Ctx, match: Any, endpoints: Any, exclude: Any, to: Any, concurrency: Any, continue_on_failure: Any, yes: bool, dry_run: bool, timeout: Any) -> int:
    """Roll every selected endpoint back to its previous revision (or --to N)."""
    from byoc.deploy import fleet as fleet_ops

    names = fleet_ops.select(c.aws, match, endpoints, exclude)
    fleet = fleet_ops.plan_rollback(c.aws, names, to)
    return _execute(c, fleet, yes=yes, dry_run=dry_run, concurrency=concurrency,
                    continue_on_failure=continue_on_failure, timeout=timeout, keep=5, verify_canaries=False,
                    rollback=True)


@fleet_group.command("status")
@_selection
@aws_options
def fleet_status_cmd(c: Ctx, match: Any, endpoints: Any, exclude: Any) -> int:
    """Status, image and last update of every selected endpoint."""
    from byoc.cli.endpoints import skipped_note
    from byoc.deploy import fleet as fleet_ops
    from byoc.observe.endpoints import each_readable
    from byoc.observe.status import status

    names = fleet_ops.select(c.aws, match, endpoints, exclude)
    readable = each_readable(c.aws, names, status)
    statuses = readable.items

    def text(console: Console) -> None:
        from rich.table import Table

        table = Table(title=f"Fleet status ({len(statuses)} endpoints)", title_justify="left")
        for col in ("Endpoint", "Status", "Kind", "Image", "Digest", "Last update", "In progress"):
            table.add_column(col)
        for st in statuses:
            v = st.variants[0] if st.variants else {}
            image = (v.get("image") or "-").split("/", 1)[-1].split("@", 1)[0]
            last = f"r{st.last_update['revision']} {st.last_update.get('outcome')}" if st.last_update else "-"
            table.add_row(st.endpoint, st.status, st.kind, image, (v.get("digest") or "-")[7:19], last,
                          (st.in_progress or {}).get("target_config") or ("yes" if st.in_progress else ""))
        console.print(table)
        if readable.skipped:
            console.print(skipped_note(readable.skipped))

    c.emit({"endpoints": [s.to_dict() for s in statuses], "skipped": readable.skipped}, text)
    return 0


COMMANDS = [fleet_group]
