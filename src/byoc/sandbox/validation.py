"""Validate a request against botocore's own service model, with AWS's wording.

AWS answers a constraint violation with a ValidationException such as
"1 validation error detected: Value 'x' at 'endpointName' failed to satisfy constraint:
Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
(see "Common Errors" in the Amazon SageMaker API Reference).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any


@cache
def _pattern(text: str):
    try:
        return re.compile(text)
    except re.error:
        return None


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _show(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 120 else text[:117] + "..."


def validate(shape, params: Any) -> list:
    """Every constraint violation of `params` against the botocore input `shape`."""
    errors: list = []
    _check(shape, params, "", errors)
    return errors


def _check(shape, value, path, errors):  # noqa: C901 - one branch per botocore shape type
    t = shape.type_name
    meta = shape.metadata
    where = path or "input"
    if t == "structure":
        if not isinstance(value, dict):
            errors.append(f"Value '{_show(value)}' at '{where}' failed to satisfy constraint: Member must be a structure")
            return
        for req in shape.required_members:
            if value.get(req) is None:
                errors.append(f"Value null at '{_join(path, req)}' failed to satisfy constraint: Member must not be null")
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                _check(member, value[name], _join(path, name), errors)
    elif t == "list":
        if not isinstance(value, list):
            errors.append(f"Value '{_show(value)}' at '{where}' failed to satisfy constraint: Member must be a list")
            return
        _length(meta, len(value), value, where, errors)
        for i, item in enumerate(value, 1):
            _check(shape.member, item, f"{where}.{i}.member", errors)
    elif t == "map":
        if not isinstance(value, dict):
            errors.append(f"Value '{_show(value)}' at '{where}' failed to satisfy constraint: Member must be a map")
            return
        _length(meta, len(value), value, where, errors)
        for k, v in value.items():
            _check(shape.key, k, f"{where}.{k}.key", errors)
            _check(shape.value, v, f"{where}.{k}.value", errors)
    elif t == "string":
        if not isinstance(value, str):
            errors.append(f"Value '{_show(value)}' at '{where}' failed to satisfy constraint: Member must be a string")
            return
        _length(meta, len(value), value, where, errors)
        if shape.enum and value not in shape.enum:
            errors.append(f"Value '{_show(value)}' at '{where}' failed to satisfy constraint: "
                          f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        pattern = meta.get("pattern")
        if pattern and _pattern(pattern) is not None and not _pattern(pattern).fullmatch(value):
            errors.append(f"Value '{_show(value)}' at '{where}' failed to satisfy constraint: "
                          f"Member must satisfy regular expression pattern: {pattern}")
    elif t in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"Value '{_show(value)}' at '{where}' failed to satisfy constraint: Member must be a number")
            return
        if "min" in meta and value < meta["min"]:
            errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: "
                          f"Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: "
                          f"Member must have value less than or equal to {meta['max']}")
    elif t in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"Value '{_show(value)}' at '{where}' failed to satisfy constraint: Member must be a number")
            return
        if "min" in meta and value < meta["min"]:
            errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: "
                          f"Member must have value greater than or equal to {meta['min']}")
    elif t == "boolean":
        if not isinstance(value, bool):
            errors.append(f"Value '{_show(value)}' at '{where}' failed to satisfy constraint: Member must be a boolean")


def _length(meta, n, value, where, errors):
    if "min" in meta and n < meta["min"]:
        errors.append(f"Value '{_show(value)}' at '{where}' failed to satisfy constraint: "
                      f"Member must have length greater than or equal to {meta['min']}")
    if "max" in meta and n > meta["max"]:
        errors.append(f"Value '{_show(value)}' at '{where}' failed to satisfy constraint: "
                      f"Member must have length less than or equal to {meta['max']}")


def _join(path: str, name: str) -> str:
    return f"{path}.{_camel(name)}" if path else _camel(name)


def message(errors: list) -> str:
    n = len(errors)
    return f"{n} validation error{'s' if n != 1 else ''} detected: " + "; ".join(errors)
