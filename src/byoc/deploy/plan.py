"""Plan an image update: read the endpoint, run every pre-flight check, and decide every step.

The plan is an ordered tuple of typed steps (deploy/steps.py), the sweep's deletions included,
run by deploy/executor.py or shown by its display executor (--dry-run). Nothing here changes
AWS. A refusal raises PreflightFailed/BadInput (exit 2) with the fix.
"""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence

from byoc.aws import partitions, shapes
from byoc.aws.client import Aws
from byoc.deploy import autoscaling, capacity, guardrails, instance_checks, startup, steps, sweep
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
RECREATE_WINDOW_WARNING = 15 * 60  # seconds: a longer startup window is worth a warning before a recreate


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
    mode: str = "create"  # one of steps.MODES
    steps: tuple = ()  # what apply does, in order (the sweep's deletions included)
    on_failure: tuple = ()  # what it does instead of the rest when the deployment fails
    keep: int = 5  # revisions the sweep keeps
    deployment_config: Optional[dict] = None
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

    @property
    def create_models(self) -> list:
        """The CreateModel requests the plan makes."""
        return [s.request for s in self.steps if isinstance(s, steps.CreateModel)]

    @property
    def create_config(self) -> Optional[dict]:
        """The CreateEndpointConfig request the plan makes, None when the config exists."""
        return next((s.request for s in self.steps if isinstance(s, steps.CreateEndpointConfig)), None)

    @property
    def deletions(self) -> list:
        """The names the sweep deletes once the deployment succeeded."""
        return [n for s in self.steps if isinstance(s, steps.DeleteRevision) for n in s.names]

    def to_dict(self) -> dict:
        return {
            "endpoint": self.endpoint, "region": self.region, "strategy": self.strategy, "image": self.image,
            "target": self.target, "digest": self.digest, "revision": self.revision,
            "previous_image": self.previous_image, "previous_digest": self.previous_digest,
            "previous_config": self.previous_config, "endpoint_config": self.endpoint_config,
            "models": list(self.models.values()), "create_models": [m["ModelName"] for m in self.create_models],
            "create_config": self.create_config["EndpointConfigName"] if self.create_config else None,
            "deployment_config": self.deployment_config, "reuse": self.mode in ("reuse", "resume"),
            "resume": self.mode == "resume", "unchanged": self.mode == "unchanged", "warnings": self.warnings,
            "extra_capacity": self.extra_capacity, "quotas": self.quotas,
            "env_changes": self.env_changes, "instance_types": {k: list(v) for k, v in self.instance_types.items()},
            "autoscaling": {"paused": [r.variant for r in self.restore_autoscaling],
                            "left_by_interrupted_run": self.autoscaling_record is not None},
            "startup_timeout": self.startup_timeout, "current_window": self.current_window,
            "idle_variants": self.idle_variants, "prove": self.prove,
            "startup_review": self.startup_review.to_dict() if self.startup_review else None,
            "mode": self.mode, "keep": self.keep,
            "steps": [s.to_dict() for s in self.steps], "on_failure": [s.to_dict() for s in self.on_failure],
            "deletions": self.deletions,
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


def check_model_access(aws: Aws, plan: UpdatePlan, ref: image_ref.ImageRef, requests: list) -> None:
    """What CreateModel checks with each new model's execution role (`requests`: the plan's CreateModel
    requests), before anything changes: SageMaker can assume the role, and a repository in another
    account lets the role pull the image."""
    copied_from = {new: old for old, new in plan.models.items()}
    for role in sorted({req.get("ExecutionRoleArn") or "" for req in requests} - {""}):
        model = next(copied_from.get(r["ModelName"], r["ModelName"]) for r in requests
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
                review_startup: bool = True, keep: int = 5, source_tags: bool = True) -> UpdatePlan:
    """Everything `update` will do, after every pre-flight check; changes nothing. `review_startup`:
    measure the current image's start when its window is long (reads its logs; fleets skip it).
    `source_tags`: read the copied resources' tags now (a fleet reads all its plans' at once)."""
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
        startup_timeout=startup_timeout, current_window=startup.window_of(view.config), keep=keep)
    if new_types:
        plan.warnings += instance_checks.check(view, new_types, image, resolved.architectures, capacity.quotas(aws),
                                               aws.region)
    if strategy == "blue-green":
        plan_autoscaling(aws, plan, sorted(new_types))
    if resuming:
        plan.mode, plan.endpoint_config = "resume", str(pending)
        plan.revision = revisions.number(str(pending)) or 0
        return assemble(aws, plan)
    same_window = startup_timeout is None or startup_timeout == startup.window_of(view.config)
    if (live_digests == {resolved.digest} and not force and view.status == "InService"
            and _live_matches(view, changes, new_types) and same_window):
        plan.mode = "unchanged"
        plan.revision = revisions.number(view.config_name) or 0
        plan.models = {m: m for m in view.models}
        return assemble(aws, plan)
    set_idle(plan, view)
    plan.startup_review = startup.review(aws, view) if review_startup else None
    window = startup_timeout or plan.current_window or 0
    if strategy == "recreate" and window > RECREATE_WINDOW_WARNING:
        # An endpoint stays Creating until its startup window closes and cannot be deleted meanwhile
        # (aws/amazon-sagemaker-examples#3432), so a broken image means downtime for the whole window.
        plan.warnings.append(
            f"With --strategy recreate a broken image keeps {endpoint} down for its whole {window // 60}-minute startup "
            "window (SageMaker does not delete an endpoint that is Creating). --startup-timeout shortens it; blue/green "
            "keeps serving instead.")
    existing = None if startup_timeout else _existing_revision(aws, view, stem_configs, tags, resolved.digest, target,
                                                               changes, new_types)
    creates: list = []
    if existing and existing["EndpointConfigName"] != view.config_name:
        plan.mode, plan.endpoint_config = "reuse", existing["EndpointConfigName"]
        plan.revision = revisions.number(plan.endpoint_config) or 0
        plan.models = {v["ModelName"]: v["ModelName"] for v in existing["ProductionVariants"]}
        new_config = existing
    else:
        creates = _plan_new_revision(aws, plan, view, tags, stem_configs, ref, resolved)
        check_model_access(aws, plan, ref, [s.request for s in creates if isinstance(s, steps.CreateModel)])
        new_config = creates[-1].request
        if startup_timeout:
            startup.apply_to(new_config, startup_timeout)
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
        limits = capacity.quotas_of(aws, sorted(plan.extra_capacity))
        if not limits and plan.extra_capacity:
            plan.warnings.append("Capacity for the second fleet was not checked: the Service Quotas for SageMaker "
                                 "could not be read (servicequotas:ListServiceQuotas).")
        rolling = bool((deployment_config or {}).get("RollingUpdatePolicy"))
        capacity.check(endpoint, plan.extra_capacity, rolling, limits, guardrails.rolling_fleet(view))
        plan.quotas = {t: limits[t][0] for t in plan.extra_capacity if t in limits}
    assemble(aws, plan, creates)
    if source_tags:
        read_source_tags(aws, [plan])
    return plan


def read_source_tags(aws: Aws, plans: list) -> None:
    """Fill in the tags of the resources the plans' new models and configs copy, from one GetResources
    per 100 of them; a resource the Tagging API does not list is read with ListTags when it is copied."""
    copies = (steps.CreateModel, steps.CreateEndpointConfig)
    found = revisions.indexed_tags(aws, [s.copy_tags_of for p in plans for s in p.steps if isinstance(s, copies)])
    for p in plans:
        p.steps = tuple(dataclasses.replace(s, their_tags=tuple(found[s.copy_tags_of].items()))
                        if isinstance(s, copies) and s.copy_tags_of in found else s for s in p.steps)


def set_idle(plan: UpdatePlan, view: endpoint_view.EndpointView) -> None:
    """An async endpoint scaled to 0 has no instance SageMaker could health-check: a broken image
    would "succeed" and the first request would find it. byoc proves the image on one instance
    (the plan's ProveImage step) unless the caller turns `plan.prove` off (--no-verify)."""
    plan.idle_variants = [v.name for v in view.variants
                          if view.is_async and (v.current_instances == 0 or v.desired_instances == 0)]
    plan.prove = bool(plan.idle_variants)


def _plan_new_revision(aws: Aws, plan: UpdatePlan, view: endpoint_view.EndpointView, tags: dict,
                       stem_configs: Any, ref: image_ref.ImageRef, resolved: Any) -> list:
    """Name revision n and return its CreateModel and CreateEndpointConfig steps (the config last)."""
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
    creates: list = []
    for old, new in model_names.items():
        described = view.models.get(old)
        if described is None:
            raise PreflightFailed(
                f"Model {old} of endpoint config {view.config_name} no longer exists, so byoc cannot copy it.",
                "Restore the model, or use --strategy recreate after creating a new endpoint config by hand.")
        # The copy's own tags are added to byoc's as the Tagging API listed them (read_source_tags: one
        # query for a plan, or for a whole fleet's), else read with ListTags when it is created.
        creates.append(steps.CreateModel(name=new, image=resolved.pinned, copy_tags_of=described["ModelArn"],
                                         request=_lossless_model(described, new, resolved.pinned, rev_tags,
                                                                 plan.changes)))
    creates.append(steps.CreateEndpointConfig(
        name=config_name, models=tuple(dict.fromkeys(model_names.values())),
        copy_tags_of=view.config["EndpointConfigArn"],
        request=_lossless_config(view.config, config_name, model_names, rev_tags, plan.instance_types)))
    plan.models = model_names
    plan.endpoint_config = config_name
    plan.revision = n
    return creates


def _types_tag(view: endpoint_view.EndpointView, new_types: dict) -> str:
    """"variant=type ..." of the revision (every instance variant, changed or not)."""
    return " ".join(f"{v.name}={new_types.get(v.name, (None, v.instance_type))[1]}" for v in view.variants
                    if v.instance_type)


def _env_tag(changes: Changes) -> str:
    """The environment change of a revision for its tags: "FOO=1 HF_TOKEN -OLD" (a secret-looking
    name alone, never its value; '*' is not allowed in tag values)."""
    return " ".join([k if is_secret_name(k) else f"{k}={v}" for k, v in changes.env]
                    + [f"-{k}" for k in changes.unset_env])


def first_update(plan: UpdatePlan) -> bool:
    """No byoc update has run on the endpoint yet: its config and models become revision 0."""
    return not plan.tags.get(revisions.T_ORIGINAL) and revisions.number(plan.previous_config) is None


def attempt_tag(plan: UpdatePlan) -> str:
    """The endpoint tag recording this run's attempt: byoc:r<N>, or for a run that makes an earlier
    revision live again its own rollback event, so revision N's record is never rewritten."""
    n, resume = plan.revision, plan.mode == "resume"
    return revisions.attempt_key(n, plan.tags, revisions.returning(n, plan.tags, resume or plan.mode == "reuse"), resume)


def interrupted_before(plan: UpdatePlan) -> dict:
    """Attempts an earlier run left in progress (revision -> when it began; its run was killed):
    they may have left models behind."""
    out = {}
    for key, value in plan.tags.items():
        m = revisions.OUTCOME_TAG.match(key)
        if m and int(m.group(1)) != plan.revision and value.startswith("in-progress"):
            began = revisions.parse_outcome(value).get("created_at") or ""
            try:
                out[int(m.group(1))] = datetime.datetime.fromisoformat(began.replace("Z", "+00:00"))
            except ValueError:
                continue  # when it began is unknown, so who could use its models cannot be bounded
    return out


def assemble(aws: Aws, plan: UpdatePlan, creates: Sequence[steps.Step] = ()) -> UpdatePlan:
    """Fill in the plan's steps for its mode and strategy, the sweep's deletions (for plan.keep) included."""
    e, n = plan.endpoint, plan.revision
    ended = _ended_attempts(aws, plan)
    reconciled = {s.config for s in ended if isinstance(s, steps.DeleteRevision)}
    if plan.mode == "unchanged":
        # A run killed while SageMaker deployed the live revision left it "in-progress": record it as
        # deployed and sweep, as that run would have.
        key, value = revisions.unfinished_attempt(n, plan.tags)  # its own attempt or a rollback to it
        plan.steps = tuple(ended)
        if value.startswith("in-progress ") and plan.current.config_name == plan.endpoint_config:
            plan.steps += (steps.RecordOutcome(endpoint=e, revision=n, outcome="deployed", tag=key,
                                               value="deployed" + value[len("in-progress"):]),
                           *_sweep_except(aws, plan, reconciled))
        plan.steps += _resume_autoscaling(plan)
        return plan
    watching_only = plan.mode == "resume" and plan.strategy != "recreate"
    tag = attempt_tag(plan)
    prepare: List[steps.Step] = [steps.LockEndpoint(endpoint=e, revision=None if watching_only else n,
                                  original_config=plan.previous_config if first_update(plan) else None,
                                  tag=tag)]
    prepare += ended
    if plan.mode != "resume" and first_update(plan):
        prepare.append(_tag_revision_zero(plan))
    prepare += list(creates)
    if plan.strategy == "recreate":
        own = tuple((k, v) for k, v in plan.tags.items()
                    if not k.startswith(("aws:", revisions.T_LOCK, revisions.T_AUTOSCALING)))
        deploy: List[steps.Step] = [steps.RecreateEndpoint(endpoint=e, config=plan.endpoint_config, previous_config=plan.previous_config,
                                         was_serving=plan.current.status == "InService", tags=own)]
    elif plan.mode == "resume":
        deploy = [steps.WatchDeployment(endpoint=e, config=plan.endpoint_config)]
        deploy += list(_resume_autoscaling(plan))
    else:
        pause = ([steps.PauseAutoscaling(endpoint=e, variants=tuple(r.variant for r in plan.pause_autoscaling))]
                 if plan.pause_autoscaling else [])
        prove = [steps.ProveImage(endpoint=e, image=plan.target, previous_config=plan.previous_config)] \
            if plan.prove else []
        deploy = [*pause, steps.UpdateEndpoint(endpoint=e, config=plan.endpoint_config,
                                               deployment_config=plan.deployment_config, start_instances=plan.prove),
                  steps.WatchDeployment(endpoint=e, config=plan.endpoint_config), *prove, *_resume_autoscaling(plan)]
    record = steps.RecordOutcome(endpoint=e, revision=n, outcome="deployed", tag=tag)
    plan.steps = (*prepare, *deploy, record, *_sweep_except(aws, plan, reconciled))
    plan.on_failure = (*_resume_autoscaling(plan), steps.RecordOutcome(endpoint=e, revision=n, outcome="failed",
                                                                       tag=tag))
    if plan.mode == "create":
        plan.on_failure += (steps.DeleteRevision(
            revision=n, config=plan.endpoint_config, models=tuple(dict.fromkeys(plan.models.values())),
            reason="the failed attempt's; SageMaker went back to the previous config"),)
    return plan


def _ended_attempts(aws: Aws, plan: UpdatePlan) -> list:
    """An attempt an earlier run left `failing` (--fail-fast) has ended since: SageMaker rolled it back
    (record it failed, delete its unused model and config) or, unexpectedly, deployed it."""
    out: List[steps.Step] = []
    configs = None
    for key, value in sorted(plan.tags.items()):
        m = revisions.OUTCOME_TAG.match(key)
        if not m or not value.startswith("failing "):
            continue
        n = int(m.group(1))
        if plan.mode == "resume" and n == plan.revision:
            continue  # still deploying: this run watches it to its end
        live = revisions.number(plan.current.config_name) == n
        rest = value[len("failing"):]
        out.append(steps.RecordOutcome(endpoint=plan.endpoint, revision=n, outcome="deployed" if live else "failed",
                                       tag=key, value=("deployed" if live else "failed") + rest,
                                       why="" if live else " (--fail-fast left it failing; SageMaker rolled it back)"))
        if live or m.group(2):  # a rollback made nothing: the revision it went back to stays
            continue
        if configs is None:
            configs = [c["EndpointConfigName"] for c in plan.retained] if plan.retained is not None else \
                revisions.retained_configs(aws, plan.endpoint, plan.current.config_name)
        stem = revisions.config_stem(plan.endpoint, plan.current.config_name)
        config = next((c for c in configs if revisions.number(c) == n and revisions.base(c) == stem), None)
        if config is None or config == plan.endpoint_config:
            continue
        try:
            models = [v["ModelName"] for v in aws.sagemaker.describe_endpoint_config(
                EndpointConfigName=config)["ProductionVariants"]]
        except AwsError:
            continue
        out.append(steps.DeleteRevision(revision=n, config=config, reason="the failed attempt's",
                                        models=tuple(x for x in models if x not in plan.models.values())))
    return out


def _sweep_except(aws: Aws, plan: UpdatePlan, reconciled: set) -> list:
    return [d for d in plan_sweep(aws, plan) if d.config is None or d.config not in reconciled]


def no_verify(plan: UpdatePlan) -> None:
    """--no-verify: deploy at 0 instances, unproven, and say so."""
    if not plan.prove:
        return
    plan.prove = False
    plan.steps = tuple(dataclasses.replace(s, start_instances=False) if isinstance(s, steps.UpdateEndpoint) else s
                       for s in plan.steps if not isinstance(s, steps.ProveImage))
    plan.warnings.append(
        f"Variant(s) {', '.join(plan.idle_variants)} are scaled to 0 instances and --no-verify is set: the new "
        "image is not proven. SageMaker has no instance to health-check, so a broken image ends `updated` and "
        "the first request finds it. Run `byoc verify` afterwards.")


def _resume_autoscaling(plan: UpdatePlan) -> tuple:
    """The step registering the paused (or an interrupted run's) autoscaling again, if any."""
    if not plan.restore_autoscaling:
        return ()
    return (steps.ResumeAutoscaling(endpoint=plan.endpoint, variants=tuple(r.variant for r in plan.restore_autoscaling),
                                    interrupted_revision=plan.autoscaling_record),)


def _tag_revision_zero(plan: UpdatePlan) -> steps.TagRevisionZero:
    view = plan.current
    tags = [{"Key": revisions.T_ENDPOINT, "Value": plan.endpoint}, {"Key": revisions.T_REVISION, "Value": "0"}]
    if plan.previous_image:
        tags.append({"Key": revisions.T_IMAGE, "Value": plan.previous_image[:256]})
    if plan.previous_digest:
        tags.append({"Key": revisions.T_DIGEST, "Value": plan.previous_digest})
    return steps.TagRevisionZero(config=view.config_name, models=tuple(view.models), tags=tuple(tags),
                                 arns=(view.config["EndpointConfigArn"], *(m["ModelArn"] for m in view.models.values())))


def with_keep(aws: Aws, plan: UpdatePlan, keep: int) -> UpdatePlan:
    """The same plan with the sweep planned for `keep` revisions."""
    replanned = dataclasses.replace(plan, keep=keep, steps=(), on_failure=())
    return assemble(aws, replanned, [s for s in plan.steps if isinstance(s, (steps.CreateModel, steps.CreateEndpointConfig))])


def plan_sweep(aws: Aws, plan: UpdatePlan) -> list:
    """The sweep's deletions once the plan's config is live, for plan.keep."""
    return sweep.plan(aws, plan.endpoint, plan.endpoint_config, [revisions.base(m) for m in plan.models.values()],
                      plan.keep, interrupted=interrupted_before(plan), listed=plan.retained)
