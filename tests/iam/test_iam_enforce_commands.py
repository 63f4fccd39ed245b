"""Every byoc command under enforced IAM: `byoc policy` is complete (a user holding exactly its
output runs every command) and minimal (without any one action, some command fails with exit
code 4 naming it); the calls each command makes stay within its feature's policy; the seed's
original policy gets the list of what is missing; aws-cn and aws-us-gov ARNs.

Data-driven over the commands that exist (SCENARIOS); commands not yet in the CLI are left out.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Optional

import pytest

from byoc.aws import client as aws_client
from byoc.cli.main import cli, main
from byoc.iam import policy
from byoc.sandbox import iam, seed
from byoc.sandbox.server import ACCOUNT
from support.fakes.recorder import ROOT, FakeBuilder

ASYNC, REALTIME = "infer-endpoint-a1b2c3d", "infer-endpoint-f9e8d7c"
ROOT_KEY = {"AccessKeyId": "testing", "SecretAccessKey": "testing"}


@dataclass
class World:
    """What a scenario's argv may refer to."""

    clients: object
    tmp: object
    image: str = ""
    image3: str = ""
    default_image: str = ""

    def fill(self, argv: list) -> list:
        return [a.format(image=self.image, image3=self.image3, default_image=self.default_image, tmp=self.tmp,
                         missing=self.image.rsplit(":", 1)[0] + ":no-such-tag") for a in argv]


@dataclass
class Scenario:
    name: str
    argv: list
    feature: str  # the feature whose policy (with core) must be enough
    code: int = 0
    setup: list = field(default_factory=list)  # argv run first with the sandbox's own credentials
    prepare: Optional[Callable] = None  # extra state, given the World
    admin: bool = False  # record its calls as an IAM user allowed everything (doctor simulates only for users)

    @property
    def command(self) -> str:
        return self.argv[0]


def copy_context(world: World) -> None:
    shutil.copytree(ROOT / "examples", world.tmp / "ctx", dirs_exist_ok=True)


def create_alarm(world: World) -> None:
    world.clients.client("cloudwatch").put_metric_alarm(
        AlarmName="sd-5xx", Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors", Statistic="Sum",
        Period=60, EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
        Dimensions=[{"Name": "EndpointName", "Value": ASYNC}, {"Name": "VariantName", "Value": "prod"}])


def scaling_extras(world: World) -> None:
    """A scheduled action and the alarm that invokes the async endpoint's step policy (both are put
    again after an instance-type change)."""
    aas = world.clients.client("application-autoscaling")
    rid = f"endpoint/{ASYNC}/variant/prod"
    aas.put_scheduled_action(ServiceNamespace="sagemaker", ScheduledActionName="night", ResourceId=rid,
                             ScalableDimension="sagemaker:variant:DesiredInstanceCount", Schedule="cron(0 22 * * ? *)",
                             ScalableTargetAction={"MinCapacity": 0})
    step = [p["PolicyARN"] for p in aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=rid)[
        "ScalingPolicies"] if p["PolicyType"] == "StepScaling"][0]
    world.clients.client("cloudwatch").put_metric_alarm(
        AlarmName="backlog", Namespace="AWS/SageMaker", MetricName="HasBacklogWithoutCapacity", Statistic="Average",
        Period=60, EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
        Dimensions=[{"Name": "EndpointName", "Value": ASYNC}], AlarmActions=[step])


SCENARIOS = [
    Scenario("endpoints", ["endpoints"], "core"),
    Scenario("status", ["status", ASYNC], "core"),
    Scenario("history", ["history", ASYNC], "core", setup=[["update", ASYNC, "{image}"]]),
    Scenario("update", ["update", ASYNC, "{image}"], "update"),
    Scenario("update unknown tag", ["update", ASYNC, "{missing}"], "update", code=2),
    Scenario("update sweeps", ["update", REALTIME, "{image3}", "--keep", "1"], "update",
             setup=[["update", REALTIME, "{image}"], ["update", REALTIME, "{default_image}"]]),
    Scenario("update recreate", ["update", ASYNC, "{image}", "--strategy", "recreate"], "update"),
    Scenario("update alarm", ["update", ASYNC, "{image}", "--alarm", "sd-5xx"], "update", prepare=create_alarm),
    Scenario("update instance type", ["update", ASYNC, "{image}", "--instance-type", "ml.g6.2xlarge", "--env", "A=1"],
             "update", prepare=scaling_extras),
    Scenario("rollback", ["rollback", ASYNC], "update", setup=[["update", ASYNC, "{image}"]]),
    Scenario("restore", ["restore", ASYNC], "update", setup=[["update", ASYNC, "{image}"]]),
    Scenario("logs", ["logs", ASYNC, "--since", "1h"], "logs"),
    Scenario("logs grep", ["logs", ASYNC, "--since", "1h", "--grep", "ERROR"], "logs"),
    Scenario("diagnose", ["diagnose", ASYNC], "logs"),
    Scenario("verify async", ["verify", ASYNC], "verify"),
    Scenario("verify real-time", ["verify", REALTIME], "verify"),
    Scenario("verify image", ["verify", REALTIME, "--image", "{default_image}"], "verify"),
    Scenario("init", ["init", "{tmp}/init", "--base", "solution"], "build"),
    Scenario("build", ["build", "{tmp}/ctx", "--repository", "my-sd", "--push"], "build", prepare=copy_context),
    Scenario("build new repository", ["build", "{tmp}/ctx", "--repository", "brand-new", "--push"], "build",
             prepare=copy_context),
    Scenario("fleet status", ["fleet", "status", "--match", "infer-endpoint-*"], "core"),
    Scenario("fleet update", ["fleet", "update", "{image}", "--match", "infer-endpoint-*"], "fleet"),
    Scenario("fleet update canary", ["fleet", "update", "{image}", "--match", "infer-endpoint-*", "--canary", "1"],
             "fleet"),
    Scenario("fleet rollback", ["fleet", "rollback", "--match", "infer-endpoint-*"], "fleet",
             setup=[["fleet", "update", "{image}", "--match", "infer-endpoint-*"]]),
    Scenario("doctor", ["doctor", "--endpoint", ASYNC, "-o", "json"], "doctor", admin=True),
    Scenario("prune", ["prune", "--keep", "1", "--yes"], "prune",
             setup=[["update", REALTIME, "{image}"], ["update", REALTIME, "{image3}"]]),
]
SCENARIOS = [s for s in SCENARIOS if s.command in cli.commands]  # only the commands that exist


def grants() -> list:
    return [g for row in policy.table()["statements"] for g in row["grants"]]


BUILDER_ACTIONS = {a for g in grants() if g.get("by") == "builder" for a in g["actions"]}
DEGRADING_ACTIONS = {a for g in grants() if g.get("degrades") for a in g["actions"]}


def document(features: str, region: str = "us-east-1") -> dict:
    return policy.generate(policy.parse_features(features), policy.make_scope(None, region, ACCOUNT)).document


def without(doc: dict, action: str) -> dict:
    out = json.loads(json.dumps(doc))
    for st in out["Statement"]:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        st["Action"] = [a for a in actions if a != action]
    out["Statement"] = [st for st in out["Statement"] if st["Action"]]
    return out


def iam_actions_of(calls: Counter) -> set:
    """IAM actions behind Aws.calls keys ("prefix:Operation"): S3 HeadObject -> s3:GetObject, ...
    sts:GetCallerIdentity needs no permission; CreateModel also passes a role."""
    out = set()
    for key in calls:
        prefix, op = key.split(":", 1)
        if (prefix, op) in iam.ALWAYS_ALLOWED:
            continue
        out.update(r.action for r in iam.requested(prefix, op, {}, "us-east-1", ACCOUNT))
        if key == "sagemaker:CreateModel":
            out.add("iam:PassRole")
    return out


@pytest.fixture
def world(sandbox, clients, tmp_path, monkeypatch):
    fake = FakeBuilder(tmp_path / "fake", names=("docker",))
    for key, value in fake.env(path_rest=str(tmp_path / "nothing")).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    return World(clients, tmp_path)


def fresh(world: World, sandbox) -> None:
    """A reset sandbox with the solution's two endpoints and a second image."""
    sandbox.reset()
    sandbox.app.enforce_iam = False
    out = seed.solution(world.clients)
    world.default_image = out["default_image"]
    world.image, _ = seed.push_image(world.clients.client("ecr"), "my-sd", "v2", "healthy")
    world.image3, _ = seed.push_image(world.clients.client("ecr"), "my-sd", "v3", "healthy")


def make_user(world: World, name: str, doc: dict) -> dict:
    client = world.clients.client("iam")
    client.create_user(UserName=name)
    client.put_user_policy(UserName=name, PolicyName="byoc", PolicyDocument=json.dumps(doc))
    return client.create_access_key(UserName=name)["AccessKey"]


CHANGES = (["update"], ["rollback"], ["restore"], ["fleet", "update"], ["fleet", "rollback"])


def byoc(capsys, monkeypatch, key: dict, argv: list) -> tuple:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    if any(argv[:len(c)] == c for c in CHANGES) and "--yes" not in argv:
        argv = argv + ["--yes"]  # no terminal here: a change needs --yes
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return info.value.code, out, err


def run_scenario(world, sandbox, capsys, monkeypatch, scenario: Scenario, doc: Optional[dict] = None,
                 calls: Optional[Counter] = None) -> tuple:
    """Reset and seed; set up as root; run the command as a user holding `doc` (root when None)."""
    fresh(world, sandbox)
    if scenario.prepare:
        scenario.prepare(world)
    for argv in scenario.setup:
        code, out, err = byoc(capsys, monkeypatch, ROOT_KEY, world.fill(argv))
        assert code == 0, (argv, out, err)
    key = ROOT_KEY
    if doc is not None:
        key = make_user(world, "tester", doc)
        sandbox.app.enforce_iam = True
    made = []
    if calls is not None:
        original = aws_client.Aws.__init__

        def init(self, *args, **kwargs):
            original(self, *args, **kwargs)
            made.append(self)

        monkeypatch.setattr(aws_client.Aws, "__init__", init)
    try:
        result = byoc(capsys, monkeypatch, key, world.fill(scenario.argv))
    finally:
        sandbox.app.enforce_iam = False
        if calls is not None:
            for aws in made:
                calls.update(aws.calls)
    return result


# -- the calls each command makes ---------------------------------------------------------------------------

def test_commands_call_exactly_the_actions_of_the_policy(world, sandbox, capsys, monkeypatch):
    """Run every command with unrestricted credentials and record its calls (Aws.calls): each stays
    within its feature's policy, the table names the command for each action it needs, and every
    action of the policy is needed by some command (minimal at the action level). One test, so that
    the union is complete under pytest-xdist."""
    admin = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    scope = policy.make_scope(None, "us-east-1", ACCOUNT)
    problems, used = [], set()
    for scenario in SCENARIOS:
        calls: Counter = Counter()
        code, out, err = run_scenario(world, sandbox, capsys, monkeypatch, scenario, admin if scenario.admin else None,
                                      calls=calls)
        if code != scenario.code:
            problems.append(f"{scenario.name}: exit {code}: {(err or out)[-300:]}")
            continue
        needed = iam_actions_of(calls)
        used |= needed
        features = "all,doctor" if scenario.feature == "doctor" else scenario.feature
        granted = policy.generate(policy.parse_features(features), scope).actions
        problems += [f"{scenario.name} calls {a}, not in the policy of '{features}'" for a in sorted(needed - granted)]
        for action in sorted(needed):
            commands = {c.split()[0] for g in grants() if action in g["actions"] for c in g["commands"]}
            if scenario.command not in commands:
                problems.append(f"{action}: the table does not name '{scenario.command}' among its commands")
    unused = policy.generate(policy.parse_features("all,doctor"), scope).actions - used - BUILDER_ACTIONS
    problems += [f"{a} is in the policy but no command calls it" for a in sorted(unused)]
    assert problems == [], "\n".join(problems)


# -- complete: exactly the policy is enough -------------------------------------------------------------------

@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_a_user_holding_exactly_the_policy_runs_the_command(scenario, world, sandbox, capsys, monkeypatch):
    code, out, err = run_scenario(world, sandbox, capsys, monkeypatch, scenario, document("all"))
    assert code == scenario.code, (out, err)
    if scenario.command == "doctor":
        data = json.loads(out)
        assert data["ok"] and data["missing"] == [], data
        assert data["permission_check"] == "probes"  # iam:SimulatePrincipalPolicy is only in all,doctor


def test_with_the_optional_doctor_feature_doctor_simulates_every_action(world, sandbox, capsys, monkeypatch):
    doctor = next(s for s in SCENARIOS if s.command == "doctor")
    code, out, err = run_scenario(world, sandbox, capsys, monkeypatch, doctor, document("all,doctor"))
    data = json.loads(out)
    assert code == 0 and data["ok"] and data["missing"] == [] and data["permission_check"] == "simulation", data
    code, out, err = run_scenario(world, sandbox, capsys, monkeypatch, doctor,
                                  without(document("all,doctor"), "iam:SimulatePrincipalPolicy"))
    data = json.loads(out)
    simulation = next(c for c in data["checks"] if c["name"] == "simulation")
    assert code == 0 and data["permission_check"] == "probes"
    assert simulation["status"] == "WARN" and "iam:SimulatePrincipalPolicy" in simulation["detail"]


# -- minimal: every action is needed -----------------------------------------------------------------------------

def _actions_to_remove() -> list:
    actions = policy.generate(policy.parse_features("all"), policy.make_scope(None, "us-east-1", ACCOUNT)).actions
    return sorted(actions - BUILDER_ACTIONS - DEGRADING_ACTIONS)


def candidates_for(action: str) -> list:
    """Scenarios of the commands the table names for `action`: those matching a named command with
    its options ("logs --grep") first, in the table's order, then the others of the same command."""
    named = [c for g in grants() if action in g["actions"] for c in g["commands"]]
    ranked = []
    for command in named:
        words = command.split()
        ranked += [s for s in SCENARIOS if s.command == words[0] and all(w in s.argv for w in words[1:])
                   and s not in ranked]
    return ranked + [s for s in SCENARIOS if s.command in {c.split()[0] for c in named} and s not in ranked]


@pytest.mark.parametrize("action", _actions_to_remove())
def test_without_any_one_action_a_command_fails_naming_it(action, world, sandbox, capsys, monkeypatch):
    candidates = candidates_for(action)
    assert candidates, f"no existing command needs {action}"
    doc = without(document("all"), action)
    seen = []
    for scenario in candidates:
        code, out, err = run_scenario(world, sandbox, capsys, monkeypatch, scenario, doc)
        seen.append((scenario.name, code, (err or out)[-300:]))
        if code == 4 and action in err:
            return
        if scenario.command == "doctor" and action in out:
            return  # doctor reports a missing permission in its table rather than stopping
    pytest.fail(f"removing {action} broke no command with exit 4 naming it: {seen}")


@pytest.mark.parametrize("action", sorted(DEGRADING_ACTIONS))
def test_degrading_actions_only_skip_a_check(action, world, sandbox, capsys, monkeypatch):
    """Documented in permissions.json ("degrades"): without them the command still succeeds."""
    commands = {c.split()[0] for g in grants() if action in g["actions"] for c in g["commands"]}
    scenario = next(s for s in SCENARIOS if s.command in commands and s.code == 0)
    code, out, err = run_scenario(world, sandbox, capsys, monkeypatch, scenario, without(document("all"), action))
    assert code == 0, (out, err)


# -- the seed's policy -------------------------------------------------------------------------------------------

def seed_policy(partition="aws", region="us-east-1", account=ACCOUNT) -> dict:
    """The Custom Container guide's policy, placeholders filled in."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "StableDiffusionOnAWSExtensionEndpoint", "Effect": "Allow",
         "Action": ["sagemaker:DescribeModel", "sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig",
                    "sagemaker:DeleteModel", "sagemaker:DeleteEndpoint", "sagemaker:DeleteEndpointConfig",
                    "sagemaker:CreateModel", "sagemaker:CreateEndpoint", "sagemaker:CreateEndpointConfig"],
         "Resource": [f"arn:{partition}:sagemaker:{region}:{account}:model/infer-model-*",
                      f"arn:{partition}:sagemaker:{region}:{account}:endpoint/infer-endpoint-*",
                      f"arn:{partition}:sagemaker:{region}:{account}:endpoint-config/infer-config-*"]},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": f"arn:{partition}:iam::{account}:role/*createEndpoint*"},
        {"Effect": "Allow", "Action": "application-autoscaling:DeregisterScalableTarget", "Resource": "*"},
    ]}


def test_the_seed_policy_gets_the_list_of_what_is_missing(world, sandbox, capsys, monkeypatch):
    fresh(world, sandbox)
    key = make_user(world, "seeded", seed_policy())
    sandbox.app.enforce_iam = True
    granted = {a for st in seed_policy()["Statement"] for a in
               (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}
    needed = policy.generate(policy.parse_features("all"), policy.make_scope(None, "us-east-1", ACCOUNT)).actions
    # The guide's policy file, read by doctor: the complete list.
    path = world.tmp / "seed-policy.json"
    path.write_text(json.dumps(seed_policy()))
    code, out, err = byoc(capsys, monkeypatch, key, ["doctor", "--endpoint", ASYNC, "--policy", str(path), "-o", "json"])
    data = json.loads(out)
    assert code == 4 and data["permission_check"] == "policy file"
    assert data["missing"] == sorted(needed - granted)
    fails = [c for c in data["checks"] if c["status"] == "FAIL"]
    assert {c["name"] for c in fails} >= {"permissions: core", "permissions: update", "permissions: logs"}
    assert all("byoc policy" in c["fix"] for c in fails if c["name"].startswith("permissions"))
    # Without the file, and without iam:SimulatePrincipalPolicy, read probes name what they can.
    code, out, err = byoc(capsys, monkeypatch, key, ["doctor", "--endpoint", ASYNC, "-o", "json"])
    probed = json.loads(out)
    assert code == 4 and probed["permission_check"] == "probes"
    assert probed["missing"] and set(probed["missing"]) <= needed - granted
    assert "sagemaker:ListEndpoints" in probed["missing"]
    # And a command that needs one of them stops with exit 4 naming it.
    code, out, err = byoc(capsys, monkeypatch, key, ["update", ASYNC, world.image])
    assert code == 4 and any(a in err.splitlines()[0] for a in data["missing"])


# -- partitions -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("partition,region", [("aws-cn", "cn-north-1"), ("aws-us-gov", "us-gov-west-1")])
def test_policies_are_partition_specific(partition, region, world, sandbox, capsys, monkeypatch):
    sandbox.reset()
    clients = seed.session(sandbox.url, region=region)
    seed.solution(clients, region=region, realtime_id=None)
    iam_client = clients.client("iam")
    keys = {}
    for name, doc in (("local", document("all", region)), ("foreign", document("all", "us-east-1"))):
        iam_client.create_user(UserName=name)
        iam_client.put_user_policy(UserName=name, PolicyName="byoc", PolicyDocument=json.dumps(doc))
        keys[name] = iam_client.create_access_key(UserName=name)["AccessKey"]
    sandbox.app.enforce_iam = True
    code, out, err = byoc(capsys, monkeypatch, keys["local"], ["status", ASYNC, "--region", region, "-o", "json"])
    assert code == 0, err
    code, out, err = byoc(capsys, monkeypatch, keys["foreign"], ["status", ASYNC, "--region", region])
    assert code == 4
    assert f"sagemaker:DescribeEndpoint on arn:{partition}:sagemaker:{region}:{ACCOUNT}:endpoint/{ASYNC}" in err
