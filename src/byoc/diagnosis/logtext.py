"""Log events joined into one text, searched fast: a literal each match must contain is looked
for in the lowercased text (C-speed `str.find`), and only the events holding it meet the regex."""

from __future__ import annotations

import re
from bisect import bisect_right
from itertools import accumulate
from typing import Any, Iterator, List, Optional, Sequence, Tuple

try:  # Python 3.11+
    from re import _parser as _sre_parse  # type: ignore[attr-defined,unused-ignore]
except ImportError:  # Python 3.9, 3.10
    import sre_parse as _sre_parse  # type: ignore[no-redef,unused-ignore]

MIN_NEEDLE = 3
_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}


def needles(pattern: str) -> Tuple[str, ...]:
    """Lowercase literals one of which every match of `pattern` contains; () when none is known."""
    try:
        parsed = _sre_parse.parse(pattern)
    except re.error:
        return ()
    best = _requirement(list(parsed))
    if not best or min(len(s) for s in best) < MIN_NEEDLE:
        return ()
    return tuple(sorted({s.lower() for s in best}))


def _score(req: List[str]) -> Tuple[int, int]:
    return min(len(s) for s in req), -len(req)


def _requirement(seq: Any) -> Optional[List[str]]:
    """The most selective set of alternatives one of which any match of `seq` contains."""
    best: Optional[List[str]] = None
    run: List[str] = []

    def consider(req: Optional[List[str]]) -> None:
        nonlocal best
        if req and all(req) and (best is None or _score(req) > _score(best)):
            best = req

    for op, av in seq:
        name = getattr(op, "name", str(op))
        if name == "LITERAL":
            run.append(chr(av))
            continue
        consider(["".join(run)] if run else None)
        run = []
        if name == "SUBPATTERN":
            consider(_requirement(list(av[-1])))
        elif name in _REPEATS and av[0] >= 1:
            consider(_requirement(list(av[2])))
        elif name == "ATOMIC_GROUP":
            consider(_requirement(list(av)))
        elif name == "BRANCH":
            alternatives = [_requirement(list(b)) for b in av[1]]
            if all(alternatives):
                consider([s for alt in alternatives for s in alt or ()])
    consider(["".join(run)] if run else None)
    return best


class LogText:
    """Events in time order and their messages, with fast prefiltered search.

    Events are dicts as CloudWatch Logs returns them: timestamp (ms), message, logStreamName.
    """

    def __init__(self, events: Sequence[dict]) -> None:
        self.events: List[dict] = sorted(events, key=_timestamp)
        self.messages = [str(e.get("message", "")).rstrip("\n") for e in self.events]
        self._lower: Optional[str] = None
        self._starts: List[int] = []
        self._text: Optional[str] = None
        self._text_starts: List[int] = []

    def __len__(self) -> int:
        return len(self.events)

    @property
    def lower(self) -> str:
        if self._lower is None:
            lowered = [m.lower() for m in self.messages]
            self._lower = "\n".join(lowered)
            self._starts = [0, *accumulate(len(m) + 1 for m in lowered)][: len(lowered)]
        return self._lower

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = "\n".join(self.messages)
            self._text_starts = [0, *accumulate(len(m) + 1 for m in self.messages)][: len(self.messages)]
        return self._text

    def _candidates(self, needles_: Sequence[str]) -> List[int]:
        lower = self.lower
        found = set()
        end = len(lower)
        for needle in needles_:
            pos = lower.find(needle)
            while pos != -1:
                index = bisect_right(self._starts, pos) - 1
                found.add(index)
                nxt = self._starts[index + 1] if index + 1 < len(self._starts) else end
                pos = lower.find(needle, nxt)
        return sorted(found)

    def find(self, regex: re.Pattern, needles_: Sequence[str] = ()) -> Iterator[Tuple[int, re.Match]]:
        """(event index, first match) for every event whose message matches, in time order."""
        if needles_:
            for index in self._candidates(needles_):
                m = regex.search(self.messages[index])
                if m:
                    yield index, m
            return
        text = self.text
        last = -1
        for m in regex.finditer(text):
            index = bisect_right(self._text_starts, m.start()) - 1
            if index != last:
                last = index
                yield index, m


def _timestamp(event: dict) -> int:
    return int(event.get("timestamp") or 0)
