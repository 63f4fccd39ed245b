"""The recreate strategy's actions: delete the endpoint and create it again (the original tool's way).

For a Failed endpoint (which SageMaker cannot update) or when two fleets do not fit. Unlike the
original tool it keeps everything: the full lossless config, the endpoint's tags, and the exact
scalable targets and scaling policies, which are deregistered first (deleting an endpoint with
a registered target makes Application Auto Scaling deregister it: "Delete endpoints configured
for auto scaling", endpoint-scaling.html) and registered again afterwards. If the new config
fails, the endpoint is recreated on the previous config. The downtime is measured and reported.
A plan's RecreateEndpoint step runs these (deploy/executor.py).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from byoc.aws.client import Aws, unless_gone
from byoc.deploy import autoscaling, watch


def pending_autoscaling(saved: list) -> list:
    """What to run once the recreated endpoint is InService: the exact target and policies it had."""
    if not saved:
        return []
    return ["Autoscaling is not registered yet; once the endpoint is InService run:"] + autoscaling.commands(saved)


def delete_and_wait(aws: Aws, endpoint: str, timeout: float) -> None:
    """DeleteEndpoint and wait until it is gone (already gone is fine)."""
    if unless_gone(aws.sagemaker.delete_endpoint, EndpointName=endpoint) is not None:
        watch.until_settled(aws, endpoint, timeout)


def create_and_wait(aws: Aws, endpoint: str, config: str, tags: list, timeout: float,
                    on_change: Optional[Callable[[dict], Any]] = None,
                    tick: Optional[Callable[[dict], bool]] = None) -> watch.Settled:
    """CreateEndpoint on `config` with `tags` and wait until SageMaker settles (`tick`: as watch.until_settled)."""
    params: dict = {"EndpointName": endpoint, "EndpointConfigName": config}
    if tags:
        params["Tags"] = tags
    aws.sagemaker.create_endpoint(**params)
    return watch.until_settled(aws, endpoint, timeout, on_change, tick=tick)
