"""Running the byoc CLI in-process from a test."""

from __future__ import annotations

import pytest

from byoc.cli.main import main


def run_cli(capsys, *argv: str) -> tuple:
    """(exit code, stdout, stderr) of `byoc <argv>` run in this process."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out, err = capsys.readouterr()
    return info.value.code, out, err


def first_error(err: str) -> str:
    """The `error:` line (stderr may also carry other output)."""
    return next(line for line in err.splitlines() if line.startswith("error:"))
