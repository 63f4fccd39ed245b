"""Lossless copies of SageMaker resources, derived from botocore's shapes.

DescribeModel / DescribeEndpointConfig answers are filtered, recursively, down to the members
of the CreateModel / CreateEndpointConfig input shapes: every field the API accepts is carried
(including fields AWS adds in later botocore releases), read-only fields are dropped.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any


@cache
def _input_shape(operation: str, service: str = "sagemaker") -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(service).operation_model(operation).input_shape


def _filter(shape: Any, value: Any) -> Any:
    t = shape.type_name
    if t == "structure" and isinstance(value, dict):
        return {k: _filter(shape.members[k], v) for k, v in value.items() if k in shape.members and v is not None}
    if t == "list" and isinstance(value, list):
        return [_filter(shape.member, v) for v in value]
    if t == "map" and isinstance(value, dict):
        return {k: _filter(shape.value, v) for k, v in value.items()}
    return copy.deepcopy(value)


def as_input(operation: str, described: dict, drop: tuple = (), service: str = "sagemaker") -> dict:
    """The `operation` request that recreates `described` (minus the members in `drop`)."""
    out = _filter(_input_shape(operation, service), described)
    for key in drop:
        out.pop(key, None)
    return out



def member(operation: str, *path: str, service: str = "sagemaker") -> Any:
    """The botocore shape at `path` inside an operation's input ("[]" steps into a list's member)."""
    shape = _input_shape(operation, service)
    for step in path:
        shape = shape.member if step == "[]" else shape.members[step]
    return shape
