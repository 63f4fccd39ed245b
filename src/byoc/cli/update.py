"""`byoc update | restore | rollback | history | status`: replace an endpoint's image safely."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Optional

import click

from byoc.cli.common import (
    Ctx,
    Duration,
    RevisionNumber,
    aws_options,
    complete_endpoint,
    confirm_change,
    report_recorded,
    rerun_command,
)
from byoc.cli.options import (
    STRATEGY_HELP,
    apply_options,
    change_options,
    changes,
    check_endpoint_name,
    deployment_config,
    guard_options,
)
from byoc.cli.options import startup_timeout as startup_timeout_option
from byoc.errors import EXIT_INTERRUPTED

if TYPE_CHECKING:
    from rich.console import Console

UPDATE_EXIT = """\b
Exit codes: 0 updated or unchanged; 1 deployment failed, the endpoint is back on its
previous image; 2 bad input or pre-flight refusal (nothing changed); 3 timed out while
SageMaker goes on; 4 credentials or permission problem."""


def render_plan(c: Ctx, plan: Any) -> None:
    if c.json:
        return
    out = c.progress
    out(f"Plan for {plan.endpoint} ({plan.region}), strategy {plan.strategy}:")
    out(f"  image     {plan.previous_image or '-'}")
    out(f"         -> {plan.target}")
    out(f"  digest    {(plan.previous_digest or '-')[:19]} -> {plan.digest[:19]}")
    for variant, (old, new) in plan.instance_types.items():
        out(f"  instance  {variant}: {old} -> {new}")
    lines = []  # values of secret-looking names come masked (byoc.redaction)
    for diff in plan.env_changes.values():
        lines += [f"  env       + {key}={value}" for key, value in diff["added"].items()]
        lines += [f"  env       ~ {key}={old} -> {new}" for key, (old, new) in diff["changed"].items()]
        lines += [f"  env       - {key}" for key in diff["removed"]]
    for line in dict.fromkeys(lines):
        out(line)
    if plan.mode == "unchanged":
        out("  nothing to do: the endpoint already runs this digest (use --force to redeploy)")
    elif plan.mode == "resume":
        out(f"  SageMaker is already deploying {plan.endpoint_config}: byoc watches it to the end")
    elif plan.mode == "reuse":
        out(f"  config    {plan.previous_config} -> {plan.endpoint_config} (revision {plan.revision}, already exists)")
    else:
        out(f"  models    {', '.join(m['ModelName'] for m in plan.create_models)} (new, revision {plan.revision})")
        out(f"  config    {plan.previous_config} -> {plan.endpoint_config} (new)")
    for reg in plan.restore_autoscaling:
        if plan.autoscaling_record is not None:
            out(f"  autoscaling {reg.variant}: left deregistered by an interrupted run; registered again exactly "
                f"({reg.summary()})")
        else:
            out(f"  autoscaling {reg.variant}: deregistered before the update (autoscaling is paused meanwhile), "
                f"registered again exactly afterwards, also if it fails ({reg.summary()})")
    if plan.deletions:
        out(f"  sweep     {', '.join(plan.deletions)} (after a successful deployment; --keep {plan.keep})")
    if plan.extra_capacity:
        extra = ", ".join(f"{n} x {t}" for t, n in plan.extra_capacity.items())
        out(f"  capacity  {extra} extra while both fleets run (blue/green)")
        for t, n in plan.extra_capacity.items():
            if t in plan.quotas:
                out(f"  quota     '{t} for endpoint usage' is {plan.quotas[t]}: SageMaker refuses the update (nothing "
                    f"changes) if the account's endpoints hold more than {max(0, plan.quotas[t] - n)}")
    if plan.deployment_config:
        import json

        out(f"  deployment {json.dumps(plan.deployment_config)}")
    if plan.startup_timeout:
        out(f"  startup   ContainerStartupHealthCheckTimeoutInSeconds {plan.current_window or '-'} -> "
            f"{plan.startup_timeout} (--startup-timeout; the only other change)")
    if plan.startup_review:
        out(f"  startup   {plan.startup_review.text()}")
    if plan.prove:
        out(f"  prove     {', '.join(plan.idle_variants)} at 0 instances: nothing for SageMaker to health-check, so "
            "the new fleet starts on the config's initial instance count, and one request must succeed before "
            f"`updated`; otherwise byoc rolls back to {plan.previous_config} (autoscaling is not touched and scales "
            "the instance in when idle; --no-verify skips this)")
    from byoc.deploy.executor import DisplayExecutor

    DisplayExecutor(out).execute(plan)
    for w in plan.warnings:
        click.secho(f"  warning: {w}", fg="yellow", err=True)


def progress_printer(c: Ctx, quiet: bool) -> Any:
    start = time.monotonic()

    def events(kind: Any, **data: Any) -> None:
        if c.json and quiet:
            return
        stamp = f"[{time.monotonic() - start:6.1f}s]"
        if kind in ("phase", "countdown"):
            click.echo(f"{stamp} {data['text']}", err=True)
        elif kind == "verdict":
            click.secho(f"{stamp} {data['text']}", fg="red", bold=True, err=True)
            for line in finding_lines(data["finding"]):
                click.echo(f"{stamp}   {line}", err=True)
            when = data.get("rollback_expected_at")
            by = f" by about {when[11:16]} UTC ({when})." if when else " when its startup window closes."
            if data.get("serving") is False:  # recreate
                click.echo(f"{stamp}   The endpoint is not serving, and SageMaker does not delete an endpoint that is "
                           f"Creating: it marks it Failed{by} byoc then recreates the previous config.", err=True)
            else:
                click.echo(f"{stamp}   The endpoint keeps serving the previous image; SageMaker rolls the new fleet "
                           f"back{by}", err=True)
        elif kind == "log" and not quiet:
            e = data["event"]
            click.echo(f"{stamp}   {e.get('logStreamName', '?')} | {e.get('message', '').rstrip()}", err=True)

    return events


def finding_lines(f: dict) -> list:
    """A diagnosis finding as `byoc diagnose` prints it: cause, evidence, fix."""
    lines = [f"cause: {f.get('cause')}"]
    lines += [f"evidence: {_evidence(e)}" for e in (f.get("evidence") or [])[:2]]
    if f.get("fix"):
        lines.append(f"fix: {f.get('fix')}")
    return lines


def run_plan(c: Ctx, plan: Any, *, yes: bool, dry_run: bool, no_wait: bool, timeout: Any, quiet: bool,
             fail_fast: bool = False, no_verify: bool = False) -> int:
    from byoc.deploy import apply
    from byoc.deploy.executor import result_of
    from byoc.deploy.plan import no_verify as skip_verification

    if no_verify:
        skip_verification(plan)
    render_plan(c, plan)
    if dry_run:
        return emit_result(c, apply.dry_run(plan))
    if not yes and plan.mode != "unchanged" and not confirm_change(question(plan)):
        return emit_result(c, result_of(plan, "declined", time.monotonic()))
    started = time.monotonic()
    try:
        result = apply.apply(c.aws, plan, wait=not no_wait, timeout=timeout, events=progress_printer(c, quiet),
                             fail_fast=fail_fast)
    except KeyboardInterrupt:
        # The lock is released (the executor's finally); SageMaker goes on with whatever UpdateEndpoint started.
        result = result_of(plan, "in-progress", started, resume_command=rerun_command(), interrupted=True)
        emit_result(c, result)
        return EXIT_INTERRUPTED
    return emit_result(c, result)


def question(plan: Any) -> str:
    """The confirmation prompt: what changes, and for recreate that the endpoint stops serving and for how long."""
    if plan.strategy == "recreate":
        window = plan.startup_timeout or plan.current_window
        broken = (f" If the new image cannot start, it stays down until its {window // 60}-minute startup window "
                  "closes, then byoc recreates the previous config." if window else "")
        return (f"Recreate {plan.endpoint}? It is deleted and created again: it stops serving until the new one is "
                f"InService, usually 5-15 minutes (GPU instances, large images: longer), and async requests queued "
                f"meanwhile are lost.{broken} Continue?")
    return f"Update {plan.endpoint} to {plan.target} (blue/green: it keeps serving)?"


def emit_result(c: Ctx, result: Any) -> int:
    def text(console: Console) -> None:
        from rich.markup import escape

        if result.result == "declined":
            console.print(f"declined: nothing was changed on {result.endpoint}.", markup=False)
            return
        if result.interrupted:
            serving = ("it serves again once InService" if result.strategy == "recreate"
                       else "the endpoint keeps serving (blue/green) meanwhile")
            console.print(f"interrupted: byoc stopped watching {result.endpoint}. SageMaker carries on with a deployment "
                          f"it started; {serving}.", markup=False, soft_wrap=True)
            console.print(f"To resume watching and record the outcome: {result.resume_command}", markup=False,
                          soft_wrap=True)
            return

        colour = {"updated": "green", "unchanged": "green", "failed": "red", "failing": "red",
                  "timeout": "yellow"}.get(result.result, "")
        console.print(f"[bold {colour}]{result.result}[/]: {result.endpoint} "
                      f"{'now runs' if result.result == 'updated' else 'target'} {result.image} "
                      f"(revision {result.revision}, config {result.endpoint_config}) in {result.elapsed_seconds}s",
                      soft_wrap=True)  # URIs and commands stay on one line, whole, for copy and paste
        if result.downtime_seconds is not None:
            console.print(f"downtime (recreate): {result.downtime_seconds}s")
        if result.verdict_seconds is not None:
            console.print(f"early verdict {result.verdict_seconds}s after UpdateEndpoint; SageMaker's startup window "
                          f"closes at {result.rollback_expected_at}", markup=False)
        if result.result == "failing":
            console.print(f"The endpoint keeps serving its previous image {result.previous_image}; SageMaker rolls the "
                          "new fleet back by itself. The next byoc command on it records the outcome and sweeps "
                          f"(`byoc status {result.endpoint} --watch` follows it).", soft_wrap=True, markup=False)
        if result.result in ("failed", "failing"):
            if result.result == "failed":
                console.print(f"The endpoint still serves its previous image {result.previous_image}.", soft_wrap=True)
                console.print(f"FailureReason: {result.failure_reason}")
            for n, f in enumerate(result.diagnosis[:5], 1):
                console.print(f"{n}. {escape('[' + f.get('severity', '') + ']')} [bold]{escape(f.get('title', ''))}[/]")
                # Whole lines (soft_wrap): a command inside a fix must never get a line break.
                console.print(f"   cause: {f.get('cause')}", markup=False, soft_wrap=True)
                for e in (f.get("evidence") or [])[:2]:
                    console.print(f"   evidence: {_evidence(e)}", markup=False, soft_wrap=True)
                if f.get("fix"):
                    console.print(f"   fix: {f.get('fix')}", markup=False, soft_wrap=True)
            if result.diagnosis:
                console.print(f"More: byoc diagnose {result.endpoint} --since 30m", markup=False)
        if result.resume_command:
            console.print(f"SageMaker goes on; to resume watching: {result.resume_command}", soft_wrap=True)
        for w in result.warnings:
            console.print(f"[yellow]warning:[/] {w}")

    c.emit(result.to_dict(), text)
    return result.exit_code


def _evidence(e: Any) -> str:
    """One evidence item of a diagnosis finding, as `byoc diagnose` prints it."""
    if not isinstance(e, dict):
        return str(e)
    if e.get("stream"):
        from byoc.timespec import iso

        when = iso(e["timestamp"]) if e.get("timestamp") else ""
        return f"{when} {e['stream']} | {e.get('text', '')}".strip()
    if e.get("source") == "failure_reason":
        return f"DescribeEndpoint FailureReason: {e.get('text', '')}"
    return str(e.get("text", e))


@click.command("update", epilog=UPDATE_EXIT)
@click.argument("endpoint", shell_complete=complete_endpoint)
@click.argument("image")
@apply_options
@click.option("--strategy", type=click.Choice(["blue-green", "recreate"]), default="blue-green", show_default=True,
              help=STRATEGY_HELP)
@click.option("--force", is_flag=True, help="Redeploy even if the endpoint already runs this digest.")
@change_options
@guard_options
@aws_options
def update_cmd(c: Ctx, endpoint: str, image: str, yes: bool, dry_run: bool, no_wait: bool, timeout: Any, keep: Any,
               quiet: bool, no_verify: bool, fail_fast: bool, strategy: Any, force: bool, env: Any, unset_env: Any,
               env_files: Any, instance_type: Any, traffic: Any, rolling: Any, alarms: Any, max_time: Any,
               startup_timeout: Any) -> int:
    """Replace ENDPOINT's container image with IMAGE (an ECR URI, or `default`), with zero downtime.

    The new model and endpoint config copy every setting of the current ones; only the image
    changes, pinned to its digest (and the environment and instance type when asked). SageMaker deploys it blue/green and returns to the previous
    config by itself if the new image fails its health check."""
    from byoc.deploy.plan import plan_update

    check_endpoint_name(endpoint)
    config = deployment_config(traffic, rolling, alarms, max_time)
    plan = plan_update(c.aws, endpoint, image, strategy=strategy, force=force, deployment_config=config, keep=keep,
                       changes=changes(env, unset_env, env_files, instance_type),
                       startup_timeout=startup_timeout_option(startup_timeout))
    return run_plan(c, plan, yes=yes, dry_run=dry_run, no_wait=no_wait, timeout=timeout, quiet=quiet,
                    fail_fast=fail_fast, no_verify=no_verify)


@click.command("restore", epilog=UPDATE_EXIT)
@click.argument("endpoint", shell_complete=complete_endpoint)
@click.option("--default-image", help="The default image URI (default: revision 0's image, or the solution's).")
@apply_options
@click.option("--strategy", type=click.Choice(["blue-green", "recreate"]), default="blue-green", show_default=True,
              help=STRATEGY_HELP)
@guard_options
@aws_options
def restore_cmd(c: Ctx, endpoint: str, default_image: Any, yes: bool, dry_run: bool, no_wait: bool, timeout: Any,
                keep: Any, quiet: bool, no_verify: bool, fail_fast: bool, strategy: Any, traffic: Any, rolling: Any,
                alarms: Any, max_time: Any, startup_timeout: Any) -> int:
    """Put ENDPOINT back on its default image (revision 0's when byoc knows it)."""
    from byoc.deploy.rollback import plan_restore

    check_endpoint_name(endpoint)
    config = deployment_config(traffic, rolling, alarms, max_time)
    plan = plan_restore(c.aws, endpoint, default_image, strategy=strategy, deployment_config=config, keep=keep,
                        startup_timeout=startup_timeout_option(startup_timeout))
    return run_plan(c, plan, yes=yes, dry_run=dry_run, no_wait=no_wait, timeout=timeout, quiet=quiet,
                    fail_fast=fail_fast, no_verify=no_verify)


@click.command("rollback", epilog=UPDATE_EXIT)
@click.argument("endpoint", shell_complete=complete_endpoint)
@click.option("--to", "to", type=RevisionNumber(), help="Revision number, 2 or r2 (default: the previous one). "
              "See `byoc history`.")
@apply_options
@guard_options
@aws_options
def rollback_cmd(c: Ctx, endpoint: str, to: Any, yes: bool, dry_run: bool, no_wait: bool, timeout: Any, keep: Any,
                 quiet: bool, no_verify: bool, fail_fast: bool, traffic: Any, rolling: Any, alarms: Any, max_time: Any,
                 startup_timeout: Any) -> int:
    """Point ENDPOINT back at an earlier revision's retained config (no new resources)."""
    from byoc.deploy.rollback import plan_rollback

    check_endpoint_name(endpoint)
    plan = plan_rollback(c.aws, endpoint, to, deployment_config(traffic, rolling, alarms, max_time),
                         startup_timeout_option(startup_timeout), keep=keep)
    return run_plan(c, plan, yes=yes, dry_run=dry_run, no_wait=no_wait, timeout=timeout, quiet=quiet,
                    fail_fast=fail_fast, no_verify=no_verify)


@click.command("history")
@click.argument("endpoint", shell_complete=complete_endpoint)
@click.option("--diff", "diff", type=RevisionNumber(),
              help="What revision N changed from the revision before it: image, instance type, environment.")
@aws_options
def history_cmd(c: Ctx, endpoint: str, diff: Optional[int]) -> int:
    """Revisions of ENDPOINT: number, image, digest, instance types, when, by whom, outcome, which is live;
    then each rollback (to which revision, when, by whom, outcome)."""
    from byoc.endpoint import revisions
    from byoc.endpoint import view as endpoint_view

    check_endpoint_name(endpoint)
    view = endpoint_view.load(c.aws, endpoint)
    tags = revisions.list_tags(c.aws, view.endpoint["EndpointArn"])
    revs = revisions.history(c.aws, view, tags)
    backs = revisions.rollbacks(tags)
    if diff is not None:
        return _render_diff(c, endpoint, revisions.diff(c.aws, revs, diff))

    def text(console: Console) -> None:
        from rich.table import Table

        table = Table(title=f"History of {endpoint}", title_justify="left")
        for col in ("Rev", "Live", "Image", "Digest", "Instance types", "When", "By", "Outcome"):
            table.add_column(col)
        for r in revs:
            table.add_row(str(r.number), "*" if r.live else "", _short_image(r.image), (r.digest or "-")[7:19],
                          r.instance_types or "-", r.created_at or "-", (r.created_by or "-").split(":", 5)[-1],
                          r.outcome)
        console.print(table)
        for r in revs:
            if r.note:
                console.print(f"revision {r.number}: {r.note}", markup=False)
        if backs:
            table = Table(title=f"Rollbacks of {endpoint}", title_justify="left")
            for col in ("#", "To revision", "When", "By", "Outcome"):
                table.add_column(col)
            for b in backs:
                table.add_row(str(b.number), str(b.revision), b.at or "-", b.by or "-", b.outcome)
            console.print(table)

    c.emit({"endpoint": endpoint, "revisions": [r.to_dict() for r in revs],
            "rollbacks": [b.to_dict() for b in backs]}, text)
    return 0


def _render_diff(c: Ctx, endpoint: str, d: dict) -> int:
    def text(console: Any) -> None:
        console.print(f"{endpoint}: revision {d['from']} -> {d['to']}", markup=False)
        if d["image"]:
            console.print(f"  image          {d['image'][0]} -> {d['image'][1]}", markup=False, soft_wrap=True)
        for variant, (old, new) in d["instance_types"].items():
            console.print(f"  instance type  {variant}: {old} -> {new}", markup=False)
        env = d["env"]
        lines = ([f"+ {k}={v}" for k, v in env["added"].items()]
                 + [f"~ {k}: {old} -> {new}" for k, (old, new) in env["changed"].items()]
                 + [f"- {k}" for k in env["removed"]])
        for line in lines:
            console.print(f"  env            {line}", markup=False, soft_wrap=True)
        if not (d["image"] or d["instance_types"] or lines):
            console.print("  no change in image, instance types or environment")

    c.emit(d, text)
    return 0


def _short_image(image: Optional[str]) -> str:
    """repository[:tag] of an image URI, without registry host or digest."""
    if not image:
        return "-"
    return (image.split("/", 1)[1] if "/" in image else image).split("@", 1)[0]


@click.command("status")
@click.argument("endpoint", shell_complete=complete_endpoint)
@click.option("--watch", "-w", is_flag=True, help="Refresh until no update is in progress (Ctrl-C stops), record "
              "its outcome as `update` would, and exit 1 if it failed.")
@click.option("--interval", default="5s", show_default=True, type=Duration(minimum=0.1),
              help="Time between refreshes: seconds or a duration (5s, 1m).")
@aws_options
def status_cmd(c: Ctx, endpoint: str, watch: Any, interval: Any) -> int:
    """Status, live config, image and digest per variant, instances, autoscaling, last update."""
    from byoc.observe.status import status

    check_endpoint_name(endpoint)
    recorded = []
    while True:
        st = status(c.aws, endpoint)
        if watch:
            # Whoever sees a deployment settle records its outcome and sweeps, as `update` would have.
            from byoc.deploy.settle import record

            recorded += record(c.aws, endpoint)  # nothing while SageMaker is busy or a run holds the lock
            if recorded:
                st = status(c.aws, endpoint)
        if not watch or not st.in_progress:
            break
        if not c.json:
            _render_status(c, st)
        time.sleep(interval)
    code = report_recorded(c, recorded)  # with --watch, exit as `update` would have (1: it failed)
    _render_status(c, st)
    return code


def _instances(v: dict) -> str:
    """current/desired instances; "-" when SageMaker reports none (serverless, Creating, Failed)."""
    current, desired = v.get("current_instances"), v.get("desired_instances")
    if current is None and desired is None:
        return "-"
    return f"{'-' if current is None else current}/{'-' if desired is None else desired}"


def _render_status(c: Ctx, st: Any) -> None:
    def text(console: Console) -> None:
        from rich.markup import escape
        from rich.table import Table

        console.print(f"[bold]{st.endpoint}[/] {st.status} ({st.kind}), config {st.config}, revision {st.revision}")
        if st.solution:
            console.print(f"solution: {st.solution['label']} (generation {st.solution['generation']})")
        table = Table(show_header=True)
        for col in ("Variant", "Instance type", "Instances", "Image", "Digest"):
            table.add_column(col, overflow="fold")
        for i, v in enumerate(st.variants):
            image = st.given_image if i == 0 and st.given_image else v["image"]
            table.add_row(v["name"], v["instance_type"] or ("serverless" if st.kind == "serverless" else "-"),
                          _instances(v), _short_image(image) if "/" in (image or "") else (image or "-"),
                          (v["digest"] or "-")[7:19])
        console.print(table)
        for a in st.autoscaling:
            console.print(f"autoscaling {a['variant']}: {a['min']}..{a['max']} instances, policies: "
                          f"{', '.join(a['policies']) or 'none'}")
        if st.autoscaling_paused:
            console.print(f"[yellow]autoscaling paused:[/] {st.autoscaling_paused}")
        if st.last_update:
            lu = st.last_update
            what = f"rollback to revision {lu['revision']}" if lu.get("rollback") else f"revision {lu['revision']}"
            console.print(f"last update: {what} {lu.get('outcome')} at {lu.get('created_at') or '-'}")
        if st.failure_reason:
            console.print(f"[red]FailureReason:[/] {escape(st.failure_reason)}")
        if st.in_progress:
            ip = st.in_progress
            target = f" -> {ip['target_config']}" if ip.get("target_config") else ""
            console.print(f"[yellow]in progress:[/] {ip['status']}{target}"
                          + (f" (byoc run: {escape(ip['byoc_run'])})" if ip.get("byoc_run") else ""))

    c.emit(st.to_dict(), text)


COMMANDS = [update_cmd, restore_cmd, rollback_cmd, history_cmd, status_cmd]
