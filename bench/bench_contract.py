"""check-contract against the reference serve program: startup, invocation and /ping latency
while generations run, alone and with a queue of concurrent invocations (one inference worker).

Prints figures; asserts nothing about time (see HACKING.md). Run: python bench/bench_contract.py
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from byoc.container import contract

SERVE = Path(__file__).resolve().parent.parent / "examples" / "serve"
STEP_SECONDS = 0.05


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_example() -> tuple:
    port = free_port()
    env = dict(os.environ, SAGEMAKER_BIND_TO_PORT=str(port), MODEL_DIR="/nonexistent",
               SERVE_STEP_SECONDS=str(STEP_SECONDS))
    proc = subprocess.Popen([sys.executable, str(SERVE), "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, f"http://127.0.0.1:{port}"


def one_check(url: str, steps: int) -> None:
    start = time.perf_counter()
    report = contract.check(url, f'{{"prompt": "bench", "steps": {steps}}}'.encode(), startup_timeout=30)
    total = time.perf_counter() - start
    t = report.timings
    print(f"  steps={steps:<4} result={'PASS' if report.ok else 'FAIL'}  invocation {t['invocation_seconds']:.2f} s, "
          f"{t['pings_while_busy']} pings while busy, median {t['ping_median_seconds'] * 1000:.1f} ms, "
          f"max {t['ping_max_seconds'] * 1000:.1f} ms; check-contract total {total:.2f} s")


def queued(url: str, concurrent: int, steps: int) -> None:
    """`concurrent` invocations at once (they queue on the single worker) while pinging."""
    body = f'{{"prompt": "q", "steps": {steps}}}'.encode()
    done = threading.Event()
    latencies: list = []

    def invoke():
        req = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=600).read()

    def ping():
        while not done.is_set():
            t0 = time.perf_counter()
            urllib.request.urlopen(f"{url}/ping", timeout=5).read()
            latencies.append(time.perf_counter() - t0)
            time.sleep(0.1)

    pinger = threading.Thread(target=ping)
    workers = [threading.Thread(target=invoke) for _ in range(concurrent)]
    start = time.perf_counter()
    pinger.start()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - start
    done.set()
    pinger.join()
    print(f"  {concurrent} concurrent x steps={steps}: all answered in {wall:.2f} s (queued on one worker); "
          f"{len(latencies)} pings, median {statistics.median(latencies) * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms (limit {contract.PING_LIMIT * 1000:.0f} ms)")


def main() -> None:
    proc, url = start_example()
    try:
        start = time.perf_counter()
        report = contract.check(url, b'{"steps": 1}', startup_timeout=30)
        print(f"examples/serve (step = {STEP_SECONDS} s): first 200 on /ping after "
              f"{report.timings['startup_seconds']:.2f} s (process start to check: {time.perf_counter() - start:.2f} s)")
        for steps in (20, 100):
            one_check(url, steps)
        queued(url, 8, 20)
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
