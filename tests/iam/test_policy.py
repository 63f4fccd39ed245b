"""`byoc policy`: the generator, the data tables behind it, the IAM grammar check and the CLI."""

from __future__ import annotations

import json
import re
from importlib import resources

import pytest

from byoc.aws import permissions
from byoc.cli.main import main
from byoc.errors import BadInput
from byoc.iam import policy

ACCOUNT = "123456789012"
PARTITION_REGIONS = [("aws", "us-east-1"), ("aws-cn", "cn-northwest-1"), ("aws-us-gov", "us-gov-west-1")]


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def scope(region="us-east-1", **kw):
    return policy.make_scope(None, region, ACCOUNT, **kw)


# -- data --------------------------------------------------------------------------------------

def test_every_action_in_the_table_is_a_real_iam_action():
    names = {a for row in policy.table()["statements"] for g in row["grants"] for a in g["actions"]}
    assert names, "the table grants nothing"
    assert sorted(a for a in names if a not in policy.iam_actions()) == []


def test_iam_action_list_covers_the_services_byoc_calls_and_nothing_is_duplicated():
    data = json.loads(resources.files("byoc").joinpath("data/iam_actions.json").read_text())
    assert set(data["actions"]) == {"sagemaker", "ecr", "logs", "cloudwatch", "s3", "sns", "sts", "iam",
                                    "application-autoscaling", "servicequotas", "tag"}
    for prefix, names in data["actions"].items():
        assert names == sorted(set(names)), prefix
        assert all(re.fullmatch(r"[A-Z][A-Za-z0-9]+", n) for n in names), prefix
    # Spot checks against the Service Authorization Reference: real names, and API names that are not actions.
    actions = policy.iam_actions()
    for real in ("sagemaker:UpdateEndpoint", "sagemaker:InvokeEndpointAsync", "iam:PassRole", "s3:ListBucket",
                 "ecr:GetAuthorizationToken", "logs:FilterLogEvents", "servicequotas:GetServiceQuota",
                 "tag:GetResources"):
        assert real in actions
    for fake in ("s3:HeadObject", "s3:ListObjectsV2", "sagemaker:UpdateEndpoints", "iam:PassRoles"):
        assert fake not in actions


def test_every_grant_names_known_features_resources_and_commands():
    t = policy.table()
    for row in t["statements"]:
        assert re.fullmatch(r"[A-Za-z0-9]+", row["sid"])
        assert all(r in t["resources"] for r in row["resources"]), row["sid"]
        for grant in row["grants"]:
            assert grant["commands"] and grant["why"], row["sid"]
            assert set(grant["features"]) <= set(t["features"]), row["sid"]


def test_each_action_is_granted_by_exactly_one_statement():
    seen = {}
    for row in policy.table()["statements"]:
        for grant in row["grants"]:
            for action in grant["actions"]:
                assert action not in seen, f"{action} in {seen.get(action)} and {row['sid']}"
                seen[action] = row["sid"]


# -- generation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("partition,region", PARTITION_REGIONS)
@pytest.mark.parametrize("features", ["all", "update", "verify", "logs", "build", "fleet", "all,doctor"])
def test_generated_policy_follows_the_iam_grammar_in_every_partition(partition, region, features):
    result = policy.generate(policy.parse_features(features), scope(region))
    doc = result.document
    assert policy.problems(doc) == []
    arns = [a for st in doc["Statement"] for a in (st["Resource"] if isinstance(st["Resource"], list)
                                                    else [st["Resource"]]) if a != "*"]
    assert arns and all(a.startswith(f"arn:{partition}:") for a in arns)
    regional = [a for a in arns if a.split(":")[2] in ("sagemaker", "logs", "ecr")]
    assert regional and all(a.split(":")[3] == region and a.split(":")[4] == ACCOUNT
                            or a == f"arn:{partition}:ecr:*:*:repository/*" for a in regional)


def test_default_scope_covers_every_generation_of_the_solution():
    doc = policy.generate(policy.parse_features("update"), scope()).document
    endpoints = next(st for st in doc["Statement"] if st["Sid"] == "Endpoints")
    arn = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}"
    assert endpoints["Resource"] == sorted(
        [f"{arn}:endpoint-config/{c}" for c in ("infer-config-*", "esd-config-*", "sd-*", "comfy-*")]
        + [f"{arn}:endpoint/{e}" for e in ("infer-endpoint-*", "esd-*", "sd-*", "comfy-*")]
        + [f"{arn}:model/{m}" for m in ("infer-model-*", "esd-model-*", "sd-*", "comfy-*")])
    passrole = next(st for st in doc["Statement"] if st["Sid"] == "PassExecutionRole")
    assert passrole["Action"] == "iam:PassRole"
    assert passrole["Resource"] == sorted(f"arn:aws:iam::{ACCOUNT}:role/{r}" for r in (
        "*createEndpoint*", "*LambdaStartDeployRole*", "ESDRoleForEndpoint-*", "ESDRole-*"))
@pytest.mark.parametrize("pattern,model,config", [
    ("infer-endpoint-*", "infer-model-*", "infer-config-*"),
    ("infer-endpoint-abc1234", "infer-model-abc1234*", "infer-config-abc1234*"),
    ("esd-async-*", "esd-model-async-*", "esd-config-async-*"),
    ("sd-async-*", "sd-async-*", "sd-async-*"),
    ("Comfy-Real-Time-X", "comfy-real-time-x*", "comfy-real-time-x*"),
    ("my-endpoint", "my-endpoint*", "my-endpoint*"),
])
def test_models_and_configs_follow_the_endpoint_pattern(pattern, model, config):
    s = scope(endpoint=pattern)
    assert (s.endpoints, s.models, s.configs) == ((pattern.lower(),), (model,), (config,))
    doc = policy.generate(policy.parse_features("logs"), s).document
    logs = next(st for st in doc["Statement"] if st["Sid"] == "EndpointLogs")
    assert logs["Resource"] == f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/{pattern.lower()}:*"


@pytest.mark.parametrize("given", [["sd-*", "comfy-*"], ["sd-*,comfy-*"], ["sd-*, comfy-*", "sd-*"]])
def test_several_endpoint_patterns_repeated_or_comma_separated(given):
    s = scope(endpoint=given)
    assert s.endpoints == ("sd-*", "comfy-*") and s.generations == ("v1.6",)
    assert s.roles == ("ESDRole-*", "ESDRoleForEndpoint-*")  # the v1.6+ execution roles
    doc = policy.generate(policy.parse_features("update"), s).document
    endpoints = next(st for st in doc["Statement"] if st["Sid"] == "Endpoints")["Resource"]
    assert f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/comfy-*" in endpoints
    assert f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/sd-*" in endpoints


@pytest.mark.parametrize("generation,endpoint,role", [
    ("infer", "infer-endpoint-*", "*createEndpoint*"),
    ("esd", "esd-*", "ESDRoleForEndpoint-*"),
    ("v1.6", "comfy-*", "ESDRole-*"),
])
def test_solution_scopes_to_one_generation(generation, endpoint, role):
    s = scope(generations=generation)
    assert endpoint in s.endpoints and role in s.roles and s.generations == (generation,)
    other = {"infer": "sd-*", "esd": "infer-endpoint-*", "v1.6": "esd-*"}[generation]
    assert other not in s.endpoints
    with pytest.raises(BadInput, match="Unknown solution generation"):
        scope(generations="v2")


def test_features_select_only_their_actions_and_all_is_their_union():
    everything = policy.generate(policy.parse_features("all"), scope()).actions
    union = set()
    for feature in policy.features():
        if feature in policy.table()["optional"]:
            continue
        actions = policy.generate(policy.parse_features(feature), scope()).actions
        union |= actions
    assert union == everything
    logs_only = policy.generate(policy.parse_features("logs"), scope()).actions
    assert {"logs:FilterLogEvents", "sagemaker:DescribeEndpoint"} <= logs_only
    assert not any(a.startswith(("s3:", "iam:")) or a in ("sagemaker:UpdateEndpoint", "ecr:PutImage")
                   for a in logs_only)
    assert "iam:SimulatePrincipalPolicy" not in everything
    doctor = policy.generate(policy.parse_features("all,doctor"), scope())
    assert doctor.actions == everything | {"iam:SimulatePrincipalPolicy"}
    simulate = next(st for st in doctor.document["Statement"] if st["Sid"] == "SimulateSelf")
    assert simulate["Resource"] == f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}"


def test_custom_role_repository_and_bucket_patterns():
    s = scope(role="sd-*-role", repository="my-sd/images", bucket="esd-*")
    doc = policy.generate(policy.parse_features("all"), s).document
    by_sid = {st["Sid"]: st for st in doc["Statement"]}
    assert by_sid["PassExecutionRole"]["Resource"] == f"arn:aws:iam::{ACCOUNT}:role/sd-*-role"
    assert by_sid["PushImages"]["Resource"] == f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/my-sd/images"
    assert by_sid["ReadImages"]["Resource"] == "arn:aws:ecr:*:*:repository/*"
    assert by_sid["AsyncRequests"]["Resource"] == "arn:aws:s3:::esd-*/*"


def test_any_region_needs_a_partition():
    s = policy.make_scope("aws-cn", "*", ACCOUNT)
    doc = policy.generate(policy.parse_features("update"), s).document
    assert policy.problems(doc) == []
    assert f"arn:aws-cn:sagemaker:*:{ACCOUNT}:endpoint/infer-endpoint-*" in doc["Statement"][1]["Resource"]
    with pytest.raises(BadInput, match="needs --partition"):
        policy.make_scope(None, "*", ACCOUNT)


@pytest.mark.parametrize("kwargs,message", [
    ({"partition": None, "region": "us-east-1", "account": "12345"}, "not an AWS account id"),
    ({"partition": None, "region": "useast1", "account": ACCOUNT}, "not an AWS region"),
    ({"partition": "aws-cn", "region": "us-east-1", "account": ACCOUNT}, "not in partition aws-cn"),
    ({"partition": "aws-mars", "region": "us-east-1", "account": ACCOUNT}, "Unknown partition"),
    ({"partition": None, "region": "us-east-1", "account": ACCOUNT, "endpoint": "infer_endpoint"}, "endpoint-pattern"),
    ({"partition": None, "region": "us-east-1", "account": ACCOUNT, "role": "a b"}, "role-pattern"),
    ({"partition": None, "region": "us-east-1", "account": ACCOUNT, "repository": "Upper"}, "--repository"),
    ({"partition": None, "region": "us-east-1", "account": ACCOUNT, "bucket": "a/b"}, "bucket-pattern"),
])
def test_bad_scope_is_one_clear_line(kwargs, message):
    with pytest.raises(BadInput) as info:
        policy.make_scope(**kwargs)
    assert message in info.value.message and info.value.fix and "\n" not in info.value.message


def test_unknown_feature_is_rejected():
    with pytest.raises(BadInput, match="Unknown feature 'deploy'"):
        policy.parse_features("update,deploy")
    assert policy.parse_features(" Logs , update ") == ["core", "update", "logs"]


@pytest.mark.parametrize("bad,problem", [
    ({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sagemaker:UpdateEndpoints",
                                               "Resource": "*"}]}, "not an IAM action"),
    ({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject"}]}, "Resource"),
    ({"Version": "2012-10-17", "Statement": [{"Effect": "Permit", "Action": "s3:GetObject", "Resource": "*"}]},
     "Effect"),
    ({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "bucket"}]},
     "not an ARN"),
    ({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                               "Resource": "*"}]}, "Principal"),
    ({"Version": "2012-10-17", "Statement": [{"Sid": "A", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
                                              {"Sid": "A", "Effect": "Allow", "Action": "s3:PutObject",
                                               "Resource": "*"}]}, "duplicate Sid"),
    ({"Version": "2012-10-17", "Statement": [{"Sid": "my-sid", "Effect": "Allow", "Action": "s3:GetObject",
                                               "Resource": "*"}]}, "alphanumeric"),
    ({"Version": "2012-10-17", "Statement": []}, "non-empty"),
    ({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}, "Version"),
])
def test_grammar_check_finds_what_iam_would_reject(bad, problem):
    assert any(problem in p for p in policy.problems(bad)), policy.problems(bad)


def test_grammar_check_accepts_wildcard_actions_that_match_real_ones():
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["sagemaker:Describe*", "s3:Get?bject"],
                                                   "Resource": "*"}]}
    assert policy.problems(doc) == []
    doc["Statement"][0]["Action"] = "sagemaker:Frobnicate*"
    assert policy.problems(doc)


def test_size_is_counted_without_whitespace_and_checked_against_iam_quotas():
    result = policy.generate(policy.parse_features("logs"), scope())
    compact = json.dumps(result.document, separators=(",", ":"))
    assert result.size == len(compact.replace(" ", ""))
    assert "inline user policy" in result.fits()
    everything = policy.generate(policy.parse_features("all"), scope())
    assert everything.size > result.size
    assert everything.fits() == [name for name, limit in policy.SIZE_LIMITS if everything.size <= limit]


def test_statement_for_and_feature_of_name_the_grant_of_an_action():
    assert permissions.feature_of("sagemaker:UpdateEndpoint") == "update"
    assert permissions.feature_of("logs:filterlogevents") == "logs"
    assert permissions.feature_of("ec2:RunInstances") is None
    st = policy.statement_for("iam:PassRole", scope(generations="infer"))
    assert st["Condition"]["StringEquals"]["iam:PassedToService"] == "sagemaker.amazonaws.com"
    assert st["Resource"] == [f"arn:aws:iam::{ACCOUNT}:role/*LambdaStartDeployRole*",
                              f"arn:aws:iam::{ACCOUNT}:role/*createEndpoint*"]


# -- CLI -----------------------------------------------------------------------------------------

def test_cli_prints_a_policy_ready_for_put_user_policy_without_credentials(capsys):
    code, out, err = run(capsys, "policy", "--region", "cn-north-1", "--account", ACCOUNT, "--features", "logs")
    assert code == 0
    doc = json.loads(out)
    assert doc == policy.generate(policy.parse_features("logs"), scope("cn-north-1")).document
    assert "arn:aws-cn:logs:cn-north-1" in out and "Traceback" not in err


def test_cli_warns_on_stderr_when_the_policy_is_too_big_for_an_inline_user_policy(capsys):
    code, out, err = run(capsys, "policy", "--region", "us-east-1", "--account", ACCOUNT)
    size = policy.generate(policy.parse_features("all"), scope()).size
    assert code == 0 and json.loads(out)
    if size > 2048:
        assert "2,048" in err and "create-policy" in err
    else:
        assert err == ""


def test_cli_explain_comments_every_statement_with_its_commands(capsys):
    code, out, _ = run(capsys, "policy", "--region", "us-east-1", "--account", ACCOUNT, "--explain")
    assert code == 0
    result = policy.generate(policy.parse_features("all"), scope())
    for st in result.statements:
        assert f'"Sid": "{st.sid}"' in out
        for grant in st.grants:
            assert "byoc " + ", byoc ".join(grant["commands"]) in out
    stripped = "\n".join(line for line in out.splitlines() if not line.strip().startswith("//"))
    assert json.loads(stripped) == result.document


def test_cli_explain_json(capsys):
    code, out, _ = run(capsys, "policy", "--region", "us-east-1", "--account", ACCOUNT, "--explain", "-o", "json",
                       "--features", "verify")
    data = json.loads(out)
    assert code == 0 and policy.problems(data["policy"]) == []
    assert data["size"] > 0 and any(s["sid"] == "AsyncRequests" for s in data["statements"])
    grants = [g for s in data["statements"] for g in s["grants"]]
    assert all(g["commands"] and g["why"] for g in grants)


def test_cli_bad_input_is_one_line_and_exit_2(capsys):
    code, out, err = run(capsys, "policy", "--region", "us-east-1", "--account", "42")
    assert code == 2 and out == ""
    assert err.startswith("error: '42' is not an AWS account id.") and "fix:" in err and "Traceback" not in err


def test_cli_without_account_or_credentials_says_so_with_exit_4(capsys):
    code, out, err = run(capsys, "policy", "--region", "us-east-1")
    assert code == 4 and out == ""
    assert "No AWS credentials found" in err and "Traceback" not in err


def test_cli_defaults_come_from_sts_and_the_session(sandbox, capsys):
    code, out, _ = run(capsys, "policy", "--features", "update")
    doc = json.loads(out)
    assert code == 0
    assert doc == policy.generate(policy.parse_features("update"), scope("us-east-1")).document


# -- reading a policy you already have ------------------------------------------------------------

def test_allows_reads_an_existing_policy_cautiously():
    ep = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/infer-endpoint-1"
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["sagemaker:Describe*", "sagemaker:DeleteEndpoint"], "Resource": "arn:aws:sagemaker:*:*:endpoint/infer-*"},
        {"Effect": "Deny", "Action": "sagemaker:DeleteEndpoint", "Resource": "*"},
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::mine/*"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*",
         "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}},
        {"Effect": "Allow", "Action": "logs:*", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
    ]}
    assert policy.allows(doc, "SageMaker:DescribeEndpoint", ep)
    assert not policy.allows(doc, "sagemaker:DeleteEndpoint", ep)  # explicit Deny
    assert not policy.allows(doc, "sagemaker:DescribeEndpoint", ep.replace("infer-endpoint", "other"))
    assert not policy.allows(doc, "sagemaker:DescribeEndpoint", ep.replace(":us-east-1:", ":us-east-1:x:"))
    assert policy.allows(doc, "s3:GetObject", "arn:aws:s3:::mine/key")
    assert not policy.allows(doc, "s3:GetObject", "arn:aws:s3:::theirs/key")
    role = f"arn:aws:iam::{ACCOUNT}:role/r"
    assert policy.allows(doc, "iam:PassRole", role, {"iam:PassedToService": "sagemaker.amazonaws.com"})
    assert not policy.allows(doc, "iam:PassRole", role, {"iam:PassedToService": "ec2.amazonaws.com"})
    assert not policy.allows(doc, "iam:PassRole", role)
    assert not policy.allows(doc, "logs:FilterLogEvents", "*")  # a condition it cannot evaluate: not counted


def test_the_generated_policy_allows_everything_it_was_generated_for():
    s = scope()
    document = policy.generate(policy.parse_features("all"), s).document
    sample = policy.concrete(s)
    for st in policy.generate(policy.parse_features("all"), sample).statements:
        arns = st.document["Resource"] if isinstance(st.document["Resource"], list) else [st.document["Resource"]]
        context = {"iam:PassedToService": "sagemaker.amazonaws.com"} if "Condition" in st.document else {}
        for grant in st.grants:
            for action in grant["actions"]:
                assert all(policy.allows(document, action, arn.replace("*", "x") if arn != "*" else arn, context)
                           for arn in arns), action
