"""`byoc check-contract`: check a running container against the SageMaker hosting contract.

The contract (SageMaker Developer Guide, "Custom Inference Code with Hosting Services"): the
container answers GET /ping with 200 and POST /invocations on port 8080; real-time invocations
must answer within 60 s (SageMaker Runtime API Reference, InvokeEndpoint); SageMaker keeps
pinging while the container works, and an instance whose /ping does not answer within 2 s is
taken out of service and replaced. Each check gives PASS or FAIL, its timing, and the fix.
"""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from byoc.errors import BadInput

PING_LIMIT = 2.0  # seconds /ping may take, also while an invocation runs
REALTIME_LIMIT = 60.0  # seconds a real-time invocation may take
POLL_INTERVAL = 0.2  # between /ping attempts during startup
BUSY_PING_INTERVAL = 0.25  # between /ping attempts while an invocation runs
PROGRESS_EVERY = 5.0
DEFAULT_PAYLOAD = b'{"prompt": "a lighthouse at dawn, watercolor", "steps": 20}'

FIX_LISTEN = ("Listen on 0.0.0.0:8080: SageMaker sends /ping and /invocations to port 8080 "
              "(and `docker run <image> serve` must start the server).")
FIX_BUSY = ("Answer /ping from its own thread and run inference on a worker thread "
            "(a threaded HTTP server plus one inference worker, as in examples/serve).")


@dataclass
class ContractCheck:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    seconds: Optional[float] = None

    @property
    def status(self) -> str:
        return "PASS" if self.ok else "FAIL"

    def to_dict(self) -> dict:
        return dict(asdict(self), status=self.status)


@dataclass
class Report:
    url: str
    checks: list = field(default_factory=list)
    unreachable: bool = False  # nothing ever accepted a connection
    timings: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def to_dict(self) -> dict:
        return {"url": self.url, "result": "PASS" if self.ok else "FAIL", "unreachable": self.unreachable,
                "checks": [c.to_dict() for c in self.checks], "timings": self.timings}


@dataclass
class _Answer:
    status: int
    body: bytes
    content_type: str
    seconds: float


class _NoAnswer(Exception):
    """No HTTP answer: `kind` is connect (no connection), timeout, closed or error."""

    def __init__(self, kind: str, text: str, seconds: float) -> None:
        super().__init__(text)
        self.kind = kind
        self.seconds = seconds


def parse_url(url: str) -> tuple:
    """(host, port) of an http://HOST:PORT URL, or BadInput naming what is wrong."""
    fix = "Use --url http://HOST:PORT, e.g. http://127.0.0.1:8080 for a container run with -p 8080:8080."
    parts = urlsplit((url or "").strip())
    if parts.scheme != "http" or not parts.hostname:
        raise BadInput(f"'{url}' is not an http://HOST:PORT URL.", fix)
    if parts.path not in ("", "/"):
        raise BadInput(f"'{url}' has a path; byoc adds /ping and /invocations itself.", fix)
    try:
        port = parts.port or 80
    except ValueError as exc:
        raise BadInput(f"'{url}' has an invalid port.", fix) from exc
    try:
        socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise BadInput(f"Cannot resolve host '{parts.hostname}' of {url}.",
                       "Check the host name; for a local container use 127.0.0.1.") from exc
    return parts.hostname, port


def _request(host: str, port: int, method: str, path: str, timeout: float, body: Optional[bytes] = None,
             headers: Optional[dict] = None, sent: Optional[threading.Event] = None) -> _Answer:
    start = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        try:
            conn.connect()
        except ConnectionRefusedError as exc:
            raise _NoAnswer("connect", "connection refused", time.monotonic() - start) from exc
        except OSError as exc:
            raise _NoAnswer("connect", f"could not connect ({exc})", time.monotonic() - start) from exc
        conn.request(method, path, body=body, headers=headers or {})
        if sent is not None:
            sent.set()
        resp = conn.getresponse()
        data = resp.read()
        return _Answer(resp.status, data, resp.getheader("Content-Type") or "", time.monotonic() - start)
    except (socket.timeout, TimeoutError) as exc:
        raise _NoAnswer("timeout", f"no answer within {timeout:g} s", time.monotonic() - start) from exc
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
        raise _NoAnswer("closed", "connection closed without an answer", time.monotonic() - start) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise _NoAnswer("error", f"{type(exc).__name__}: {exc}", time.monotonic() - start) from exc
    finally:
        conn.close()
        if sent is not None:
            sent.set()


def _snippet(body: bytes, limit: int = 120) -> str:
    text = " ".join(body[:limit * 2].decode("utf-8", "replace").split())
    return text[:limit] + ("..." if len(text) > limit or len(body) > limit * 2 else "")


def wait_for_ping(host: str, port: int, startup_timeout: float, progress: Callable[[str], None],
                  should_stop: Callable[[], Optional[str]], refused_grace: Optional[float] = None) -> tuple:
    """Poll GET /ping until it answers 200 or the startup window ends: (ContractCheck, ever_connected).
    With `refused_grace`, stop early when nothing ever accepted a connection within that many seconds.
    A refused connection is said once; other states every PROGRESS_EVERY seconds."""
    start = time.monotonic()
    last = "no attempt"
    connected = False
    told_refused = False
    next_progress = start + PROGRESS_EVERY
    while True:
        elapsed = time.monotonic() - start
        stop = should_stop()
        if stop:
            return ContractCheck("ping", False, f"the container stopped before /ping answered 200: {stop}",
                         "Read the container log above for the cause.", round(elapsed, 3)), connected
        try:
            ans = _request(host, port, "GET", "/ping", PING_LIMIT)
            connected = True
            if ans.status == 200:
                waited = time.monotonic() - start
                return ContractCheck("ping", True, f"GET /ping answered 200 after {waited:.1f} s (took {ans.seconds:.3f} s)",
                             seconds=round(waited, 3)), connected
            last = f"answered {ans.status}" + (f" {_snippet(ans.body, 60)}" if ans.body else "")
        except _NoAnswer as exc:
            connected = connected or exc.kind != "connect"
            last = str(exc)
        now = time.monotonic()
        if now - start >= startup_timeout:
            break
        if not connected and refused_grace is not None and now - start >= refused_grace:
            return ContractCheck("ping", False, f"nothing accepted a connection on {host}:{port} within "
                                 f"{refused_grace:g} s", FIX_LISTEN, round(now - start, 3)), False
        if not connected and "refused" in last:
            if not told_refused:
                progress(f"waiting for GET /ping: {last} on {host}:{port}; waiting quietly"
                         + (f" (at most {refused_grace:g} s unless something starts listening)"
                            if refused_grace is not None else ""))
                told_refused = True
        elif now >= next_progress:
            progress(f"waiting for GET /ping: {last} ({now - start:.0f} s of {startup_timeout:g} s)")
            next_progress = now + PROGRESS_EVERY
        time.sleep(min(POLL_INTERVAL, max(0.0, startup_timeout - (now - start))))
    window = f"the {startup_timeout:g} s startup window"
    if not connected:
        return ContractCheck("ping", False, f"nothing accepted a connection on {host}:{port} during {window}",
                     FIX_LISTEN, round(startup_timeout, 3)), False
    if last.startswith("no answer"):
        fix = f"Answer GET /ping within {PING_LIMIT:g} s, from a thread that never waits for the model."
    else:
        fix = ("Answer GET /ping with 200 once the model is loaded. If loading takes longer, raise "
               "--startup-timeout here and ContainerStartupHealthCheckTimeoutInSeconds on the variant (max 3600).")
    return ContractCheck("ping", False, f"GET /ping never answered 200 during {window} (last: {last})",
                 fix, round(startup_timeout, 3)), True


def _invocation_check(result: Any, timeout: float) -> ContractCheck:
    if isinstance(result, _NoAnswer):
        if result.kind == "timeout":
            return ContractCheck("invocation", False, f"POST /invocations gave no answer within {timeout:g} s",
                         "Real-time endpoints allow 60 s per request: lower the work per request or use an "
                         "asynchronous endpoint; raise --invocation-timeout to measure longer runs.",
                         round(result.seconds, 3))
        return ContractCheck("invocation", False, f"POST /invocations: {result} (did the server crash?)",
                     "Read the container log above for the error.", round(result.seconds, 3))
    ans = result
    size = f"{len(ans.body) / 1024:.1f} kB, {ans.content_type or 'no Content-Type'}"
    if 200 <= ans.status < 300:
        note = ""
        if ans.seconds > REALTIME_LIMIT:
            note = f"; over the {REALTIME_LIMIT:g} s real-time limit, so only an asynchronous endpoint can serve it"
        return ContractCheck("invocation", True, f"POST /invocations answered {ans.status} in {ans.seconds:.2f} s ({size}){note}",
                     seconds=round(ans.seconds, 3))
    detail = f"POST /invocations answered {ans.status} in {ans.seconds:.2f} s: {_snippet(ans.body)}"
    if ans.status in (404, 405):
        fix = "Route POST /invocations to your inference code."
    elif 400 <= ans.status < 500:
        fix = "The server rejected the payload: pass one it accepts with --payload FILE (and --content-type)."
    else:
        fix = "The server failed while handling the request: read the container log above for the error."
    return ContractCheck("invocation", False, detail, fix, round(ans.seconds, 3))


def _response_check(ans: _Answer) -> ContractCheck:
    try:
        doc = json.loads(ans.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return ContractCheck("response", False,
                     f"the answer is not JSON ({ans.content_type or 'no Content-Type'}: {_snippet(ans.body, 60)})",
                     "Return a JSON body with Content-Type: application/json; the solution parses every answer as JSON.")
    keys = ", ".join(list(doc)[:5]) if isinstance(doc, dict) else type(doc).__name__
    return ContractCheck("response", True, f"the answer is valid JSON ({keys})")


def _busy_check(pings: list, invocation_seconds: float) -> ContractCheck:
    """PASS when every /ping sent while the invocation ran answered 200 within PING_LIMIT."""
    bad = [p for p in pings if p["status"] != 200 or p["seconds"] > PING_LIMIT]
    worst = max((p["seconds"] for p in pings), default=0.0)
    if bad:
        first = bad[0]
        what = f"answered {first['status']}" if first["status"] else first["error"]
        return ContractCheck("ping-while-busy", False,
                     f"{len(bad)} of {len(pings)} GET /ping sent during the {invocation_seconds:.1f} s invocation "
                     f"failed (first: {what} after {first['seconds']:.2f} s; limit {PING_LIMIT:g} s). In production "
                     "the instance would fail its health check and be replaced.", FIX_BUSY, round(worst, 3))
    note = ("; the invocation was shorter than that limit, so send a payload as heavy as production's "
            "to exercise this" if invocation_seconds < PING_LIMIT else "")
    return ContractCheck("ping-while-busy", True,
                 f"{len(pings)} GET /ping during the {invocation_seconds:.1f} s invocation all answered 200, "
                 f"slowest {worst:.3f} s (limit {PING_LIMIT:g} s){note}", seconds=round(worst, 3))


def run_invocation(host: str, port: int, payload: bytes, content_type: str, accept: str,
                   timeout: float) -> tuple:
    """POST /invocations while pinging: (invocation result, pings sent while it ran)."""
    sent = threading.Event()
    box: dict = {}

    def invoke() -> None:
        try:
            box["result"] = _request(host, port, "POST", "/invocations", timeout, body=payload,
                                     headers={"Content-Type": content_type, "Accept": accept}, sent=sent)
        except _NoAnswer as exc:
            box["result"] = exc

    worker = threading.Thread(target=invoke, name="byoc-invocation", daemon=True)
    worker.start()
    sent.wait()
    pings = []
    while True:
        try:
            ans = _request(host, port, "GET", "/ping", PING_LIMIT)
            pings.append({"status": ans.status, "seconds": round(ans.seconds, 3), "error": ""})
        except _NoAnswer as exc:
            pings.append({"status": 0, "seconds": round(exc.seconds, 3), "error": str(exc)})
        worker.join(BUSY_PING_INTERVAL)
        if not worker.is_alive():
            break
    return box["result"], pings


def check(url: str, payload: Optional[bytes] = None, content_type: str = "application/json",
          accept: str = "application/json", startup_timeout: float = 300.0, invocation_timeout: float = 600.0,
          progress: Callable[[str], None] = lambda _m: None,
          should_stop: Callable[[], Optional[str]] = lambda: None, refused_grace: Optional[float] = None) -> Report:
    """Run the contract checks against a running container; never raises for a failing container."""
    host, port = parse_url(url)
    report = Report(url=url)
    ping, connected = wait_for_ping(host, port, startup_timeout, progress, should_stop, refused_grace)
    report.checks.append(ping)
    report.unreachable = not connected
    if not ping.ok:
        return report
    report.timings["startup_seconds"] = ping.seconds
    progress("GET /ping answered 200; sending POST /invocations and pinging while it runs")
    result, pings = run_invocation(host, port, DEFAULT_PAYLOAD if payload is None else payload,
                                   content_type, accept, invocation_timeout)
    inv = _invocation_check(result, invocation_timeout)
    report.checks.append(inv)
    inv_seconds = result.seconds
    report.checks.append(_busy_check(pings, inv_seconds))
    if inv.ok and "json" in accept.lower():
        report.checks.append(_response_check(result))
    latencies = [p["seconds"] for p in pings]
    report.timings.update({
        "invocation_seconds": round(inv_seconds, 3),
        "pings_while_busy": len(pings),
        "ping_median_seconds": round(statistics.median(latencies), 3) if latencies else None,
        "ping_max_seconds": round(max(latencies), 3) if latencies else None,
    })
    return report


def unreachable_error(report: Report) -> BadInput:
    """The one-line error `check-contract` gives when nothing listens at the URL."""
    return BadInput(f"Nothing answered at {report.url}: {report.checks[0].detail}.",
                    "Start the container first (`byoc test-image IMAGE` runs it for you) and check the "
                    "port: SageMaker uses 8080.")
