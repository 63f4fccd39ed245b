"""Send each API operation no faster than AWS accepts it, once it has said so.

SageMaker (like most AWS services) limits every operation on its own, with a token bucket whose
rate it does not publish. An operation is sent freely until AWS throttles it; from then on its
requests (every attempt, botocore's retries included) are spaced at the rate AWS accepted it over
the last WINDOW seconds (or since its first answer, at least a second), a rate that grows by
RATE_GROWTH requests per second for every second without a throttle (so a limit raised meanwhile is
found again); a refused request is sent again at its turn (aws/client.py). Threads of one run then
queue instead of each sleeping a random exponential backoff, during which the bucket refills unused. Unlike botocore's adaptive mode, which
slows every operation of a client when one is throttled, one operation's limit never slows another.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, Optional

WINDOW = 2.0  # seconds of accepted requests that estimate the rate AWS allows
RATE_GROWTH = 0.5  # requests per second added for every second without a throttle
MIN_RATE = 0.5  # requests per second: never slower
SETTLE_SECONDS = 0.5  # throttles this soon after an estimate answer requests sent before it: no new estimate


@dataclass
class _Operation:
    base: Optional[float] = None  # the rate estimated at the last throttle; None: not limited
    since: float = 0.0  # when it was estimated
    next_at: float = 0.0  # the earliest moment the next request may be sent
    accepted: Deque[float] = field(default_factory=deque)  # when AWS accepted a request, the last WINDOW
    first: Optional[float] = None  # when it accepted the first

    def rate(self, now: float) -> Optional[float]:
        return None if self.base is None else self.base + RATE_GROWTH * (now - self.since)


class Pacer:
    """Per-operation pacing for one run (one `Aws`); thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._operations: Dict[str, _Operation] = {}

    def _operation(self, name: str, now: float) -> _Operation:
        op = self._operations.setdefault(name, _Operation())
        while op.accepted and op.accepted[0] <= now - WINDOW:
            op.accepted.popleft()
        return op

    def before_send(self, operation: str) -> None:
        """Wait for the operation's next turn (at once while AWS has not throttled it)."""
        with self._lock:
            now = self._clock()
            op = self._operation(operation, now)
            rate = op.rate(now)
            if rate is None:
                return
            at = max(now, op.next_at)
            op.next_at = at + 1.0 / rate
        if at > now:
            self._sleep(at - now)

    def accepted(self, operation: str) -> None:
        """AWS answered a request of the operation without throttling it."""
        with self._lock:
            now = self._clock()
            op = self._operation(operation, now)
            op.accepted.append(now)
            op.first = now if op.first is None else op.first

    def throttled(self, operation: str) -> None:
        """AWS refused a request of the operation for its rate: pace it at the rate it accepted lately."""
        with self._lock:
            now = self._clock()
            op = self._operation(operation, now)
            if op.base is not None and now - op.since < SETTLE_SECONDS:
                return
            seen = min(WINDOW, max(1.0, now - (op.first if op.first is not None else now)))
            op.base, op.since = max(MIN_RATE, len(op.accepted) / seen), now
