"""While SageMaker health-checks the new fleet: a countdown of its startup window, and the early
verdict from the new instances' log lines (deploy/verdict.py).

SageMaker fails a deployment whose container never answers /ping only when the variant's
ContainerStartupHealthCheckTimeoutInSeconds runs out (8 minutes when unset, "How Your Container
Should Respond to Health Check (Ping) Requests", SageMaker Developer Guide), counted from the
container's start; the solution sets 3600 s. The countdown says how much of it has passed and when
SageMaker gives up, at least every COUNTDOWN_EVERY seconds even when no log line arrives.
"""

from __future__ import annotations

import datetime
import threading
import time
from typing import Callable, Optional

from byoc.deploy import verdict as verdicts

COUNTDOWN_EVERY = 60.0  # seconds between countdown lines
DEFAULT_WINDOW = 480  # ContainerStartupHealthCheckTimeoutInSeconds when a variant sets none
DECIDE_EVERY = 1.0  # seconds between two looks at the new log lines for a verdict


def window_of(config: dict) -> int:
    """The longest startup window among the config's production variants."""
    return max([int(v.get("ContainerStartupHealthCheckTimeoutInSeconds") or DEFAULT_WINDOW)
                for v in config.get("ProductionVariants", [])] or [DEFAULT_WINDOW])


def duration(seconds: float) -> str:
    """4m12s, 0m05s, 72m03s: an elapsed time as the countdown writes it."""
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s"


def span(seconds: int) -> str:
    """60m, 8m, 90s: a window's length."""
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def clock(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%H:%M UTC")


def iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


class HealthWatch:
    """Fed the new instances' log events (`on_event`, any thread) and DescribeEndpoint answers
    (`tick`); emits "countdown" and, once, "verdict" through `emit(kind, **data)`."""

    def __init__(self, window: int, started: float, emit: Callable[..., None], context: Optional[dict] = None,
                 countdown_every: Optional[float] = None, action: str = "UpdateEndpoint"):
        self.window, self.started, self.emit, self.action = window, started, emit, action
        self.context = context or {}
        self.every = COUNTDOWN_EVERY if countdown_every is None else countdown_every
        self.events: list = []
        self.lock = threading.Lock()
        self.first_ms: Optional[int] = None
        self.verdict: Optional[verdicts.Verdict] = None
        self.verdict_at: Optional[float] = None  # time.time() of the verdict
        self._decided_on = 0
        self._last_decide = 0.0
        self._last_countdown: Optional[float] = None
        self._counted_start = False  # a countdown line was printed since the first container started

    def on_event(self, event: dict) -> None:
        """A log line of the new instances (watch.LogFollower reads only streams created since UpdateEndpoint)."""
        with self.lock:
            self.events.append(event)
            ts = int(event.get("timestamp") or 0)
            self.first_ms = ts if self.first_ms is None else min(self.first_ms, ts)

    @property
    def gives_up_at(self) -> Optional[float]:
        """When SageMaker's startup window closes (epoch seconds), once a container has started."""
        return None if self.first_ms is None else self.first_ms / 1000.0 + self.window

    def tick(self, endpoint: Optional[dict] = None, now: Optional[float] = None) -> Optional[verdicts.Verdict]:
        """Look again; returns the verdict once there is one."""
        now = time.time() if now is None else now
        self._decide(now)
        started = self.first_ms is not None and not self._counted_start  # a container just started
        if self.verdict is None and _health_checking(endpoint) and (
                started or self._last_countdown is None or now - self._last_countdown >= self.every):
            self._last_countdown = now
            self._counted_start = self.first_ms is not None
            self.emit("countdown", text=self.countdown_text(now))
        return self.verdict

    def countdown_text(self, now: float) -> str:
        if self.first_ms is None:
            return (f"waiting for the new fleet's instances: {duration(now - self.started)} since {self.action}; "
                    f"the {span(self.window)} startup window starts with their containers")
        end = self.gives_up_at
        return (f"waiting for /ping on the new fleet: {duration(max(0.0, now - self.first_ms / 1000.0))} of "
                f"{span(self.window)}; SageMaker gives up at {clock(end) if end is not None else '?'}")

    def _decide(self, now: float) -> None:
        if self.verdict is not None or now - self._last_decide < DECIDE_EVERY:
            return
        with self.lock:
            if len(self.events) == self._decided_on:
                return
            events = list(self.events)
        self._decided_on, self._last_decide = len(events), now
        found = verdicts.decide(events, self.context)
        if found is None:
            return
        self.verdict, self.verdict_at = found, now
        self.emit("verdict", finding=found.finding.to_dict(), starts=found.starts,
                  rollback_expected_at=iso(self.gives_up_at) if self.gives_up_at else None,
                  text=f"early verdict: {found.finding.title}")


def _health_checking(endpoint: Optional[dict]) -> bool:
    """Whether SageMaker is still bringing up the new fleet (not baking or rolling back)."""
    if endpoint is None:
        return True
    if endpoint.get("EndpointStatus") not in ("Updating", "Creating"):
        return False
    states = [s.get("Status") for v in (endpoint.get("PendingDeploymentSummary") or {}).get("ProductionVariants", [])
              for s in v.get("VariantStatus", [])]
    return not states or all(s in ("Creating", "Updating") for s in states)
