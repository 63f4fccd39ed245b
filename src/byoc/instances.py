"""Facts about SageMaker ML instance types.

Graviton (arm64) families carry a "g" after the generation digit: ml.c6g, ml.c7g, ml.m6g, ml.r7gd,
ml.c6gn ... ("Supported instance types", SageMaker Developer Guide; EC2 naming conventions), and
the Grace-Blackwell ml.p6e-gb200 runs on NVIDIA Grace (arm64) CPUs. Every other hosting family, the GPU ones (ml.g5, ml.g6, ml.p4d ...) included, is x86_64.
NVIDIA GPUs are in the accelerated-computing families whose name starts with "g" or "p"
(ml.g4dn, ml.g5, ml.g6, ml.g6e, ml.p3, ml.p4d, ml.p5 ...); ml.inf* and ml.trn* carry AWS
Inferentia/Trainium (Neuron) chips, which CUDA images cannot use ("Accelerated computing" in
the EC2 instance types guide).
"""

from __future__ import annotations

import re
from typing import Optional

_GRAVITON = re.compile(r"^ml\.([a-z]+\d+g[a-z]*|p\d+e-gb\d+)\.")
_GPU = re.compile(r"^ml\.[gp]\d")


def is_graviton(instance_type: str) -> bool:
    return bool(instance_type and _GRAVITON.match(instance_type))


def architecture(instance_type: Optional[str]) -> Optional[str]:
    """'arm64' or 'amd64' (OCI platform architecture names); None for what is not an ml.* type."""
    if len((instance_type or "").split(".")) < 3:
        return None
    return "arm64" if is_graviton(instance_type or "") else "amd64"


def has_gpu(instance_type: Optional[str]) -> bool:
    """True for the NVIDIA GPU families (ml.g4dn, ml.g5, ml.g6, ml.p4d ...)."""
    return bool(instance_type and _GPU.match(instance_type))


def family(instance_type: str) -> str:
    """'ml.g6' of 'ml.g6.2xlarge'."""
    return instance_type.rsplit(".", 1)[0]
