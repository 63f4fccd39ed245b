"""`byoc endpoints`: a table of the region's endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from byoc.cli.common import Ctx, aws_options, fit_columns

if TYPE_CHECKING:
    from rich.console import Console

# Columns left out first when the terminal (or COLUMNS) is too narrow for all of them.
DROP_ORDER = ("Solution", "Variant", "Kind", "Count")


@click.command("endpoints")
@click.option("--name-contains", help="Only endpoints whose name contains this text.")
@aws_options
def endpoints_cmd(c: Ctx, name_contains: Any) -> int:
    """List endpoints: status, async/real-time/serverless, solution generation, and per variant its
    instance type, instances, image (with the tag it was given) and short digest."""
    from byoc.observe.endpoints import list_endpoints, short_image

    listing = list_endpoints(c.aws, name_contains)
    rows = listing.items

    def text(console: Console) -> None:
        from rich import box
        from rich.table import Table

        if not rows:
            console.print("No endpoints." + (f" {skipped_note(listing.skipped)}" if listing.skipped else ""))
            return
        cells = []
        for r in rows:
            for i, v in enumerate(r.variants or [{}]):
                count = v.get("instances")
                first = i == 0
                cells.append({
                    "Endpoint": r.name if first else "", "Status": r.status if first else "",
                    "Kind": r.kind if first else "", "Solution": r.solution_label if first else "",
                    "Variant": v.get("name") or "-",
                    "Instance type": "serverless" if v.get("serverless") else v.get("instance_type") or "-",
                    "Count": "-" if count is None else str(count),
                    "Image": r.image_short if first else short_image(v.get("image"), v.get("digest"))})
        columns = fit_columns(list(cells[0]), cells, console.width, droppable=DROP_ORDER, last="Image")
        table = Table(title=f"SageMaker endpoints in {c.aws.region}", title_justify="left", box=box.SIMPLE_HEAD)
        for col in columns:
            # Names are never cut (rows could not be told apart): columns are dropped and the image wraps first.
            table.add_column(col, no_wrap=col not in ("Image", "Endpoint"), overflow="fold",
                             min_width=max(len(r[col]) for r in cells) if col == "Endpoint" else None)
        for row in cells:
            if "Image" not in columns and row["Image"]:  # too narrow: the image goes under the name
                row = {**row, "Endpoint": f"{row['Endpoint']}\n  {row['Image']}".lstrip("\n")}
            table.add_row(*(row[col] for col in columns))
        console.print(table)
        if listing.skipped:
            console.print(skipped_note(listing.skipped))

    c.emit({"region": c.aws.region, "endpoints": [r.to_dict() for r in rows], "skipped": listing.skipped}, text)
    return 0


def skipped_note(skipped: list) -> str:
    return (f"{len(skipped)} endpoint(s) skipped: your policy may not read them (sagemaker:DescribeEndpoint, "
            "DescribeEndpointConfig or DescribeModel on their names).")


COMMANDS = [endpoints_cmd]
