"""byoc as a package: its version line and what `byoc --version` may load (issue 13)."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata

import byoc
from support.cli import run_cli


def test_version_names_byoc_python_and_botocore(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0
    assert out.splitlines() == [
        f"byoc {byoc.__version__}",
        f"Python {platform.python_version()} ({platform.python_implementation()})",
        f"botocore {metadata.version('botocore')}",
    ]


def test_version_and_help_load_neither_boto3_nor_botocore():
    code = ("import sys; from byoc.cli.main import main\n"
            "for argv in (['--version'], ['--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print('boto3' in sys.modules, 'botocore' in sys.modules, file=sys.stderr)")
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr
    assert err.split() == ["False", "False"]
