"""Typed results of update, restore and rollback, with the exit codes the CLI documents."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from byoc.errors import EXIT_DECLINED, EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT

EXIT_BY_RESULT = {"updated": EXIT_OK, "unchanged": EXIT_OK, "planned": EXIT_OK, "in-progress": EXIT_OK,
                  "failed": EXIT_FAILED, "failing": EXIT_FAILED, "timeout": EXIT_TIMEOUT, "declined": EXIT_DECLINED}


@dataclass
class UpdateResult:
    endpoint: str
    result: str  # updated | unchanged | failed | failing | timeout | planned | in-progress | declined
    image: Optional[str]
    digest: Optional[str]
    revision: int
    previous_image: Optional[str]
    endpoint_config: str
    model: Optional[str]
    elapsed_seconds: float = 0.0
    diagnosis: list = field(default_factory=list)
    strategy: str = "blue-green"
    failure_reason: Optional[str] = None
    warnings: list = field(default_factory=list)
    downtime_seconds: Optional[float] = None
    resume_command: Optional[str] = None
    swept: list = field(default_factory=list)
    executed: list = field(default_factory=list)  # the plan's steps that ran, in order (deploy/steps.py)
    plan: Optional[dict] = None
    verdict_seconds: Optional[float] = None  # UpdateEndpoint to byoc's early verdict
    rollback_expected_at: Optional[str] = None  # when SageMaker's startup window closes (UTC)
    interrupted: bool = False  # Ctrl-C stopped byoc watching; SageMaker goes on (the CLI exits 130)

    @property
    def exit_code(self) -> int:
        return EXIT_BY_RESULT.get(self.result, EXIT_FAILED)

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in (
            "endpoint", "result", "image", "digest", "revision", "previous_image", "endpoint_config", "model",
            "elapsed_seconds", "diagnosis", "strategy", "failure_reason", "warnings", "downtime_seconds",
            "resume_command", "swept", "interrupted", "executed")}
        if self.verdict_seconds is not None:
            out["verdict_seconds"] = self.verdict_seconds
            out["rollback_expected_at"] = self.rollback_expected_at
        if self.plan is not None:
            out["plan"] = self.plan
        return out
