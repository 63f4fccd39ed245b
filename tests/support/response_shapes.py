"""Check every SageMaker / SageMaker Runtime response against botocore's output shape.

Installed by tests/conftest.py as a botocore handler on `after-call` for every session created in
the test process, so byoc's own code and the sandbox know nothing about it. A response with a
missing required member, a member botocore does not know, a wrong type, a value outside an enum or
an unreadable timestamp is recorded; the test that caused it fails at teardown.
"""

from __future__ import annotations

import datetime
import json
import threading

SERVICES = ("sagemaker", "sagemaker-runtime")
_lock = threading.Lock()
deviations: list = []

_TYPES = {"string": str, "list": list, "map": dict, "structure": dict, "boolean": bool, "blob": str}


def check(shape, value, path: str) -> list:
    """Every deviation of a JSON value from a botocore output shape."""
    out: list = []
    _check(shape, value, path, out)
    return out


def _check(shape, value, path, out) -> None:
    t = shape.type_name
    if t in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            out.append(f"{path}: {value!r} is not an integer")
        return
    if t in ("float", "double"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            out.append(f"{path}: {value!r} is not a number")
        return
    if t == "timestamp":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            out.append(f"{path}: {value!r} is not a timestamp")
        elif isinstance(value, str):
            try:
                datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                out.append(f"{path}: {value!r} is not an ISO 8601 timestamp")
        return
    expected = _TYPES.get(t)
    if expected is not None and not isinstance(value, expected):
        out.append(f"{path}: {type(value).__name__} where botocore expects a {t}")
        return
    if t == "string" and shape.enum and value not in shape.enum:
        out.append(f"{path}: {value!r} is not one of {shape.enum}")
    elif t == "structure":
        for name in shape.required_members:
            if value.get(name) is None:
                out.append(f"{path}.{name}: required member missing")
        for name, item in value.items():
            member = shape.members.get(name)
            if member is None:
                out.append(f"{path}.{name}: unknown member")
            elif item is not None:
                _check(member, item, f"{path}.{name}", out)
    elif t == "list":
        for i, item in enumerate(value):
            _check(shape.member, item, f"{path}[{i}]", out)
    elif t == "map":
        for key, item in value.items():
            _check(shape.value, item, f"{path}[{key!r}]", out)


def response_deviations(http_response, parsed: dict, model) -> list:
    """Deviations of one successful response: its JSON body member by member, and the members
    botocore read from headers or a payload (InvokeEndpoint's Body) from the parsed result."""
    shape = model.output_shape
    if shape is None or http_response.status_code >= 300:
        return []
    where = f"{model.service_model.service_name}.{model.name}"
    payload = shape.serialization.get("payload")
    body_members = {n: m for n, m in shape.members.items()
                    if not m.serialization.get("location") and n != payload}
    out: list = []
    if payload is None:
        try:
            body = json.loads(http_response.content or b"{}")
        except ValueError:
            return [f"{where}: the body is not JSON"]
        if not isinstance(body, dict):
            return [f"{where}: the body is not a JSON object"]
        for name in shape.required_members:
            if name in body_members and body.get(name) is None:
                out.append(f"{where}.{name}: required member missing")
        for name, item in body.items():
            if name not in body_members:
                out.append(f"{where}.{name}: unknown member")
            elif item is not None:
                _check(body_members[name], item, f"{where}.{name}", out)
    for name, member in shape.members.items():
        if name in body_members:
            continue
        if name in shape.required_members and parsed.get(name) is None:
            out.append(f"{where}.{name}: required member missing")
        value = parsed.get(name)
        if member.type_name == "string" and value is not None and member.enum and value not in member.enum:
            out.append(f"{where}.{name}: {value!r} is not one of {member.enum}")
    return out


def _after_call(http_response=None, parsed=None, model=None, **_):
    if http_response is None or model is None:
        return
    found = response_deviations(http_response, parsed or {}, model)
    if found:
        with _lock:
            deviations.extend(found)


def install() -> None:
    """Register the check for every botocore session created from now on."""
    import botocore.handlers

    for service in SERVICES:
        entry = (f"after-call.{service}", _after_call)
        if entry not in botocore.handlers.BUILTIN_HANDLERS:
            botocore.handlers.BUILTIN_HANDLERS.append(entry)


def take() -> list:
    """The deviations recorded since the last call, and forget them."""
    with _lock:
        found = list(deviations)
        deviations.clear()
    return found
