"""The sandbox's IAM enforcement: the policy evaluator, the request->action map, the authorizer
over moto's IAM users and role sessions, and `byoc` against a sandbox with --enforce-iam."""

from __future__ import annotations

import json

import pytest

from byoc.cli.main import main
from byoc.sandbox import iam
from byoc.sandbox.server import ACCOUNT

ALLOWED, EXPLICIT, IMPLICIT = iam.ALLOW, iam.EXPLICIT_DENY, iam.IMPLICIT_DENY
EP = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/infer-endpoint-1"


def doc(*statements, version="2012-10-17"):
    return {"Version": version, "Statement": list(statements)}


def allow(action, resource="*", **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource="*", **extra):
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


# -- the grammar -----------------------------------------------------------------------------------

def test_explicit_deny_beats_allow_and_nothing_is_implicitly_denied():
    p = doc(allow("sagemaker:*", "arn:aws:sagemaker:*:*:endpoint/infer-endpoint-*"),
            deny("sagemaker:DeleteEndpoint", EP))
    assert iam.evaluate([p], "sagemaker:DescribeEndpoint", EP) == ALLOWED
    assert iam.evaluate([p], "sagemaker:DeleteEndpoint", EP) == EXPLICIT
    assert iam.evaluate([p], "sagemaker:DescribeEndpoint", EP.replace("infer-endpoint-1", "other")) == IMPLICIT
    assert iam.evaluate([p], "ecr:DescribeImages", "*") == IMPLICIT
    assert iam.evaluate([], "sagemaker:DescribeEndpoint", EP) == IMPLICIT


def test_actions_are_case_insensitive_resources_are_not():
    p = doc(allow("SageMaker:describeendpoint", EP))
    assert iam.evaluate([p], "sagemaker:DescribeEndpoint", EP) == ALLOWED
    assert iam.evaluate([p], "sagemaker:DescribeEndpoint", EP.upper()) == IMPLICIT


def test_wildcards_in_actions_and_resource_segments():
    p = doc(allow(["sagemaker:Describe*", "logs:Get?ogEvents"], "arn:aws:*:us-east-1:*:*"))
    assert iam.evaluate([p], "sagemaker:DescribeModel", EP) == ALLOWED
    assert iam.evaluate([p], "logs:GetLogEvents", "arn:aws:logs:us-east-1:1:log-group:/x:log-stream:y") == ALLOWED
    assert iam.evaluate([p], "sagemaker:CreateModel", EP) == IMPLICIT
    # A wildcard in one ARN field does not spill into the next one.
    assert iam.evaluate([p], "sagemaker:DescribeModel", EP.replace("us-east-1", "eu-west-1")) == IMPLICIT
    assert iam.evaluate([p], "sagemaker:DescribeModel", EP.replace("arn:aws:", "arn:aws-cn:")) == IMPLICIT
    # ...but the resource part may hold colons and slashes.
    logs = doc(allow("logs:*", "arn:aws:logs:us-east-1:1:log-group:/aws/sagemaker/Endpoints/infer-*"))
    assert iam.evaluate([logs], "logs:FilterLogEvents",
                        "arn:aws:logs:us-east-1:1:log-group:/aws/sagemaker/Endpoints/infer-1:log-stream:") == ALLOWED


def test_not_action_and_not_resource():
    p = doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::mine/*"})
    assert iam.evaluate([p], "sagemaker:CreateModel", EP) == ALLOWED
    assert iam.evaluate([p], "iam:PassRole", "arn:aws:iam::1:role/r") == IMPLICIT
    assert iam.evaluate([p], "s3:GetObject", "arn:aws:s3:::mine/k") == ALLOWED
    assert iam.evaluate([p], "s3:GetObject", "arn:aws:s3:::theirs/k") == EXPLICIT


def test_statement_without_resource_never_applies():
    assert iam.evaluate([doc({"Effect": "Allow", "Action": "*"})], "s3:GetObject", "*") == IMPLICIT


def test_passrole_condition():
    p = doc(allow("iam:PassRole", "arn:aws:iam::1:role/*createEndpoint*",
                  Condition={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}))
    role = "arn:aws:iam::1:role/ESD-createEndpoint-Role"
    assert iam.evaluate([p], "iam:PassRole", role, {"iam:PassedToService": "sagemaker.amazonaws.com"}) == ALLOWED
    assert iam.evaluate([p], "iam:PassRole", role, {"iam:PassedToService": "ec2.amazonaws.com"}) == IMPLICIT
    assert iam.evaluate([p], "iam:PassRole", role) == IMPLICIT
    assert iam.evaluate([p], "iam:PassRole", "arn:aws:iam::1:role/admin",
                        {"iam:PassedToService": "sagemaker.amazonaws.com"}) == IMPLICIT


@pytest.mark.parametrize("condition,context,applies", [
    ({"StringEquals": {"aws:RequestedRegion": "us-east-1"}}, {"aws:RequestedRegion": "us-east-1"}, True),
    ({"StringEquals": {"aws:RequestedRegion": ["eu-west-1", "us-east-1"]}}, {"aws:requestedregion": "us-east-1"}, True),
    ({"StringNotEquals": {"aws:RequestedRegion": "us-east-1"}}, {"aws:RequestedRegion": "us-east-1"}, False),
    # Negated operators hold when the key is missing; the others do not.
    ({"StringNotEquals": {"aws:RequestedRegion": "us-east-1"}}, {}, True),
    ({"StringEquals": {"aws:RequestedRegion": "us-east-1"}}, {}, False),
    ({"StringEqualsIfExists": {"aws:RequestedRegion": "us-east-1"}}, {}, True),
    ({"StringEqualsIfExists": {"aws:RequestedRegion": "us-east-1"}}, {"aws:RequestedRegion": "eu-west-1"}, False),
    ({"StringEqualsIgnoreCase": {"aws:PrincipalType": "user"}}, {"aws:PrincipalType": "User"}, True),
    ({"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/dev-*"}}, {"aws:PrincipalArn": "arn:aws:iam::1:user/dev-a"},
     True),
    ({"StringNotLike": {"aws:PrincipalArn": "*:user/dev-*"}}, {"aws:PrincipalArn": "arn:aws:iam::1:user/dev-a"}, False),
    ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/*"}}, {"aws:PrincipalArn": "arn:aws:iam::1:user/a"}, True),
    ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/*"}}, {"aws:PrincipalArn": "not-an-arn"}, False),
    ({"Null": {"aws:username": "true"}}, {}, True),
    ({"Null": {"aws:username": "false"}}, {}, False),
    ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "TRUE"}, True),
    ({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "5"}, True),
    ({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "many"}, False),
    ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:TagKeys": ["c", "b"]}, True),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:TagKeys": ["c", "b"]}, False),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {}, True),
    ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}, {}, False),
    ({"StringEqualsCaseless": {"aws:TagKeys": ["a"]}}, {"aws:TagKeys": "a"}, False),  # no such operator
    # Several operators and keys must all hold.
    ({"StringEquals": {"aws:RequestedRegion": "us-east-1", "aws:PrincipalType": "User"}},
     {"aws:RequestedRegion": "us-east-1", "aws:PrincipalType": "AssumedRole"}, False),
])
def test_condition_operators(condition, context, applies):
    p = doc(allow("s3:GetObject", "*", Condition=condition))
    assert (iam.evaluate([p], "s3:GetObject", "arn:aws:s3:::b/k", context) == ALLOWED) is applies


def test_policy_variables_resolve_in_resources_and_conditions():
    p = doc(allow("iam:SimulatePrincipalPolicy", "arn:aws:iam::1:user/${aws:username}"),
            allow("s3:GetObject", "arn:aws:s3:::home/${aws:username, 'anonymous'}/*"),
            allow("s3:PutObject", "arn:aws:s3:::literal/${*}"),
            allow("s3:DeleteObject", "*", Condition={"StringEquals": {"aws:PrincipalArn": "arn:aws:iam::1:user/${aws:username}"}}))
    alice = {"aws:username": "alice", "aws:PrincipalArn": "arn:aws:iam::1:user/alice"}
    assert iam.evaluate([p], "iam:SimulatePrincipalPolicy", "arn:aws:iam::1:user/alice", alice) == ALLOWED
    assert iam.evaluate([p], "iam:SimulatePrincipalPolicy", "arn:aws:iam::1:user/bob", alice) == IMPLICIT
    assert iam.evaluate([p], "iam:SimulatePrincipalPolicy", "arn:aws:iam::1:user/alice") == IMPLICIT
    assert iam.evaluate([p], "s3:GetObject", "arn:aws:s3:::home/anonymous/x") == ALLOWED
    assert iam.evaluate([p], "s3:PutObject", "arn:aws:s3:::literal/*") == ALLOWED
    assert iam.evaluate([p], "s3:PutObject", "arn:aws:s3:::literal/anything") == IMPLICIT
    assert iam.evaluate([p], "s3:DeleteObject", "*", alice) == ALLOWED
    # Version 2008-10-17 has no policy variables: ${...} is literal text.
    old = doc(allow("s3:GetObject", "arn:aws:s3:::home/${aws:username}/*"), version="2008-10-17")
    assert iam.evaluate([old], "s3:GetObject", "arn:aws:s3:::home/alice/x", alice) == IMPLICIT


# -- calls -> actions and resources ---------------------------------------------------------------------

def test_sagemaker_calls_map_to_lowercase_arns_and_passrole():
    reqs = iam.requested("sagemaker", "CreateModel", {"ModelName": "Infer-Model-X",
                                                       "ExecutionRoleArn": "arn:aws-cn:iam::1:role/R"},
                         "cn-north-1", ACCOUNT)
    assert [(r.action, r.resource) for r in reqs] == [
        ("sagemaker:CreateModel", f"arn:aws-cn:sagemaker:cn-north-1:{ACCOUNT}:model/infer-model-x"),
        ("iam:PassRole", "arn:aws-cn:iam::1:role/R"),
    ]
    assert reqs[1].context == {"iam:PassedToService": "sagemaker.amazonaws.com"}
    update = iam.requested("sagemaker", "UpdateEndpoint", {"EndpointName": "e", "EndpointConfigName": "c"},
                           "us-gov-west-1", ACCOUNT)
    assert [r.resource for r in update] == [f"arn:aws-us-gov:sagemaker:us-gov-west-1:{ACCOUNT}:endpoint/e",
                                            f"arn:aws-us-gov:sagemaker:us-gov-west-1:{ACCOUNT}:endpoint-config/c"]
    assert [(r.action, r.resource) for r in iam.requested("sagemaker", "ListEndpoints", {}, "us-east-1", ACCOUNT)] == [
        ("sagemaker:ListEndpoints", "*")]


def test_creating_a_tagged_sagemaker_resource_also_needs_add_tags():
    reqs = iam.requested("sagemaker", "CreateEndpointConfig", {"EndpointConfigName": "c", "Tags": [{"Key": "k"}]},
                         "us-east-1", ACCOUNT)
    arn = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint-config/c"
    assert [(r.action, r.resource) for r in reqs] == [("sagemaker:CreateEndpointConfig", arn), ("sagemaker:AddTags", arn)]
    untagged = iam.requested("sagemaker", "CreateEndpointConfig", {"EndpointConfigName": "c"}, "us-east-1", ACCOUNT)
    assert [r.action for r in untagged] == ["sagemaker:CreateEndpointConfig"]


def test_other_services_map_api_names_to_iam_actions():
    def one(service, op, params):
        return [(r.action, r.resource) for r in iam.requested(service, op, params, "us-east-1", ACCOUNT)]

    assert one("s3", "HeadObject", {"Bucket": "b", "Key": "k/1"}) == [("s3:GetObject", "arn:aws:s3:::b/k/1")]
    assert one("s3", "ListObjectsV2", {"Bucket": "b"}) == [("s3:ListBucket", "arn:aws:s3:::b")]
    assert one("monitoring", "DeleteAlarms", {"AlarmNames": ["a", "b"]}) == [
        ("cloudwatch:DeleteAlarms", f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:a"),
        ("cloudwatch:DeleteAlarms", f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:b")]
    assert one("logs", "FilterLogEvents", {"logGroupName": "/aws/sagemaker/Endpoints/e"}) == [
        ("logs:FilterLogEvents", f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/e:log-stream:")]
    assert one("ecr", "DescribeRepositories", {}) == [
        ("ecr:DescribeRepositories", f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/*")]
    assert one("sns", "GetTopicAttributes", {"TopicArn": "arn:aws:sns:us-east-1:1:t"}) == [
        ("sns:GetTopicAttributes", "arn:aws:sns:us-east-1:1:t")]
    assert one("application-autoscaling", "RegisterScalableTarget", {"ResourceId": "x"}) == [
        ("application-autoscaling:RegisterScalableTarget", "*")]


# -- the authorizer over moto's IAM --------------------------------------------------------------------

def make_user(clients, name, *policies, group_policy=None, managed=None):
    client = clients.client("iam")
    client.create_user(UserName=name)
    for i, p in enumerate(policies):
        client.put_user_policy(UserName=name, PolicyName=f"p{i}", PolicyDocument=json.dumps(p))
    if group_policy:
        client.create_group(GroupName=f"{name}-group")
        client.add_user_to_group(GroupName=f"{name}-group", UserName=name)
        client.put_group_policy(GroupName=f"{name}-group", PolicyName="g", PolicyDocument=json.dumps(group_policy))
    if managed:
        arn = client.create_policy(PolicyName=f"{name}-managed", PolicyDocument=json.dumps(managed))["Policy"]["Arn"]
        client.attach_user_policy(UserName=name, PolicyArn=arn)
    return client.create_access_key(UserName=name)["AccessKey"]


def test_authorize_uses_inline_group_and_managed_policies(clients):
    key = make_user(clients, "carol", doc(allow("sagemaker:DescribeEndpoint", EP)),
                    group_policy=doc(allow("ecr:DescribeImages", "*")),
                    managed=doc(allow("logs:FilterLogEvents", "*"), deny("sagemaker:DeleteEndpoint", "*")))["AccessKeyId"]
    auth = lambda service, op, params: iam.authorize(service, op, params, key, "us-east-1", ACCOUNT)  # noqa: E731
    assert auth("sagemaker", "DescribeEndpoint", {"EndpointName": "infer-endpoint-1"}) is None
    assert auth("ecr", "DescribeImages", {"repositoryName": "r"}) is None
    assert auth("logs", "FilterLogEvents", {"logGroupName": "g"}) is None
    denied = auth("sagemaker", "UpdateEndpoint", {"EndpointName": "infer-endpoint-1", "EndpointConfigName": "c"})
    assert denied == {
        "code": "AccessDeniedException", "status": 400,
        "message": f"User: arn:aws:iam::{ACCOUNT}:user/carol is not authorized to perform: sagemaker:UpdateEndpoint "
                   f"on resource: {EP} because no identity-based policy allows the sagemaker:UpdateEndpoint action"}
    explicit = auth("sagemaker", "DeleteEndpoint", {"EndpointName": "infer-endpoint-1"})
    assert explicit["message"].endswith("with an explicit deny in an identity-based policy")
    assert auth("sts", "GetCallerIdentity", {}) is None  # needs no permission


@pytest.mark.parametrize("service,op,params,code,status,shown", [
    ("s3", "GetObject", {"Bucket": "b", "Key": "k"}, "AccessDenied", 403, "s3:GetObject"),
    ("sns", "Publish", {"TopicArn": "arn:aws:sns:us-east-1:1:t"}, "AuthorizationError", 403, "SNS:Publish"),
    ("iam", "GetRole", {"RoleName": "r"}, "AccessDenied", 403, "iam:GetRole"),
    ("monitoring", "GetMetricData", {}, "AccessDenied", 403, "cloudwatch:GetMetricData"),
    ("ecr", "PutImage", {"repositoryName": "r"}, "AccessDeniedException", 400, "ecr:PutImage"),
    ("servicequotas", "GetServiceQuota", {"ServiceCode": "sagemaker", "QuotaCode": "L-1"},
     "AccessDeniedException", 400, "servicequotas:GetServiceQuota"),
])
def test_denials_use_each_protocols_code(clients, service, op, params, code, status, shown):
    key = make_user(clients, "dave", doc(allow("sagemaker:ListEndpoints")))["AccessKeyId"]
    denied = iam.authorize(service, op, params, key, "us-east-1", ACCOUNT)
    assert (denied["code"], denied["status"]) == (code, status)
    assert f"is not authorized to perform: {shown} on resource: " in denied["message"]


def test_unknown_keys_are_unrestricted_and_inactive_keys_are_rejected(clients):
    assert iam.authorize("sagemaker", "DeleteEndpoint", {"EndpointName": "x"}, "testing", "us-east-1", ACCOUNT) is None
    key = make_user(clients, "erin", doc(allow("*")))["AccessKeyId"]
    clients.client("iam").update_access_key(UserName="erin", AccessKeyId=key, Status="Inactive")
    assert iam.authorize("sagemaker", "ListEndpoints", {}, key, "us-east-1", ACCOUNT)["code"] == "UnrecognizedClientException"
    assert iam.authorize("s3", "GetObject", {"Bucket": "b", "Key": "k"}, key, "us-east-1", ACCOUNT)["code"] == \
        "InvalidAccessKeyId"
    assert iam.authorize("iam", "GetUser", {}, key, "us-east-1", ACCOUNT)["code"] == "InvalidClientTokenId"


def test_role_sessions_get_the_roles_policies_narrowed_by_the_session_policy(clients):
    client = clients.client("iam")
    trust = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"})
    arn = client.create_role(RoleName="deployer", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    client.put_role_policy(RoleName="deployer", PolicyName="p", PolicyDocument=json.dumps(doc(allow("sagemaker:*"))))
    sts = clients.client("sts")
    full = sts.assume_role(RoleArn=arn, RoleSessionName="s1")["Credentials"]["AccessKeyId"]
    narrow = sts.assume_role(RoleArn=arn, RoleSessionName="s2",
                             Policy=json.dumps(doc(allow("sagemaker:Describe*"))))["Credentials"]["AccessKeyId"]
    assert iam.authorize("sagemaker", "DeleteEndpoint", {"EndpointName": "e"}, full, "us-east-1", ACCOUNT) is None
    denied = iam.authorize("sagemaker", "DeleteEndpoint", {"EndpointName": "e"}, narrow, "us-east-1", ACCOUNT)
    assert denied and f"User: arn:aws:sts::{ACCOUNT}:assumed-role/deployer/s2 is not authorized" in denied["message"]
    assert denied["message"].endswith("because no session policy allows the sagemaker:DeleteEndpoint action")
    assert iam.authorize("sagemaker", "DescribeEndpoint", {"EndpointName": "e"}, narrow, "us-east-1", ACCOUNT) is None


def test_simulate_principal_policy_uses_the_same_evaluator(clients):
    make_user(clients, "frank", doc(allow("iam:PassRole", "arn:aws:iam::*:role/*createEndpoint*",
                                          Condition={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}),
                                    allow("sagemaker:DescribeEndpoint", EP)))
    params = {"PolicySourceArn": f"arn:aws:iam::{ACCOUNT}:user/frank",
              "ActionNames.member.1": "iam:PassRole", "ActionNames.member.2": "sagemaker:DescribeEndpoint",
              "ResourceArns.member.1": f"arn:aws:iam::{ACCOUNT}:role/x-createEndpoint-y",
              "ContextEntries.member.1.ContextKeyName": "iam:PassedToService",
              "ContextEntries.member.1.ContextKeyValues.member.1": "sagemaker.amazonaws.com",
              "ContextEntries.member.1.ContextKeyType": "string"}
    result = iam.simulate_principal_policy(params, "us-east-1", ACCOUNT)
    assert [(r["EvalActionName"], r["EvalDecision"]) for r in result["EvaluationResults"]] == [
        ("iam:PassRole", "allowed"), ("sagemaker:DescribeEndpoint", "implicitDeny")]
    status, body = iam.simulate_principal_policy_xml({"PolicySourceArn": f"arn:aws:iam::{ACCOUNT}:user/nobody",
                                                      "ActionNames": ["s3:GetObject"]}, "us-east-1", ACCOUNT)
    assert status == 404 and b"<Code>NoSuchEntity</Code>" in body
    status, body = iam.simulate_principal_policy_xml(params, "us-east-1", ACCOUNT)
    assert status == 200 and body.count(b"<member>") == 2 and b"<EvalDecision>allowed</EvalDecision>" in body


# -- byoc against a sandbox with --enforce-iam -------------------------------------------------------------

def byoc(capsys, monkeypatch, key, *argv):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_byoc_under_enforced_iam_names_the_missing_permission(sandbox, clients, capsys, monkeypatch):
    from byoc.sandbox import seed

    seed.solution(clients, realtime_id=None)
    sandbox.app.enforce_iam = True
    nothing = make_user(clients, "gina", doc(allow("sts:GetCallerIdentity")))
    code, out, err = byoc(capsys, monkeypatch, nothing, "endpoints")
    assert code == 4 and out == ""
    assert err.splitlines()[0] == "error: Permission denied: sagemaker:ListEndpoints on *."
    assert '"Action": "sagemaker:ListEndpoints"' in err and "Traceback" not in err

    lister = make_user(clients, "hugo", doc(allow("sagemaker:ListEndpoints")))
    code, out, err = byoc(capsys, monkeypatch, lister, "endpoints")
    assert code == 4
    assert (f"error: Permission denied: sagemaker:DescribeEndpoint on arn:aws:sagemaker:us-east-1:{ACCOUNT}:"
            "endpoint/infer-endpoint-a1b2c3d.") in err

    # The sandbox's own credentials stay unrestricted.
    code, out, _ = byoc(capsys, monkeypatch, {"AccessKeyId": "testing", "SecretAccessKey": "testing"},
                        "endpoints", "-o", "json")
    assert code == 0 and json.loads(out)["endpoints"][0]["name"] == "infer-endpoint-a1b2c3d"
