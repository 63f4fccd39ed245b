"""Rollback and restore: point the endpoint back at a retained revision, or at the default image."""

from __future__ import annotations

from typing import Any, Optional

from byoc.aws.client import Aws
from byoc.deploy import guardrails
from byoc.deploy.plan import UpdatePlan, assemble, check_status, plan_autoscaling, plan_update, set_idle
from byoc.endpoint import revisions
from byoc.endpoint import view as endpoint_view
from byoc.errors import BadInput


def plan_rollback(aws: Aws, endpoint: str, to: Optional[int] = None, deployment_config: Optional[dict] = None,
                  startup_timeout: Optional[int] = None, keep: int = 5) -> UpdatePlan:
    """UpdateEndpoint back to revision `to` (default: the newest retained one that is not live).
    With `startup_timeout` the revision's image is deployed as a new revision with that window."""
    view = endpoint_view.load(aws, endpoint)
    tags = revisions.list_tags(aws, view.endpoint["EndpointArn"])
    revs = revisions.history(aws, view, tags)
    usable = [r for r in revs if r.config and r.outcome != "failing"]  # SageMaker is still rolling that back
    if to is None:
        candidates = [r for r in usable if not r.live]
        if not candidates:
            raise BadInput(f"Endpoint {endpoint} has no earlier revision to roll back to.",
                           f"See `byoc history {endpoint}`; use `byoc restore {endpoint}` for the default image.")
        target = candidates[0]
    else:
        matches = [r for r in usable if r.number == to]
        if not matches:
            known = ", ".join(str(r.number) for r in usable) or "none"
            raise BadInput(f"Revision {to} of {endpoint} is not retained (retained: {known}).",
                           f"See `byoc history {endpoint}`; `byoc update {endpoint} IMAGE` deploys any image again.")
        target = matches[0]
    if startup_timeout and target.image:
        pinned = target.image if "@" in target.image or not target.digest else f"{target.image}@{target.digest}"
        return plan_update(aws, endpoint, pinned, force=True, deployment_config=deployment_config,
                           startup_timeout=startup_timeout, keep=keep)
    check_status(view, "blue-green", resuming=False, tags=tags)
    variants = view.variants
    previous = variants[0] if variants else None
    plan = UpdatePlan(
        endpoint=endpoint, region=aws.region, strategy="blue-green", image=target.image or "",
        target=target.image or "", digest=target.digest or "", revision=target.number,
        previous_image=previous.image if previous else None, previous_digest=previous.digest if previous else None,
        previous_config=view.config_name, endpoint_config=target.config or "", models={m: m for m in target.models or []},
        mode="unchanged" if target.live else "reuse", tags=tags, caller=aws.caller_arn, view=view,
        deployment_config=deployment_config, keep=keep)
    cfg = aws.sagemaker.describe_endpoint_config(EndpointConfigName=target.config)
    guardrails.check_exclusions(aws, deployment_config, view, [v["VariantName"] for v in cfg["ProductionVariants"]])
    live_types = {v.name: v.instance_type for v in variants}
    plan.instance_types = {v["VariantName"]: (live_types[v["VariantName"]], v["InstanceType"])
                           for v in cfg["ProductionVariants"]
                           if v["VariantName"] in live_types and v.get("InstanceType") != live_types[v["VariantName"]]}
    plan_autoscaling(aws, plan, sorted(plan.instance_types))
    live_models = [v["ModelName"] for v in view.config.get("ProductionVariants", [])]
    for live_model, v in zip(live_models, cfg["ProductionVariants"]):
        before = endpoint_view.container(view.models.get(live_model, {})).get("Environment") or {}
        after = endpoint_view.container(aws.sagemaker.describe_model(ModelName=v["ModelName"])).get("Environment") or {}
        diff = revisions.env_diff({k: x for k, x in before.items() if k != "IMAGE_URL"},
                                  {k: x for k, x in after.items() if k != "IMAGE_URL"})
        if any(diff.values()):
            plan.env_changes[live_model] = diff
    set_idle(plan, view)
    return assemble(aws, plan)


def plan_restore(aws: Aws, endpoint: str, default_image: Optional[str] = None, **kwargs: Any) -> UpdatePlan:
    """Back to the default image: revision 0's when known, else the solution's default."""
    return plan_update(aws, endpoint, "default", default_override=default_image, **kwargs)
