"""`byoc verify`: PASS or FAIL, with reasons, for an endpoint's container."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from byoc.cli.common import Ctx, Duration, aws_options, complete_endpoint

if TYPE_CHECKING:
    from rich.console import Console

MARK = {True: ("PASS", "green"), False: ("FAIL", "bold red"), None: ("skip", "dim")}


def render(console: Console, v: Any) -> None:
    from rich.text import Text

    from byoc.cli.logs import StreamColours, line_text

    style = "bold green" if v.passed else "bold red"
    console.print(Text.assemble((v.result, style), f"  {v.endpoint} ({v.region})"))
    for check in v.checks:
        word, colour = MARK[check.ok]
        console.print(Text.assemble("  ", (f"{word:<4}", colour), f" {check.name:<10} {check.detail}"))
        if check.name == "invocation" and v.error_lines:
            console.print(Text("       the container logged:", style="dim"))
            colours = StreamColours()
            for k in v.error_lines:
                line = Text("         ")
                line.append(line_text({"timestamp": k.timestamp, "logStreamName": k.stream, "message": k.message},
                                      colours))
                console.print(line)
    for note in v.notes:
        console.print(Text(f"  note: {note}", style="dim"))
    bad = [f for f in v.findings if f.severity in ("critical", "error")]
    for f in bad:
        console.print(Text(f"  {f.title}: {f.cause}"))
        console.print(Text(f"    evidence: {f.evidence[0]}"))
        console.print(Text(f"    fix: {f.fix}", style="green"))
    if not v.passed:
        console.print(Text(f"  Run `byoc diagnose {v.endpoint}` for the full diagnosis.", style="dim"))


@click.command("verify")
@click.argument("endpoint", shell_complete=complete_endpoint)
@click.option("--image", metavar="URI", help="The ECR image the endpoint should be running (tag or digest).")
@click.option("--payload", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help="Request body to invoke with (default: an empty JSON object; a 4xx answer to it "
                   "still proves /invocations is served).")
@click.option("--content-type", default="application/json", show_default=True, metavar="TYPE",
              help="Content type of the payload.")
@click.option("--timeout", type=Duration(minimum=1), default="5m", show_default=True,
              help="How long to wait for an asynchronous result: seconds or 5m.")
@aws_options
def verify_cmd(c: Ctx, endpoint: str, image: str, payload: Any, content_type: Any, timeout: Any) -> int:
    """Check that ENDPOINT's container works: InService, the expected image (with --image), a
    real invocation (asynchronous endpoints: through S3), and no error signature in the logs
    since the latest deployment.

    Exit 0 on PASS, 1 on FAIL.
    """
    from byoc.errors import EXIT_FAILED, EXIT_OK
    from byoc.observe.verify import verify

    body = None
    if payload:
        with open(payload, "rb") as fh:
            body = fh.read()
    v = verify(c.aws, endpoint, image=image, payload=body, content_type=content_type, timeout=timeout)
    c.emit(v.to_dict(), lambda console: render(console, v))
    return EXIT_OK if v.passed else EXIT_FAILED


COMMANDS = [verify_cmd]
