"""What a container does when SageMaker starts it, driven by its image's manifest annotations.

No container runs in the sandbox. An image pushed with ECR PutImage carries
`"annotations": {"org.byoc.sandbox.behavior": "<value>"}` (and optionally
`"org.byoc.sandbox.architecture": "arm64"`) in its OCI manifest. SageMaker starts hosting
containers as `docker run <image> serve` and health-checks `GET /ping` on port 8080
("Use Your Own Inference Code with Hosting Services", SageMaker Developer Guide); each
behaviour below yields the log lines such a container really prints and the outcome.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

BEHAVIOR_KEY = "org.byoc.sandbox.behavior"
ARCH_KEY = "org.byoc.sandbox.architecture"
BEHAVIORS = ("healthy", "crash", "ping-timeout", "wrong-port", "slow-start", "oom", "invoke-error", "missing-env",
             "exec-format")

# Simulated seconds (see clock.py).
BOOT_HEALTHY = 60
# When a variant sets no ContainerStartupHealthCheckTimeoutInSeconds: "If the container does not begin
# to pass health checks by consistently responding with 200s during the 8 minutes after startup, the
# new instance launch fails" ("How Your Container Should Respond to Health Check (Ping) Requests",
# your-algorithms-inference-code.html, SageMaker Developer Guide).
DEFAULT_STARTUP_TIMEOUT = 480
# A container that exits at startup is started again on the same instance, over and over, until the
# startup window closes; only then does the deployment fail. Users see the same failure repeat in
# the logs for the whole window: aws/sagemaker-python-sdk issue 3987 (asks for a 60 s startup
# timeout "so that a bad model deployment would fail after only one minute"),
# aws/amazon-sagemaker-examples issue 3432 ("failing only after 1 hour" with a 3600 s window),
# aws-samples/amazon-sagemaker-custom-container issue 3 (an `exec format error` image that "takes a
# lot of time before failing"). The pause between two starts of a crashing container:
RESTART_DELAYS = (60, 75, 90)

# Graviton (arm64) instance families: ml.c6g, ml.c7g, ml.m6g, ml.r7gd, ml.c6gn ...
# ("Instance types for SageMaker hosting", SageMaker Developer Guide).
_GRAVITON = re.compile(r"^ml\.[a-z]+\d+g[a-z]*\.")

PING_FAILURE = ("The primary container for production variant {variant} did not pass the ping health check. "
                "Please check CloudWatch logs for this endpoint.")
IMAGE_FAILURE = ("Please make sure all images included in the model for the production variant {variant} exist, "
                 "and that the execution role used to create the model has permissions to access them.")


@dataclass
class Behavior:
    kind: str = "healthy"
    arg: Optional[str] = None
    architecture: str = "amd64"


@dataclass
class Boot:
    """The script of one container start: lines now, then ready after a delay, or exits (and is
    started again until the startup window closes), or never answers /ping until the window closes
    (then `failure_lines`)."""

    start_lines: list = field(default_factory=list)
    ready_after: Optional[float] = None
    exits: bool = False
    failure_lines: list = field(default_factory=list)
    invoke_error: bool = False


def restart_delay(starts: int) -> float:
    """Simulated seconds between start number `starts` of a crashing container and the next."""
    return RESTART_DELAYS[(starts - 1) % len(RESTART_DELAYS)]


def startup_window(seconds: Optional[int]) -> int:
    """The variant's ContainerStartupHealthCheckTimeoutInSeconds, or the documented default."""
    return int(seconds or DEFAULT_STARTUP_TIMEOUT)


def behavior_of(manifest: dict) -> Behavior:
    notes = (manifest or {}).get("annotations") or {}
    raw = str(notes.get(BEHAVIOR_KEY, "healthy")).strip()
    kind, _, arg = raw.partition("=")
    if kind not in BEHAVIORS:
        kind, arg = "healthy", ""
    return Behavior(kind=kind, arg=arg or None, architecture=str(notes.get(ARCH_KEY, "amd64")))


def is_graviton(instance_type: Optional[str]) -> bool:
    return bool(instance_type and _GRAVITON.match(instance_type))


def _banner(endpoint: str, variant: str, instance_type: str, env: dict) -> list:
    lines = [f"Starting container for endpoint {endpoint}, variant {variant}, instance type {instance_type}"]
    # The solution's build_scripts/inference/start.sh (v1.6.0+) runs `printenv` at start: every variable of the
    # model's Environment, secrets included, goes to CloudWatch Logs as it is.
    lines += [f"{k}={v}" for k, v in sorted(env.items())]
    if instance_type.startswith(("ml.g", "ml.p")):
        lines += [
            "+------------------------------------------------------------------------------+",
            "| NVIDIA-SMI 535.183.01     Driver Version: 535.183.01   CUDA Version: 12.2     |",
            "|  0  NVIDIA A10G      On  | 00000000:00:1E.0 Off |     0MiB / 23028MiB |  0%  |",
            "+------------------------------------------------------------------------------+",
        ]
    lines += ["Filesystem      Size  Used Avail Use% Mounted on",
              "overlay         125G   31G   95G  25% /"]
    return lines


def boot(behavior: Behavior, endpoint: str, variant: str, instance_type: str, env: dict,
         startup_timeout: Optional[int]) -> Boot:
    """The script for one instance of `variant` starting this image."""
    timeout = startup_window(startup_timeout)
    arm_image = behavior.architecture == "arm64"
    if arm_image != is_graviton(instance_type) or behavior.kind == "exec-format":
        # An image built for another CPU architecture cannot even exec its entrypoint; `exec-format` is
        # one whose config claims the instance's architecture but whose entrypoint binary is for the
        # other CPU (built under emulation, or a binary copied in), so no pre-flight can tell.
        entry = "/usr/local/bin/dockerd-entrypoint.py"
        return Boot(start_lines=[f"exec {entry}: exec format error"], exits=True)
    lines = _banner(endpoint, variant, instance_type, env)
    kind = behavior.kind
    if kind == "missing-env" and behavior.arg and env.get(behavior.arg):
        kind = "healthy"  # the variable the image needs is set in the model's environment
    uvicorn_start = ["INFO:     Started server process [1]", "INFO:     Waiting for application startup.",
                     "INFO:     Application startup complete."]
    serving = uvicorn_start + ["INFO:     Uvicorn running on http://0.0.0.0:8080 (Press CTRL+C to quit)"]
    if kind in ("healthy", "invoke-error"):
        return Boot(start_lines=lines + serving, ready_after=BOOT_HEALTHY, invoke_error=kind == "invoke-error")
    if kind == "slow-start":
        needed = float(behavior.arg or 300)
        slow = lines + ["Loading model weights from /opt/ml/model ..."]
        if needed <= timeout:
            return Boot(start_lines=slow, ready_after=needed)
        return Boot(start_lines=slow, failure_lines=["Still loading model weights ..."])
    if kind == "crash":
        return Boot(start_lines=lines + [
            "Traceback (most recent call last):",
            '  File "/opt/program/serve.py", line 14, in <module>',
            "    from pipeline import load_pipeline",
            '  File "/opt/program/pipeline.py", line 3, in <module>',
            "    import xformers.ops",
            "ModuleNotFoundError: No module named 'xformers'",
        ], exits=True)
    if kind == "ping-timeout":
        return Boot(start_lines=lines + ["Loading model weights from /opt/ml/model ...",
                                         "Compiling UNet with torch.compile, this can take a while ..."])
    if kind == "wrong-port":
        return Boot(start_lines=lines + uvicorn_start + [
            "INFO:     Uvicorn running on http://127.0.0.1:8000 (Press CTRL+C to quit)"])
    if kind == "oom":
        return Boot(start_lines=lines + [
            "Loading pipeline components...: 100%|##########| 7/7 [00:04<00:00,  1.52it/s]",
            "Traceback (most recent call last):",
            '  File "/opt/program/serve.py", line 22, in <module>',
            '    pipe = pipe.to("cuda")',
            "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 22.20 GiB total "
            "capacity; 20.91 GiB already allocated; 1.05 GiB free; 21.03 GiB reserved in total by PyTorch) If "
            "reserved memory is >> allocated memory try setting max_split_size_mb to avoid fragmentation.",
        ], exits=True)
    if kind == "missing-env":
        return Boot(start_lines=lines + [f"{behavior.arg or 'ESD_VERSION'} is not set"], exits=True)
    return Boot(start_lines=lines + serving, ready_after=BOOT_HEALTHY)


def invocation_error_lines() -> list:
    return [
        "ERROR:    Exception in ASGI application",
        "Traceback (most recent call last):",
        '  File "/opt/program/serve.py", line 61, in invocations',
        "    image = pipe(**payload).images[0]",
        "RuntimeError: expected scalar type Half but found Float",
        'INFO:     10.2.0.2:40112 - "POST /invocations HTTP/1.1" 500 Internal Server Error',
    ]
