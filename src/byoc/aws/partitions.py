"""Region -> partition facts (DNS suffix, console domain), read from data/partitions.json."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class Partition:
    name: str
    dns_suffix: str
    console: str

    def console_url(self, region: str) -> str:
        return self.console.format(region=region)


@lru_cache(maxsize=1)
def _table() -> list:
    text = resources.files("byoc").joinpath("data/partitions.json").read_text()
    return json.loads(text)["partitions"]


def known_region(region: str) -> bool:
    return any(re.match(p["region_regex"], region or "") for p in _table())


def for_region(region: str) -> Partition:
    """The partition a region belongs to (commercial `aws` when nothing else matches)."""
    for p in _table():
        if re.match(p["region_regex"], region or ""):
            return Partition(p["partition"], p["dns_suffix"], p["console"])
    default = next(p for p in _table() if p["partition"] == "aws")
    return Partition(default["partition"], default["dns_suffix"], default["console"])


def names() -> list:
    return [p["partition"] for p in _table()]


def logs_console_url(region: str, endpoint: str) -> str:
    """The CloudWatch console link of the seed's step 4, for this region's partition."""
    base = for_region(region).console_url(region)
    return (
        f"{base}/cloudwatch/home?region={region}"
        f"#logsV2:log-groups$3FlogGroupNameFilter$3D{endpoint}"
    )
