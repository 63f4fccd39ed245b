"""Apply an update plan: create the revision, UpdateEndpoint (blue/green), watch, then sweep.

SageMaker's blue/green deployment keeps the old fleet serving until the new one passes its
health checks, and returns to the previous config if it does not (API_UpdateEndpoint;
"Blue/Green Deployments" in the SageMaker Developer Guide). byoc never deletes what the
endpoint runs: on failure only the unused new model and config go; on timeout nothing does.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

from byoc.deploy import capacity, sweep, watch
from byoc.deploy.plan import UpdatePlan, now_iso
from byoc.deploy.results import UpdateResult
from byoc.endpoint import revisions
from byoc.endpoint.lock import EndpointLock
from byoc.errors import AuthError, AwsError

Events = Optional[Callable[..., None]]


def _emit(events: Events, kind: str, **data) -> None:
    if events:
        events(kind, **data)


def result_of(plan: UpdatePlan, result: str, started: float, **extra) -> UpdateResult:
    first_model = next(iter(plan.models.values()), None) if plan.models else None
    return UpdateResult(
        endpoint=plan.endpoint, result=result, image=plan.target, digest=plan.digest, revision=plan.revision,
        previous_image=plan.previous_image, endpoint_config=plan.endpoint_config, model=first_model,
        elapsed_seconds=round(time.monotonic() - started, 2), strategy=plan.strategy,
        warnings=list(plan.warnings), **extra)


def create_revision(aws, plan: UpdatePlan, events: Events = None) -> None:
    """CreateModel(s) and CreateEndpointConfig; existing ones with the same content are reused."""
    for req in plan.create_models:
        _create(aws, plan.endpoint, "model", req, events)
    if plan.create_config:
        _create(aws, plan.endpoint, "endpoint-config", plan.create_config, events)


def _create(aws, endpoint: str, kind: str, req: dict, events: Events) -> None:
    name = req["ModelName"] if kind == "model" else req["EndpointConfigName"]
    call = aws.sagemaker.create_model if kind == "model" else aws.sagemaker.create_endpoint_config

    def create() -> None:
        try:
            call(**req)
        except AuthError as exc:
            if "AddTags" not in (exc.action or ""):
                raise
            # Tagging denied: create without tags; history falls back to the -r<N> names.
            call(**{k: v for k, v in req.items() if k != "Tags"})

    try:
        create()
        _emit(events, "phase", text=f"created {kind} {name}")
    except AwsError as exc:
        if "already existing" not in exc.aws_message:
            raise
        described = aws.sagemaker.describe_model(ModelName=name) if kind == "model" else None
        if described and _images(described) != _images(req):
            # Left by a run for another image that was interrupted before it created its config.
            used = sweep.used_elsewhere(aws, endpoint, described["CreationTime"])
            if used is None or name in used[1]:
                raise
            aws.sagemaker.delete_model(ModelName=name)
            create()
            _emit(events, "phase", text=f"replaced model {name} (left by an interrupted run for another image)")
            return
        _emit(events, "phase", text=f"reusing {kind} {name} (left by an earlier run)")


def _images(model: dict) -> list:
    return [c.get("Image") for c in ([model["PrimaryContainer"]] if model.get("PrimaryContainer")
                                     else model.get("Containers") or [])]


def first_update(plan: UpdatePlan) -> bool:
    return not plan.tags.get("byoc:original-config") and revisions.number(plan.previous_config) is None


def start_tags(plan: UpdatePlan) -> list:
    """Endpoint tags written with the lock: this attempt's outcome, and revision 0 on the first update."""
    tags = [{"Key": f"byoc:r{plan.revision}", "Value": _outcome(plan, "in-progress")}]
    if first_update(plan):
        tags.append({"Key": "byoc:original-config", "Value": plan.previous_config})
    return tags


def mark_original(aws, plan: UpdatePlan) -> None:
    """Tag the endpoint's original model and config as revision 0 on the first byoc update."""
    if not first_update(plan):
        return
    view = plan.view
    try:
        tags = [{"Key": revisions.T_ENDPOINT, "Value": plan.endpoint}, {"Key": revisions.T_REVISION, "Value": "0"}]
        if plan.previous_image:
            tags.append({"Key": revisions.T_IMAGE, "Value": plan.previous_image[:256]})
        if plan.previous_digest:
            tags.append({"Key": revisions.T_DIGEST, "Value": plan.previous_digest})
        aws.sagemaker.add_tags(ResourceArn=view.config["EndpointConfigArn"], Tags=tags)
        for model in view.models.values():
            aws.sagemaker.add_tags(ResourceArn=model["ModelArn"], Tags=tags)
    except AuthError:
        pass


def apply(aws, plan: UpdatePlan, *, wait: bool = True, timeout: float = 3600.0, keep: int = 5,
          events: Events = None, follow_logs: bool = True) -> UpdateResult:
    """Run the plan and return its outcome (updated, unchanged, failed, timeout, in-progress)."""
    started = time.monotonic()
    if plan.unchanged:
        return result_of(plan, "unchanged", started, swept=finish_interrupted(aws, plan, keep))
    if plan.strategy == "recreate":
        from byoc.deploy import recreate

        return recreate.apply(aws, plan, timeout=timeout, keep=keep, events=events, started=started)
    arn = plan.view.endpoint["EndpointArn"]
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
            try:
                aws.sagemaker.update_endpoint(**params)
            except AwsError as exc:
                found = capacity.refusal(exc)
                if found is None:
                    raise
                undo_start(aws, plan)
                raise capacity.refused(aws, plan.endpoint, found, bool((plan.deployment_config or {}).get(
                    "RollingUpdatePolicy")), exc.aws_message) from exc
            _emit(events, "phase", text=f"UpdateEndpoint -> {plan.endpoint_config} (blue/green; the endpoint keeps serving)")
        else:
            _emit(events, "phase", text=f"SageMaker is already deploying {plan.endpoint_config}; watching it")
        if not wait:
            return result_of(plan, "in-progress", started,
                             resume_command=f"byoc status {plan.endpoint} --watch")
        follower = watch.LogFollower(aws, plan.endpoint, since_ms,
                                     (lambda e: _emit(events, "log", event=e)) if follow_logs and events else None)
        try:
            settled = watch.until_settled(aws, plan.endpoint, timeout,
                                          lambda d: _emit(events, "phase", text=watch.phase_text(d)))
        finally:
            follower.close()
    finally:
        lock.release()
    return conclude(aws, plan, settled, started, keep, events, since_ms)


def undo_start(aws, plan: UpdatePlan) -> None:
    """SageMaker refused the UpdateEndpoint: delete the revision this run created and the tags it
    wrote on the endpoint, so that nothing has changed (the lock is released by the caller)."""
    if not plan.reuse:
        sweep.delete_unused(aws, plan.endpoint, plan.endpoint_config, list(plan.models.values()))
    keys = [t["Key"] for t in start_tags(plan) if t["Key"] not in plan.tags]
    if keys:
        try:
            aws.sagemaker.delete_tags(ResourceArn=plan.view.endpoint["EndpointArn"], TagKeys=keys)
        except AuthError:
            pass


def interrupted_before(plan: UpdatePlan) -> bool:
    """An earlier attempt was left in progress (its run was killed): it may have left models behind."""
    return any(v.startswith("in-progress") for k, v in plan.tags.items()
               if (m := revisions.OUTCOME_TAG.match(k)) and int(m.group(1)) != plan.revision)


def finish_interrupted(aws, plan: UpdatePlan, keep: int) -> list:
    """A run killed while SageMaker deployed the live revision left it "in-progress": record it as
    deployed and sweep, as that run would have. Returns what was swept."""
    value = plan.tags.get(f"byoc:r{plan.revision}", "")
    if not value.startswith("in-progress ") or plan.view.config_name != plan.endpoint_config:
        return []
    revisions.record_outcome(aws, plan.view.endpoint["EndpointArn"], plan.revision,
                             "deployed" + value[len("in-progress"):], plan.tags)
    return sweep.sweep(aws, plan.endpoint, plan.endpoint_config, [revisions.base(m) for m in plan.models.values()],
                       keep, orphans=interrupted_before(plan), listed=plan.retained)


def conclude(aws, plan: UpdatePlan, settled: watch.Settled, started: float, keep: int, events: Events,
             since_ms: Optional[int] = None) -> UpdateResult:
    arn = plan.view.endpoint["EndpointArn"]
    d = settled.endpoint
    if settled.timed_out:
        return result_of(plan, "timeout", started, resume_command=f"byoc update {plan.endpoint} {plan.target}")
    tags = plan.tags  # the outcome tags as planned: this run holds the lock, no other run wrote any since
    if d.get("EndpointConfigName") == plan.endpoint_config and settled.status == "InService":
        revisions.record_outcome(aws, arn, plan.revision, _outcome(plan, "deployed"), tags)
        model_stems = [revisions.base(m) for m in plan.models.values()]
        swept = sweep.sweep(aws, plan.endpoint, plan.endpoint_config, model_stems, keep,
                            orphans=interrupted_before(plan), listed=plan.retained)
        for name in swept:
            _emit(events, "phase", text=f"swept {name}")
        return result_of(plan, "updated", started, swept=swept)
    reason = d.get("FailureReason") or f"the endpoint is {settled.status} on {d.get('EndpointConfigName')}"
    revisions.record_outcome(aws, arn, plan.revision, _outcome(plan, "failed"), tags)
    swept = []
    if not plan.reuse:
        swept = sweep.delete_unused(aws, plan.endpoint, plan.endpoint_config, list(plan.models.values()))
    diagnosis = diagnose_failure(aws, plan.endpoint, events, since_ms)
    return result_of(plan, "failed", started, failure_reason=reason, diagnosis=diagnosis, swept=swept)


def diagnose_failure(aws, endpoint: str, events: Events, since_ms: Optional[int] = None) -> list:
    """The diagnosis issue's findings for a failed deployment, from its own log lines on (`since_ms`);
    empty if diagnosis itself fails."""
    try:
        from byoc.observe import diagnose

        found = diagnose.diagnose(aws, endpoint, since=since_ms)
        return found.to_dict().get("findings", [])
    except Exception as exc:  # the update's outcome must not depend on the diagnosis
        _emit(events, "phase", text=f"(diagnosis unavailable: {exc})")
        return []


def _outcome(plan: UpdatePlan, outcome: str) -> str:
    named = plan.image.split("@", 1)[0]
    ref = named.split("/", 1)[1] if "/" in named else named
    return revisions.outcome_value(outcome, now_iso(), ref, plan.digest, plan.caller)

