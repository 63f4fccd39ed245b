"""The sandbox server: one WSGI app routing by the request's SigV4 signing service.

- `X-Amz-Target: SageMaker.*`           -> our SageMaker control plane (validated against botocore's model)
- `/endpoints/<name>/(async-)invocations` signed for sagemaker -> our SageMaker Runtime
- `/_sandbox/...`                       -> control: faults, reset, quotas, health (no AWS client uses it)
- anything else                         -> moto, in-process (ECR, Logs, CloudWatch, STS, IAM, S3, SNS, ...)

moto keeps its state per process, so run one Sandbox per process at a time.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import io
import json
import sys
import threading
import time
import traceback
from functools import cache
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, unquote

from byoc.sandbox import peers, protocol, validation
from byoc.sandbox.clock import Clock
from byoc.sandbox.faults import Faults
from byoc.sandbox.protocol import ServiceError

ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"


@cache
def _service_model(name: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(name)


class SandboxApp:
    """The WSGI application; all state lives here."""

    def __init__(self, time_scale: float = 1.0, enforce_iam: bool = False) -> None:
        from byoc.sandbox.sagemaker.control import SageMaker
        from byoc.sandbox.sagemaker.runtime import Runtime

        peers.patch_moto()
        self.lock = threading.RLock()
        self.clock = Clock(self.lock, time_scale)
        self.sagemaker = SageMaker(self.clock, self.lock)
        self.runtime = Runtime(self.sagemaker)
        self.faults = Faults()
        self.enforce_iam = enforce_iam
        self.moto = peers.moto_app()
        self.requests = 0

    # -- entry -----------------------------------------------------------------------------------
    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Any:
        self.requests += 1
        path = environ.get("PATH_INFO", "")
        try:
            if path.startswith("/_sandbox/"):
                return self.control(environ, start_response)
            who = protocol.caller(environ)
            service = who.service if who else ""
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            if target.startswith("SageMaker."):
                return self.sagemaker_api(environ, start_response, who, target.split(".", 1)[1])
            if service == "sagemaker" and path.startswith("/endpoints/"):
                return self.runtime_api(environ, start_response, who)
            if target.startswith("ServiceQuotasV20190624.") and target.split(".", 1)[1] in (
                    "GetServiceQuota", "ListServiceQuotas"):
                response = self.sagemaker_quotas(environ, start_response, who, target.split(".", 1)[1])
                if response is not None:
                    return response
            if target == "ResourceGroupsTaggingAPI_20170126.GetResources":
                response = self.tagging_resources(environ, start_response, who)
                if response is not None:
                    return response
            if target.endswith(".GetDownloadUrlForLayer") and service == "ecr":
                return self.ecr_layer_url(environ, start_response, who)
            if service == "sagemaker":
                return protocol.error_response(start_response, ServiceError(
                    "UnknownOperationException", "Missing X-Amz-Target header for a SageMaker API call."))
            return self.other(environ, start_response, who)
        except ServiceError as err:
            return protocol.error_for(environ, start_response, err)
        except Exception:  # never a traceback in a response
            traceback.print_exc(file=sys.stderr)
            return protocol.error_for(environ, start_response, ServiceError(
                "InternalFailure", "The sandbox failed to process the request.", 500))

    def _gate(self, service: str, operation: str, params: dict, who: Any) -> None:
        """Fault injection, then (with --enforce-iam) the caller's identity policies."""
        latency, err = self.faults.check(service, operation)
        if latency:
            time.sleep(latency)
        if err:
            raise ServiceError(err[0], err[1], err[2])
        if self.enforce_iam and who is not None:
            from byoc.sandbox import iam

            denied = iam.authorize(service, operation, params, who.access_key, who.region, ACCOUNT)
            if denied:
                raise ServiceError(denied["code"], denied["message"], denied.get("status", 400))

    # -- SageMaker ---------------------------------------------------------------------------------
    def sagemaker_api(self, environ: dict, start_response: Callable[..., Any], who: Any, operation: str) -> Any:
        if environ.get("REQUEST_METHOD") != "POST":
            raise ServiceError("UnknownOperationException", "SageMaker API calls must use POST.")
        ctype = environ.get("CONTENT_TYPE", "")
        if not ctype.startswith("application/x-amz-json-1."):
            raise ServiceError("SerializationException",
                               f"Unsupported content type '{ctype}'; use application/x-amz-json-1.1.")
        model = _service_model("sagemaker")
        if operation not in model.operation_names:
            raise ServiceError("UnknownOperationException", f"Unknown operation {operation}.")
        body = protocol.read_body(environ)
        params = protocol.json_params(body)
        if not isinstance(params, dict):
            raise ServiceError("SerializationException", "The request body must be a JSON object.")
        shape = model.operation_model(operation).input_shape
        if shape is not None:
            errors = validation.validate(shape, params)
            if errors:
                raise protocol.validation(validation.message(errors))
        region = who.region if who else DEFAULT_REGION
        self._gate("sagemaker", operation, params, who)
        result = self.sagemaker.handle(operation, params, ACCOUNT, region)
        return protocol.json_response(start_response, result)

    def runtime_api(self, environ: dict, start_response: Callable[..., Any], who: Any) -> Any:
        parts = environ.get("PATH_INFO", "").strip("/").split("/")
        if len(parts) != 3 or parts[2] not in ("invocations", "async-invocations"):
            raise ServiceError("UnknownOperationException", "Unknown SageMaker Runtime path.")
        name = unquote(parts[1])
        operation = "InvokeEndpoint" if parts[2] == "invocations" else "InvokeEndpointAsync"
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        body = protocol.read_body(environ)
        self._gate("sagemaker", operation, {"EndpointName": name}, who)
        if operation == "InvokeEndpoint":
            status, data, hdrs = self.runtime.invoke(ACCOUNT, who.region, name, body, headers)
            return protocol.raw_response(start_response, data, status, "application/json", hdrs)
        status, data, hdrs = self.runtime.invoke_async(ACCOUNT, who.region, name, headers)
        return protocol.raw_response(start_response, data, status, "application/json", hdrs)

    def sagemaker_quotas(self, environ: dict, start_response: Callable[..., Any], who: Any, operation: str) -> Any:
        """SageMaker's quotas are ours; any other service's go on to moto (None)."""
        from byoc.sandbox import servicequotas

        body = protocol.read_body(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        params = protocol.json_params(body)
        if params.get("ServiceCode") != "sagemaker":
            return None
        self._gate("servicequotas", operation, params, who)
        region = who.region if who else DEFAULT_REGION
        return protocol.json_response(start_response, servicequotas.handle(self.sagemaker, operation, params,
                                                                           ACCOUNT, region))

    def tagging_resources(self, environ: dict, start_response: Callable[..., Any], who: Any) -> Any:
        """GetResources over SageMaker types is answered from our SageMaker's tags; others go to moto (None)."""
        from byoc.sandbox import tagging

        body = protocol.read_body(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        params = protocol.json_params(body)
        if not isinstance(params, dict) or not tagging.handles(params):
            return None
        self._gate("tagging", "GetResources", params, who)
        region = who.region if who else DEFAULT_REGION
        with self.lock:
            result = tagging.get_resources(self.sagemaker.region(ACCOUNT, region), params)
        return protocol.json_response(start_response, result)

    def ecr_layer_url(self, environ: dict, start_response: Callable[..., Any], who: Any) -> Any:
        from byoc.sandbox import ecr_layers

        params = protocol.json_params(protocol.read_body(environ))
        self._gate("ecr", "GetDownloadUrlForLayer", params, who)
        base = f"http://{environ.get('HTTP_HOST', 'localhost')}"
        return protocol.json_response(start_response, ecr_layers.download_url(base, ACCOUNT, who.region, params))

    # -- moto's services ---------------------------------------------------------------------------------
    def other(self, environ: dict, start_response: Callable[..., Any], who: Any) -> Any:
        service = who.service if who else "*"
        operation, params = self._describe_call(environ, service)
        self._gate(service, operation, params, who)
        if service == "ecr" and who is not None:
            from byoc.sandbox import ecr_cross_account

            with self.lock:
                registry = ecr_cross_account.owner(operation, params, who.access_key, who.region)
            if registry:
                environ["HTTP_X_MOTO_ACCOUNT_ID"] = registry
        if service == "iam" and operation == "SimulatePrincipalPolicy":
            # moto lacks it; answered by the evaluator that --enforce-iam uses (IAM API Reference).
            from byoc.sandbox import iam

            status, xml = iam.simulate_principal_policy_xml(params, who.region, ACCOUNT)
            return protocol.raw_response(start_response, xml, status, "text/xml")
        from botocore.model import OperationNotFoundError

        try:
            return self.moto(environ, start_response)
        except (NotImplementedError, OperationNotFoundError):
            # AWS answers an operation it does not know with UnknownOperationException (HTTP 400).
            raise ServiceError("UnknownOperationException",
                               f"The sandbox does not implement {service}:{operation}.") from None

    @staticmethod
    def _describe_call(environ: dict, service: str) -> tuple:
        """(operation, params) of a call to one of moto's services, for faults and IAM."""
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        body = protocol.read_body(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        if target:
            params = protocol.json_params(body)
            return target.split(".", 1)[-1], params if isinstance(params, dict) else {}
        if "/operation/" in path:  # Smithy RPC v2 (CBOR) services put the operation in the path
            return path.rsplit("/", 1)[-1], {}
        query = parse_qs(environ.get("QUERY_STRING", ""))
        form = parse_qs(body.decode("utf-8", "replace")) if method == "POST" and b"Action=" in body else {}
        fields = {k: v[0] for k, v in {**query, **form}.items()}
        if "Action" in fields:
            return fields["Action"], fields
        if service == "s3":
            bucket, _, key = path.lstrip("/").partition("/")
            listing = "ListObjectsV2" if "list-type=2" in environ.get("QUERY_STRING", "") else "ListObjects"
            op = {"GET": "GetObject" if key else (listing if bucket else "ListBuckets"), "PUT": "PutObject" if key else "CreateBucket",
                  "HEAD": "HeadObject" if key else "HeadBucket", "DELETE": "DeleteObject" if key else "DeleteBucket",
                  "POST": "PostObject"}.get(method, "*")
            return op, {"Bucket": unquote(bucket), "Key": unquote(key)}
        return "*", {}

    # -- control -----------------------------------------------------------------------------------
    def control(self, environ: dict, start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        body = protocol.read_body(environ)
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            raise ServiceError("SerializationException", "Control requests take a JSON body.") from None
        if path.startswith("/_sandbox/blobs/") and method == "GET":
            from byoc.sandbox import ecr_layers

            return protocol.raw_response(start_response, ecr_layers.blob(ACCOUNT, path), 200,
                                         "application/vnd.oci.image.config.v1+json")
        if path == "/_sandbox/health":
            return protocol.json_response(start_response, {"ok": True, "time_scale": self.clock.time_scale,
                                                           "requests": self.requests}, content_type="application/json")
        if path == "/_sandbox/reset" and method == "POST":
            self.reset()
            return protocol.json_response(start_response, {"reset": True}, content_type="application/json")
        if path == "/_sandbox/faults":
            if method == "DELETE":
                self.faults.clear()
            elif method == "POST":
                specs = data if isinstance(data, list) else [data]
                try:
                    for spec in specs:
                        self.faults.add(spec)
                except (TypeError, ValueError) as exc:
                    raise ServiceError("ValidationException", str(exc)) from None
            return protocol.json_response(start_response, self.faults.snapshot(), content_type="application/json")
        if path == "/_sandbox/quotas" and method == "POST":
            try:
                region, itype = data.get("region", DEFAULT_REGION), data["instance_type"]
                offered = bool(data.get("offered", True))
                value = int(data["value"]) if offered else None
            except (KeyError, TypeError, ValueError):
                raise ServiceError("ValidationException", 'Quota needs {"instance_type": ..., "value": N} '
                                   '(or "offered": false).') from None
            with self.lock:
                reg = self.sagemaker.region(ACCOUNT, region)
                if offered:
                    reg.quotas[itype] = value
                    reg.unoffered.discard(itype)
                else:
                    reg.quotas.pop(itype, None)
                    reg.unoffered.add(itype)
            return protocol.json_response(start_response, {"region": region, "instance_type": itype, "value": value,
                                                           "offered": offered}, content_type="application/json")
        raise ServiceError("UnknownOperationException", f"Unknown sandbox control path {method} {path}.", 404)

    def reset(self) -> None:
        with self.lock:
            self.clock.clear()
            self.sagemaker.reset()
            self.faults.clear()
            peers.reset()


class Sandbox:
    """Start, use and stop the sandbox in-process: `with Sandbox(time_scale=0.05) as sb: ...`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, time_scale: float = 1.0, enforce_iam: bool = False) -> None:
        self.host = host
        self.port = port
        self.time_scale = time_scale
        self.enforce_iam = enforce_iam
        self.app: Optional[SandboxApp] = None
        self._server: Any = None  # werkzeug's server once started
        self._thread: Optional[threading.Thread] = None

    def start(self) -> Sandbox:
        from werkzeug.serving import WSGIRequestHandler, make_server

        class QuietHandler(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        self.app = SandboxApp(self.time_scale, self.enforce_iam)
        _service_model("sagemaker")  # parse the SageMaker model now, not on the first request
        # moto and botocore hold a few hundred thousand long-lived objects; leaving them out of the
        # garbage collector's full passes removes pauses of ~0.3 s from request handling.
        gc.freeze()
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                self._server = make_server(self.host, self.port, self.app, threaded=True,
                                           request_handler=QuietHandler)
        except SystemExit:  # werkzeug prints a hint and exits when the address is taken
            raise OSError(errno.EADDRINUSE, "Address already in use") from None
        self._server.daemon_threads = True
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox-http", daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self, region: str = DEFAULT_REGION) -> dict:
        """Environment that points boto3 and the AWS CLI at this sandbox (dummy credentials)."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
        }

    def reset(self) -> None:
        if self.app is not None:
            self.app.reset()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self.app is not None:
            self.app.clock.stop()
            self.app.reset()

    def __enter__(self) -> Sandbox:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
