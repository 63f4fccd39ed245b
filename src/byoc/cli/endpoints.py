"""`byoc endpoints`: a table of the region's endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from byoc.cli.common import Ctx, aws_options

if TYPE_CHECKING:
    from rich.console import Console


@click.command("endpoints")
@click.option("--name-contains", help="Only endpoints whose name contains this text.")
@aws_options
def endpoints_cmd(c: Ctx, name_contains: Any) -> int:
    """List endpoints: status, async/real-time, solution generation, instances, image and short digest."""
    from byoc.observe.endpoints import list_endpoints

    listing = list_endpoints(c.aws, name_contains)
    rows = listing.items

    def text(console: Console) -> None:
        from rich.table import Table

        table = Table(title=f"SageMaker endpoints in {c.aws.region}", title_justify="left")
        for col in ("Endpoint", "Status", "Kind", "Solution", "Instance type", "Count", "Image"):
            table.add_column(col)
        for r in rows:
            table.add_row(r.name, r.status, r.kind, r.solution_label, r.instance_type or "-",
                          "-" if r.instances is None else str(r.instances), r.image_short)
        console.print(table if rows else "No endpoints.")
        if listing.skipped:
            console.print(skipped_note(listing.skipped))

    c.emit({"region": c.aws.region, "endpoints": [r.to_dict() for r in rows], "skipped": listing.skipped}, text)
    return 0


def skipped_note(skipped: list) -> str:
    return (f"{len(skipped)} endpoint(s) skipped: your policy may not read them (sagemaker:DescribeEndpoint, "
            "DescribeEndpointConfig or DescribeModel on their names).")


COMMANDS = [endpoints_cmd]
