"""`byoc sandbox serve`: run the local AWS sandbox until Ctrl-C / SIGTERM."""

from __future__ import annotations

import click

from byoc.cli.common import sandbox_extra


@click.group("sandbox")
def sandbox_group() -> None:
    """A local server speaking the AWS wire protocols (SageMaker emulated, the rest moto)."""


@sandbox_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=4566, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port to listen on (0: any free port).")
@click.option("--time-scale", default=1.0, show_default=True, type=click.FloatRange(min=0.001),
              help="Multiply every simulated duration (0.1 = ten times faster).")
@click.option("--enforce-iam", is_flag=True, help="Evaluate IAM users' identity policies on every request.")
@click.option("--region", default="us-east-1", show_default=True, help="Region printed in the export lines.")
def serve_cmd(host: str, port: int, time_scale: float, enforce_iam: bool, region: str) -> int:
    """Serve SageMaker, SageMaker Runtime, ECR, Logs, CloudWatch, STS, IAM, Application Auto Scaling,
    S3 and SNS on one port, for any credentials (account 123456789012), any region."""
    import signal
    import threading

    from byoc.errors import BadInput

    with sandbox_extra():
        from byoc.sandbox import Sandbox

        sb = Sandbox(host=host, port=port, time_scale=time_scale, enforce_iam=enforce_iam)
        try:
            sb.start()
        except OSError as exc:
            raise BadInput(f"Cannot listen on {host}:{port}: {exc.strerror}.", "Pick another --port.") from exc
    click.echo(f"# byoc sandbox listening on {sb.url} (time scale {time_scale}{', IAM enforced' if enforce_iam else ''})")
    click.echo("# point boto3 and the AWS CLI at it:")
    for key, value in sb.env(region).items():
        click.echo(f"export {key}={value}")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    sb.stop()
    click.echo("# sandbox stopped", err=True)
    return 0


COMMANDS = [sandbox_group]
