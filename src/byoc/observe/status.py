"""`status`: what an endpoint runs now, its autoscaling, the last update and any update in progress."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from byoc.aws.client import Aws
from byoc.endpoint import lock, revisions, solution
from byoc.endpoint import view as endpoint_view
from byoc.errors import AuthError, AwsError
from byoc.timespec import iso_utc


@dataclass
class Status:
    endpoint: str
    status: str
    config: str
    kind: str
    variants: list = field(default_factory=list)
    autoscaling: list = field(default_factory=list)
    failure_reason: Optional[str] = None
    last_modified: Optional[str] = None
    last_update: Optional[dict] = None
    in_progress: Optional[dict] = None
    revision: Optional[int] = None
    solution: Optional[dict] = None  # the solution generation that made it (endpoint/solution.py)
    autoscaling_paused: Optional[str] = None  # an interrupted byoc run left autoscaling deregistered
    given_image: Optional[str] = None  # the live revision's image as the user gave it (its tag kept)

    def to_dict(self) -> dict:
        return asdict(self)


def status(aws: Aws, endpoint: str) -> Status:
    view = endpoint_view.load(aws, endpoint)
    d = view.endpoint
    try:
        tags = revisions.list_tags(aws, d["EndpointArn"])
    except (AwsError, AuthError):
        tags = {}
    out = Status(endpoint=endpoint, status=view.status, config=view.config_name,
                 kind=view.kind, failure_reason=d.get("FailureReason"),
                 last_modified=iso_utc(d.get("LastModifiedTime")), revision=revisions.number(view.config_name) or 0,
                 given_image=revisions.given_image(aws, view))
    sol = solution.of_view(view)
    out.solution = sol.to_dict() if sol else None
    for v in view.variants:
        out.variants.append({"name": v.name, "model": v.model, "instance_type": v.instance_type, "image": v.image,
                             "digest": v.digest, "current_instances": v.current_instances,
                             "desired_instances": v.desired_instances})
    out.autoscaling = _autoscaling(aws, endpoint, [v.name for v in view.variants])
    if tags.get(revisions.T_AUTOSCALING):
        out.autoscaling_paused = (f"byoc deregistered autoscaling for an instance-type change and keeps its exact "
                                  f"record in the endpoint's {revisions.T_AUTOSCALING} tags; the next `byoc update` "
                                  f"or `byoc rollback` of {endpoint} registers it again")
    # The latest attempt by time (a rollback to an earlier revision is newer than the attempts after it).
    outcomes = sorted(((revisions.parse_outcome(v).get("created_at") or "", int(m.group(1)), bool(m.group(2)), v)
                       for k, v in tags.items() if (m := revisions.OUTCOME_TAG.match(k))), reverse=True)
    if outcomes:
        _, n, rollback, value = outcomes[0]
        out.last_update = {"revision": n, **revisions.parse_outcome(value), "rollback": rollback}
        out.last_update["created_at"] = iso_utc(out.last_update.get("created_at"))
    pending = d.get("PendingDeploymentSummary")
    holder = lock.holder(tags.get(revisions.T_LOCK))
    if pending or holder or view.status in endpoint_view.BUSY:
        out.in_progress = {"status": view.status, "target_config": (pending or {}).get("EndpointConfigName"),
                           "started": iso_utc((pending or {}).get("StartTime")), "byoc_run": holder}
    return out


def _autoscaling(aws: Aws, endpoint: str, variants: list) -> list:
    ids = [f"endpoint/{endpoint}/variant/{v}" for v in variants]
    try:
        aas = aws.client("application-autoscaling")
        targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=ids).get("ScalableTargets", [])
        out = []
        for t in targets:
            policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=t["ResourceId"]).get(
                "ScalingPolicies", [])
            out.append({"variant": t["ResourceId"].rsplit("/", 1)[-1], "min": t.get("MinCapacity"),
                        "max": t.get("MaxCapacity"), "policies": [p["PolicyName"] for p in policies]})
        return out
    except (AwsError, AuthError):
        return []
