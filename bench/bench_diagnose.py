"""Client CPU to diagnose 100,000 log events (target: under 2 s), and what log retrieval costs.

Part 1 times the matcher alone. Part 2 runs a sandbox (in its own process) holding the same
100,000 events, adds network latency to CloudWatch Logs calls, and compares reading the streams
one at a time with reading them in parallel, a server-side filter pattern with reading
everything, and times `diagnose` end to end (client CPU includes parsing the API responses).
Prints figures; asserts nothing about time (see HACKING.md). Run: python bench/bench_diagnose.py
"""

from __future__ import annotations

import os
import random
import sys
import time

from byoc import diagnosis

N_EVENTS = 100_000
STREAMS = [f"prod/i-0{n:x}a1b2c3d4e5f6071" for n in range(4)]

# What a busy Stable Diffusion endpoint logs: pings, invocations, progress bars, model loads.
ROUTINE = [
    'INFO:     10.2.88.5:{n} - "GET /ping HTTP/1.1" 200 OK',
    'INFO:     10.2.88.5:{n} - "POST /invocations HTTP/1.1" 200 OK',
    "{n}%|#####     | 10/20 [00:01<00:01,  8.61it/s]",
    "Total progress: 100%|##########| 20/20 [00:02<00:00,  8.40it/s]",
    "2024-05-02 08:55:01,417 - inference - INFO - task {n} finished, uploaded s3://bucket/out/{n}.png",
    "Loading weights [6ce0161689] from /home/ubuntu/models/Stable-diffusion/v1-5-pruned-emaonly.safetensors",
    "Model loaded in 5.2s (load weights from disk: 0.6s, create model: 0.4s, apply weights to model: 3.5s).",
    "[sagemaker logs] [{n}] Inference request succeeded. ModelLatency: {n} us, RequestDownloadLatency: 1 us",
]
FAILURE = [
    "Traceback (most recent call last):",
    '  File "/home/ubuntu/stable-diffusion-webui/modules/sd_models.py", line 612, in load_model',
    "    sd_model.to(devices.device)",
    "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 22.20 GiB total)",
]


def make_events(n: int, seed: int = 7) -> list:
    rnd = random.Random(seed)
    t0 = 1_714_640_000_000
    events = []
    for i in range(n):
        line = rnd.choice(ROUTINE).format(n=rnd.randint(1, 99999))
        events.append({"timestamp": t0 + i * 10, "message": line, "logStreamName": rnd.choice(STREAMS)})
    for j, line in enumerate(FAILURE):  # a failure near the end of one stream
        events.append({"timestamp": t0 + n * 10 + j, "message": line, "logStreamName": STREAMS[0]})
    return events


def cpu(fn, *args, **kwargs):
    start = time.process_time()
    result = fn(*args, **kwargs)
    return result, time.process_time() - start


def diagnose_cpu() -> None:
    diagnosis.load()  # compile the catalogue once, outside the timing
    events = make_events(N_EVENTS)
    size_mb = sum(len(e["message"]) for e in events) / 1e6
    findings, t_match = cpu(diagnosis.match, events, failure_reason="did not pass the ping health check")
    lines, t_key = cpu(diagnosis.key_lines, events)
    print(f"events: {len(events):,} ({size_mb:.1f} MB of text), signatures: {len(diagnosis.load().signatures)}")
    print(f"match:     {t_match:.3f} s CPU -> {[f.id for f in findings]}")
    print(f"key_lines: {t_key:.3f} s CPU -> {len(lines)} lines")
    print(f"total:     {t_match + t_key:.3f} s CPU (target < 2 s)")


LATENCY_MS = 50  # a typical round trip to CloudWatch Logs from outside its region


def start_sandbox() -> tuple:
    """`byoc sandbox serve` in its own process, so this process's CPU time is the client's alone."""
    import socket
    import subprocess
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "byoc", "sandbox", "serve", "--port", str(port),
                             "--time-scale", "0.05"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/_sandbox/health", timeout=1).read()
            return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the sandbox did not start")


def add_fault(url: str, spec: dict) -> None:
    import json
    import urllib.request

    request = urllib.request.Request(url + "/_sandbox/faults", data=json.dumps(spec).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()


def retrieval() -> None:
    from byoc.aws.client import Aws
    from byoc.observe import logs
    from byoc.observe.diagnose import diagnose
    from byoc.sandbox import seed

    proc, url = start_sandbox()
    try:
        os.environ.update({"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing",
                           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"})
        clients = seed.session(url)
        sm, ecr, cw = clients.client("sagemaker"), clients.client("ecr"), clients.client("logs")
        image, _ = seed.push_image(ecr, "sd", "v1", "healthy")
        sm.create_model(ModelName="m", ExecutionRoleArn=seed.execution_role(clients.client("iam")),
                        PrimaryContainer={"Image": image})
        sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
            {"VariantName": "prod", "ModelName": "m", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName="bench", EndpointConfigName="c")
        seed.wait_status(sm, "bench")
        group = logs.log_group("bench")
        now = int(time.time() * 1000)
        events = make_events(N_EVENTS)
        base = events[0]["timestamp"]
        by_stream: dict = {}
        for e in events:
            by_stream.setdefault(e["logStreamName"], []).append(
                {"timestamp": now - 3_600_000 + (e["timestamp"] - base) // 40, "message": e["message"]})
        for stream, batch in by_stream.items():
            cw.create_log_stream(logGroupName=group, logStreamName=stream)
            for i in range(0, len(batch), 5000):
                cw.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch[i:i + 5000])
        add_fault(url, {"service": "logs", "latency_ms": LATENCY_MS})
        since = now - 2 * 3_600_000
        print(f"\nlog retrieval (sandbox in its own process): {N_EVENTS:,} events in {len(by_stream) + 1} "
              f"streams, {LATENCY_MS} ms added to every CloudWatch Logs call")
        for label, kwargs in (("sequential (1 worker)", {"workers": 1}), ("parallel (8 workers)", {"workers": 8}),
                              ("server-side --grep", {"pattern": '"CUDA out of memory"'})):
            aws = Aws(region="us-east-1")
            start, start_cpu = time.perf_counter(), time.process_time()
            read = logs.read(aws, "bench", start=since, **kwargs)
            wall, used = time.perf_counter() - start, time.process_time() - start_cpu
            calls = sum(n for k, n in aws.calls.items() if k.startswith("logs:"))
            print(f"  {label:<22} {wall:6.2f} s wall, {used:5.2f} s client CPU, {calls:3d} calls, "
                  f"{len(read.events):,} events returned")
        aws = Aws(region="us-east-1")
        start, start_cpu = time.perf_counter(), time.process_time()
        d = diagnose(aws, "bench", since=since)
        wall, used = time.perf_counter() - start, time.process_time() - start_cpu
        print(f"  diagnose end to end    {wall:6.2f} s wall, {used:5.2f} s client CPU, {d.events_read:,} events, "
              f"findings {[f.id for f in d.findings]}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    diagnose_cpu()
    if "--cpu-only" not in sys.argv:
        retrieval()


if __name__ == "__main__":
    main()
