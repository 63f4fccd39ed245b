"""Put things into a running sandbox through boto3, as a user or the solution would.

Used by `byoc demo` and the tests: push images whose manifests carry the sandbox's behaviour
annotations, and create what an Extension for Stable Diffusion on AWS deployment looks like.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any, Dict, Optional

from byoc.sandbox.sagemaker.containers import ARCH_KEY, BEHAVIOR_KEY
from byoc.sandbox.server import ACCOUNT

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DEFAULT_REPO = "stable-diffusion-aws-extension/aigc-webui-inference"
ROLE_NAME = "ESD-createEndpoint-Role"


_SESSIONS: dict = {}
_SESSIONS_LOCK = threading.Lock()


def session(url: str, region: str = "us-east-1", access_key: str = "testing", secret_key: str = "testing") -> Any:
    """Something with `.client(service)` that makes boto3 clients for the sandbox at `url`.

    One boto3 session per (region, credentials) is kept, so each service model is parsed once per
    process (parsing the SageMaker model takes ~0.1 s); clients are created under a lock because
    boto3 sessions are not thread-safe."""
    import boto3

    key = (region, access_key, secret_key)

    class _Session:
        def client(self, service: Any) -> Any:
            with _SESSIONS_LOCK:
                if key not in _SESSIONS:
                    _SESSIONS[key] = boto3.session.Session(aws_access_key_id=access_key,
                                                           aws_secret_access_key=secret_key, region_name=region)
                return _SESSIONS[key].client(service, endpoint_url=url)

    return _Session()


SAGEMAKER_TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
# What a SageMaker execution role needs to serve a model from the account's ECR and S3 and report
# asynchronous results (AmazonSageMakerFullAccess grants more; "SageMaker AI execution roles").
EXECUTION_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Resource": "*",
     "Action": ["ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                "ecr:BatchCheckLayerAvailability", "s3:GetObject", "s3:PutObject", "s3:ListBucket", "sns:Publish",
                "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "cloudwatch:PutMetricData"]}]}


def execution_role(iam: Any, name: str = ROLE_NAME, policy: Optional[dict] = None) -> str:
    """Create (or find) a role SageMaker can assume with `policy` (default: EXECUTION_POLICY); returns its ARN."""
    try:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(SAGEMAKER_TRUST))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="sagemaker-execution",
                        PolicyDocument=json.dumps(policy or EXECUTION_POLICY))
    return arn


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


def push_image(ecr: Any, repository: str, tag: str = "latest", behavior: str = "healthy",
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


def wait_status(sm: Any, endpoint: str, statuses: Any = ("InService", "Failed"), timeout: float = 60.0) -> dict:
    deadline = time.time() + timeout
    while True:
        d = sm.describe_endpoint(EndpointName=endpoint)
        if d["EndpointStatus"] in statuses or time.time() > deadline:
            return d
        time.sleep(0.05)


# The solution's generations, read from github.com/awslabs/stable-diffusion-aws-extension at its release tags:
# middleware_api/lambda/inference_v2/sagemaker_endpoint_api.py (v1.3.0), middleware_api/lambda/endpoints/
# create_endpoint.py (v1.4.0, v1.5.0), middleware_api/endpoints/create_endpoint.py (v1.6.0 .. v1.7.0), the roles
# and images from each release's infrastructure/src, autoscaling from endpoint_event.py.
GENERATIONS = {
    "infer": {"version": "v1.3.0", "endpoint": "infer-endpoint-{id}", "model": "infer-model-{id}",
              "config": "infer-config-{id}"},
    "esd": {"version": "v1.5.0", "endpoint": "esd-{type}-{id}", "model": "esd-model-{type}-{id}",
            "config": "esd-config-{type}-{id}"},
    "v1.6": {"version": "v1.7.0", "endpoint": "{service}-{type}-{id}", "model": "{service}-{type}-{id}",
             "config": "{service}-{type}-{id}"},
}
# (ContainerStartupHealthCheckTimeoutInSeconds, ModelDataDownloadTimeoutInSeconds) per release: v1.3 and v1.4
# set none, v1.5 600/1800 (get_production_variants), v1.6+ 3600/1200.
STARTUP = {"v1.3": None, "v1.4": None, "v1.5": (600, 1800), "v1.6": (3600, 1200), "v1.7": (3600, 1200)}


def _minor(version: str) -> str:
    return ".".join(version.lstrip("v").split(".")[:2]).join(("v", ""))


def _registry(region: str) -> str:
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{ACCOUNT}.dkr.ecr.{region}.{suffix}"


def _uuid(short_id: str) -> str:
    """An endpoint id whose first 7 characters are `short_id` (the solution cuts uuid4()[:7])."""
    h = hashlib.sha256(short_id.encode()).hexdigest()
    head = (short_id + h)[:8] if len(short_id) == 7 else h[:8]
    return f"{head}-{h[8:12]}-4{h[12:15]}-8{h[15:18]}-{h[18:30]}"


def role_name(generation: str, version: str, region: str) -> str:
    """The execution role the solution passes: LambdaStartDeployRole (v1.0-v1.3; the sandbox's default keeps the
    CDK-style *createEndpoint* name byoc's policy defaults to), ESDRoleForEndpoint-<region> (v1.4, v1.5),
    ESDRoleForEndpoint-<version> (v1.6.0), ESDRole-<version> (v1.6.1), ESDRole-<region> (v1.7.0)."""
    if generation == "infer":
        return ROLE_NAME
    if generation == "esd":
        return f"ESDRoleForEndpoint-{region}"
    if version == "v1.6.0":
        return "ESDRoleForEndpoint-v1.6.0"
    if version.startswith("v1.6"):
        return f"ESDRole-{version}"
    return f"ESDRole-{region}"


def default_image_of(generation: str, version: str) -> tuple:
    """(repository, tag) the solution deploys: the stack's aigc-webui-inference:latest up to v1.4,
    esd-inference:<ECR_IMAGE_TAG> in v1.5, esd-inference:<ESD_VERSION> from v1.6."""
    if generation == "infer" or _minor(version) == "v1.4":
        return DEFAULT_REPO, "latest"
    return "esd-inference", version.lstrip("v") if generation == "esd" else version


def solution_environment(generation: str, version: str, short_id: str, endpoint: str, bucket: str, image: str,
                         instance_type: str, region: str, service: str = "sd", comfy: Optional[dict] = None) -> dict:
    """The model environment each release's create_endpoint.py sets."""
    created = "2024-05-06T07:08:09.000000"
    if generation == "infer":
        return {"EndpointID": "OUR_ID"}
    if _minor(version) == "v1.4":
        return {"EndpointID": "OUR_ID", "LOG_LEVEL": "ERROR", "BUCKET_NAME": bucket, "INSTANCE_TYPE": instance_type,
                "ENDPOINT_NAME": endpoint, "ENDPOINT_ID": _uuid(short_id), "CREATED_AT": created}
    if generation == "esd":
        return {"LOG_LEVEL": "ERROR", "BUCKET_NAME": bucket, "IMAGE_URL": image, "INSTANCE_TYPE": instance_type,
                "ENDPOINT_NAME": endpoint, "ENDPOINT_ID": _uuid(short_id), "EXTENSIONS": "", "CREATED_AT": created,
                "ECR_IMAGE_TAG": version.lstrip("v")}
    comfy = comfy or {}
    return {"LOG_LEVEL": "ERROR", "S3_BUCKET_NAME": bucket, "IMAGE_URL": image, "INSTANCE_TYPE": instance_type,
            "ENDPOINT_NAME": endpoint, "ENDPOINT_ID": _uuid(short_id), "EXTENSIONS": "", "CREATED_AT": created,
            "COMFY_QUEUE_URL": comfy.get("queue", ""), "COMFY_SYNC_TABLE": comfy.get("sync_table", ""),
            "COMFY_INSTANCE_MONITOR_TABLE": comfy.get("monitor_table", ""), "ESD_VERSION": version,
            "ESD_COMMIT_ID": "2f1d3b4", "SERVICE_TYPE": service, "ON_SAGEMAKER": "true", "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region}


def _invocations(instance_type: str, service: str) -> int:
    """MaxConcurrentInvocationsPerInstance: common/util.py resolve_instance_invocations_num (v1.6+)."""
    if service == "sd":
        return 1
    return {"ml.g5.12xlarge": 4, "ml.p4d.24xlarge": 8}.get(instance_type, 1)


def solution(clients: Any, region: str = "us-east-1", endpoint_id: str = "a1b2c3d", realtime_id: Optional[str] = "f9e8d7c",
             instance_type: str = "ml.g5.2xlarge", wait: bool = True, generation: str = "infer",
             version: Optional[str] = None, service: str = "sd", startup_timeout: Optional[int] = None) -> dict:
    """Create what one release of the solution creates: an async endpoint (S3 output, SNS topics, autoscaling
    with minimum 0, the release's default image, names, environment and startup window) and optionally a
    real-time one. `generation` is infer (v1.0-v1.3), esd (v1.4, v1.5) or v1.6 (v1.6, v1.7; `service` sd or
    comfy); `version` picks the release (default: the generation's last). v1.3 made async endpoints only: the
    real-time `infer-endpoint-<realtime_id>` stands for one a user made in that naming. Every resource also
    carries a user's tag (solution=esd; the solution tags nothing) so tests see that byoc keeps tags.
    `startup_timeout` overrides the release's ContainerStartupHealthCheckTimeoutInSeconds. Returns names and ARNs."""
    spec = GENERATIONS[generation]
    version = version or spec["version"]
    s3, sns, iam, ecr = (clients.client(s) for s in ("s3", "sns", "iam", "ecr"))
    sm, aas = clients.client("sagemaker"), clients.client("application-autoscaling")
    bucket = f"esd-{region}-bucket-{endpoint_id}".lower()
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        pass
    s3.put_object(Bucket=bucket, Key="data/model.tar.gz", Body=b"\x1f\x8b model placeholder")
    prefix = "comfy-" if service == "comfy" else ""  # COMFY_SNS_INFERENCE_* for ComfyUI endpoints (v1.6+)
    success = sns.create_topic(Name=f"{prefix}sagemaker-inference-success")["TopicArn"]
    error = sns.create_topic(Name=f"{prefix}sagemaker-inference-error")["TopicArn"]
    role = execution_role(iam, role_name(generation, version, region))
    repo, tag = default_image_of(generation, version)
    default_image, _ = push_image(ecr, repo, tag, "healthy", region=region)
    if generation == "infer" or _minor(version) == "v1.4":
        default_image = f"{_registry(region)}/{repo}"  # INFERENCE_ECR_IMAGE_URL names the repository, untagged
    comfy = {}
    if service == "comfy":
        comfy = {"queue": f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/ComfyExecuteQueue",
                 "sync_table": "ComfySyncTable", "monitor_table": "ComfyInstanceMonitorTable"}
    out = {"bucket": bucket, "success_topic": success, "error_topic": error, "role": role, "generation": generation,
           "version": version, "default_image": default_image, "endpoints": [], "models": [], "configs": []}
    tags = [{"Key": "solution", "Value": "esd"}]
    specs = [(endpoint_id, True)] + ([(realtime_id, False)] if realtime_id else [])
    for eid, is_async in specs:
        fields = {"id": eid, "type": "async" if is_async else "real-time", "service": service}
        name, model, config = (spec[k].format(**fields) for k in ("endpoint", "model", "config"))
        itype = instance_type if is_async else "ml.g5.xlarge"
        sm.create_model(
            ModelName=model, ExecutionRoleArn=role,
            PrimaryContainer={"Image": default_image, "ModelDataUrl": f"s3://{bucket}/data/model.tar.gz",
                              "Environment": solution_environment(generation, version, eid, name, bucket,
                                                                 default_image, itype, region, service, comfy)},
            Tags=tags)
        variant = {"VariantName": "prod", "ModelName": model, "InstanceType": itype, "InitialInstanceCount": 1}
        windows = STARTUP.get(_minor(version))
        if windows:
            variant["ContainerStartupHealthCheckTimeoutInSeconds"], variant["ModelDataDownloadTimeoutInSeconds"] = windows
        if startup_timeout:
            variant["ContainerStartupHealthCheckTimeoutInSeconds"] = startup_timeout
        cfg: Dict[str, Any] = {"EndpointConfigName": config, "ProductionVariants": [variant], "Tags": tags}
        if is_async:
            cfg["AsyncInferenceConfig"] = {
                "ClientConfig": {"MaxConcurrentInvocationsPerInstance": _invocations(itype, service)},
                "OutputConfig": {"S3OutputPath": f"s3://{bucket}/sagemaker_output/",
                                 "NotificationConfig": {"SuccessTopic": success, "ErrorTopic": error}}}
        sm.create_endpoint_config(**cfg)
        sm.create_endpoint(EndpointName=name, EndpointConfigName=config, Tags=tags)
        out["endpoints"].append(name)
        out["models"].append(model)
        out["configs"].append(config)
    for name in out["endpoints"]:
        if wait:
            wait_status(sm, name)
    if wait and generation == "infer":
        register_autoscaling(aas, out["endpoints"][0], min_capacity=0, max_capacity=1, is_async=True)
    elif wait:
        for name, (_, is_async) in zip(out["endpoints"], specs):
            solution_autoscaling(clients, name, is_async)
    return out


def solution_autoscaling(clients: Any, endpoint: str, is_async: bool, max_capacity: int = 1) -> None:
    """v1.4+ endpoint_event.py enable_autoscaling: minimum 0 (async) or 1 (real-time); target tracking
    `<endpoint>-Invocations-ScalingPolicy` (backlog per instance 3, or invocations per instance 5); for async a
    step policy `<endpoint>-HasBacklogWithoutCapacity-ScalingPolicy` invoked by the alarm
    `<endpoint>-HasBacklogWithoutCapacity-Alarm`."""
    aas, cw = clients.client("application-autoscaling"), clients.client("cloudwatch")
    rid, dim = f"endpoint/{endpoint}/variant/prod", "sagemaker:variant:DesiredInstanceCount"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=dim,
                                 MinCapacity=0 if is_async else 1, MaxCapacity=max(max_capacity, 1))
    tracking: Dict[str, Any] = {"TargetValue": 3.0 if is_async else 5.0, "ScaleInCooldown": 180, "ScaleOutCooldown": 60}
    if is_async:
        tracking["CustomizedMetricSpecification"] = {
            "MetricName": "ApproximateBacklogSizePerInstance", "Namespace": "AWS/SageMaker",
            "Dimensions": [{"Name": "EndpointName", "Value": endpoint}], "Statistic": "Average"}
    else:
        tracking["PredefinedMetricSpecification"] = {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}
    aas.put_scaling_policy(PolicyName=f"{endpoint}-Invocations-ScalingPolicy", ServiceNamespace="sagemaker",
                           ResourceId=rid, ScalableDimension=dim, PolicyType="TargetTrackingScaling",
                           TargetTrackingScalingPolicyConfiguration=tracking)
    if not is_async:
        return
    step = aas.put_scaling_policy(
        PolicyName=f"{endpoint}-HasBacklogWithoutCapacity-ScalingPolicy", ServiceNamespace="sagemaker",
        ResourceId=rid, ScalableDimension=dim, PolicyType="StepScaling",
        StepScalingPolicyConfiguration={"AdjustmentType": "ChangeInCapacity", "MetricAggregationType": "Average",
                                        "Cooldown": 180,
                                        "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]})
    cw.put_metric_alarm(AlarmName=f"{endpoint}-HasBacklogWithoutCapacity-Alarm", MetricName="HasBacklogWithoutCapacity",
                        Namespace="AWS/SageMaker", Statistic="Average", Period=30, EvaluationPeriods=1,
                        DatapointsToAlarm=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
                        TreatMissingData="missing", Dimensions=[{"Name": "EndpointName", "Value": endpoint}],
                        AlarmActions=[step["PolicyARN"]])


def register_autoscaling(aas: Any, endpoint: str, min_capacity: int = 0, max_capacity: int = 1, is_async: bool = True,
                         variant: str = "prod") -> str:
    """The solution's scaling: target tracking on backlog (async) or invocations, plus, for async
    endpoints at 0 instances, a step policy on HasBacklogWithoutCapacity."""
    rid = f"endpoint/{endpoint}/variant/{variant}"
    dim = "sagemaker:variant:DesiredInstanceCount"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=dim,
                                 MinCapacity=min_capacity, MaxCapacity=max_capacity)
    metric = {"MetricName": "ApproximateBacklogSizePerInstance", "Namespace": "AWS/SageMaker",
              "Dimensions": [{"Name": "EndpointName", "Value": endpoint}], "Statistic": "Average"} if is_async else None
    tracking: Dict[str, Any] = {"TargetValue": 3.0 if is_async else 5.0, "ScaleInCooldown": 180, "ScaleOutCooldown": 60}
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
