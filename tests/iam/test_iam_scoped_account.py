"""A user holding exactly `byoc policy` (scoped to infer-endpoint-*) in an account that also has
endpoints outside that pattern (issue 11): planning, updating, sweeping, rolling back and listing
never need to read the others, and the listings say how many they skipped."""

from __future__ import annotations

import json

import pytest

from byoc.cli.main import main
from byoc.deploy import sweep
from byoc.iam import policy
from byoc.sandbox import seed
from byoc.sandbox.server import ACCOUNT
from support.sandbox import endpoint

ASYNC = "infer-endpoint-a1b2c3d"


def _byoc(capsys, monkeypatch, key: dict, *argv: str) -> tuple:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_a_scoped_user_works_beside_endpoints_it_may_not_read(sandbox, clients, capsys, monkeypatch):
    monkeypatch.setattr(sweep, "CLOCK_MARGIN", sweep.CLOCK_MARGIN * 0)  # one clock in the sandbox
    sm, ecr = clients.client("sagemaker"), clients.client("ecr")
    endpoint(sm, ecr, "team-a-search")  # outside infer-endpoint-*, made before any revision
    seed.solution(clients)
    images = [seed.push_image(ecr, "my-sd", f"v{n}", "healthy")[0] for n in range(2, 5)]
    scope = policy.make_scope(None, "us-east-1", ACCOUNT, endpoint="infer-endpoint-*")
    doc = policy.generate(policy.parse_features("all"), scope).document
    iam = clients.client("iam")
    iam.create_user(UserName="scoped")
    iam.put_user_policy(UserName="scoped", PolicyName="byoc", PolicyDocument=json.dumps(doc))
    key = iam.create_access_key(UserName="scoped")["AccessKey"]
    sandbox.app.enforce_iam = True
    try:
        code, out, err = _byoc(capsys, monkeypatch, key, "endpoints", "-o", "json")
        assert code == 0, err
        listed = json.loads(out)
        assert {e["name"] for e in listed["endpoints"]} == {ASYNC, "infer-endpoint-f9e8d7c"}
        assert listed["skipped"] == ["team-a-search"]
        code, out, err = _byoc(capsys, monkeypatch, key, "endpoints")
        assert code == 0 and "1 endpoint(s) skipped" in out, (out, err)
        code, out, err = _byoc(capsys, monkeypatch, key, "fleet", "status", "--match", "*", "-o", "json")
        assert code == 0, err
        assert json.loads(out)["skipped"] == ["team-a-search"] and len(json.loads(out)["endpoints"]) == 2
        code, out, err = _byoc(capsys, monkeypatch, key, "update", ASYNC, images[0], "--dry-run", "-o", "json")
        assert code == 0 and json.loads(out)["result"] == "planned", err
        for image in images:  # with --keep 1 the last two sweep
            code, out, err = _byoc(capsys, monkeypatch, key, "update", ASYNC, image, "--yes", "--keep", "1",
                                   "-o", "json")
            assert code == 0 and json.loads(out)["result"] == "updated", err
        assert json.loads(out)["swept"]  # the sweep had nothing to read outside the pattern
        code, out, err = _byoc(capsys, monkeypatch, key, "rollback", ASYNC, "--yes", "-o", "json")
        assert code == 0, err
    finally:
        sandbox.app.enforce_iam = False
