"""`byoc policy` and the solution's generations: with no option it looks at the region's endpoints
and scopes to the generations it finds; a user holding exactly that output runs update, history,
rollback, restore, verify and diagnose on an endpoint of every generation under enforced IAM; and
`byoc doctor --endpoint E --policy FILE` names the option that would cover E."""

from __future__ import annotations

import json

import pytest

from byoc.cli.main import main
from byoc.sandbox import seed
from byoc.sandbox.server import ACCOUNT

ROOT = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def byoc(capsys, monkeypatch, env: dict, *argv: str) -> tuple:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.fixture
def generations(sandbox, clients):
    """An async endpoint of each generation: infer-endpoint-*, esd-async-* (v1.5), comfy-async-* (v1.7)."""
    out = {"infer": seed.solution(clients, realtime_id=None),
           "esd": seed.solution(clients, generation="esd", endpoint_id="b2c3d4e", realtime_id=None),
           "v1.6": seed.solution(clients, generation="v1.6", service="comfy", endpoint_id="c3d4e5f",
                                 realtime_id=None)}
    image, _ = seed.push_image(clients.client("ecr"), "my-sd-webui", "v2", "healthy")
    return out, image


def test_policy_without_options_scopes_to_the_generations_found(capsys, monkeypatch, sandbox, clients):
    code, out, err = byoc(capsys, monkeypatch, ROOT, "policy", "--features", "update")
    assert code == 0 and "no endpoint of the solution" in err  # an empty region: every generation
    assert "/infer-endpoint-*" in out and "/comfy-*" in out
    seed.solution(clients, generation="v1.6", service="comfy", endpoint_id="c3d4e5f", realtime_id=None)
    code, out, err = byoc(capsys, monkeypatch, ROOT, "policy", "--features", "update")
    assert code == 0 and "found in us-east-1: v1.6 (1 endpoint)" in err
    doc = json.loads(out)
    resources = json.dumps(doc)
    assert "endpoint/comfy-*" in resources and "endpoint/sd-*" in resources and "infer-endpoint" not in resources
    assert f"arn:aws:iam::{ACCOUNT}:role/ESDRole-*" in resources and "createEndpoint" not in resources


def test_a_user_holding_exactly_the_default_policy_runs_every_generation(capsys, monkeypatch, sandbox, clients,
                                                                        generations):
    deployments, image = generations
    code, out, err = byoc(capsys, monkeypatch, ROOT, "policy")
    assert code == 0 and "infer (1 endpoint), esd (1 endpoint), v1.6 (1 endpoint)" in err
    iam = clients.client("iam")
    iam.create_user(UserName="operator")
    iam.put_user_policy(UserName="operator", PolicyName="byoc", PolicyDocument=out)
    key = iam.create_access_key(UserName="operator")["AccessKey"]
    user = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    sandbox.app.enforce_iam = True
    try:
        for gen, dep in deployments.items():
            ep = dep["endpoints"][0]
            for argv, codes in ((["update", ep, image, "--yes", "-q"], (0,)), (["history", ep], (0,)),
                                (["rollback", ep, "--yes", "-q"], (0,)), (["restore", ep, "--yes", "-q"], (0,)),
                                (["verify", ep], (0,)), (["diagnose", ep], (0, 1))):
                code, out, err = byoc(capsys, monkeypatch, user, *argv)
                assert code in codes, (gen, argv, err)
    finally:
        sandbox.app.enforce_iam = False
    # Revisions stayed inside each generation's names.
    sm = clients.client("sagemaker")
    configs = {c["EndpointConfigName"] for c in sm.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]}
    assert {"infer-config-a1b2c3d-r1", "esd-config-async-b2c3d4e-r1", "comfy-async-c3d4e5f-r1"} <= configs


def test_doctor_names_the_option_that_covers_the_endpoint(capsys, monkeypatch, sandbox, clients, tmp_path):
    seed.solution(clients, generation="v1.6", endpoint_id="c3d4e5f", realtime_id=None)
    code, out, _ = byoc(capsys, monkeypatch, ROOT, "policy", "--solution", "infer", "--features", "update")
    path = tmp_path / "policy.json"
    path.write_text(out)
    code, out, err = byoc(capsys, monkeypatch, ROOT, "doctor", "--endpoint", "sd-async-c3d4e5f", "--policy",
                          str(path), "--features", "update", "-o", "json")
    report = json.loads(out)
    fixes = [c["fix"] for c in report["checks"] if c["status"] == "FAIL" and c["name"].startswith("permissions")]
    assert fixes and "--endpoint-pattern 'sd-*'" in fixes[0] and "--solution v1.6" in fixes[0]
    assert "--role-pattern 'ESDRole-us-east-1'" in fixes[0]
    # The policy it names is enough for that endpoint.
    code, out, _ = byoc(capsys, monkeypatch, ROOT, "policy", "--endpoint-pattern", "sd-*", "--role-pattern",
                        "ESDRole-us-east-1", "--features", "update")
    path.write_text(out)
    code, out, err = byoc(capsys, monkeypatch, ROOT, "doctor", "--endpoint", "sd-async-c3d4e5f", "--policy",
                          str(path), "--features", "update", "-o", "json")
    assert not [c for c in json.loads(out)["checks"] if c["name"].startswith("permissions") and c["status"] == "FAIL"]
