"""SageMaker Runtime: InvokeEndpoint and InvokeEndpointAsync (REST JSON, signing name sagemaker).

- InvokeEndpoint answers only while a fleet serves; the body names the serving image digest,
  variant and instance so a client can tell the old fleet from the new one. A container whose
  /invocations fails gives ModelError (424) "Received server error (500) from primary ..."
  (API_runtime_InvokeEndpoint, Errors).
- InvokeEndpointAsync queues the request and writes the result under the config's
  S3OutputPath (errors under S3FailurePath), then notifies SuccessTopic/ErrorTopic
  ("Check prediction results", async-inference-check-predictions.html). An endpoint scaled to
  0 instances is scaled back to 1 when a backlog exists and the variant is a scalable target
  ("Autoscale an asynchronous endpoint", async-inference-autoscale.html).
"""

from __future__ import annotations

import datetime
import json
import random
import uuid
from typing import Optional

from byoc.sandbox import peers
from byoc.sandbox.protocol import ServiceError
from byoc.sandbox.sagemaker import containers, deploy

ASYNC_PROCESS = 20  # simulated seconds per queued request
ASYNC_RETRY = 30


class Runtime:
    def __init__(self, sagemaker):
        self.sm = sagemaker

    def _not_found(self, reg, name) -> ServiceError:
        return ServiceError("ValidationError", f"Endpoint {name} of account {reg.account} not found.", 400)

    def _pick(self, reg, name: str, target_variant: Optional[str]):
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
                       "received": _now()}
            self.sm.clock.after(ASYNC_PROCESS, lambda: self._process(reg, ep, request, out_cfg))
        hdrs = [("X-Amzn-SageMaker-OutputLocation", output)]
        if failure:
            hdrs.append(("X-Amzn-SageMaker-FailureLocation", failure))
        return 202, json.dumps({"InferenceId": inference_id}).encode(), hdrs

    def _process(self, reg, ep, request: dict, out_cfg: dict, attempts: int = 0) -> None:
        if reg.endpoints.get(ep.name) is not ep or ep.live is None:
            return
        variant = next(iter(ep.live.variants.values()))
        serving = variant.serving()
        if not serving:
            target = peers.scalable_target(reg.account, reg.region, ep.name, variant.name)
            if variant.desired == 0 and target and (target.get("max") or 0) >= 1:
                self.sm.deployer.resize(reg, ep, variant.name, 1, ep.generation)
            if attempts < 200:
                self.sm.clock.after(ASYNC_RETRY, lambda: self._process(reg, ep, request, out_cfg, attempts + 1))
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
            if request["failure"]:
                peers.s3_put(reg.account, reg.region, request["failure"], reason.encode())
            if notify.get("ErrorTopic"):
                peers.sns_publish(reg.account, reg.region, notify["ErrorTopic"],
                                  _event(reg, ep, request, "Failed", failure_reason=reason))
            return
        result = {"endpoint": ep.name, "variant": variant.name, "instance": inst.id, "image": variant.image,
                  "digest": variant.resolved.split("@", 1)[1] if "@" in variant.resolved else None,
                  "inference_id": request["id"], "input_bytes": len(payload)}
        peers.s3_put(reg.account, reg.region, request["output"], json.dumps(result).encode())
        peers.put_logs(reg.account, reg.region, deploy.log_group(ep.name), inst.stream,
                       ['INFO:     169.254.178.2:41232 - "POST /invocations HTTP/1.1" 200 OK'])
        if notify.get("SuccessTopic"):
            peers.sns_publish(reg.account, reg.region, notify["SuccessTopic"], _event(reg, ep, request, "Completed"))


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _event(reg, ep, request, status: str, failure_reason: Optional[str] = None) -> dict:
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
    return event
