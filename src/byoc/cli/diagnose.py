"""`byoc diagnose`: the likely cause of an endpoint's failure, with evidence and the fix."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from byoc.cli.common import Ctx, aws_options, complete_endpoint

if TYPE_CHECKING:
    from rich.console import Console

SEVERITY_STYLE = {"critical": "bold red", "error": "red", "warning": "yellow"}


def render(console: Console, d: Any) -> None:
    """Print a byoc.observe.diagnose.Diagnosis for people (also used by `byoc update` on failure)."""
    from rich.text import Text

    from byoc.cli.logs import StreamColours, line_text
    from byoc.timespec import iso

    console.print(Text.assemble(("Diagnosis of ", ""), (d.endpoint, "bold"), f" ({d.region}): ",
                                (d.status, "bold green" if d.status == "InService" and not d.findings else "bold")))
    if d.failure_reason:
        console.print(Text(f"FailureReason: {d.failure_reason}"))
    console.print()
    if not d.findings:
        console.print("No known failure signature in the endpoint's description or logs.")
    for n, f in enumerate(d.findings, 1):
        head = Text(f"{n}. ")
        head.append(f"[{f.severity}] ", style=SEVERITY_STYLE.get(f.severity, ""))
        head.append(f.title, style="bold")
        if f.symptom:
            head.append(" (symptom)", style="dim")
        console.print(head)
        console.print(Text(f"   cause: {f.cause}"), soft_wrap=True)
        for i, e in enumerate(f.evidence):
            console.print(Text(("   evidence: " if i == 0 else "             ") + str(e)))
        if f.count > len(f.evidence):
            console.print(Text(f"             (seen {f.count:,} times)", style="dim"))
        console.print(Text(f"   fix: {f.fix}", style="green"), soft_wrap=True)  # a command never breaks
        console.print()
    if d.show_key_lines:
        title = "Lines that matter most" + ("" if d.findings else " (no known signature explains them)")
        console.print(Text(title + ":", style="bold"))
        colours = StreamColours()
        for k in d.key_lines:
            line = line_text({"timestamp": k.timestamp, "logStreamName": k.stream, "message": k.message}, colours)
            if k.repeats > 1:
                line.append(f"  (x{k.repeats})", style="dim")
            console.print(line)
        console.print()
    for note in d.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    window = f"since {iso(d.start)}" if d.start is not None else "all"
    more = " (capped: pass a later --since to read the rest)" if d.truncated else ""
    console.print(Text(f"Logs read: {d.events_read:,} lines from {len(d.streams)} stream(s), {window}{more}.",
                       style="dim"))
    console.print(Text(f"CloudWatch console: {d.console_url}"))


@click.command("diagnose")
@click.argument("endpoint", shell_complete=complete_endpoint)
@click.option("--since", metavar="WHEN", help="Read logs from 10m, 2h, 3d ago or an ISO-8601 time "
              "(default: the latest deployment; at most the last 6 h of a live endpoint).")
@aws_options
def diagnose_cmd(c: Ctx, endpoint: str, since: Any) -> int:
    """Explain what is wrong with ENDPOINT's container: ranked findings, each with its cause,
    the evidence (log line or API field) and the fix, then the CloudWatch console link.

    Read-only. Exit 0 when the diagnosis ran, whatever it found.
    """
    from byoc.observe.diagnose import diagnose

    if since:
        from byoc import timespec

        timespec.parse(since, "--since")  # a bad value fails before any AWS call
    d = diagnose(c.aws, endpoint, since=since)
    c.emit(d.to_dict(), lambda console: render(console, d))
    return 0


COMMANDS = [diagnose_cmd]
