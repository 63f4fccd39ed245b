"""Deployment guardrails: the UpdateEndpoint DeploymentConfig from short CLI specs, and its exclusions.

--traffic all-at-once | canary:PERCENT:BAKE_SECONDS | linear:STEP_PERCENT:BAKE_SECONDS
                  -> BlueGreenUpdatePolicy.TrafficRoutingConfiguration (deployment-guardrails-blue-green.html)
--rolling BATCH[%]:BAKE_SECONDS -> RollingUpdatePolicy (deployment-guardrails-rolling.html)
--alarm NAME ...  -> AutoRollbackConfiguration.Alarms (deployment-guardrails-configuration.html)
--max-time S      -> MaximumExecutionTimeoutInSeconds (600..28800)
Exclusions (deployment-guardrails-exclusions.html): blue/green and rolling need the same variant
names; rolling is not for serverless or multi-variant endpoints; alarms must exist.
Limits, checked before anything changes as SageMaker checks them: a canary is at most 50% of the
variant's capacity, a linear step 10-50% (TrafficRoutingConfig, API reference), a rolling batch 5-50%
of the variant's instances (API_RollingUpdatePolicy), and the maximum execution time is larger than
the waits it contains (API_BlueGreenUpdatePolicy: "should be larger than the total waiting time").
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Optional

from byoc.aws.client import Aws
from byoc.errors import AwsError, BadInput, PreflightFailed

if TYPE_CHECKING:
    from byoc.endpoint.view import EndpointView

MAX_BAKE = 3600
MAX_TIME = (600, 28800)
PERCENT = {"canary": (1, 50), "linear": (10, 50), "rolling": (5, 50)}  # of the variant's capacity


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
    low, high = PERCENT[kind]
    if not low <= percent <= high:
        raise BadInput(f"'{spec}': a {kind} {'step' if kind == 'linear' else 'size'} must be {low}..{high}% of the "
                       "variant's capacity (SageMaker's limit).", f"Example: --traffic {kind}:{max(low, 10)}:300")
    size = {"Type": "CAPACITY_PERCENT", "Value": percent}
    key = "CanarySize" if kind == "canary" else "LinearStepSize"
    return {"Type": kind.upper(), "WaitIntervalInSeconds": bake, key: size}


def rolling(spec: str) -> dict:
    """RollingUpdatePolicy for BATCH[%]:BAKE (instances, or percent of capacity)."""
    m = re.fullmatch(r"(\d+)(%?):(\S+)", spec or "")
    if not m or int(m.group(1)) < 1 or (m.group(2) and int(m.group(1)) > 100):
        raise BadInput(f"'{spec}' is not a rolling batch.",
                       "Use BATCH:BAKE_SECONDS (instances) or BATCH%:BAKE_SECONDS, e.g. --rolling 1:600 or 25%:300.")
    value = int(m.group(1))
    size = {"Type": "CAPACITY_PERCENT" if m.group(2) else "INSTANCE_COUNT", "Value": value}
    low, high = PERCENT["rolling"]
    if m.group(2) and not low <= value <= high:
        raise BadInput(f"'{spec}': a rolling batch must be {low}..{high}% of the variant's instances (SageMaker's "
                       "limit).", "Example: --rolling 25%:300")
    return {"MaximumBatchSize": size, "WaitIntervalInSeconds": _bake(m.group(3), spec)}


def bakes(config: Optional[dict], total: int) -> int:
    """How many baking periods the deployment waits through: one per traffic step (or batch) but the last."""
    config = config or {}
    rolling_policy = config.get("RollingUpdatePolicy")
    if rolling_policy:
        return max(1, math.ceil(max(total, 1) / max(batch_instances(config, max(total, 1)), 1))) - 1
    routing = (config.get("BlueGreenUpdatePolicy") or {}).get("TrafficRoutingConfiguration") or {}
    if routing.get("Type") == "LINEAR":
        return math.ceil(100 / routing["LinearStepSize"]["Value"]) - 1
    return 1  # canary, and all-at-once (which bakes with all traffic on the new fleet)


def check_max_time(config: Optional[dict], total: int) -> None:
    """MaximumExecutionTimeoutInSeconds must be larger than the waits of the deployment."""
    policy = (config or {}).get("RollingUpdatePolicy") or (config or {}).get("BlueGreenUpdatePolicy") or {}
    limit = policy.get("MaximumExecutionTimeoutInSeconds")
    if limit is None:
        return
    wait = policy.get("WaitIntervalInSeconds", (policy.get("TrafficRoutingConfiguration") or {}).get(
        "WaitIntervalInSeconds", 0))
    waits = wait * bakes(config, total) + policy.get("TerminationWaitInSeconds", 0)
    if limit <= waits:
        raise BadInput(f"--max-time {limit} is not larger than the deployment's own waits ({waits} seconds of baking).",
                       f"Give --max-time more than {waits} seconds plus the time to start the new fleet, or bake less.")


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
    if not rolling_spec:
        check_max_time(config, 1)  # blue/green waits do not depend on the instance count
    return config


def rolling_fleet(view: EndpointView) -> Optional[int]:
    """The instances a rolling update would roll (its one variant's); None where rolling updates are not
    supported (multi-variant and serverless endpoints: deployment-guardrails-exclusions.html)."""
    if len(view.variants) != 1 or view.variants[0].serverless:
        return None
    variant = view.variants[0]
    return variant.desired_instances if variant.desired_instances is not None else (variant.current_instances or 0)


def largest_batch(total: int) -> int:
    """The largest rolling batch SageMaker accepts for a variant of `total` instances (50%); 0 when no
    batch fits between the 5% and 50% limits (a single instance cannot roll)."""
    low, high = PERCENT["rolling"]
    batch = total * high // 100
    return batch if batch >= 1 and 100.0 * batch / total >= low else 0


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
        variant = view.variants[0]
        total = rolling_fleet(view) or 0
        size = config["RollingUpdatePolicy"]["MaximumBatchSize"]
        low, high = PERCENT["rolling"]
        if size["Type"] == "INSTANCE_COUNT" and not low <= 100.0 * size["Value"] / max(total, 1) <= high:
            raise PreflightFailed(
                f"A rolling batch of {size['Value']} instance(s) is {100.0 * size['Value'] / max(total, 1):.0f}% of "
                f"{variant.name}'s {total} instance(s); SageMaker accepts {low}..{high}%.",
                "Use a smaller batch (--rolling N:BAKE with N at most half the instances), or blue/green "
                "(--traffic all-at-once, the default).")
        try:
            check_max_time(config, total)
        except BadInput as exc:
            raise PreflightFailed(exc.message, exc.fix) from None
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
