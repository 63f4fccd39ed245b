"""--since/--until values: a duration back from now (10m, 2h, 3d, 1h30m) or an ISO-8601 time.

Durations use the units s, m, h, d, w (as `aws logs tail --since` does). An ISO-8601 time without
an offset is read as UTC, the zone byoc prints log times in. Results are epoch milliseconds,
the unit CloudWatch Logs uses for startTime/endTime.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Optional, Tuple, Union

from byoc.errors import BadInput

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

_DURATION_RE = re.compile(r"^(?:\d+[smhdw])+$")
_PART_RE = re.compile(r"(\d+)([smhdw])")
_ISO_RE = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[T ](?P<h>\d{2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<frac>\d{1,6}))?)?)?"
    r"(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?$",
    re.IGNORECASE,
)

FORMS = "a duration such as 10m, 2h, 3d or 1h30m (units s, m, h, d, w), or an ISO-8601 time such as 2024-05-01T12:00:00Z"


def seconds(text: Union[str, float], option: str = "--timeout", minimum: float = 0.0) -> float:
    """Seconds for a plain number (300, 2.5) or a duration (10m, 1h30m); BadInput naming `option` otherwise."""
    value = str(text).strip().lower()
    try:
        out = float(value)
    except ValueError:
        if not _DURATION_RE.match(value):
            raise BadInput(f"{option} '{text}' is not a number of seconds or a duration.",
                           "Use seconds (600) or a duration such as 90s, 10m, 2h or 1h30m.") from None
        out = float(sum(int(n) * UNIT_SECONDS[u] for n, u in _PART_RE.findall(value)))
    if out < minimum:
        raise BadInput(f"{option} '{text}' is below the minimum of {minimum:g} s.",
                       f"Give {option} at least {minimum:g} seconds.")
    return out


def now_ms() -> int:
    return int(time.time() * 1000)


def parse(text: str, option: str = "--since", now: Optional[int] = None) -> int:
    """Epoch milliseconds for `text`; BadInput naming `option` when it is neither form."""
    value = (text or "").strip()
    now = now_ms() if now is None else now
    if value.lower() == "now":
        return now
    if _DURATION_RE.match(value.lower()):
        seconds = sum(int(n) * UNIT_SECONDS[u] for n, u in _PART_RE.findall(value.lower()))
        return now - seconds * 1000
    m = _ISO_RE.match(value)
    if m:
        return _iso_ms(m, value, option)
    raise BadInput(f"{option} '{text}' is neither a duration nor a time.", f"Use {FORMS}.")


def _iso_ms(m: re.Match, value: str, option: str) -> int:
    try:
        year, month, day = (int(x) for x in m["date"].split("-"))
        frac = (m["frac"] or "").ljust(6, "0")
        moment = datetime(
            year, month, day, int(m["h"] or 0), int(m["m"] or 0), int(m["s"] or 0),
            int(frac) if frac else 0, tzinfo=_zone(m["tz"]),
        )
    except ValueError as exc:
        raise BadInput(f"'{value}' is not a valid time: {exc}.", f"Use {FORMS}.") from exc
    return int(moment.timestamp() * 1000)


def _zone(tz: Optional[str]) -> timezone:
    if not tz or tz.upper() == "Z":
        return timezone.utc
    sign = -1 if tz[0] == "-" else 1
    digits = tz[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"offset {tz} out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def window(since: Optional[str], until: Optional[str], default_since: Optional[int] = None,
           now: Optional[int] = None) -> Tuple[Optional[int], Optional[int]]:
    """(start_ms, end_ms) from --since/--until; refuses an empty or inverted window."""
    now = now_ms() if now is None else now
    start = parse(since, "--since", now) if since else default_since
    end = parse(until, "--until", now) if until else None
    if start is not None and end is not None and end <= start:
        raise BadInput(
            f"--until ({iso(end)}) is not after --since ({iso(start)}).",
            "Give an --until later than --since, or leave --until out to read up to now.",
        )
    return start, end


def iso_utc(moment: Any) -> Optional[str]:
    """A datetime (or an ISO-8601 string, as old byoc tags hold) as ISO-8601 UTC with milliseconds and `Z`,
    the one form byoc's JSON gives times in; None for nothing, the text unchanged when it is no time."""
    if moment in (None, ""):
        return None
    if isinstance(moment, str):
        text = moment.strip()
        try:
            moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.upper().endswith("Z") else text)
        except ValueError:
            return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return iso(int(moment.timestamp() * 1000))


def iso(ms: int) -> str:
    """UTC ISO-8601 with milliseconds, the form byoc prints log times in."""
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
