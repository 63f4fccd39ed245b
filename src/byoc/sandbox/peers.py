"""The sandbox's other services: moto's backends, in-process, behind the same port.

Everything the SageMaker emulation needs from ECR, CloudWatch Logs, S3, SNS, CloudWatch and
Application Auto Scaling goes through this module, so moto's internals are touched in one place.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Optional

SAGEMAKER_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def patch_moto() -> None:
    """Make moto's ECR digests real: the sha256 of the manifest bytes (Amazon ECR User Guide,
    "Image manifest format support": the digest identifies the manifest), so two manifests that
    differ only in annotations get different digests."""
    from moto.ecr import models as ecr_models

    def _create_digest(self) -> None:
        self._image_digest = "sha256:" + hashlib.sha256(self.image_manifest.encode()).hexdigest()

    ecr_models.Image._create_digest = _create_digest
    _patch_deregister()


def _patch_deregister() -> None:
    """DeregisterScalableTarget as AWS answers it: "Deregistering a scalable target deletes the scaling
    policies and the scheduled actions that are associated with it", and a target that is not
    registered is ObjectNotFoundException (API_DeregisterScalableTarget, Application Auto Scaling API
    Reference). moto keeps the policies and answers ValidationException."""
    from moto.applicationautoscaling import models as aas_models
    from moto.core.exceptions import JsonRESTError

    def deregister_scalable_target(self, namespace: str, r_id: str, dimension: str) -> None:
        if not self._scalable_target_exists(r_id, dimension):
            raise JsonRESTError("ObjectNotFoundException", "No scalable target found for service namespace: "
                                f"{namespace}, resource ID: {r_id}, scalable dimension: {dimension}")
        del self.targets[dimension][r_id]
        for key in [k for k, p in self.policies.items()
                    if (p.service_namespace, p.resource_id, p.scalable_dimension) == (namespace, r_id, dimension)]:
            self.policies[key].delete_alarms(self.account_id, self.region_name)
            del self.policies[key]
        self.scheduled_actions = [a for a in self.scheduled_actions
                                  if (a.service_namespace, a.resource_id, a.scalable_dimension)
                                  != (namespace, r_id, dimension)]

    aas_models.ApplicationAutoscalingBackend.deregister_scalable_target = deregister_scalable_target


def moto_app():
    from moto.server import DomainDispatcherApplication, create_backend_app

    return DomainDispatcherApplication(create_backend_app)


def reset() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


# -- ECR -------------------------------------------------------------------------------------

def ecr_image(account: str, region: str, repository: str, tag: Optional[str] = None,
              digest: Optional[str] = None) -> Optional[dict]:
    """The stored image (manifest, digest, tags) or None when the repository or image is missing."""
    from moto.ecr.models import ecr_backends

    repo = ecr_backends[account][region].repositories.get(repository)
    if repo is None:
        return None
    for image in reversed(repo.images):
        if digest and image.get_image_digest() != digest:
            continue
        if not digest and (tag or "latest") not in image.image_tags:
            continue
        try:
            manifest = json.loads(image.image_manifest)
        except ValueError:
            manifest = {}
        return {"digest": image.get_image_digest(), "manifest": manifest, "tags": list(image.image_tags)}
    return None


# -- CloudWatch Logs ---------------------------------------------------------------------------

def put_logs(account: str, region: str, group: str, stream: str, lines: list) -> None:
    """Append lines (str, or (timestamp_ms, str)) to a stream, creating group and stream as needed."""
    from moto.logs.models import logs_backends

    backend = logs_backends[account][region]
    if group not in backend.groups:
        backend.create_log_group(group, {})
    if stream not in backend.groups[group].streams:
        backend.create_log_stream(group, stream)
    now = int(time.time() * 1000)
    events = []
    for line in lines:
        ts, msg = line if isinstance(line, tuple) else (now, line)
        events.append({"timestamp": ts, "message": msg})
    if events:
        backend.put_log_events(group, stream, events)


# -- S3 and SNS ---------------------------------------------------------------------------------

def _s3(account: str, region: str):
    from moto.s3.models import s3_backends

    return s3_backends[account][partition(region)]


def s3_get(account: str, region: str, uri: str) -> Optional[bytes]:
    bucket, key = split_s3(uri)
    try:
        obj = _s3(account, region).get_object(bucket, key)
    except Exception:
        return None
    return obj.value if obj is not None else None


def s3_put(account: str, region: str, uri: str, data: bytes) -> bool:
    bucket, key = split_s3(uri)
    try:
        _s3(account, region).put_object(bucket, key, data)
        return True
    except Exception:
        return False


def split_s3(uri: str) -> tuple:
    rest = uri[len("s3://"):] if uri.startswith("s3://") else uri
    bucket, _, key = rest.partition("/")
    return bucket, key


def sns_publish(account: str, region: str, topic_arn: str, message: dict) -> bool:
    from moto.sns.models import sns_backends

    try:
        sns_backends[account][region].publish(json.dumps(message), arn=topic_arn)
        return True
    except Exception:
        return False


# -- Application Auto Scaling and CloudWatch alarms ---------------------------------------------

def _aas(account: str, region: str):
    from moto.applicationautoscaling.models import applicationautoscaling_backends

    return applicationautoscaling_backends[account][region]


def resource_id(endpoint: str, variant: str) -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


def scalable_target(account: str, region: str, endpoint: str, variant: str) -> Optional[dict]:
    """The variant's registered scalable target (min/max capacity), or None."""
    target = _aas(account, region).targets.get(SAGEMAKER_DIMENSION, {}).get(resource_id(endpoint, variant))
    if target is None:
        return None
    return {"min": target.min_capacity, "max": target.max_capacity}


def deregister_endpoint(account: str, region: str, endpoint: str) -> list:
    """Deregister every scalable target (and its policies) of an endpoint's variants."""
    backend = _aas(account, region)
    prefix = f"endpoint/{endpoint}/variant/"
    removed = []
    targets = backend.targets.get(SAGEMAKER_DIMENSION, {})
    for rid in [r for r in targets if r.startswith(prefix)]:
        del targets[rid]
        removed.append(rid)
        for key in [k for k, p in backend.policies.items() if p.resource_id == rid]:
            del backend.policies[key]
    return removed


def alarm_state(account: str, region: str, name: str) -> Optional[str]:
    from moto.cloudwatch.models import cloudwatch_backends

    alarm = cloudwatch_backends[account][region].alarms.get(name)
    return alarm.state_value if alarm is not None else None
