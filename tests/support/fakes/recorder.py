"""Put the recording fake builder (builder.py) on PATH and read what it recorded."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
EXAMPLE_SERVE = ROOT / "examples" / "serve"
BROKEN_SERVE = HERE / "broken_serve.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeBuilder:
    """A bin directory with fake docker/finch/podman wrappers and the state they record."""

    def __init__(self, root: Path, names=("docker",)):
        self.bin = root / "bin"
        self.state = root / "state"
        self.bin.mkdir(parents=True)
        self.state.mkdir()
        for name in names:
            wrapper = self.bin / name
            wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{HERE / "builder.py"}" {name} "$@"\n')
            wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)

    def env(self, path_rest: str = "") -> dict:
        """PATH with only the fake builders (plus `path_rest`), and the state directory."""
        return {"PATH": os.pathsep.join(p for p in (str(self.bin), path_rest) if p),
                "FAKE_BUILDER_STATE": str(self.state)}

    def calls(self) -> list:
        path = self.state / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def argvs(self) -> list:
        return [c["argv"] for c in self.calls()]

    def logins(self) -> dict:
        path = self.state / "logins.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def program(self, image: str, argv: list) -> None:
        """What `run IMAGE` starts (the image's entrypoint, as a local program)."""
        path = self.state / "programs.json"
        programs = json.loads(path.read_text()) if path.exists() else {}
        programs[image] = argv
        path.write_text(json.dumps(programs))

    def example(self, image: str) -> None:
        self.program(image, [sys.executable, str(EXAMPLE_SERVE)])

    def broken(self, image: str, mode: str) -> None:
        self.program(image, [sys.executable, str(BROKEN_SERVE), mode])

    def container_dirs(self) -> list:
        root = self.state / "containers"
        return sorted(root.iterdir()) if root.exists() else []
