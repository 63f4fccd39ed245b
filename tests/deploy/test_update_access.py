"""Pre-flight learns what CreateModel refuses: an execution role SageMaker cannot assume, an image in
another account whose repository policy does not let the role pull. Each is refused before anything
changes (exit 2) with the fix; the cross-account refusal names the repository policy statement to
add, and with it in place the update goes through."""

from __future__ import annotations

import json

import pytest

from byoc.sandbox import seed
from support.sandbox import OTHER_ACCOUNT, PULL, error_of, grant_pull, other_account_image
from support.update import REALTIME_EP, deployment, error_lines, resources, run, served_digest

ROLE = seed.ROLE_NAME
READ = ["ecr:DescribeImages", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:GetRepositoryPolicy",
        "ecr:ListImages"]


@pytest.fixture
def dep(sandbox, clients):
    return deployment(clients, realtime_id="f9e8d7c")


def refused(capsys, sm, *argv: str) -> tuple:
    before = resources(sm), sm.describe_endpoint(EndpointName=REALTIME_EP)["EndpointConfigName"]
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    lines = error_lines(err)
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("  fix: "), err
    assert (resources(sm), sm.describe_endpoint(EndpointName=REALTIME_EP)["EndpointConfigName"]) == before
    return lines[0][len("error: "):], lines[1][len("  fix: "):]


def test_cross_account_image_without_a_grant_for_the_role_is_refused_with_the_statement(sandbox, sm, clients,
                                                                                       capsys, dep):
    image, other_ecr = other_account_image(sandbox)
    caller = clients.client("sts").get_caller_identity()["Arn"]
    grant_pull(other_ecr, "shared/sd", caller, actions=READ)  # byoc may read it; the execution role may not pull
    error, fix = refused(capsys, sm, "update", REALTIME_EP, image)
    assert f"The role '{dep['role']}' does not have BatchGetImage permission for the image" in error
    assert f"account {OTHER_ACCOUNT}" in error
    assert f"repository policy of shared/sd in account {OTHER_ACCOUNT}" in fix
    added = json.loads(fix[fix.index("{"):])
    assert added == {"Sid": "AllowSageMakerExecutionRolePull", "Effect": "Allow",
                     "Principal": {"AWS": dep["role"]}, "Action": PULL}
    # The statement, added as told, is what SageMaker needs: the update then goes through.
    policy = json.loads(other_ecr.get_repository_policy(repositoryName="shared/sd")["policyText"])
    policy["Statement"].append(added)
    other_ecr.set_repository_policy(repositoryName="shared/sd", policyText=json.dumps(policy))
    code, out, err = run(capsys, "update", REALTIME_EP, image, "--yes")
    assert code == 0, (out, err)
    digest = other_ecr.describe_images(repositoryName="shared/sd")["imageDetails"][0]["imageDigest"]
    assert served_digest(sm, REALTIME_EP) == digest


def test_the_same_image_on_create_model_gets_aws_wording(sandbox, sm, clients, dep):
    image, other_ecr = other_account_image(sandbox)
    grant_pull(other_ecr, "shared/sd", clients.client("sts").get_caller_identity()["Arn"], actions=READ)
    err = error_of(sm.create_model, ModelName="m", ExecutionRoleArn=dep["role"], PrimaryContainer={"Image": image})
    assert err["Message"] == f"The role '{dep['role']}' does not have BatchGetImage permission for the image: '{image}'."


def test_cross_account_repository_the_caller_may_not_read_names_its_policy(sandbox, capsys, sm, clients, dep):
    image, _ = other_account_image(sandbox)  # no repository policy at all
    before = resources(sm)
    code, out, err = run(capsys, "update", REALTIME_EP, image, "--yes")
    assert code == 4, (out, err)  # a permission problem (exit 4), found before anything changed
    error, fix = error_lines(err)
    caller = clients.client("sts").get_caller_identity()["Arn"]
    assert "Permission denied: ecr:" in error  # the first ECR read byoc makes
    assert f"The repository is in account {OTHER_ACCOUNT}" in error
    assert json.loads(fix[fix.index("{"):])["Principal"] == {"AWS": caller}
    assert resources(sm) == before


def test_execution_role_gone_or_not_trusting_sagemaker_is_refused(capsys, sm, clients, dep):
    iam = clients.client("iam")
    iam.update_assume_role_policy(RoleName=ROLE, PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))
    error, fix = refused(capsys, sm, "update", REALTIME_EP, dep["custom_image"])
    assert "does not let SageMaker assume it" in error
    assert '"Service": "sagemaker.amazonaws.com"' in fix
    iam.delete_role_policy(RoleName=ROLE, PolicyName="sagemaker-execution")
    iam.delete_role(RoleName=ROLE)
    error, fix = refused(capsys, sm, "update", REALTIME_EP, dep["custom_image"])
    assert error.startswith(f"The execution role {dep['role']} of model infer-model-f9e8d7c does not exist")
