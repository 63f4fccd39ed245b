"""The diagnosis catalogue (data/signatures.json) loaded into compiled, typed signatures."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Dict, List, Optional, Tuple

from byoc.diagnosis.logtext import needles

SOURCES = ("log", "failure_reason")
API_PREFIX = "api:"


@dataclass(frozen=True)
class Rule:
    """One pattern and where to look for it: log, failure_reason or api:<context field>."""

    where: str
    regex: re.Pattern
    needles: Tuple[str, ...] = ()  # literals that prefilter log lines (see logtext.needles)

    @property
    def field(self) -> Optional[str]:
        return self.where[len(API_PREFIX):] if self.where.startswith(API_PREFIX) else None


@dataclass(frozen=True)
class Signature:
    id: str
    title: str
    severity: str
    cause: str
    fix: str
    match: Tuple[Rule, ...]
    unless: Tuple[Rule, ...] = ()
    symptom: bool = False
    recovers: bool = True  # False: cannot heal at a restart (one failing container start is enough)


@dataclass(frozen=True)
class Catalogue:
    signatures: Tuple[Signature, ...]
    severity_order: Tuple[str, ...]
    placeholder_defaults: Dict[str, str] = field(default_factory=dict)
    ready: Tuple[Rule, ...] = ()  # lines saying the server listens on 0.0.0.0:8080
    ping_ok: Tuple[Rule, ...] = ()  # access-log lines of a GET /ping answered 200

    def severity_rank(self, severity: str) -> int:
        return self.severity_order.index(severity)


class CatalogueError(ValueError):
    """data/signatures.json is malformed (a bug in byoc's data, caught by its tests)."""


def _rule(raw: dict, sig_id: str) -> Rule:
    where = raw.get("where", "")
    if where not in SOURCES and not (where.startswith(API_PREFIX) and len(where) > len(API_PREFIX)):
        raise CatalogueError(f"signature {sig_id}: unknown where '{where}'")
    flags = re.MULTILINE if where == "log" else 0
    try:
        regex = re.compile(raw["pattern"], flags)
    except (re.error, KeyError) as exc:
        raise CatalogueError(f"signature {sig_id}: bad pattern {raw.get('pattern')!r}: {exc}") from exc
    return Rule(where, regex, needles(raw["pattern"]) if where == "log" else ())


def parse(doc: dict) -> Catalogue:
    """Build a Catalogue from the JSON document, checking every field."""
    order = tuple(doc["severity_order"])
    sigs: List[Signature] = []
    seen = set()
    for raw in doc["signatures"]:
        sig_id = raw.get("id", "")
        if not sig_id or sig_id in seen:
            raise CatalogueError(f"signature id missing or repeated: '{sig_id}'")
        seen.add(sig_id)
        missing = [k for k in ("title", "severity", "cause", "fix", "match") if not raw.get(k)]
        if missing:
            raise CatalogueError(f"signature {sig_id}: missing {', '.join(missing)}")
        if raw["severity"] not in order:
            raise CatalogueError(f"signature {sig_id}: severity '{raw['severity']}' not in {order}")
        sigs.append(Signature(
            id=sig_id,
            title=raw["title"],
            severity=raw["severity"],
            cause=raw["cause"],
            fix=raw["fix"],
            match=tuple(_rule(r, sig_id) for r in raw["match"]),
            unless=tuple(_rule(r, sig_id) for r in raw.get("unless", [])),
            symptom=bool(raw.get("symptom", False)),
            recovers=bool(raw.get("recovers", True)),
        ))
    return Catalogue(
        signatures=tuple(sigs),
        severity_order=order,
        placeholder_defaults=dict(doc.get("placeholder_defaults", {})),
        ready=tuple(Rule("log", re.compile(p, re.MULTILINE), needles(p)) for p in doc.get("ready_patterns", [])),
        ping_ok=tuple(Rule("log", re.compile(p), needles(p)) for p in doc.get("ping_ok_patterns", [])),
    )


@lru_cache(maxsize=1)
def load() -> Catalogue:
    """The catalogue shipped with byoc."""
    text = resources.files("byoc").joinpath("data/signatures.json").read_text()
    return parse(json.loads(text))
