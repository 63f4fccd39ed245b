"""Pre-flight for a new instance type: it exists for hosting in the region, fits the image's
architecture, keeps a GPU when the variant has one, and the variant may take it.

The region's offer is read from the account's own Service Quotas: SageMaker has one
"<type> for endpoint usage" quota per instance type it hosts in a region ("Amazon SageMaker AI
endpoints and quotas", General Reference), so a type without one is not offered there. Room for
the new fleet is capacity.check's job (the quota's value); SageMaker's synchronous
ResourceLimitExceeded on UpdateEndpoint is the backstop.
"""

from __future__ import annotations

from typing import Optional

from byoc import instances
from byoc.deploy.changes import Changes
from byoc.endpoint.view import EndpointView
from byoc.errors import BadInput, PreflightFailed
from byoc.images import ref as image_ref


def new_types(view: EndpointView, changes: Optional[Changes]) -> dict:
    """{variant: (current type, new type)} for the variants whose instance type changes."""
    if not changes or not changes.instance_types:
        return {}
    variants = {v.name: v for v in view.variants}
    named = {name for name, _ in changes.instance_types if name}
    unknown = sorted(named - set(variants))
    if unknown:
        raise BadInput(f"Endpoint {view.name} has no variant {', '.join(unknown)} (variants: {', '.join(variants)}).",
                       "Name one of its variants: --instance-type VARIANT=TYPE.")
    if not named and len(variants) > 1:
        raise BadInput(f"Endpoint {view.name} has {len(variants)} variants ({', '.join(variants)}); "
                       "--instance-type TYPE would change them all.",
                       "Name the variant: --instance-type VARIANT=TYPE (repeat it for each).")
    out = {}
    for name, v in variants.items():
        wanted = changes.instance_type(name)
        if not wanted or wanted == v.instance_type:
            continue
        if v.serverless:
            raise BadInput(f"Variant {name} of {view.name} is serverless; it has no instance type to change.",
                           "Drop --instance-type for it (serverless memory and concurrency are kept as they are).")
        out[name] = (v.instance_type, wanted)
    return out


def check(view: EndpointView, types: dict, image: str, architectures: list, limits: dict, region: str) -> list:
    """Refuse a type SageMaker cannot run the image on; return warnings."""
    warnings = []
    for name, (old, new) in types.items():
        if limits and new not in limits:
            raise PreflightFailed(
                f"{new} is not offered for SageMaker hosting in {region}: Service Quotas lists no "
                f"'{new} for endpoint usage' quota there.",
                f"Pick a type listed by `aws service-quotas list-service-quotas --service-code sagemaker --region "
                f"{region} --query \"Quotas[?ends_with(QuotaName, 'for endpoint usage')].QuotaName\"`.")
        needed = instances.architecture(new)
        if architectures and needed not in architectures:
            platform = f"linux/{needed}"
            raise PreflightFailed(
                f"Image {image} is built for {', '.join(architectures)} but {new} (the new type of variant {name}) "
                f"is {needed}; it would fail with 'exec format error'.",
                f"Rebuild it with `byoc build --platform {platform} --push`, or keep an {', '.join(architectures)} type.")
        if instances.has_gpu(old) and not instances.has_gpu(new):
            raise PreflightFailed(
                f"Variant {name} runs on {old}, which has an NVIDIA GPU; {new} has none, so a GPU image would fall "
                "back to the CPU or fail to start.",
                f"Pick a GPU type (ml.g5, ml.g6, ml.g6e, ml.p4d ... e.g. {instances.family(old)}.2xlarge).")
        if not instances.has_gpu(new) and image_ref.looks_gpu_built(image):
            warnings.append(f"{image} looks built for CUDA (its name says so) but {new} has no GPU.")
    return warnings
