"""Options shared by the commands that change endpoints (`update`, `restore`, `rollback`, `fleet`)."""

from __future__ import annotations

from typing import Any, Callable, Optional

import click

from byoc.cli.common import Duration

STRATEGY_HELP = ("blue-green keeps serving; recreate deletes and recreates (Failed endpoints, no room for two "
                 "fleets): the endpoint stops serving meanwhile.")

def apply_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--yes --dry-run --no-wait --timeout --keep --quiet --no-verify --fail-fast of update, restore, rollback."""
    for option in reversed([
        click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation."),
        click.option("--dry-run", is_flag=True, help="Show the plan and stop; change nothing."),
        click.option("--no-wait", is_flag=True, help="Start the deployment and return."),
        click.option("--timeout", default="1h", show_default=True, type=Duration(minimum=1),
                     help="How long to watch before giving up (SageMaker goes on; exit 3): seconds or 10m, 1h."),
        click.option("--keep", default=5, show_default=True, type=click.IntRange(min=1),
                     help="Revisions (models and configs) to keep for instant rollback."),
        click.option("--quiet", "-q", is_flag=True, help="No live log lines while SageMaker works."),
        click.option("--no-verify", is_flag=True,
                     help="On an async endpoint scaled to 0, deploy without proving the new image on one instance "
                          "(the plan says it stays unproven)."),
        click.option("--fail-fast", is_flag=True,
                     help="Exit 1 (result `failing`) at the early verdict from the new instances' logs instead of "
                          "waiting for SageMaker's rollback; the next byoc command records the outcome and sweeps."),
    ]):
        func = option(func)
    return func


def guard_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The deployment guardrails: --traffic --rolling --alarm --max-time, and --startup-timeout."""
    for option in reversed([
        click.option("--traffic", help="all-at-once | canary:PERCENT:BAKE_SECONDS | linear:STEP_PERCENT:BAKE_SECONDS."),
        click.option("--rolling", help="BATCH[%]:BAKE_SECONDS: replace capacity in batches (needs one batch of room)."),
        click.option("--alarm", "alarms", multiple=True, help="CloudWatch alarm that rolls the update back (repeatable)."),
        click.option("--max-time", type=Duration(), help="MaximumExecutionTimeoutInSeconds for the deployment "
                     "(600..28800 s; 10m..8h)."),
        click.option("--startup-timeout", "startup_timeout", type=Duration(),
                     help="ContainerStartupHealthCheckTimeoutInSeconds of the new revision (60s..60m, e.g. 10m): how "
                          "long SageMaker health-checks a failing image before it rolls back."),
    ]):
        func = option(func)
    return func


def change_options(func: Any) -> Any:
    """What an update changes besides the image: --env --unset-env --env-file --instance-type."""
    for option in reversed([
        click.option("--env", "env", multiple=True, metavar="KEY=VALUE",
                     help="Set a container environment variable (repeatable; secret-looking values print as ****)."),
        click.option("--unset-env", "unset_env", multiple=True, metavar="KEY",
                     help="Remove a container environment variable (repeatable)."),
        click.option("--env-file", "env_files", multiple=True, metavar="FILE",
                     help="KEY=VALUE lines ('#' comments) to set; --env wins over it (repeatable)."),
        click.option("--instance-type", "instance_type", multiple=True, metavar="TYPE|VARIANT=TYPE",
                     help="New instance type (VARIANT=TYPE for one variant). Autoscaling of the variant is paused "
                          "meanwhile and registered again exactly."),
    ]):
        func = option(func)
    return func


def changes(env: Any, unset_env: Any, env_files: Any, instance_type: Any) -> Any:
    """The typed Changes of the change options."""
    from byoc.deploy.changes import parse

    return parse(env=env, unset_env=unset_env, env_files=env_files, instance_type=instance_type)


def deployment_config(traffic: Any, rolling: Any, alarms: Any, max_time: Any) -> Any:
    """The UpdateEndpoint DeploymentConfig of the guardrail options (None for the default)."""
    from byoc.deploy import guardrails

    return guardrails.deployment_config(traffic, rolling, tuple(alarms), None if max_time is None else int(max_time))


def startup_timeout(seconds: Any) -> Optional[int]:
    """--startup-timeout within SageMaker's 60 s..60 min, or None."""
    from byoc.deploy import startup

    return None if seconds is None else startup.check(seconds)


def check_endpoint_name(endpoint: str) -> None:
    """Refuse a malformed endpoint name before any AWS session is made (the library checks it too)."""
    from byoc.endpoint.view import require_endpoint_name

    require_endpoint_name(endpoint)
