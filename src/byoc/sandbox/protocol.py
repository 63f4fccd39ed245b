"""Wire-protocol helpers: who is being called, and AWS-shaped JSON answers and errors."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional

_SCOPE_RE = re.compile(r"Credential=(?P<key>[^/,\s]+)/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")


@dataclass
class Caller:
    access_key: str
    region: str
    service: str


def caller(environ: dict) -> Optional[Caller]:
    """The access key, region and signing service of a SigV4-signed request."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    m = _SCOPE_RE.search(auth)
    if m:
        return Caller(m["key"], m["region"], m["service"].lower())
    return None


class ServiceError(Exception):
    """An error answered in the service's protocol: code, message, HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def json_params(body: bytes) -> Any:
    """A JSON-protocol request's parameters: AWS JSON protocols reject a body that is not JSON
    (SerializationException, HTTP 400)."""
    try:
        return json.loads(body or b"{}")
    except ValueError:
        raise ServiceError("SerializationException", "Unable to parse the request body as JSON.") from None


def validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def json_response(start_response: Callable[..., Any], body: dict, status: int = 200, content_type: str = "application/x-amz-json-1.1",
                  headers: Optional[list] = None) -> Any:
    data = json.dumps(body, default=_default).encode()
    hdrs = [("Content-Type", content_type), ("Content-Length", str(len(data))),
            ("x-amzn-RequestId", _request_id())]
    hdrs.extend(headers or [])
    start_response(f"{status} {_REASONS.get(status, 'Error')}", hdrs)
    return [data]


def error_response(start_response: Callable[..., Any], err: ServiceError, content_type: str = "application/x-amz-json-1.1") -> Any:
    # AWS JSON protocols carry the code in "__type" and in the x-amzn-ErrorType header
    # (https://smithy.io/2.0/aws/protocols/aws-json-1_1-protocol.html#operation-error-serialization).
    body = {"__type": err.code, "message": err.message, "Message": err.message}
    return json_response(start_response, body, err.status, content_type,
                         headers=[("x-amzn-ErrorType", err.code)])


def error_for(environ: dict, start_response: Callable[..., Any], err: ServiceError) -> Any:
    """An error in the wire protocol of the request: JSON for AWS JSON / REST-JSON calls, the
    S3 `<Error>` document for S3, and the Query `<ErrorResponse>` document for Query services
    (STS, IAM, SNS), so that boto3 and the AWS CLI read the code
    (https://smithy.io/2.0/aws/protocols/aws-query-protocol.html#operation-error-serialization,
    "Error responses" in the Amazon S3 API Reference)."""
    who = caller(environ)
    json_call = (environ.get("HTTP_X_AMZ_TARGET") or "json" in environ.get("CONTENT_TYPE", "")
                 or environ.get("PATH_INFO", "").startswith("/_sandbox/"))
    if json_call or who is None or who.service == "sagemaker":
        return error_response(start_response, err)
    code, message = _xml_escape(err.code), _xml_escape(err.message)
    request_id = _request_id()
    if who.service == "s3":
        doc = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
    else:
        doc = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
               f"<RequestId>{request_id}</RequestId></ErrorResponse>")
    data = ('<?xml version="1.0" encoding="UTF-8"?>\n' + doc).encode()
    return raw_response(start_response, data, err.status, "text/xml")


def _xml_escape(text: str) -> str:
    from xml.sax.saxutils import escape

    return escape(text)


def raw_response(start_response: Callable[..., Any], data: bytes, status: int = 200, content_type: str = "application/json",
                 headers: Optional[list] = None) -> Any:
    hdrs = [("Content-Type", content_type), ("Content-Length", str(len(data))), ("x-amzn-RequestId", _request_id())]
    hdrs.extend(headers or [])
    start_response(f"{status} {_REASONS.get(status, 'Error')}", hdrs)
    return [data]


_REASONS = {200: "OK", 202: "Accepted", 204: "No Content", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            409: "Conflict", 424: "Failed Dependency", 429: "Too Many Requests", 500: "Internal Server Error",
            503: "Service Unavailable"}


def _request_id() -> str:
    import uuid

    return str(uuid.uuid4())


def _default(value: Any) -> Any:
    import datetime

    if isinstance(value, datetime.datetime):
        return value.timestamp()
    raise TypeError(f"not JSON serializable: {type(value)}")


def read_body(environ: dict) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ["wsgi.input"]
    if length > 0:
        return stream.read(length)
    if environ.get("wsgi.input_terminated"):  # chunked transfer: the server marks the end of the body
        return stream.read()
    return b""
