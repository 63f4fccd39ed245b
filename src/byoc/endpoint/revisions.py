"""Revisions of an endpoint: deterministic names, the tags that record them, and history.

History lives in AWS, not on the user's disk:
- each model and endpoint config byoc creates carries `byoc:endpoint`, `byoc:revision`,
  `byoc:image`, `byoc:digest`, `byoc:created-by`, `byoc:created-at`, and when the update changed
  them `byoc:instance-types` ("variant=type ...") and `byoc:env-changes` ("KEY=value SECRET_NAME
  -REMOVED ...": a secret-looking name alone, never its value; byoc.redaction); `byoc:note` says what a later run did
  for it (autoscaling registered again after an interrupted run);
- the endpoint carries one `byoc:r<N>` tag per revision attempt: "<outcome> <when> <repo>@<digest> <by>"
  (so failed attempts, whose resources are deleted, stay visible), plus `byoc:lock` during an update;
- a run that makes an earlier revision N live again (rollback, restore, an update to the image a retained
  revision runs) is its own event `byoc:r<N>:rollback<K>` (the same value; K counts up), so it never
  rewrites revision N's record; of both kinds the newest KEEP_OUTCOME_TAGS stay;
- while an update holds a variant's autoscaling deregistered, the endpoint carries the exact record
  to register it again (`byoc:autoscaling`, `byoc:autoscaling:<i>`; deploy/autoscaling.py);
- the endpoint's original model and config are revision 0 (tagged on the first update; never deleted).
Names stay inside the solution generation's own naming (endpoint/solution.py):
`infer-model-<id>-r<N>`, `esd-model-async-<id>-r<N>`, `sd-async-<id>-r<N>`; other endpoints' revisions are
named after their current model and config.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, List, Optional

from byoc.aws.client import Aws
from byoc.endpoint import solution
from byoc.errors import AuthError, AwsError, BadInput
from byoc.redaction import shown

if TYPE_CHECKING:
    from byoc.endpoint.view import EndpointView
from byoc.timespec import iso_utc

MAX_NAME = 63  # ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62} (CreateModel/CreateEndpointConfig, EndpointConfigName)
REV_SUFFIX = re.compile(r"-r(\d+)$")
T_ENDPOINT, T_REVISION, T_IMAGE, T_DIGEST, T_BY, T_AT = (
    "byoc:endpoint", "byoc:revision", "byoc:image", "byoc:digest", "byoc:created-by", "byoc:created-at")
T_TYPES, T_ENV, T_NOTE = "byoc:instance-types", "byoc:env-changes", "byoc:note"
T_AUTOSCALING = "byoc:autoscaling"  # on the endpoint while byoc holds its autoscaling deregistered (deploy.autoscaling)
T_LOCK = "byoc:lock"
T_ORIGINAL = "byoc:original-config"  # on the endpoint: the config it ran before its first byoc update
TAG_PREFIX = "byoc:"
OUTCOME_TAG = re.compile(r"^byoc:r(\d+)(?::rollback(\d+))?$")  # revision N; K for a rollback event
# An endpoint has at most 50 tags (SageMaker AddTags; "Tagging AWS resources"): history keeps 20 events.
KEEP_OUTCOME_TAGS = 20
UNFINISHED = ("in-progress", "failing")


def outcome_key(n: int) -> str:
    """The endpoint tag recording revision n's attempt (matches OUTCOME_TAG)."""
    return f"byoc:r{n}"


def _rollback_key(n: int, k: int) -> str:
    return f"byoc:r{n}:rollback{k}"


def returning(n: int, tags: dict, reuse: bool) -> bool:
    """Whether a run of revision n makes an earlier revision live again (its resources exist already:
    rollback, restore, an update to the image a retained revision runs) rather than deploying or
    resuming revision n's own attempt."""
    return reuse and tags.get(outcome_key(n), "").split(" ")[0] not in UNFINISHED


def attempt_key(n: int, tags: dict, rollback: bool, resume: bool = False) -> str:
    """The endpoint tag recording a run's attempt at revision n: the revision's own `byoc:r<n>`, or a
    rollback's own event: the next number, or when the run resumes watching an unfinished one, that."""
    if not rollback:
        return outcome_key(n)
    events = [(int(m.group(2)), int(m.group(1)), v) for k, v in tags.items()
              if (m := OUTCOME_TAG.match(k)) and m.group(2)]
    open_ = [k for k, target, v in events if resume and target == n and v.split(" ")[0] in UNFINISHED]
    return _rollback_key(n, max(open_) if open_ else max([k for k, _, _ in events], default=0) + 1)


def unfinished_attempt(n: int, tags: dict) -> tuple:
    """(key, value) of the attempt at revision n an earlier run left unfinished, or ("", "")."""
    for rollback in (False, True):
        key = attempt_key(n, tags, rollback, resume=True)
        if tags.get(key, "").split(" ")[0] in UNFINISHED:
            return key, tags[key]
    return "", ""


def base(name: str) -> str:
    return REV_SUFFIX.sub("", name)


def number(name: str) -> Optional[int]:
    m = REV_SUFFIX.search(name)
    return int(m.group(1)) if m else None


def _with_suffix(stem: str, n: int) -> str:
    suffix = f"-r{n}"
    return stem[: MAX_NAME - len(suffix)].rstrip("-") + suffix


def names(endpoint: str, models: list, config: str, n: int) -> tuple:
    """({current model: new model}, new config) for revision n."""
    own = solution.stems(solution.recognise(endpoint))
    if own and len(set(models)) == 1:
        return {models[0]: _with_suffix(own[0], n)}, _with_suffix(own[1], n)
    return {old: _with_suffix(base(old), n) for old in dict.fromkeys(models)}, _with_suffix(base(config), n)


def model_names(stems: list, n: int) -> list:
    """The models of revision n, one per model stem (`names` made them so)."""
    return [_with_suffix(stem, n) for stem in stems]


def config_stem(endpoint: str, config: str) -> str:
    own = solution.stems(solution.recognise(endpoint))
    return own[1] if own else base(config)


@dataclass
class Revision:
    number: int
    config: Optional[str] = None
    models: Optional[list] = None
    image: Optional[str] = None
    digest: Optional[str] = None
    created_at: Optional[str] = None
    created_by: Optional[str] = None
    outcome: str = "retained"  # original | live | retained | failed | superseded | in-progress
    live: bool = False
    instance_types: Optional[str] = None  # "variant=type ..."
    env_changes: Optional[str] = None  # "KEY=value SECRET_NAME -REMOVED ..."
    note: Optional[str] = None

    def to_dict(self) -> dict:
        return asdict(self)


def tags_dict(tags: list) -> dict:
    return {t["Key"]: t["Value"] for t in tags or []}


def merge_tags(original: dict, extra: list) -> list:
    """byoc's tags first, then the resource's own (aws: ones are reserved), within SageMaker's 50."""
    theirs = [{"Key": k, "Value": v} for k, v in original.items() if not k.startswith((TAG_PREFIX, "aws:"))]
    return (list(extra) + theirs)[:50]


def list_tags(aws: Aws, arn: str) -> dict:
    out: dict = {}
    for page in aws.sagemaker.paginate("list_tags", ResourceArn=arn):
        out.update(tags_dict(page.get("Tags") or []))
    return out


GET_RESOURCES_ARNS = 100  # ResourceARNList: "Minimum number of 1 item. Maximum number of 100 items." (GetResources)


def indexed_tags(aws: Aws, arns: list) -> dict:
    """arn -> tags of the ARNs the Resource Groups Tagging API lists (GetResources, one call per 100
    ARNs: a fleet's copy sources in one request instead of a ListTags each). Its index is eventually
    consistent: a resource created or tagged moments ago may be missing (its caller reads it with
    ListTags) or listed with the tags it had then. Nothing when tag:GetResources is denied or fails."""
    wanted = list(dict.fromkeys(a for a in arns if a))
    out: dict = {}
    for i in range(0, len(wanted), GET_RESOURCES_ARNS):
        try:
            page = aws.client("resourcegroupstaggingapi").get_resources(
                ResourceARNList=wanted[i:i + GET_RESOURCES_ARNS])
        except (AuthError, AwsError):
            return out
        for mapping in page.get("ResourceTagMappingList") or []:
            out[mapping["ResourceARN"]] = tags_dict(mapping.get("Tags") or [])
    return out


def revision_tags(endpoint: str, n: int, image: str, digest: str, by: str, at: str, instance_types: str = "",
                  env_changes: str = "") -> list:
    return [{"Key": k, "Value": _tag_value(v)} for k, v in (
        (T_ENDPOINT, endpoint), (T_REVISION, str(n)), (T_IMAGE, image), (T_DIGEST, digest),
        (T_BY, by), (T_AT, at), (T_TYPES, instance_types), (T_ENV, env_changes)) if v]


_TAG_VALUE = re.compile(r"[^\w\s.:/=+\-@]")  # SageMaker tag values: ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$ (Tag)


def _tag_value(value: str) -> str:
    return _TAG_VALUE.sub("_", value)[:256]


def outcome_value(outcome: str, at: str, repository: str, digest: str, by: str) -> str:
    by_short = by.split(":", 5)[-1] if by else "unknown"
    return f"{outcome} {at} {repository}@{digest} {by_short}"[:256]


def parse_outcome(value: str) -> dict:
    parts = value.split(" ")
    out = {"outcome": parts[0] if parts else "", "created_at": parts[1] if len(parts) > 1 else None}
    if len(parts) > 2 and "@" in parts[2]:
        out["repository"], out["digest"] = parts[2].split("@", 1)
    if len(parts) > 3:
        out["created_by"] = " ".join(parts[3:])
    return out


def record_outcome(aws: Aws, endpoint_arn: str, key: str, value: str, existing: dict) -> None:
    """Tag the endpoint with an attempt's outcome (`key`: `attempt_key`) and keep only the newest
    KEEP_OUTCOME_TAGS history events."""
    try:
        aws.sagemaker.add_tags(ResourceArn=endpoint_arn, Tags=[{"Key": key, "Value": value}])
        olds = sorted((iso_utc(parse_outcome(v)["created_at"]) or "", k) for k, v in existing.items()
                      if OUTCOME_TAG.match(k) and k != key)
        drop = [k for _, k in olds[: max(0, len(olds) + 1 - KEEP_OUTCOME_TAGS)]]
        if drop:
            aws.sagemaker.delete_tags(ResourceArn=endpoint_arn, TagKeys=drop)
    except AuthError:
        pass  # history falls back to the -r<N> names of retained configs


def note(aws: Aws, endpoint: str, config: str, n: int, text: str) -> None:
    """Tag revision n's endpoint config with what a later run did for it (shown by history)."""
    for c in listed_configs(aws, endpoint, config):
        if number(c["EndpointConfigName"]) != n:
            continue
        try:
            aws.sagemaker.add_tags(ResourceArn=c["EndpointConfigArn"], Tags=[{"Key": T_NOTE, "Value": _tag_value(text)}])
        except (AwsError, AuthError):
            pass  # the note is a courtesy; the outcome tags still tell the story


def given_image(aws: Aws, view: EndpointView) -> Optional[str]:
    """The image URI as the user gave it (with its tag) for the live config, when byoc made it."""
    if number(view.config_name) is None or not view.config.get("EndpointConfigArn"):
        return None
    return _safe_tags(aws, view.config["EndpointConfigArn"]).get(T_IMAGE)


def listed_configs(aws: Aws, endpoint: str, config: str) -> list:
    """ListEndpointConfigs entries (name, ARN, CreationTime) of this endpoint's byoc configs
    (<stem>-r<N>) that still exist."""
    stem = config_stem(endpoint, config)
    found = []
    # A stem as long as the name limit is cut to make room for -r<N>; the cut stem still contains [:50].
    for page in aws.sagemaker.paginate("list_endpoint_configs", NameContains=stem[:50], MaxResults=100):
        for c in page.get("EndpointConfigs", []):
            name = c["EndpointConfigName"]
            n = number(name)
            if n is not None and name == _with_suffix(stem, n):
                found.append(c)
    return found


def retained_configs(aws: Aws, endpoint: str, config: str) -> list:
    """Names of this endpoint's byoc configs (<stem>-r<N>) that still exist."""
    return [c["EndpointConfigName"] for c in listed_configs(aws, endpoint, config)]


def history(aws: Aws, view: EndpointView, endpoint_tags: Optional[dict] = None) -> List[Revision]:
    """Every known revision of the endpoint, newest first, with which one is live."""
    tags = endpoint_tags if endpoint_tags is not None else list_tags(aws, view.endpoint["EndpointArn"])
    revs: dict = {}
    for key, value in tags.items():
        m = OUTCOME_TAG.match(key)
        if m and not m.group(2):  # rollback events: `rollbacks`
            info = parse_outcome(value)
            revs[int(m.group(1))] = Revision(number=int(m.group(1)), digest=info.get("digest"),
                                             created_at=info.get("created_at"), created_by=info.get("created_by"),
                                             outcome=info["outcome"],
                                             image=f"{info['repository']}@{info['digest']}" if info.get("digest") else None)
    configs = retained_configs(aws, view.name, view.config_name)
    original = tags.get(T_ORIGINAL) or (None if number(view.config_name) is not None else view.config_name)
    for name in configs + ([original] if original else []):
        n = number(name) if name != original else 0
        if n is None:  # retained_configs lists revision names only
            continue
        try:
            cfg = aws.sagemaker.describe_endpoint_config(EndpointConfigName=name)
        except AwsError:
            continue
        ctags = _safe_tags(aws, cfg["EndpointConfigArn"])
        models = [v["ModelName"] for v in cfg.get("ProductionVariants", [])]
        rev = revs.get(n) or Revision(number=n)
        rev.config, rev.models = name, models
        rev.image = ctags.get(T_IMAGE) or rev.image or _model_image(aws, models)
        rev.digest = ctags.get(T_DIGEST) or rev.digest or _digest_of(rev.image)
        # When and by whom the revision was made: a later rollback to it (which rewrites its outcome tag)
        # must not change that.
        rev.created_at = ctags.get(T_AT) or cfg.get("CreationTime") or rev.created_at
        rev.created_by = ctags.get(T_BY) or (None if n == 0 else rev.created_by)
        rev.instance_types = ctags.get(T_TYPES) or " ".join(
            f"{v['VariantName']}={v['InstanceType']}" for v in cfg.get("ProductionVariants", []) if v.get("InstanceType"))
        rev.env_changes, rev.note = ctags.get(T_ENV), ctags.get(T_NOTE)
        if n == 0:
            rev.outcome = "original"
        elif rev.outcome in ("", "failed") and rev.config:
            rev.outcome = "retained"
        revs[n] = rev
    for rev in revs.values():
        rev.created_at = iso_utc(rev.created_at)
        rev.live = rev.config == view.config_name
        if rev.live and rev.number:
            rev.outcome = "live"
        elif rev.outcome == "deployed":
            rev.outcome = "retained" if rev.config else "superseded"
    return sorted(revs.values(), key=lambda r: r.number, reverse=True)


@dataclass
class Rollback:
    """A run that made revision `revision` live again, as the endpoint's `byoc:r<N>:rollback<K>` records it."""

    number: int  # K: rollbacks of the endpoint count up
    revision: int
    outcome: str  # in-progress | failing | deployed | failed
    at: Optional[str] = None  # when the outcome was recorded (ISO 8601 UTC, Z)
    by: Optional[str] = None
    image: Optional[str] = None

    def to_dict(self) -> dict:
        return asdict(self)


def rollbacks(tags: dict) -> List[Rollback]:
    """The endpoint's recorded rollback events, newest first."""
    out = []
    for key, value in tags.items():
        m = OUTCOME_TAG.match(key)
        if m and m.group(2):
            info = parse_outcome(value)
            out.append(Rollback(number=int(m.group(2)), revision=int(m.group(1)), outcome=info["outcome"],
                                at=iso_utc(info.get("created_at")), by=info.get("created_by"),
                                image=f"{info['repository']}@{info['digest']}" if info.get("digest") else None))
    return sorted(out, key=lambda r: r.number, reverse=True)


def _safe_tags(aws: Aws, arn: str) -> dict:
    try:
        return list_tags(aws, arn)
    except (AwsError, AuthError):
        return {}


def _model_image(aws: Aws, models: list) -> Optional[str]:
    from byoc.endpoint.view import model_image

    for name in models:
        try:
            return model_image(aws.sagemaker.describe_model(ModelName=name))
        except AwsError:
            continue
    return None


def _digest_of(image: Optional[str]) -> Optional[str]:
    return image.split("@", 1)[1] if image and "@" in image else None


def env_diff(before: dict, after: dict) -> dict:
    """{"added": {...}, "changed": {KEY: [old, new]}, "removed": [...]}, values of secret names masked."""
    return {"added": {k: shown(k, after[k]) for k in after if k not in before},
            "changed": {k: [shown(k, before[k]), shown(k, after[k])] for k in after
                        if k in before and before[k] != after[k]},
            "removed": sorted(k for k in before if k not in after)}


def _described(aws: Aws, rev: Revision) -> tuple:
    """({variant: instance type}, environment of the first model, image) of a retained revision."""
    from byoc.endpoint.view import container, model_image

    cfg = aws.sagemaker.describe_endpoint_config(EndpointConfigName=rev.config)
    model = aws.sagemaker.describe_model(ModelName=cfg["ProductionVariants"][0]["ModelName"])
    env = {k: v for k, v in (container(model).get("Environment") or {}).items() if k != "IMAGE_URL"}
    types = {v["VariantName"]: v.get("InstanceType") for v in cfg["ProductionVariants"]}
    return types, env, rev.image or model_image(model)


def diff(aws: Aws, revs: list, n: int) -> dict:
    """What revision n changed from the retained revision before it: image, instance types, environment
    (read from both revisions' configs and models; IMAGE_URL, which follows the image, left out)."""
    retained = sorted((r for r in revs if r.config), key=lambda r: r.number)
    mine = [r for r in retained if r.number == n]
    earlier = [r for r in retained if r.number < n]
    if not mine or not earlier:
        known = ", ".join(str(r.number) for r in retained) or "none"
        raise BadInput(f"Revision {n} has no retained earlier revision to compare with (retained: {known}).",
                       "Pick a retained revision other than the oldest; see `byoc history ENDPOINT`.")
    old, new = earlier[-1], mine[0]
    (t0, e0, i0), (t1, e1, i1) = _described(aws, old), _described(aws, new)
    return {"from": old.number, "to": new.number, "image": [i0, i1] if i0 != i1 else None,
            "instance_types": {v: [t0.get(v), t1.get(v)] for v in sorted(set(t0) | set(t1)) if t0.get(v) != t1.get(v)},
            "env": env_diff(e0, e1)}
