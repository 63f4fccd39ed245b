"""`byoc doctor`: is this environment ready for byoc? Checks with PASS, WARN or FAIL and the fix.

Credentials (STS GetCallerIdentity), region and partition, clock skew, every action byoc needs
(simulated for the caller with iam:SimulatePrincipalPolicy; when simulation is denied or
unavailable, harmless read probes instead), the container builder and the Python version.
Nothing is changed in AWS.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from email.utils import parsedate_to_datetime
from typing import Callable, Optional

from byoc.aws import partitions
from byoc.aws.client import Aws
from byoc.endpoint import solution
from byoc.errors import EXIT_AUTH, EXIT_FAILED, EXIT_OK, AuthError, AwsError, BadInput, ByocError
from byoc.iam import policy
from byoc.images import ref as image_ref

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
# "A request must reach AWS within five minutes of the time stamp in the request"
# (IAM User Guide, "Elements of an AWS API request signature").
SKEW_FAIL = 300.0
SKEW_WARN = 60.0
MIN_PYTHON = (3, 9)  # AWS CloudShell's python3
SAGEMAKER = "sagemaker.amazonaws.com"


@dataclass
class DoctorCheck:
    name: str
    status: str
    detail: str
    fix: str = ""
    auth: bool = False  # a credentials or permission problem (exit code 4 when it FAILs)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("auth")
        return out


@dataclass
class Report:
    checks: list
    missing: list  # IAM actions byoc needs that the caller lacks
    method: str  # "simulation", "probes" or "" (no permission check was possible)

    @property
    def exit_code(self) -> int:
        failed = [c for c in self.checks if c.status == FAIL]
        if any(c.auth for c in failed):
            return EXIT_AUTH
        return EXIT_FAILED if failed else EXIT_OK

    def to_dict(self) -> dict:
        return {"ok": self.exit_code == EXIT_OK, "checks": [c.to_dict() for c in self.checks],
                "missing": self.missing, "permission_check": self.method}


def python_check(version: tuple = tuple(sys.version_info[:3])) -> DoctorCheck:
    text = ".".join(str(v) for v in version)
    if tuple(version[:2]) >= MIN_PYTHON:
        return DoctorCheck("python", PASS, f"Python {text}")
    return DoctorCheck("python", FAIL, f"Python {text} is older than 3.9",
                 "Use Python 3.9 or newer (AWS CloudShell's python3 is 3.9).")


def builder_check(which: Callable[[str], Optional[str]] = shutil.which,
                  engine: Optional[Callable[[str], Optional[str]]] = None) -> DoctorCheck:
    from byoc.container.build import BUILDERS, INSTALL_FIX, NO_ENGINE_FIX, engine_problem

    for name in BUILDERS:
        path = which(name)
        if path:
            problem = (engine or engine_problem)(path)
            if problem:
                return DoctorCheck("builder", WARN, f"{name} ({path}) is installed but its engine does not answer: "
                                   f"{problem}", NO_ENGINE_FIX)
            return DoctorCheck("builder", PASS, f"{name} ({path})")
    return DoctorCheck("builder", WARN, "no docker, finch or podman on PATH: `byoc build` cannot run here", INSTALL_FIX)


def skew_check(server_date: Optional[str], now: Optional[float] = None) -> DoctorCheck:
    """Local clock against the Date header of an AWS response."""
    if not server_date:
        return DoctorCheck("clock", WARN, "the AWS response carried no Date header; skew not measured")
    try:
        server = parsedate_to_datetime(server_date).timestamp()
    except (TypeError, ValueError):
        return DoctorCheck("clock", WARN, f"unreadable Date header '{server_date}'; skew not measured")
    skew = (time.time() if now is None else now) - server
    detail = f"local clock is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} AWS"
    fix = "Synchronise the clock (e.g. `sudo chronyc makestep` or enable NTP): signed requests expire after 5 minutes."
    if abs(skew) >= SKEW_FAIL:
        return DoctorCheck("clock", FAIL, detail, fix, auth=True)
    if abs(skew) >= SKEW_WARN:
        return DoctorCheck("clock", WARN, detail, fix)
    return DoctorCheck("clock", PASS, detail)


def simulation_source(caller_arn: str) -> Optional[str]:
    """The PolicySourceArn for a caller: the user itself, or the role behind an assumed-role session."""
    parts = caller_arn.split(":", 5)
    if len(parts) != 6:
        return None
    partition, service, account, resource = parts[1], parts[2], parts[4], parts[5]
    if service == "iam" and resource.startswith("user/"):
        return caller_arn
    if service == "sts" and resource.startswith("assumed-role/"):
        role = resource.split("/")[1]
        return f"arn:{partition}:iam::{account}:role/{role}"
    return None


def endpoint_scope(aws: Aws, name: str, base: policy.Scope) -> tuple:
    """The scope of one real endpoint (its config, models, role, repository, bucket) and a check."""
    from byoc.endpoint import view as endpoint_view

    try:
        view = endpoint_view.load(aws, name)
    except AuthError:
        raise
    except ByocError as exc:
        return base, DoctorCheck("endpoint", FAIL, exc.message, exc.fix)
    role = repository = bucket = None
    for model in view.models.values():
        arn = model.get("ExecutionRoleArn", "")
        role = role or (arn.split(":role/", 1)[1] if ":role/" in arn else None)
        ref = image_ref.try_parse(endpoint_view.model_image(model) or "")
        if ref and ref.account == base.account and ref.region == aws.region:
            repository = repository or ref.repository
    output = (view.config.get("AsyncInferenceConfig") or {}).get("OutputConfig", {}).get("S3OutputPath", "")
    if output.startswith("s3://"):
        bucket = output[5:].split("/", 1)[0]
    models = sorted(view.models)
    scope = replace(base, endpoints=(name.lower(),), models=(models[0].lower(),) if models else base.models,
                    configs=(view.config_name.lower(),) if view.config_name else base.configs,
                    roles=(role,) if role else base.roles, repository=repository or base.repository,
                    bucket=bucket or base.bucket)
    status = view.status
    if status == "InService":
        check = DoctorCheck("endpoint", PASS, f"{name}: InService")
    elif status == "Failed":
        reason = view.endpoint.get("FailureReason", "")
        check = DoctorCheck("endpoint", WARN, f"{name}: Failed {reason}".strip(),
                      "A Failed endpoint cannot be updated in place: `byoc update ENDPOINT IMAGE --strategy recreate`.")
    else:
        check = DoctorCheck("endpoint", WARN, f"{name}: {status}", "Wait until it is InService (`byoc status`).")
    return scope, check


@dataclass
class Need:
    """Actions one feature needs on some resources (from the generated policy)."""

    features: list
    actions: list
    resources: list  # ARNs, or ["*"]
    passrole: bool = False


def requirements(selected: list, scope: policy.Scope, username: str = "") -> list:
    """What byoc needs for the selected features, on sample resources: wildcards become names."""
    generated = policy.generate(selected, policy.concrete(scope))
    out = []
    for st in generated.statements:
        resources = st.document["Resource"]
        resources = [r if r == "*" else r.replace("${aws:username}", username or "byoc-check")
                     .replace("*", "byoc-check") for r in (resources if isinstance(resources, list) else [resources])]
        for grant in st.grants:
            out.append(Need([f for f in grant["features"] if f in selected], list(grant["actions"]), resources,
                            "Condition" in st.document))
    return out


def simulate(aws: Aws, source: str, needs: list) -> dict:
    """action -> allowed? for every needed action, one SimulatePrincipalPolicy call per need."""
    allowed: dict = {}
    for need in needs:
        params = {"PolicySourceArn": source, "ActionNames": need.actions}
        if need.resources != ["*"]:
            params["ResourceArns"] = need.resources
        if need.passrole:
            params["ContextEntries"] = [{"ContextKeyName": "iam:PassedToService", "ContextKeyValues": [SAGEMAKER],
                                         "ContextKeyType": "string"}]
        for page in aws.iam.paginate("simulate_principal_policy", **params):
            for result in page.get("EvaluationResults", []):
                name = result["EvalActionName"]
                allowed[name] = allowed.get(name, False) or result["EvalDecision"] == "allowed"
    return allowed


def probes(aws: Aws, endpoint: Optional[str], scope: policy.Scope) -> list:
    """(action, call) read-only probes of actions byoc needs: an AuthError means the action is denied."""
    out = [
        ("sagemaker:ListEndpoints", lambda: aws.sagemaker.list_endpoints(MaxResults=1)),
        ("application-autoscaling:DescribeScalableTargets",
         lambda: aws.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker",
                                                                                  MaxResults=1)),
    ]
    if endpoint:
        out += [
            ("sagemaker:DescribeEndpoint", lambda: aws.sagemaker.describe_endpoint(EndpointName=endpoint)),
            ("logs:DescribeLogStreams", lambda: aws.logs.describe_log_streams(
                logGroupName=f"/aws/sagemaker/Endpoints/{endpoint}", limit=1)),
        ]
    if "*" not in scope.repository and "?" not in scope.repository:
        out.append(("ecr:DescribeImages", lambda: aws.ecr.describe_images(repositoryName=scope.repository,
                                                                          maxResults=1)))
    return out


def run_probes(aws: Aws, endpoint: Optional[str], scope: policy.Scope) -> dict:
    allowed = {}
    for action, call in probes(aws, endpoint, scope):
        try:
            call()
            allowed[action] = True
        except AuthError as exc:
            allowed[exc.action or action] = False
        except AwsError:
            allowed[action] = True  # authorized; the resource may just not exist
    return allowed


def permission_checks(selected: list, needs: list, allowed: dict, method: str, fix: Optional[str] = None) -> tuple:
    """One check per feature, and the sorted list of missing actions; `fix` replaces the usual one."""
    checks, missing = [], set()
    for feature in selected:
        wanted = sorted({a for need in needs if feature in need.features for a in need.actions})
        known = [a for a in wanted if a in allowed]
        denied = [a for a in known if not allowed[a]]
        missing.update(denied)
        label = f"permissions: {feature}"
        hint = "byoc policy" if feature == policy.CORE else f"byoc policy --features {feature}"
        if denied:
            checks.append(DoctorCheck(label, FAIL, "missing " + ", ".join(denied),
                                fix or f"Attach the output of `{hint}` (see `byoc policy --explain`).", auth=True))
        elif len(known) < len(wanted):
            checks.append(DoctorCheck(label, WARN, f"{len(known)} of {len(wanted)} actions checked by {method}; "
                                             f"the others need iam:SimulatePrincipalPolicy",
                                f"Compare your policy with `{hint}`."))
        else:
            checks.append(DoctorCheck(label, PASS, f"{len(wanted)} actions allowed ({method})"))
    return checks, sorted(missing)


def from_document(document: dict, needs: list) -> dict:
    """action -> allowed? read from a policy document (e.g. the guide's) instead of simulating."""
    allowed: dict = {}
    for need in needs:
        context = {"iam:PassedToService": SAGEMAKER} if need.passrole else {}
        for action in need.actions:
            ok = any(policy.allows(document, action, r, context) for r in need.resources)
            allowed[action] = allowed.get(action, False) or ok
    return allowed


def run(aws_factory: Callable[[], Aws], endpoint: Optional[str] = None, features: Optional[str] = None,
        builder_which: Callable[[str], Optional[str]] = shutil.which, document: Optional[dict] = None) -> Report:
    """Every check; AWS errors become FAIL rows, never exceptions. With `document`, permissions
    are read from that identity policy instead of being simulated."""
    selected = policy.parse_features(features)
    checks = [python_check(), builder_check(builder_which)]
    try:
        aws = aws_factory()
    except AuthError as exc:
        checks.insert(0, DoctorCheck("region" if "region" in exc.message else "credentials", FAIL, exc.message, exc.fix,
                               auth=True))
        return Report(checks, [], "")
    part = partitions.for_region(aws.region)
    region_check = DoctorCheck("region", PASS, f"{aws.region} (partition {part.name})")
    if not partitions.known_region(aws.region):
        region_check = DoctorCheck("region", WARN, f"'{aws.region}' is not a region byoc knows (assuming partition aws)",
                             "Check --region / AWS_REGION, e.g. us-east-1 or cn-northwest-1.")
    try:
        identity = aws.identity()
    except AuthError as exc:
        return Report([DoctorCheck("credentials", FAIL, exc.message, exc.fix, auth=True), region_check] + checks, [], "")
    except AwsError as exc:
        return Report([DoctorCheck("credentials", FAIL, f"STS GetCallerIdentity failed: {exc.message}",
                             "Check network access to STS and --endpoint-url.", auth=True), region_check] + checks,
                      [], "")
    head = [DoctorCheck("credentials", PASS, identity["Arn"]), region_check,
            skew_check(identity.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date"))]

    try:
        scope = base_scope = policy.make_scope(part.name, aws.region, identity["Account"])
    except BadInput as exc:
        head[1] = DoctorCheck("region", FAIL, exc.message, exc.fix, auth=True)
        return Report(head + checks, [], "")
    if endpoint:
        try:
            scope, endpoint_check = endpoint_scope(aws, endpoint, scope)
        except AuthError as exc:
            endpoint_check = DoctorCheck("endpoint", FAIL, exc.message, exc.fix, auth=True)
        head.append(endpoint_check)
    arn = identity["Arn"]
    needs = requirements(selected, scope, arn.rsplit("/", 1)[-1] if ":user/" in arn else "")

    allowed, method = {}, ""
    source = simulation_source(identity["Arn"])
    if document is not None:
        allowed, method = from_document(document, needs), "policy file"
    elif identity["Arn"].endswith(":root"):
        head.append(DoctorCheck("simulation", WARN, "signed in as the account's root user: every action is allowed",
                          "Use an IAM user or role with the policy from `byoc policy` instead of root."))
        allowed = {a: True for need in needs for a in need.actions}
        method = "root"
    elif source:
        try:
            allowed, method = simulate(aws, source, needs), "simulation"
        except AuthError as exc:
            head.append(DoctorCheck("simulation", WARN, f"{exc.message} Checked with read probes instead.",
                              exc.fix))
        except AwsError as exc:
            head.append(DoctorCheck("simulation", WARN, f"iam:SimulatePrincipalPolicy is unavailable ({exc.code}); "
                                                  "checked with read probes instead."))
        except Exception as exc:  # noqa: BLE001 - a diagnostic must report, not crash
            head.append(DoctorCheck("simulation", WARN, f"iam:SimulatePrincipalPolicy failed ({type(exc).__name__}); "
                                                  "checked with read probes instead."))
    else:
        head.append(DoctorCheck("simulation", WARN, f"{identity['Arn']} cannot be simulated; checked with read probes"))
    if not method:
        allowed, method = run_probes(aws, endpoint, scope), "probes"
    fix = None
    if document is not None and endpoint and scope is not base_scope:
        fix = pattern_fix(document, endpoint, scope, allowed, requirements(selected, base_scope))
    perm_checks, missing = permission_checks(selected, needs, allowed, method, fix)
    return Report(head + perm_checks + checks, missing, method)


def pattern_fix(document: dict, endpoint: str, scope: policy.Scope, allowed: dict, generic: list) -> Optional[str]:
    """When the policy file grants the denied actions, only not on this endpoint's names or role, the
    `byoc policy` options that would cover them (instead of attaching the very file just checked)."""
    elsewhere = from_document(document, generic)
    if not any(not ok and elsewhere.get(a) for a, ok in allowed.items()):
        return None
    sol = solution.recognise(endpoint)
    pattern = next((p["endpoint"] for p in solution.generation(sol.generation)["patterns"]
                    if endpoint.startswith(p["endpoint"].rstrip("*"))), endpoint) if sol and sol.fields else endpoint
    options = f"--endpoint-pattern '{pattern}'"
    if allowed.get("iam:PassRole") is False:
        options += " " + " ".join(f"--role-pattern '{r}'" for r in scope.roles)
    also = f" (or --solution {sol.generation})" if sol else ""
    return (f"The policy file grants these actions but not on {endpoint}'s resources: generate it with "
            f"`byoc policy {options}`{also}, adding your other patterns with more --endpoint-pattern options.")
