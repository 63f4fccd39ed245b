"""Watch an endpoint deployment until SageMaker settles, streaming its new log lines meanwhile."""

from __future__ import annotations

import random
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

from byoc.aws.client import Aws
from byoc.endpoint.view import BUSY
from byoc.errors import AuthError, AwsError


@dataclass
class Settled:
    status: Optional[str]  # None on timeout, or when `tick` stopped the watch
    endpoint: dict
    timed_out: bool = False
    stopped: bool = False  # `tick` asked to stop watching (an early verdict with --fail-fast)


POLL_FIRST, POLL_GROWTH, POLL_MAX = 0.5, 1.0, 20.0
BOARD_MAX_AGE = 0.5  # seconds one shared ListEndpoints answer serves every watch of the same run
BOARD_LOOK_SECONDS = 0.1  # how often a watch beside others looks at their newest answer (no request)
LOG_POLL_SECONDS = 2.0  # one FilterLogEvents (CloudWatch Logs) per poll while the new fleet writes lines
LOG_QUIET_MAX = 16.0  # ... doubling while it writes none (minutes of provisioning), up to this
TICK_SECONDS = 1.0  # how often the health watch (countdown, early verdict) looks between status polls


def poll_interval(since_change: float) -> float:
    """Seconds to the next DescribeEndpoint, `since_change` seconds after UpdateEndpoint or the last
    change of phase seen: quick right after one (the next often follows: a rejected update fails at
    once, traffic shifts soon after the new fleet is healthy), then growing with the time spent in
    the phase (a fleet provisions for minutes): each wait about doubles, so the number of polls grows
    with the logarithm of a phase's length (an 8-minute deployment: about 30); capped at POLL_MAX,
    jittered so that a fleet's updates do not poll in step."""
    return min(POLL_MAX, POLL_FIRST + POLL_GROWTH * since_change) * random.uniform(0.8, 1.2)


def until_settled(aws: Aws, endpoint: str, timeout: float, on_change: Optional[Callable[[dict], None]] = None,
                  tick: Optional[Callable[[dict], bool]] = None) -> Settled:
    """Poll until nothing is in progress. `tick(last answer)` runs about every TICK_SECONDS between
    polls (no API call of its own) and stops the watch by returning True. While other watches of the
    same run go on (a fleet), a poll first asks their shared `Board`. The first look comes one
    poll interval after the call that started the change: SageMaker sets the status at once ("When
    SageMaker receives the request, it sets the endpoint status to Updating", API_UpdateEndpoint;
    Creating and Deleting likewise), so a look right away would only say that."""
    start = changed = time.monotonic()
    last = None
    with _watching(aws) as others:
        _wait(aws, endpoint, start, start + min(poll_interval(0.0), max(0.0, timeout)), others)
        while True:
            try:
                d = _look(aws, endpoint, others(), start)
            except AwsError as exc:
                if exc.not_found:
                    return Settled(status="Deleted", endpoint={})
                raise
            key = (d["EndpointStatus"], _phase(d) if "EndpointArn" in d or last is None else last[1])
            if key != last:
                if last is not None:  # a new phase, not the first look
                    changed = time.monotonic()
                if on_change:
                    on_change(d)
            last = key
            if d["EndpointStatus"] not in BUSY:
                return Settled(status=d["EndpointStatus"], endpoint=d)
            if tick and tick(d):
                return Settled(status=None, endpoint=d, stopped=True)
            elapsed = time.monotonic() - start
            if elapsed >= timeout:
                return Settled(status=None, endpoint=d, timed_out=True)
            wake = time.monotonic() + min(poll_interval(time.monotonic() - changed), max(0.05, timeout - elapsed))
            if _wait(aws, endpoint, start, wake, others, tick, d):
                return Settled(status=None, endpoint=d, stopped=True)


def _wait(aws: Aws, endpoint: str, since: float, wake: float, others: Callable[[], bool],
          tick: Optional[Callable[[dict], bool]] = None, last: Optional[dict] = None) -> bool:
    """Sleep until the next poll is due (`wake`), running `tick(last)` about every TICK_SECONDS; True
    when it asked to stop. Beside other watches, end early once the board they keep reading (read
    after `since`) no longer lists the endpoint: it is polled at once, at no request of its own."""
    next_tick = time.monotonic() + TICK_SECONDS
    while (now := time.monotonic()) < wake:
        time.sleep(max(0.0, min(wake, now + (BOARD_LOOK_SECONDS if others() else TICK_SECONDS), next_tick) - now))
        if time.monotonic() >= next_tick:
            next_tick += TICK_SECONDS
            if tick and last is not None and time.monotonic() < wake and tick(last):
                return True
        if others() and aws.memo("watch:board", lambda: Board(aws)).left(endpoint, since):
            return False
    return False


_active: dict = {}  # id(Aws) -> watches running now (a fleet's updates share one Aws)
_active_lock = threading.Lock()


@contextmanager
def _watching(aws: Aws) -> Iterator[Callable[[], bool]]:
    """Count this watch among the run's; yields `others()`: whether another watch runs beside it."""
    with _active_lock:
        _active[id(aws)] = _active.get(id(aws), 0) + 1
    try:
        yield lambda: _active.get(id(aws), 0) > 1
    finally:
        with _active_lock:
            _active[id(aws)] -= 1
            if not _active[id(aws)]:
                del _active[id(aws)]


def _look(aws: Aws, endpoint: str, shared: bool, since: float) -> dict:
    """The endpoint's DescribeEndpoint; or, when `shared` and the board (read since `since`, the
    watch's start) lists it as still Updating, just that (a stand-in without EndpointArn): a fleet's
    watches then cost one ListEndpoints per BOARD_MAX_AGE between them, and one DescribeEndpoint each
    once SageMaker is done."""
    if shared and endpoint in (aws.memo("watch:board", lambda: Board(aws)).updating(since) or ()):
        return {"EndpointName": endpoint, "EndpointStatus": "Updating"}
    return aws.sagemaker.describe_endpoint(EndpointName=endpoint)


class Board:
    """The region's Updating endpoints (ListEndpoints, StatusEquals), read for all of a run's watches
    at most every BOARD_MAX_AGE seconds. Its size is what is being updated right now, not what the
    region holds. A watch asks for an answer read after it started (after its UpdateEndpoint), so
    its endpoint missing from the list means SageMaker is done with it (then it is described):
    never a wrong "settled", at worst BOARD_MAX_AGE late."""

    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.lock = threading.Lock()
        self.read_at = float("-inf")
        self.names: Optional[frozenset] = None

    def left(self, endpoint: str, since: float) -> bool:
        """The newest answer, read after `since`, no longer lists `endpoint` (no request of its own)."""
        with self.lock:
            return self.names is not None and self.read_at > since and endpoint not in self.names

    def updating(self, since: float) -> Optional[frozenset]:
        """Names read after `since` and at most BOARD_MAX_AGE ago; None when ListEndpoints cannot be
        read (each watch describes its own endpoint)."""
        with self.lock:
            now = time.monotonic()
            if self.read_at <= since or now - self.read_at > BOARD_MAX_AGE:
                try:
                    self.names = frozenset(e["EndpointName"] for page in self.aws.sagemaker.paginate(
                        "list_endpoints", StatusEquals="Updating", MaxResults=100) for e in page.get("Endpoints", []))
                except (AuthError, AwsError):
                    self.names = None
                self.read_at = now
            return self.names


def _phase(d: dict) -> str:
    pending = d.get("PendingDeploymentSummary") or {}
    states = [f"{s.get('Status', '')}:{s.get('StatusMessage', '')}" for v in pending.get("ProductionVariants", [])
              for s in v.get("VariantStatus", [])]
    return ",".join(states)


def phase_text(d: dict) -> str:
    status = d.get("EndpointStatus", "?")
    pending = d.get("PendingDeploymentSummary") or {}
    if pending:
        messages = [s.get("StatusMessage") for v in pending.get("ProductionVariants", [])
                    for s in v.get("VariantStatus", []) if s.get("StatusMessage")]
        detail = messages[0] if messages else f"new fleet {_phase(d) or 'provisioning'}"
        return f"{status}: {detail} ({pending.get('EndpointConfigName')})"
    if d.get("FailureReason") and status == "InService":
        return f"{status} (on {d.get('EndpointConfigName')}): {d['FailureReason']}"
    return status


class LogFollower:
    """Tail the new fleet's log lines (streams created since `since_ms`: the old fleet's are not read)
    in a background thread (no-op when `on_event` is None); on close, one last read delivers the lines
    written since the last poll (often the most telling)."""

    def __init__(self, aws: Aws, endpoint: str, since_ms: int, on_event: Optional[Callable[..., None]]) -> None:
        self.stop = threading.Event()
        self.thread: Optional[threading.Thread] = None
        self.aws, self.endpoint, self.since_ms, self.on_event = aws, endpoint, since_ms, on_event
        self.seen: set = set()
        self.newest = since_ms
        if on_event is None:
            return

        def run() -> None:
            from byoc.observe import logs

            if self.stop.wait(LOG_POLL_SECONDS):
                return  # no new instance logs right after UpdateEndpoint: provisioning takes minutes
            try:
                new_fleet = logs.Selection(since_ms, None, created_after=since_ms)
                for event in logs.follow(aws, endpoint, new_fleet, self.stop, poll_seconds=LOG_POLL_SECONDS,
                                         quiet_max=LOG_QUIET_MAX):
                    self._deliver(event)
            except Exception:  # log streaming is a courtesy: never let it break the update
                return

        self.thread = threading.Thread(target=run, name="byoc-log-follow", daemon=True)
        self.thread.start()

    def _deliver(self, event: dict) -> None:
        key = (event.get("logStreamName"), event.get("timestamp"), event.get("message"))
        if key in self.seen:
            return
        self.seen.add(key)
        self.newest = max(self.newest, int(event.get("timestamp") or 0))
        if self.on_event is not None:
            self.on_event(event)

    def close(self) -> None:
        self.stop.set()
        if not self.thread:
            return
        self.thread.join(timeout=5)
        from byoc.observe import logs

        try:
            for event in logs.read(self.aws, self.endpoint, start=max(self.since_ms, self.newest - logs.FOLLOW_LAG_MS),
                                   pattern="", created_after=self.since_ms).events:  # the new fleet's streams only
                self._deliver(event)
        except Exception:  # as above: a courtesy
            return
