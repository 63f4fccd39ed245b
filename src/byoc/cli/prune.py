"""`byoc prune`: delete the revisions byoc left behind (deleted endpoints, beyond --keep)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from byoc.cli.common import Ctx, aws_options

if TYPE_CHECKING:
    from rich.console import Console


@click.command("prune")
@click.option("--keep", default=5, show_default=True, type=click.IntRange(min=1),
              help="Revisions to keep for each live endpoint (as `byoc update --keep`).")
@click.option("--dry-run", is_flag=True, help="Show what would be deleted; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@aws_options
def prune_cmd(c: Ctx, keep: Any, dry_run: bool, yes: bool) -> int:
    """Delete the models and endpoint configs byoc made whose endpoint is gone, or beyond --keep
    revisions of a live endpoint. Never revision 0, never what an endpoint uses."""
    from byoc.deploy.prune import age, apply_prune, plan_prune

    plan = plan_prune(c.aws, keep)

    def show(console: Console) -> None:
        from rich.table import Table

        if not plan.deletions:
            console.print(f"Nothing to prune in {plan.region} ({plan.tagged} resources tagged by byoc, "
                          f"{plan.live_endpoints} endpoints).")
            return
        table = Table(title=f"byoc prune in {plan.region}: {sum(len(d.names) for d in plan.deletions)} resources",
                      title_justify="left")
        for col in ("Endpoint", "Revision", "Config", "Models", "Image", "Age", "Why"):
            table.add_column(col, overflow="fold")
        for d in plan.deletions:
            table.add_row(d.endpoint, str(d.revision), d.config or "-", ", ".join(d.models) or "-",
                          _short(d.image), age(d.created_at) or "-", d.reason)
        console.print(table)
        if plan.in_use:
            console.print(f"kept, in use by an endpoint: {', '.join(plan.in_use)}")

    if c.json and (dry_run or not plan.deletions):
        c.emit({"plan": plan.to_dict(), "result": "planned" if dry_run else "nothing-to-prune"})
        return 0
    if not c.json:
        show(c.console())
    if dry_run and plan.deletions:
        c.progress("dry run: nothing was deleted (run without --dry-run to delete these).")
    if dry_run or not plan.deletions:
        return 0
    if not yes:
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            from byoc.errors import BadInput

            raise BadInput("byoc prune deletes resources and asks first, but there is no terminal to ask on.",
                           "Run it with --yes (after checking with --dry-run).")
        click.confirm(f"Delete these {sum(len(d.names) for d in plan.deletions)} resources?", abort=True, err=True)
    result = apply_prune(c.aws, plan, on_step=lambda d: c.progress(d.describe()))
    c.emit({"plan": plan.to_dict(), "result": "pruned", "deleted": result.deleted, "skipped": result.skipped},
           lambda console: console.print(f"deleted {len(result.deleted)}"
                                         + (f", skipped {len(result.skipped)} (in use or already gone)"
                                            if result.skipped else "")))
    return 0


def _short(image: str) -> str:
    if not image:
        return "-"
    return image.split("/", 1)[1] if "/" in image else image


COMMANDS = [prune_cmd]
