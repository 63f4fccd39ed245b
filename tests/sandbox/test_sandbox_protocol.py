"""Bad input on the wire: malformed JSON, unknown operations or targets, wrong content types. The
sandbox answers with AWS-style error codes (SerializationException, UnknownOperationException,
ValidationException) in the caller's protocol, never an HTTP 500 with a Python traceback, and
changes nothing."""

from __future__ import annotations

import pytest

from support.sandbox import error_of, http, signed_headers

JSON11 = "application/x-amz-json-1.1"
SM = "SageMaker."
ECR = "AmazonEC2ContainerRegistry_V20150921."

CASES = [
    # (id, signing service, method, path, target, content type, body, status, code)
    ("malformed-json", "sagemaker", "POST", "/", SM + "ListEndpoints", JSON11, b'{"MaxResults": ', 400,
     "SerializationException"),
    ("json-array", "sagemaker", "POST", "/", SM + "ListEndpoints", JSON11, b"[1, 2]", 400, "SerializationException"),
    ("unknown-operation", "sagemaker", "POST", "/", SM + "LaunchRockets", JSON11, b"{}", 400,
     "UnknownOperationException"),
    ("wrong-content-type", "sagemaker", "POST", "/", SM + "ListEndpoints", "text/plain", b"{}", 400,
     "SerializationException"),
    ("get-method", "sagemaker", "GET", "/", SM + "ListEndpoints", JSON11, None, 400, "UnknownOperationException"),
    ("missing-target", "sagemaker", "POST", "/", None, JSON11, b"{}", 400, "UnknownOperationException"),
    ("foreign-target", "sagemaker", "POST", "/", "Foo.Bar", JSON11, b"{}", 400, "UnknownOperationException"),
    ("bad-member-type", "sagemaker", "POST", "/", SM + "DescribeEndpoint", JSON11, b'{"EndpointName": 7}', 400,
     "ValidationException"),
    ("runtime-unknown-path", "sagemaker", "POST", "/endpoints/ep/explode", None, "application/json", b"{}", 400,
     "UnknownOperationException"),
    ("moto-unknown-operation", "ecr", "POST", "/", ECR + "LaunchRockets", JSON11, b"{}", 400,
     "UnknownOperationException"),
    ("moto-malformed-json", "ecr", "POST", "/", ECR + "DescribeRepositories", JSON11, b"{not json", 400,
     "SerializationException"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_json_protocol_requests_get_aws_errors(sandbox, case):
    _, service, method, path, target, ctype, body, status, code = case
    got_status, got = http(sandbox.url + path, method, body, signed_headers(service, target, ctype))
    assert got_status == status
    assert isinstance(got, dict), got
    assert got["__type"] == code and got["message"]
    assert "Traceback" not in got["message"]


def test_query_protocol_errors_are_xml(sandbox):
    headers = signed_headers("sns", content_type="application/x-www-form-urlencoded")
    status, body = http(sandbox.url + "/", "POST", b"Action=LaunchRockets&Version=2010-03-31", headers)
    assert status == 400
    assert "<ErrorResponse>" in body and "<Code>UnknownOperationException</Code>" in body
    assert "Traceback" not in body


def test_control_paths_reject_malformed_json(sandbox):
    status, body = http(sandbox.url + "/_sandbox/faults", "POST", b"{oops")
    assert status == 400 and body["__type"] == "SerializationException"


def test_bad_requests_change_nothing(sandbox, sm):
    http(sandbox.url + "/", "POST", b'{"EndpointName": "x", "EndpointConfigName": ', signed_headers(
        "sagemaker", SM + "CreateEndpoint", JSON11))
    http(sandbox.url + "/", "POST", b'{"EndpointName": "x_y", "EndpointConfigName": "c"}', signed_headers(
        "sagemaker", SM + "CreateEndpoint", JSON11))
    assert sm.list_endpoints()["Endpoints"] == []


@pytest.mark.parametrize("region", ["eu-central-1", "ap-southeast-2", "cn-northwest-1"])
def test_any_credentials_any_region_one_account(sandbox, region):
    import boto3

    session = boto3.session.Session(aws_access_key_id="AKIAANYTHINGATALL123", aws_secret_access_key="whatever",
                                    region_name=region)
    assert session.client("sts", endpoint_url=sandbox.url).get_caller_identity()["Account"] == "123456789012"
    sm = session.client("sagemaker", endpoint_url=sandbox.url)
    partition = "aws-cn" if region.startswith("cn-") else "aws"
    err = error_of(sm.describe_endpoint, EndpointName="ep")
    assert err["Message"] == f'Could not find endpoint "arn:{partition}:sagemaker:{region}:123456789012:endpoint/ep".'
