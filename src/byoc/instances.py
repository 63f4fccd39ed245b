"""Facts about SageMaker ML instance types.

Graviton (arm64) families carry a "g" after the generation digit: ml.c6g, ml.c7g, ml.m6g, ml.r7gd,
ml.c6gn ... ("Supported instance types", SageMaker Developer Guide; EC2 naming conventions).
Every other hosting family, the GPU ones (ml.g5, ml.g6, ml.p4d ...) included, is x86_64.
"""

from __future__ import annotations

import re
from typing import Optional

_GRAVITON = re.compile(r"^ml\.[a-z]+\d+g[a-z]*\.")


def is_graviton(instance_type: str) -> bool:
    return bool(instance_type and _GRAVITON.match(instance_type))


def architecture(instance_type: Optional[str]) -> Optional[str]:
    """'arm64' or 'amd64' (OCI platform architecture names); None for what is not an ml.* type."""
    if len((instance_type or "").split(".")) < 3:
        return None
    return "arm64" if is_graviton(instance_type) else "amd64"
