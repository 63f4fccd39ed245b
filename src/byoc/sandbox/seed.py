"""Put things into a running sandbox through boto3, as a user or the solution would.

Used by `byoc demo` and the tests: push images whose manifests carry the sandbox's behaviour
annotations, and create what an Extension for Stable Diffusion on AWS deployment looks like.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Optional

from byoc.sandbox.sagemaker.containers import ARCH_KEY, BEHAVIOR_KEY
from byoc.sandbox.server import ACCOUNT

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DEFAULT_REPO = "stable-diffusion-aws-extension/aigc-webui-inference"
ROLE_NAME = "ESD-createEndpoint-Role"


_SESSIONS: dict = {}
_SESSIONS_LOCK = threading.Lock()


def session(url: str, region: str = "us-east-1", access_key: str = "testing", secret_key: str = "testing"):
    """Something with `.client(service)` that makes boto3 clients for the sandbox at `url`.

    One boto3 session per (region, credentials) is kept, so each service model is parsed once per
    process (parsing the SageMaker model takes ~0.1 s); clients are created under a lock because
    boto3 sessions are not thread-safe."""
    import boto3

    key = (region, access_key, secret_key)

    class _Session:
        def client(self, service):
            with _SESSIONS_LOCK:
                if key not in _SESSIONS:
                    _SESSIONS[key] = boto3.session.Session(aws_access_key_id=access_key,
                                                           aws_secret_access_key=secret_key, region_name=region)
                return _SESSIONS[key].client(service, endpoint_url=url)

    return _Session()


def manifest(behavior: str = "healthy", architecture: Optional[str] = None, seed: str = "") -> dict:
    """An OCI image manifest; its layers depend on `seed` so distinct images have distinct content."""
    layer = "sha256:" + hashlib.sha256(f"layer:{seed}:{behavior}".encode()).hexdigest()
    config = "sha256:" + hashlib.sha256(f"config:{seed}:{behavior}:{architecture}".encode()).hexdigest()
    notes = {BEHAVIOR_KEY: behavior}
    if architecture:
        notes[ARCH_KEY] = architecture
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 7023},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": 2_147_483}],
        "annotations": notes,
    }


def push_image(ecr, repository: str, tag: str = "latest", behavior: str = "healthy",
               architecture: Optional[str] = None, region: str = "us-east-1") -> tuple:
    """Create the repository if needed and PutImage; returns (uri with tag, digest)."""
    try:
        ecr.create_repository(repositoryName=repository)
    except ecr.exceptions.RepositoryAlreadyExistsException:
        pass
    text = json.dumps(manifest(behavior, architecture, seed=f"{repository}:{tag}"))
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    uri = f"{ACCOUNT}.dkr.ecr.{region}.{suffix}/{repository}:{tag}"
    try:
        out = ecr.put_image(repositoryName=repository, imageManifest=text, imageTag=tag,
                            imageManifestMediaType=OCI_MANIFEST)
    except ecr.exceptions.ImageAlreadyExistsException:  # the same image pushed again: nothing changes
        return uri, "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return uri, out["image"]["imageId"]["imageDigest"]


def wait_status(sm, endpoint: str, statuses=("InService", "Failed"), timeout: float = 60.0) -> dict:
    deadline = time.time() + timeout
    while True:
        d = sm.describe_endpoint(EndpointName=endpoint)
        if d["EndpointStatus"] in statuses or time.time() > deadline:
            return d
        time.sleep(0.05)


def solution_environment(endpoint_id: str, endpoint: str, bucket: str, image: str, instance_type: str,
                         region: str, service: str = "sd") -> dict:
    """The model environment the solution sets (later versions; v1.x set only EndpointID)."""
    return {
        "EndpointID": endpoint_id, "LOG_LEVEL": "INFO", "S3_BUCKET_NAME": bucket, "IMAGE_URL": image,
        "INSTANCE_TYPE": instance_type, "ENDPOINT_NAME": endpoint, "ENDPOINT_ID": endpoint_id, "EXTENSIONS": "",
        "CREATED_AT": "2024-05-06T07:08:09.000000", "ESD_VERSION": "v1.5.0", "ESD_COMMIT_ID": "2f1d3b4",
        "SERVICE_TYPE": service, "ON_SAGEMAKER": "true", "AWS_REGION": region, "AWS_DEFAULT_REGION": region,
    }


def solution(clients, region: str = "us-east-1", endpoint_id: str = "a1b2c3d", realtime_id: Optional[str] = "f9e8d7c",
             instance_type: str = "ml.g5.2xlarge", wait: bool = True) -> dict:
    """Create an async `infer-endpoint-<id>` deployment (S3 output, SNS topics, autoscaling with
    minimum 0, default image) and optionally a real-time one; returns names and ARNs."""
    s3, sns, iam, ecr = (clients.client(s) for s in ("s3", "sns", "iam", "ecr"))
    sm, aas = clients.client("sagemaker"), clients.client("application-autoscaling")
    bucket = f"esd-{region}-bucket-{endpoint_id}"
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    s3.put_object(Bucket=bucket, Key="data/model.tar.gz", Body=b"\x1f\x8b model placeholder")
    success = sns.create_topic(Name="sagemaker-inference-success")["TopicArn"]
    error = sns.create_topic(Name="sagemaker-inference-error")["TopicArn"]
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
                                                     "Action": "sts:AssumeRole"}]}
    try:
        role = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        role = iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
    default_image, _ = push_image(ecr, DEFAULT_REPO, "latest", "healthy", region=region)
    out = {"bucket": bucket, "success_topic": success, "error_topic": error, "role": role,
           "default_image": default_image, "endpoints": []}
    specs = [(endpoint_id, True)] + ([(realtime_id, False)] if realtime_id else [])
    for eid, is_async in specs:
        name = f"infer-endpoint-{eid}"
        itype = instance_type if is_async else "ml.g5.xlarge"
        sm.create_model(
            ModelName=f"infer-model-{eid}", ExecutionRoleArn=role,
            PrimaryContainer={"Image": default_image, "ModelDataUrl": f"s3://{bucket}/data/model.tar.gz",
                              "Environment": solution_environment(eid, name, bucket, default_image, itype, region,
                                                                  "sd" if is_async else "comfy")},
            Tags=[{"Key": "solution", "Value": "esd"}])
        variant = {"VariantName": "prod", "ModelName": f"infer-model-{eid}", "InstanceType": itype,
                   "InitialInstanceCount": 1, "InitialVariantWeight": 1.0,
                   "ModelDataDownloadTimeoutInSeconds": 1200, "ContainerStartupHealthCheckTimeoutInSeconds": 3600}
        cfg = {"EndpointConfigName": f"infer-config-{eid}", "ProductionVariants": [variant],
               "Tags": [{"Key": "solution", "Value": "esd"}]}
        if is_async:
            cfg["AsyncInferenceConfig"] = {
                "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 1},
                "OutputConfig": {"S3OutputPath": f"s3://{bucket}/sagemaker_output/",
                                 "NotificationConfig": {"SuccessTopic": success, "ErrorTopic": error}}}
        sm.create_endpoint_config(**cfg)
        sm.create_endpoint(EndpointName=name, EndpointConfigName=f"infer-config-{eid}",
                           Tags=[{"Key": "solution", "Value": "esd"}])
        out["endpoints"].append(name)
    for name in out["endpoints"]:
        if wait:
            wait_status(sm, name)
    if wait:
        register_autoscaling(aas, out["endpoints"][0], min_capacity=0, max_capacity=1, is_async=True)
    return out


def register_autoscaling(aas, endpoint: str, min_capacity: int = 0, max_capacity: int = 1, is_async: bool = True,
                         variant: str = "prod") -> str:
    """The solution's scaling: target tracking on backlog (async) or invocations, plus, for async
    endpoints at 0 instances, a step policy on HasBacklogWithoutCapacity."""
    rid = f"endpoint/{endpoint}/variant/{variant}"
    dim = "sagemaker:variant:DesiredInstanceCount"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=dim,
                                 MinCapacity=min_capacity, MaxCapacity=max_capacity)
    metric = {"MetricName": "ApproximateBacklogSizePerInstance", "Namespace": "AWS/SageMaker",
              "Dimensions": [{"Name": "EndpointName", "Value": endpoint}], "Statistic": "Average"} if is_async else None
    tracking = {"TargetValue": 3.0 if is_async else 5.0, "ScaleInCooldown": 180, "ScaleOutCooldown": 60}
    if metric:
        tracking["CustomizedMetricSpecification"] = metric
    else:
        tracking["PredefinedMetricSpecification"] = {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}
    aas.put_scaling_policy(PolicyName=f"{endpoint}-target-tracking", ServiceNamespace="sagemaker", ResourceId=rid,
                           ScalableDimension=dim, PolicyType="TargetTrackingScaling",
                           TargetTrackingScalingPolicyConfiguration=tracking)
    if is_async and min_capacity == 0:
        aas.put_scaling_policy(
            PolicyName=f"{endpoint}-has-backlog-without-capacity", ServiceNamespace="sagemaker", ResourceId=rid,
            ScalableDimension=dim, PolicyType="StepScaling",
            StepScalingPolicyConfiguration={"AdjustmentType": "ChangeInCapacity", "MetricAggregationType": "Average",
                                            "Cooldown": 300,
                                            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]})
    return rid
