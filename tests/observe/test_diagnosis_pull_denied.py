"""`ecr-pull-denied` end to end: the sandbox fails a deployment whose execution role may no longer pull
its (cross-account) image with SageMaker's wording, and `byoc diagnose` names that first."""

from __future__ import annotations

import json

from byoc.sandbox import ACCOUNT
from support.cli import run_cli
from support.sandbox import ROLE, grant_pull, other_account_image, settle


def test_a_revoked_cross_account_grant_is_diagnosed_as_ecr_pull_denied(sandbox, sm, capsys):
    image, other_ecr = other_account_image(sandbox)
    grant_pull(other_ecr, "shared/sd", f"arn:aws:iam::{ACCOUNT}:root")
    sm.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})
    other_ecr.delete_repository_policy(repositoryName="shared/sd")  # the owner takes the grant back
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
        {"VariantName": "prod", "ModelName": "m", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    assert settle(sm, "ep")["FailureReason"] == (
        f"The role '{ROLE}' does not have BatchGetImage permission for the image: '{image}'.")
    code, out, err = run_cli(capsys, "diagnose", "ep", "--output", "json")
    assert code == 0, err
    findings = json.loads(out)["findings"]
    assert findings[0]["id"] == "ecr-pull-denied"
    assert ROLE in findings[0]["cause"]
