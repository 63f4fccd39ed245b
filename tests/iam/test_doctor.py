"""`byoc doctor`: the individual checks, and the whole report for a valid caller, a caller
without permissions and no credentials at all (sandbox with --enforce-iam)."""

from __future__ import annotations

import json
from email.utils import formatdate

import pytest

from byoc.cli.main import main
from byoc.iam import doctor, policy
from byoc.sandbox import seed
from byoc.sandbox.server import ACCOUNT


def run(capsys, *argv):
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out, err = capsys.readouterr()
    return info.value.code, out, err


def as_user(monkeypatch, key):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])


def user(clients, name, document=None):
    client = clients.client("iam")
    client.create_user(UserName=name)
    if document:
        client.put_user_policy(UserName=name, PolicyName="byoc", PolicyDocument=json.dumps(document))
    return client.create_access_key(UserName=name)["AccessKey"]


def checks_by_name(data):
    return {c["name"]: c for c in data["checks"]}


# -- single checks -------------------------------------------------------------------------------------

def test_python_check():
    assert doctor.python_check((3, 9, 0)).status == "PASS"
    old = doctor.python_check((3, 8, 18))
    assert old.status == "FAIL" and "3.8.18" in old.detail and "3.9" in old.fix


def test_builder_check_finds_the_first_builder_on_path():
    found = doctor.builder_check(lambda name: "/opt/bin/podman" if name == "podman" else None, lambda path: None)
    assert (found.status, found.detail) == ("PASS", "podman (/opt/bin/podman)")
    # A CLI without its engine (docker installed, daemon stopped) is not a working builder.
    stopped = doctor.builder_check(lambda name: "/usr/bin/docker" if name == "docker" else None,
                                   lambda path: "Cannot connect to the Docker daemon at unix:///var/run/docker.sock.")
    assert stopped.status == "WARN" and "engine does not answer" in stopped.detail
    assert "systemctl start docker" in stopped.fix
    missing = doctor.builder_check(lambda name: None)
    assert missing.status == "WARN" and "docker" in missing.fix


@pytest.mark.parametrize("skew,status", [(0, "PASS"), (30, "PASS"), (-90, "WARN"), (400, "FAIL"), (-3600, "FAIL")])
def test_clock_skew_against_the_date_header(skew, status):
    now = 1_800_000_000.0
    check = doctor.skew_check(formatdate(now - skew, usegmt=True), now=now)
    assert check.status == status
    assert ("ahead of" if skew > 0 else "behind") in check.detail or skew == 0
    assert check.auth is (status == "FAIL")


def test_clock_skew_without_or_with_a_broken_date_header():
    assert doctor.skew_check(None).status == "WARN"
    assert doctor.skew_check("yesterday-ish").status == "WARN"


@pytest.mark.parametrize("arn,source", [
    ("arn:aws:iam::123456789012:user/dev/alice", "arn:aws:iam::123456789012:user/dev/alice"),
    ("arn:aws-cn:sts::123456789012:assumed-role/Deployer/session-1", "arn:aws-cn:iam::123456789012:role/Deployer"),
    ("arn:aws:iam::123456789012:root", None),
    ("arn:aws:sts::123456789012:federated-user/bob", None),
    ("not-an-arn", None),
])
def test_simulation_source(arn, source):
    assert doctor.simulation_source(arn) == source


def test_needs_follow_the_generated_policy_per_feature():
    scope = policy.make_scope(None, "us-east-1", ACCOUNT, generations="infer")
    needs = doctor.requirements(policy.parse_features("logs"), scope)
    logs = next(n for n in needs if "logs:FilterLogEvents" in n.actions)
    assert logs.features == ["logs"]
    assert logs.resources == [f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/"
                              "infer-endpoint-byoc-check:byoc-check"]
    assert not any(n.passrole for n in needs)
    passrole = [n for n in doctor.requirements(policy.parse_features("update"), scope) if n.passrole]
    assert passrole and passrole[0].actions == ["iam:PassRole"]


def test_permission_checks_report_missing_actions_per_feature():
    scope = policy.make_scope(None, "us-east-1", ACCOUNT)
    selected = policy.parse_features("update,logs")
    needs = doctor.requirements(selected, scope)
    allowed = {a: True for n in needs for a in n.actions}
    allowed["sagemaker:UpdateEndpoint"] = False
    allowed.pop("logs:GetLogEvents")
    checks, missing = doctor.permission_checks(selected, needs, allowed, "simulation")
    by = {c.name: c for c in checks}
    assert by["permissions: core"].status == "PASS"
    assert by["permissions: update"].status == "FAIL" and "sagemaker:UpdateEndpoint" in by["permissions: update"].detail
    assert "byoc policy --features update" in by["permissions: update"].fix
    assert by["permissions: logs"].status == "WARN"
    assert missing == ["sagemaker:UpdateEndpoint"]


# -- whole reports ----------------------------------------------------------------------------------------------

def test_valid_caller_passes(sandbox, clients, capsys, monkeypatch):
    seed.solution(clients, realtime_id=None)
    sandbox.app.enforce_iam = True
    region, account = "us-east-1", ACCOUNT
    document = policy.generate(policy.parse_features("all,doctor"), policy.make_scope(None, region, account)).document
    as_user(monkeypatch, user(clients, "valid", document))
    code, out, err = run(capsys, "doctor", "--endpoint", "infer-endpoint-a1b2c3d", "-o", "json")
    data = json.loads(out)
    checks = checks_by_name(data)
    assert code == 0 and data["ok"] and data["missing"] == [], data
    assert checks["credentials"] == {"name": "credentials", "status": "PASS",
                                     "detail": f"arn:aws:iam::{ACCOUNT}:user/valid", "fix": ""}
    assert checks["region"]["detail"] == "us-east-1 (partition aws)"
    assert checks["clock"]["status"] == "PASS"
    assert checks["endpoint"]["status"] == "PASS"
    assert not [c for c in data["checks"] if c["status"] == "FAIL"]
    assert {f"permissions: {f}" for f in ["core", "update", "verify", "logs", "build", "fleet"]} <= set(checks)
    assert err == ""


def test_caller_without_permissions_gets_the_list_of_what_is_missing(sandbox, clients, capsys, monkeypatch):
    seed.solution(clients, realtime_id=None)
    sandbox.app.enforce_iam = True
    as_user(monkeypatch, user(clients, "nobody"))
    code, out, err = run(capsys, "doctor", "--endpoint", "infer-endpoint-a1b2c3d", "-o", "json")
    data = json.loads(out)
    checks = checks_by_name(data)
    assert code == 4 and not data["ok"]
    assert checks["credentials"]["status"] == "PASS"  # sts:GetCallerIdentity needs no permission
    assert checks["endpoint"]["status"] == "FAIL" and "sagemaker:DescribeEndpoint" in checks["endpoint"]["detail"]
    assert {"sagemaker:ListEndpoints", "sagemaker:DescribeEndpoint", "logs:DescribeLogStreams"} <= set(data["missing"])
    assert checks["permissions: core"]["status"] == "FAIL"
    assert "byoc policy" in checks["permissions: core"]["fix"]
    # The text table says the same, with the missing actions listed once more at the end.
    code, out, _ = run(capsys, "doctor", "--endpoint", "infer-endpoint-a1b2c3d")
    assert code == 4 and "FAIL" in out and out.rstrip().splitlines()[-1].startswith("Missing: ")


def test_no_credentials_at_all(sandbox, capsys, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code, out, err = run(capsys, "doctor", "-o", "json")
    data = json.loads(out)
    checks = checks_by_name(data)
    assert code == 4 and "Traceback" not in err
    assert checks["credentials"]["status"] == "FAIL"
    assert checks["credentials"]["detail"] == "No AWS credentials found."
    assert "aws configure" in checks["credentials"]["fix"]
    assert checks["python"]["status"] == "PASS"
    assert "permissions: core" not in checks  # nothing to check without credentials


def test_no_region(capsys, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    code, out, err = run(capsys, "doctor", "-o", "json")
    checks = checks_by_name(json.loads(out))
    assert code == 4
    assert checks["region"]["status"] == "FAIL" and "--region" in checks["region"]["fix"]
    assert "secret" not in out + err


def test_rejected_access_key(sandbox, clients, capsys, monkeypatch):
    sandbox.app.enforce_iam = True
    key = user(clients, "retired")
    clients.client("iam").update_access_key(UserName="retired", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    as_user(monkeypatch, key)
    code, out, err = run(capsys, "doctor", "-o", "json")
    checks = checks_by_name(json.loads(out))
    assert code == 4
    assert checks["credentials"]["status"] == "FAIL" and "rejected the credentials" in checks["credentials"]["detail"]
    assert key["SecretAccessKey"] not in out + err


@pytest.mark.parametrize("content,message", [
    (None, "Cannot read --policy"),
    ("{not json", "is not JSON"),
    ("[1, 2]", "has no Statement"),
])
def test_unreadable_policy_file_is_one_line_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "policy.json"
    if content is not None:
        path.write_text(content)
    code, out, err = run(capsys, "doctor", "--policy", str(path))
    assert code == 2 and err.startswith("error: ") and message in err and "Traceback" not in err


def test_failed_endpoint_is_a_warning_with_the_way_out(sandbox, clients, capsys):
    from support.sandbox import endpoint

    endpoint(clients.client("sagemaker"), clients.client("ecr"), name="infer-endpoint-broken", behavior="crash")
    code, out, err = run(capsys, "doctor", "--endpoint", "infer-endpoint-broken", "-o", "json")
    check = checks_by_name(json.loads(out))["endpoint"]
    assert check["status"] == "WARN" and check["detail"].startswith("infer-endpoint-broken: Failed")
    assert "--strategy recreate" in check["fix"]


@pytest.mark.parametrize("region,partition", [("cn-northwest-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")])
def test_region_and_partition(sandbox, capsys, region, partition):
    code, out, err = run(capsys, "doctor", "--region", region, "-o", "json")
    checks = checks_by_name(json.loads(out))
    assert checks["region"] == {"name": "region", "status": "PASS", "detail": f"{region} (partition {partition})",
                                "fix": ""}
    code, out, err = run(capsys, "doctor", "--region", "mars-north-1", "-o", "json")
    check = checks_by_name(json.loads(out))["region"]
    assert code == 4 and check["status"] == "FAIL" and "--region" in check["fix"]
