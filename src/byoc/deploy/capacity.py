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

import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
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
        _save_codes(aws, {t: code for t, (_, code) in out.items() if code})
        return out

    return aws.memo("servicequotas:sagemaker endpoint usage", read, max_age=QUOTAS_MAX_AGE)


def quotas_of(aws: Aws, types: list) -> dict:
    """instance type -> (quota value, quota code) for `types` only: one GetServiceQuota each when their
    quota codes are known from an earlier listing (kept on disk: a code names the same quota in every
    account), else the whole listing (SageMaker has hundreds of quotas: several pages)."""
    codes = _load_codes(aws)
    found = {} if any(t not in codes for t in types) else {  # each type once per run, however plans group them
        t: aws.memo(f"servicequotas:sagemaker {t}", functools.partial(_get_quota, aws, codes[t]),
                    max_age=QUOTAS_MAX_AGE) for t in types}
    if len(found) < len(types) or None in found.values():
        return {t: q for t, q in quotas(aws).items() if t in types}
    return found


def _get_quota(aws: Aws, code: str) -> Optional[tuple]:
    """(value, code) of one quota; None when it cannot be read by its code (then byoc lists them)."""
    try:
        q = aws.client("service-quotas").get_service_quota(ServiceCode="sagemaker", QuotaCode=code)["Quota"]
    except AuthError:
        return None  # may list, not get: as before
    except AwsError:
        _save_codes(aws, {}, drop=code)  # a code that moved: list again
        return None
    return int(q.get("Value", 0)), q.get("QuotaCode")


def codes_file() -> Path:
    """Where byoc keeps the quota codes it listed ($XDG_CACHE_HOME or ~/.cache)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "byoc" / "quota-codes.json"


def _codes_key(aws: Aws) -> str:
    return aws.endpoint_url or aws.partition.name


def _load_codes(aws: Aws) -> dict:
    try:
        return json.loads(codes_file().read_text()).get(_codes_key(aws), {})
    except (OSError, ValueError, AttributeError):
        return {}


def _save_codes(aws: Aws, codes: dict, drop: str = "") -> None:
    """Remember instance type -> quota code (identifiers, no values); a cache that cannot be written is skipped."""
    path = codes_file()
    try:
        data = json.loads(path.read_text()) if path.exists() else {}
        known = {t: c for t, c in data.get(_codes_key(aws), {}).items() if c != drop}
        known.update(codes)
        data[_codes_key(aws)] = known
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, sort_keys=True))
    except (OSError, ValueError, AttributeError):
        return


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
