"""The demo's steps: each one runs a real byoc command against the sandbox and shows it."""

from __future__ import annotations

import shlex

import click


def step(title: str, argv: list) -> int:
    """Print the command as a user would type it, then run it through the real CLI."""
    import sys

    from byoc.cli.main import cli

    sys.stdout.flush()
    click.secho(f"\n== {title}", bold=True, err=True)
    click.secho(f"$ byoc {shlex.join(argv)}", fg="cyan", err=True)
    rv = cli.main(args=argv, prog_name="byoc", standalone_mode=False)
    sys.stdout.flush()
    return rv if isinstance(rv, int) else 0


def run(time_scale: float) -> int:
    from byoc.demo import sandbox_environment, seed_deployment

    with sandbox_environment(time_scale) as sb:
        click.secho(f"Sandbox started at {sb.url}; seeding a Stable Diffusion on AWS deployment ...", err=True)
        dep = seed_deployment(sb)
        step("The endpoints of the deployment", ["endpoints"])
        click.secho(f"\nDemo finished; the sandbox at {sb.url} is stopped. Seeded endpoint(s): "
                    f"{', '.join(dep['endpoints'])}.", err=True)
    return 0
