"""Resource Groups Tagging API GetResources for the sandbox's own SageMaker resources.

SageMaker here is the sandbox's emulation, not moto's, so moto's tagging backend cannot see its
models, endpoint configs and endpoints. A GetResources call whose ResourceTypeFilters are all
SageMaker types is answered here from the same tags ListTags returns; any other call goes to moto
("GetResources", Resource Groups Tagging API Reference: "Returns all the tagged or previously
tagged resources that are located in the specified Region for the account"; ResourceTypeFilters
take "service[:resourceType]", e.g. "sagemaker:endpoint-config"; a TagFilter matches resources
with that key and, when Values are given, one of them; ResourcesPerPage 1-100, default 50).
"""

from __future__ import annotations

import base64
from typing import Any, Optional

from byoc.sandbox.protocol import ServiceError, validation

TYPES = ("model", "endpoint-config", "endpoint")


def handles(params: dict) -> bool:
    """Only SageMaker types or SageMaker ARNs asked for: the answer is the sandbox's own."""
    arns = params.get("ResourceARNList") or []
    if arns:
        return all(_service(a) == "sagemaker" for a in arns)
    filters = params.get("ResourceTypeFilters") or []
    return bool(filters) and all(f.split(":", 1)[0] == "sagemaker" for f in filters)


def _service(arn: str) -> str:
    parts = str(arn).split(":")
    return parts[2] if len(parts) > 5 and parts[0] == "arn" else ""


def _kind(arn: str) -> str:
    """arn:<partition>:sagemaker:<region>:<account>:<kind>/<name> -> kind."""
    return arn.split(":", 5)[5].split("/", 1)[0]


def _wanted(filters: list) -> list:
    kinds = []
    for f in filters:
        _, _, kind = f.partition(":")
        kinds += list(TYPES) if not kind else [kind]
    return [k for k in dict.fromkeys(kinds) if k in TYPES]


def _matches(tags: list, tag_filters: list) -> bool:
    have = {t["Key"]: t["Value"] for t in tags}
    for f in tag_filters:
        if f.get("Key") not in have:
            return False
        values = f.get("Values") or []
        if values and have[f["Key"]] not in values:
            return False
    return True


def get_resources(region_state: Any, params: dict) -> dict:
    """Answered from the region's tag index, which follows SageMaker's tags late (sagemaker/control.py)."""
    index = region_state.tag_index
    arns = params.get("ResourceARNList")
    if arns is not None:
        return {"ResourceTagMappingList": _listed(index, arns, params), "PaginationToken": ""}
    per_page = int(params.get("ResourcesPerPage") or 50)
    if not 1 <= per_page <= 100:
        raise validation("ResourcesPerPage must be between 1 and 100.")
    kinds = _wanted(params.get("ResourceTypeFilters") or [])
    found = [{"ResourceARN": a, "Tags": [dict(t) for t in tags]} for a, tags in index.items()
             if _kind(a) in kinds and _matches(tags, params.get("TagFilters") or [])]
    start = _offset(params.get("PaginationToken"))
    out = {"ResourceTagMappingList": found[start:start + per_page], "PaginationToken": ""}
    if start + per_page < len(found):
        out["PaginationToken"] = base64.b64encode(str(start + per_page).encode()).decode()
    return out


def _offset(token: Optional[str]) -> int:
    if not token:
        return 0
    try:
        return int(base64.b64decode(token).decode())
    except (ValueError, UnicodeDecodeError):
        raise ServiceError("PaginationTokenExpiredException", "The pagination token is invalid or expired.") from None


def _listed(index: dict, arns: list, params: dict) -> list:
    """ResourceARNList (botocore's GetResources documentation): 1 to 100 ARNs; "You can't specify both
    this parameter and the ResourceTypeFilters parameter", "... the TagFilters parameter", "... any of
    the pagination parameters (ResourcesPerPage, TagsPerPage, PaginationToken) in the same request. If
    you do, you get an Invalid Parameter exception. If a resource specified by this parameter doesn't
    exist, it doesn't generate an error; it simply isn't included in the response"."""
    if not 1 <= len(arns) <= 100:
        raise ServiceError("InvalidParameterException", "ResourceARNList must contain between 1 and 100 ARNs.")
    both = [k for k in ("ResourceTypeFilters", "TagFilters", "ResourcesPerPage", "TagsPerPage", "PaginationToken")
            if params.get(k)]
    if both:
        raise ServiceError("InvalidParameterException",
                           f"You can't specify both ResourceARNList and {both[0]} in the same request.")
    return [{"ResourceARN": a, "Tags": [dict(t) for t in index[a]]} for a in dict.fromkeys(arns) if a in index]
