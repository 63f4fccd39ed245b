"""The log lines that matter most when no signature explains a failure.

Tracebacks (from 'Traceback (most recent call last):' to the exception line), error lines,
and the first and last lines of each instance's stream, in time order, within a line budget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional

from byoc.diagnosis.logtext import LogText, needles

TRACEBACK_START = "Traceback (most recent call last)"
_TRACEBACK_RE = re.compile(re.escape(TRACEBACK_START))
_ERROR_RE = re.compile(
    r"\b(?:[A-Z]\w*(?:Error|Exception)|ERROR|CRITICAL|FATAL|[Ff]atal|panic|Killed|[Ff]ailed|FAILED|[Ee]rror:)"
)
_TRACEBACK_NEEDLES = needles(_TRACEBACK_RE.pattern)
_ERROR_NEEDLES = needles(_ERROR_RE.pattern)
_CONTINUATION_RE = re.compile(r"^(?:\s|During handling|The above exception|Traceback)")
_DIGITS_RE = re.compile(r"\d+")

PRIORITY = {"traceback": 0, "error": 1, "last": 2, "first": 3}


@dataclass
class KeyLine:
    timestamp: int
    stream: str
    message: str
    why: str  # traceback | error | first | last
    repeats: int = 1

    def to_dict(self) -> dict:
        return {"timestamp": self.timestamp, "stream": self.stream, "message": self.message,
                "why": self.why, "repeats": self.repeats}


def key_lines(events: Iterable[dict], head: int = 5, tail: int = 10, limit: int = 80,
              log: Optional[LogText] = None) -> List[KeyLine]:
    """Up to `limit` lines that explain a failure best, in time order."""
    log = log or LogText(list(events))
    if not len(log):
        return []
    by_stream: Dict[str, List[int]] = {}
    for i, e in enumerate(log.events):
        by_stream.setdefault(e.get("logStreamName", ""), []).append(i)
    picked: Dict[int, str] = {}

    def pick(index: int, why: str) -> None:
        if index not in picked or PRIORITY[why] < PRIORITY[picked[index]]:
            picked[index] = why

    position = {i: n for indices in by_stream.values() for n, i in enumerate(indices)}
    for start, _ in log.find(_TRACEBACK_RE, _TRACEBACK_NEEDLES):
        stream = by_stream[log.events[start].get("logStreamName", "")]
        for n in range(position[start], min(len(stream), position[start] + 40)):
            index = stream[n]
            pick(index, "traceback")
            if n > position[start] and not _CONTINUATION_RE.match(log.messages[index]):
                break  # the exception line ends the traceback
    seen_errors: Dict[str, int] = {}
    repeats: Dict[int, int] = {}
    for index, _ in log.find(_ERROR_RE, _ERROR_NEEDLES):
        shape = _DIGITS_RE.sub("#", log.messages[index])
        if shape in seen_errors:
            repeats[seen_errors[shape]] = repeats.get(seen_errors[shape], 1) + 1
            continue
        seen_errors[shape] = index
        pick(index, "error")
    for indices in by_stream.values():
        for index in indices[:head]:
            pick(index, "first")
        for index in indices[-tail:]:
            pick(index, "last")
    chosen = sorted(picked, key=lambda i: (PRIORITY[picked[i]], -i))[:limit]
    return [
        KeyLine(int(log.events[i].get("timestamp") or 0), log.events[i].get("logStreamName", ""),
                log.messages[i], picked[i], repeats.get(i, 1))
        for i in sorted(chosen)
    ]
