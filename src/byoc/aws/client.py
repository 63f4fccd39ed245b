"""The only place byoc talks to boto3.

`Aws` holds one boto3 session and hands out wrapped clients: every call goes through
`call`, which counts it, applies byoc's bounded backoff on throttling on top of botocore's
standard retry mode (not adaptive: its client-side rate limiter slows every operation of a client
when one is throttled, while SageMaker limits each operation on its own), and translates credential and permission errors into `AuthError`
(exit code 4) naming the denied action. The endpoint URL comes from boto3's own
configuration (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>, profiles), so the same code
talks to AWS or to any server speaking its protocols.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from collections import Counter
from typing import Any, Callable, Dict, Iterator, Optional

from byoc.aws import pacing, partitions
from byoc.errors import AuthError, AwsError, BadInput
from byoc.version import __version__

# Every region code: <area>-<place...>-<n> (us-east-1, us-gov-west-1, us-isob-east-1, eusc-de-east-1).
REGION_SHAPE = re.compile(r"^[a-z]{2,4}(-[a-z]+)+-\d+$")

# IAM action prefixes that differ from the client's signing name.
_IAM_PREFIX = {"monitoring": "cloudwatch", "tagging": "tag"}

ACCESS_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedAccess",
    "NotAuthorized",
    "AuthorizationError",
    "403",  # S3 HEAD requests carry no error body: botocore reports the status code
}
BAD_CREDENTIALS = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "RequestExpired",
    "InvalidToken",
}
THROTTLED = {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}

PACED_ATTEMPTS = 8  # attempts of a throttled request that wait for the pacer instead of botocore's backoff
# Bounded backoff applied after botocore's own retries gave up on throttling.
THROTTLE_EXTRA_TRIES = 6
THROTTLE_MAX_SLEEP = 8.0

# "User: <arn> is not authorized to perform: <action> [on resource: <arn>] because no identity-based
# policy allows ..." / "... with an explicit deny in <policy type>" (IAM User Guide, "Troubleshoot
# access denied error messages"). S3 quotes the resource; SNS writes its prefix as "SNS:".
_DENIED_RE = re.compile(
    r"not authorized to perform:? (?P<action>[\w\-]+:[\w\-*]+)"
    r"(?: on resource:? \"?(?P<resource>arn:[^\s\"]+|\*)\"?)?"
)
_EXPLICIT_RE = re.compile(r"with an explicit deny in (?P<where>(?:an? )?[\w\- ]+?policy)", re.IGNORECASE)

# Operations whose IAM action has another name (Service Authorization Reference), used when the
# denial names no action (S3's bare "Access Denied", HEAD requests).
_OPERATION_ACTION = {
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "CreateMultipartUpload"): "s3:PutObject",
    ("s3", "UploadPart"): "s3:PutObject",
    ("s3", "CompleteMultipartUpload"): "s3:PutObject",
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
}

# iam:PassRole is granted for one service ("Granting a user permissions to pass a role to an AWS service").
_PASSROLE_CONDITION = {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def policy_statement(action: str, resource: str = "*", condition: Optional[dict] = None) -> str:
    """The one-line IAM statement that grants `action` on `resource`."""
    statement: Dict[str, Any] = {"Effect": "Allow", "Action": action, "Resource": resource or "*"}
    if condition:
        statement["Condition"] = condition
    return json.dumps(statement)


def _denied(message: str, iam_prefix: str, operation: str) -> AuthError:
    m = _DENIED_RE.search(message)
    if m:
        prefix, _, name = m.group("action").partition(":")
        action = f"{prefix.lower()}:{name}"
    else:
        action = _OPERATION_ACTION.get((iam_prefix, operation), f"{iam_prefix}:{operation}")
    resource = (m.group("resource") or "") if m else ""
    where = f" on {resource}" if resource else ""
    explicit = _EXPLICIT_RE.search(message)
    if explicit:
        return AuthError(
            f"Permission denied: {action}{where} is refused by an explicit Deny in {explicit.group('where')}.",
            "Adding an Allow does not help: ask your administrator to narrow that Deny statement "
            "(identity policy, permissions boundary or organization SCP).",
            action=action, resource=resource,
        )
    from byoc.aws.permissions import feature_of

    feature = feature_of(action)
    condition = _PASSROLE_CONDITION if action == "iam:PassRole" else None
    hint = f"byoc policy --features {feature}" if feature and feature != "core" else "byoc policy"
    return AuthError(
        f"Permission denied: {action}{where}.",
        f"Add this statement to your IAM policy: {policy_statement(action, resource, condition)} "
        f"(or attach the output of `{hint}`).",
        action=action, resource=resource,
    )


def translate(exc: Exception, service: str, operation: str, iam_prefix: str) -> Exception:
    """Map a botocore exception to a byoc error; other exceptions are returned unchanged."""
    from botocore import exceptions as bx

    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return AuthError(
            "No AWS credentials found.",
            "Run `aws configure`, set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or pass --profile.",
        )
    sso_errors = tuple(getattr(bx, name) for name in ("SSOTokenLoadError", "UnauthorizedSSOTokenError",
                                                       "TokenRetrievalError") if hasattr(bx, name))
    if sso_errors and isinstance(exc, sso_errors):
        return AuthError("The AWS SSO session has expired or was never started.",
                         "Run `aws sso login` (with --profile if you use one) and try again.")
    if isinstance(exc, bx.CredentialRetrievalError):
        return AuthError(f"Could not load AWS credentials: {exc}.",
                         "Check the credential_process or role settings of your profile (`aws configure list`).")
    if isinstance(exc, bx.ProfileNotFound):
        return AuthError(f"{exc}.", "List profiles with `aws configure list-profiles`.")
    if isinstance(exc, bx.NoRegionError):
        return AuthError("No AWS region configured.", "Pass --region or set AWS_REGION (e.g. us-east-1).")
    if isinstance(exc, bx.EndpointConnectionError):
        return AwsError("EndpointConnectionError", str(exc), operation)
    if not isinstance(exc, bx.ClientError):
        return exc
    err = exc.response.get("Error", {})
    code = str(err.get("Code", ""))
    message = str(err.get("Message", ""))
    if code in ACCESS_DENIED:
        return _denied(message, iam_prefix, operation)
    if code in BAD_CREDENTIALS:
        expired = "expired" in code.lower() or "expired" in message.lower()
        return AuthError(
            f"AWS rejected the credentials ({code}): {message}",
            "Refresh them (`aws sso login`, a new session token) and try again." if expired else
            "Check the access key id and secret (`aws configure list`): the key may be wrong, deleted or inactive.",
        )
    return AwsError(code, message, operation)


class _Client:
    """A boto3 client whose methods go through `Aws.call`."""

    def __init__(self, aws: Aws, service: str) -> None:
        self._aws = aws
        self._service = service
        self._raw: Any = None

    @property
    def raw(self) -> Any:
        """The botocore client itself (untyped: botocore ships no annotations)."""
        if self._raw is None:
            self._raw = self._aws._make_client(self._service)
        return self._raw

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)

        def method(**kwargs: Any) -> Any:
            return self._aws.call(self, name, kwargs)

        method.__name__ = name
        return method

    def paginate(self, name: str, **kwargs: Any) -> Iterator[dict]:
        """Yield every page of a paginated operation, each page through `call`."""
        paginator = self.raw.get_paginator(name)
        config = paginator._pagination_cfg  # botocore's paginators-1.json entry
        in_token = config["input_token"]
        out_token = config["output_token"]
        token = None
        while True:
            params = dict(kwargs)
            if token:
                params[in_token] = token
            page = self._aws.call(self, name, params)
            yield page
            token = page.get(out_token)
            if not token:
                return


class Aws:
    """One boto3 session for one region; clients are created on first use and cached."""

    def __init__(self, region: str | None = None, profile: str | None = None, endpoint_url: str | None = None,
                 *, quick: bool = False) -> None:
        """`quick`: one attempt per call, 1 s to connect, 2 s to read, no backoff (shell completion)."""
        import warnings

        # boto3's notice about ending Python 3.9 support is for developers, not for a CLI's users on CloudShell.
        warnings.filterwarnings("ignore", message="Boto3 will no longer support Python")
        import boto3
        from botocore import exceptions as bx

        try:
            self._session = boto3.session.Session(profile_name=profile, region_name=region)
        except bx.ProfileNotFound as exc:
            raise translate(exc, "sts", "Session", "sts") from exc
        # AWS_REGION is what CloudShell and the AWS CLI v2 set; older botocore reads only AWS_DEFAULT_REGION.
        found: Optional[str] = self._session.region_name or os.environ.get("AWS_REGION")
        if found and not self._session.region_name:
            self._session = boto3.session.Session(profile_name=profile, region_name=found)
        if not found:
            raise translate(bx.NoRegionError(), "sts", "Session", "sts")
        self.region: str = found
        if not REGION_SHAPE.match(self.region):
            raise BadInput(f"'{self.region}' is not an AWS region name.",
                           "Use a region code such as us-east-1, eu-west-1 or cn-north-1 (`aws account list-regions`).")
        self.profile = profile
        self.partition = partitions.for_region(self.region)
        self.endpoint_url = endpoint_url
        self.quick = quick
        self.calls: Counter = Counter()
        self.throttled = 0  # calls byoc's own backoff retried after botocore gave up on throttling
        self.retried = 0  # attempts botocore's retry mode made again (throttling, 5xx) before succeeding
        self._lock = threading.Lock()
        self._clients: dict = {}
        self._memo: dict = {}  # key -> [lock, value]; see `memo`
        self.pacer = pacing.Pacer()

    def _make_client(self, service: str) -> Any:
        from botocore.config import Config

        if self.quick:
            config = Config(retries={"mode": "standard", "total_max_attempts": 1},
                            user_agent_extra=f"byoc/{__version__}", connect_timeout=1, read_timeout=2)
        else:
            config = Config(
                retries={"mode": "standard", "max_attempts": 8},
                user_agent_extra=f"byoc/{__version__}",
                connect_timeout=10,
                read_timeout=70,
                max_pool_connections=32,
            )
        kwargs = {"config": config}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        with self._lock:
            client = self._session.client(service, region_name=self.region, **kwargs)
        if not self.quick:
            # Every attempt (botocore's retries too) waits for its operation's turn; every throttled
            # answer slows that operation down (aws/pacing.py).
            client.meta.events.register("before-send", self._before_send)
            client.meta.events.register_first("needs-retry", self._after_attempt)
        return client

    def _before_send(self, event_name: str, **_: Any) -> None:
        self.pacer.before_send(event_name.split(".", 1)[1])  # before-send.<service>.<Operation>

    def _after_attempt(self, event_name: str, response: Any = None, attempts: int = 1, **_: Any) -> Optional[float]:
        """Tell the pacer how AWS answered. A throttled attempt is retried without botocore's random
        backoff (up to PACED_ATTEMPTS): its turn comes from the pacer, like every other request of
        its operation. Anything else is botocore's to decide (None)."""
        if not (isinstance(response, tuple) and len(response) > 1):
            return None  # no answer (a connection error)
        operation = event_name.split(".", 1)[1]  # needs-retry.<service>.<Operation>
        if str((response[1].get("Error") or {}).get("Code", "")) not in THROTTLED:
            self.pacer.accepted(operation)
            return None
        self.pacer.throttled(operation)
        return 0.0 if attempts < PACED_ATTEMPTS else None

    def client(self, service: str) -> _Client:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = _Client(self, service)
            return self._clients[service]

    def __getattr__(self, name: str) -> _Client:
        # aws.sagemaker, aws.ecr, aws.logs ... ; names with '-' via client("sagemaker-runtime").
        if name.startswith("_"):
            raise AttributeError(name)
        return self.client(name.replace("_", "-"))

    def call(self, client: _Client, method: str, params: dict) -> Any:
        from botocore import exceptions as bx

        raw = client.raw
        operation = raw.meta.method_to_api_mapping.get(method, method)
        signing = raw.meta.service_model.signing_name
        iam_prefix = _IAM_PREFIX.get(signing, signing)
        extra_tries = 0 if self.quick else THROTTLE_EXTRA_TRIES
        for attempt in range(extra_tries + 1):
            with self._lock:
                self.calls[f"{iam_prefix}:{operation}"] += 1
            try:
                response = getattr(raw, method)(**params)
                retries = (response.get("ResponseMetadata") or {}).get("RetryAttempts", 0) if isinstance(response, dict) else 0
                if retries:
                    with self._lock:
                        self.retried += retries
                return response
            except bx.ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in THROTTLED and attempt < extra_tries:
                    with self._lock:
                        self.throttled += 1
                    time.sleep(min(THROTTLE_MAX_SLEEP, 0.25 * 2**attempt) * (0.5 + random.random() / 2))
                    continue
                raise translate(exc, client._service, operation, iam_prefix) from exc
            except bx.BotoCoreError as exc:
                raise translate(exc, client._service, operation, iam_prefix) from exc
        raise AssertionError("unreachable")

    def in_region(self, region: str) -> Aws:
        """This session (credentials, endpoint URL) in another region; its clients are its own."""
        other = Aws.__new__(Aws)
        other.__dict__.update(self.__dict__)
        other.region, other.partition = region, partitions.for_region(region)
        other.calls, other._clients, other._memo = Counter(), {}, {}  # quotas and images are per region
        other.pacer = pacing.Pacer()  # so are AWS's rate limits
        return other

    def regions(self, service: str = "sagemaker") -> list:
        """The regions of this session's partition that offer `service` (botocore's endpoint data)."""
        return sorted(self._session.get_available_regions(service, partition_name=self.partition.name))

    def memo(self, key: str, compute: Callable[[], Any], max_age: Optional[float] = None) -> Any:
        """`compute()` once per key for this Aws (one run, or one fleet of updates), or again once
        the value is `max_age` seconds old: threads asking for the same key wait for the first one
        instead of repeating its requests. An exception is not kept: the next caller tries again."""
        with self._lock:
            slot = self._memo.setdefault(key, [threading.Lock(), None, None])
        with slot[0]:
            if slot[2] is None or (max_age is not None and time.monotonic() - slot[2] > max_age):
                slot[1], slot[2] = compute(), time.monotonic()
            return slot[1]

    def identity(self) -> dict:
        """STS GetCallerIdentity, once per run: Account, Arn, UserId."""
        return self.memo("sts:GetCallerIdentity", self.sts.get_caller_identity)

    @property
    def account(self) -> str:
        return self.identity()["Account"]

    @property
    def caller_arn(self) -> str:
        return self.identity()["Arn"]


def unless_gone(call: Callable[..., Any], **params: Any) -> Optional[dict]:
    """`call(**params)`'s answer; None when the resource does not exist (any more)."""
    try:
        return call(**params)
    except AwsError as exc:
        if not exc.not_found:
            raise
        return None
