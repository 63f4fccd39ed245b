"""Update many endpoints safely: plan all first, canaries, bounded concurrency, stop on failure.

Every endpoint's update is planned (with its pre-flight checks) before any is changed; one
refusal refuses the whole fleet. Then K canary endpoints are updated and verified; only if
they pass do the others follow, at most N at a time. The first failure stops new updates
(unless --continue-on-failure); endpoints that failed are back on their previous image
(SageMaker's blue/green rollback), endpoints not yet started stay untouched.
"""

from __future__ import annotations

import fnmatch
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from byoc.aws.client import Aws
from byoc.deploy import apply, capacity, executor
from byoc.deploy.plan import UpdatePlan, plan_update, read_source_tags
from byoc.errors import EXIT_AUTH, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, BadInput, ByocError

PLAN_WORKERS = 8  # plans read a handful of resources each; SageMaker's Describe* rate limits are per account
PHASES = ("planned", "refused", "unchanged", "waiting", "updating", "verifying", "updated", "failed", "timeout",
          "interrupted", "skipped")


@dataclass
class FleetItem:
    endpoint: str
    phase: str = "planned"
    canary: bool = False
    plan: Optional[UpdatePlan] = field(default=None, repr=False)
    result: Optional[dict] = None
    error: Optional[str] = None
    detail: str = ""

    def to_dict(self) -> dict:
        return {"endpoint": self.endpoint, "phase": self.phase, "canary": self.canary, "error": self.error,
                "detail": self.detail, "result": self.result}


@dataclass
class FleetRun:
    image: str
    items: list
    refused: bool = False
    interrupted: bool = False  # Ctrl-C: nothing new was started after it

    @property
    def exit_code(self) -> int:
        if self.refused:
            return EXIT_BAD_INPUT
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_FAILED if any(i.phase in ("failed", "failing", "timeout") for i in self.items) else EXIT_OK

    def summary(self) -> dict:
        counts: dict = {}
        for i in self.items:
            counts[i.phase] = counts.get(i.phase, 0) + 1
        return counts

    def to_dict(self) -> dict:
        return {"image": self.image, "exit_code": self.exit_code, "interrupted": self.interrupted,
                "summary": self.summary(),
                "endpoints": [i.to_dict() for i in self.items]}


def select(aws: Aws, match: Optional[str] = None, endpoints: Optional[str] = None, exclude: Optional[str] = None) -> list:
    """Endpoint names by --match GLOB or --endpoints A,B (exactly one), minus --exclude GLOB."""
    if bool(match) == bool(endpoints):
        raise BadInput("Select endpoints with exactly one of --match GLOB or --endpoints A,B,...",
                       "Example: byoc fleet update IMAGE --match 'infer-endpoint-*'")
    existing = [e["EndpointName"] for page in aws.sagemaker.paginate("list_endpoints", MaxResults=100)
                for e in page.get("Endpoints", [])]
    if match:
        names = sorted(n for n in existing if fnmatch.fnmatchcase(n, match))
    else:
        names = [n.strip() for n in (endpoints or "").split(",") if n.strip()]
        missing = [n for n in names if n not in existing]
        if missing:
            raise BadInput(f"Endpoint(s) not found in {aws.region}: {', '.join(missing)}.",
                           "Check the names with `byoc endpoints`.")
    if exclude:
        names = [n for n in names if not fnmatch.fnmatchcase(n, exclude)]
    if not names:
        raise BadInput("No endpoint matches the selection.", "Check --match/--exclude against `byoc endpoints`.")
    return names


def plan(aws: Aws, image: str, names: list, *, concurrency: int, strategy: str = "blue-green",
         deployment_config: Optional[dict] = None, force: bool = False, canary: int = 0,
         changes: Any = None, startup_timeout: Optional[int] = None, keep: int = 5) -> FleetRun:
    """Plan every endpoint in parallel; nothing changes. What every plan reads once (caller identity,
    quotas, the image's digest and architecture) is read once for the whole fleet (Aws.memo), and the
    tags of what the new revisions copy in one GetResources per 100 resources."""
    items = [FleetItem(endpoint=n, canary=i < canary) for i, n in enumerate(names)]

    def one(item: FleetItem) -> None:
        try:
            item.plan = plan_update(aws, item.endpoint, image, strategy=strategy, force=force,
                                    deployment_config=deployment_config, changes=changes,
                                    startup_timeout=startup_timeout, review_startup=False, keep=keep,
                                    source_tags=False)
            item.phase = "unchanged" if item.plan.mode == "unchanged" else "planned"
        except ByocError as exc:
            if exc.exit_code == EXIT_AUTH:
                raise
            item.phase, item.error = "refused", str(exc)

    with ThreadPoolExecutor(max_workers=max(1, min(PLAN_WORKERS, len(items)))) as pool:
        for f in as_completed([pool.submit(one, i) for i in items]):
            f.result()
    read_source_tags(aws, [i.plan for i in items if i.phase == "planned"])  # one GetResources per 100
    run = FleetRun(image=image, items=items)
    run.refused = any(i.phase == "refused" for i in items)
    if not run.refused and strategy == "blue-green":
        _check_concurrent_capacity(aws, run, concurrency)
    return run


def _check_concurrent_capacity(aws: Aws, run: FleetRun, concurrency: int) -> None:
    """Updates running together each need their second fleet at the same time: refuse a concurrency
    whose peak cannot fit the quota beside what the selected endpoints hold themselves (known from
    their plans). Whether it also fits beside the account's other endpoints, SageMaker says at each
    UpdateEndpoint (capacity.py)."""
    per_type: dict = {}
    held: dict = {}
    for item in run.items:
        for v in (item.plan.view.variants if item.plan is not None and item.plan.view is not None else []):
            if v.instance_type and not v.serverless:
                held[v.instance_type] = held.get(v.instance_type, 0) + max(v.current_instances or 0,
                                                                           v.desired_instances or 0)
        if item.phase == "planned":
            for itype, n in item.plan.extra_capacity.items():
                per_type.setdefault(itype, []).append(n)
    limits = capacity.quotas_of(aws, sorted(per_type))  # the plans' reads, as they read them (Aws.memo)
    for itype, extras in per_type.items():
        if itype not in limits:
            continue
        limit, code = limits[itype]
        used = held.get(itype, 0)
        ranked = sorted(extras, reverse=True)
        peak = sum(ranked[:concurrency])
        if used + peak > limit:
            fits = 0
            while fits < len(ranked) and used + sum(ranked[:fits + 1]) <= limit:
                fits += 1
            run.refused = True
            for item in run.items:
                if itype in getattr(item.plan, "extra_capacity", {}):
                    item.phase = "refused"
                    item.error = (f"{concurrency} concurrent blue/green updates need {peak} more {itype}; quota "
                                  f"{limit}, {used} held by these endpoints. Use --concurrency {max(fits, 1)} or "
                                  f"--rolling, or raise quota {code}.")
            return


def run(aws: Aws, fleet: FleetRun, *, concurrency: int, continue_on_failure: bool = False, timeout: float = 3600.0,
        keep: int = 5, verify: Optional[Callable[[str, str], tuple]] = None,
        on_change: Optional[Callable[[FleetItem], None]] = None, fail_fast: bool = False) -> FleetRun:
    """Apply the planned updates: canaries first (then verified), the rest at most `concurrency` at a time.
    The first early verdict (deploy/verdict.py) starts no more endpoints (unless `continue_on_failure`
    and it is not a canary); with `fail_fast` that endpoint ends `failing` at once."""
    if fleet.refused:
        return fleet
    stop = threading.Event()

    def set_phase(item: FleetItem, phase: str, detail: str = "") -> None:
        if item.phase == "interrupted":  # final: the thread still watching it after Ctrl-C must not undo it
            return
        item.phase, item.detail = phase, detail
        if on_change:
            on_change(item)

    def why_stopped() -> str:
        return "not started: interrupted" if fleet.interrupted else "stopped after a failure"

    def one(item: FleetItem) -> None:
        if stop.is_set():
            return set_phase(item, "skipped", why_stopped())
        set_phase(item, "updating")
        planned = item.plan
        assert planned is not None  # every item reaching apply was planned

        def events(kind: str, **d: Any) -> None:
            if kind in ("phase", "countdown", "verdict"):
                set_phase(item, "updating", d["text"])
            if kind == "verdict" and (item.canary or not continue_on_failure):
                stop.set()

        try:
            result = apply.apply(aws, planned, wait=True, timeout=timeout, keep=keep, events=events,
                                 follow_logs=False, fail_fast=fail_fast)
        except ByocError as exc:
            item.error = str(exc)
            set_phase(item, "failed", "refused at apply time")
            if not continue_on_failure:
                stop.set()
            return
        item.result = result.to_dict()
        if result.result in ("updated", "unchanged"):
            if item.canary and verify:
                set_phase(item, "verifying")
                ok, why = verify(item.endpoint, planned.target)
                if not ok:
                    item.error = why
                    item.result["diagnosis"] = executor.diagnose_failure(aws, item.endpoint, None)
                    set_phase(item, "failed", "canary verification failed")
                    stop.set()
                    return
            set_phase(item, "updated", f"{result.elapsed_seconds}s")
        else:
            item.error = result.failure_reason or result.result
            set_phase(item, result.result if result.result in ("timeout", "failing") else "failed", item.error or "")
            if not continue_on_failure or item.canary:
                stop.set()

    todo = [i for i in fleet.items if i.phase == "planned"]
    for item in todo:
        set_phase(item, "waiting")
    canaries = [i for i in todo if i.canary]
    rest = [i for i in todo if not i.canary]
    for batch in (canaries, rest):
        if not batch:
            continue
        if stop.is_set():
            for item in batch:
                set_phase(item, "skipped", why_stopped())
            continue
        pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
        futures = [pool.submit(one, i) for i in batch]
        try:
            for f in futures:
                f.result()
        except KeyboardInterrupt:
            # Ctrl-C: start nothing new; the endpoints in flight are SageMaker's to finish. byoc stops
            # watching them at once (their locks are released) and says how to resume.
            fleet.interrupted = True
            stop.set()
            for item in fleet.items:
                if item.phase in ("updating", "verifying"):
                    item.error = None
                    set_phase(item, "interrupted", f"SageMaker goes on; to resume watching: {resume(item.plan)}")
                elif item.phase in ("waiting", "planned") and item in todo:
                    set_phase(item, "skipped", why_stopped())
            pool.shutdown(wait=False, cancel_futures=True)
            return fleet
        pool.shutdown(wait=True)
    return fleet


def resume(plan: UpdatePlan) -> str:
    """The command that watches an interrupted endpoint's deployment to its end and records it."""
    if plan.mode in ("reuse", "resume"):
        return f"byoc rollback {plan.endpoint} --to {plan.revision} --yes"
    return f"byoc update {plan.endpoint} {plan.image} --yes"


def plan_rollback(aws: Aws, names: list, to: Optional[int] = None) -> FleetRun:
    """Plan a rollback of every selected endpoint to its previous (or `to`) revision."""
    from byoc.deploy.rollback import plan_rollback as plan_one

    items = []
    for name in names:
        item = FleetItem(endpoint=name)
        try:
            item.plan = plan_one(aws, name, to)
            item.phase = "unchanged" if item.plan.mode == "unchanged" else "planned"
            item.detail = f"to revision {item.plan.revision} ({item.plan.endpoint_config})"
        except ByocError as exc:
            if exc.exit_code == EXIT_AUTH:
                raise
            item.phase, item.error = "refused", str(exc)
        items.append(item)
    return FleetRun(image=f"revision {to}" if to is not None else "previous revision", items=items,
                    refused=any(i.phase == "refused" for i in items))


def verify_with(aws: Aws) -> Callable[[str, str], tuple]:
    """The verify issue's checks, as the canary gate: (passed, reasons)."""
    from byoc.observe import verify

    def check(endpoint: str, image: str) -> tuple:
        try:
            v = verify.verify(aws, endpoint, image=image)
        except ByocError as exc:
            return False, str(exc)
        return v.passed, "; ".join(v.reasons)

    return check

