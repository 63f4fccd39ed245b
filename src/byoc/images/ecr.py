"""Resolve an ECR image: its digest (tag -> sha256), and its CPU architecture.

The architecture comes from the image itself, as a container runtime reads it: an image index
lists its platforms; a single manifest points at a config blob whose "architecture" field says
it (OCI Image Spec, "Image Configuration"; ECR: BatchGetImage, GetDownloadUrlForLayer).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

from byoc.aws.client import Aws
from byoc.errors import AuthError, AwsError, PreflightFailed
from byoc.images.ref import ImageRef

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
RESOLVE_MAX_AGE = 300.0
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json")


@dataclass
class ResolvedImage:
    ref: ImageRef
    digest: str
    tags: list = field(default_factory=list)
    architectures: list = field(default_factory=list)  # empty when it could not be read
    pushed_at: Optional[str] = None

    @property
    def pinned(self) -> str:
        return self.ref.pinned(self.digest).uri


def resolve(aws: Aws, ref: ImageRef, read_architecture: bool = True) -> ResolvedImage:
    """DescribeImages for the tag or digest; a missing repository or image is a pre-flight failure.
    Once per image and run (a fleet of updates to one image resolves it once); a session kept
    longer resolves a tag again after RESOLVE_MAX_AGE seconds, as a tag may be pushed again."""
    return aws.memo(f"ecr:resolve {ref.uri} {read_architecture}", lambda: _resolve(aws, ref, read_architecture),
                    max_age=RESOLVE_MAX_AGE)


def _resolve(aws: Aws, ref: ImageRef, read_architecture: bool) -> ResolvedImage:
    try:
        return _lookup(aws, ref, read_architecture)
    except AuthError as exc:
        if ref.account == aws.account:
            raise
        # Another account's repository is readable only when its repository policy grants the caller
        # ("Private repository policy examples", Amazon ECR User Guide).
        raise AuthError(
            f"{exc.message} The repository is in account {ref.account}: its repository policy must allow you to read "
            "it.", f"Ask the owner of account {ref.account} to add to the repository policy of {ref.repository}: "
            + json.dumps({"Effect": "Allow", "Principal": {"AWS": aws.caller_arn},
                          "Action": ["ecr:DescribeImages", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                                     "ecr:GetRepositoryPolicy", "ecr:ListImages"]}),
            exc.action, exc.resource) from exc


def _lookup(aws: Aws, ref: ImageRef, read_architecture: bool) -> ResolvedImage:
    image_id = {"imageDigest": ref.digest} if ref.digest else {"imageTag": ref.tag or "latest"}
    if read_architecture:
        found = _manifest(aws, ref, image_id)  # one BatchGetImage says both the digest and the platform
        if found:
            digest, manifest = found
            return ResolvedImage(ref=ref, digest=digest, architectures=_architectures(aws, ref, manifest))
    try:
        out = aws.ecr.describe_images(registryId=ref.account, repositoryName=ref.repository, imageIds=[image_id])
    except AwsError as exc:
        if exc.code == "RepositoryNotFoundException":
            raise PreflightFailed(
                f"ECR repository '{ref.repository}' does not exist in account {ref.account}, region {ref.region}.",
                "Push the image first (`byoc build --push`) or check the repository name and region.") from exc
        if exc.code == "ImageNotFoundException":
            raise PreflightFailed(
                f"Image {ref.uri} not found in ECR.{_known_tags(aws, ref)}",
                "Push it first (`byoc build --push`) or fix the tag.") from exc
        raise
    detail = out["imageDetails"][0]
    return ResolvedImage(ref=ref, digest=detail["imageDigest"], tags=list(detail.get("imageTags") or []),
                         pushed_at=str(detail.get("imagePushedAt") or ""))


def _known_tags(aws: Aws, ref: ImageRef) -> str:
    try:
        out = aws.ecr.list_images(registryId=ref.account, repositoryName=ref.repository, maxResults=20,
                                  filter={"tagStatus": "TAGGED"})
    except AwsError:
        return ""
    tags = sorted({i["imageTag"] for i in out.get("imageIds", []) if i.get("imageTag")})
    return f" Tags in that repository: {', '.join(tags[:10])}." if tags else ""


def _manifest(aws: Aws, ref: ImageRef, image_id: dict) -> Optional[tuple]:
    """(digest, manifest) of one image by tag or digest, or None when it cannot be read (the caller
    then asks DescribeImages, whose errors say what is wrong)."""
    try:
        out = aws.ecr.batch_get_image(registryId=ref.account, repositoryName=ref.repository, imageIds=[image_id],
                                      acceptedMediaTypes=list(INDEX_TYPES + MANIFEST_TYPES))
        image = (out.get("images") or [None])[0]
        if not image or out.get("failures"):
            return None
        return image["imageId"]["imageDigest"], json.loads(image["imageManifest"])
    except (AwsError, ValueError, KeyError):
        return None


def _architectures(aws: Aws, ref: ImageRef, manifest: dict) -> list:
    """['amd64'], ['arm64'], both for a multi-platform index, or [] when unreadable."""
    if manifest.get("manifests"):
        return sorted({(m.get("platform") or {}).get("architecture", "") for m in manifest["manifests"]} - {"", "unknown"})
    config_digest = (manifest.get("config") or {}).get("digest")
    if not config_digest:
        return []
    try:
        url = aws.ecr.get_download_url_for_layer(registryId=ref.account, repositoryName=ref.repository,
                                                 layerDigest=config_digest)["downloadUrl"]
        config = json.loads(_fetch(url))
    except (AwsError, ValueError, KeyError, OSError):
        return []
    arch = config.get("architecture")
    return [arch] if arch else []


def _fetch(url: str) -> bytes:
    from urllib.request import urlopen

    with urlopen(url, timeout=20) as response:  # noqa: S310 - a presigned ECR layer URL
        return response.read(1_000_000)
