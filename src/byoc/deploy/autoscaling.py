"""Pause and restore Application Auto Scaling around a change SageMaker refuses while it is registered.

An UpdateEndpoint that changes the instance type of (or removes) a variant registered as a
scalable target fails, and so does a DeleteEndpoint's silent deregistration without permission:
the target must be deregistered first (which deletes its scaling policies and scheduled actions) and registered again
afterwards ("Update or delete endpoints that use auto scaling", endpoint-scaling.html, SageMaker
Developer Guide). byoc records each target and its policies exactly (min, max, suspended state,
role, every policy's configuration, scheduled actions; not the target's own Application Auto
Scaling tags, which DescribeScalableTargets does not return), deregisters, and registers them again the same way,
also pointing the CloudWatch alarms that invoked a step policy at the policy's new ARN (a policy
put again gets a new ARN; target tracking alarms are Application Auto Scaling's own and come back
with the policy).

The record is also kept on the endpoint as `byoc:autoscaling` tags while the target is
deregistered, so a run killed in between is finished by the next byoc run on the endpoint,
from a fresh process.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import zlib
from dataclasses import dataclass
from typing import Optional

from byoc.aws import shapes
from byoc.aws.client import Aws
from byoc.endpoint import revisions
from byoc.errors import AwsError

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
AAS = "application-autoscaling"
T_RECORD = revisions.T_AUTOSCALING  # "r<revision> <chunks> <host> <pid>"; the record is in T_RECORD:<i>
CHUNK = 256  # SageMaker tag values hold at most 256 characters (Tag, SageMaker API Reference)


@dataclass(frozen=True)
class Registration:
    """One variant's scalable target and its policies, as the requests that recreate them."""

    target: dict  # RegisterScalableTarget request
    policies: tuple = ()  # ((PutScalingPolicy request, the policy's ARN when recorded), ...)
    scheduled: tuple = ()  # PutScheduledAction requests

    @property
    def variant(self) -> str:
        return self.target["ResourceId"].rsplit("/", 1)[-1]

    def summary(self) -> str:
        t = self.target
        suspended = [k for k, v in (t.get("SuspendedState") or {}).items() if v]
        names = ", ".join(p["PolicyName"] for p, _ in self.policies) or "no policies"
        return (f"{t.get('MinCapacity')}..{t.get('MaxCapacity')} instances, {names}"
                + (f", suspended: {', '.join(suspended)}" if suspended else ""))

    def to_dict(self) -> dict:
        return {"target": self.target, "policies": [{"request": p, "arn": arn} for p, arn in self.policies],
                "scheduled": list(self.scheduled)}

    @staticmethod
    def from_dict(d: dict) -> Registration:
        return Registration(target=d["target"], policies=tuple((p["request"], p.get("arn")) for p in d["policies"]),
                            scheduled=tuple(d.get("scheduled") or ()))


def resource_id(endpoint: str, variant: str) -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


def save(aws: Aws, endpoint: str, variants: list) -> list:
    """[Registration] of those of `variants` that are registered now."""
    if not variants:
        return []
    aas = aws.client(AAS)
    targets = aas.describe_scalable_targets(
        ServiceNamespace=NAMESPACE, ResourceIds=[resource_id(endpoint, v) for v in variants],
        ScalableDimension=DIMENSION).get("ScalableTargets", [])
    saved = []
    for t in targets:
        target = shapes.as_input("RegisterScalableTarget", t, service=AAS)
        policies = []
        for page in aas.paginate("describe_scaling_policies", ServiceNamespace=NAMESPACE, ResourceId=t["ResourceId"],
                                 ScalableDimension=DIMENSION):
            policies += [(shapes.as_input("PutScalingPolicy", p, service=AAS), p.get("PolicyARN"))
                         for p in page.get("ScalingPolicies", [])]
        scheduled = [_plain(shapes.as_input("PutScheduledAction", a, service=AAS))
                     for page in aas.paginate("describe_scheduled_actions", ServiceNamespace=NAMESPACE,
                                              ResourceId=t["ResourceId"], ScalableDimension=DIMENSION)
                     for a in page.get("ScheduledActions", [])]
        saved.append(Registration(target=target, policies=tuple(policies), scheduled=tuple(scheduled)))
    return saved


def _plain(request: dict) -> dict:
    """`request` with its timestamps as ISO 8601 strings (botocore accepts them; JSON holds them)."""
    return json.loads(json.dumps(request, default=lambda t: t.isoformat()))


def deregister(aws: Aws, saved: list) -> None:
    """DeregisterScalableTarget (which deletes the target's policies); one already gone is fine."""
    aas = aws.client(AAS)
    for reg in saved:
        t = reg.target
        try:
            aas.deregister_scalable_target(ServiceNamespace=t["ServiceNamespace"], ResourceId=t["ResourceId"],
                                           ScalableDimension=t["ScalableDimension"])
        except AwsError as exc:
            if exc.code != "ObjectNotFoundException":
                raise


def register(aws: Aws, saved: list) -> None:
    """Register each target and put each policy again exactly; re-point the alarms of step policies."""
    aas = aws.client(AAS)
    for reg in saved:
        aas.register_scalable_target(**reg.target)
        for request, old_arn in reg.policies:
            new_arn = aas.put_scaling_policy(**request).get("PolicyARN")
            if old_arn and new_arn and new_arn != old_arn:
                _repoint_alarms(aws, old_arn, new_arn)
        for action in reg.scheduled:
            aas.put_scheduled_action(**action)


def _repoint_alarms(aws: Aws, old_arn: str, new_arn: str) -> None:
    cloudwatch = aws.client("cloudwatch")
    for page in cloudwatch.paginate("describe_alarms", ActionPrefix=old_arn, AlarmTypes=["MetricAlarm"]):
        for alarm in page.get("MetricAlarms", []):
            request = shapes.as_input("PutMetricAlarm", alarm, service="cloudwatch")
            for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
                if request.get(key):
                    request[key] = [new_arn if a == old_arn else a for a in request[key]]
            cloudwatch.put_metric_alarm(**request)


def commands(saved: list) -> list:
    """The AWS CLI commands that register `saved` again by hand."""
    out = []
    for reg in saved:
        out.append("aws application-autoscaling register-scalable-target --cli-input-json "
                   f"'{json.dumps(reg.target)}'")
        out += [f"aws application-autoscaling put-scaling-policy --cli-input-json '{json.dumps(p)}'"
                for p, _ in reg.policies]
        out += [f"aws application-autoscaling put-scheduled-action --cli-input-json '{json.dumps(a)}'"
                for a in reg.scheduled]
    return out


# -- the record on the endpoint's tags, for a run that was interrupted ----------------------------------

def record_tags(saved: list, revision: int) -> list:
    """Endpoint tags that hold `saved` (compressed JSON in CHUNK-sized pieces) and who wrote them."""
    blob = base64.b64encode(zlib.compress(json.dumps([r.to_dict() for r in saved], separators=(",", ":"),
                                                     sort_keys=True).encode(), 9)).decode()
    chunks = [blob[i:i + CHUNK] for i in range(0, len(blob), CHUNK)]
    head = f"r{revision} {len(chunks)} {socket.gethostname()[:60]} {os.getpid()}"
    return [{"Key": T_RECORD, "Value": head}] + [{"Key": f"{T_RECORD}:{i}", "Value": c} for i, c in enumerate(chunks)]


@dataclass(frozen=True)
class Record:
    revision: int
    saved: list
    keys: tuple  # the endpoint tags that hold it


def recorded(tags: dict) -> Optional[Record]:
    """The record an earlier run left on the endpoint, or None (also when it is incomplete)."""
    head = tags.get(T_RECORD)
    if not head:
        return None
    parts = head.split(" ")
    try:
        revision, count = int(parts[0].lstrip("r")), int(parts[1])
        blob = "".join(tags[f"{T_RECORD}:{i}"] for i in range(count))
        saved = [Registration.from_dict(d) for d in json.loads(zlib.decompress(base64.b64decode(blob)))]
    except (IndexError, KeyError, ValueError, zlib.error):
        return None
    return Record(revision=revision, saved=saved,
                  keys=tuple([T_RECORD] + [f"{T_RECORD}:{i}" for i in range(count)]))


def record_keys(tags: dict) -> list:
    """Every byoc:autoscaling tag on the endpoint (complete record or not)."""
    return [k for k in tags if k == T_RECORD or k.startswith(T_RECORD + ":")]
