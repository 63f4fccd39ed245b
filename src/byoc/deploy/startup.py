"""The startup window (ContainerStartupHealthCheckTimeoutInSeconds), chosen knowingly.

SageMaker accepts 60..3600 seconds (ProductionVariant, API reference) and uses 8 minutes when it is
unset. A failing container keeps the endpoint Updating for the whole window, so a long window is
only worth its cost when the image needs it: the plan measures how long the current image took to
become healthy, from its own log lines (first line of a container start to its first 200 on
/ping), and proposes three times that, at least 10 minutes.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from typing import Any, Optional

from byoc.aws.client import Aws
from byoc.deploy.healthwatch import DEFAULT_WINDOW, span, window_of
from byoc.diagnosis.starts import healthy_start_seconds
from byoc.endpoint.view import EndpointView
from byoc.errors import AuthError, AwsError, BadInput
from byoc.observe import logs

LIMITS = (60, 3600)
REVIEW_FROM = 1800  # a current window this long gets a measured proposal in the plan
MIN_PROPOSAL = 600
MAX_EVENTS = 20_000


def check(seconds: float) -> int:
    """A --startup-timeout within SageMaker's 60 s..60 min, in whole seconds."""
    if not LIMITS[0] <= seconds <= LIMITS[1]:
        raise BadInput(f"--startup-timeout {int(seconds)}s is outside SageMaker's {LIMITS[0]} s..{LIMITS[1] // 60} min.",
                       "ContainerStartupHealthCheckTimeoutInSeconds takes 60..3600 seconds, e.g. --startup-timeout 10m.")
    return int(seconds)


def apply_to(config_request: dict, seconds: int) -> None:
    """Set the window on every instance-based variant of a CreateEndpointConfig request."""
    for v in config_request.get("ProductionVariants", []):
        if "ServerlessConfig" not in v:
            v["ContainerStartupHealthCheckTimeoutInSeconds"] = seconds


@dataclass
class Review:
    current: int  # the live config's window (its variants' longest; 480 when unset)
    healthy_seconds: Optional[float] = None  # the current image's measured start, when measurable
    proposed: Optional[int] = None

    def text(self) -> str:
        if self.healthy_seconds is None:
            return (f"the current window is {span(self.current)}; how long the current image takes to become healthy "
                    "cannot be measured (no container start with a 200 on /ping in its logs)")
        return (f"the current window is {span(self.current)}; the current image became healthy in "
                f"{self.healthy_seconds:.{0 if self.healthy_seconds >= 10 else 1}f}s (its log lines: first line of a container start to its first 200 on "
                f"/ping); consider --startup-timeout {span(self.proposed or MIN_PROPOSAL)}")

    def to_dict(self) -> dict:
        return {"current_seconds": self.current, "healthy_seconds": self.healthy_seconds,
                "proposed_seconds": self.proposed}


def propose(healthy_seconds: float) -> int:
    """Three times the measured start, at least 10 minutes, in whole minutes, at most 60."""
    return min(LIMITS[1], max(MIN_PROPOSAL, int(math.ceil(3 * healthy_seconds / 60.0)) * 60))


def review(aws: Aws, view: EndpointView) -> Optional[Review]:
    """A Review when the live window is REVIEW_FROM or longer, else None."""
    current = window_of(view.config) if view.config else DEFAULT_WINDOW
    if current < REVIEW_FROM:
        return None
    out = Review(current=current)
    out.healthy_seconds = measure(aws, view, current)
    if out.healthy_seconds is not None:
        out.proposed = propose(out.healthy_seconds)
    return out


def measure(aws: Aws, view: EndpointView, window: int) -> Optional[float]:
    """Seconds the live image took to become healthy, from the logs of its deployment (which began
    when SageMaker resolved its image, DeployedImages[].ResolutionTime); None when not measurable."""
    times = [d.get("ResolutionTime") for v in view.endpoint.get("ProductionVariants", [])
             for d in v.get("DeployedImages", []) if d.get("ResolutionTime")]
    if not times:
        return None
    began = min(_epoch(t) for t in times)
    try:
        read = logs.read(aws, view.name, start=int(began * 1000), end=int((began + window + 1800) * 1000),
                         max_events=MAX_EVENTS)
    except (AwsError, AuthError):
        return None
    return healthy_start_seconds(read.events)


def _epoch(value: Any) -> float:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    return float(value)
