"""IAM enforcement for the sandbox (`byoc sandbox serve --enforce-iam`).

Requests signed with the access key of an IAM user (or of a role session from sts:AssumeRole)
created in the sandbox are evaluated against that principal's identity-based policies, as IAM
does within one account: an explicit Deny wins, then any Allow, otherwise the request is
implicitly denied ("Policy evaluation logic", IAM User Guide). Unknown access keys, such as the
sandbox's default credentials, stay unrestricted.

`evaluate` is a pure evaluator of the IAM policy grammar (Action/NotAction, Resource/NotResource
with wildcards and policy variables, Condition with the String, Arn, Bool, Numeric and Null
operators, `...IfExists` and the `ForAnyValue:`/`ForAllValues:` qualifiers). `requested` maps an
API call to the IAM actions and resource ARNs it needs (table `OPERATIONS`, from the Service
Authorization Reference). `authorize` is what the request dispatcher calls.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Optional
from urllib.parse import unquote

# Signing name (SigV4 credential scope) -> IAM service prefix, where they differ.
IAM_PREFIX = {"monitoring": "cloudwatch", "runtime.sagemaker": "sagemaker", "tagging": "tag"}

# Operations whose IAM action or resource is not simply "<prefix>:<Operation>" on "*".
# Value: list of (action name, resource template). Templates are relative to
# "arn:{partition}:<prefix>:{region}:{account}:" unless they start with "arn:"; "{Name}" is a
# request parameter, "{Name|lower}" the same lowercased (SageMaker keeps resource names in ARNs in
# lower case: "The name is case-insensitive in CreateEndpoint"). Resource types follow the
# Service Authorization Reference, "Resource types defined by ..." of each service.
OPERATIONS = {
    "sagemaker": {
        "CreateModel": [("CreateModel", "model/{ModelName|lower}")],
        "DescribeModel": [("DescribeModel", "model/{ModelName|lower}")],
        "DeleteModel": [("DeleteModel", "model/{ModelName|lower}")],
        "CreateEndpointConfig": [("CreateEndpointConfig", "endpoint-config/{EndpointConfigName|lower}")],
        "DescribeEndpointConfig": [("DescribeEndpointConfig", "endpoint-config/{EndpointConfigName|lower}")],
        "DeleteEndpointConfig": [("DeleteEndpointConfig", "endpoint-config/{EndpointConfigName|lower}")],
        "CreateEndpoint": [("CreateEndpoint", "endpoint/{EndpointName|lower}"),
                           ("CreateEndpoint", "endpoint-config/{EndpointConfigName|lower}")],
        "UpdateEndpoint": [("UpdateEndpoint", "endpoint/{EndpointName|lower}"),
                           ("UpdateEndpoint", "endpoint-config/{EndpointConfigName|lower}")],
        "DescribeEndpoint": [("DescribeEndpoint", "endpoint/{EndpointName|lower}")],
        "DeleteEndpoint": [("DeleteEndpoint", "endpoint/{EndpointName|lower}")],
        "UpdateEndpointWeightsAndCapacities": [("UpdateEndpointWeightsAndCapacities", "endpoint/{EndpointName|lower}")],
        "InvokeEndpoint": [("InvokeEndpoint", "endpoint/{EndpointName|lower}")],
        "InvokeEndpointAsync": [("InvokeEndpointAsync", "endpoint/{EndpointName|lower}")],
        "InvokeEndpointWithResponseStream": [("InvokeEndpointWithResponseStream", "endpoint/{EndpointName|lower}")],
        "AddTags": [("AddTags", "{ResourceArn}")],
        "DeleteTags": [("DeleteTags", "{ResourceArn}")],
        "ListTags": [("ListTags", "{ResourceArn}")],
    },
    "ecr": {
        name: [(name, "repository/{repositoryNames}" if name == "DescribeRepositories" else "repository/{repositoryName}")]
        for name in ("BatchCheckLayerAvailability", "BatchDeleteImage", "BatchGetImage", "CompleteLayerUpload",
                     "CreateRepository", "DeleteRepository", "DescribeImages", "GetDownloadUrlForLayer",
                     "GetRepositoryPolicy", "InitiateLayerUpload", "ListImages", "PutImage", "SetRepositoryPolicy",
                     "DescribeRepositories",
                     "UploadLayerPart", "ListTagsForResource", "TagResource")
    },
    "logs": {
        # Denials of these name "log-group:<name>:log-stream:" (the group's streams).
        "DescribeLogStreams": [("DescribeLogStreams", "log-group:{logGroupName}:log-stream:")],
        "FilterLogEvents": [("FilterLogEvents", "log-group:{logGroupName}:log-stream:")],
        "GetLogEvents": [("GetLogEvents", "log-group:{logGroupName}:log-stream:{logStreamName}")],
        "StartLiveTail": [("StartLiveTail", "log-group:{logGroupIdentifiers}")],
        "DescribeLogGroups": [("DescribeLogGroups", "log-group::log-stream:")],
    },
    "s3": {
        "GetObject": [("GetObject", "arn:{partition}:s3:::{Bucket}/{Key}")],
        "HeadObject": [("GetObject", "arn:{partition}:s3:::{Bucket}/{Key}")],
        "PutObject": [("PutObject", "arn:{partition}:s3:::{Bucket}/{Key}")],
        "CreateMultipartUpload": [("PutObject", "arn:{partition}:s3:::{Bucket}/{Key}")],
        "UploadPart": [("PutObject", "arn:{partition}:s3:::{Bucket}/{Key}")],
        "CompleteMultipartUpload": [("PutObject", "arn:{partition}:s3:::{Bucket}/{Key}")],
        "AbortMultipartUpload": [("AbortMultipartUpload", "arn:{partition}:s3:::{Bucket}/{Key}")],
        "DeleteObject": [("DeleteObject", "arn:{partition}:s3:::{Bucket}/{Key}")],
        "ListObjects": [("ListBucket", "arn:{partition}:s3:::{Bucket}")],
        "ListObjectsV2": [("ListBucket", "arn:{partition}:s3:::{Bucket}")],
        "HeadBucket": [("ListBucket", "arn:{partition}:s3:::{Bucket}")],
        "GetBucketLocation": [("GetBucketLocation", "arn:{partition}:s3:::{Bucket}")],
        "CreateBucket": [("CreateBucket", "arn:{partition}:s3:::{Bucket}")],
        "ListBuckets": [("ListAllMyBuckets", "*")],
    },
    "sns": {
        name: [(name, "{TopicArn}")]
        for name in ("GetTopicAttributes", "Publish", "Subscribe", "ListSubscriptionsByTopic", "DeleteTopic",
                     "SetTopicAttributes")
    },
    "iam": {
        "GetRole": [("GetRole", "arn:{partition}:iam::{account}:role/{RoleName}")],
        "GetUser": [("GetUser", "arn:{partition}:iam::{account}:user/{UserName}")],
        "SimulatePrincipalPolicy": [("SimulatePrincipalPolicy", "{PolicySourceArn}")],
    },
    "servicequotas": {
        "GetServiceQuota": [("GetServiceQuota", "{ServiceCode}/{QuotaCode}")],
    },
    "cloudwatch": {
        "PutMetricAlarm": [("PutMetricAlarm", "alarm:{AlarmName}")],
        "DeleteAlarms": [("DeleteAlarms", "alarm:{AlarmNames}")],
    },
}

# "No permissions are required to perform this operation" (STS API Reference, GetCallerIdentity).
ALWAYS_ALLOWED = {("sts", "GetCallerIdentity")}

# Error code and HTTP status of an access denial, by service protocol: JSON services answer
# AccessDeniedException with HTTP 400 ("Common Errors" of their API references), SNS
# AuthorizationError with 403 (SNS API Reference, Publish: Errors), Query and S3 AccessDenied with 403.
DENIAL = {
    "sagemaker": ("AccessDeniedException", 400),
    "ecr": ("AccessDeniedException", 400),
    "logs": ("AccessDeniedException", 400),
    "application-autoscaling": ("AccessDeniedException", 400),
    "servicequotas": ("AccessDeniedException", 400),
    "sns": ("AuthorizationError", 403),
}
DEFAULT_DENIAL = ("AccessDenied", 403)

SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"


@dataclass
class Request:
    """One authorization question: may the principal do `action` on `resource` (given `context`)?"""

    action: str
    resource: str
    context: dict = field(default_factory=dict)


@dataclass
class Principal:
    arn: str
    kind: str  # "User" | "AssumedRole"
    name: str
    userid: str
    policies: list  # identity-based policy documents (dicts)
    active: bool = True  # False for a deactivated access key
    session_policy: Optional[dict] = None  # sts:AssumeRole's Policy: can only narrow the role's rights


# -- the policy grammar ------------------------------------------------------------------------

ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "allowed", "explicitDeny", "implicitDeny"


def evaluate(documents: list, action: str, resource: str, context: Optional[dict] = None) -> str:
    """"allowed", "explicitDeny" or "implicitDeny" for one action on one resource."""
    ctx = {k.lower(): v for k, v in (context or {}).items()}
    allowed = False
    for doc in documents:
        version = doc.get("Version", "2008-10-17") if isinstance(doc, dict) else "2008-10-17"
        for st in _statements(doc):
            if not _applies(st, action, resource, ctx, version == "2012-10-17"):
                continue
            if st.get("Effect") == "Deny":
                return EXPLICIT_DENY
            if st.get("Effect") == "Allow":
                allowed = True
    return ALLOW if allowed else IMPLICIT_DENY


def _statements(doc: Any) -> list:
    if isinstance(doc, str):
        doc = json.loads(doc)
    st = doc.get("Statement", []) if isinstance(doc, dict) else []
    return [st] if isinstance(st, dict) else list(st)


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _applies(st: dict, action: str, resource: str, ctx: dict, variables: bool) -> bool:
    if "Action" in st:
        if not any(_action_match(p, action) for p in _as_list(st["Action"])):
            return False
    elif "NotAction" in st:
        if any(_action_match(p, action) for p in _as_list(st["NotAction"])):
            return False
    else:
        return False
    if "Resource" in st:
        if not any(_resource_match(p, resource, ctx, variables) for p in _as_list(st["Resource"])):
            return False
    elif "NotResource" in st:
        if any(_resource_match(p, resource, ctx, variables) for p in _as_list(st["NotResource"])):
            return False
    else:
        return False
    return _conditions(st.get("Condition") or {}, ctx, variables)


# Placeholders for the literal * and ? that the ${*} and ${?} policy variables stand for.
_LITERAL = {"\0": re.escape("*"), "\1": re.escape("?")}


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> Any:
    """`*` any run of characters, `?` one character; everything else literal."""
    body = "".join(".*" if c == "*" else "." if c == "?" else _LITERAL.get(c) or re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", (re.IGNORECASE | re.DOTALL) if ignore_case else re.DOTALL)


def _action_match(pattern: str, action: str) -> bool:
    # Action names are case-insensitive ("IAM JSON policy elements: Action").
    return bool(_glob(str(pattern), True).match(action))


_VAR_RE = re.compile(r"\$\{([^}]*)\}")


def _substitute(text: str, ctx: dict) -> Optional[str]:
    """Resolve ${aws:username}-style policy variables; None when one cannot be resolved."""
    missing = False

    def repl(m: Any) -> Any:
        nonlocal missing
        inner = m.group(1)
        if inner in ("*", "?", "$"):
            return inner
        key, _, default = inner.partition(",")
        value = ctx.get(key.strip().lower())
        if isinstance(value, list):
            value = value[0] if len(value) == 1 else None
        if value is None:
            default = default.strip()
            if default.startswith("'") and default.endswith("'") and len(default) >= 2:
                return default[1:-1]
            missing = True
            return ""
        return str(value)

    out = _VAR_RE.sub(repl, text)
    return None if missing else out


def _resource_match(pattern: str, resource: str, ctx: dict, variables: bool) -> bool:
    """Wildcards match within one ARN field; the resource part (after the 5th colon) as a whole."""
    pattern = str(pattern)
    if variables and "${" in pattern:
        substituted = _substitute(pattern.replace("${*}", "\0").replace("${?}", "\1"), ctx)
        if substituted is None:
            return False
        pattern = substituted
    if pattern == "*":
        return True
    p_parts = pattern.split(":", 5)
    r_parts = resource.split(":", 5)
    if len(p_parts) != len(r_parts):
        return bool(_glob(pattern, False).match(resource))
    return all(_glob(p, False).match(r) for p, r in zip(p_parts, r_parts))


# -- conditions -------------------------------------------------------------------------------

def _str_eq(a: Any, b: Any) -> Any:
    return a == b


def _str_eq_ci(a: Any, b: Any) -> Any:
    return a.lower() == b.lower()


def _str_like(a: Any, b: Any) -> Any:
    return bool(_glob(b, False).match(a))


def _arn_like(a: Any, b: Any) -> Any:
    # ARN operators compare the six ARN fields separately ("Amazon Resource Name (ARN) condition operators").
    pa, pb = a.split(":", 5), b.split(":", 5)
    return len(pa) == len(pb) == 6 and all(_glob(y, False).match(x) for x, y in zip(pa, pb))


def _num(op: Any) -> Any:
    def test(a: Any, b: Any) -> Any:
        try:
            x, y = float(a), float(b)
        except ValueError:
            return False
        return op(x, y)
    return test


# operator -> (test(context value, policy value), negated)
OPERATORS = {
    "stringequals": (_str_eq, False),
    "stringnotequals": (_str_eq, True),
    "stringequalsignorecase": (_str_eq_ci, False),
    "stringnotequalsignorecase": (_str_eq_ci, True),
    "stringlike": (_str_like, False),
    "stringnotlike": (_str_like, True),
    "arnequals": (_arn_like, False),
    "arnlike": (_arn_like, False),
    "arnnotequals": (_arn_like, True),
    "arnnotlike": (_arn_like, True),
    "bool": (_str_eq_ci, False),
    "numericequals": (_num(lambda x, y: x == y), False),
    "numericnotequals": (_num(lambda x, y: x == y), True),
    "numericlessthan": (_num(lambda x, y: x < y), False),
    "numericlessthanequals": (_num(lambda x, y: x <= y), False),
    "numericgreaterthan": (_num(lambda x, y: x > y), False),
    "numericgreaterthanequals": (_num(lambda x, y: x >= y), False),
}


def _conditions(block: dict, ctx: dict, variables: bool) -> bool:
    """Every operator and every key in the block must hold (values of one key are ORed)."""
    for raw_op, tests in block.items():
        if not isinstance(tests, dict):
            return False
        for key, values in tests.items():
            if not _condition(raw_op, key, _as_list(values), ctx, variables):
                return False
    return True


def _condition(raw_op: str, key: str, values: list, ctx: dict, variables: bool) -> bool:
    op = raw_op.lower()
    qualifier = ""
    for q in ("foranyvalue:", "forallvalues:"):
        if op.startswith(q):
            qualifier, op = q[:-1], op[len(q):]
    present = ctx.get(key.lower())
    items = [] if present is None else [str(v) for v in _as_list(present)]
    if op == "null":
        want_missing = str(values[0]).lower() == "true" if values else True
        return (not items) == want_missing
    if_exists = op.endswith("ifexists")
    if if_exists:
        op = op[: -len("ifexists")]
    if op not in OPERATORS:
        return False  # an operator IAM would have rejected when the policy was put
    test, negated = OPERATORS[op]
    wanted = []
    for v in values:
        v = str(v).lower() if op == "bool" else str(v)
        if variables and "${" in v:
            v = _substitute(v, ctx)
            if v is None:
                continue
        wanted.append(v)

    def one(item: str) -> bool:
        hit = any(test(item, w) for w in wanted)
        return not hit if negated else hit

    if not items:
        # "If the key ... is not present in the request context, the values do not match and the
        # condition is false"; negated operators are then true ("Condition operators", IAM User Guide).
        if if_exists or qualifier == "forallvalues":
            return True
        if qualifier == "foranyvalue":
            return False
        return negated
    if qualifier == "forallvalues":
        return all(one(i) for i in items)
    if negated and not qualifier:
        return all(one(i) for i in items)
    return any(one(i) for i in items)


# -- API call -> IAM actions and resources -------------------------------------------------------

def partition_of(region: str) -> str:
    if (region or "").startswith("cn-"):
        return "aws-cn"
    if (region or "").startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _fill(template: str, params: dict, prefix: str, region: str, account: str) -> list:
    """The resource ARNs of one template; a list-valued parameter gives one ARN per element."""
    partition = partition_of(region)
    names = [m.split("|")[0] for m in re.findall(r"\{([A-Za-z|]+)\}", template)]
    lists = [n for n in names if isinstance(params.get(n), list)]
    if lists:
        return [arn for item in params[lists[0]] or [""]
                for arn in _fill(template, {**params, lists[0]: item}, prefix, region, account)]

    def repl(m: Any) -> Any:
        name, _, fn = m.group(1).partition("|")
        if name in ("partition", "region", "account"):
            return {"partition": partition, "region": region, "account": account}[name]
        value = params.get(name)
        value = "*" if value in (None, "") else str(value)  # e.g. DescribeRepositories without names
        return value.lower() if fn == "lower" else value

    text = re.sub(r"\{([A-Za-z|]+)\}", repl, template)
    if text == "*" or text.startswith("arn:"):
        return [text]
    return [f"arn:{partition}:{prefix}:{region}:{account}:{text}"]


def requested(service: str, operation: str, params: dict, region: str, account: str) -> list:
    """The authorization requests one API call makes (most calls: one action on one resource)."""
    prefix = IAM_PREFIX.get(service, service)
    params = params or {}
    table = OPERATIONS.get(prefix, {})
    out = []
    for action, template in table.get(operation, [(operation, "*")]):
        for arn in _fill(template, params, prefix, region, account):
            out.append(Request(f"{prefix}:{action}", arn))
    if prefix == "sagemaker" and operation.startswith("Create") and params.get("Tags") and out:
        # Tag-on-create: SageMaker also authorizes sagemaker:AddTags on the resource being created
        # (AWS denies it as "not authorized to perform: sagemaker:AddTags on resource: <new ARN>").
        out.append(Request("sagemaker:AddTags", out[0].resource))
    if prefix == "sagemaker" and operation == "CreateModel" and params.get("ExecutionRoleArn"):
        # CreateModel passes ExecutionRoleArn to SageMaker: "To be able to pass this role to
        # SageMaker, the caller of this API must have the iam:PassRole permission."
        out.append(Request("iam:PassRole", str(params["ExecutionRoleArn"]),
                           {"iam:PassedToService": SAGEMAKER_PRINCIPAL}))
    return out


# -- principals ----------------------------------------------------------------------------------

def identity_documents(entity: Any) -> list:
    """The identity-based policy documents (inline and attached) of a moto user, group or role."""
    return _documents(entity)


def load_document(text: Any) -> dict:
    """A policy document as stored by moto (JSON, possibly URL-encoded) as a dict ({} if unreadable)."""
    return _load(text)


def trusts_service(trust: dict, service: str) -> bool:
    """Whether a role's trust policy lets `service` (e.g. sagemaker.amazonaws.com) call sts:AssumeRole
    ("Creating a role to delegate permissions to an AWS service", IAM User Guide)."""
    allowed = False
    for st in _statements(trust):
        principal = st.get("Principal") or {}
        services = _as_list(principal.get("Service")) if isinstance(principal, dict) else []
        if service not in services and principal != "*":
            continue
        if not any(_action_match(a, "sts:AssumeRole") for a in _as_list(st.get("Action"))):
            continue
        if st.get("Effect") == "Deny":
            return False
        allowed = allowed or st.get("Effect") == "Allow"
    return allowed


def resource_policy_allows(policy: Optional[dict], principal_arn: str, action: str, resource: str) -> str:
    """The decision of a resource-based policy (an ECR repository policy) for `principal_arn`: its
    statements whose Principal names that ARN, its account ("123456789012" or "arn:...:root") or "*"
    ("AWS JSON policy elements: Principal", IAM User Guide)."""
    if not policy:
        return IMPLICIT_DENY
    account = principal_arn.split(":")[4] if principal_arn.count(":") >= 5 else ""
    part = principal_arn.split(":")[1] if principal_arn.count(":") >= 5 else "aws"
    names = {principal_arn, account, f"arn:{part}:iam::{account}:root", "*"}
    if ":assumed-role/" in principal_arn:  # a role session is its role ("Principal": role ARN)
        names.add(f"arn:{part}:iam::{account}:role/{principal_arn.split(':assumed-role/', 1)[1].split('/')[0]}")
    matching = []
    for st in _statements(policy):
        principal = st.get("Principal")
        listed = _as_list(principal.get("AWS")) if isinstance(principal, dict) else _as_list(principal)
        if names & set(listed):
            statement = {k: v for k, v in st.items() if k != "Principal"}
            if "Resource" not in statement and "NotResource" not in statement:
                statement["Resource"] = "*"  # a resource policy applies to the resource it is attached to
            matching.append(statement)
    return evaluate([{"Version": "2012-10-17", "Statement": matching}], action, resource)


def _documents(entity: Any) -> list:
    docs = []
    for text in getattr(entity, "policies", {}).values():
        docs.append(_load(text))
    for policy in getattr(entity, "managed_policies", {}).values():
        version = next((v for v in policy.versions if v.is_default), None)
        if version is not None:
            docs.append(_load(version.document))
    return docs


def _load(text: Any) -> Any:
    if isinstance(text, dict):
        return text
    try:
        return json.loads(unquote(text) if text.lstrip().startswith("%7B") else text)
    except (ValueError, AttributeError):
        return {}


def principal(access_key: str, region: str, account: str) -> Optional[Principal]:
    """The IAM user or role session that owns `access_key`; None for keys IAM does not know."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    part = partition_of(region)
    if account not in iam_backends:
        return None
    iam = iam_backends[account][part]
    user = iam.get_user_from_access_key_id(access_key)
    if user is not None:
        docs = _documents(user)
        for group in iam.get_groups_for_user(user.name):
            docs.extend(_documents(group))
        key = next((k for k in user.access_keys if k.access_key_id == access_key), None)
        return Principal(user.arn, "User", user.name, user.id, docs,
                         active=getattr(key, "status", "Active") == "Active")
    if account in sts_backends:
        session = sts_backends[account][part].get_assumed_role_from_access_key(access_key)
        if session is not None:
            from moto.iam.exceptions import NotFoundException

            try:
                role = iam.get_role_by_arn(session.role_arn)
            except NotFoundException:
                return None  # the role was deleted after the session started
            return Principal(session.arn, "AssumedRole", role.name, session.user_id, _documents(role),
                             session_policy=_load(session.policy) if session.policy else None)
    return None


def context_for(p: Principal, region: str, account: str) -> dict:
    ctx = {
        "aws:PrincipalArn": p.arn,
        "aws:PrincipalAccount": account,
        "aws:PrincipalType": p.kind,
        "aws:userid": p.userid,
        "aws:RequestedRegion": region,
    }
    if p.kind == "User":
        ctx["aws:username"] = p.name
    return ctx


def decide(p: Principal, req: Request, region: str, account: str) -> str:
    return _decide(p, req, region, account)[0]


def _decide(p: Principal, req: Request, region: str, account: str) -> tuple:
    """(decision, the policy type that decided it) for the denial message."""
    ctx = context_for(p, region, account)
    ctx.update(req.context)
    result = evaluate(p.policies, req.action, req.resource, ctx)
    if result == ALLOW and p.session_policy:
        return evaluate([p.session_policy], req.action, req.resource, ctx), "session"
    return result, "identity-based"


def denial_message(p: Principal, action: str, resource: str, result: str, kind: str = "identity-based") -> str:
    """AWS's wording for an implicit or explicit denial by an identity-based or session policy."""
    article = "an" if kind[0] in "aeiou" else "a"
    why = (f"with an explicit deny in {article} {kind} policy" if result == EXPLICIT_DENY
           else f"because no {kind} policy allows the {action} action")
    return f"User: {p.arn} is not authorized to perform: {action} on resource: {resource} {why}"


def _invalid_key(prefix: str) -> dict:
    # The codes AWS uses for an unknown or deactivated access key, by protocol.
    if prefix == "s3":
        return {"code": "InvalidAccessKeyId", "status": 403,
                "message": "The AWS Access Key Id you provided does not exist in our records."}
    if prefix in DENIAL:
        return {"code": "UnrecognizedClientException", "status": 400,
                "message": "The security token included in the request is invalid."}
    return {"code": "InvalidClientTokenId", "status": 403,
            "message": "The security token included in the request is invalid."}


def authorize(service: str, operation: str, params: dict, access_key: str, region: str,
              account: str) -> Optional[dict]:
    """None when the call is allowed; otherwise {"code", "message", "status"} to answer with.

    `service` is the SigV4 signing name ("sagemaker" also for SageMaker Runtime, "monitoring" for
    CloudWatch), `operation` the API operation name, `params` its input with botocore's member
    names (S3: {"Bucket", "Key"}). Keys IAM does not know (root/default credentials) are allowed.
    """
    prefix = IAM_PREFIX.get(service, service)
    p = principal(access_key, region, account)
    if p is None:
        return None
    if not p.active:
        return _invalid_key(prefix)
    if (prefix, operation) in ALWAYS_ALLOWED:
        return None
    for req in requested(service, operation, params, region, account):
        result, kind = _decide(p, req, region, account)
        if result != ALLOW:
            code, status = DENIAL.get(prefix, DEFAULT_DENIAL)
            shown = req.action.replace("sns:", "SNS:", 1) if prefix == "sns" else req.action
            return {"code": code, "status": status,
                    "message": denial_message(p, shown, req.resource, result, kind)}
    return None


# -- iam:SimulatePrincipalPolicy -----------------------------------------------------------------

class NoSuchEntity(LookupError):
    """PolicySourceArn names no user or role of the sandbox."""


def simulate_principal_policy(params: dict, region: str, account: str) -> dict:
    """The sandbox's answer to iam:SimulatePrincipalPolicy (IAM API Reference), from the same
    evaluator that enforces requests: {"EvaluationResults": [...], "IsTruncated": False}.

    `params` may be botocore-shaped (ActionNames, ResourceArns, ContextEntries) or the flat query
    form ("ActionNames.member.1", ...). Raises NoSuchEntity for an unknown PolicySourceArn.
    """
    from moto.iam.models import iam_backends

    params = _unflatten(params)
    source = str(params.get("PolicySourceArn", ""))
    iam = iam_backends[account][partition_of(region)]
    kind, _, name = source.split(":", 5)[-1].partition("/")
    name = name.rsplit("/", 1)[-1]
    entity: Any = None
    if kind == "user":
        entity = iam.users.get(name)
        docs: list = _documents(entity) if entity else []
        if entity:
            for group in iam.get_groups_for_user(name):
                docs.extend(_documents(group))
            p = Principal(entity.arn, "User", entity.name, entity.id, docs)
    elif kind == "role":
        entity = next((r for r in iam.roles.values() if r.name == name), None)
        if entity:
            p = Principal(entity.arn, "AssumedRole", entity.name, entity.id, _documents(entity))
    if entity is None:
        raise NoSuchEntity(f"The {kind or 'entity'} with name {name or source} cannot be found.")
    extra = {}
    for entry in params.get("ContextEntries") or []:
        values = [str(v) for v in entry.get("ContextKeyValues") or []]
        extra[entry.get("ContextKeyName", "")] = values[0] if len(values) == 1 else values
    results = []
    for action in params.get("ActionNames") or []:
        for resource in params.get("ResourceArns") or ["*"]:
            decision = decide(p, Request(str(action), str(resource), extra), region, account)
            results.append({"EvalActionName": str(action), "EvalResourceName": str(resource),
                            "EvalDecision": decision, "MatchedStatements": [], "MissingContextValues": []})
    return {"EvaluationResults": results, "IsTruncated": False}


def simulate_principal_policy_xml(params: dict, region: str, account: str) -> tuple:
    """(HTTP status, XML body) of SimulatePrincipalPolicy in the IAM query protocol."""
    from xml.sax.saxutils import escape

    ns = "https://iam.amazonaws.com/doc/2010-05-08/"
    try:
        result = simulate_principal_policy(params, region, account)
    except NoSuchEntity as exc:
        body = (f'<ErrorResponse xmlns="{ns}"><Error><Type>Sender</Type><Code>NoSuchEntity</Code>'
                f"<Message>{escape(str(exc))}</Message></Error><RequestId>sandbox</RequestId></ErrorResponse>")
        return 404, body.encode()
    members = "".join(
        "<member>"
        f"<EvalActionName>{escape(r['EvalActionName'])}</EvalActionName>"
        f"<EvalResourceName>{escape(r['EvalResourceName'])}</EvalResourceName>"
        f"<EvalDecision>{r['EvalDecision']}</EvalDecision>"
        "<MatchedStatements/><MissingContextValues/>"
        "</member>" for r in result["EvaluationResults"])
    body = (f'<SimulatePrincipalPolicyResponse xmlns="{ns}"><SimulatePrincipalPolicyResult>'
            f"<IsTruncated>false</IsTruncated><EvaluationResults>{members}</EvaluationResults>"
            "</SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>sandbox</RequestId>"
            "</ResponseMetadata></SimulatePrincipalPolicyResponse>")
    return 200, body.encode()


_MEMBER_RE = re.compile(r"^(?P<name>[A-Za-z]+)\.member\.(?P<i>\d+)(?:\.(?P<field>[A-Za-z]+)(?:\.member\.(?P<j>\d+))?)?$")


def _unflatten(params: dict) -> dict:
    """Query-protocol lists ("ActionNames.member.1", "ContextEntries.member.1.ContextKeyName", ...)
    into botocore-shaped lists; other keys are kept."""
    out: dict = {}
    lists: dict = {}
    for key, value in (params or {}).items():
        value = value[0] if isinstance(value, list) and len(value) == 1 and "." in key else value
        m = _MEMBER_RE.match(key)
        if not m:
            out[key] = value
            continue
        items = lists.setdefault(m["name"], {})
        i = int(m["i"])
        if m["field"] is None:
            items[i] = value
        elif m["j"] is None:
            items.setdefault(i, {})[m["field"]] = value
        else:
            items.setdefault(i, {}).setdefault(m["field"], {})[int(m["j"])] = value
    for name, items in lists.items():
        seq = []
        for i in sorted(items):
            item = items[i]
            if isinstance(item, dict):
                item = {k: [v[j] for j in sorted(v)] if isinstance(v, dict) else v for k, v in item.items()}
            seq.append(item)
        out[name] = seq
    return out
