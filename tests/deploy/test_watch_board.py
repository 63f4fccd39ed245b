"""Watches running side by side (a fleet) notice an endpoint leaving their shared listing of what is
Updating before their own next poll is due, without a request of their own."""

from __future__ import annotations

import threading
import time
from collections import Counter

from byoc.deploy import watch


class Region:
    """Stands in for `Aws`: endpoints that are Updating until their time has come."""

    def __init__(self, ends: dict) -> None:
        self.ends, self.start = ends, time.monotonic()
        self.calls: Counter = Counter()
        self.sagemaker = self
        self._memo: dict = {}
        self._lock = threading.Lock()

    def memo(self, key, compute):
        with self._lock:
            if key not in self._memo:
                self._memo[key] = compute()
            return self._memo[key]

    def _status(self, name: str) -> str:
        return "InService" if time.monotonic() - self.start >= self.ends[name] else "Updating"

    def describe_endpoint(self, EndpointName: str) -> dict:
        with self._lock:
            self.calls[EndpointName] += 1
        return {"EndpointName": EndpointName, "EndpointArn": f"arn:{EndpointName}",
                "EndpointStatus": self._status(EndpointName)}

    def paginate(self, operation: str, **params):
        assert operation == "list_endpoints" and params["StatusEquals"] == "Updating"
        with self._lock:
            self.calls["ListEndpoints"] += 1
        yield {"Endpoints": [{"EndpointName": n} for n in self.ends if self._status(n) == "Updating"]}


def test_a_watch_beside_others_sees_its_endpoint_leave_their_listing_before_its_own_poll(monkeypatch):
    # The watch of "slow-poll" would look only every 30 s; the one beside it every 0.2 s.
    monkeypatch.setattr(watch, "poll_interval",
                        lambda since: 30.0 if threading.current_thread().name == "slow-poll" else 0.2)
    region = Region({"slow-poll": 0.3, "quick-poll": 1.5})
    seen: dict = {}

    def run(name: str) -> None:
        settled = watch.until_settled(region, name, timeout=60)
        seen[name] = (settled.status, time.monotonic() - region.start)

    threads = [threading.Thread(target=run, args=(n,), name=n) for n in region.ends]
    for t in threads:
        t.start()
    for t in threads:
        t.join(70)
    status, when = seen["slow-poll"]
    assert status == "InService"
    assert when < 10  # the listing the other watch keeps reading said so, not its own poll at 30 s
    assert region.calls["slow-poll"] == 1  # described once, when the listing no longer had it
