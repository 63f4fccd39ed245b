"""Record the outcome of a deployment byoc started but did not watch to its end (`update --no-wait`,
an interrupted run): whichever byoc command sees it settle records it and sweeps, as `update` would.

A deployed attempt becomes `deployed` and the revisions beyond --keep are swept; a failed one becomes
`failed` and its own new model and config are deleted (a rollback made none: its target is kept; nor
is a config deleted whose byoc:created-at is not the attempt's own stamp).
"""

from __future__ import annotations

from byoc.aws.client import Aws
from byoc.deploy import sweep
from byoc.endpoint import lock, revisions
from byoc.endpoint import view as endpoint_view
from byoc.errors import AwsError

IN_PROGRESS = "in-progress "


def record(aws: Aws, endpoint: str, keep: int = 5) -> list:
    """[(revision, "deployed" | "failed", swept names)] for each attempt still recorded in progress
    on a settled endpoint; nothing while SageMaker is busy or another byoc run holds the endpoint."""
    view = endpoint_view.load(aws, endpoint)
    if view.status in endpoint_view.BUSY:
        return []
    arn = view.endpoint["EndpointArn"]
    tags = revisions.list_tags(aws, arn)
    if lock.holder(tags.get(revisions.T_LOCK)):
        return []
    original = tags.get(revisions.T_ORIGINAL)
    live_n = 0 if view.config_name == original else revisions.number(view.config_name)
    out = []
    for key, value in sorted(tags.items()):
        m = revisions.OUTCOME_TAG.match(key)
        if not m or not value.startswith(IN_PROGRESS):
            continue
        n, rest = int(m.group(1)), value[len("in-progress"):]
        if view.status == "InService" and live_n == n:
            revisions.record_outcome(aws, arn, key, "deployed" + rest, tags)
            stems = [revisions.base(name) for name in view.models]
            out.append((n, "deployed", sweep.delete_planned(
                aws, endpoint, sweep.plan(aws, endpoint, view.config_name, stems, keep))))
        else:
            revisions.record_outcome(aws, arn, key, "failed" + rest, tags)
            rollback = m.group(2) is not None  # made nothing: its target revision stays
            out.append((n, "failed", [] if rollback else _delete_own_revision(aws, view, n,
                                                                               revisions.parse_outcome(value))))
    return out


def _delete_own_revision(aws: Aws, view: endpoint_view.EndpointView, n: int, attempt: dict) -> list:
    for name in revisions.retained_configs(aws, view.name, view.config_name):
        if revisions.number(name) != n:
            continue
        try:
            cfg = aws.sagemaker.describe_endpoint_config(EndpointConfigName=name)
        except AwsError:
            return []
        made = revisions.list_tags(aws, cfg["EndpointConfigArn"]).get(revisions.T_AT)
        if not made or made != attempt.get("created_at"):
            return []  # not made by this attempt (a rollback's target): it stays
        models = [v["ModelName"] for v in cfg.get("ProductionVariants", [])]
        return sweep.delete_unused(aws, view.name, name, models)
    return []
