"""`byoc policy`: the least-privilege identity policy for the byoc features you use.

The statements live in data/permissions.json (per feature: actions, resource templates, the
commands that need them); every action must be in data/iam_actions.json, the action lists of the
Service Authorization Reference. `generate` fills the templates for one scope (partition, region,
account, name patterns) and returns an IAM policy document that follows the policy grammar.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, List, Optional, Sequence, Union

from byoc.aws import partitions
from byoc.aws.client import Aws
from byoc.aws.permissions import grant_of, iam_actions, table
from byoc.endpoint import solution
from byoc.errors import BadInput, ByocError

ALL = "all"
CORE = "core"
VERSION = "2012-10-17"

# Aggregate size quotas in non-whitespace characters ("IAM and AWS STS quotas", IAM User Guide).
SIZE_LIMITS = (("inline user policy", 2048), ("inline group policy", 5120), ("managed policy", 6144),
               ("inline role policy", 10240))

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
# SageMaker names: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}; patterns may add * and ?.
_NAME_PATTERN_RE = re.compile(r"^[A-Za-z0-9*?][A-Za-z0-9*?-]{0,62}$")
# IAM role names: alphanumerics and +=,.@_- (and a path of such segments); patterns add * and ?.
_ROLE_PATTERN_RE = re.compile(r"^[\w+=,.@/*?-]{1,512}$")
_REPOSITORY_RE = re.compile(r"^[a-z0-9*?][a-z0-9._/*?-]{0,255}$")
_BUCKET_RE = re.compile(r"^[a-z0-9*?][a-z0-9.*?-]{0,62}$")
_PLACEHOLDER_RE = re.compile(r"(?<!\$)\{(partition|region|account|endpoint|model|config|role|repository|bucket)\}")


def features() -> list:
    """The features a user can choose (core is always included)."""
    return [f for f in table()["features"] if f != CORE]


def parse_features(text: Optional[str]) -> list:
    """'update,logs' -> ['core', 'update', 'logs'] in table order. None or 'all' means every
    feature except the optional ones (doctor), which are only included by name: 'all,doctor'."""
    known = features()
    optional = set(table()["optional"])
    words = [w.strip().lower() for w in (text or ALL).split(",") if w.strip()] or [ALL]
    unknown = [w for w in words if w not in known and w not in (ALL, CORE)]
    if unknown:
        raise BadInput(f"Unknown feature '{unknown[0]}'.",
                       f"Choose from {','.join(known)} or {ALL} (comma-separated).")
    return [CORE] + [f for f in known if f in words or (ALL in words and f not in optional)]


@dataclass(frozen=True)
class Scope:
    """What the resource templates are filled with: one value, or several patterns for the names."""

    partition: str
    region: str
    account: str
    endpoints: tuple
    models: tuple
    configs: tuple
    roles: tuple
    repository: str
    bucket: str
    generations: tuple = ()  # the solution generations the name patterns cover

    def fill(self, template: str) -> list:
        """Every string the template gives, one per combination of its placeholders' values. Only
        byoc's placeholders: IAM policy variables such as ${aws:username} stay as they are."""
        values = {"partition": (self.partition,), "region": (self.region,), "account": (self.account,),
                  "endpoint": self.endpoints, "model": self.models, "config": self.configs, "role": self.roles,
                  "repository": (self.repository,), "bucket": (self.bucket,)}
        keys = sorted(set(_PLACEHOLDER_RE.findall(template)))
        out = []
        for combo in itertools.product(*(values[k] for k in keys)):
            chosen = dict(zip(keys, combo))

            def fill(m: re.Match[str], chosen: dict = chosen) -> str:
                return chosen[m.group(1)]

            out.append(_PLACEHOLDER_RE.sub(fill, template))
        return out


# A pattern option as given: one string (maybe comma-separated), a list of them, or nothing.
Patterns = Union[str, Sequence[str], None]


def split_patterns(values: Patterns) -> list:
    """Repeated options and comma-separated lists as one list, in order, without repeats."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return list(dict.fromkeys(p.strip() for v in values for p in str(v).split(",") if p.strip()))


def _rules() -> list:
    """(generation id, endpoint prefix, model prefix, config prefix) of the solution's naming."""
    return [(g["id"], p["endpoint"].rstrip("*"), p["model"].rstrip("*"), p["config"].rstrip("*"))
            for g in solution.generations() for p in g["patterns"]]


def derive(endpoint: str) -> tuple:
    """(model, config, generation or None) patterns for an endpoint pattern. byoc names the models and
    configs it creates after the current ones, so both end in '*'. SageMaker ARNs carry names in lower case."""
    endpoint = endpoint.lower()
    model = config = endpoint
    found = None
    for gid, prefix, model_prefix, config_prefix in _rules():
        if endpoint.startswith(prefix):
            model, config, found = (model_prefix + endpoint[len(prefix):], config_prefix + endpoint[len(prefix):],
                                    gid)
            break
    star = lambda p: p if p.endswith("*") else p + "*"  # noqa: E731
    return star(model), star(config), found


def make_scope(partition: Optional[str], region: str, account: str, endpoint: Patterns = None, role: Patterns = None,
               repository: Optional[str] = None, bucket: Optional[str] = None, generations: Patterns = None) -> Scope:
    """Check every part of the scope (BadInput names the first problem) and derive the rest.

    `endpoint` and `role` are patterns (a string, a list, comma-separated lists). Without `endpoint`
    the names are those of the solution `generations` (default: every generation); without `role`,
    the execution roles of the generations the endpoint patterns belong to (all when none does)."""
    defaults = table()["defaults"]
    known = solution.ids()
    gens = split_patterns(generations) or ([] if endpoint else known)
    unknown = [g for g in gens if g not in known]
    if unknown:
        raise BadInput(f"Unknown solution generation '{unknown[0]}'.", f"Use one of {', '.join(known)}.")
    endpoints = split_patterns(endpoint) or [p["endpoint"] for g in gens for p in solution.generation(g)["patterns"]]
    roles = split_patterns(role)
    repository = repository or defaults["repository"]
    bucket = bucket or defaults["bucket"]
    if region != "*" and not _REGION_RE.match(region or ""):
        raise BadInput(f"'{region}' is not an AWS region.", "Pass --region like us-east-1, cn-northwest-1 or '*'.")
    if not _ACCOUNT_RE.match(account or ""):
        raise BadInput(f"'{account}' is not an AWS account id.", "Pass --account with the 12-digit account id.")
    names = partitions.names()
    if partition is None:
        if region == "*":
            raise BadInput("--region '*' needs --partition.", f"Add --partition ({', '.join(names)}).")
        partition = partitions.for_region(region).name
    elif partition not in names:
        raise BadInput(f"Unknown partition '{partition}'.", f"Use one of {', '.join(names)}.")
    elif region != "*" and partitions.for_region(region).name != partition:
        raise BadInput(f"Region {region} is not in partition {partition} but in {partitions.for_region(region).name}.",
                       "Drop --partition (it follows the region) or fix --region.")
    for pattern in endpoints:
        if not _NAME_PATTERN_RE.match(pattern):
            raise BadInput(f"--endpoint-pattern '{pattern}' cannot match SageMaker endpoint names.",
                           "Use letters, digits, '-' and the wildcards * and ?, e.g. infer-endpoint-* or sd-async-* "
                           "(several: repeat the option or separate them with commas).")
    for pattern in roles:
        if not _ROLE_PATTERN_RE.match(pattern):
            raise BadInput(f"--role-pattern '{pattern}' cannot match IAM role names.",
                           "Use letters, digits, +=,.@_-/ and the wildcards * and ?, e.g. ESDRole-*.")
    if not _REPOSITORY_RE.match(repository):
        raise BadInput(f"--repository '{repository}' is not an ECR repository name or pattern.",
                       "Use lower-case letters, digits, ._-/ and * or ?, e.g. my-sd-images or sd/*.")
    if not _BUCKET_RE.match(bucket):
        raise BadInput(f"--bucket-pattern '{bucket}' cannot match S3 bucket names.",
                       "Use lower-case letters, digits, '.', '-' and * or ?.")
    derived = [derive(p) for p in endpoints]
    covered = list(dict.fromkeys(d[2] for d in derived if d[2])) or ([] if endpoint else gens)
    if not roles:
        roles = [r for g in (covered or known) for r in solution.generation(g)["roles"]]
    return Scope(partition, region, account, tuple(dict.fromkeys(p.lower() for p in endpoints)),
                 tuple(dict.fromkeys(d[0] for d in derived)), tuple(dict.fromkeys(d[1] for d in derived)),
                 tuple(dict.fromkeys(roles)), repository, bucket, tuple(covered))


@dataclass
class Found:
    """The solution generations whose endpoints a region has, and a sentence saying so."""

    generations: list
    note: str


def generations_in_region(aws: Aws) -> Found:
    """ListEndpoints (names say the generation); every generation when the region cannot be listed
    (no credentials, offline, denied) or has none of the solution's endpoints."""
    everything = ", ".join(p["endpoint"] for g in solution.generations() for p in g["patterns"])
    try:
        names = [e["EndpointName"] for page in aws.sagemaker.paginate("list_endpoints", MaxResults=100)
                 for e in page.get("Endpoints", [])]
    except ByocError as exc:
        return Found([], f"could not list the endpoints of the region ({exc.message.rstrip('.')}); the policy "
                         f"covers every solution generation ({everything}). Use --solution or --endpoint-pattern "
                         "to narrow it.")
    counts: dict = {}
    for name in names:
        sol = solution.recognise(name)
        if sol:
            counts[sol.generation] = counts.get(sol.generation, 0) + 1
    others = len(names) - sum(counts.values())
    tail = f"; {others} other endpoint(s) are not covered (add --endpoint-pattern)" if others else ""
    if not counts:
        return Found([], f"no endpoint of the solution in {aws.region}; the policy covers every solution "
                         f"generation ({everything}){tail}.")
    found = [g for g in solution.ids() if g in counts]
    listed = ", ".join(f"{g} ({counts[g]} endpoint{'s' if counts[g] > 1 else ''})" for g in found)
    return Found(found, f"scoped to the solution generations found in {aws.region}: {listed}{tail}.")


def concrete(scope: Scope, sample: str = "byoc-check") -> Scope:
    """The same scope with wildcards replaced by a sample name, for simulating one request."""
    fill = lambda p: p.replace("*", sample).replace("?", "x")  # noqa: E731
    many = lambda ps: tuple(dict.fromkeys(fill(p) for p in ps))  # noqa: E731
    return replace(scope, endpoints=many(scope.endpoints), models=many(scope.models), configs=many(scope.configs),
                   roles=many(scope.roles), repository=fill(scope.repository), bucket=fill(scope.bucket))


@dataclass
class Statement:
    """One statement of the generated policy and, per feature, why byoc needs its actions."""

    sid: str
    grants: list  # the table's grants (features, actions, commands, why) that the selection needs
    document: dict

    @property
    def features(self) -> list:
        return [f for g in self.grants for f in g["features"]]


@dataclass
class Policy:
    features: list
    scope: Scope
    statements: list = field(default_factory=list)

    @property
    def document(self) -> dict:
        return {"Version": VERSION, "Statement": [s.document for s in self.statements]}

    @property
    def actions(self) -> set:
        return {a for s in self.statements for a in _as_list(s.document["Action"])}

    @property
    def size(self) -> int:
        """Characters IAM counts against its size quotas (whitespace excluded)."""
        return len(re.sub(r"\s", "", json.dumps(self.document, separators=(",", ":"))))

    def fits(self) -> list:
        return [name for name, limit in SIZE_LIMITS if self.size <= limit]


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, list) else [value]


def _resources(row: dict, scope: Optional[Scope]) -> Union[str, List[str]]:
    templates = table()["resources"]
    arns = sorted({arn for r in row["resources"] for arn in (scope.fill(templates[r]) if scope else [templates[r]])})
    return arns[0] if len(arns) == 1 else arns


def generate(selected: list, scope: Scope) -> Policy:
    """The policy for the selected features (from parse_features) in one scope: one statement per
    resource scope of the table, holding the actions of the selected features only."""
    policy = Policy(list(selected), scope)
    for row in table()["statements"]:
        grants = [g for g in row["grants"] if set(g["features"]) & set(selected)]
        if not grants:
            continue
        actions = sorted({a for g in grants for a in g["actions"]})
        unknown = [a for a in actions if a not in iam_actions()]
        if unknown:
            raise ByocError(f"data/permissions.json names {unknown[0]}, which is not an IAM action.",
                            "Fix the table: action names come from data/iam_actions.json.")
        doc = {"Sid": row["sid"], "Effect": "Allow", "Action": actions[0] if len(actions) == 1 else actions,
               "Resource": _resources(row, scope)}
        if row.get("condition"):
            doc["Condition"] = row["condition"]
        policy.statements.append(Statement(row["sid"], grants, doc))
    wrong = problems(policy.document)
    if wrong:
        raise ByocError(f"The generated policy is invalid: {wrong[0]}.", "Fix data/permissions.json.")
    return policy


def statement_for(action: str, scope: Optional[Scope] = None) -> Optional[dict]:
    """A statement granting just `action` on the table's resources, filled for `scope` (or with
    the templates' placeholders)."""
    found = grant_of(action)
    if not found:
        return None
    row, _, name = found
    doc = {"Effect": "Allow", "Action": name, "Resource": _resources(row, scope)}
    if row.get("condition"):
        doc["Condition"] = row["condition"]
    return doc


# -- the IAM policy grammar ("IAM JSON policy element reference") ------------------------------

_SID_RE = re.compile(r"^[A-Za-z0-9]*$")
_ARN_RE = re.compile(r"^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b|\*):[a-z0-9*-]+:[a-z0-9*-]*:(\d{12}|\*)?:.+$")
_ELEMENTS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition", "Principal",
             "NotPrincipal"}


def problems(document: dict) -> list:
    """Everything that makes `document` an invalid identity policy, or names an unknown action."""
    out = []
    if document.get("Version") not in ("2012-10-17", "2008-10-17"):
        out.append("Version must be 2012-10-17")
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        return out + ["Statement must be a non-empty list"]
    sids = set()
    for i, st in enumerate(statements):
        where = f"statement {i + 1}"
        extra = set(st) - _ELEMENTS
        if extra:
            out.append(f"{where}: unknown element {sorted(extra)[0]}")
        if "Principal" in st or "NotPrincipal" in st:
            out.append(f"{where}: identity policies take no Principal")
        sid = st.get("Sid", "")
        if not _SID_RE.match(str(sid)):
            out.append(f"{where}: Sid '{sid}' must be alphanumeric")
        if sid and sid in sids:
            out.append(f"{where}: duplicate Sid '{sid}'")
        sids.add(sid)
        if st.get("Effect") not in ("Allow", "Deny"):
            out.append(f"{where}: Effect must be Allow or Deny")
        if ("Action" in st) == ("NotAction" in st):
            out.append(f"{where}: needs exactly one of Action and NotAction")
        if ("Resource" in st) == ("NotResource" in st):
            out.append(f"{where}: needs exactly one of Resource and NotResource")
        for action in _as_list(st.get("Action", st.get("NotAction", []))):
            if action != "*" and not _known(action):
                out.append(f"{where}: {action} is not an IAM action")
        for arn in _as_list(st.get("Resource", st.get("NotResource", []))):
            if arn != "*" and not _ARN_RE.match(str(arn)):
                out.append(f"{where}: {arn} is not an ARN")
        condition = st.get("Condition", {})
        if not isinstance(condition, dict) or not all(isinstance(v, dict) for v in condition.values()):
            out.append(f"{where}: Condition must map operators to {{key: values}}")
    return out


@lru_cache(maxsize=1)
def _known_lower() -> frozenset:
    return frozenset(a.lower() for a in iam_actions())


def _known(action: str) -> bool:
    if "*" in action or "?" in action:
        rx = re.compile("^" + re.escape(action).replace(r"\*", ".*").replace(r"\?", ".") + "$", re.IGNORECASE)
        return any(rx.match(a) for a in iam_actions())
    return action.lower() in _known_lower()


# -- reading a policy you already have -----------------------------------------------------------

def _glob(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.IGNORECASE if ignore_case else 0)


def _arn_match(pattern: str, arn: str) -> bool:
    # Wildcards stay within one ARN field; the resource part (after the fifth colon) is one field.
    if pattern == "*":
        return True
    p, a = pattern.split(":", 5), arn.split(":", 5)
    if len(p) != len(a):
        return bool(_glob(pattern).match(arn))
    return all(_glob(x).match(y) for x, y in zip(p, a))


def _condition_holds(condition: dict, context: dict) -> Optional[bool]:
    """True/False for String(Not)Equals/Like on keys of `context`; None for anything else."""
    tests = {"stringequals": lambda v, w: v == w, "stringlike": lambda v, w: bool(_glob(w).match(v))}
    for op, pairs in condition.items():
        negated = op.lower().startswith("stringnot")
        test = tests.get(op.lower().replace("not", ""))
        if test is None or not isinstance(pairs, dict):
            return None
        for key, wanted in pairs.items():
            value = next((v for k, v in context.items() if k.lower() == key.lower()), None)
            if value is None:
                return None
            hit = any(test(value, str(w)) for w in _as_list(wanted))
            if hit == negated:
                return False
    return True


def allows(document: dict, action: str, resource: str, context: Optional[dict] = None) -> bool:
    """Does an identity policy document allow one request? Deny beats Allow; Action/NotAction and
    Resource/NotResource with wildcards; conditions: String(Not)Equals/Like on `context` keys. A
    statement with any other condition is read cautiously: its Allow does not count, its Deny does."""
    context = context or {}
    allowed = False
    statements = document.get("Statement", [])
    for st in [statements] if isinstance(statements, dict) else statements:
        if "Action" in st:
            hit = any(_glob(str(p), True).match(action) for p in _as_list(st["Action"]))
        else:
            hit = not any(_glob(str(p), True).match(action) for p in _as_list(st.get("NotAction", [])))
        if "Resource" in st:
            hit = hit and any(_arn_match(str(p), resource) for p in _as_list(st["Resource"]))
        else:
            hit = hit and not any(_arn_match(str(p), resource) for p in _as_list(st.get("NotResource", [])))
        if not hit:
            continue
        holds = _condition_holds(st.get("Condition") or {}, context)
        if st.get("Effect") == "Deny" and holds is not False:
            return False
        if st.get("Effect") == "Allow" and holds:
            allowed = True
    return allowed
