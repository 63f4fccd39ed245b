"""The sandbox's scheduler: callbacks due at simulated times, run on one background thread.

SageMaker durations are expressed in simulated seconds; one simulated second lasts
`SECONDS_PER_SIMULATED * time_scale` real seconds (a 5-minute provisioning takes 3 s at scale 1).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Callable, Optional

SECONDS_PER_SIMULATED = 0.01


class Clock:
    def __init__(self, lock: threading.RLock, time_scale: float = 1.0) -> None:
        self.lock = lock
        self.time_scale = time_scale
        self._queue: list = []
        self._running: Optional[int] = None  # the sequence number of the callback running now
        self._seq = itertools.count()
        self._cv = threading.Condition(threading.Lock())
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="sandbox-clock", daemon=True)
        self._thread.start()

    def real(self, simulated_seconds: float) -> float:
        return simulated_seconds * SECONDS_PER_SIMULATED * self.time_scale

    def after(self, simulated_seconds: float, fn: Callable[[], None]) -> None:
        """Run `fn` (holding the sandbox lock) once `simulated_seconds` have passed."""
        due = time.monotonic() + self.real(simulated_seconds)
        with self._cv:
            heapq.heappush(self._queue, (due, next(self._seq), fn))
            self._cv.notify_all()

    def due_now(self, timeout: float = 10.0) -> None:
        """Everything scheduled so far is due now, and has run when this returns (tests: end what they
        held at a slow time scale; not to be called holding the sandbox's lock, which callbacks take)."""
        with self._cv:
            now = time.monotonic()
            self._queue = [(min(due, now), seq, fn) for due, seq, fn in self._queue]
            heapq.heapify(self._queue)
            last = max((seq for _, seq, _ in self._queue), default=-1)
            self._cv.notify_all()
            self._cv.wait_for(lambda: not any(seq <= last for _, seq, _ in self._queue)
                              and (self._running is None or self._running > last), timeout)

    def clear(self) -> None:
        with self._cv:
            self._queue.clear()

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._queue.clear()
            self._cv.notify_all()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stopped and (not self._queue or self._queue[0][0] > time.monotonic()):
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._cv.wait(timeout)
                if self._stopped:
                    return
                _, self._running, fn = heapq.heappop(self._queue)
            with self.lock:
                try:
                    fn()
                except Exception:  # a broken callback must not stop the clock
                    import traceback

                    traceback.print_exc()
            with self._cv:
                self._running = None
                self._cv.notify_all()
