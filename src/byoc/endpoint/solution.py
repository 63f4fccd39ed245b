"""Which generation of the Extension for Stable Diffusion on AWS made an endpoint, and its naming.

The solution named its resources three ways (data/solution.json, read from its release tags):
`infer-endpoint-<id>` (v1.0-v1.3), `esd-<type>-<id>` (v1.4, v1.5), `<service>-<type>-<id>` (v1.6+).
byoc keeps each endpoint's revisions inside its generation's names, so the solution's own
policies and console keep matching them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from byoc.endpoint.view import EndpointView

from byoc.endpoint.view import model_containers


@lru_cache(maxsize=1)
def generations() -> list:
    return json.loads(resources.files("byoc").joinpath("data/solution.json").read_text())["generations"]


def ids() -> list:
    return [g["id"] for g in generations()]


def generation(gid: str) -> dict:
    return next(g for g in generations() if g["id"] == gid)


@dataclass(frozen=True)
class Solution:
    """One endpoint's generation as byoc recognised it."""

    generation: str  # infer | esd | v1.6
    service: str  # sd | comfy
    version: str  # the release (from the model's environment) or the generation's range
    type: Optional[str]  # async | real-time | serverless, when the name says
    fields: tuple = ()  # (group, value) pairs of the name match; empty when only the environment matched

    @property
    def label(self) -> str:
        return " ".join(p for p in (self.service, self.version, self.type) if p)

    def to_dict(self) -> dict:
        return {"generation": self.generation, "service": self.service, "version": self.version,
                "type": self.type, "label": self.label}


def _version(gen: dict, env: dict) -> str:
    value = env.get(gen["version_env"] or "") or ""
    if not value:
        return gen["releases"]
    return value if value.startswith("v") else f"v{value}"


def recognise(endpoint: str, env: Optional[dict] = None) -> Optional[Solution]:
    """The generation of `endpoint` from its name, else from its model's environment; None for
    endpoints the solution did not make."""
    env = env or {}
    for gen in generations():
        m = re.match(gen["endpoint"], endpoint)
        if m:
            groups = m.groupdict()
            service = groups.get("service") or env.get("SERVICE_TYPE") or gen["service"] or "sd"
            return Solution(gen["id"], service, _version(gen, env), groups.get("type"), tuple(groups.items()))
    for gen in generations():
        if gen["markers"] and all(k in env for k in gen["markers"]):
            return Solution(gen["id"], env.get("SERVICE_TYPE") or gen["service"] or "sd", _version(gen, env), None)
    return None


def stems(sol: Optional[Solution]) -> Optional[tuple]:
    """(model stem, config stem) of the solution's own names for this endpoint (revision N adds
    -r<N>), or None when the name did not say (byoc then names revisions after the current ones)."""
    if sol is None or not sol.fields:
        return None
    gen, fields = generation(sol.generation), dict(sol.fields)
    return gen["model"].format(**fields), gen["config"].format(**fields)


def default_image(sol: Optional[Solution], env: dict, registry: str) -> str:
    """The image the solution deploys for this generation (`registry` is <account>.dkr.ecr.<region>.<suffix>);
    the oldest generation's when the endpoint is not the solution's or its environment says nothing."""
    entries = (generation(sol.generation)["default_image"] if sol else []) + generations()[0]["default_image"]
    entry = next(e for e in entries if not e.get("when_env") or env.get(e["when_env"]))
    return entry["image"].format_map({**env, "registry": registry})


def model_environment(models: dict) -> dict:
    """The environment of the models' primary (or first) containers, merged."""
    env: dict = {}
    for model in models.values():
        containers = model_containers(model)
        env.update((containers[0].get("Environment") if containers else None) or {})
    return env


def of_view(view: EndpointView) -> Optional[Solution]:
    """The endpoint's generation; its type from the endpoint config when the name does not say."""
    sol = recognise(view.name, model_environment(view.models))
    if sol and not sol.type:
        sol = replace(sol, type="async" if view.is_async else "real-time")
    return sol
