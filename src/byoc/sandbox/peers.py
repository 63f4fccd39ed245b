"""The sandbox's other services: moto's backends, in-process, behind the same port.

Everything the SageMaker emulation needs from ECR, CloudWatch Logs, S3, SNS, CloudWatch and
Application Auto Scaling goes through this module, so moto's internals are touched in one place.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any, Optional

from byoc.sandbox import iam

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

    def _create_digest(self: Any) -> None:
        self._image_digest = "sha256:" + hashlib.sha256(self.image_manifest.encode()).hexdigest()

    ecr_models.Image._create_digest = _create_digest  # type: ignore[method-assign]
    _patch_deregister()


def _patch_deregister() -> None:
    """DeregisterScalableTarget as AWS answers it: "Deregistering a scalable target deletes the scaling
    policies and the scheduled actions that are associated with it", and a target that is not
    registered is ObjectNotFoundException (API_DeregisterScalableTarget, Application Auto Scaling API
    Reference). moto keeps the policies and answers ValidationException."""
    from moto.applicationautoscaling import models as aas_models
    from moto.core.exceptions import JsonRESTError

    def deregister_scalable_target(self: Any, namespace: str, r_id: str, dimension: str) -> None:
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

    aas_models.ApplicationAutoscalingBackend.deregister_scalable_target = (  # type: ignore[method-assign]
        deregister_scalable_target)


def moto_app() -> Any:
    from moto.server import DomainDispatcherApplication, create_backend_app

    return DomainDispatcherApplication(create_backend_app)


def reset() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


# -- ECR -------------------------------------------------------------------------------------

def parse_ecr(image: str) -> Optional[dict]:
    """account, region, suffix, repository, tag and digest of an ECR image URI; None for other registries."""
    m = re.match(r"^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.(amazonaws\.com(?:\.cn)?)/([^:@]+)(?::([^@]+))?(?:@(sha256:[a-f0-9]{64}))?$",
                 image or "")
    if not m:
        return None
    return {"account": m[1], "region": m[2], "suffix": m[3], "repository": m[4], "tag": m[5], "digest": m[6]}


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


def ecr_repository_policy(account: str, region: str, repository: str) -> Optional[dict]:
    """The repository policy (SetRepositoryPolicy) of a repository, or None."""
    from moto.ecr.models import ecr_backends

    repo = ecr_backends[account][region].repositories.get(repository)
    if repo is None or not repo.policy:
        return None
    try:
        return json.loads(repo.policy)
    except ValueError:
        return None


def ecr_repository_exists(account: str, region: str, repository: str) -> bool:
    from moto.ecr.models import ecr_backends

    return repository in ecr_backends[account][region].repositories


def caller_identity(access_key: str, region: str) -> tuple:
    """(ARN, account) STS's GetCallerIdentity answers for an access key."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sts.models import sts_backends

    _, arn, account = sts_backends[DEFAULT_ACCOUNT_ID][partition(region)].get_caller_identity(access_key, region)
    return arn, account


# -- IAM ----------------------------------------------------------------------------------------

def role(role_arn: str) -> Optional[dict]:
    """{"trust": AssumeRolePolicyDocument, "policies": [identity policy documents]} of a role, or None."""
    from moto.iam.exceptions import NotFoundException
    from moto.iam.models import iam_backends

    parts = role_arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam":
        return None
    account, part = parts[4], parts[1]
    try:
        entity = iam_backends[account][part].get_role_by_arn(role_arn)
    except (NotFoundException, KeyError):
        return None
    return {"trust": iam.load_document(entity.assume_role_policy_document),
            "policies": iam.identity_documents(entity)}


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

def _s3(account: str, region: str) -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[account][partition(region)]


def s3_get(account: str, region: str, uri: str) -> Optional[bytes]:
    bucket, key = split_s3(uri)
    try:
        obj = _s3(account, region).get_object(bucket, key)
    except Exception:
        return None
    return obj.value if obj is not None else None


def s3_exists(account: str, region: str, uri: str) -> Optional[str]:
    """The region of the bucket when the object (or, for a URI ending in "/", any object under that
    prefix) exists; None otherwise."""
    bucket, key = split_s3(uri)
    try:
        backend = _s3(account, region)
        found = backend.get_bucket(bucket)
    except Exception:
        return None
    if key.endswith("/") or not key:
        if not any(k.startswith(key) for k in found.keys.keys()):
            return None
    elif key not in found.keys:
        return None
    return found.region_name


def s3_bucket_policy(account: str, region: str, bucket: str) -> Optional[dict]:
    try:
        found = _s3(account, region).get_bucket(bucket)
        policy = found.policy
        return json.loads(policy) if policy else None
    except Exception:
        return None


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

def _aas(account: str, region: str) -> Any:
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
