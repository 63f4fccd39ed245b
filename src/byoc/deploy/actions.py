"""What an update does to AWS, shared by both strategies (blue/green in apply, recreate): create the
revision, tag revision 0 and the attempt, report progress, build the result, diagnose a failure."""

from __future__ import annotations

import datetime
import time
from typing import Any, Callable, Optional

from byoc.aws.client import Aws
from byoc.deploy import sweep
from byoc.deploy.plan import UpdatePlan, now_iso
from byoc.deploy.results import UpdateResult
from byoc.endpoint import revisions
from byoc.endpoint.view import model_images
from byoc.errors import AuthError, AwsError

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


def create_revision(aws: Aws, plan: UpdatePlan, events: Events = None) -> None:
    """CreateModel(s) and CreateEndpointConfig; existing ones with the same content are reused."""
    for req in plan.create_models:
        _create(aws, plan.endpoint, "model", req, events)
    if plan.create_config:
        _create(aws, plan.endpoint, "endpoint-config", plan.create_config, events)


def _create(aws: Aws, endpoint: str, kind: str, req: dict, events: Events) -> None:
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
        emit(events, "phase", text=f"created {kind} {name}")
    except AwsError as exc:
        if "already existing" not in exc.aws_message:
            raise
        described = aws.sagemaker.describe_model(ModelName=name) if kind == "model" else None
        if described and model_images(described) != model_images(req):
            # Left by a run for another image that was interrupted before it created its config.
            used = sweep.used_elsewhere(aws, endpoint, described["CreationTime"])
            if used is None or name in used[1]:
                raise
            aws.sagemaker.delete_model(ModelName=name)
            create()
            emit(events, "phase", text=f"replaced model {name} (left by an interrupted run for another image)")
            return
        emit(events, "phase", text=f"reusing {kind} {name} (left by an earlier run)")


def first_update(plan: UpdatePlan) -> bool:
    return not plan.tags.get(revisions.T_ORIGINAL) and revisions.number(plan.previous_config) is None


def start_tags(plan: UpdatePlan) -> list:
    """Endpoint tags written with the lock: this attempt's outcome, and revision 0 on the first update."""
    # A new revision's attempt is stamped with its config's creation time (byoc:created-at), so whoever
    # later sees it fail (`byoc status --watch`) can tell the attempt's own config from a retained one.
    made = revisions.tags_dict((plan.create_config or {}).get("Tags") or []).get(revisions.T_AT)
    tags = [{"Key": revisions.outcome_key(plan.revision), "Value": outcome_of(plan, "in-progress", made)}]
    if first_update(plan):
        tags.append({"Key": revisions.T_ORIGINAL, "Value": plan.previous_config})
    return tags


def mark_original(aws: Aws, plan: UpdatePlan) -> None:
    """Tag the endpoint's original model and config as revision 0 on the first byoc update."""
    if not first_update(plan):
        return
    view = plan.current
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


def interrupted_before(plan: UpdatePlan) -> dict:
    """Attempts an earlier run left in progress (revision -> when it began; its run was killed):
    they may have left models behind."""
    out = {}
    for key, value in plan.tags.items():
        m = revisions.OUTCOME_TAG.match(key)
        if m and int(m.group(1)) != plan.revision and value.startswith("in-progress"):
            began = revisions.parse_outcome(value).get("created_at") or ""
            try:
                out[int(m.group(1))] = datetime.datetime.fromisoformat(began.replace("Z", "+00:00"))
            except ValueError:
                continue  # when it began is unknown, so who could use its models cannot be bounded
    return out


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


def outcome_of(plan: UpdatePlan, outcome: str, at: Optional[str] = None) -> str:
    """The value of the endpoint's byoc:r<N> tag recording this attempt's outcome now (or `at`)."""
    named = plan.image.split("@", 1)[0]
    ref = named.split("/", 1)[1] if "/" in named else named
    return revisions.outcome_value(outcome, at or now_iso(), ref, plan.digest, plan.caller)
