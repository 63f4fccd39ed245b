"""Capacity: the account's instance quotas, and SageMaker's refusal of an update that exceeds one.

Each instance type has a Service Quota "<type> for endpoint usage" (Amazon SageMaker AI endpoints
and quotas). Blue/green runs both fleets at once, so an update needs room for the new fleet (or
one rolling batch) on top of what the account's endpoints hold. SageMaker checks this itself,
synchronously: CreateEndpoint and UpdateEndpoint answer ResourceLimitExceeded naming the quota,
the current utilization and the request delta, and change nothing. So byoc does not count the
instances of every endpoint in the region on every update: it reads the quotas once per run for
the plan (refusing only what can never fit), and turns SageMaker's refusal into exit 2 with the
numbers and the ways out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from byoc.aws.client import Aws
from byoc.deploy.guardrails import largest_batch
from byoc.errors import AuthError, AwsError, PreflightFailed

QUOTA_SUFFIX = " for endpoint usage"
QUOTAS_MAX_AGE = 300.0  # seconds a session reuses the quotas it read
# "The account-level service limit 'ml.g5.12xlarge for endpoint usage' is 2 Instances, with current utilization
# of 2 Instances and a request delta of 1 Instances. Please use AWS Service Quotas to request an increase for this
# quota" (aws-samples/aws-genai-llm-chatbot#244; the older ending "Please contact AWS support to request an
# increase for this limit": awsdocs/amazon-sagemaker-developer-guide#70).
REFUSAL = re.compile(r"service limit '(?P<type>[\w.-]+) for endpoint usage' is (?P<limit>\d+) Instances?, with "
                     r"current utilization of (?P<used>\d+) Instances? and a request delta of (?P<delta>\d+)")


@dataclass
class Refusal:
    instance_type: str
    limit: int
    used: int
    delta: int


def quotas(aws: Aws) -> dict:
    """instance type -> (quota value, quota code) for SageMaker endpoint usage, read once per run;
    {} when unreadable (servicequotas:ListServiceQuotas denied)."""
    def read() -> dict:
        out = {}
        try:
            for page in aws.client("service-quotas").paginate("list_service_quotas", ServiceCode="sagemaker"):
                for q in page.get("Quotas", []):
                    name = q.get("QuotaName", "")
                    if name.endswith(QUOTA_SUFFIX):
                        out[name[: -len(QUOTA_SUFFIX)]] = (int(q.get("Value", 0)), q.get("QuotaCode"))
        except (AwsError, AuthError):
            return {}
        return out

    return aws.memo("servicequotas:sagemaker endpoint usage", read, max_age=QUOTAS_MAX_AGE)


def _what(rolling: bool) -> str:
    return "one rolling batch" if rolling else "the second (blue/green) fleet"


def _increase(code: Optional[str], desired: int) -> str:
    code = code or "<code of the quota, from: aws service-quotas list-service-quotas --service-code sagemaker>"
    return (f"aws service-quotas request-service-quota-increase --service-code sagemaker --quota-code {code} "
            f"--desired-value {desired}")


def _rolling_hint(room: int, fleet: Optional[int]) -> str:
    """"--rolling N:600, " with the largest batch that fits in `room` and that SageMaker accepts for a
    single-variant fleet of `fleet` instances (5-50%); "" when none does (or rolling does not apply)."""
    batch = min(room, largest_batch(fleet)) if fleet else 0
    return f"--rolling {batch}:600 (a batch of {batch}), " if batch else ""


def check(endpoint: str, extra: dict, rolling: bool, limits: dict, fleet: Optional[int] = None) -> None:
    """Refuse what can never fit: `extra` instances of a type beyond the whole quota. `fleet`: the
    instances of a single-variant endpoint (rolling updates apply only to those)."""
    for itype, n in extra.items():
        if itype in limits and n > limits[itype][0]:
            limit, code = limits[itype]
            raise PreflightFailed(
                f"Not enough {itype} capacity for {endpoint}: {_what(rolling)} needs {n} instance(s) and the quota "
                f"'{itype}{QUOTA_SUFFIX}' is {limit}.",
                f"Use {_rolling_hint(limit, fleet)}--strategy recreate (downtime), or ask for more: "
                f"{_increase(code, n)}" if limit else
                f"Ask for the quota: {_increase(code, n)} (or use another instance type).")


def refusal(exc: AwsError) -> Optional[Refusal]:
    """SageMaker's ResourceLimitExceeded for an endpoint instance quota, parsed; None for anything else."""
    if exc.code != "ResourceLimitExceeded":
        return None
    m = REFUSAL.search(exc.aws_message)
    if not m:
        return Refusal(instance_type="", limit=0, used=0, delta=0)
    return Refusal(m.group("type"), int(m.group("limit")), int(m.group("used")), int(m.group("delta")))


def refused(aws: Aws, endpoint: str, found: Refusal, rolling: bool, message: str,
            fleet: Optional[int] = None) -> PreflightFailed:
    """The exit-2 error for SageMaker's refusal: the numbers, and what to do instead (`fleet`: as in check)."""
    if not found.instance_type:
        return PreflightFailed(f"SageMaker refused the update of {endpoint}: {message}",
                               "Free capacity or ask for more with AWS Service Quotas, then run the update again.")
    itype, limit, used, delta = found.instance_type, found.limit, found.used, found.delta
    room = max(0, limit - used)
    code = quotas(aws).get(itype, (None, None))[1]
    return PreflightFailed(
        f"Not enough {itype} capacity for {endpoint}: {_what(rolling)} needs {delta} more instance(s), the quota "
        f"'{itype}{QUOTA_SUFFIX}' is {limit} and {used} are in use ({room} free). SageMaker refused the update; "
        "nothing was changed.",
        f"Use {_rolling_hint(room, fleet)}--strategy recreate (downtime), or ask for more: "
        f"{_increase(code, used + delta)}")
