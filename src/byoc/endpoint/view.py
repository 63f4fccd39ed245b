"""Read an endpoint, its live endpoint config and its models into one typed view."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from byoc import redaction
from byoc.aws.client import Aws
from byoc.errors import AuthError, AwsError, BadInput

# EndpointStatus values while SageMaker is still changing the endpoint (API_DescribeEndpoint):
# an update must not start, a watch goes on, `status` reports an update in progress.
BUSY = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")


@dataclass
class VariantView:
    name: str
    model: str
    instance_type: Optional[str]
    current_instances: Optional[int]
    desired_instances: Optional[int]
    image: Optional[str]  # as specified in the model
    resolved_image: Optional[str]  # DeployedImages[].ResolvedImage (repo@sha256:...)
    serverless: bool = False

    @property
    def digest(self) -> Optional[str]:
        if self.resolved_image and "@" in self.resolved_image:
            return self.resolved_image.split("@", 1)[1]
        if self.image and "@" in self.image:
            return self.image.split("@", 1)[1]
        return None


@dataclass
class EndpointView:
    name: str
    endpoint: dict
    config: dict
    models: dict = field(default_factory=dict)  # model name -> DescribeModel output

    @property
    def status(self) -> str:
        return self.endpoint.get("EndpointStatus", "")

    @property
    def config_name(self) -> str:
        return self.endpoint.get("EndpointConfigName", "")

    @property
    def is_async(self) -> bool:
        return bool(self.config.get("AsyncInferenceConfig"))

    @property
    def kind(self) -> str:
        """async, serverless or real-time: the one rule `endpoints`, `status` and `fleet status` show."""
        if self.is_async:
            return "async"
        cvs = self.config.get("ProductionVariants", [])
        return "serverless" if cvs and all("ServerlessConfig" in v for v in cvs) else "real-time"

    @property
    def variants(self) -> list:
        live = {v["VariantName"]: v for v in self.endpoint.get("ProductionVariants", [])}
        out = []
        for cv in self.config.get("ProductionVariants", []):
            lv = live.get(cv["VariantName"], {})
            deployed = (lv.get("DeployedImages") or [{}])[0]
            model = self.models.get(cv["ModelName"], {})
            out.append(
                VariantView(
                    name=cv["VariantName"],
                    model=cv["ModelName"],
                    instance_type=cv.get("InstanceType"),
                    current_instances=lv.get("CurrentInstanceCount"),
                    desired_instances=lv.get("DesiredInstanceCount"),
                    image=deployed.get("SpecifiedImage") or model_image(model),
                    resolved_image=deployed.get("ResolvedImage"),
                    serverless="ServerlessConfig" in cv,
                )
            )
        return out


def model_containers(model: dict) -> list:
    """A model's containers (DescribeModel output or CreateModel request): its primary one, or all."""
    return [model["PrimaryContainer"]] if model.get("PrimaryContainer") else list(model.get("Containers") or [])


def model_images(model: dict) -> list:
    """The image of each of a model's containers."""
    return [c.get("Image") for c in model_containers(model)]


def container(model: dict) -> dict:
    """A model's primary (or first) container ({} when it has none)."""
    return next(iter(model_containers(model)), {})


def model_image(model: dict) -> Optional[str]:
    """The image of a model's primary (or first) container."""
    return next(iter(model_images(model)), None)


def require_endpoint_name(endpoint: str) -> str:
    """SageMaker endpoint names (API_CreateEndpoint): up to 63 letters, digits and hyphens."""
    if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", endpoint or ""):
        raise BadInput(f"'{endpoint}' is not a SageMaker endpoint name.",
                       "Use the name shown by `byoc endpoints` (letters, digits and hyphens, up to 63).")
    return endpoint


def describe_endpoint(aws: Aws, name: str) -> dict:
    """DescribeEndpoint; a malformed or missing name is bad input (exit 2)."""
    require_endpoint_name(name)
    try:
        return aws.sagemaker.describe_endpoint(EndpointName=name)
    except AwsError as exc:
        if exc.not_found:
            raise not_found(aws, name) from exc
        raise


def not_found(aws: Aws, name: str) -> BadInput:
    """The refusal for a missing endpoint: close names in this region, or the regions that have it."""
    missing = f"Endpoint '{name}' does not exist in {aws.region}"
    try:
        names = [e["EndpointName"] for page in aws.sagemaker.paginate("list_endpoints", MaxResults=100)
                 for e in page.get("Endpoints", [])]
    except (AwsError, AuthError):
        names = []
    close = close_names(name, names)
    if close:
        return BadInput(f"{missing}. Did you mean {' or '.join(close)}?",
                        "Use the exact name (`byoc endpoints` lists them).")
    elsewhere = regions_with(aws, name)
    if elsewhere:
        return BadInput(f"{missing}; it exists in {', '.join(elsewhere)}.", f"Add --region {elsewhere[0]}.")
    return BadInput(f"{missing}.", "List endpoints with `byoc endpoints` (and check --region).")


def close_names(name: str, names: list, most: int = 3) -> list:
    """Names a typo away from `name`: at most 1 edit per 5 characters (3 at most), nearest first."""
    limit = max(1, min(3, len(name) // 5))
    scored = sorted((edits(name.lower(), n.lower()), n) for n in names if abs(len(n) - len(name)) <= limit)
    return [n for d, n in scored if 0 < d <= limit][:most]


def edits(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def regions_with(aws: Aws, name: str, wait_seconds: float = 20.0) -> list:
    """The other regions of the partition where endpoint `name` exists (regions that cannot be
    asked, e.g. not opted in, are skipped; the search gives up after `wait_seconds`)."""
    from concurrent.futures import ThreadPoolExecutor, wait

    def exists(region: str) -> bool:
        try:
            aws.in_region(region).sagemaker.describe_endpoint(EndpointName=name)
            return True
        except Exception:  # not there, not enabled, not allowed, unreachable: all mean "not found here"
            return False

    try:
        regions = [r for r in aws.regions() if r != aws.region]
    except Exception:  # botocore without endpoint data for this partition
        return []
    pool = ThreadPoolExecutor(max_workers=16)
    futures = {pool.submit(exists, r): r for r in regions}
    done, _ = wait(futures, timeout=wait_seconds)
    pool.shutdown(wait=False)
    return sorted(futures[f] for f in done if f.result())


def load(aws: Aws, name: str, endpoint: Optional[dict] = None) -> EndpointView:
    """DescribeEndpoint, DescribeEndpointConfig and DescribeModel of every variant's model."""
    endpoint = endpoint or describe_endpoint(aws, name)
    config = aws.sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    names = sorted({v["ModelName"] for v in config.get("ProductionVariants", [])}
                   | {v["ModelName"] for v in config.get("ShadowProductionVariants", []) or []})
    models = {}
    for model_name in names:
        try:
            models[model_name] = aws.sagemaker.describe_model(ModelName=model_name)
        except AwsError as exc:
            if not exc.not_found:
                raise
    for model in models.values():
        for container in model_containers(model):
            redaction.remember(container.get("Environment") or {})
    return EndpointView(name=name, endpoint=endpoint, config=config, models=models)
