"""One sandbox scenario run by an installed wheel's `byoc` (CI: the wheel is the product).

Run with the wheel's virtualenv's python, from a directory outside the source tree, so that
byoc, its data files and its console script all come from the wheel. Every data table is read:
policy (permissions, IAM actions, partitions), init --base dlc (DLC registries), a failed update's
diagnosis (signatures).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import byoc
from byoc.demo import sandbox_environment, seed_deployment

BYOC = str(Path(sys.executable).parent / "byoc")


def run(*argv: str, expect: int = 0) -> str:
    proc = subprocess.run([BYOC, *argv], capture_output=True, text=True)
    if proc.returncode != expect:
        sys.exit(f"byoc {' '.join(argv)}: exit {proc.returncode}, expected {expect}\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def main() -> None:
    assert "site-packages" in byoc.__file__, f"byoc imported from {byoc.__file__}, not from the wheel"
    with sandbox_environment(time_scale=0.05) as sb:
        dep = seed_deployment(sb)
        endpoint = dep["endpoints"][0]  # the solution's async endpoint
        policy = json.loads(run("policy", "--features", "all"))
        assert policy["Statement"], policy
        with tempfile.TemporaryDirectory() as tmp:
            run("init", tmp, "--base", "dlc")
            assert "FROM " in (Path(tmp) / "Dockerfile").read_text()
        updated = json.loads(run("update", endpoint, dep["custom_image"], "--yes", "--output", "json"))
        assert updated["result"] == "updated", updated
        run("verify", endpoint)
        failed = json.loads(run("update", endpoint, dep["broken_image"], "--yes", "--output", "json", expect=1))
        assert failed["result"] == "failed" and failed.get("diagnosis"), failed
    print(f"wheel scenario: byoc {byoc.__version__} from {Path(byoc.__file__).parent}: policy, init, update, "
          "verify, failed update diagnosed")


if __name__ == "__main__":
    main()
