"""Plan the deletion of what an update no longer needs (revisions beyond --keep, models an interrupted
run left) and delete a revision when the executor runs such a step (or a failed attempt's).

The deletions are decided with the plan, so --dry-run lists them; what another endpoint uses is
checked when they run (and kept).

Never deleted: revision 0 (the endpoint's original model and config), the live config and its
models, anything byoc did not tag as a revision of this endpoint (so where tagging is denied,
nothing is), and any config or model another endpoint uses.

That last promise costs no scan of the region. SageMaker does not refuse to delete a config or
model an endpoint uses, but an endpoint can only use a config that existed when the endpoint was
created or last updated (CreateEndpoint/UpdateEndpoint name an existing config, which names
existing models), and both set its LastModifiedTime. So only endpoints modified after the
oldest candidate was created can use a candidate: ListEndpoints(LastModifiedTimeAfter=...)
names them, server-side, and only those are described. When more than MAX_RECENT of them
changed meanwhile, or one cannot be read, nothing is deleted this time (the next update tries
again): the sweep never deletes what it could not check. See docs/update.md, "How history is kept".
"""

from __future__ import annotations

import datetime
from typing import Any, Optional

from byoc.aws.client import Aws, unless_gone
from byoc.deploy.steps import DeleteRevision
from byoc.endpoint import revisions
from byoc.errors import AuthError, AwsError

MAX_RECENT = 20  # other endpoints changed since the oldest candidate that a sweep describes at most
CLOCK_MARGIN = datetime.timedelta(seconds=30)  # CreationTime and LastModifiedTime: SageMaker's clocks


def used_elsewhere(aws: Aws, endpoint: str, since: Any) -> Optional[tuple]:
    """(configs, models) that endpoints other than `endpoint` modified after `since` use (live or
    being deployed); None when that cannot be told cheaply (too many, or one is unreadable)."""
    names = []
    for page in aws.sagemaker.paginate("list_endpoints", LastModifiedTimeAfter=since - CLOCK_MARGIN,
                                       MaxResults=MAX_RECENT + 1):
        names += [e["EndpointName"] for e in page.get("Endpoints", []) if e["EndpointName"] != endpoint]
        if len(names) > MAX_RECENT:
            return None
    try:
        return used_by(aws, names)
    except (AuthError, AwsError):
        return None


def used_by(aws: Aws, names: list) -> tuple:
    """(configs, models) the endpoints `names` use, live or being deployed (gone ones are skipped)."""
    configs: set = set()
    models: set = set()
    for d in filter(None, (unless_gone(aws.sagemaker.describe_endpoint, EndpointName=n) for n in names)):
        configs.add(d["EndpointConfigName"])
        pending = (d.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
        if pending:
            configs.add(pending)
    for cfg in filter(None, (unless_gone(aws.sagemaker.describe_endpoint_config, EndpointConfigName=n)
                             for n in list(configs))):
        models.update(v["ModelName"] for v in cfg.get("ProductionVariants", [])
                      + (cfg.get("ShadowProductionVariants") or []))
    return configs, models


def delete_unused(aws: Aws, endpoint: str, config: Optional[str], models: list) -> list:
    """Delete one revision of `endpoint` that it does not use (a failed or refused attempt) unless
    another endpoint uses it; returns what was deleted."""
    described = [unless_gone(aws.sagemaker.describe_endpoint_config, EndpointConfigName=c) for c in [config] if c] + \
        [unless_gone(aws.sagemaker.describe_model, ModelName=m) for m in models]
    created = [d["CreationTime"] for d in described if d]
    if not created:
        return []
    used = used_elsewhere(aws, endpoint, min(created))
    return [] if used is None else delete_revision(aws, config, models, used)


def delete_revision(aws: Aws, config: Optional[str], models: list, used: tuple) -> list:
    """Delete a byoc-made (-r<N>) config and models unless in `used` (configs, models); returns what was
    deleted (what was already gone is skipped)."""
    used_configs, used_models = used
    deleted = []
    if config and config not in used_configs and revisions.number(config) is not None:
        if unless_gone(aws.sagemaker.delete_endpoint_config, EndpointConfigName=config) is not None:
            deleted.append(config)
    for model in models:
        if model not in used_models and revisions.number(model) is not None:
            if unless_gone(aws.sagemaker.delete_model, ModelName=model) is not None:
                deleted.append(model)
    return deleted


def plan(aws: Aws, endpoint: str, live_config: str, model_stems: list, keep: int, interrupted: Optional[dict] = None,
         listed: Optional[list] = None) -> list:
    """DeleteRevision steps for once `live_config` is live: keep the newest `keep` revisions (the live
    one included); delete older byoc-made ones and the models of `interrupted` attempts (revision ->
    when it began) whose config does not exist. `listed`: the endpoint's configs as the plan listed
    them (the live one may be made after). Costs O(1) requests per candidate, whatever the region holds."""
    listed = revisions.listed_configs(aws, endpoint, live_config) if listed is None else listed
    ranked = sorted(listed, key=lambda c: revisions.number(c["EndpointConfigName"]) or 0, reverse=True)
    numbers = [revisions.number(c["EndpointConfigName"]) or 0 for c in ranked]
    live_number = revisions.number(live_config) or 0
    # The newest `keep` revisions, the live one (made by this run, maybe after `listed`) among them.
    keep_numbers = sorted(set(numbers) | {live_number}, reverse=True)[:max(keep, 1)]
    keep_names = {c["EndpointConfigName"] for c in ranked
                  if (revisions.number(c["EndpointConfigName"]) or 0) in keep_numbers} | {live_config}
    stems = list(dict.fromkeys(model_stems))
    doomed = []  # (config or "", [models], created)
    for c in ranked:
        name = c["EndpointConfigName"]
        if name in keep_names or not _ours(aws, c["EndpointConfigArn"], endpoint):
            continue
        n = revisions.number(name)
        models = [m for m in (revisions.model_names(stems, n) if n is not None else [])
                  if _ours(aws, _model_arn(c["EndpointConfigArn"], m), endpoint)]
        doomed.append((name, models, c["CreationTime"]))
    if interrupted:
        config_numbers = {revisions.number(c["EndpointConfigName"]) for c in listed}
        # An attempt's start precedes its model's creation: a window from it is wider, so still sound.
        doomed += [("", [name], began)
                   for name, began in _orphan_models(aws, endpoint, stems, interrupted, config_numbers)]
    return [DeleteRevision(revision=revisions.number(config or models[0]), config=config or None,
                           models=tuple(models), created=created,
                           reason=f"beyond --keep {keep}" if config else
                           "no config of its revision exists (left by an interrupted run)")
            for config, models, created in doomed if config or models]


def delete_planned(aws: Aws, endpoint: str, deletions: list) -> list:
    """Run planned DeleteRevision steps now, outside an update (deploy/settle.py); returns what was deleted.
    What other endpoints use is read once, as the executor does."""
    since = [d.created for d in deletions if d.created]
    used = used_elsewhere(aws, endpoint, min(since)) if since else None
    if used is None:
        return []
    return [name for d in deletions for name in delete_revision(aws, d.config, list(d.models), used)]


def _model_arn(config_arn: str, model: str) -> str:
    """A model's ARN beside a config's (SageMaker ARNs carry names in lower case)."""
    return config_arn.split(":endpoint-config/", 1)[0] + ":model/" + model.lower()


def _ours(aws: Aws, arn: str, endpoint: str) -> bool:
    """Tagged by byoc as a revision after 0 of `endpoint`. A name ending in -r<N> proves nothing: the
    endpoint's own original config may be called so, and byoc never deletes revision 0."""
    try:
        tags = revisions.list_tags(aws, arn)
    except (AwsError, AuthError):
        return False
    return tags.get(revisions.T_ENDPOINT) == endpoint and tags.get(revisions.T_REVISION) not in (None, "0")


def _orphan_models(aws: Aws, endpoint: str, stems: list, interrupted: dict, config_numbers: set) -> list:
    """(model, when its attempt began) of attempts an earlier run left in progress (`interrupted`:
    revision -> start) whose config does not exist (the run stopped between CreateModel and
    CreateEndpointConfig), tagged as this endpoint's. Their names follow from the revision number."""
    found = []
    for n, began in interrupted.items():
        if n in config_numbers:
            continue
        for name in revisions.model_names(stems, n):
            arn = f"arn:{aws.partition.name}:sagemaker:{aws.region}:{aws.account}:model/{name.lower()}"
            if _ours(aws, arn, endpoint):
                found.append((name, began))
    return found
