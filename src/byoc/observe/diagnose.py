"""`byoc diagnose`: why an endpoint's container does not work, as ranked findings.

Combines DescribeEndpoint (status, FailureReason), the endpoint config and models, the image's
ECR record and the endpoint's recent CloudWatch logs, and matches them against the catalogue
(data/signatures.json). Read-only: nothing in AWS changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

from byoc import timespec
from byoc.aws.client import Aws
from byoc.aws.partitions import logs_console_url
from byoc.diagnosis import Finding, KeyLine, key_lines, load, match, starts
from byoc.diagnosis.logtext import LogText
from byoc.endpoint import view as endpoint_view
from byoc.errors import AuthError, AwsError
from byoc.images import ref as image_ref
from byoc.observe import logs

# Without --since: a Failed endpoint is read from its last deployment on; a live one over at most
# the last LIVE_LOOKBACK_MS of that (a busy endpoint logs every request).
LIVE_LOOKBACK_MS = 6 * 3600 * 1000
MAX_EVENTS = 300_000
# A stream still writing lines this late into its start (as a share of the time from its first
# line to the failure) with no line saying it listens on 8080 was still starting.
STILL_STARTING = 0.8


@dataclass
class Diagnosis:
    endpoint: str
    region: str
    status: str
    failure_reason: Optional[str]
    findings: List[Finding]
    key_lines: List[KeyLine]
    console_url: str
    start: Optional[int] = None
    end: Optional[int] = None
    streams: List[str] = field(default_factory=list)
    events_read: int = 0
    truncated: bool = False
    facts: Dict[str, str] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)

    @property
    def explained(self) -> bool:
        """Whether a finding names a cause (not only a symptom such as the failed ping)."""
        return any(not f.symptom for f in self.findings)

    @property
    def show_key_lines(self) -> bool:
        """Key lines help when nothing names a cause and something is wrong (a failure, or errors
        in the logs); a healthy endpoint's first and last lines are noise."""
        unhealthy = bool(self.failure_reason) or self.status != "InService"
        errors = any(k.why in ("traceback", "error") for k in self.key_lines)
        return bool(self.key_lines) and not self.explained and (unhealthy or errors)

    def to_dict(self) -> dict:
        return {
            "endpoint": self.endpoint,
            "region": self.region,
            "status": self.status,
            "failure_reason": self.failure_reason,
            "findings": [f.to_dict() for f in self.findings],
            "key_lines": [k.to_dict() for k in self.key_lines],
            "console_url": self.console_url,
            "logs": {
                "group": logs.log_group(self.endpoint),
                "since": timespec.iso(self.start) if self.start is not None else None,
                "until": timespec.iso(self.end) if self.end is not None else None,
                "streams": self.streams,
                "events_read": self.events_read,
                "truncated": self.truncated,
            },
            "facts": self.facts,
            "notes": self.notes,
        }


def load_view(aws: Aws, endpoint: str) -> endpoint_view.EndpointView:
    """The endpoint with its config and models; tolerates a config deleted under a live endpoint."""
    described = endpoint_view.describe_endpoint(aws, endpoint)
    try:
        return endpoint_view.load(aws, endpoint, described)
    except AwsError as exc:
        if not exc.not_found:
            raise
        return endpoint_view.EndpointView(name=endpoint, endpoint=described, config={}, models={})


def facts(view: endpoint_view.EndpointView) -> Dict[str, str]:
    """Context for the catalogue's placeholders and api: rules, from the endpoint's description."""
    out: Dict[str, str] = {"endpoint": view.name}
    cfg_variants = view.config.get("ProductionVariants") or []
    variant = cfg_variants[0] if cfg_variants else {}
    model = view.models.get(variant.get("ModelName", ""), {})
    container: dict = next(iter(endpoint_view.model_containers(model)), {})
    values = {
        "variant": variant.get("VariantName"),
        "instance_type": variant.get("InstanceType"),
        "volume_size": _unit(variant.get("VolumeSizeInGB"), "GB"),
        "model_download_timeout": _unit(variant.get("ModelDataDownloadTimeoutInSeconds"), "s"),
        "startup_timeout": _unit(variant.get("ContainerStartupHealthCheckTimeoutInSeconds"), "s"),
        "image": (view.variants[0].image if view.variants else None) or container.get("Image"),
        "execution_role": model.get("ExecutionRoleArn"),
        "model_data_url": container.get("ModelDataUrl"),
    }
    if model:
        values["network_isolation"] = "on" if model.get("EnableNetworkIsolation") else "off"
        subnets = (model.get("VpcConfig") or {}).get("Subnets") or []
        values["vpc"] = ", ".join(subnets) if subnets else "none (SageMaker's own network)"
    out.update({k: str(v) for k, v in values.items() if v not in (None, "")})
    # Each variant's instance type: a finding names the one of the instance whose line it shows.
    types = {v.get("VariantName"): v.get("InstanceType") for v in cfg_variants if v.get("InstanceType")}
    if len(types) > 1:
        out["variant_instance_types"] = json.dumps(types)
    return out


def _unit(value: Any, unit: str) -> Optional[str]:
    return None if value in (None, "") else f"{value} {unit}"


def ecr_fact(aws: Aws, image: Optional[str]) -> Optional[str]:
    """The ECR lookup's error code and message when the image is missing; None when found or unknown."""
    ref = image_ref.try_parse(image or "")
    if ref is None:
        return None
    image_id = {"imageDigest": ref.digest} if ref.digest else {"imageTag": ref.tag or "latest"}
    try:
        aws.ecr.describe_images(registryId=ref.account, repositoryName=ref.repository, imageIds=[image_id])
    except AuthError:
        return None  # the caller may not read the repository; SageMaker's own error says more
    except AwsError as exc:
        if exc.code in ("ImageNotFoundException", "RepositoryNotFoundException"):
            return f"{exc.code}: {exc.aws_message}"
        raise
    return None


def startup_fact(log: LogText, failed_at: Optional[int]) -> Optional[str]:
    """Set when an instance was still writing start-up lines when the health check gave up (not
    when its container kept exiting and starting again: that is a crash loop, whose cause the
    other signatures name)."""
    if failed_at is None or not len(log):
        return None
    restarted = {s.stream for s in starts.split(log.events) if s.number >= 2}
    ready_streams = {log.events[i].get("logStreamName") for rule in load().ready
                     for i, _ in log.find(rule.regex, rule.needles)}
    first: Dict[str, int] = {}
    last: Dict[str, int] = {}
    for e in log.events:
        stream, ts = e.get("logStreamName", ""), int(e.get("timestamp") or 0)
        first.setdefault(stream, ts)
        last[stream] = ts
    for stream, start in first.items():
        if stream in ready_streams or stream in restarted or failed_at <= start:
            continue
        if (last[stream] - start) >= STILL_STARTING * (failed_at - start):
            return (f"{stream} was still writing start-up lines when the health check gave up, "
                    "and no line says a server listens on 0.0.0.0:8080")
    return None


def default_start(view: endpoint_view.EndpointView, now: int) -> Optional[int]:
    anchor = logs.last_update_ms(view.endpoint, view.config)
    if view.status == "Failed":
        return anchor
    floor = now - LIVE_LOOKBACK_MS
    return floor if anchor is None else max(anchor, floor)


def diagnose(aws: Aws, endpoint: str, since: Union[int, str, None] = None,
             view: Optional[endpoint_view.EndpointView] = None, until: Union[int, str, None] = None,
             max_events: int = MAX_EVENTS) -> Diagnosis:
    """Findings for `endpoint`, most likely cause first. `since`/`until`: epoch ms or --since text."""
    view = view or load_view(aws, endpoint)
    now = timespec.now_ms()
    start = timespec.parse(since, "--since", now) if isinstance(since, str) else since
    end = timespec.parse(until, "--until", now) if isinstance(until, str) else until
    if start is None:
        start = default_start(view, now)
    context = facts(view)
    ecr = ecr_fact(aws, context.get("image"))
    if ecr:
        context["ecr_image"] = ecr
    notes: List[str] = []
    try:
        read = logs.read(aws, endpoint, start=start, end=end, max_events=max_events)
    except logs.LogGroupMissing:
        context["log_group"] = "missing"
        read = logs.LogRead(logs.log_group(endpoint), [], [], start, end)
    except AuthError as exc:  # still worth reporting what the endpoint's description says
        notes.append(f"Logs not read: {exc.message} {exc.fix}")
        read = logs.LogRead(logs.log_group(endpoint), [], [], start, end)
    log = LogText(read.events)
    reason = view.endpoint.get("FailureReason")
    if reason:
        still = startup_fact(log, logs.epoch_ms(view.endpoint.get("LastModifiedTime")))
        if still:
            context["startup_exceeded"] = still
    findings = match(log, failure_reason=reason, context=context)
    return Diagnosis(
        endpoint=endpoint,
        region=aws.region,
        status=view.status,
        failure_reason=reason,
        findings=findings,
        key_lines=key_lines((), log=log),
        console_url=logs_console_url(aws.region, endpoint),
        start=start,
        end=end,
        streams=[s.name for s in read.streams],
        events_read=len(read.events),
        truncated=read.truncated,
        facts=context,
        notes=notes,
    )
