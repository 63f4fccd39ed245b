"""`byoc demo`: run byoc's main job against the embedded sandbox."""

from __future__ import annotations

from typing import Any

import click

from byoc.cli.common import sandbox_extra


@click.command("demo")
@click.option("--time-scale", default=1.0, show_default=True, type=click.FloatRange(min=0.001),
              help="Speed of the simulated SageMaker (0.2 = five times faster).")
def demo_cmd(time_scale: Any) -> int:
    """Start a sandbox, seed a Stable Diffusion on AWS deployment, and walk through byoc's commands."""
    with sandbox_extra():
        from byoc.cli.demo_script import run

        return run(time_scale)


COMMANDS = [demo_cmd]
