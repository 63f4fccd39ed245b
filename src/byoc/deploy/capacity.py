"""Capacity pre-flight: does the second fleet (or the rolling batch) fit the account's quota?

Each instance type has a Service Quota "<type> for endpoint usage" (Amazon SageMaker AI
endpoints and quotas). Blue/green runs both fleets at once, so an update needs the quota to
cover the instances already in use across the account's endpoints plus the new fleet.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from byoc.errors import AuthError, AwsError, PreflightFailed


def quotas(aws) -> dict:
    """instance type -> (quota value, quota code) for SageMaker endpoint usage; {} when unreadable."""
    out = {}
    try:
        for page in aws.client("service-quotas").paginate("list_service_quotas", ServiceCode="sagemaker"):
            for q in page.get("Quotas", []):
                name = q.get("QuotaName", "")
                if name.endswith(" for endpoint usage"):
                    out[name[: -len(" for endpoint usage")]] = (int(q.get("Value", 0)), q.get("QuotaCode"))
    except (AwsError, AuthError):
        return {}
    return out


def in_use(aws, exclude: Optional[str] = None) -> dict:
    """instance type -> instances the account's endpoints hold now (both fleets of an update)."""
    names = [e["EndpointName"] for page in aws.sagemaker.paginate("list_endpoints", MaxResults=100)
             for e in page.get("Endpoints", []) if e["EndpointStatus"] not in ("Failed", "Deleting")]

    def one(name: str) -> dict:
        usage: dict = {}
        try:
            d = aws.sagemaker.describe_endpoint(EndpointName=name)
            configs = [(d["EndpointConfigName"], d.get("ProductionVariants", []))]
            pending = d.get("PendingDeploymentSummary")
            if pending:
                configs.append((pending["EndpointConfigName"], pending.get("ProductionVariants", [])))
            for config, variants in configs:
                types = {v["VariantName"]: v.get("InstanceType") for v in
                         aws.sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]}
                for v in variants:
                    itype = types.get(v["VariantName"])
                    if itype:
                        count = max(v.get("CurrentInstanceCount") or 0, v.get("DesiredInstanceCount") or 0)
                        usage[itype] = usage.get(itype, 0) + count
        except AwsError:
            pass
        return usage

    total: dict = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for usage in pool.map(one, [n for n in names if n != exclude] + ([exclude] if exclude in names else [])):
            for itype, n in usage.items():
                total[itype] = total.get(itype, 0) + n
    return total


def check(aws, endpoint: str, extra: dict, rolling: bool, usage: Optional[dict] = None,
          limits: Optional[dict] = None) -> None:
    """Refuse when `extra` instances (per type) do not fit; silent when quotas cannot be read."""
    if not extra:
        return
    limits = quotas(aws) if limits is None else limits
    if not limits:
        return
    usage = in_use(aws) if usage is None else usage
    for itype, n in extra.items():
        if itype not in limits or n <= 0:
            continue
        limit, code = limits[itype]
        used = usage.get(itype, 0)
        if used + n > limit:
            room = max(0, limit - used)
            what = "one rolling batch" if rolling else "the second (blue/green) fleet"
            hint = f"--rolling {room}:600 (needs {room})" if room else "--rolling with a smaller batch once room frees up"
            raise PreflightFailed(
                f"Not enough {itype} capacity for {endpoint}: {what} needs {n} more instance(s), the quota "
                f"'{itype} for endpoint usage' is {limit} and {used} are in use ({room} free).",
                f"Use {hint}, --strategy recreate (downtime), or ask for more: aws service-quotas "
                f"request-service-quota-increase --service-code sagemaker --quota-code {code} "
                f"--desired-value {used + n}")
