"""`byoc logs`: an endpoint's CloudWatch log lines from all instances, merged in time order."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from byoc.cli.common import Ctx, aws_options, complete_endpoint, report_recorded

if TYPE_CHECKING:
    from rich.console import Console

PALETTE = ["cyan", "magenta", "green", "yellow", "blue", "bright_red", "bright_cyan", "bright_magenta",
           "bright_green", "bright_yellow"]


FOLLOW_POLL_SECONDS = 2.0
POLL_SETTLED_SECONDS = 2.0
LAST_READ_SECONDS = FOLLOW_POLL_SECONDS + 0.5


class StreamColours:
    """One colour per stream, in order of first appearance."""

    def __init__(self) -> None:
        self._by_stream: dict = {}

    def __call__(self, stream: str) -> str:
        if stream not in self._by_stream:
            self._by_stream[stream] = PALETTE[len(self._by_stream) % len(PALETTE)]
        return self._by_stream[stream]


def line_text(event: dict, colours: StreamColours) -> Any:
    """`<UTC time> <variant>/<instance> | <message>` as rich Text (the message is never markup)."""
    from rich.text import Text

    from byoc.timespec import iso

    stream = event.get("logStreamName", "")
    text = Text(f"{iso(int(event.get('timestamp') or 0))} ", style="dim")
    text.append(stream, style=colours(stream))
    text.append(" | ")
    text.append(str(event.get("message", "")).rstrip("\n"))
    return text


def event_dict(event: dict) -> dict:
    from byoc.timespec import iso

    ts = int(event.get("timestamp") or 0)
    return {"timestamp": ts, "time": iso(ts), "stream": event.get("logStreamName", ""),
            "message": str(event.get("message", "")).rstrip("\n")}


@click.command("logs")
@click.argument("endpoint", shell_complete=complete_endpoint)
@click.option("--since", metavar="WHEN", help="From 10m, 2h, 3d ago or an ISO-8601 time "
              "(default: 1h, or the latest update with --last-update).")
@click.option("--until", metavar="WHEN", help="Up to this time (same forms as --since; default: now).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@click.option("--until-settled", is_flag=True, help="With --follow: stop once no deployment is in progress "
              "(the endpoint is InService, Failed or gone), after a last read; record the outcome of a "
              "deployment byoc started as `update` would, and exit 1 if it failed.")
@click.option("--tail", "tail", type=click.IntRange(min=1), metavar="N",
              help="Only the last N lines of the window (with --follow: then the new ones).")
@click.option("--grep", metavar="PATTERN", help="CloudWatch Logs filter pattern, applied server-side "
              "(e.g. ERROR, \"CUDA out of memory\", ?Traceback ?Error).")
@click.option("--variant", metavar="NAME", help="Only this production variant's instances.")
@click.option("--instance", metavar="ID", help="Only this instance (i-...).")
@click.option("--last-update", is_flag=True, help="Only the instances started by the endpoint's latest update.")
@aws_options
def logs_cmd(c: Ctx, endpoint: str, since: Any, until: Any, follow: bool, until_settled: bool, tail: Any, grep: Any, variant: Any, instance: Any, last_update: Any) -> int:
    """Print ENDPOINT's log lines from every instance, merged in time order.

    Each line is prefixed with its UTC time and stream (<variant>/<instance-id>). With
    -o json: one document, or with --follow one JSON object per line.
    """
    from byoc.errors import BadInput
    from byoc.observe import logs as ops

    if until_settled and not follow:
        raise BadInput("--until-settled only applies to --follow.", "Add --follow (or drop --until-settled).")
    sel = ops.select(c.aws, endpoint, since, until, variant, instance, last_update, follow)
    if follow:
        return _follow(c, endpoint, sel, grep, ops, tail, until_settled)
    read = ops.read_selection(c.aws, endpoint, sel, grep)
    events = read.events[-tail:] if tail else read.events

    def text(console: Console) -> None:
        colours = StreamColours()
        for event in events:
            console.print(line_text(event, colours))
        if not read.events:
            c.progress(f"No log lines in {read.group} for that window and selection.")

    from byoc.timespec import iso

    c.emit({"endpoint": endpoint, "log_group": read.group,
            "since": iso(sel.start) if sel.start is not None else None,
            "until": iso(sel.end) if sel.end is not None else None,
            "streams": [s.name for s in read.streams], "events": [event_dict(e) for e in events]}, text)
    return 0


def _follow(c: Ctx, endpoint: str, sel: Any, grep: Any, ops: Any, tail: Any, until_settled: bool) -> int:
    import dataclasses
    import threading

    stop = threading.Event()
    console = None if c.json else c.console()
    colours = StreamColours()

    def show(event: Any) -> Any:
        if console is None:
            click.echo(json.dumps(event_dict(event)))
        else:
            console.print(line_text(event, colours))

    if tail:
        # The last N lines so far, then new lines from the newest of them on (the follower skips repeats).
        backlog = ops.read_selection(c.aws, endpoint, sel, grep).events[-tail:]
        for event in backlog:
            show(event)
        if backlog:
            sel = dataclasses.replace(sel, start=int(backlog[-1].get("timestamp") or 0) + 1)
    settled: dict = {}
    if until_settled:
        def watch_settle() -> Any:
            while not stop.wait(POLL_SETTLED_SECONDS):
                status = ops.settled_status(c.aws, endpoint)
                if status:
                    settled["status"] = status
                    stop.wait(LAST_READ_SECONDS)  # one more poll of the follower: the lines written last
                    stop.set()

        threading.Thread(target=watch_settle, name="byoc-until-settled", daemon=True).start()
    c.progress(f"Following {ops.log_group(endpoint)} ({'until the deployment settles, ' if until_settled else ''}"
               "Ctrl-C to stop) ...")
    try:
        for event in ops.follow(c.aws, endpoint, sel, stop, grep, poll_seconds=FOLLOW_POLL_SECONDS,
                                on_wait=c.progress):
            show(event)
    except KeyboardInterrupt:
        stop.set()
    if not settled:
        return 0
    c.progress(f"{endpoint} settled: {settled['status']}.")
    if settled["status"] == "Deleted":
        return 0
    # Whoever sees a deployment settle records its outcome and sweeps, as `update` would have.
    from byoc.deploy.settle import record

    return report_recorded(c, record(c.aws, endpoint))


COMMANDS = [logs_cmd]
