"""`byoc prune`: delete the models and endpoint configs byoc made that nothing needs any more.

When the solution deletes an endpoint it deletes only what it knows by name (docs/solution.md), so
every other revision byoc created stays. Prune plans their deletion (shown by --dry-run), then an
executor applies the plan:
- revisions (tag byoc:revision >= 1) of an endpoint that no longer exists;
- revisions of a live endpoint beyond its newest `keep` (as `byoc update --keep` keeps them);
- never revision 0 (the endpoint's original, made by the solution), and never a config or model
  that any endpoint of the region uses or is deploying (checked again right before deleting).

Cost: one Resource Groups Tagging API query (GetResources with TagFilters byoc:endpoint and
ResourceTypeFilters sagemaker:model, sagemaker:endpoint-config) returns every resource byoc made
with its tags (endpoint, revision, image, creation time), instead of listing and describing every
model and config of the region; one ListModels or ListEndpointConfigs per name stem of the
candidates (one or a few per endpoint), because the tag index still lists resources deleted minutes to hours ago; plus
ListEndpoints and what the endpoints modified since the oldest candidate use (the update sweeper's
rule, deploy/sweep.py).
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

from byoc.aws.client import Aws
from byoc.deploy import steps, sweep
from byoc.endpoint import revisions

RESOURCE_TYPES = ("sagemaker:model", "sagemaker:endpoint-config")
GONE, BEYOND_KEEP = "endpoint deleted", "beyond --keep"


@dataclass(frozen=True)
class Tagged:
    """One model or endpoint config byoc tagged, as the tagging query returns it."""

    kind: str  # model | endpoint-config
    name: str
    endpoint: str
    revision: int
    image: Optional[str]
    created_at: Optional[str]


@dataclass
class Deletion:
    """One revision of an endpoint to delete: its config and/or models."""

    endpoint: str
    revision: int
    config: Optional[str]
    models: list
    image: Optional[str]
    created_at: Optional[str]
    reason: str

    @property
    def names(self) -> list:
        return steps.revision_names(self.config, self.models)

    def describe(self) -> str:
        return steps.deletion_text(self.revision, self.config, self.models, self.reason, self.endpoint)

    def to_dict(self) -> dict:
        return {**asdict(self), "age": age(self.created_at)}


@dataclass
class PrunePlan:
    region: str
    keep: int
    deletions: list = field(default_factory=list)
    in_use: list = field(default_factory=list)  # byoc's resources an endpoint uses: never deleted
    live_endpoints: int = 0
    tagged: int = 0

    def to_dict(self) -> dict:
        return {"region": self.region, "keep": self.keep, "live_endpoints": self.live_endpoints,
                "tagged": self.tagged, "in_use": self.in_use, "deletions": [d.to_dict() for d in self.deletions]}


def tagged_resources(aws: Aws) -> list:
    """Every model and endpoint config byoc tagged as a revision of some endpoint: one tag query."""
    out = []
    tagging = aws.client("resourcegroupstaggingapi")
    for page in tagging.paginate("get_resources", TagFilters=[{"Key": revisions.T_ENDPOINT}],
                                 ResourceTypeFilters=list(RESOURCE_TYPES)):
        for item in page.get("ResourceTagMappingList", []):
            arn = item["ResourceARN"]
            tags = revisions.tags_dict(item.get("Tags"))
            kind, _, lowered = arn.split(":", 5)[-1].partition("/")
            try:
                number = int(tags.get(revisions.T_REVISION, ""))
            except ValueError:
                continue
            # ARNs carry names in lower case; byoc's tags carry the image, and its names are lower-case
            # derivations of the endpoint's, so the ARN's name is the resource's name.
            out.append(Tagged(kind, lowered, tags[revisions.T_ENDPOINT], number, tags.get(revisions.T_IMAGE),
                              tags.get(revisions.T_AT)))
    return out


def still_there(aws: Aws, candidates: list) -> set:
    """The candidates' names (lower case) that exist: the tag index lists a resource deleted minutes to
    hours ago (control.py in the sandbox cites the reports), so the candidates are listed by name
    instead: one ListModels or ListEndpointConfigs per name stem (NameContains `<stem>-r`), one or a
    few per endpoint."""
    found: set = set()
    for kind, stem in sorted({(t.kind, revisions.base(t.name)) for t in candidates}):
        operation, key = ("list_models", "Models") if kind == "model" else ("list_endpoint_configs", "EndpointConfigs")
        name_key = "ModelName" if kind == "model" else "EndpointConfigName"
        for page in aws.sagemaker.paginate(operation, NameContains=f"{stem}-r", MaxResults=100):
            found |= {item[name_key].lower() for item in page.get(key, [])}
    return found


def live_endpoints(aws: Aws) -> set:
    return {e["EndpointName"] for page in aws.sagemaker.paginate("list_endpoints", MaxResults=100)
            for e in page.get("Endpoints", [])}


def in_use(aws: Aws, candidates: list) -> tuple:
    """(configs, models) in lower case that some endpoint uses or is deploying. An endpoint can only use
    a config that existed when it was created or last updated (see deploy/sweep.py), so the endpoints
    modified since the oldest candidate was created (its byoc:created-at tag) are enough; when that
    cannot be told cheaply, every endpoint of the region is read."""
    times = [_when(t.created_at) for t in candidates]
    known = [t for t in times if t is not None]
    used = sweep.used_elsewhere(aws, "", min(known)) if known and len(known) == len(times) else None
    if used is None:
        used = _every_endpoints_use(aws)
    return {n.lower() for n in used[0]}, {n.lower() for n in used[1]}  # byoc's names here come from ARNs


def _every_endpoints_use(aws: Aws) -> tuple:
    return sweep.used_by(aws, list(live_endpoints(aws)))


def _when(created_at: Optional[str]) -> Optional[datetime.datetime]:
    if not created_at:
        return None
    try:
        then = datetime.datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    return then if then.tzinfo else then.replace(tzinfo=datetime.timezone.utc)


def plan_prune(aws: Aws, keep: int = 5) -> PrunePlan:
    """What prune deletes; changes nothing."""
    tagged = tagged_resources(aws)
    live = {e.lower() for e in live_endpoints(aws)}
    plan = PrunePlan(aws.region, keep, live_endpoints=len(live), tagged=len(tagged))
    by_endpoint: dict = {}
    for t in tagged:
        by_endpoint.setdefault(t.endpoint, []).append(t)
    doomed = []  # (endpoint, revision, its resources, reason)
    for endpoint, items in sorted(by_endpoint.items()):
        numbers = sorted({t.revision for t in items if t.revision > 0}, reverse=True)
        if endpoint.lower() in live:
            kept = set(numbers[:max(keep, 1)])
            doomed += [(endpoint, n, [t for t in items if t.revision == n], f"{BEYOND_KEEP} {keep}")
                       for n in sorted(numbers) if n not in kept]
        else:
            doomed += [(endpoint, n, [t for t in items if t.revision == n], GONE) for n in sorted(numbers)]
    present = still_there(aws, [t for _, _, rev, _ in doomed for t in rev])
    doomed = [(e, n, there, why) for e, n, rev, why in doomed if (there := [t for t in rev if t.name in present])]
    if not doomed:
        return plan
    used_configs, used_models = in_use(aws, [t for _, _, rev, _ in doomed for t in rev])
    for endpoint, n, rev, reason in doomed:
        plan.in_use += [t.name for t in rev if t.name in (used_configs if t.kind == "endpoint-config" else used_models)]
        config = next((t.name for t in rev if t.kind == "endpoint-config" and t.name not in used_configs), None)
        models = sorted(t.name for t in rev if t.kind == "model" and t.name not in used_models)
        if config or models:
            plan.deletions.append(Deletion(endpoint, n, config, models, rev[0].image, rev[0].created_at, reason))
    return plan


@dataclass
class PruneResult:
    region: str
    deleted: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # in use by then, or already gone

    def to_dict(self) -> dict:
        return asdict(self)


def apply_prune(aws: Aws, plan: PrunePlan, on_step: Optional[Callable[[Deletion], None]] = None) -> PruneResult:
    """Run the plan's deletions; what an endpoint uses by now is kept (the region is read again)."""
    result = PruneResult(plan.region)
    if not plan.deletions:
        return result
    used = in_use(aws, [Tagged("", "", "", 0, None, d.created_at) for d in plan.deletions])
    for d in plan.deletions:
        if on_step:
            on_step(d)
        deleted = sweep.delete_revision(aws, d.config or "", d.models, used)
        result.deleted += deleted
        result.skipped += [n for n in d.names if n not in deleted]
    return result


def age(created_at: Optional[str], now: Optional[datetime.datetime] = None) -> Optional[str]:
    """'3d', '5h', '12m' since an ISO time, or None."""
    then = _when(created_at)
    if then is None:
        return None
    seconds = max(0, int(((now or datetime.datetime.now(datetime.timezone.utc)) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
