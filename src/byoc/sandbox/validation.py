"""Validate a request against botocore's own service model, with AWS's wording.

AWS answers a constraint violation with a ValidationException such as
"1 validation error detected: Value 'x' at 'endpointName' failed to satisfy constraint:
Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
(see "Common Errors" in the Amazon SageMaker API Reference).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, Dict, Tuple


@cache
def _pattern(text: str) -> Any:
    try:
        return re.compile(text)
    except re.error:
        return None


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _show(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 120 else text[:117] + "..."


def validate(shape: Any, params: Any) -> list:
    """Every constraint violation of `params` against the botocore input `shape`."""
    errors: list = []
    _check(shape, params, "", errors)
    return errors


# botocore type -> (accepted Python types, the word AWS uses in "Member must be a ...").
_TYPES: Dict[str, Tuple[Any, str]] = {
    "structure": (dict, "structure"), "list": (list, "list"), "map": (dict, "map"), "string": (str, "string"),
    "integer": (int, "number"), "long": (int, "number"), "float": ((int, float), "number"),
    "double": ((int, float), "number"), "boolean": (bool, "boolean"),
}


def _fail(errors: list, value: Any, where: str, constraint: str, quote: bool = True) -> None:
    shown = f"'{_show(value)}'" if quote else "null"
    errors.append(f"Value {shown} at '{where}' failed to satisfy constraint: {constraint}")


def _check(shape: Any, value: Any, path: Any, errors: Any) -> Any:
    t = shape.type_name
    meta = shape.metadata
    where = path or "input"
    accepted = _TYPES.get(t)
    if accepted is not None:
        is_bool = isinstance(value, bool)
        if not isinstance(value, accepted[0]) or (is_bool and t != "boolean"):
            return _fail(errors, value, where, f"Member must be a {accepted[1]}")
    if t == "structure":
        for req in shape.required_members:
            if value.get(req) is None:
                _fail(errors, None, _join(path, req), "Member must not be null", quote=False)
        for name, member in shape.members.items():
            if value.get(name) is not None:
                _check(member, value[name], _join(path, name), errors)
    elif t == "list":
        _length(meta, len(value), value, where, errors)
        for i, item in enumerate(value, 1):
            _check(shape.member, item, f"{where}.{i}.member", errors)
    elif t == "map":
        _length(meta, len(value), value, where, errors)
        for k, v in value.items():
            _check(shape.key, k, f"{where}.{k}.key", errors)
            _check(shape.value, v, f"{where}.{k}.value", errors)
    elif t == "string":
        _length(meta, len(value), value, where, errors)
        if shape.enum and value not in shape.enum:
            _fail(errors, value, where, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        pattern = meta.get("pattern")
        if pattern and _pattern(pattern) is not None and not _pattern(pattern).fullmatch(value):
            _fail(errors, value, where, f"Member must satisfy regular expression pattern: {pattern}")
    elif t in ("integer", "long", "float", "double"):
        if "min" in meta and value < meta["min"]:
            _fail(errors, value, where, f"Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            _fail(errors, value, where, f"Member must have value less than or equal to {meta['max']}")


def _length(meta: Any, n: Any, value: Any, where: Any, errors: Any) -> None:
    if "min" in meta and n < meta["min"]:
        _fail(errors, value, where, f"Member must have length greater than or equal to {meta['min']}")
    if "max" in meta and n > meta["max"]:
        _fail(errors, value, where, f"Member must have length less than or equal to {meta['max']}")


def _join(path: str, name: str) -> str:
    return f"{path}.{_camel(name)}" if path else _camel(name)


def message(errors: list) -> str:
    n = len(errors)
    return f"{n} validation error{'s' if n != 1 else ''} detected: " + "; ".join(errors)
