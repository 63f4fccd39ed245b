"""`byoc demo`: the whole job against an in-process sandbox, start to finish, unattended."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from byoc.sandbox import Sandbox, seed


@contextmanager
def sandbox_environment(time_scale: float = 1.0, region: str = "us-east-1") -> Iterator[Sandbox]:
    """Start a sandbox and point this process's AWS configuration at it; restore on exit."""
    sb = Sandbox(time_scale=time_scale).start()
    saved = {k: os.environ.get(k) for k in list(sb.env(region)) + ["AWS_PROFILE", "AWS_CONFIG_FILE",
                                                                     "AWS_SHARED_CREDENTIALS_FILE"]}
    os.environ.update(sb.env(region))
    os.environ.pop("AWS_PROFILE", None)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    try:
        yield sb
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        sb.stop()


def seed_deployment(sb: Sandbox, region: str = "us-east-1") -> dict:
    """What Extension for Stable Diffusion on AWS deployments look like (the oldest generation, v1.3, and a
    v1.7 ComfyUI endpoint), plus custom images."""
    clients = seed.session(sb.url, region)
    deployment = seed.solution(clients, region=region)
    # The current generation too: a v1.7 ComfyUI async endpoint (comfy-async-<id>).
    deployment["comfy"] = seed.solution(clients, region=region, generation="v1.6", version="v1.7.0", service="comfy",
                                        endpoint_id="c0ffee1", realtime_id=None)
    ecr = clients.client("ecr")
    deployment["custom_image"], _ = seed.push_image(ecr, "my-sd-webui", "v2", "healthy", region=region)
    deployment["broken_image"], _ = seed.push_image(ecr, "my-sd-webui", "v3-broken", "crash", region=region)
    return deployment
