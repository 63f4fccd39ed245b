"""The early verdict: whether the new instances' logs already prove the deployment cannot succeed.

SageMaker keeps starting a container that exits until the variant's startup window closes (up to
an hour), then rolls back. The logs know sooner: a critical cause of the diagnosis catalogue seen
on two failing container starts, one of them a restart (the container exited and failed again the
same way), or on one start for a cause that never heals at a restart (`"recovers": false`, such as
exec format error). A start that answered /ping with 200 never counts: a container that logs one
traceback and then serves gets no verdict (a false verdict is worse than a slow one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Mapping, Optional

from byoc.diagnosis import Catalogue, Finding, load, match
from byoc.diagnosis.starts import Start, split


@dataclass
class Verdict:
    finding: Finding  # matched over the failing starts, with their evidence
    starts: int  # failing container starts that show it
    seen_ms: int  # timestamp of the newest of those starts' lines


def _causes(start: Start, cat: Catalogue, context: Mapping[str, object]) -> List[Finding]:
    return [f for f in match(start.events, context=context, catalogue=cat) if f.severity == "critical" and not f.symptom]


def decide(events: Iterable[dict], context: Optional[Mapping[str, object]] = None,
           catalogue: Optional[Catalogue] = None) -> Optional[Verdict]:
    """The verdict on these log events of the new instances, or None while they may still succeed."""
    cat = catalogue or load()
    context = context or {}
    recovers = {s.id: s.recovers for s in cat.signatures}
    failing: dict = {}  # signature id -> [starts]
    for start in split(events):
        if start.healthy_ms(cat) is not None:
            continue
        for f in _causes(start, cat, context):
            failing.setdefault(f.id, []).append(start)
    decided = []
    for sig_id, starts in failing.items():
        restarted = any(s.number >= 2 for s in starts)
        if not recovers.get(sig_id, True) or (len(starts) >= 2 and restarted):
            decided.append((sig_id, starts))
    if not decided:
        return None
    order = {s.id: i for i, s in enumerate(cat.signatures)}
    sig_id, starts = min(decided, key=lambda d: (-len(d[1]), order.get(d[0], 0)))
    lines = [e for s in starts for e in s.events]
    finding = next(f for f in match(lines, context=context, catalogue=cat) if f.id == sig_id)
    return Verdict(finding=finding, starts=len(starts), seen_ms=max(int(e.get("timestamp") or 0) for e in lines))
