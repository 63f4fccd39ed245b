"""Client CPU to diagnose 100,000 log events (target: under 2 s), and what log retrieval costs.

Prints figures; asserts nothing about time (see HACKING.md). Run: python bench/bench_diagnose.py
"""

from __future__ import annotations

import random
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


def main() -> None:
    diagnosis.load()  # compile the catalogue once, outside the timing
    events = make_events(N_EVENTS)
    size_mb = sum(len(e["message"]) for e in events) / 1e6
    findings, t_match = cpu(diagnosis.match, events, failure_reason="did not pass the ping health check")
    lines, t_key = cpu(diagnosis.key_lines, events)
    print(f"events: {len(events):,} ({size_mb:.1f} MB of text), signatures: {len(diagnosis.load().signatures)}")
    print(f"match:     {t_match:.3f} s CPU -> {[f.id for f in findings]}")
    print(f"key_lines: {t_key:.3f} s CPU -> {len(lines)} lines")
    print(f"total:     {t_match + t_key:.3f} s CPU (target < 2 s)")


if __name__ == "__main__":
    main()
