"""Apply an update plan: create the revision, UpdateEndpoint (blue/green), watch, then sweep.

SageMaker's blue/green deployment keeps the old fleet serving until the new one passes its
health checks, and returns to the previous config if it does not (API_UpdateEndpoint;
"Blue/Green Deployments" in the SageMaker Developer Guide). byoc never deletes what the
endpoint runs: on failure only the unused new model and config go; on timeout nothing does.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from byoc.aws.client import Aws
from byoc.deploy import autoscaling, capacity, healthwatch, sweep, watch
from byoc.deploy.actions import (
    Events,
    create_revision,
    diagnose_failure,
    emit,
    interrupted_before,
    mark_original,
    outcome_of,
    result_of,
    start_tags,
)
from byoc.deploy.plan import UpdatePlan, now_iso
from byoc.deploy.results import UpdateResult
from byoc.endpoint import revisions
from byoc.endpoint.lock import EndpointLock
from byoc.errors import AuthError, AwsError, ByocError


def apply(aws: Aws, plan: UpdatePlan, *, wait: bool = True, timeout: float = 3600.0, keep: int = 5,
          events: Events = None, follow_logs: bool = True, fail_fast: bool = False) -> UpdateResult:
    """Run the plan and return its outcome (updated, unchanged, failed, failing, timeout, in-progress).
    `fail_fast`: return `failing` at the early verdict instead of waiting for SageMaker's rollback."""
    started = time.monotonic()
    if plan.unchanged:
        swept = finish_interrupted(aws, plan, keep)
        resume_autoscaling(aws, plan, events)
        return result_of(plan, "unchanged", started, swept=swept)
    reconcile_failing(aws, plan, events)
    if plan.strategy == "recreate":
        from byoc.deploy import recreate

        return recreate.apply(aws, plan, timeout=timeout, keep=keep, events=events, started=started)
    arn = plan.current.endpoint["EndpointArn"]
    lock = EndpointLock(aws, plan.endpoint, arn)
    lock.acquire([] if plan.resume else start_tags(plan))
    since_ms = int(time.time() * 1000)
    try:
        if not plan.resume:
            mark_original(aws, plan)
            create_revision(aws, plan, events)
            params = {"EndpointName": plan.endpoint, "EndpointConfigName": plan.endpoint_config,
                      "RetainAllVariantProperties": True}
            if plan.deployment_config:
                params["DeploymentConfig"] = plan.deployment_config
            pause_autoscaling(aws, plan, events)
            if plan.prove:
                # The new fleet starts with the config's InitialInstanceCount instead of the 0 autoscaling
                # chose, so SageMaker health-checks the image and rolls it back if it fails
                # (ExcludeRetainedVariantProperties, API_UpdateEndpoint); the scalable target and its
                # policies are not touched, and scale the instance in again when the endpoint is idle.
                params["ExcludeRetainedVariantProperties"] = [{"VariantPropertyType": "DesiredInstanceCount"}]
            try:
                aws.sagemaker.update_endpoint(**params)
            except AwsError as exc:
                resume_autoscaling(aws, plan, events)
                found = capacity.refusal(exc)
                if found is None:
                    raise
                undo_start(aws, plan)
                raise capacity.refused(aws, plan.endpoint, found, bool((plan.deployment_config or {}).get(
                    "RollingUpdatePolicy")), exc.aws_message) from exc
            except BaseException:
                resume_autoscaling(aws, plan, events)
                raise
            emit(events, "phase", text=f"UpdateEndpoint -> {plan.endpoint_config} (blue/green; the endpoint keeps serving)")
        else:
            emit(events, "phase", text=f"SageMaker is already deploying {plan.endpoint_config}; watching it")
        if not wait:
            result = result_of(plan, "in-progress", started, resume_command=f"byoc status {plan.endpoint} --watch")
            if plan.restore_autoscaling:
                result.warnings.append(f"Autoscaling of {_variants(plan)} stays deregistered until the deployment "
                                       f"ends and byoc runs again: `byoc update {plan.endpoint} {plan.target}` "
                                       "(with the same options) registers it again exactly.")
            return result
        health = healthwatch.HealthWatch(new_window(aws, plan), since_ms / 1000.0,
                                         lambda kind, **data: emit(events, kind, **data), _context(plan))

        def on_log(event: Any) -> None:
            health.on_event(event)
            if follow_logs:
                emit(events, "log", event=event)

        follower = watch.LogFollower(aws, plan.endpoint, since_ms, on_log)
        try:
            settled = watch.until_settled(aws, plan.endpoint, timeout,
                                          lambda d: emit(events, "phase", text=watch.phase_text(d)),
                                          tick=lambda d: health.tick(d) is not None and fail_fast)
        finally:
            follower.close()
        if plan.prove and settled.status == "InService" and settled.endpoint.get("EndpointConfigName") == \
                plan.endpoint_config:
            unproven = prove(aws, plan, timeout, events)
            if unproven:
                return unproven_result(aws, plan, unproven, started, events, since_ms)
    finally:
        lock.release()
    result = conclude(aws, plan, settled, started, keep, events, since_ms, health)
    if health.verdict is not None and health.verdict_at is not None:
        result.verdict_seconds = round(health.verdict_at - since_ms / 1000.0, 2)
        result.rollback_expected_at = healthwatch.iso(health.gives_up_at) if health.gives_up_at else None
    return result


def prove(aws: Aws, plan: UpdatePlan, timeout: float, events: Events = None) -> Optional[tuple]:
    """The endpoint had no instance, so the health check alone proves little: send one request to
    the new image. On failure go back to the previous config (UpdateEndpoint, blue/green) and return
    (why, the verification's findings); None when the request succeeded."""
    from byoc.observe import verify

    emit(events, "phase", text="verifying the new image with one request (the endpoint had no instance to "
                               "health-check)")
    findings: list = []
    try:
        checked = verify.verify(aws, plan.endpoint, image=plan.target)
        if checked.passed:
            emit(events, "phase", text="the new image answered the verification request")
            return None
        why = "; ".join(checked.reasons) or "the verification request failed"
        findings = [f.to_dict() for f in checked.findings]
    except AuthError as exc:  # a permission byoc lacks says nothing about the image: keep it, say so
        plan.warnings.append(f"The new image passed SageMaker's health check on one instance, but byoc could not "
                             f"send the verification request: {exc.message} Grant `byoc policy --features verify`.")
        return None
    except ByocError as exc:
        why = str(exc)
    emit(events, "phase", text=f"verification failed ({why}); rolling back to {plan.previous_config}")
    aws.sagemaker.update_endpoint(EndpointName=plan.endpoint, EndpointConfigName=plan.previous_config,
                                  RetainAllVariantProperties=True)
    settled = watch.until_settled(aws, plan.endpoint, timeout, lambda d: emit(events, "phase", text=watch.phase_text(d)))
    back = settled.endpoint.get("EndpointConfigName") == plan.previous_config and settled.status == "InService"
    return f"the new image failed its verification request ({why}); " + (
        f"byoc rolled the endpoint back to {plan.previous_config}" if back else
        f"rolling back to {plan.previous_config} did not finish (status {settled.status}); check `byoc status`"), findings


def unproven_result(aws: Aws, plan: UpdatePlan, unproven: tuple, started: float, events: Events,
                    since_ms: int) -> UpdateResult:
    reason, findings = unproven
    resume_autoscaling(aws, plan, events)
    arn = plan.current.endpoint["EndpointArn"]
    revisions.record_outcome(aws, arn, plan.revision, outcome_of(plan, "failed"), revisions.list_tags(aws, arn))
    swept = [] if plan.reuse else sweep.delete_unused(aws, plan.endpoint, plan.endpoint_config,
                                                      list(plan.models.values()))
    return result_of(plan, "failed", started, failure_reason=reason, swept=swept,
                     diagnosis=findings or diagnose_failure(aws, plan.endpoint, events, since_ms))


def new_window(aws: Aws, plan: UpdatePlan) -> int:
    """The startup window of the revision being deployed (its variants' longest)."""
    if plan.create_config:
        return healthwatch.window_of(plan.create_config)
    try:
        return healthwatch.window_of(aws.sagemaker.describe_endpoint_config(EndpointConfigName=plan.endpoint_config))
    except AwsError:
        return healthwatch.DEFAULT_WINDOW


def _context(plan: UpdatePlan) -> dict:
    """Facts the diagnosis catalogue fills its texts with."""
    variants = plan.view.variants if plan.view else []
    first = variants[0] if variants else None
    return {"endpoint": plan.endpoint, "image": plan.target,
            "instance_type": first.instance_type if first else None, "variant": first.name if first else None}


def reconcile_failing(aws: Aws, plan: UpdatePlan, events: Events = None) -> list:
    """An attempt an earlier run left `failing` (--fail-fast) has ended since: SageMaker rolled it
    back (record it failed, delete its unused model and config) or, unexpectedly, deployed it."""
    arn = plan.current.endpoint["EndpointArn"]
    swept: list = []
    for key, value in plan.tags.items():
        m = revisions.OUTCOME_TAG.match(key)
        if not m or not value.startswith("failing "):
            continue
        n = int(m.group(1))
        live = revisions.number(plan.current.config_name) == n
        revisions.record_outcome(aws, arn, n, ("deployed" if live else "failed") + value[len("failing"):], plan.tags)
        if live:
            continue
        stem = revisions.config_stem(plan.endpoint, plan.current.config_name)
        config = next((c for c in revisions.retained_configs(aws, plan.endpoint, plan.current.config_name)
                       if revisions.number(c) == n and revisions.base(c) == stem), None)
        if config is None or config == plan.endpoint_config:
            continue
        try:
            models = [v["ModelName"] for v in aws.sagemaker.describe_endpoint_config(
                EndpointConfigName=config)["ProductionVariants"]]
        except AwsError:
            continue
        swept += sweep.delete_unused(aws, plan.endpoint, config, [m for m in models if m not in plan.models.values()])
        emit(events, "phase", text=f"recorded revision {n} as failed (SageMaker rolled it back); swept {config}")
    return swept


def undo_start(aws: Aws, plan: UpdatePlan) -> None:
    """SageMaker refused the UpdateEndpoint: delete the revision this run created and the tags it
    wrote on the endpoint, so that nothing has changed (the lock is released by the caller)."""
    if not plan.reuse:
        sweep.delete_unused(aws, plan.endpoint, plan.endpoint_config, list(plan.models.values()))
    keys = [t["Key"] for t in start_tags(plan) if t["Key"] not in plan.tags]
    if keys:
        try:
            aws.sagemaker.delete_tags(ResourceArn=plan.current.endpoint["EndpointArn"], TagKeys=keys)
        except AuthError:
            pass


def finish_interrupted(aws: Aws, plan: UpdatePlan, keep: int) -> list:
    """A run killed while SageMaker deployed the live revision left it "in-progress": record it as
    deployed and sweep, as that run would have. Returns what was swept."""
    value = plan.tags.get(revisions.outcome_key(plan.revision), "")
    if not value.startswith("in-progress ") or plan.current.config_name != plan.endpoint_config:
        return []
    revisions.record_outcome(aws, plan.current.endpoint["EndpointArn"], plan.revision,
                             "deployed" + value[len("in-progress"):], plan.tags)
    return sweep.sweep(aws, plan.endpoint, plan.endpoint_config, [revisions.base(m) for m in plan.models.values()],
                       keep, interrupted=interrupted_before(plan), listed=plan.retained)


def conclude(aws: Aws, plan: UpdatePlan, settled: watch.Settled, started: float, keep: int, events: Events,
             since_ms: Optional[int] = None, health: Optional[healthwatch.HealthWatch] = None) -> UpdateResult:
    arn = plan.current.endpoint["EndpointArn"]
    d = settled.endpoint
    if settled.stopped and health is not None and health.verdict is not None:
        # --fail-fast: SageMaker still health-checks the new fleet and rolls it back by itself; its
        # model and config stay until then (the next byoc command records the outcome and sweeps).
        revisions.record_outcome(aws, arn, plan.revision, outcome_of(plan, "failing"), plan.tags)
        return result_of(plan, "failing", started, diagnosis=[health.verdict.finding.to_dict()],
                         failure_reason=f"early verdict: {health.verdict.finding.title}")
    if settled.timed_out:
        result = result_of(plan, "timeout", started, resume_command=f"byoc update {plan.endpoint} {plan.target}")
        if plan.restore_autoscaling:
            result.warnings.append(f"Autoscaling of {_variants(plan)} stays deregistered until the deployment ends; "
                                   "running the resume command then registers it again exactly.")
        return result
    resume_autoscaling(aws, plan, events)
    tags = plan.tags  # the outcome tags as planned: this run holds the lock, no other run wrote any since
    if d.get("EndpointConfigName") == plan.endpoint_config and settled.status == "InService":
        revisions.record_outcome(aws, arn, plan.revision, outcome_of(plan, "deployed"), tags)
        model_stems = [revisions.base(m) for m in plan.models.values()]
        swept = sweep.sweep(aws, plan.endpoint, plan.endpoint_config, model_stems, keep,
                            interrupted=interrupted_before(plan), listed=plan.retained)
        for name in swept:
            emit(events, "phase", text=f"swept {name}")
        return result_of(plan, "updated", started, swept=swept)
    reason = d.get("FailureReason") or f"the endpoint is {settled.status} on {d.get('EndpointConfigName')}"
    revisions.record_outcome(aws, arn, plan.revision, outcome_of(plan, "failed"), tags)
    swept = []
    if not plan.reuse:
        swept = sweep.delete_unused(aws, plan.endpoint, plan.endpoint_config, list(plan.models.values()))
    diagnosis = diagnose_failure(aws, plan.endpoint, events, since_ms)
    return result_of(plan, "failed", started, failure_reason=reason, diagnosis=diagnosis, swept=swept)


def _variants(plan: UpdatePlan) -> str:
    return ", ".join(r.variant for r in plan.restore_autoscaling)


def pause_autoscaling(aws: Aws, plan: UpdatePlan, events: Events) -> None:
    """Record the scalable targets in the endpoint's tags, then deregister them (the instance type of a
    registered variant cannot change: "Update or delete endpoints that use auto scaling")."""
    if not plan.restore_autoscaling:
        return
    arn = plan.current.endpoint["EndpointArn"]
    if plan.pause_autoscaling:
        revision = plan.revision if plan.autoscaling_record is None else plan.autoscaling_record
        record = autoscaling.record_tags(plan.restore_autoscaling, revision)
        aws.sagemaker.add_tags(ResourceArn=arn, Tags=record)
    autoscaling.deregister(aws, plan.pause_autoscaling)
    for reg in plan.pause_autoscaling:
        emit(events, "phase", text=f"autoscaling paused: deregistered {reg.variant} ({reg.summary()})")


def resume_autoscaling(aws: Aws, plan: UpdatePlan, events: Events) -> None:
    """Register the paused (or an interrupted run's) targets and policies again exactly; drop the record."""
    if not plan.restore_autoscaling:
        return
    autoscaling.register(aws, plan.restore_autoscaling)
    arn = plan.current.endpoint["EndpointArn"]
    keys = autoscaling.record_keys(revisions.list_tags(aws, arn))
    if keys:
        aws.sagemaker.delete_tags(ResourceArn=arn, TagKeys=keys)
    for reg in plan.restore_autoscaling:
        emit(events, "phase", text=f"autoscaling registered again: {reg.variant} ({reg.summary()})")
    if plan.autoscaling_record is not None:
        note = (f"autoscaling of {_variants(plan)} registered again at {now_iso()} by a later run "
                "(the run that deregistered it was interrupted)")
        plan.warnings.append(f"Revision {plan.autoscaling_record}: {note}.")
        revisions.note(aws, plan.endpoint, plan.current.config_name, plan.autoscaling_record, note)


