"""The typed steps of a deployment plan: what an update, rollback, restore or recreate does, in order.

The planner (deploy/plan.py) turns the endpoint's state into an ordered tuple of these frozen
dataclasses, the deletions of the sweep included; deploy/executor.py runs them (`Executor`) or
renders them (`DisplayExecutor`), so a dry run shows the very plan an apply runs. The model is
aws/chalice's chalice/deploy (models.py instructions, executor.py Executor/DisplayOnlyExecutor).
A step names its resources, never their full requests: a model's environment may hold secrets.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Optional

MODES = ("create", "reuse", "resume", "unchanged")
# create:    a new revision: new models and endpoint config, then UpdateEndpoint
# reuse:     the revision's config exists already (rollback, restore, a rerun): UpdateEndpoint only
# resume:    SageMaker is already deploying this revision (a rerun after an interruption): watch it
# unchanged: the endpoint runs it already; at most an interrupted run's outcome and sweep are left


@dataclass(frozen=True)
class Step:
    kind: ClassVar[str] = ""

    def describe(self) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict:
        out = {"step": self.kind, "text": self.describe()}
        out.update({f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.metadata.get("shown", True)})
        return out


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _hidden() -> Any:
    return field(default=None, compare=False, metadata={"shown": False})


@dataclass(frozen=True)
class LockEndpoint(Step):
    """Take the endpoint's byoc:lock tag, writing this attempt's "in-progress" tag (byoc:r<N>, or a
    rollback's own byoc:r<N>:rollback<K>; and, on the first update, byoc:original-config) in the same
    AddTags call."""

    kind: ClassVar[str] = "lock-endpoint"
    endpoint: str
    revision: Optional[int]  # None: only the lock (watching a deployment an earlier run started)
    original_config: Optional[str] = None
    tag: str = ""  # the attempt's tag (revisions.attempt_key)

    def describe(self) -> str:
        what = f"lock {self.endpoint} (tag byoc:lock)"
        if self.revision is not None:
            what += f", tag {self.tag} in-progress"
        if self.original_config:
            what += f", byoc:original-config={self.original_config}"
        return what


@dataclass(frozen=True)
class TagRevisionZero(Step):
    """Tag the endpoint's original config and models as its revision 0 (first update only)."""

    kind: ClassVar[str] = "tag-revision-0"
    config: str
    models: tuple
    tags: tuple = _hidden()  # ({"Key", "Value"}, ...)
    arns: tuple = _hidden()  # the config's ARN, then the models'

    def describe(self) -> str:
        return f"tag the original config {self.config} and model(s) {', '.join(self.models)} as revision 0"


@dataclass(frozen=True)
class CreateModel(Step):
    kind: ClassVar[str] = "create-model"
    name: str
    image: str
    request: dict = field(default_factory=dict, compare=False, hash=False, repr=False, metadata={"shown": False})
    copy_tags_of: str = field(default="", compare=False, metadata={"shown": False})  # the resource copied
    # Its tags as the Tagging API listed them when planned ((key, value), ...); None: read when created.
    their_tags: Optional[tuple] = field(default=None, compare=False, metadata={"shown": False})

    def describe(self) -> str:
        return f"create model {self.name} (image {self.image})"


@dataclass(frozen=True)
class CreateEndpointConfig(Step):
    kind: ClassVar[str] = "create-endpoint-config"
    name: str
    models: tuple
    request: dict = field(default_factory=dict, compare=False, hash=False, repr=False, metadata={"shown": False})
    copy_tags_of: str = field(default="", compare=False, metadata={"shown": False})  # the resource copied
    # Its tags as the Tagging API listed them when planned ((key, value), ...); None: read when created.
    their_tags: Optional[tuple] = field(default=None, compare=False, metadata={"shown": False})

    def describe(self) -> str:
        return f"create endpoint config {self.name} (model(s) {', '.join(self.models)})"


@dataclass(frozen=True)
class PauseAutoscaling(Step):
    """Record the scalable targets of variants whose instance type changes in the endpoint's
    byoc:autoscaling tags, then deregister them (the instance type of a registered variant cannot
    change: "Update or delete endpoints that use auto scaling", SageMaker Developer Guide)."""

    kind: ClassVar[str] = "pause-autoscaling"
    endpoint: str
    variants: tuple

    def describe(self) -> str:
        return (f"record and deregister the autoscaling of {', '.join(self.variants)} "
                "(autoscaling is paused during the update)")


@dataclass(frozen=True)
class ResumeAutoscaling(Step):
    """Register the paused targets (or those an interrupted run left deregistered) and their policies
    again exactly, and drop the record from the endpoint's tags."""

    kind: ClassVar[str] = "resume-autoscaling"
    endpoint: str
    variants: tuple
    interrupted_revision: Optional[int] = None  # the revision of a record an interrupted run left

    def describe(self) -> str:
        left = " (left deregistered by an interrupted run)" if self.interrupted_revision is not None else ""
        return f"register the autoscaling of {', '.join(self.variants)} again exactly{left}"


@dataclass(frozen=True)
class UpdateEndpoint(Step):
    kind: ClassVar[str] = "update-endpoint"
    endpoint: str
    config: str
    deployment_config: Optional[dict] = field(default=None, hash=False)
    start_instances: bool = False  # start the new fleet on the config's InitialInstanceCount (ProveImage follows)

    def describe(self) -> str:
        started = "; the new fleet starts on the config's initial instance count" if self.start_instances else ""
        return f"UpdateEndpoint {self.endpoint} -> {self.config} (blue/green; the endpoint keeps serving{started})"


@dataclass(frozen=True)
class WatchDeployment(Step):
    """Wait until SageMaker settles, following the new instances' logs. On failure SageMaker has
    gone back to the previous config by itself and the plan's `on_failure` steps run instead."""

    kind: ClassVar[str] = "watch"
    endpoint: str
    config: str

    def describe(self) -> str:
        return f"watch {self.endpoint} until SageMaker settles on {self.config} (it rolls back by itself on failure)"


@dataclass(frozen=True)
class ProveImage(Step):
    """The endpoint had no instance to health-check (async, scaled to 0): send one request to the new
    image; if it fails, UpdateEndpoint back to `previous_config` and the deployment counts as failed."""

    kind: ClassVar[str] = "prove-image"
    endpoint: str
    image: str
    previous_config: str

    def describe(self) -> str:
        return f"send one request to the new image; if it fails, roll {self.endpoint} back to {self.previous_config}"


@dataclass(frozen=True)
class RecreateEndpoint(Step):
    """Save and deregister the autoscaling, delete the endpoint, create it on `config`, wait, register
    the autoscaling again; if `config` fails and the endpoint was serving, recreate it on
    `previous_config`. The endpoint does not serve meanwhile (downtime is measured)."""

    kind: ClassVar[str] = "recreate-endpoint"
    endpoint: str
    config: str
    previous_config: str
    was_serving: bool
    tags: tuple = _hidden()  # the endpoint's own tags, given to CreateEndpoint

    def describe(self) -> str:
        back = f"; on failure recreate it on {self.previous_config}" if self.was_serving else ""
        return (f"recreate {self.endpoint} on {self.config}: deregister autoscaling, delete, create, wait, register "
                f"autoscaling again (downtime){back}")


@dataclass(frozen=True)
class RecordOutcome(Step):
    """Tag the endpoint with the attempt's outcome (its tag: byoc:r<N>, or a rollback's own
    byoc:r<N>:rollback<K>), keeping the newest outcome tags."""

    kind: ClassVar[str] = "record-outcome"
    endpoint: str
    revision: int
    outcome: str  # deployed | failed | failing
    tag: str  # the attempt's tag (revisions.attempt_key)
    value: Optional[str] = None  # the exact tag value; None: "<outcome> <now> <image> <caller>" when run
    why: str = ""  # why, when it is an earlier attempt's outcome

    def describe(self) -> str:
        return f"record revision {self.revision} as {self.outcome} (tag {self.tag}){self.why}"


@dataclass(frozen=True)
class DeleteRevision(Step):
    """Delete a revision's endpoint config and models (or only models, when `config` is None). At run
    time anything an endpoint of the region uses is kept, and what is already gone is skipped."""

    kind: ClassVar[str] = "delete-revision"
    revision: Optional[int]
    config: Optional[str]
    models: tuple
    reason: str
    created: Optional[datetime.datetime] = _hidden()  # when the oldest of them was made (the sweep's check of other endpoints)

    @property
    def names(self) -> list:
        return revision_names(self.config, self.models)

    def describe(self) -> str:
        return deletion_text(self.revision, self.config, self.models, self.reason)


def revision_names(config: Optional[str], models: Any) -> list:
    """The names a deletion of a revision's config (if any) and models deletes, config first."""
    return ([config] if config else []) + list(models)


def deletion_text(revision: Optional[int], config: Optional[str], models: Any, reason: str,
                  endpoint: Optional[str] = None) -> str:
    """How a deletion of a revision reads, in a plan and in `byoc prune`."""
    what = [f"config {config}"] if config else []
    if models:
        what.append(f"model(s) {', '.join(models)}")
    of = f" of {endpoint}" if endpoint else ""
    return f"delete revision {revision}{of}: {' and '.join(what)} ({reason})"
