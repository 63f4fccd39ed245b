"""Service Quotas for SageMaker endpoint instances: GetServiceQuota and ListServiceQuotas.

Each hosting instance type a region offers has an account quota named "<instance type> for
endpoint usage" (Service Quotas console; "Amazon SageMaker AI endpoints and quotas", General
Reference). The sandbox lists one for every type of botocore's ProductionVariantInstanceType
(what SageMaker hosting accepts) except those a test marks as not offered in the region, with
the values the SageMaker emulation enforces (both set with POST /_sandbox/quotas); other
services' quotas stay moto's.
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import TYPE_CHECKING, Any, Dict

from byoc.sandbox.protocol import ServiceError

if TYPE_CHECKING:
    from byoc.sandbox.sagemaker.resources import Region


@cache
def hosting_types() -> tuple:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return tuple(model.shape_for("ProductionVariantInstanceType").enum)


def quota_code(instance_type: str) -> str:
    return "L-" + hashlib.sha1(f"{instance_type} for endpoint usage".encode()).hexdigest()[:8].upper()


def _quota(sagemaker: Any, reg: Region, itype: str) -> dict:
    from byoc.sandbox.peers import partition

    code = quota_code(itype)
    return {"ServiceCode": "sagemaker", "ServiceName": "Amazon SageMaker",
            "QuotaArn": f"arn:{partition(reg.region)}:servicequotas:{reg.region}:{reg.account}:sagemaker/{code}",
            "QuotaCode": code, "QuotaName": f"{itype} for endpoint usage",
            "Value": float(sagemaker.quota(reg, itype)), "Unit": "None", "Adjustable": True, "GlobalQuota": False}


def _types(reg: Region) -> list:
    used = {v.instance_type for e in reg.endpoints.values() for f in (e.live, e.pending) if f
            for v in f.variants.values() if v.instance_type}
    return sorted((set(hosting_types()) - reg.unoffered) | set(reg.quotas) | used)


def handle(sagemaker: Any, operation: str, params: dict, account: str, region: str) -> dict:
    with sagemaker.lock:
        reg = sagemaker.region(account, region)
        if operation == "GetServiceQuota":
            for itype in _types(reg):
                if quota_code(itype) == params.get("QuotaCode"):
                    return {"Quota": _quota(sagemaker, reg, itype)}
            raise ServiceError("NoSuchResourceException", f"The quota {params.get('QuotaCode')} does not exist.")
        quotas = [_quota(sagemaker, reg, t) for t in _types(reg)]
        if params.get("QuotaCode"):
            quotas = [q for q in quotas if q["QuotaCode"] == params["QuotaCode"]]
        start = int(params.get("NextToken") or 0)
        size = int(params.get("MaxResults") or 100)
        out: Dict[str, Any] = {"Quotas": quotas[start:start + size]}
        if start + size < len(quotas):
            out["NextToken"] = str(start + size)
        return out
