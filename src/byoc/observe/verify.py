"""`byoc verify`: does the endpoint's container work? PASS or FAIL with reasons.

Checks, in order: the endpoint is InService; the live image is the expected one (when asked);
a real invocation succeeds (real-time: InvokeEndpoint; asynchronous: the payload is put under
the config's S3OutputPath, InvokeEndpointAsync, then the output or failure object is awaited);
the logs since the last deployment hold no error signature. Only the async test request
writes to AWS (its input object, and SageMaker's output object).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import List, Optional, Tuple

from byoc import redaction
from byoc.aws.client import Aws
from byoc.diagnosis import Finding, KeyLine, key_lines, match
from byoc.endpoint import view as endpoint_view
from byoc.errors import AuthError, AwsError
from byoc.images import ref as image_ref
from byoc.observe import logs
from byoc.observe.diagnose import facts, load_view

DEFAULT_PAYLOAD = b"{}"
DEFAULT_CONTENT_TYPE = "application/json"
DEFAULT_TIMEOUT = 300.0
FAILING_SEVERITIES = ("critical", "error")
_CONTAINER_STATUS_RE = re.compile(r"Received (?:client|server) error \((\d+)\)")
_INVOCATION_5XX = re.compile(r'"POST /invocations HTTP/1\.[01]" 5\d\d')
_NOT_FOUND = ("404", "NoSuchKey", "NotFound")


@dataclass
class VerifyCheck:
    name: str  # status | image | invocation | logs
    ok: Optional[bool]  # None: not run
    detail: str

    def to_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class Verification:
    endpoint: str
    region: str
    checks: List[VerifyCheck]
    findings: List[Finding] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    error_lines: List[KeyLine] = field(default_factory=list)  # what the container logged for a failed invocation

    @property
    def passed(self) -> bool:
        return all(c.ok is not False for c in self.checks) and any(c.name == "invocation" and c.ok
                                                                   for c in self.checks)

    @property
    def result(self) -> str:
        return "PASS" if self.passed else "FAIL"

    @property
    def reasons(self) -> List[str]:
        return [c.detail for c in self.checks if c.ok is False]

    def to_dict(self) -> dict:
        return {"endpoint": self.endpoint, "region": self.region, "result": self.result,
                "reasons": self.reasons, "checks": [c.to_dict() for c in self.checks],
                "findings": [f.to_dict() for f in self.findings], "notes": self.notes,
                "error_lines": [k.to_dict() for k in self.error_lines]}


def check_status(view: endpoint_view.EndpointView) -> VerifyCheck:
    status = view.status
    if status == "InService":
        return VerifyCheck("status", True, "The endpoint is InService.")
    reason = view.endpoint.get("FailureReason")
    detail = f"The endpoint is {status}, not InService" + (f": {reason}" if reason else ".")
    return VerifyCheck("status", False, detail)


def check_image(aws: Aws, view: endpoint_view.EndpointView, expected: image_ref.ImageRef) -> Tuple[VerifyCheck, List[str]]:
    """Compare each variant's deployed image with `expected`, by digest when both are known."""
    notes: List[str] = []
    want = expected.digest
    if want is None:
        try:
            found = aws.ecr.describe_images(registryId=expected.account, repositoryName=expected.repository,
                                            imageIds=[{"imageTag": expected.tag or "latest"}])
            want = found["imageDetails"][0]["imageDigest"]
        except AuthError:
            notes.append("No ecr:DescribeImages permission: compared image URIs, not digests.")
        except AwsError as exc:
            if exc.code not in ("ImageNotFoundException", "RepositoryNotFoundException"):
                raise
            return VerifyCheck("image", False, f"The expected image {expected} does not exist in ECR ({exc.code})."), notes
    wrong = []
    for v in view.variants:
        if want and v.digest:
            same = v.digest == want
        else:
            same = (v.image or "") == expected.uri
        if not same:
            live = v.resolved_image or v.image or "no image"
            wrong.append(f"variant {v.name} runs {live}")
    if not view.variants:
        return VerifyCheck("image", False, "The endpoint has no production variant to compare."), notes
    if wrong:
        suffix = f" ({want})" if want and want != expected.digest else ""
        return VerifyCheck("image", False, f"Expected {expected}{suffix}, but " + "; ".join(wrong) + "."), notes
    shown = f"{expected.repository}@{want[:19]}" if want else expected.uri
    return VerifyCheck("image", True, f"Every variant runs the expected image {shown}."), notes


def container_status(message: str) -> Optional[int]:
    """The HTTP status the container answered, from SageMaker's ModelError wording."""
    m = _CONTAINER_STATUS_RE.search(message or "")
    return int(m.group(1)) if m else None


def invoke_realtime(aws: Aws, endpoint: str, payload: Optional[bytes], content_type: str,
                    variant: Optional[str] = None) -> VerifyCheck:
    """InvokeEndpoint once (with TargetVariant when `variant` is given: each variant is its own container)."""
    body = DEFAULT_PAYLOAD if payload is None else payload
    started = time.monotonic()
    target = {"TargetVariant": variant} if variant else {}
    try:
        out = aws.client("sagemaker-runtime").invoke_endpoint(
            EndpointName=endpoint, Body=body, ContentType=content_type, **target)
    except AwsError as exc:
        status = container_status(exc.aws_message)
        if payload is None and status is not None and 400 <= status < 500:
            return VerifyCheck("invocation", True,
                         f"The container answered {status} to an empty JSON request, so /invocations is served "
                         "(pass --payload FILE to test a real request).")
        of = f" (variant {variant})" if variant else ""
        return VerifyCheck("invocation", False,
                           f"InvokeEndpoint failed{of}: {exc.code}: {redaction.text(exc.aws_message)}")
    data = out["Body"].read()
    took = time.monotonic() - started
    variant = out.get("InvokedProductionVariant")
    where = f" from variant {variant}" if variant else ""
    return VerifyCheck("invocation", True, f"InvokeEndpoint answered{where} in {took:.2f} s ({len(data):,} bytes).")


def _split_s3(uri: str) -> Tuple[str, str]:
    rest = uri[len("s3://"):] if uri.startswith("s3://") else uri
    bucket, _, key = rest.partition("/")
    return bucket, key


def _s3_text(aws: Aws, uri: str) -> Optional[str]:
    """The object's text, or None while it does not exist."""
    bucket, key = _split_s3(uri)
    try:
        return aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", "replace")
    except AwsError as exc:
        if exc.code in _NOT_FOUND:
            return None
        raise


def invoke_async(aws: Aws, view: endpoint_view.EndpointView, payload: Optional[bytes], content_type: str,
                 timeout: float, poll_seconds: float) -> Tuple[VerifyCheck, List[str]]:
    """Put the payload beside the config's S3OutputPath, invoke, and wait for output or failure."""
    notes: List[str] = []
    out_cfg = (view.config.get("AsyncInferenceConfig") or {}).get("OutputConfig") or {}
    output_path = out_cfg.get("S3OutputPath", "")
    bucket, prefix = _split_s3(output_path)
    if not bucket:
        return VerifyCheck("invocation", False, "The async config has no S3OutputPath to put the test input in."), notes
    request_id = f"byoc-verify-{uuid.uuid4().hex[:12]}"
    key = f"{prefix.rstrip('/')}/byoc-verify/{request_id}.input".lstrip("/")
    input_uri = f"s3://{bucket}/{key}"
    aws.s3.put_object(Bucket=bucket, Key=key, Body=DEFAULT_PAYLOAD if payload is None else payload,
                      ContentType=content_type)
    notes.append(f"Test input: {input_uri}")
    started_ms = int(time.time() * 1000)
    out = aws.client("sagemaker-runtime").invoke_endpoint_async(
        EndpointName=view.name, InputLocation=input_uri, ContentType=content_type, InferenceId=request_id)
    output, failure = out.get("OutputLocation"), out.get("FailureLocation")
    notes.append(f"Output: {output}" + (f", failure: {failure}" if failure else ""))
    if sum(v.current_instances or 0 for v in view.variants) == 0:
        notes.append("The endpoint has 0 instances: the request waits until autoscaling starts one (minutes).")
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    while True:
        result = _s3_text(aws, output) if output else None
        if result is not None:
            took = time.monotonic() - started
            return VerifyCheck("invocation", True, f"The async request succeeded in {took:.1f} s "
                                             f"({len(result.encode()):,} bytes at {output})."), notes
        error = _s3_text(aws, failure) if failure else None
        if error is not None:
            return VerifyCheck("invocation", False, f"The async request failed: {redaction.text(error.strip()[:300])}"), notes
        crashed = None if failure else _invocation_error_line(aws, view.name, started_ms)
        if crashed:
            return VerifyCheck("invocation", False, f"The container answered the async request with an error: {crashed}"), notes
        if time.monotonic() >= deadline:
            return VerifyCheck("invocation", False, f"No output or failure object after {timeout:.0f} s "
                                              f"(expected {output}); raise --timeout or run `byoc logs "
                                              f"{view.name} --follow`."), notes
        time.sleep(poll_seconds)


def _invocation_error_line(aws: Aws, endpoint: str, since_ms: int) -> Optional[str]:
    """A 5xx answer to POST /invocations logged since `since_ms` (SageMaker writes no failure
    object when the async config has no S3FailurePath)."""
    try:
        read = logs.read(aws, endpoint, start=since_ms, pattern='"POST /invocations"')
    except logs.LogGroupMissing:
        return None
    for e in read.events:
        if _INVOCATION_5XX.search(e.get("message", "")):
            return f"{e.get('logStreamName')} | {e['message'].strip()}"
    return None


def live_fleet_events(view: endpoint_view.EndpointView, events: List[dict]) -> List[dict]:
    """After a failed update SageMaker is back on the previous fleet; the failed fleet's instances
    stopped writing when it was torn down (LastModifiedTime), the serving ones go on (they log the
    verification's own request). Keep the streams that wrote after that moment."""
    if not (view.endpoint.get("FailureReason") and view.status == "InService"):
        return events
    cutoff = logs.epoch_ms(view.endpoint.get("LastModifiedTime"))
    if cutoff is None:
        return events
    alive = {e.get("logStreamName") for e in events if int(e.get("timestamp") or 0) > cutoff}
    return [e for e in events if e.get("logStreamName") in alive]


def invocation_error_lines(aws: Aws, endpoint: str, since_ms: int, limit: int = 12) -> List[KeyLine]:
    """Tracebacks and error lines the containers logged since the test invocation."""
    try:
        read = logs.read(aws, endpoint, start=since_ms)
    except (logs.LogGroupMissing, AuthError):
        return []
    return [k for k in key_lines(read.events, head=0, tail=0) if k.why in ("traceback", "error")][-limit:]


def check_logs(aws: Aws, view: endpoint_view.EndpointView, invocation_error: Optional[str] = None,
               ) -> Tuple[VerifyCheck, List[Finding], List[str]]:
    """No error signature in the logs since the deployment that made the current fleet."""
    since = logs.last_update_ms(view.endpoint, view.config)
    try:
        read = logs.read(aws, view.name, start=since)
    except logs.LogGroupMissing:
        return (VerifyCheck("logs", None, "The endpoint has no log group: its execution role may lack CloudWatch Logs "
                                    "permissions (logs:CreateLogStream, logs:PutLogEvents)."), [], [])
    except AuthError as exc:
        return VerifyCheck("logs", None, f"Logs not read: {exc.message}"), [], [exc.fix] if exc.fix else []
    events = live_fleet_events(view, read.events)
    if len(events) != len(read.events):
        read = replace(read, events=events, streams=[st for st in read.streams
                                                     if any(e.get("logStreamName") == st.name for e in events)])
    context = facts(view)
    if invocation_error:
        context["invocation_error"] = invocation_error
    findings = match(read.events, context=context)
    bad = [f for f in findings if f.severity in FAILING_SEVERITIES]
    notes = [f"Warning: {f.title}. {f.fix}" for f in findings if f.severity not in FAILING_SEVERITIES]
    what = f"{len(read.events):,} log lines of {len(read.streams)} stream(s) since the last deployment"
    if bad:
        titles = "; ".join(f"{f.title} ({f.evidence[0]})" for f in bad[:3])
        return VerifyCheck("logs", False, f"Error signatures in the {what}: {titles}."), findings, notes
    return VerifyCheck("logs", True, f"No error signature in the {what}."), findings, notes


def verify(aws: Aws, endpoint: str, image: Optional[str] = None, payload: Optional[bytes] = None,
           content_type: str = DEFAULT_CONTENT_TYPE, timeout: float = DEFAULT_TIMEOUT,
           view: Optional[endpoint_view.EndpointView] = None, poll_seconds: float = 2.0) -> Verification:
    """PASS when every check that ran passed and a real invocation succeeded."""
    expected = image_ref.parse(image) if image else None  # bad input fails before any AWS call
    logs.require_endpoint_name(endpoint)
    view = view or load_view(aws, endpoint)
    result = Verification(endpoint=endpoint, region=aws.region, checks=[check_status(view)])
    reason = view.endpoint.get("FailureReason")
    if reason and view.status == "InService":
        result.notes.append(f"The last update failed and the endpoint went back to its previous config: {reason}")
    if expected:
        check, notes = check_image(aws, view, expected)
        result.checks.append(check)
        result.notes.extend(notes)
    if view.status != "InService":
        result.checks.append(VerifyCheck("invocation", None, "Not invoked: the endpoint is not InService."))
        return result
    invoked_ms = int(time.time() * 1000)
    if view.is_async:
        check, notes = invoke_async(aws, view, payload, content_type, timeout, poll_seconds)
        result.notes.extend(notes)
        result.checks.append(check)
    else:
        names = [v.name for v in view.variants]
        checks = [invoke_realtime(aws, endpoint, payload, content_type, n) for n in names] if len(names) > 1 \
            else [invoke_realtime(aws, endpoint, payload, content_type)]
        result.checks.extend(checks)
        check = next((c for c in checks if c.ok is False), checks[-1])
    if check.ok is False:
        result.error_lines = invocation_error_lines(aws, endpoint, invoked_ms)
    check, findings, notes = check_logs(aws, view, None if check.ok else check.detail)
    result.checks.append(check)
    result.findings = findings
    result.notes.extend(notes)
    return result
