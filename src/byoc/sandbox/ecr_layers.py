"""ECR GetDownloadUrlForLayer, which moto lacks, for image config blobs.

ECR answers with a presigned URL from which the layer (or config blob) is downloaded
(API_GetDownloadUrlForLayer, Amazon ECR API Reference). The sandbox serves the config blob of
an image it holds (OCI Image Spec "Image Configuration": architecture, os, config) at
/_sandbox/blobs/<region>/<repository>/<digest>; the architecture is the image's
`org.byoc.sandbox.architecture` annotation (amd64 by default).
"""

from __future__ import annotations

import json
from typing import Optional

from byoc.sandbox.protocol import ServiceError
from byoc.sandbox.sagemaker.containers import ARCH_KEY


def _config_blob(account: str, region: str, repository: str, digest: str) -> Optional[dict]:
    from moto.ecr.models import ecr_backends

    repo = ecr_backends[account][region].repositories.get(repository)
    for image in (repo.images if repo else []):
        try:
            manifest = json.loads(image.image_manifest)
        except ValueError:
            continue
        if (manifest.get("config") or {}).get("digest") == digest:
            arch = (manifest.get("annotations") or {}).get(ARCH_KEY, "amd64")
            return {"architecture": arch, "os": "linux",
                    "config": {"Entrypoint": ["python", "/opt/program/serve.py"], "ExposedPorts": {"8080/tcp": {}}},
                    "rootfs": {"type": "layers", "diff_ids": [layer.get("digest") for layer in manifest.get("layers", [])]}}
    return None


def download_url(base_url: str, account: str, region: str, params: dict) -> dict:
    repository, digest = params.get("repositoryName", ""), params.get("layerDigest", "")
    if _config_blob(params.get("registryId") or account, region, repository, digest) is None:
        raise ServiceError("LayersNotFoundException", f"The specified layer {digest} does not exist in repository "
                           f"{repository}.")
    return {"downloadUrl": f"{base_url}/_sandbox/blobs/{region}/{repository}/{digest}", "layerDigest": digest}


def blob(account: str, path: str) -> bytes:
    """Body of GET /_sandbox/blobs/<region>/<repository>/<digest>."""
    parts = path[len("/_sandbox/blobs/"):].split("/")
    if len(parts) < 3:
        raise ServiceError("LayersNotFoundException", "No such blob.", 404)
    region, repository, digest = parts[0], "/".join(parts[1:-1]), parts[-1]
    config = _config_blob(account, region, repository, digest)
    if config is None:
        raise ServiceError("LayersNotFoundException", f"No blob {digest} in {repository}.", 404)
    return json.dumps(config).encode()
