"""ECR image URIs: parsing, validation against a region's partition, digest pinning.

Format (Amazon ECR User Guide, "Private registry" and "Pulling an image"):
  <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]/<repository>[:<tag> | @sha256:<hex>]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Optional

from byoc.aws import partitions
from byoc.errors import BadInput

_URI_RE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(?P<fips>-fips)?\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\."
    r"(?P<domain>amazonaws\.com(?:\.cn)?|c2s\.ic\.gov|sc2s\.sgov\.gov)/"
    r"(?P<repo>[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)


@dataclass(frozen=True)
class ImageRef:
    account: str
    region: str
    domain: str
    repository: str
    tag: Optional[str] = None
    digest: Optional[str] = None
    fips: bool = False

    @property
    def registry(self) -> str:
        return f"{self.account}.dkr.ecr{'-fips' if self.fips else ''}.{self.region}.{self.domain}"

    @property
    def uri(self) -> str:
        ref = f"{self.registry}/{self.repository}"
        if self.tag:
            ref += f":{self.tag}"
        if self.digest:
            ref += f"@{self.digest}"
        return ref

    def pinned(self, digest: str) -> ImageRef:
        """The same image addressed by digest only, so a later push to the tag changes nothing."""
        return replace(self, tag=None, digest=digest)

    def __str__(self) -> str:
        return self.uri


def parse(uri: str) -> ImageRef:
    """Parse an ECR image URI or raise BadInput saying what is wrong."""
    text = (uri or "").strip()
    m = _URI_RE.match(text)
    if not m:
        hint = ""
        if " " in text:
            hint = " It contains a space."
        elif "/" not in text:
            hint = " It has no repository part."
        raise BadInput(
            f"'{uri}' is not an ECR image URI.{hint}",
            "Use <account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>[:tag|@sha256:digest].",
        )
    return ImageRef(
        account=m["account"],
        region=m["region"],
        domain=m["domain"],
        repository=m["repo"],
        tag=m["tag"],
        digest=m["digest"],
        fips=bool(m["fips"]),
    )


def try_parse(uri: str) -> Optional[ImageRef]:
    try:
        return parse(uri)
    except BadInput:
        return None


def check_region(ref: ImageRef, region: str) -> None:
    """SageMaker pulls only from ECR in the endpoint's own region, on the partition's domain."""
    if ref.region != region:
        raise BadInput(
            f"The image is in {ref.region} but the endpoint is in {region}; SageMaker pulls only from ECR in the endpoint's region.",
            f"Push the image to {ref.account}.dkr.ecr.{region}.{partitions.for_region(region).dns_suffix}/{ref.repository} (or replicate the repository).",
        )
    expected = partitions.for_region(region).dns_suffix
    if ref.domain != expected:
        raise BadInput(
            f"The image domain '{ref.domain}' does not fit region {region}, whose ECR domain is '{expected}'.",
            f"Use {ref.account}.dkr.ecr.{region}.{expected}/{ref.repository}.",
        )


def registry_uri(account: str, region: str, repository: str, tag: Optional[str] = None) -> str:
    """Build a URI in `region`'s partition (China regions use amazonaws.com.cn)."""
    suffix = partitions.for_region(region).dns_suffix
    uri = f"{account}.dkr.ecr.{region}.{suffix}/{repository}"
    return f"{uri}:{tag}" if tag else uri


_GPU_BUILT = re.compile(r"(cuda|cudnn|[-_.:]cu\d{2,3}|[-_.:]gpu)", re.IGNORECASE)


def looks_gpu_built(uri: str) -> bool:
    """True when an image's repository or tag names CUDA or a GPU build (the Deep Learning
    Containers' "-gpu-py311-cu124" tags, "pytorch-cuda", "sd-webui:cu121" ...)."""
    named = uri.split("@", 1)[0]
    return bool(_GPU_BUILT.search(named.split("/", 1)[-1]))
