"""Deprecated: byoc's operations moved to packages by concern (`byoc.deploy`, `byoc.observe`,
`byoc.endpoint`, `byoc.iam`, `byoc.container`, `byoc.images`). `byoc.ops.<old name>` keeps
working for one release and warns; import from the new place instead."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Optional, Sequence

MOVED = {
    "update_plan": "byoc.deploy.plan", "update_apply": "byoc.deploy.apply", "recreate": "byoc.deploy.recreate",
    "rollback": "byoc.deploy.rollback", "guardrails": "byoc.deploy.guardrails", "capacity": "byoc.deploy.capacity",
    "watch": "byoc.deploy.watch", "sweep": "byoc.deploy.sweep", "results": "byoc.deploy.results",
    "fleet": "byoc.deploy.fleet", "inspect": "byoc.endpoint.view", "revisions": "byoc.endpoint.revisions",
    "endpoint_lock": "byoc.endpoint.lock", "endpoints": "byoc.observe.endpoints", "status": "byoc.observe.status",
    "logs": "byoc.observe.logs", "verify": "byoc.observe.verify", "diagnose": "byoc.observe.diagnose",
    "policy": "byoc.iam.policy", "doctor": "byoc.iam.doctor", "init": "byoc.container.dockerfile",
    "build": "byoc.container.build", "contract": "byoc.container.contract", "test_image": "byoc.container.run_local",
    "ecr_image": "byoc.images.ecr", "copying": "byoc.aws.shapes",
}


def _moved(name: str) -> ModuleType:
    target = MOVED[name]
    warnings.warn(f"byoc.ops.{name} is deprecated; use {target}", DeprecationWarning, stacklevel=3)
    return importlib.import_module(target)


def __getattr__(name: str) -> ModuleType:
    if name in MOVED:
        return _moved(name)
    raise AttributeError(f"module 'byoc.ops' has no attribute '{name}'")


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes `import byoc.ops.<old name>` (and `from byoc.ops.<old name> import x`) load the new module."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Optional[ModuleType] = None) -> Optional[ModuleSpec]:
        prefix, _, name = fullname.rpartition(".")
        if prefix == __name__ and name in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec: ModuleSpec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        target = _moved(module.__name__.rpartition(".")[2])
        module.__getattr__ = lambda attr: getattr(target, attr)  # type: ignore[method-assign]


sys.meta_path.append(_AliasFinder())
