"""Fault injection for tests and benchmarks (POST/DELETE /_sandbox/faults; no AWS client uses that path).

A fault names a service (signing name, "*" for any) and an operation ("*" for any) and does one of:
  {"throttle_rps": N}                    ThrottlingException beyond N requests per second, per
                                         operation (AWS rate limits each API operation separately)
  {"fail_next": K, "error_code": C, "status": S, "message": M}   the next K calls fail with C
  {"latency_ms": L}                      add L milliseconds before answering
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class Fault:
    service: str = "*"
    operation: str = "*"
    throttle_rps: Optional[float] = None
    fail_next: int = 0
    error_code: str = "InternalFailure"
    status: int = 500
    message: str = "An internal error occurred (injected by the sandbox)."
    latency_ms: float = 0.0
    _buckets: dict = field(default_factory=dict, repr=False)  # operation -> [tokens, last refill]

    def matches(self, service: str, operation: str) -> bool:
        return self.service in ("*", service) and self.operation in ("*", operation)


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list = []
        self.throttled = 0
        self.injected = 0

    def add(self, spec: dict) -> Fault:
        allowed = {"service", "operation", "throttle_rps", "fail_next", "error_code", "status", "message", "latency_ms"}
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}")
        fault = Fault(**spec)
        if fault.throttle_rps is None and not fault.fail_next and not fault.latency_ms:
            raise ValueError("a fault needs throttle_rps, fail_next or latency_ms")
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.throttled = 0
            self.injected = 0

    def check(self, service: str, operation: str) -> Any:
        """Return (latency_seconds, error-or-None) for one incoming call."""
        latency = 0.0
        with self._lock:
            for f in self._faults:
                if not f.matches(service, operation):
                    continue
                latency += f.latency_ms / 1000.0
                if f.fail_next > 0:
                    f.fail_next -= 1
                    self.injected += 1
                    return latency, (f.error_code, f.message, f.status)
                if f.throttle_rps is not None:
                    now = time.monotonic()
                    bucket = f._buckets.setdefault(operation, [f.throttle_rps, now])
                    bucket[0] = min(f.throttle_rps, bucket[0] + (now - bucket[1]) * f.throttle_rps)
                    bucket[1] = now
                    if bucket[0] < 1.0:
                        self.throttled += 1
                        return latency, ("ThrottlingException", "Rate exceeded", 400)
                    bucket[0] -= 1.0
        return latency, None

    def snapshot(self) -> dict:
        with self._lock:
            return {"faults": [{k: v for k, v in f.__dict__.items() if not k.startswith("_")} for f in self._faults],
                    "throttled": self.throttled, "injected": self.injected}
