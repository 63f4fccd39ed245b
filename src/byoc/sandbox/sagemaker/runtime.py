"""SageMaker Runtime: InvokeEndpoint and InvokeEndpointAsync (REST JSON, signing name sagemaker).

- InvokeEndpoint answers only while a fleet serves; the body names the serving image digest,
  variant and instance so a client can tell the old fleet from the new one. A container whose
  /invocations fails gives ModelError (424) "Received server error (500) from primary ..."
  (API_runtime_InvokeEndpoint, Errors).
- InvokeEndpointAsync queues the request and writes the result under the config's
  S3OutputPath (errors under S3FailurePath), then notifies SuccessTopic/ErrorTopic
  ("Check prediction results", async-inference-check-predictions.html), with the response when
  IncludeInferenceResponseIn asks for it; a request queued longer than its RequestTTLSeconds
  expires and fails the same way. An endpoint scaled to
  0 instances is scaled back to 1 when a backlog exists and the variant is a scalable target
  ("Autoscale an asynchronous endpoint", async-inference-autoscale.html).
"""

from __future__ import annotations

import datetime
import json
import random
import uuid
from typing import Any, Optional

from byoc.sandbox import peers
from byoc.sandbox.protocol import ServiceError
from byoc.sandbox.sagemaker import containers, deploy, notifications
from byoc.sandbox.sagemaker.resources import Endpoint, Region

ASYNC_PROCESS = 20  # simulated seconds per queued request
ASYNC_RETRY = 30
# X-Amzn-SageMaker-RequestTTLSeconds: "Maximum age in seconds a request can be in the queue before it is marked as
# expired. The default is 6 hours, or 21,600 seconds." Minimum 60, maximum 21600 (botocore's sagemaker-runtime model,
# RequestTTLSecondsHeader; API_runtime_InvokeEndpointAsync).
REQUEST_TTL_DEFAULT, REQUEST_TTL_MIN, REQUEST_TTL_MAX = 21600, 60, 21600
RESPONSE_IN_NOTIFICATION_MAX = 128 * 1024  # IncludeInferenceResponseIn: only responses up to 128 KB


class Runtime:
    def __init__(self, sagemaker: Any) -> None:
        self.sm = sagemaker

    def _not_found(self, reg: Region, name: str) -> ServiceError:
        # aws/amazon-sagemaker-examples issues #293 and #559 (ValidationError "Endpoint ... of account ... not found.").
        return ServiceError("ValidationError", f"Endpoint {name} of account {reg.account} not found.", 400)

    def _pick(self, reg: Region, name: str, target_variant: Optional[str]) -> Any:
        ep = reg.endpoints.get(name)
        if ep is None or ep.live is None or ep.status in ("Deleting", "Failed"):
            raise self._not_found(reg, name)
        fleet = ep.live
        if ep.pending is not None and ep.traffic_to_pending > 0 and random.random() < ep.traffic_to_pending:
            fleet = ep.pending
        variants = list(fleet.variants.values())
        if target_variant:
            variants = [v for v in variants if v.name == target_variant]
            if not variants:
                raise ServiceError("ValidationError", f"Variant {target_variant} not found for endpoint {name}.", 400)
        weights = [max(v.weight, 0.0) for v in variants]
        variant = random.choices(variants, weights=weights)[0] if sum(weights) > 0 else variants[0]
        return ep, fleet, variant

    def invoke(self, account: str, region: str, name: str, body: bytes, headers: dict) -> tuple:
        """(status, body bytes, response headers) of one InvokeEndpoint call."""
        with self.sm.lock:
            reg = self.sm.region(account, region)
            ep, fleet, variant = self._pick(reg, name, headers.get("x-amzn-sagemaker-target-variant"))
            serving = variant.serving()
            if not serving:
                raise ServiceError("ModelNotReadyException",
                                   f"Model for endpoint {name} variant {variant.name} is not ready.", 429)
            inst = random.choice(serving)
            if inst.invoke_error:
                peers.put_logs(account, region, deploy.log_group(name), inst.stream, containers.invocation_error_lines())
                url = (f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
                       f"#logEventViewer:group=/aws/sagemaker/Endpoints/{name}")
                raise ServiceError(
                    "ModelError",
                    'Received server error (500) from primary with message "Internal Server Error". '
                    f"See {url} in account {account} for more information.", 424)
            peers.put_logs(account, region, deploy.log_group(name), inst.stream,
                           ['INFO:     169.254.178.2:41230 - "POST /invocations HTTP/1.1" 200 OK'])
            answer = {
                "endpoint": name, "variant": variant.name, "instance": inst.id, "image": variant.image,
                "digest": variant.resolved.split("@", 1)[1] if "@" in variant.resolved else None,
                "config": fleet.config, "model": variant.model, "input_bytes": len(body),
            }
        data = json.dumps(answer).encode()
        return 200, data, [("x-Amzn-Invoked-Production-Variant", variant.name)]

    def invoke_async(self, account: str, region: str, name: str, headers: dict) -> tuple:
        input_location = headers.get("x-amzn-sagemaker-inputlocation")
        if not input_location:
            raise ServiceError("ValidationError", "InputLocation is required.", 400)
        ttl = _request_ttl(headers.get("x-amzn-sagemaker-requestttlseconds"))
        with self.sm.lock:
            reg = self.sm.region(account, region)
            ep, _, variant = self._pick(reg, name, None)
            cfg = reg.configs.get(ep.live.config)
            async_cfg = (cfg.spec.get("AsyncInferenceConfig") if cfg else None) or {}
            if not async_cfg:
                raise ServiceError("ValidationError",
                                   f"Endpoint {name} is not configured for asynchronous inference.", 400)
            out_cfg = async_cfg.get("OutputConfig") or {}
            inference_id = headers.get("x-amzn-sagemaker-inference-id") or str(uuid.uuid4())
            output = f"{out_cfg.get('S3OutputPath', '').rstrip('/')}/{inference_id}.out"
            failure = (f"{out_cfg['S3FailurePath'].rstrip('/')}/{inference_id}-error.out"
                       if out_cfg.get("S3FailurePath") else None)
            request = {"id": inference_id, "input": input_location, "output": output, "failure": failure,
                       "content_type": headers.get("x-amzn-sagemaker-content-type", "application/json"),
                       "received": _now(), "ttl": ttl, "waited": 0.0, "async": async_cfg}
            self.sm.clock.after(ASYNC_PROCESS, lambda: self._process(reg, ep, request, out_cfg))
        hdrs = [("X-Amzn-SageMaker-OutputLocation", output)]
        if failure:
            hdrs.append(("X-Amzn-SageMaker-FailureLocation", failure))
        return 202, json.dumps({"InferenceId": inference_id}).encode(), hdrs

    def _process(self, reg: Region, ep: Endpoint, request: dict, out_cfg: dict) -> None:
        if reg.endpoints.get(ep.name) is not ep or ep.live is None:
            return
        variant = next(iter(ep.live.variants.values()))
        serving = variant.serving()
        if not serving:
            target = peers.scalable_target(reg.account, reg.region, ep.name, variant.name)
            if variant.desired == 0 and target and (target.get("max") or 0) >= 1:
                self.sm.deployer.resize(reg, ep, variant.name, 1, ep.generation)
            request["waited"] += ASYNC_RETRY
            if request["waited"] + ASYNC_PROCESS > request["ttl"]:
                # A request still queued after its TTL is marked as expired and fails like any other
                # (API_runtime_InvokeEndpointAsync, RequestTTLSeconds); the reason's wording is the sandbox's.
                return self._fail(reg, ep, request, out_cfg,
                                  f"Request expired: it waited in the queue longer than its TTL of {request['ttl']} "
                                  "seconds.")
            self.sm.clock.after(ASYNC_RETRY, lambda: self._process(reg, ep, request, out_cfg))
            return
        inst = random.choice(serving)
        payload = peers.s3_get(reg.account, reg.region, request["input"])
        notify = (out_cfg.get("NotificationConfig") or {})
        if payload is None or inst.invoke_error:
            if inst.invoke_error:
                peers.put_logs(reg.account, reg.region, deploy.log_group(ep.name), inst.stream,
                               containers.invocation_error_lines())
            reason = ("Received server error (500) from primary with message \"Internal Server Error\"."
                      if payload is not None else f"Failed to download input from {request['input']}.")
            return self._fail(reg, ep, request, out_cfg, reason)
        result = {"endpoint": ep.name, "variant": variant.name, "instance": inst.id, "image": variant.image,
                  "digest": variant.resolved.split("@", 1)[1] if "@" in variant.resolved else None,
                  "inference_id": request["id"], "input_bytes": len(payload)}
        body = json.dumps(result).encode()
        peers.s3_put(reg.account, reg.region, request["output"], body)
        peers.put_logs(reg.account, reg.region, deploy.log_group(ep.name), inst.stream,
                       ['INFO:     169.254.178.2:41232 - "POST /invocations HTTP/1.1" 200 OK'])
        if notify.get("SuccessTopic"):
            peers.sns_publish(reg.account, reg.region, notify["SuccessTopic"],
                              _event(reg, ep, request, "Completed", response=body))

    def _fail(self, reg: Region, ep: Endpoint, request: dict, out_cfg: dict, reason: str) -> None:
        """Write the error to the request's failure object and publish `Failed` to the ErrorTopic."""
        if request["failure"]:
            peers.s3_put(reg.account, reg.region, request["failure"], reason.encode())
        topic = (out_cfg.get("NotificationConfig") or {}).get("ErrorTopic")
        if topic:
            peers.sns_publish(reg.account, reg.region, topic,
                              _event(reg, ep, request, "Failed", failure_reason=reason, response=reason.encode()))


def _request_ttl(header: Optional[str]) -> int:
    if header is None:
        return REQUEST_TTL_DEFAULT
    try:
        ttl = int(header)
    except ValueError:
        ttl = -1
    if not REQUEST_TTL_MIN <= ttl <= REQUEST_TTL_MAX:
        raise ServiceError("ValidationError", f"1 validation error detected: Value '{header}' at 'requestTTLSeconds' "
                           f"failed to satisfy constraint: Member must have value between {REQUEST_TTL_MIN} and "
                           f"{REQUEST_TTL_MAX}", 400)
    return ttl


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _event(reg: Region, ep: Endpoint, request: dict, status: str, failure_reason: Optional[str] = None,
           response: Optional[bytes] = None) -> dict:
    event = {
        "awsRegion": reg.region, "eventTime": _now(), "receivedTime": request["received"],
        "invocationStatus": status, "inferenceId": request["id"], "eventVersion": "1.0",
        "eventSource": "aws:sagemaker", "eventName": "InferenceResult",
        "requestParameters": {"contentType": request["content_type"], "endpointName": ep.name,
                              "inputLocation": request["input"]},
        "responseParameters": {"contentType": "application/json"},
    }
    if status == "Completed":
        event["responseParameters"]["outputLocation"] = request["output"]
    else:
        event["failureReason"] = failure_reason
    if response is not None and len(response) <= RESPONSE_IN_NOTIFICATION_MAX and \
            notifications.include_response(request["async"], status):
        # IncludeInferenceResponseIn (API_AsyncInferenceNotificationConfig); the field's layout is the sandbox's.
        event["responseBody"] = {"content": response.decode("utf-8", "replace"), "encoding": "UTF-8"}
    return event
