"""Delete what an update no longer needs: failed attempts and revisions beyond --keep.

Never deleted: revision 0 (the endpoint's original model and config), the live config and its
models, and any config or model that any endpoint of the region uses. Only what byoc tagged as one
of the endpoint's revisions is swept (so where tagging is denied, nothing is).
"""

from __future__ import annotations

from byoc.endpoint import revisions
from byoc.errors import AuthError, AwsError


def in_use(aws) -> tuple:
    """(configs, models) used by any endpoint of the region, live or being deployed."""
    configs, models = set(), set()
    for page in aws.sagemaker.paginate("list_endpoints", MaxResults=100):
        for e in page.get("Endpoints", []):
            try:
                d = aws.sagemaker.describe_endpoint(EndpointName=e["EndpointName"])
            except AwsError:
                continue
            configs.add(d["EndpointConfigName"])
            pending = (d.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
            if pending:
                configs.add(pending)
    for name in configs:
        try:
            cfg = aws.sagemaker.describe_endpoint_config(EndpointConfigName=name)
        except AwsError:
            continue
        models.update(v["ModelName"] for v in cfg.get("ProductionVariants", []) + (cfg.get("ShadowProductionVariants") or []))
    return configs, models


def delete_revision(aws, config: str, models: list, used: tuple) -> list:
    """Delete a config and its models unless used; returns what was deleted."""
    used_configs, used_models = used
    deleted = []
    if config and config not in used_configs and revisions.number(config) is not None:
        if _delete(aws.sagemaker.delete_endpoint_config, EndpointConfigName=config):
            deleted.append(config)
    for model in models:
        if model not in used_models and revisions.number(model) is not None:
            if _delete(aws.sagemaker.delete_model, ModelName=model):
                deleted.append(model)
    return deleted


def _delete(call, **params) -> bool:
    """Delete one resource; False when it was already gone."""
    try:
        call(**params)
        return True
    except AwsError as exc:
        if "Could not find" not in exc.aws_message:
            raise
        return False


def sweep(aws, endpoint: str, live_config: str, model_stems: list, keep: int) -> list:
    """Keep the newest `keep` revisions (the live one included); delete older byoc-made ones,
    and models of this endpoint's revisions that no retained config references."""
    configs = revisions.retained_configs(aws, endpoint, live_config)
    configs.sort(key=lambda n: revisions.number(n) or 0, reverse=True)
    keep_set = set(configs[:max(keep, 1)]) | {live_config}
    doomed = [c for c in configs if c not in keep_set]
    orphans = _orphan_models(aws, endpoint, model_stems, [c for c in configs if c in keep_set])
    if not doomed and not orphans:
        return []
    used = in_use(aws)
    deleted = []
    for name in doomed:
        try:
            cfg = aws.sagemaker.describe_endpoint_config(EndpointConfigName=name)
            models = [aws.sagemaker.describe_model(ModelName=v["ModelName"])
                      for v in cfg.get("ProductionVariants", [])]
        except AwsError:
            continue
        if _ours(aws, cfg["EndpointConfigArn"], endpoint):
            deleted += delete_revision(aws, name, [m["ModelName"] for m in models
                                                   if _ours(aws, m["ModelArn"], endpoint)], used)
    deleted += delete_revision(aws, "", orphans, used)
    return deleted


def _ours(aws, arn: str, endpoint: str) -> bool:
    """Tagged by byoc as a revision after 0 of `endpoint`. A name ending in -r<N> proves nothing: the
    endpoint's own original config may be called so, and byoc never deletes revision 0."""
    try:
        tags = revisions.list_tags(aws, arn)
    except (AwsError, AuthError):
        return False
    return tags.get(revisions.T_ENDPOINT) == endpoint and tags.get(revisions.T_REVISION) not in (None, "0")


def _orphan_models(aws, endpoint: str, stems: list, configs: list) -> list:
    """Models named <stem>-r<N> that none of `configs` references (left by an interrupted run)."""
    referenced = set()
    for name in configs:
        try:
            cfg = aws.sagemaker.describe_endpoint_config(EndpointConfigName=name)
        except AwsError:
            continue
        referenced.update(v["ModelName"] for v in cfg.get("ProductionVariants", []))
    found = []
    for stem in dict.fromkeys(stems):
        for page in aws.sagemaker.paginate("list_models", NameContains=stem, MaxResults=100):
            for m in page.get("Models", []):
                name = m["ModelName"]
                if revisions.base(name) == stem and revisions.number(name) is not None and name not in referenced \
                        and _ours(aws, m["ModelArn"], endpoint):
                    found.append(name)
    return found
