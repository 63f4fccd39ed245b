"""Match the catalogue against log events, a FailureReason and API facts; rank the findings."""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from byoc import instances
from byoc.diagnosis.catalogue import Catalogue, Rule, Signature, load
from byoc.diagnosis.logtext import LogText

MAX_EVIDENCE = 3
_MAX_LINE = 400
_MAX_STREAMS = 64


@dataclass
class Evidence:
    """Where a finding was seen: a log line (with time and stream) or an API field."""

    source: str  # "log" | "failure_reason" | "api:<field>"
    text: str
    timestamp: Optional[int] = None
    stream: Optional[str] = None

    def to_dict(self) -> dict:
        return {"source": self.source, "text": self.text, "timestamp": self.timestamp, "stream": self.stream}

    def __str__(self) -> str:
        if self.source == "log":
            from byoc.timespec import iso

            when = iso(self.timestamp) if self.timestamp is not None else "?"
            return f"{when} {self.stream or '?'} | {self.text}"
        if self.source == "failure_reason":
            return f"DescribeEndpoint FailureReason: {self.text}"
        return f"{self.source[4:]}: {self.text}"


@dataclass
class Finding:
    id: str
    title: str
    cause: str
    evidence: List[Evidence]
    fix: str
    severity: str
    symptom: bool = False
    count: int = 0  # how many times it was seen (evidence keeps the first few)
    first_seen: Optional[int] = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "symptom": self.symptom,
            "cause": self.cause,
            "fix": self.fix,
            "count": self.count,
            "evidence": [e.to_dict() for e in self.evidence],
        }


class _Fill(string.Formatter):
    """str.format that leaves text alone and uses defaults for unknown {names}."""

    def __init__(self, values: Mapping[str, str], defaults: Mapping[str, str]) -> None:
        super().__init__()
        self.values = values
        self.defaults = defaults

    def get_value(self, key: Union[int, str], args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        if isinstance(key, str):
            return self.values.get(key) or self.defaults.get(key) or key.replace("_", " ")
        return super().get_value(key, args, kwargs)

    def fill(self, template: str) -> str:
        try:
            return self.vformat(template, (), {})
        except (ValueError, IndexError):
            return template


@dataclass
class _Hit:
    evidence: Evidence
    groups: Dict[str, str]
    order: Tuple[int, int]  # (timestamp or -1 for API facts, position) for ranking


class _Sources:
    """What the rules look at, with the log text built once and shared."""

    def __init__(self, events: Union[LogText, Iterable[dict]], failure_reason: Optional[str],
                 context: Mapping[str, object]) -> None:
        self.log = events if isinstance(events, LogText) else LogText(list(events))
        self.failure_reason = failure_reason or ""
        self.context = {k: str(v) for k, v in context.items() if v is not None and str(v) != ""}

    def hits(self, rule: Rule, limit: int) -> Tuple[List[_Hit], int]:
        """The earliest `limit` hits of `rule`, the first hit of each other stream, and the count."""
        if rule.where == "log":
            return self._log_hits(rule, limit)
        text = self.failure_reason if rule.where == "failure_reason" else self.context.get(rule.field or "", "")
        m = rule.regex.search(text) if text else None
        if not m:
            return [], 0
        ev = Evidence(rule.where, _clip(text))
        return [_Hit(ev, _groups(m), (-1, 0))], 1

    def _log_hits(self, rule: Rule, limit: int) -> Tuple[List[_Hit], int]:
        hits: List[_Hit] = []
        streams: set = set()
        count = 0
        for index, m in self.log.find(rule.regex, rule.needles):
            count += 1
            event = self.log.events[index]
            stream = event.get("logStreamName")
            if len(hits) < limit or (stream not in streams and len(streams) < _MAX_STREAMS):
                streams.add(stream)
                ts = int(event.get("timestamp") or 0)
                ev = Evidence("log", _clip(self.log.messages[index]), ts, stream)
                hits.append(_Hit(ev, _groups(m), (ts, index)))
        return hits, count

    def vetoes(self, rules: Iterable[Rule]) -> Tuple[bool, set]:
        """(an `unless` rule holds everywhere, the log streams in which a log `unless` rule matches).
        Log evidence is judged per instance: a healthy old fleet's line does not excuse a new one."""
        streams: set = set()
        for rule in rules:
            if rule.where != "log":
                if self.hits(rule, 1)[1]:
                    return True, streams
                continue
            for index, _ in self.log.find(rule.regex, rule.needles):
                streams.add(self.log.events[index].get("logStreamName"))
        return False, streams

    def any(self, rules: Iterable[Rule]) -> bool:
        """Whether any rule matches anywhere (stops at the first match)."""
        for rule in rules:
            if rule.where == "log":
                if next(self.log.find(rule.regex, rule.needles), None):
                    return True
            elif self.hits(rule, 1)[1]:
                return True
        return False


def _groups(m: re.Match) -> Dict[str, str]:
    return {k: v for k, v in m.groupdict().items() if v}


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _MAX_LINE else text[: _MAX_LINE - 1] + "\u2026"


def _pick(hits: List[_Hit], limit: int) -> List[_Hit]:
    """The earliest hit of each stream first, then the next earliest, up to `limit`."""
    hits = sorted(hits, key=lambda h: h.order)
    chosen: List[_Hit] = []
    streams = set()
    for h in hits:
        if h.evidence.stream not in streams:
            chosen.append(h)
            streams.add(h.evidence.stream)
    for h in hits:
        if h not in chosen:
            chosen.append(h)
    return sorted(chosen[:limit], key=lambda h: h.order)


def _evaluate(sig: Signature, src: _Sources, cat: Catalogue, max_evidence: int) -> Optional[Finding]:
    everywhere, vetoed = src.vetoes(sig.unless) if sig.unless else (False, set())
    if everywhere:
        return None
    hits: List[_Hit] = []
    count = 0
    for rule in sig.match:
        rule_hits, rule_count = src.hits(rule, max_evidence if not vetoed else 10 ** 6)
        kept = [h for h in rule_hits if h.evidence.stream is None or h.evidence.stream not in vetoed]
        if vetoed and any(h.evidence.stream is None for h in rule_hits):
            return None  # an API fact or FailureReason matched: the unless line speaks for the whole endpoint
        hits.extend(kept)
        count += rule_count if not vetoed else len(kept)
    if not hits:
        return None
    chosen = _pick(hits, max_evidence)
    values = dict(src.context)
    per_variant = json.loads(values.pop("variant_instance_types", "{}"))
    variant = (chosen[0].evidence.stream or "").split("/", 1)[0]
    if variant in per_variant:  # streams are <variant>/<instance>: the facts of that instance's variant
        values["instance_type"] = per_variant[variant]
        values["variant"] = variant
        arch = instances.architecture(per_variant[variant])
        if arch:
            values["instance_arch"] = arch
    for h in reversed(chosen):  # the earliest hit's groups win
        values.update(h.groups)
    fill = _Fill(values, cat.placeholder_defaults)
    return Finding(
        id=sig.id,
        title=fill.fill(sig.title),
        cause=fill.fill(sig.cause),
        evidence=[h.evidence for h in chosen],
        fix=fill.fill(sig.fix),
        severity=sig.severity,
        symptom=sig.symptom,
        count=count,
        first_seen=chosen[0].order[0],
    )


def match(
    events: Union[LogText, Iterable[dict]] = (),
    failure_reason: Optional[str] = None,
    context: Optional[Mapping[str, object]] = None,
    catalogue: Optional[Catalogue] = None,
    max_evidence: int = MAX_EVIDENCE,
) -> List[Finding]:
    """Findings for these log events, FailureReason and API facts, most likely cause first.

    `events` are dicts (timestamp in ms, message, logStreamName), or a LogText of them.

    Ranking: causes before symptoms, then severity, then what was seen first (API facts and
    the FailureReason count as seen before any log line).
    """
    cat = catalogue or load()
    src = _Sources(events, failure_reason, context or {})
    if "instance_type" in src.context and "instance_arch" not in src.context:
        arch = instances.architecture(src.context["instance_type"])
        if arch:
            src.context["instance_arch"] = arch
    findings = [f for f in (_evaluate(s, src, cat, max_evidence) for s in cat.signatures) if f]
    findings.sort(key=lambda f: (f.symptom, cat.severity_rank(f.severity), f.first_seen))
    return findings
