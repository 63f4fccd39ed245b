"""--since/--until parsing: every accepted form, and one clear error for the rest."""

from __future__ import annotations

import pytest

from byoc import timespec
from byoc.errors import BadInput

NOW = 1_714_564_800_000  # 2024-05-01T12:00:00Z


@pytest.mark.parametrize(
    "text, back_seconds",
    [
        ("30s", 30),
        ("10m", 600),
        ("2h", 7200),
        ("3d", 3 * 86400),
        ("1w", 604800),
        ("1h30m", 5400),
        ("2d12h", 2 * 86400 + 12 * 3600),
        ("0m", 0),
        ("10M", 600),
        (" 5m ", 300),
    ],
)
def test_durations_count_back_from_now(text, back_seconds):
    assert timespec.parse(text, now=NOW) == NOW - back_seconds * 1000


def test_now_is_now():
    assert timespec.parse("now", now=NOW) == NOW


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-05-01T12:00:00Z", NOW),
        ("2024-05-01T12:00:00z", NOW),
        ("2024-05-01T12:00:00", NOW),  # no offset: UTC
        ("2024-05-01 12:00:00", NOW),
        ("2024-05-01T12:00", NOW),
        ("2024-05-01", NOW - 12 * 3600 * 1000),
        ("2024-05-01T12:00:00.250Z", NOW + 250),
        ("2024-05-01T12:00:00,5Z", NOW + 500),
        ("2024-05-01T20:00:00+08:00", NOW),
        ("2024-05-01T20:00:00+0800", NOW),
        ("2024-05-01T20:00:00+08", NOW),
        ("2024-05-01T07:30:00-04:30", NOW),
    ],
)
def test_iso_8601_times(text, expected):
    assert timespec.parse(text, now=NOW) == expected


@pytest.mark.parametrize(
    "text",
    ["", "yesterday", "10", "10 minutes", "-5m", "5x", "m10", "2024/05/01", "2024-13-01",
     "2024-02-30T00:00:00Z", "2024-05-01T25:00:00Z", "2024-05-01T12:00:00+25:00", "1714564800000"],
)
def test_bad_values_are_one_clear_error(text):
    with pytest.raises(BadInput) as info:
        timespec.parse(text, option="--until", now=NOW)
    err = info.value
    assert "--until" in err.message or "not a valid time" in err.message
    assert "10m" in err.fix and "ISO-8601" in err.fix
    assert "\n" not in err.message


def test_window_defaults_and_order():
    assert timespec.window(None, None, default_since=NOW - 5, now=NOW) == (NOW - 5, None)
    assert timespec.window("2h", "1h", now=NOW) == (NOW - 7200_000, NOW - 3600_000)
    with pytest.raises(BadInput) as info:
        timespec.window("1h", "2h", now=NOW)
    assert "--until" in info.value.message and "--since" in info.value.message


def test_iso_round_trips_with_milliseconds():
    assert timespec.iso(NOW + 7) == "2024-05-01T12:00:00.007Z"
    assert timespec.parse(timespec.iso(NOW + 7), now=0) == NOW + 7
