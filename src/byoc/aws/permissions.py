"""The permissions table (data/permissions.json): which IAM actions each byoc feature needs.

The client layer reads it to name the feature behind a refused action; `byoc.iam.policy` turns
it into policy documents.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Optional


@lru_cache(maxsize=1)
def table() -> dict:
    return json.loads(resources.files("byoc").joinpath("data/permissions.json").read_text())


@lru_cache(maxsize=1)
def iam_actions() -> frozenset:
    """Every IAM action name ("prefix:Action") of the services byoc uses."""
    data = json.loads(resources.files("byoc").joinpath("data/iam_actions.json").read_text())
    return frozenset(f"{prefix}:{name}" for prefix, names in data["actions"].items() for name in names)


def grant_of(action: str) -> Optional[tuple]:
    """(statement row, grant, action as spelled in the table) for `action`, or None."""
    wanted = action.lower()
    for row in table()["statements"]:
        for grant in row["grants"]:
            for a in grant["actions"]:
                if a.lower() == wanted:
                    return row, grant, a
    return None


def feature_of(action: str) -> Optional[str]:
    """The feature that needs `action` (for the fix of a permission error)."""
    found = grant_of(action)
    return found[1]["features"][0] if found else None
