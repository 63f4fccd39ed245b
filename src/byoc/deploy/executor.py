"""Run a plan's steps against AWS (`Executor`), or render them without changing anything (`DisplayExecutor`).

Both take the same `UpdatePlan`, so a dry run shows exactly what an apply runs. Unlike aws/chalice's
executor (the model), a SageMaker deployment is long and may roll back: waiting, the verdict and the
failure branches (the plan's `on_failure` steps, recreate's way back) live here.

SageMaker's blue/green deployment keeps the old fleet serving until the new one passes its health
checks, and returns to the previous config if it does not (API_UpdateEndpoint; "Blue/Green
Deployments" in the SageMaker Developer Guide). byoc never deletes what an endpoint runs: on failure
only the unused new model and config go; on timeout nothing does.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional, Union

from byoc.aws.client import Aws
from byoc.deploy import autoscaling, capacity, guardrails, healthwatch, recreate, steps, sweep, watch
from byoc.deploy.plan import UpdatePlan, attempt_tag, now_iso
from byoc.deploy.results import UpdateResult
from byoc.endpoint import revisions
from byoc.endpoint.lock import EndpointLock
from byoc.endpoint.view import model_images
from byoc.errors import AuthError, AwsError, ByocError

Events = Optional[Callable[..., None]]


def emit(events: Events, kind: str, **data: Any) -> None:
    """Report progress to the caller's `events(kind, **data)`, if any."""
    if events:
        events(kind, **data)


def result_of(plan: UpdatePlan, result: str, started: float, **extra: Any) -> UpdateResult:
    first_model = next(iter(plan.models.values()), None) if plan.models else None
    return UpdateResult(
        endpoint=plan.endpoint, result=result, image=plan.target, digest=plan.digest, revision=plan.revision,
        previous_image=plan.previous_image, endpoint_config=plan.endpoint_config, model=first_model,
        elapsed_seconds=round(time.monotonic() - started, 2), strategy=plan.strategy,
        warnings=list(plan.warnings), **extra)


def outcome_of(plan: UpdatePlan, outcome: str, at: Optional[str] = None) -> str:
    """The value of the endpoint's tag recording this attempt's outcome now (or `at`)."""
    named = plan.image.split("@", 1)[0]
    ref = named.split("/", 1)[1] if "/" in named else named
    return revisions.outcome_value(outcome, at or now_iso(), ref, plan.digest, plan.caller)


def diagnose_failure(aws: Aws, endpoint: str, events: Events, since_ms: Optional[int] = None) -> list:
    """The diagnosis issue's findings for a failed deployment, from its own log lines on (`since_ms`);
    empty if diagnosis itself fails."""
    try:
        from byoc.observe import diagnose

        found = diagnose.diagnose(aws, endpoint, since=since_ms)
        return found.to_dict().get("findings", [])
    except Exception as exc:  # the update's outcome must not depend on the diagnosis
        emit(events, "phase", text=f"(diagnosis unavailable: {exc})")
        return []


class Executor:
    """Run `plan.steps` in order; a deployment that fails runs `plan.on_failure` instead of the rest.
    `executed` lists the steps run, in order; `deleted` the names the deletion steps deleted.
    `fail_fast`: stop watching at the early verdict (`failing`) instead of waiting for SageMaker's rollback."""

    def __init__(self, aws: Aws, plan: UpdatePlan, *, wait: bool = True, timeout: float = 3600.0,
                 events: Events = None, follow_logs: bool = True, fail_fast: bool = False) -> None:
        self.aws, self.plan, self.wait, self.timeout, self.events = aws, plan, wait, timeout, events
        self.follow_logs, self.fail_fast = follow_logs, fail_fast
        self.health: Optional[healthwatch.HealthWatch] = None
        self.arn = plan.current.endpoint["EndpointArn"]
        self.executed: list = []
        self.deleted: list = []
        self.lock: Optional[EndpointLock] = None
        self.start_tags: list = []
        self.since_ms = int(time.time() * 1000)
        self.used: Optional[tuple] = None  # what other endpoints use, read at the sweep's first deletion
        self.used_read = False
        self.ending: Optional[str] = None  # timeout | failed | failing | in-progress: the deployment's verdict
        self.details: dict = {}  # fields of the result the steps found out (downtime, failure reason ...)
        self.warnings: list = []

    def run(self) -> UpdateResult:
        started = time.monotonic()
        try:
            for step in self.plan.steps:
                self.execute(step)
                if self.ending:
                    break
            if self.ending == "failed":
                for step in self.plan.on_failure:
                    self.execute(step)
            elif self.ending == "failing":  # the deployment goes on: only its outcome so far is recorded
                self.execute(steps.RecordOutcome(endpoint=self.plan.endpoint, revision=self.plan.revision,
                                                 outcome="failing", tag=attempt_tag(self.plan)))
        finally:
            if self.lock:
                self.lock.release()
        outcome = self.ending or ("unchanged" if self.plan.mode == "unchanged" else "updated")
        result = result_of(self.plan, outcome, started, swept=list(self.deleted),
                           executed=[s.to_dict() for s in self.executed], **self.details)
        result.warnings += self.warnings
        health = self.health
        if health is not None and health.verdict is not None and health.verdict_at is not None:
            result.verdict_seconds = round(health.verdict_at - self.since_ms / 1000.0, 2)
            result.rollback_expected_at = healthwatch.iso(health.gives_up_at) if health.gives_up_at else None
        return result

    def execute(self, step: steps.Step) -> None:
        getattr(self, "_" + step.kind.replace("-", "_"))(step)
        self.executed.append(step)

    def show_phase(self, described: dict) -> None:
        """Report a DescribeEndpoint's phase while SageMaker works."""
        emit(self.events, "phase", text=watch.phase_text(described))

    def _end(self, verdict: str, **details: Any) -> None:
        self.ending = verdict
        self.details.update(details)

    # -- the steps ------------------------------------------------------------------------------------
    def _lock_endpoint(self, step: steps.LockEndpoint) -> None:
        self.lock = EndpointLock(self.aws, step.endpoint, self.arn)
        if step.revision is not None:
            # A new revision's attempt is stamped with its config's creation time (byoc:created-at), so whoever
            # later sees it fail (`byoc status --watch`) can tell the attempt's own config from a retained one.
            made = revisions.tags_dict((self.plan.create_config or {}).get("Tags") or []).get(revisions.T_AT)
            self.start_tags = [{"Key": step.tag, "Value": outcome_of(self.plan, "in-progress", made)}]
        if step.original_config:
            self.start_tags.append({"Key": revisions.T_ORIGINAL, "Value": step.original_config})
        self.lock.acquire(self.start_tags, known=self.plan.tags)
        self.since_ms = int(time.time() * 1000)

    def _tag_revision_0(self, step: steps.TagRevisionZero) -> None:
        try:
            for arn in step.arns:
                self.aws.sagemaker.add_tags(ResourceArn=arn, Tags=list(step.tags))
        except AuthError:
            pass  # history falls back to the -r<N> names

    def _create_model(self, step: steps.CreateModel) -> None:
        self._create("model", step.name, self._with_their_tags(step))

    def _create_endpoint_config(self, step: steps.CreateEndpointConfig) -> None:
        self._create("endpoint-config", step.name, self._with_their_tags(step))

    def _with_their_tags(self, step: Union[steps.CreateModel, steps.CreateEndpointConfig]) -> dict:
        """The request with the copied resource's own tags after byoc's (lossless copy): as the plan
        found them, or read now when the Tagging API did not list the resource."""
        req, source = step.request, step.copy_tags_of
        if not source:
            return req
        try:
            theirs = dict(step.their_tags) if step.their_tags is not None else revisions.list_tags(self.aws, source)
        except AuthError as exc:
            self.warnings.append(f"The tags of {source.rsplit('/', 1)[-1]} were not copied to its new revision: "
                                 f"{exc.message}")
            return req
        return {**req, "Tags": revisions.merge_tags(theirs, req.get("Tags") or [])}

    def _create(self, kind: str, name: str, req: dict) -> None:
        """Create the model or config; one an earlier run left with the same content is reused."""
        endpoint = self.plan.endpoint
        sm = self.aws.sagemaker
        call = sm.create_model if kind == "model" else sm.create_endpoint_config

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
            emit(self.events, "phase", text=f"created {kind} {name}")
        except AwsError as exc:
            if "already existing" not in exc.aws_message:
                raise
            described = sm.describe_model(ModelName=name) if kind == "model" else None
            if described and model_images(described) != model_images(req):
                # Left by a run for another image that was interrupted before it created its config.
                used = sweep.used_elsewhere(self.aws, endpoint, described["CreationTime"])
                if used is None or name in used[1]:
                    raise
                sm.delete_model(ModelName=name)
                create()
                emit(self.events, "phase", text=f"replaced model {name} (left by an interrupted run for another image)")
                return
            emit(self.events, "phase", text=f"reusing {kind} {name} (left by an earlier run)")

    def _pause_autoscaling(self, step: steps.PauseAutoscaling) -> None:
        plan = self.plan
        revision = plan.revision if plan.autoscaling_record is None else plan.autoscaling_record
        self.aws.sagemaker.add_tags(ResourceArn=self.arn, Tags=autoscaling.record_tags(plan.restore_autoscaling,
                                                                                       revision))
        autoscaling.deregister(self.aws, plan.pause_autoscaling)
        for reg in plan.pause_autoscaling:
            emit(self.events, "phase", text=f"autoscaling paused: deregistered {reg.variant} ({reg.summary()})")

    def _resume_autoscaling(self, step: Optional[steps.ResumeAutoscaling]) -> None:
        """Register the paused (or an interrupted run's) targets and policies again exactly; drop the record."""
        plan = self.plan
        autoscaling.register(self.aws, plan.restore_autoscaling)
        keys = autoscaling.record_keys(revisions.list_tags(self.aws, self.arn))
        if keys:
            self.aws.sagemaker.delete_tags(ResourceArn=self.arn, TagKeys=keys)
        for reg in plan.restore_autoscaling:
            emit(self.events, "phase", text=f"autoscaling registered again: {reg.variant} ({reg.summary()})")
        if plan.autoscaling_record is not None:
            note = (f"autoscaling of {self._variants()} registered again at {now_iso()} by a later run "
                    "(the run that deregistered it was interrupted)")
            self.warnings.append(f"Revision {plan.autoscaling_record}: {note}.")
            revisions.note(self.aws, plan.endpoint, plan.current.config_name, plan.autoscaling_record, note)

    def _variants(self) -> str:
        return ", ".join(r.variant for r in self.plan.restore_autoscaling)

    def _update_endpoint(self, step: steps.UpdateEndpoint) -> None:
        params: dict = {"EndpointName": step.endpoint, "EndpointConfigName": step.config,
                        "RetainAllVariantProperties": True}
        if step.deployment_config:
            params["DeploymentConfig"] = step.deployment_config
        if step.start_instances:
            # The new fleet starts with the config's InitialInstanceCount instead of the 0 autoscaling
            # chose, so SageMaker health-checks the image and rolls it back if it fails
            # (ExcludeRetainedVariantProperties, API_UpdateEndpoint); the scalable target and its
            # policies are not touched, and scale the instance in again when the endpoint is idle.
            params["ExcludeRetainedVariantProperties"] = [{"VariantPropertyType": "DesiredInstanceCount"}]
        try:
            self.aws.sagemaker.update_endpoint(**params)
        except BaseException as exc:
            if self.plan.restore_autoscaling:
                self._resume_autoscaling(None)
            if not isinstance(exc, AwsError):
                raise
            found = capacity.refusal(exc)
            if found is None:
                raise
            self._undo_start()
            rolling = bool((step.deployment_config or {}).get("RollingUpdatePolicy"))
            raise capacity.refused(self.aws, step.endpoint, found, rolling, exc.aws_message,
                                   guardrails.rolling_fleet(self.plan.current)) from exc
        emit(self.events, "phase", text=f"UpdateEndpoint -> {step.config} (blue/green; the endpoint keeps serving)")

    def _undo_start(self) -> None:
        """SageMaker refused the UpdateEndpoint: delete the revision this run created and the tags it
        wrote on the endpoint, so that nothing has changed (the lock is released at the end)."""
        plan = self.plan
        if plan.mode == "create":
            sweep.delete_unused(self.aws, plan.endpoint, plan.endpoint_config, list(plan.models.values()))
        keys = [t["Key"] for t in self.start_tags if t["Key"] not in plan.tags]
        if keys:
            try:
                self.aws.sagemaker.delete_tags(ResourceArn=self.arn, TagKeys=keys)
            except AuthError:
                pass

    def _watch(self, step: steps.WatchDeployment) -> None:
        plan, events = self.plan, self.events
        if plan.mode == "resume":
            emit(events, "phase", text=f"SageMaker is already deploying {step.config}; watching it")
        if not self.wait:
            if plan.restore_autoscaling:
                self.warnings.append(f"Autoscaling of {self._variants()} stays deregistered until the deployment "
                                     f"ends and byoc runs again: `byoc update {plan.endpoint} {plan.target}` "
                                     "(with the same options) registers it again exactly.")
            return self._end("in-progress", resume_command=f"byoc status {step.endpoint} --watch")
        settled = self.watch_health(step.endpoint, "UpdateEndpoint", self.fail_fast, lambda tick: watch.until_settled(
            self.aws, step.endpoint, self.timeout, self.show_phase, tick=tick))
        d = settled.endpoint
        health = self.health
        if settled.stopped and health is not None and health.verdict is not None:
            # --fail-fast: SageMaker still health-checks the new fleet and rolls it back by itself; its
            # model and config stay until then (the next byoc command records the outcome and sweeps).
            return self._end("failing", diagnosis=[health.verdict.finding.to_dict()],
                             failure_reason=f"early verdict: {health.verdict.finding.title}")
        if settled.timed_out:
            if plan.restore_autoscaling:
                self.warnings.append(f"Autoscaling of {self._variants()} stays deregistered until the deployment "
                                     "ends; running the resume command then registers it again exactly.")
            return self._end("timeout", resume_command=f"byoc update {plan.endpoint} {plan.target}")
        if d.get("EndpointConfigName") == step.config and settled.status == "InService":
            return None
        reason = d.get("FailureReason") or f"the endpoint is {settled.status} on {d.get('EndpointConfigName')}"
        return self._end("failed", failure_reason=reason,
                         diagnosis=diagnose_failure(self.aws, step.endpoint, events, self.since_ms))

    def watch_health(self, endpoint: str, action: str, stop: bool,
                     wait: Callable[[Callable[[dict], bool]], watch.Settled]) -> watch.Settled:
        """Run `wait(tick)` (a watch until SageMaker settles) while the new instances' logs feed the
        countdown and the early verdict; `stop`: end the watch at the verdict. From now on."""
        self.since_ms = int(time.time() * 1000)
        serving = {} if action == "UpdateEndpoint" else {"serving": False}  # recreate: the endpoint is down
        health = healthwatch.HealthWatch(self.new_window(), self.since_ms / 1000.0,
                                         lambda kind, **data: emit(self.events, kind, **data, **serving),
                                         self.context(), action=action)
        self.health = health

        def on_log(event: Any) -> None:
            health.on_event(event)
            if self.follow_logs:
                emit(self.events, "log", event=event)

        follower = watch.LogFollower(self.aws, endpoint, self.since_ms, on_log)
        try:
            return wait(lambda d: health.tick(d) is not None and stop)
        finally:
            follower.close()

    def new_window(self) -> int:
        """The startup window of the revision being deployed (its variants' longest)."""
        if self.plan.create_config:
            return healthwatch.window_of(self.plan.create_config)
        try:
            return healthwatch.window_of(self.aws.sagemaker.describe_endpoint_config(
                EndpointConfigName=self.plan.endpoint_config))
        except AwsError:
            return healthwatch.DEFAULT_WINDOW

    def context(self) -> dict:
        """Facts the diagnosis catalogue fills its texts with."""
        variants = self.plan.view.variants if self.plan.view else []
        first = variants[0] if variants else None
        return {"endpoint": self.plan.endpoint, "image": self.plan.target,
                "instance_type": first.instance_type if first else None, "variant": first.name if first else None}

    def _prove_image(self, step: steps.ProveImage) -> None:
        """One request to the new image; on failure back to the previous config (UpdateEndpoint,
        blue/green), and the deployment ends failed."""
        from byoc.observe import verify

        events = self.events
        emit(events, "phase", text="verifying the new image with one request (the endpoint had no instance to "
                                   "health-check)")
        findings: list = []
        try:
            checked = verify.verify(self.aws, step.endpoint, image=step.image)
            if checked.passed:
                emit(events, "phase", text="the new image answered the verification request")
                return None
            why = "; ".join(checked.reasons) or "the verification request failed"
            findings = [f.to_dict() for f in checked.findings]
        except AuthError as exc:  # a permission byoc lacks says nothing about the image: keep it, say so
            self.warnings.append(f"The new image passed SageMaker's health check on one instance, but byoc could not "
                                 f"send the verification request: {exc.message} Grant `byoc policy --features verify`.")
            return None
        except ByocError as exc:
            why = str(exc)
        emit(events, "phase", text=f"verification failed ({why}); rolling back to {step.previous_config}")
        self.aws.sagemaker.update_endpoint(EndpointName=step.endpoint, EndpointConfigName=step.previous_config,
                                           RetainAllVariantProperties=True)
        settled = watch.until_settled(self.aws, step.endpoint, self.timeout, self.show_phase)
        back = settled.endpoint.get("EndpointConfigName") == step.previous_config and settled.status == "InService"
        reason = f"the new image failed its verification request ({why}); " + (
            f"byoc rolled the endpoint back to {step.previous_config}" if back else
            f"rolling back to {step.previous_config} did not finish (status {settled.status}); check `byoc status`")
        return self._end("failed", failure_reason=reason,
                         diagnosis=findings or diagnose_failure(self.aws, step.endpoint, events, self.since_ms))

    def _recreate_endpoint(self, step: steps.RecreateEndpoint) -> None:
        aws, events, timeout = self.aws, self.events, self.timeout
        saved = autoscaling.save(aws, step.endpoint, [v.name for v in self.plan.current.variants])
        record = autoscaling.recorded(self.plan.tags)  # an interrupted instance-type change left these deregistered
        if record:
            saved = record.saved + [r for r in saved if r.variant not in {x.variant for x in record.saved}]
        kept = dict(step.tags)
        kept.update({t["Key"]: t["Value"] for t in self.start_tags})
        tags = [{"Key": k, "Value": v} for k, v in kept.items()]
        emit(events, "phase", text=f"recreate: deregistering {len(saved)} scalable target(s), deleting {step.endpoint}")
        down, down_ms = time.monotonic(), int(time.time() * 1000)
        autoscaling.deregister(aws, saved)
        recreate.delete_and_wait(aws, step.endpoint, timeout)
        if self.fail_fast:
            self.warnings.append("--fail-fast does not stop a recreate: SageMaker does not delete an endpoint that is "
                                 "Creating, so byoc waits for it to fail to recreate the previous config.")
        # The verdict is reported, never acted on: an endpoint stays Creating until its startup window closes,
        # and DeleteEndpoint refuses it meanwhile (aws/amazon-sagemaker-examples#3432: "no option to delete it").
        settled = self.watch_health(step.endpoint, "CreateEndpoint", False, lambda tick: recreate.create_and_wait(
            aws, step.endpoint, step.config, tags, timeout, self.show_phase, tick=tick))
        self.arn = settled.endpoint.get("EndpointArn", self.arn)
        if settled.timed_out:
            self.warnings += recreate.pending_autoscaling(saved)
            return self._end("timeout", resume_command=f"byoc status {step.endpoint} --watch",
                             downtime_seconds=round(time.monotonic() - down, 2))
        if settled.status == "InService":
            self.details["downtime_seconds"] = round(time.monotonic() - down, 2)
            autoscaling.register(aws, saved)
            return None
        reason = settled.endpoint.get("FailureReason", "the endpoint failed")
        diagnosis = diagnose_failure(aws, step.endpoint, events, down_ms)
        if step.was_serving:
            emit(events, "phase", text=f"new image failed; recreating {step.endpoint} on {step.previous_config}")
            recreate.delete_and_wait(aws, step.endpoint, timeout)
            recreate.create_and_wait(aws, step.endpoint, step.previous_config, tags, timeout, self.show_phase)
            autoscaling.register(aws, saved)
        return self._end("failed", failure_reason=reason, diagnosis=diagnosis,
                         downtime_seconds=round(time.monotonic() - down, 2))

    def _record_outcome(self, step: steps.RecordOutcome) -> None:
        value = step.value or outcome_of(self.plan, step.outcome)
        # The outcome tags as planned: this run holds the lock, no other run wrote any since.
        revisions.record_outcome(self.aws, self.arn, step.tag, value, self.plan.tags)

    def _delete_revision(self, step: steps.DeleteRevision) -> None:
        if step.created is None:  # this run's own revision, which it no longer needs
            deleted = sweep.delete_unused(self.aws, self.plan.endpoint, step.config, list(step.models))
        else:  # the sweep: what other endpoints use is checked again, once, now
            if not self.used_read:
                since = min(s.created for s in self.plan.steps if isinstance(s, steps.DeleteRevision) and s.created)
                self.used, self.used_read = sweep.used_elsewhere(self.aws, self.plan.endpoint, since), True
            if self.used is None:
                return  # what other endpoints use could not be told: delete nothing this time
            deleted = sweep.delete_revision(self.aws, step.config, list(step.models), self.used)
        for name in deleted:
            self.deleted.append(name)
            emit(self.events, "phase", text=f"swept {name}")


class DisplayExecutor:
    """Render a plan's steps, the very ones `Executor` runs, as numbered lines; changes nothing."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write

    def execute(self, plan: UpdatePlan) -> None:
        if not plan.steps:
            return
        self.write("  steps:")
        for n, step in enumerate(plan.steps, 1):
            self.write(f"    {n}. {step.describe()}")
        if plan.on_failure:
            self.write("  if the deployment fails:")
            for step in plan.on_failure:
                self.write(f"    - {step.describe()}")
