"""Deployment guardrails: the UpdateEndpoint DeploymentConfig from short CLI specs, and its exclusions.

--traffic all-at-once | canary:PERCENT:BAKE_SECONDS | linear:STEP_PERCENT:BAKE_SECONDS
                  -> BlueGreenUpdatePolicy.TrafficRoutingConfiguration (deployment-guardrails-blue-green.html)
--rolling BATCH[%]:BAKE_SECONDS -> RollingUpdatePolicy (deployment-guardrails-rolling.html)
--alarm NAME ...  -> AutoRollbackConfiguration.Alarms (deployment-guardrails-configuration.html)
--max-time S      -> MaximumExecutionTimeoutInSeconds (600..28800)
Exclusions (deployment-guardrails-exclusions.html): blue/green and rolling need the same variant
names; rolling is not for serverless or multi-variant endpoints; alarms must exist.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Optional

from byoc.aws.client import Aws
from byoc.errors import AwsError, BadInput, PreflightFailed

if TYPE_CHECKING:
    from byoc.endpoint.view import EndpointView

MAX_BAKE = 3600
MAX_TIME = (600, 28800)


def _bake(text: str, spec: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise BadInput(f"'{spec}': the bake time '{text}' is not a whole number of seconds.",
                       "Example: --traffic canary:10:300") from None
    if not 0 <= value <= MAX_BAKE:
        raise BadInput(f"'{spec}': bake time must be 0..{MAX_BAKE} seconds.", "Example: --traffic canary:10:300")
    return value


def traffic(spec: str) -> dict:
    """TrafficRoutingConfiguration for all-at-once, canary:P:BAKE or linear:STEP:BAKE."""
    if spec in ("all-at-once", "all_at_once"):
        return {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
    m = re.fullmatch(r"(canary|linear):(\d+):(\S+)", spec or "")
    if not m:
        raise BadInput(f"'{spec}' is not a traffic mode.",
                       "Use all-at-once, canary:PERCENT:BAKE_SECONDS or linear:STEP_PERCENT:BAKE_SECONDS.")
    kind, percent, bake = m.group(1), int(m.group(2)), _bake(m.group(3), spec)
    if not 1 <= percent <= 99:
        raise BadInput(f"'{spec}': the {kind} percentage must be 1..99.", f"Example: --traffic {kind}:10:300")
    size = {"Type": "CAPACITY_PERCENT", "Value": percent}
    key = "CanarySize" if kind == "canary" else "LinearStepSize"
    return {"Type": kind.upper(), "WaitIntervalInSeconds": bake, key: size}


def rolling(spec: str) -> dict:
    """RollingUpdatePolicy for BATCH[%]:BAKE (instances, or percent of capacity)."""
    m = re.fullmatch(r"(\d+)(%?):(\S+)", spec or "")
    if not m or int(m.group(1)) < 1 or (m.group(2) and int(m.group(1)) > 100):
        raise BadInput(f"'{spec}' is not a rolling batch.",
                       "Use BATCH:BAKE_SECONDS (instances) or BATCH%:BAKE_SECONDS, e.g. --rolling 1:600 or 25%:300.")
    size = {"Type": "CAPACITY_PERCENT" if m.group(2) else "INSTANCE_COUNT", "Value": int(m.group(1))}
    return {"MaximumBatchSize": size, "WaitIntervalInSeconds": _bake(m.group(3), spec)}


def deployment_config(traffic_spec: Optional[str] = None, rolling_spec: Optional[str] = None,
                      alarms: tuple = (), max_time: Optional[int] = None) -> Optional[dict]:
    """The DeploymentConfig for UpdateEndpoint, or None for SageMaker's default blue/green."""
    if traffic_spec and rolling_spec:
        raise BadInput("--traffic and --rolling are alternatives.", "Choose blue/green traffic shifting or rolling batches.")
    if max_time is not None and not MAX_TIME[0] <= max_time <= MAX_TIME[1]:
        raise BadInput(f"--max-time must be {MAX_TIME[0]}..{MAX_TIME[1]} seconds.", "SageMaker's documented range.")
    if len(alarms) > 10:
        raise BadInput("At most 10 --alarm options.", "AutoRollbackConfiguration takes 1 to 10 alarms.")
    if not (traffic_spec or rolling_spec or alarms or max_time):
        return None
    config: dict = {}
    if rolling_spec:
        policy = rolling(rolling_spec)
        if max_time:
            policy["MaximumExecutionTimeoutInSeconds"] = max_time
        config["RollingUpdatePolicy"] = policy
    else:
        policy = {"TrafficRoutingConfiguration": traffic(traffic_spec or "all-at-once")}
        if max_time:
            policy["MaximumExecutionTimeoutInSeconds"] = max_time
        config["BlueGreenUpdatePolicy"] = policy
    if alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in alarms]}
    return config


def batch_instances(config: Optional[dict], total: int) -> int:
    """Extra instances an update needs at once: the whole fleet (blue/green) or one rolling batch."""
    policy = (config or {}).get("RollingUpdatePolicy")
    if not policy:
        return total
    size = policy["MaximumBatchSize"]
    if size["Type"] == "CAPACITY_PERCENT":
        return max(1, total * size["Value"] // 100) if total else 0
    return min(total, size["Value"])


def check_exclusions(aws: Aws, config: Optional[dict], view: EndpointView, new_variants: list) -> None:
    """Refuse, before any change, what SageMaker's guardrails do not support."""
    if not config:
        return
    live = sorted(v.name for v in view.variants)
    if sorted(new_variants) != live:
        raise PreflightFailed(
            f"Deployment guardrails need the same variant names; the endpoint has {', '.join(live)} and the new "
            f"config {', '.join(sorted(new_variants))}.", "Drop --traffic/--rolling/--alarm, or keep the variant names.")
    if config.get("RollingUpdatePolicy"):
        if len(view.variants) > 1:
            raise PreflightFailed(
                f"Rolling updates are not supported for multi-variant endpoints ({view.name} has {len(view.variants)}).",
                "Use --traffic canary:PERCENT:BAKE or linear:STEP:BAKE instead.")
        if any(v.serverless for v in view.variants):
            raise PreflightFailed(f"Rolling updates are not supported for serverless endpoints ({view.name}).",
                                  "Use --traffic all-at-once (the default) instead.")
    alarms = [a["AlarmName"] for a in (config.get("AutoRollbackConfiguration") or {}).get("Alarms", [])]
    if alarms:
        try:
            found = {a["AlarmName"] for a in aws.cloudwatch.describe_alarms(AlarmNames=alarms).get("MetricAlarms", [])}
        except AwsError as exc:
            raise PreflightFailed(f"Could not read the CloudWatch alarms: {exc}", "Check the alarm names.") from exc
        missing = [a for a in alarms if a not in found]
        if missing:
            raise PreflightFailed(f"CloudWatch alarm(s) not found in {aws.region}: {', '.join(missing)}.",
                                  "Create them first or fix the --alarm names (`aws cloudwatch describe-alarms`).")
