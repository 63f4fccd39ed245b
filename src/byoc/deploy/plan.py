"""Plan an image update: read the endpoint, run every pre-flight check, and decide what to create.

Nothing here changes AWS. A refusal raises PreflightFailed/BadInput (exit 2) with the fix.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Optional

from byoc.aws import partitions, shapes
from byoc.aws.client import Aws
from byoc.deploy import autoscaling, capacity, guardrails, instance_checks, startup
from byoc.deploy.changes import Changes, check_environment
from byoc.endpoint import lock, revisions, solution
from byoc.endpoint import view as endpoint_view
from byoc.errors import AwsError, BadInput, PreflightFailed
from byoc.iam import execution_role
from byoc.images import ecr, pull
from byoc.images import ref as image_ref
from byoc.instances import architecture as instance_architecture
from byoc.redaction import is_secret_name

STRATEGIES = ("blue-green", "recreate")


@dataclass
class UpdatePlan:
    endpoint: str
    region: str
    strategy: str
    image: str  # as the user named it (resolved from `default` / a revision)
    target: str  # digest-pinned URI the new model runs
    digest: str
    revision: int
    previous_image: Optional[str]
    previous_digest: Optional[str]
    previous_config: str
    endpoint_config: str
    models: dict  # current model -> model of the new revision
    create_models: list = field(default_factory=list)  # CreateModel requests still to make
    create_config: Optional[dict] = None  # CreateEndpointConfig request, None when it exists
    deployment_config: Optional[dict] = None
    reuse: bool = False  # the revision's resources exist already (rollback, rerun, restore)
    resume: bool = False  # SageMaker is already deploying this revision (a rerun after interruption)
    unchanged: bool = False
    warnings: list = field(default_factory=list)
    extra_capacity: dict = field(default_factory=dict)  # instance type -> extra instances during the update
    quotas: dict = field(default_factory=dict)  # instance type -> its "for endpoint usage" quota, when readable
    retained: Optional[list] = field(default=None, repr=False)  # ListEndpointConfigs entries of its revisions
    tags: dict = field(default_factory=dict)  # the endpoint's tags when planned
    changes: Changes = field(default_factory=Changes)
    env_changes: dict = field(default_factory=dict)  # model -> env_diff (values of secret names masked)
    instance_types: dict = field(default_factory=dict)  # variant -> (current type, new type)
    pause_autoscaling: list = field(default_factory=list)  # autoscaling.Registration to deregister first
    restore_autoscaling: list = field(default_factory=list)  # ... and to register again afterwards
    autoscaling_record: Optional[int] = None  # revision of a record an interrupted run left in tags
    caller: str = ""
    startup_timeout: Optional[int] = None  # --startup-timeout: the new revision's window (seconds)
    current_window: Optional[int] = None  # the live config's startup window (its variants' longest)
    startup_review: Optional[startup.Review] = None  # the current window and image's measured start
    idle_variants: list = field(default_factory=list)  # async variants at 0 instances: nothing to health-check
    prove: bool = False  # start the new fleet on one instance and send one request before calling it updated
    view: Optional[endpoint_view.EndpointView] = field(default=None, repr=False)

    @property
    def current(self) -> endpoint_view.EndpointView:
        """The endpoint as it was when planned (every planner sets `view`)."""
        assert self.view is not None, "a plan is made from the endpoint's view"
        return self.view

    def to_dict(self) -> dict:
        return {
            "endpoint": self.endpoint, "region": self.region, "strategy": self.strategy, "image": self.image,
            "target": self.target, "digest": self.digest, "revision": self.revision,
            "previous_image": self.previous_image, "previous_digest": self.previous_digest,
            "previous_config": self.previous_config, "endpoint_config": self.endpoint_config,
            "models": list(self.models.values()), "create_models": [m["ModelName"] for m in self.create_models],
            "create_config": self.create_config["EndpointConfigName"] if self.create_config else None,
            "deployment_config": self.deployment_config, "reuse": self.reuse, "resume": self.resume,
            "unchanged": self.unchanged, "warnings": self.warnings, "extra_capacity": self.extra_capacity,
            "quotas": self.quotas,
            "env_changes": self.env_changes, "instance_types": {k: list(v) for k, v in self.instance_types.items()},
            "autoscaling": {"paused": [r.variant for r in self.restore_autoscaling],
                            "left_by_interrupted_run": self.autoscaling_record is not None},
            "startup_timeout": self.startup_timeout, "current_window": self.current_window,
            "idle_variants": self.idle_variants, "prove": self.prove,
            "startup_review": self.startup_review.to_dict() if self.startup_review else None,
        }


def now_iso() -> str:
    """UTC, to the millisecond (history and `status` order attempts by it)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def default_image(aws: Aws, view: endpoint_view.EndpointView, tags: dict) -> str:
    """Revision 0's image when byoc knows it; else the default image of the endpoint's solution generation
    (the oldest generation's for endpoints the solution did not make)."""
    original = tags.get(revisions.T_ORIGINAL) or (
        view.config_name if revisions.number(view.config_name) is None else None)
    if original:
        try:
            cfg = aws.sagemaker.describe_endpoint_config(EndpointConfigName=original)
            model = aws.sagemaker.describe_model(ModelName=cfg["ProductionVariants"][0]["ModelName"])
            image = endpoint_view.model_image(model)
            if image:
                return image
        except AwsError:
            pass
    registry = f"{aws.account}.dkr.ecr.{aws.region}.{partitions.for_region(aws.region).dns_suffix}"
    return solution.default_image(solution.of_view(view), solution.model_environment(view.models), registry)


def check_status(view: endpoint_view.EndpointView, strategy: str, resuming: bool, tags: Optional[dict] = None) -> None:
    status = view.status
    if status == "Failed" and strategy != "recreate":
        raise PreflightFailed(
            f"Endpoint {view.name} is Failed ({view.endpoint.get('FailureReason', 'no reason given')}); "
            "SageMaker cannot update a Failed endpoint.",
            f"Run again with --strategy recreate (deletes and recreates {view.name} with the full configuration).")
    if status in endpoint_view.BUSY and not resuming:
        who = lock.holder((tags or {}).get(revisions.T_LOCK))
        by = f"by byoc {who}" if who else "not by a byoc run that is still watching it"
        raise PreflightFailed(
            f"Endpoint {view.name} is {status}; another update is in progress ({by}).",
            f"Wait for it (`byoc status {view.name} --watch`), then run the update again.")


def check_architecture(resolved: ecr.ResolvedImage, view: endpoint_view.EndpointView,
                       new_types: Optional[dict] = None) -> None:
    if not resolved.architectures:
        return
    for v in view.variants:
        if v.serverless or not v.instance_type or v.name in (new_types or {}):
            continue  # a variant's new type is checked by instance_checks
        needed = instance_architecture(v.instance_type)
        if needed not in resolved.architectures:
            platform = f"linux/{needed}"
            raise PreflightFailed(
                f"Image {resolved.ref.uri} is built for {', '.join(resolved.architectures)} but variant {v.name} "
                f"runs on {v.instance_type} ({needed}); it would fail with 'exec format error'.",
                f"Rebuild it with `byoc build --platform {platform} --push` (or docker buildx --platform {platform}).")


def check_model_access(aws: Aws, plan: UpdatePlan, ref: image_ref.ImageRef) -> None:
    """What CreateModel checks with each new model's execution role, before anything changes: SageMaker
    can assume the role, and a repository in another account lets the role pull the image."""
    copied_from = {new: old for old, new in plan.models.items()}
    for role in sorted({req.get("ExecutionRoleArn") or "" for req in plan.create_models} - {""}):
        model = next(copied_from.get(r["ModelName"], r["ModelName"]) for r in plan.create_models
                     if r.get("ExecutionRoleArn") == role)
        execution_role.check(aws, role, model)
        warning = pull.check(aws, ref, role)
        if warning:
            plan.warnings.append(warning)


def desired_environment(container: dict, changes: Changes, target: str) -> dict:
    """The environment a copy of `container` gets: the changes applied, IMAGE_URL following the image."""
    env = changes.environment(container.get("Environment") or {})
    if "IMAGE_URL" in env and "IMAGE_URL" not in dict(changes.env):  # the solution records its image here
        env["IMAGE_URL"] = target
    return env


def _lossless_model(described: dict, new_name: str, target: str, tags: list, changes: Changes) -> dict:
    req = shapes.as_input("CreateModel", described, drop=("ModelName", "Tags"))
    for c in endpoint_view.model_containers(req):
        if c.get("Image") and c.get("Image") == endpoint_view.model_image(described):
            c["Image"] = target
            env = desired_environment(c, changes, target)
            if env or "Environment" in c:
                c["Environment"] = env
    req["ModelName"] = new_name
    req["Tags"] = tags
    return req


def _lossless_config(described: dict, new_name: str, models: dict, tags: list, new_types: dict) -> dict:
    req = shapes.as_input("CreateEndpointConfig", described, drop=("EndpointConfigName", "Tags"))
    for v in req.get("ProductionVariants", []):
        v["ModelName"] = models.get(v["ModelName"], v["ModelName"])
        if v["VariantName"] in new_types:
            v["InstanceType"] = new_types[v["VariantName"]][1]
    req["EndpointConfigName"] = new_name
    req["Tags"] = tags
    return req


def _merge_tags(original: dict, extra: list) -> list:
    """byoc's tags first, then the resource's own (aws: ones are reserved), within SageMaker's 50."""
    theirs = [{"Key": k, "Value": v} for k, v in original.items() if not k.startswith((revisions.TAG_PREFIX, "aws:"))]
    return (list(extra) + theirs)[:50]


def _existing_revision(aws: Aws, view: endpoint_view.EndpointView, stem_configs: list, tags: dict, digest: str,
                       target: str = "", changes: Changes = Changes(),
                       new_types: Optional[dict] = None) -> Optional[dict]:
    """The DescribeEndpointConfig of a retained config of this endpoint whose models already run
    `digest` with the environment and instance types this update wants (newest first), or None. The
    endpoint's `byoc:r<N>` tags record each attempt's digest, so only a config they name for `digest`
    (or one they say nothing about) is described."""
    recorded = {int(m.group(1)): revisions.parse_outcome(v).get("digest") for k, v in tags.items()
                if (m := revisions.OUTCOME_TAG.match(k))}
    candidates = [c for c in stem_configs if recorded.get(revisions.number(c) or 0, digest) == digest]
    first = view.models.get((view.config.get("ProductionVariants") or [{}])[0].get("ModelName"), {})
    wanted_env = _comparable(desired_environment(endpoint_view.container(first), changes, target))
    wanted_types = {v.name: (new_types or {}).get(v.name, (None, v.instance_type))[1] for v in view.variants}
    for name in sorted(candidates, key=lambda n: revisions.number(n) or 0, reverse=True):
        try:
            cfg = aws.sagemaker.describe_endpoint_config(EndpointConfigName=name)
            model = aws.sagemaker.describe_model(ModelName=cfg["ProductionVariants"][0]["ModelName"])
        except AwsError:
            continue
        if not (endpoint_view.model_image(model) or "").endswith("@" + digest):
            continue
        types = {v["VariantName"]: v.get("InstanceType") for v in cfg["ProductionVariants"]}
        if types == wanted_types and _comparable(endpoint_view.container(model).get("Environment") or {}) == wanted_env:
            return cfg
    return None


def _comparable(env: dict) -> dict:
    """An environment without IMAGE_URL (which follows the image, pinned or not)."""
    return {k: v for k, v in env.items() if k != "IMAGE_URL"}


def desired_envs(view: endpoint_view.EndpointView, changes: Changes, target: str) -> dict:
    """model name -> the environment its copy gets (only when there are environment changes)."""
    if not (changes.env or changes.unset_env):
        return {}
    return {name: desired_environment(endpoint_view.container(m), changes, target) for name, m in view.models.items()}


def _live_matches(view: endpoint_view.EndpointView, changes: Changes, new_types: dict) -> bool:
    """The live models already have the wanted environment and no instance type changes."""
    if new_types:
        return False
    for model in view.models.values():
        env = endpoint_view.container(model).get("Environment") or {}
        if changes.environment(env) != env:
            return False
    return True


def plan_autoscaling(aws: Aws, plan: UpdatePlan, changed_variants: list) -> None:
    """Which scalable targets the update pauses: the registered variants whose instance type changes,
    and any an interrupted run left deregistered (recorded in the endpoint's tags)."""
    record = autoscaling.recorded(plan.tags)
    now = autoscaling.save(aws, plan.endpoint, changed_variants)
    plan.pause_autoscaling = now
    plan.restore_autoscaling = list(record.saved if record else [])
    known = {r.variant for r in plan.restore_autoscaling}
    plan.restore_autoscaling += [r for r in now if r.variant not in known]
    plan.autoscaling_record = record.revision if record else None


def plan_update(aws: Aws, endpoint: str, image: str, *, strategy: str = "blue-green", force: bool = False,
                deployment_config: Optional[dict] = None, default_override: Optional[str] = None,
                changes: Optional[Changes] = None, startup_timeout: Optional[int] = None,
                review_startup: bool = True) -> UpdatePlan:
    """Everything `update` will do, after every pre-flight check; changes nothing. `review_startup`:
    measure the current image's start when its window is long (reads its logs; fleets skip it)."""
    changes = changes or Changes()
    if strategy not in STRATEGIES:
        raise BadInput(f"Unknown strategy '{strategy}'.", f"Use one of: {', '.join(STRATEGIES)}.")
    view = endpoint_view.load(aws, endpoint)
    tags = revisions.list_tags(aws, view.endpoint["EndpointArn"])
    if image == "default":
        image = default_override or default_image(aws, view, tags)
    ref = image_ref.parse(image)
    image_ref.check_region(ref, aws.region)
    pending = (view.endpoint.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    resolved = ecr.resolve(aws, ref)
    target = resolved.pinned
    retained = revisions.listed_configs(aws, endpoint, view.config_name)
    stem_configs = [c["EndpointConfigName"] for c in retained]
    new_types = instance_checks.new_types(view, changes)
    resuming = bool(pending and revisions.base(pending) == revisions.config_stem(endpoint, view.config_name)
                    and _existing_revision(aws, view, [pending], tags, resolved.digest, target, changes, new_types))
    check_status(view, strategy, resuming, tags)
    check_architecture(resolved, view, new_types)
    variants = view.variants
    live_digests = {v.digest for v in variants if v.digest}
    previous = variants[0] if variants else None
    caller = aws.caller_arn
    plan = UpdatePlan(
        endpoint=endpoint, region=aws.region, strategy=strategy, image=image, target=target,
        digest=resolved.digest, revision=0, previous_image=previous.image if previous else None,
        previous_digest=previous.digest if previous else None, previous_config=view.config_name,
        endpoint_config=view.config_name, models={}, deployment_config=deployment_config, tags=tags,
        caller=caller, view=view, retained=retained, changes=changes, instance_types=new_types,
        startup_timeout=startup_timeout, current_window=startup.window_of(view.config))
    if new_types:
        plan.warnings += instance_checks.check(view, new_types, image, resolved.architectures, capacity.quotas(aws),
                                               aws.region)
    if strategy == "blue-green":
        plan_autoscaling(aws, plan, sorted(new_types))
    if resuming:
        plan.resume, plan.reuse, plan.endpoint_config = True, True, str(pending)
        plan.revision = revisions.number(str(pending)) or 0
        return plan
    same_window = startup_timeout is None or startup_timeout == startup.window_of(view.config)
    if (live_digests == {resolved.digest} and not force and view.status == "InService"
            and _live_matches(view, changes, new_types) and same_window):
        plan.unchanged = True
        plan.revision = revisions.number(view.config_name) or 0
        plan.models = {m: m for m in view.models}
        return plan
    set_idle(plan, view)
    plan.startup_review = startup.review(aws, view) if review_startup else None
    existing = None if startup_timeout else _existing_revision(aws, view, stem_configs, tags, resolved.digest, target,
                                                               changes, new_types)
    if existing and existing["EndpointConfigName"] != view.config_name:
        plan.reuse, plan.endpoint_config = True, existing["EndpointConfigName"]
        plan.revision = revisions.number(plan.endpoint_config) or 0
        plan.models = {v["ModelName"]: v["ModelName"] for v in existing["ProductionVariants"]}
        new_config = existing
    else:
        _plan_new_revision(aws, plan, view, tags, stem_configs, ref, resolved)
        check_model_access(aws, plan, ref)
        assert plan.create_config is not None  # set by _plan_new_revision
        if startup_timeout:
            startup.apply_to(plan.create_config, startup_timeout)
        new_config = plan.create_config
    for model, env in desired_envs(view, changes, target).items():
        check_environment(env, model)
        plan.env_changes[model] = revisions.env_diff(endpoint_view.container(view.models[model]).get("Environment") or {}, env)
    guardrails.check_exclusions(aws, deployment_config, view,
                                [v["VariantName"] for v in new_config["ProductionVariants"]])
    if strategy == "blue-green":
        for v in variants:
            if v.instance_type and not v.serverless:
                total = v.desired_instances if v.desired_instances is not None else (v.current_instances or 0)
                extra = guardrails.batch_instances(deployment_config, total)
                itype = new_types.get(v.name, (None, v.instance_type))[1]
                plan.extra_capacity[itype] = plan.extra_capacity.get(itype, 0) + extra
        limits = capacity.quotas(aws)
        if not limits and plan.extra_capacity:
            plan.warnings.append("Capacity for the second fleet was not checked: the Service Quotas for SageMaker "
                                 "could not be read (servicequotas:ListServiceQuotas).")
        rolling = bool((deployment_config or {}).get("RollingUpdatePolicy"))
        capacity.check(endpoint, plan.extra_capacity, rolling, limits)
        plan.quotas = {t: limits[t][0] for t in plan.extra_capacity if t in limits}
    return plan



def set_idle(plan: UpdatePlan, view: endpoint_view.EndpointView) -> None:
    """An async endpoint scaled to 0 has no instance SageMaker could health-check: a broken image
    would "succeed" and the first request would find it. byoc proves the image on one instance
    (see apply.prove) unless the caller turns `plan.prove` off (--no-verify)."""
    plan.idle_variants = [v.name for v in view.variants
                          if view.is_async and (v.current_instances == 0 or v.desired_instances == 0)]
    plan.prove = bool(plan.idle_variants)


def no_verify(plan: UpdatePlan) -> None:
    """--no-verify: deploy at 0 instances, unproven, and say so."""
    if plan.prove:
        plan.prove = False
        plan.warnings.append(
            f"Variant(s) {', '.join(plan.idle_variants)} are scaled to 0 instances and --no-verify is set: the new "
            "image is not proven. SageMaker has no instance to health-check, so a broken image ends `updated` and "
            "the first request finds it. Run `byoc verify` afterwards.")


def _plan_new_revision(aws: Aws, plan: UpdatePlan, view: endpoint_view.EndpointView, tags: dict,
                       stem_configs: Any, ref: image_ref.ImageRef, resolved: Any) -> None:
    numbers = [revisions.number(c) or 0 for c in stem_configs]
    # Failed attempts keep their numbers; one still "in-progress" without a config (counted above when it
    # exists) was interrupted before UpdateEndpoint, and its number is reused by this run.
    numbers += [int(m.group(1)) for k, v in tags.items()
                if (m := revisions.OUTCOME_TAG.match(k)) and not v.startswith("in-progress")]
    n = max(numbers + [revisions.number(view.config_name) or 0]) + 1
    production_models = [v["ModelName"] for v in view.config.get("ProductionVariants", [])]
    model_names, config_name = revisions.names(plan.endpoint, production_models, view.config_name, n)
    at = now_iso()
    rev_tags = revisions.revision_tags(plan.endpoint, n, plan.image, resolved.digest, plan.caller, at,
                                       instance_types=_types_tag(view, plan.instance_types),
                                       env_changes=_env_tag(plan.changes))
    for old, new in model_names.items():
        described = view.models.get(old)
        if described is None:
            raise PreflightFailed(
                f"Model {old} of endpoint config {view.config_name} no longer exists, so byoc cannot copy it.",
                "Restore the model, or use --strategy recreate after creating a new endpoint config by hand.")
        model_tags = revisions.list_tags(aws, described["ModelArn"])
        plan.create_models.append(_lossless_model(described, new, resolved.pinned, _merge_tags(model_tags, rev_tags),
                                                  plan.changes))
    config_tags = revisions.list_tags(aws, view.config["EndpointConfigArn"])
    plan.create_config = _lossless_config(view.config, config_name, model_names,
                                          _merge_tags(config_tags, rev_tags), plan.instance_types)
    plan.models = model_names
    plan.endpoint_config = config_name
    plan.revision = n


def _types_tag(view: endpoint_view.EndpointView, new_types: dict) -> str:
    """"variant=type ..." of the revision (every instance variant, changed or not)."""
    return " ".join(f"{v.name}={new_types.get(v.name, (None, v.instance_type))[1]}" for v in view.variants
                    if v.instance_type)


def _env_tag(changes: Changes) -> str:
    """The environment change of a revision for its tags: "FOO=1 HF_TOKEN -OLD" (a secret-looking
    name alone, never its value; '*' is not allowed in tag values)."""
    return " ".join([k if is_secret_name(k) else f"{k}={v}" for k, v in changes.env]
                    + [f"-{k}" for k in changes.unset_env])
