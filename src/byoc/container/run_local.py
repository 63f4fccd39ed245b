"""`byoc test-image`: run an image locally the way SageMaker does and check the hosting contract.

`<builder> info` first: a builder whose engine does not answer is refused before anything runs.
`<builder> run -d --name byoc-test-<id> -p <port>:8080 [-e NAME]... [--gpus all]
[-v <model dir>:/opt/ml/model] IMAGE serve`: SageMaker's command (`docker run <image> serve`), its
port and its model directory. Environment values travel in the builder's environment (`-e NAME`),
never in argv. The container's log is streamed while check-contract runs; a container that exits
ends the wait at once. The container is removed afterwards in every case: success, failure,
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from byoc.aws.client import Aws
from byoc.container import build as buildops
from byoc.container import contract
from byoc.errors import BadInput, ByocError
from byoc.images import ref as image_ref

CONTAINER_PORT = 8080
MODEL_MOUNT = "/opt/ml/model"
LOG_LINES_KEPT = 5000
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_GPUS_RE = re.compile(r"^(all|\d+|device=\d+(,\d+)*)$")


@dataclass
class TestPlan:
    builder: buildops.Builder
    image: str
    name: str
    port: int
    env: dict
    gpus: Optional[str]
    model_dir: Optional[str]

    def run_argv(self) -> list:
        argv = [self.builder.name, "run", "--detach", "--name", self.name,
                "--publish", f"{self.port}:{CONTAINER_PORT}"]
        for key in self.env:
            argv += ["--env", key]
        argv += gpu_flags(self.builder.name, self.gpus)
        if self.model_dir:
            argv += ["--volume", f"{self.model_dir}:{MODEL_MOUNT}"]
        return argv + [self.image, "serve"]

    def logs_argv(self) -> list:
        return [self.builder.name, "logs", "--follow", self.name]

    def inspect_argv(self) -> list:
        return [self.builder.name, "inspect", "--format", "{{.State.ExitCode}}", self.name]

    def rm_argv(self) -> list:
        return [self.builder.name, "rm", "--force", self.name]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class TestResult:
    plan: TestPlan
    report: contract.Report
    log: list  # the container's log lines
    removed: bool
    exit_code: Optional[str] = None  # the container's, when it stopped by itself
    findings: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"image": self.plan.image, "container": self.plan.name, "command": " ".join(self.plan.run_argv()),
                "result": "PASS" if self.report.ok else "FAIL", "contract": self.report.to_dict(),
                "container_exit_code": self.exit_code, "removed": self.removed,
                "log_lines": len(self.log), "diagnosis": self.findings}


def gpu_flags(builder: str, gpus: Optional[str]) -> list:
    """docker and finch take --gpus; podman selects NVIDIA GPUs through CDI devices."""
    if not gpus:
        return []
    if builder != "podman":
        return ["--gpus", gpus]
    if gpus == "all":
        return ["--device", "nvidia.com/gpu=all"]
    if gpus.startswith("device="):
        return [a for i in gpus[len("device="):].split(",") for a in ("--device", f"nvidia.com/gpu={i}")]
    raise BadInput(f"podman cannot take --gpus {gpus}.", "Use --gpus all or --gpus device=0[,1...] with podman.")


def parse_env(pairs: Sequence[str]) -> dict:
    env = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not _ENV_NAME_RE.match(key):
            raise BadInput(f"--env '{pair}' is not NAME=VALUE.", "Pass --env NAME=VALUE, e.g. --env ESD_VERSION=v1.8.0.")
        env[key] = value
    return env


def plan_test(image: str, env_pairs: Sequence[str] = (), gpus: Optional[str] = None, model_dir: Optional[str] = None,
              port: int = CONTAINER_PORT, builder: Optional[str] = None) -> TestPlan:
    """Validate everything (the builder's engine answers `info`) before anything runs."""
    if not image or not re.match(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$", image):
        raise BadInput(f"'{image}' is not an image reference.", "Pass IMAGE as repository[:tag] or repository@sha256:digest.")
    env = parse_env(env_pairs)
    if gpus and not _GPUS_RE.match(gpus):
        raise BadInput(f"--gpus '{gpus}' is not understood.", "Use --gpus all, a count (--gpus 1) or --gpus device=0[,1].")
    mount = None
    if model_dir:
        path = Path(model_dir).expanduser()
        if not path.is_dir():
            raise BadInput(f"Model directory '{model_dir}' does not exist.",
                           "Pass the directory holding what SageMaker would unpack from ModelDataUrl.")
        mount = str(path.resolve())
    if not 1 <= port <= 65535:
        raise BadInput(f"Port {port} is out of range.", "Pass --port between 1 and 65535.")
    found = buildops.find_builder(builder)
    gpu_flags(found.name, gpus)
    buildops.check_engine(found)  # a CLI without its engine: one clear error, no container to clean up
    return TestPlan(builder=found, image=image, name=f"byoc-test-{uuid.uuid4().hex[:10]}", port=port,
                    env=env, gpus=gpus, model_dir=mount)


def _quiet(argv: list, path: str, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    return subprocess.run([path] + argv[1:], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace", env=env)


class _Logs:
    """Follows `<builder> logs --follow` in a thread; ended() says the container stopped."""

    def __init__(self, plan: TestPlan, on_line: Callable[[str], None]) -> None:
        self.name = plan.name
        self.events: collections.deque = collections.deque(maxlen=LOG_LINES_KEPT)  # CloudWatch-shaped
        self.proc = subprocess.Popen([plan.builder.path] + plan.logs_argv()[1:], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     errors="replace", bufsize=1)
        self.thread = threading.Thread(target=self._pump, args=(on_line,), name="byoc-logs", daemon=True)
        self.thread.start()

    def _pump(self, on_line: Callable[[str], None]) -> None:
        stream = f"local/{self.name}"
        for raw in self.proc.stdout or ():
            line = raw.rstrip("\n")
            self.events.append({"timestamp": int(time.time() * 1000), "message": line, "logStreamName": stream})
            on_line(line)

    def ended(self) -> bool:
        return self.proc.poll() is not None and not self.thread.is_alive()

    def finish(self, timeout: float = 5.0) -> None:
        """Wait for the log to end (the container is gone), then stop following anyway."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.thread.join(timeout=timeout)


def diagnose(events: list) -> list:
    """The diagnosis catalogue over the container's log, most likely cause first."""
    from byoc.diagnosis import match

    return [f.to_dict() for f in match(events=events)]


def _terminate_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_test(plan: TestPlan, payload: Optional[bytes], content_type: str, accept: str, startup_timeout: float,
             invocation_timeout: float, on_log: Callable[[str], None], progress: Callable[[str], None],
             aws_for_region: Optional[Callable[[str], Aws]] = None) -> TestResult:
    """Run the container, check the contract, diagnose the log on failure, always remove it."""
    b = plan.builder
    ref = image_ref.try_parse(plan.image)
    if ref and aws_for_region:
        try:
            buildops.login(aws_for_region, b, [(ref.registry, ref.region)], progress)
        except ByocError as exc:  # a local image (built without --push) needs no login
            progress(f"warning: no login to {ref.registry} ({exc.message}); running the local image if there is one")
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    logs = None
    exit_code: dict = {}
    try:
        progress(f"Starting {plan.image} as {plan.name}: {' '.join(plan.run_argv())}")
        started = _quiet(plan.run_argv(), b.path, env=dict(os.environ, **plan.env))
        if started.returncode != 0:
            raise buildops.builder_error(b, f"Starting {plan.image}", started.returncode,
                                         (started.stdout + started.stderr).splitlines(),
                                         "Check the image name (build it first with `byoc build`) and the output above.")
        logs = _Logs(plan, on_log)

        def stopped() -> Optional[str]:
            if not logs.ended():
                return None
            if "code" not in exit_code:
                out = _quiet(plan.inspect_argv(), b.path)
                exit_code["code"] = out.stdout.strip() if out.returncode == 0 else None
            code = exit_code["code"]
            return f"it exited with code {code}" if code not in (None, "") else "it is no longer running"

        report = contract.check(plan.url, payload, content_type, accept, startup_timeout, invocation_timeout,
                                progress=progress, should_stop=stopped)
    finally:
        removed = _remove(plan, progress)
        if logs is not None:
            logs.finish()  # the log ends with the container: every line is in before diagnosis
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    events = list(logs.events)
    return TestResult(plan=plan, report=report, log=[e["message"] for e in events], removed=removed,
                      exit_code=exit_code.get("code"), findings=[] if report.ok else diagnose(events))


def _remove(plan: TestPlan, progress: Callable[[str], None]) -> bool:
    """`<builder> rm --force`; True when the container is gone (or never existed)."""
    done = _quiet(plan.rm_argv(), plan.builder.path)
    text = (done.stderr or done.stdout).strip()
    if done.returncode == 0 or "no such container" in text.lower():
        return True
    progress(f"warning: could not remove container {plan.name}: {text}")
    return False
