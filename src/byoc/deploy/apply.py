"""Apply an update plan: create the revision, UpdateEndpoint (blue/green), watch, then sweep.

SageMaker's blue/green deployment keeps the old fleet serving until the new one passes its
health checks, and returns to the previous config if it does not (API_UpdateEndpoint;
"Blue/Green Deployments" in the SageMaker Developer Guide). byoc never deletes what the
endpoint runs: on failure only the unused new model and config go; on timeout nothing does.
"""

from __future__ import annotations

import time
from typing import Optional

from byoc.aws.client import Aws
from byoc.deploy import autoscaling, capacity, sweep, watch
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
from byoc.errors import AuthError, AwsError


def apply(aws: Aws, plan: UpdatePlan, *, wait: bool = True, timeout: float = 3600.0, keep: int = 5,
          events: Events = None, follow_logs: bool = True) -> UpdateResult:
    """Run the plan and return its outcome (updated, unchanged, failed, timeout, in-progress)."""
    started = time.monotonic()
    if plan.unchanged:
        swept = finish_interrupted(aws, plan, keep)
        resume_autoscaling(aws, plan, events)
        return result_of(plan, "unchanged", started, swept=swept)
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
        follower = watch.LogFollower(aws, plan.endpoint, since_ms,
                                     (lambda e: emit(events, "log", event=e)) if follow_logs and events else None)
        try:
            settled = watch.until_settled(aws, plan.endpoint, timeout,
                                          lambda d: emit(events, "phase", text=watch.phase_text(d)))
        finally:
            follower.close()
    finally:
        lock.release()
    return conclude(aws, plan, settled, started, keep, events, since_ms)


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
             since_ms: Optional[int] = None) -> UpdateResult:
    arn = plan.current.endpoint["EndpointArn"]
    d = settled.endpoint
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


