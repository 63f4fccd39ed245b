"""SageMaker resources held by the sandbox: models, endpoint configs, endpoints and their fleets."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Optional

from byoc.sandbox.peers import partition


def arn(region: str, account: str, kind: str, name: str) -> str:
    # SageMaker ARNs carry the resource name in lower case (Amazon SageMaker API Reference, e.g.
    # DescribeEndpoint's EndpointArn "arn:aws:sagemaker:us-east-1:123456789012:endpoint/my-endpoint").
    return f"arn:{partition(region)}:sagemaker:{region}:{account}:{kind}/{name.lower()}"


def instance_id() -> str:
    return "i-" + secrets.token_hex(9)[:17]


@dataclass
class Model:
    name: str
    arn: str
    spec: dict  # the CreateModel request, less ModelName and Tags
    created: float = field(default_factory=time.time)
    tags: list = field(default_factory=list)

    @property
    def containers(self) -> list:
        if self.spec.get("PrimaryContainer"):
            return [self.spec["PrimaryContainer"]]
        return list(self.spec.get("Containers") or [])

    def describe(self) -> dict:
        out = {"ModelName": self.name, **self.spec, "CreationTime": self.created, "ModelArn": self.arn}
        return out


@dataclass
class EndpointConfig:
    name: str
    arn: str
    spec: dict  # the CreateEndpointConfig request, less EndpointConfigName and Tags
    created: float = field(default_factory=time.time)
    tags: list = field(default_factory=list)

    @property
    def variants(self) -> list:
        return list(self.spec.get("ProductionVariants") or [])

    def describe(self) -> dict:
        return {"EndpointConfigName": self.name, "EndpointConfigArn": self.arn, **self.spec,
                "CreationTime": self.created}


@dataclass
class Instance:
    id: str
    variant: str
    state: str = "Pending"  # Pending | InService | Failed | Terminated
    invoke_error: bool = False

    @property
    def stream(self) -> str:
        return f"{self.variant}/{self.id}"


@dataclass
class VariantFleet:
    name: str
    model: str
    image: str  # as specified in the model
    resolved: str  # repository@sha256:digest, as SageMaker reports in DeployedImages
    instance_type: Optional[str]
    desired: int
    weight: float
    serverless: bool = False
    instances: list = field(default_factory=list)
    resolved_at: float = field(default_factory=time.time)

    def serving(self) -> list:
        return [i for i in self.instances if i.state == "InService"]


@dataclass
class Fleet:
    """One deployment of an endpoint config: the instances of all its variants."""

    config: str
    variants: dict  # name -> VariantFleet
    state: str = "Provisioning"  # Provisioning | Ready | Failed | Terminated

    def instances(self) -> list:
        return [i for v in self.variants.values() for i in v.instances]


@dataclass
class Endpoint:
    name: str
    arn: str
    config: str
    status: str = "Creating"
    failure_reason: Optional[str] = None
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    tags: list = field(default_factory=list)
    live: Optional[Fleet] = None
    pending: Optional[Fleet] = None
    pending_started: Optional[float] = None
    deployment_config: Optional[dict] = None
    traffic_to_pending: float = 0.0  # share of traffic the pending fleet takes while baking
    async_config: Optional[dict] = None
    data_capture: Optional[dict] = None
    generation: int = 0  # bumped by each deployment; stale clock callbacks compare it


@dataclass
class Region:
    """What one account holds in one region."""

    account: str
    region: str
    models: dict = field(default_factory=dict)
    configs: dict = field(default_factory=dict)
    endpoints: dict = field(default_factory=dict)
    tag_index: dict = field(default_factory=dict)  # arn -> tags as the Tagging API lists them (control.py)
    quotas: dict = field(default_factory=dict)  # instance type -> max instances for endpoint usage
    unoffered: set = field(default_factory=set)  # instance types this region does not host (/_sandbox/quotas)
