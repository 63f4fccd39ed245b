"""Apply a plan (`apply`) or show it without changing anything (`dry_run`): the one entry point the CLI,
the library (`byoc.update` ...) and `byoc fleet` share. deploy/executor.py runs the steps."""

from __future__ import annotations

import time
from typing import Optional

from byoc.aws.client import Aws
from byoc.deploy import executor
from byoc.deploy.executor import Events, result_of
from byoc.deploy.plan import UpdatePlan, with_keep
from byoc.deploy.results import UpdateResult


def apply(aws: Aws, plan: UpdatePlan, *, wait: bool = True, timeout: float = 3600.0, keep: Optional[int] = None,
          events: Events = None, follow_logs: bool = True, fail_fast: bool = False) -> UpdateResult:
    """Run the plan and return its outcome (updated, unchanged, failed, failing, timeout, in-progress).
    `keep` other than the plan's plans the sweep again for it. `fail_fast`: return `failing` at the
    early verdict instead of waiting for SageMaker's rollback."""
    if keep is not None and keep != plan.keep:
        plan = with_keep(aws, plan, keep)
    return executor.Executor(aws, plan, wait=wait, timeout=timeout, events=events, follow_logs=follow_logs,
                             fail_fast=fail_fast).run()


def dry_run(plan: UpdatePlan) -> UpdateResult:
    """What --dry-run and `dry_run=True` return: nothing changed, the whole plan under `plan`."""
    result = result_of(plan, "unchanged" if plan.mode == "unchanged" else "planned", time.monotonic())
    result.plan = plan.to_dict()
    return result
