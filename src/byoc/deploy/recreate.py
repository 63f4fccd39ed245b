"""The recreate strategy: delete the endpoint and create it again (the original tool's way).

For a Failed endpoint (which SageMaker cannot update) or when two fleets do not fit. Unlike the
original tool it keeps everything: the full lossless config, the endpoint's tags, and the exact
scalable targets and scaling policies, which are deregistered first (deleting an endpoint with
a registered target makes Application Auto Scaling deregister it: "Delete endpoints configured
for auto scaling", endpoint-scaling.html) and registered again afterwards. If the new config
fails, the endpoint is recreated on the previous config. The downtime is measured and reported.
"""

from __future__ import annotations

import time

from byoc.aws.client import Aws
from byoc.deploy import autoscaling, sweep, watch
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
from byoc.deploy.plan import UpdatePlan
from byoc.deploy.results import UpdateResult
from byoc.endpoint import revisions
from byoc.endpoint.lock import EndpointLock
from byoc.endpoint.view import EndpointView
from byoc.errors import AwsError


def pending_autoscaling(saved: list) -> list:
    """What to run once the recreated endpoint is InService: the exact target and policies it had."""
    if not saved:
        return []
    return ["Autoscaling is not registered yet; once the endpoint is InService run:"] + autoscaling.commands(saved)


def _delete_and_wait(aws: Aws, endpoint: str, timeout: float) -> None:
    try:
        aws.sagemaker.delete_endpoint(EndpointName=endpoint)
    except AwsError as exc:
        if exc.not_found:
            return
        raise
    watch.until_settled(aws, endpoint, timeout)


def _create_and_wait(aws: Aws, endpoint: str, config: str, tags: list, timeout: float,
                     events: Events) -> watch.Settled:
    params: dict = {"EndpointName": endpoint, "EndpointConfigName": config}
    if tags:
        params["Tags"] = tags
    aws.sagemaker.create_endpoint(**params)
    return watch.until_settled(aws, endpoint, timeout, lambda d: emit(events, "phase", text=watch.phase_text(d)))


def apply(aws: Aws, plan: UpdatePlan, *, timeout: float, keep: int, events: Events, started: float) -> UpdateResult:
    view = plan.current
    arn = view.endpoint["EndpointArn"]
    lock = EndpointLock(aws, plan.endpoint, arn)
    extra = start_tags(plan)
    lock.acquire(extra)
    try:
        return _apply(aws, plan, view, arn, timeout, keep, events, started, extra)
    finally:
        lock.release()


def _apply(aws: Aws, plan: UpdatePlan, view: EndpointView, arn: str, timeout: float, keep: int, events: Events,
           started: float, extra: list) -> UpdateResult:
    was_serving = view.status == "InService"
    saved = autoscaling.save(aws, plan.endpoint, [v.name for v in view.variants])
    record = autoscaling.recorded(plan.tags)  # an interrupted instance-type change left these deregistered
    if record:
        saved = record.saved + [r for r in saved if r.variant not in {x.variant for x in record.saved}]
    kept = {k: v for k, v in plan.tags.items()
            if not k.startswith(("aws:", revisions.T_LOCK, revisions.T_AUTOSCALING))}
    kept.update({t["Key"]: t["Value"] for t in extra})
    user_tags = [{"Key": k, "Value": v} for k, v in kept.items()]
    if not plan.reuse:
        mark_original(aws, plan)
        create_revision(aws, plan, events)
    emit(events, "phase", text=f"recreate: deregistering {len(saved)} scalable target(s), deleting {plan.endpoint}")
    down = time.monotonic()
    down_ms = int(time.time() * 1000)
    autoscaling.deregister(aws, saved)
    _delete_and_wait(aws, plan.endpoint, timeout)
    settled = _create_and_wait(aws, plan.endpoint, plan.endpoint_config, user_tags, timeout, events)
    arn = settled.endpoint.get("EndpointArn", arn)
    if settled.timed_out:
        result = result_of(plan, "timeout", started, resume_command=f"byoc status {plan.endpoint} --watch",
                           downtime_seconds=round(time.monotonic() - down, 2))
        result.warnings += pending_autoscaling(saved)
        return result
    if settled.status == "InService":
        downtime = round(time.monotonic() - down, 2)
        autoscaling.register(aws, saved)
        revisions.record_outcome(aws, arn, plan.revision, outcome_of(plan, "deployed"), plan.tags)
        swept = sweep.sweep(aws, plan.endpoint, plan.endpoint_config,
                            [revisions.base(m) for m in plan.models.values()], keep, interrupted=interrupted_before(plan), listed=plan.retained)
        return result_of(plan, "updated", started, downtime_seconds=downtime, swept=swept)
    reason = settled.endpoint.get("FailureReason", "the endpoint failed")
    diagnosis = diagnose_failure(aws, plan.endpoint, events, down_ms)
    if was_serving:
        emit(events, "phase", text=f"new image failed; recreating {plan.endpoint} on {plan.previous_config}")
        _delete_and_wait(aws, plan.endpoint, timeout)
        _create_and_wait(aws, plan.endpoint, plan.previous_config, user_tags, timeout, events)
        autoscaling.register(aws, saved)
    downtime = round(time.monotonic() - down, 2)
    revisions.record_outcome(aws, arn, plan.revision, outcome_of(plan, "failed"), plan.tags)
    swept = [] if plan.reuse else sweep.delete_unused(aws, plan.endpoint, plan.endpoint_config,
                                                      list(plan.models.values()))
    return result_of(plan, "failed", started, failure_reason=reason, diagnosis=diagnosis, swept=swept,
                     downtime_seconds=downtime)
