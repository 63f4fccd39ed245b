"""Permission and credential errors everywhere in byoc: one line naming the denied action and
resource (from AWS's own wording, per service), the statement to add, exit code 4, and a
traceback only with --debug."""

from __future__ import annotations

import json

import pytest
from botocore import exceptions as bx

from byoc.aws.client import translate
from byoc.cli.main import main
from byoc.errors import EXIT_AUTH, AuthError, AwsError

USER = "arn:aws:iam::123456789012:user/dev"


def client_error(code: str, message: str, operation: str) -> bx.ClientError:
    return bx.ClientError({"Error": {"Code": code, "Message": message}}, operation)


@pytest.mark.parametrize("code,message,prefix,operation,action,resource", [
    ("AccessDeniedException",
     f"User: {USER} is not authorized to perform: sagemaker:UpdateEndpoint on resource: "
     "arn:aws:sagemaker:us-east-1:123456789012:endpoint/infer-endpoint-1 because no identity-based policy allows "
     "the sagemaker:UpdateEndpoint action", "sagemaker", "UpdateEndpoint", "sagemaker:UpdateEndpoint",
     "arn:aws:sagemaker:us-east-1:123456789012:endpoint/infer-endpoint-1"),
    # S3 quotes the resource.
    ("AccessDenied", f'User: {USER} is not authorized to perform: s3:GetObject on resource: "arn:aws:s3:::b/k/1.png" '
                     "because no identity-based policy allows the s3:GetObject action",
     "s3", "GetObject", "s3:GetObject", "arn:aws:s3:::b/k/1.png"),
    # SNS writes its prefix in capitals.
    ("AuthorizationError", f"User: {USER} is not authorized to perform: SNS:Publish on resource: "
                           "arn:aws-cn:sns:cn-north-1:123456789012:t because no identity-based policy allows the "
                           "SNS:Publish action", "sns", "Publish", "sns:Publish", "arn:aws-cn:sns:cn-north-1:123456789012:t"),
    # IAM sometimes names the resource in words: keep the action, drop the resource.
    ("AccessDenied", f"User: {USER} is not authorized to perform: iam:GetUser on resource: user dev because no "
                     "identity-based policy allows the iam:GetUser action", "iam", "GetUser", "iam:GetUser", ""),
    # EC2-style and bare denials: the action comes from the operation (S3 HEAD has no body at all).
    ("UnauthorizedOperation", "You are not authorized to perform this operation. Encoded authorization failure "
                              "message: abc", "application-autoscaling", "RegisterScalableTarget",
     "application-autoscaling:RegisterScalableTarget", ""),
    ("403", "Forbidden", "s3", "HeadObject", "s3:GetObject", ""),
    ("AccessDenied", "Access Denied", "s3", "ListObjectsV2", "s3:ListBucket", ""),
])
def test_denials_name_the_action_and_resource(code, message, prefix, operation, action, resource):
    err = translate(client_error(code, message, operation), prefix, operation, prefix)
    assert isinstance(err, AuthError) and err.exit_code == EXIT_AUTH
    assert (err.action, err.resource) == (action, resource)
    assert err.message == f"Permission denied: {action}{' on ' + resource if resource else ''}."
    statement = json.loads(err.fix.split("IAM policy: ", 1)[1].split(" (or attach", 1)[0])
    assert statement == {"Effect": "Allow", "Action": action, "Resource": resource or "*"}
    assert "byoc policy" in err.fix and "\n" not in err.message + err.fix


def test_passrole_fix_carries_the_passed_to_service_condition():
    message = (f"User: {USER} is not authorized to perform: iam:PassRole on resource: "
               "arn:aws:iam::123456789012:role/ESD-createEndpoint-Role because no identity-based policy allows "
               "the iam:PassRole action")
    err = translate(client_error("AccessDeniedException", message, "CreateModel"), "sagemaker", "CreateModel", "sagemaker")
    statement = json.loads(err.fix.split("IAM policy: ", 1)[1].split(" (or attach", 1)[0])
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert "`byoc policy --features update`" in err.fix


def test_explicit_deny_says_an_allow_would_not_help():
    message = (f"User: {USER} is not authorized to perform: sagemaker:DeleteEndpoint on resource: "
               "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e with an explicit deny in a service control policy")
    err = translate(client_error("AccessDeniedException", message, "DeleteEndpoint"), "sagemaker", "DeleteEndpoint",
                    "sagemaker")
    assert err.exit_code == EXIT_AUTH and err.action == "sagemaker:DeleteEndpoint"
    assert "explicit Deny in a service control policy" in err.message
    assert "Adding an Allow does not help" in err.fix


@pytest.mark.parametrize("code,message,fix", [
    ("ExpiredTokenException", "The security token included in the request is expired", "aws sso login"),
    ("ExpiredToken", "The provided token has expired.", "aws sso login"),
    ("InvalidClientTokenId", "The security token included in the request is invalid.", "aws configure list"),
    ("SignatureDoesNotMatch", "The request signature we calculated does not match", "aws configure list"),
])
def test_rejected_credentials(code, message, fix):
    err = translate(client_error(code, message, "GetCallerIdentity"), "sts", "GetCallerIdentity", "sts")
    assert isinstance(err, AuthError) and err.exit_code == EXIT_AUTH
    assert code in err.message and fix in err.fix


@pytest.mark.parametrize("exc,message", [
    (bx.NoCredentialsError(), "No AWS credentials found."),
    (bx.PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"), "No AWS credentials found."),
    (bx.NoRegionError(), "No AWS region configured."),
    (bx.SSOTokenLoadError(error_msg="expired"), "The AWS SSO session has expired or was never started."),
    (bx.ProfileNotFound(profile="work"), "The config profile (work) could not be found."),
])
def test_missing_credentials_region_or_session(exc, message):
    err = translate(exc, "sagemaker", "ListEndpoints", "sagemaker")
    assert isinstance(err, AuthError) and err.exit_code == EXIT_AUTH and err.message == message and err.fix


def test_other_errors_are_not_permission_errors():
    err = translate(client_error("ValidationException", "Could not find endpoint", "DescribeEndpoint"),
                    "sagemaker", "DescribeEndpoint", "sagemaker")
    assert isinstance(err, AwsError) and err.code == "ValidationException"
    boom = ValueError("not botocore")
    assert translate(boom, "sagemaker", "X", "sagemaker") is boom


def test_cli_shows_a_traceback_only_with_debug(sandbox, clients, capsys, monkeypatch):
    iam = clients.client("iam")
    iam.create_user(UserName="nobody")
    key = iam.create_access_key(UserName="nobody")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    sandbox.app.enforce_iam = True
    for argv, traceback in ((["endpoints"], False), (["endpoints", "--debug"], True)):
        with pytest.raises(SystemExit) as info:
            main(argv)
        out, err = capsys.readouterr()
        assert info.value.code == 4 and out == ""
        assert ("Traceback" in err) is traceback
        assert "error: Permission denied: sagemaker:ListEndpoints on *." in err
        assert key["SecretAccessKey"] not in err
