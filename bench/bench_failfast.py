"""How soon a broken image is known: byoc's early verdict versus SageMaker's rollback.

A solution-like async endpoint (ContainerStartupHealthCheckTimeoutInSeconds=3600, as the solution's
create_endpoint.py sets it) is updated to an image with each failing behaviour of the sandbox
(crash, missing-env, wrong architecture, oom, ping-timeout), once keeping the 3600 s window and once
with --startup-timeout 10m. For each: simulated seconds from UpdateEndpoint to byoc's early verdict
(none for ping-timeout: its logs show no cause, so it honestly gets only the countdown), and to
SageMaker's rollback (the endpoint InService again on its previous config). All runs go at once,
one endpoint each, against a sandbox in its own process.
Resolution: byoc reads the new log lines every second and SageMaker's status at least every second,
so a figure is up to ~2 real seconds (2 / (0.01 x time-scale) simulated seconds) late.
Run: .venv/bin/python bench/bench_failfast.py [--time-scale 4]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fleet import sandbox_process  # noqa: E402
from byoc.aws.client import Aws  # noqa: E402
from byoc.deploy.apply import apply  # noqa: E402
from byoc.deploy.plan import plan_update  # noqa: E402
from byoc.sandbox import seed  # noqa: E402
from byoc.sandbox.clock import SECONDS_PER_SIMULATED  # noqa: E402

BEHAVIOURS = [("crash", "crash"), ("missing-env", "missing-env=ESD_VERSION_REQUIRED"),
              ("wrong architecture", "exec-format"), ("oom", "oom"), ("ping-timeout", "ping-timeout")]
WINDOWS = [(None, "3600 s (the solution's)"), (600, "--startup-timeout 10m")]


def one(url: str, endpoint: str, image: str, startup_timeout, scale: float, out: dict) -> None:
    aws = Aws()
    plan = plan_update(aws, endpoint, image, startup_timeout=startup_timeout)
    marks: dict = {}

    def events(kind, **data):
        if kind == "phase" and data["text"].startswith("UpdateEndpoint ->"):
            marks["update"] = time.time()
        elif kind == "verdict":
            marks["verdict"] = time.time()

    result = apply(aws, plan, events=events, follow_logs=False, timeout=3 * 3600)
    sm = seed.session(url).client("sagemaker")
    while sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] != "InService" or "settled" not in out:
        time.sleep(0.05)
    to_sim = 1.0 / (SECONDS_PER_SIMULATED * scale)
    out.update(result=result.result, diagnosis=(result.diagnosis or [{}])[0].get("id"),
               verdict=(marks["verdict"] - marks["update"]) * to_sim if "verdict" in marks else None,
               rollback=(out["settled"] - marks["update"]) * to_sim if "settled" in out else None)


def watch_rollbacks(url: str, runs: dict, stop: threading.Event) -> None:
    """When each endpoint leaves Updating (polled every 50 ms: SageMaker's rollback moment)."""
    sm = seed.session(url).client("sagemaker")
    started = set()
    while not stop.is_set():
        for e in sm.list_endpoints(MaxResults=100)["Endpoints"]:
            name, status = e["EndpointName"], e["EndpointStatus"]
            if name not in runs:
                continue
            if status == "Updating":
                started.add(name)
            elif name in started and "settled" not in runs[name]:
                runs[name]["settled"] = time.time()
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=4.0)
    args = parser.parse_args()
    with sandbox_process(args.time_scale) as url:
        clients = seed.session(url)
        ecr = clients.client("ecr")
        runs: dict = {}
        jobs = []
        for b, (label, behavior) in enumerate(BEHAVIOURS):
            image, _ = seed.push_image(ecr, "my-sd-webui", f"broken-{behavior.split('=')[0]}", behavior)
            for w, (window, _) in enumerate(WINDOWS):
                eid = f"b{b}w{w}xyz"
                seed.solution(clients, endpoint_id=eid, realtime_id=None, startup_timeout=3600)  # async, autoscaling 0..1
                name = f"infer-endpoint-{eid}"
                runs[name] = {"label": label, "window": window}
                jobs.append((name, image, window))
        stop = threading.Event()
        watcher = threading.Thread(target=watch_rollbacks, args=(url, runs, stop), daemon=True)
        watcher.start()
        threads = [threading.Thread(target=one, args=(url, n, i, w, args.time_scale, runs[n])) for n, i, w in jobs]
        began = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop.set()
        print(f"time scale {args.time_scale}: {time.time() - began:.0f} real seconds for {len(jobs)} updates at once")
    print()
    print("| failing behaviour | window | byoc's early verdict | SageMaker's rollback | sooner | diagnosis |")
    print("| --- | --- | --- | --- | --- | --- |")
    for window, wlabel in WINDOWS:
        for label, _ in BEHAVIOURS:
            r = next(v for v in runs.values() if v["label"] == label and v["window"] == window)
            verdict = f"{r['verdict']:.0f} s" if r.get("verdict") is not None else "none (countdown only)"
            ratio = f"{r['rollback'] / r['verdict']:.0f}x" if r.get("verdict") and r.get("rollback") else "-"
            print(f"| {label} | {wlabel} | {verdict} | {r['rollback']:.0f} s | {ratio} | {r.get('diagnosis') or '-'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
