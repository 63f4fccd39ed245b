"""Container starts in an endpoint's log: SageMaker starts a container that exits again on the same
instance, and each start writes to the instance's stream (`<variant>/<instance-id>`) what the
previous one wrote. A start begins with the stream's first line (digits aside) coming back."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, List, Optional

from byoc.diagnosis.catalogue import Catalogue, load

_DIGITS = re.compile(r"\d+")


@dataclass
class Start:
    """One start of a container: its stream, its number there (1 = first) and its log events."""

    stream: str
    number: int
    events: List[dict] = field(default_factory=list)

    @property
    def began_ms(self) -> int:
        return int(self.events[0].get("timestamp") or 0)

    def healthy_ms(self, catalogue: Optional[Catalogue] = None) -> Optional[int]:
        """When this start first answered GET /ping with 200, or None."""
        rules = (catalogue or load()).ping_ok
        for e in self.events:
            if any(r.regex.search(e.get("message", "")) for r in rules):
                return int(e.get("timestamp") or 0)
        return None


def _key(message: str) -> str:
    return _DIGITS.sub("#", message.strip())


def split(events: Iterable[dict]) -> List[Start]:
    """The container starts of each stream, in stream order then time order."""
    by_stream: dict = {}
    for e in events:
        by_stream.setdefault(e.get("logStreamName") or "?", []).append(e)
    starts: List[Start] = []
    for stream, evs in by_stream.items():
        evs = sorted(evs, key=lambda e: int(e.get("timestamp") or 0))  # stable: same-millisecond lines keep order
        marker = next((_key(e.get("message", "")) for e in evs if e.get("message", "").strip()), None)
        current: Optional[Start] = None
        for e in evs:
            if current is None or (current.events and marker is not None and _key(e.get("message", "")) == marker):
                current = Start(stream, (current.number + 1) if current else 1)
                starts.append(current)
            current.events.append(e)
    return starts


def healthy_start_seconds(events: Iterable[dict], catalogue: Optional[Catalogue] = None) -> Optional[float]:
    """The longest time a container start took from its first line to its first 200 on /ping
    (None when no start in `events` got there)."""
    times = []
    for s in split(events):
        ok = s.healthy_ms(catalogue)
        if ok is not None:
            times.append((ok - s.began_ms) / 1000.0)
    return max(times) if times else None
