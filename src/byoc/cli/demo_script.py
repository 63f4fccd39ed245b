"""The demo's steps: each one runs a real byoc command against the sandbox and shows it."""

from __future__ import annotations

import shlex
import sys

import click


def step(title: str, argv: list, expect: tuple = (0,)) -> int:
    """Print the command as a user would type it, run it through the real CLI, check its exit code."""
    from byoc.cli.main import cli
    from byoc.errors import ByocError

    sys.stdout.flush()
    click.secho(f"\n== {title}", bold=True, err=True)
    click.secho(f"$ byoc {shlex.join(argv)}", fg="cyan", err=True)
    try:
        rv = cli.main(args=argv, prog_name="byoc", standalone_mode=False)
    except ByocError as exc:
        click.echo(f"error: {exc.message}\n  fix: {exc.fix}", err=True)
        rv = exc.exit_code
    sys.stdout.flush()
    code = rv if isinstance(rv, int) else 0
    if code not in expect:
        raise click.ClickException(f"demo step '{title}' exited {code}, expected {expect}")
    click.secho(f"(exit code {code})", dim=True, err=True)
    return code


def run(time_scale: float) -> int:
    from byoc.demo import sandbox_environment, seed_deployment

    with sandbox_environment(time_scale) as sb:
        click.secho(f"Sandbox started at {sb.url}; seeding a Stable Diffusion on AWS deployment ...", err=True)
        dep = seed_deployment(sb)
        ep = dep["endpoints"][0]
        step("1. The endpoints of the deployment", ["endpoints"])
        step("2. Permissions: the least-privilege policy for every byoc feature", ["policy", "--features", "all"])
        step("3. Status of the async endpoint", ["status", ep])
        step("4. Update it to a custom image (blue/green, live logs; the endpoint keeps serving)",
             ["update", ep, dep["custom_image"], "--yes"])
        step("5. Verify the new image with a real async invocation", ["verify", ep, "--image", dep["custom_image"]])
        step("6. Try a broken image with a 10-minute startup window: a countdown, byoc's early verdict from the "
             "logs, then SageMaker's rollback (exit 1). The sandbox's clock runs 100 times faster than byoc's",
             ["update", ep, dep["broken_image"], "--yes", "--quiet", "--startup-timeout", "10m"], expect=(1,))
        step("7. The endpoint still serves the previous image", ["verify", ep, "--image", dep["custom_image"]])
        step("8. Diagnose the failed attempt from its logs", ["diagnose", ep, "--since", "10m"], expect=(0, 1))
        step("9. History of revisions", ["history", ep])
        step("10. Roll back to the previous revision (the original image)", ["rollback", ep, "--yes", "--quiet"])
        step("11. Forward again with a canary rollout", ["update", ep, dep["custom_image"], "--yes", "--quiet",
                                                        "--traffic", "canary:50:60"])
        step("12. Restore the default image", ["restore", ep, "--yes", "--quiet"])
        comfy = dep["comfy"]["endpoints"][0]
        step("13. A v1.7 ComfyUI endpoint: its revision keeps the solution's naming (comfy-async-<id>-r1)",
             ["update", comfy, dep["custom_image"], "--yes", "--quiet"])
        step("14. Its history", ["history", comfy])
        step("15. The whole fleet, two at a time, one canary first",
             ["fleet", "update", dep["custom_image"], "--match", "infer-endpoint-*", "--concurrency", "2",
              "--canary", "1", "--yes"])
        step("16. Fleet status", ["fleet", "status", "--match", "infer-endpoint-*"])
        step("17. --fail-fast: exit 1 at the early verdict while SageMaker still rolls back by itself",
             ["update", ep, dep["broken_image"], "--yes", "--quiet", "--fail-fast", "--startup-timeout", "10m"],
             expect=(1,))
        step("18. The attempt is failing; the endpoint serves the previous image meanwhile", ["status", ep])
        click.secho(f"\nDemo finished; the sandbox at {sb.url} is stopped.", bold=True, err=True)
    return 0
