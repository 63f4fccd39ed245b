"""List endpoints with what matters for byoc: status, kind, instances, image, solution generation."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional, Tuple

from byoc.aws.client import Aws
from byoc.endpoint import revisions, solution
from byoc.endpoint import view as endpoint_view
from byoc.errors import AuthError, AwsError, BadInput
from byoc.images import ref as image_ref

READ_WORKERS = 8  # Describe* calls in flight at once, well inside SageMaker's per-account rate limits


@dataclass
class EndpointSummary:
    name: str
    status: str
    kind: str  # "async" | "real-time" | "serverless"
    instance_type: Optional[str]
    instances: Optional[int]
    image: Optional[str]
    digest: Optional[str]
    config: str
    solution: Optional[dict] = None  # the solution generation that made it (endpoint/solution.py)
    variants: list = field(default_factory=list)  # per variant: name, instance_type, instances, image, digest
    given_image: Optional[str] = None  # the URI as the user gave it to byoc (its tag kept)

    @property
    def image_short(self) -> str:
        return short_image(self.given_image or self.image, self.digest)

    @property
    def solution_label(self) -> str:
        return self.solution["label"] if self.solution else "-"

    def to_dict(self) -> dict:
        return asdict(self)


def short_image(image: Optional[str], digest: Optional[str] = None) -> str:
    """repository[:tag] (short digest) of an image URI, without its registry host."""
    ref = image_ref.try_parse(image or "")
    name = ref.repository + (f":{ref.tag}" if ref.tag else "") if ref else (image or "-")
    return name + (f" ({digest[7:19]})" if digest else "")


def summarize(view: endpoint_view.EndpointView, given_image: Optional[str] = None) -> EndpointSummary:
    variants = view.variants
    first = variants[0] if variants else None
    return EndpointSummary(
        name=view.name,
        status=view.status,
        kind=view.kind,
        instance_type=first.instance_type if first else None,
        instances=sum(v.current_instances or 0 for v in variants) if variants else None,
        image=first.image if first else None,
        digest=first.digest if first else None,
        config=view.config_name,
        solution=_solution(view),
        variants=[{"name": v.name, "instance_type": v.instance_type, "serverless": v.serverless,
                   "instances": v.current_instances, "image": v.image, "digest": v.digest} for v in variants],
        given_image=given_image,
    )


def _solution(view: endpoint_view.EndpointView) -> Optional[dict]:
    sol = solution.of_view(view)
    return sol.to_dict() if sol else None


@dataclass
class Readable:
    """What could be read of some endpoints, in their order, and the names the caller may not read."""

    items: list
    skipped: list = field(default_factory=list)


def each_readable(aws: Aws, names: list, read: Callable) -> Readable:
    """`read(aws, name)` for every endpoint, a few at a time. An endpoint the caller's policy may not
    read (a `byoc policy` scoped to other names) is skipped, not fatal, unless it may read none of them
    (then its first denial is raised: the policy lacks the action); one deleted meanwhile is left out."""
    denied: list = []

    def one(name: str) -> Tuple[Any, Optional[str]]:
        try:
            return read(aws, name), None
        except AuthError as exc:
            if not exc.action:  # credentials, not a policy: nothing else will be readable either
                raise
            denied.append(exc)
            return None, name
        except (AwsError, BadInput) as exc:
            cause = exc if isinstance(exc, AwsError) else exc.__cause__  # view.describe_endpoint's "does not exist"
            if isinstance(cause, AwsError) and cause.not_found:
                return None, None
            raise

    with ThreadPoolExecutor(max_workers=max(1, min(READ_WORKERS, len(names) or 1))) as pool:
        results = list(pool.map(one, names))
    if denied and not any(r is not None for r, _ in results):
        raise denied[0]
    return Readable([r for r, _ in results if r is not None], [s for _, s in results if s])


def names_starting(aws: Aws, prefix: str) -> list:
    """Names of the region's endpoints that start with `prefix`, from one ListEndpoints call (shell
    completion: the first 100 by name, never more calls)."""
    params = {"MaxResults": 100, "SortBy": "Name", "SortOrder": "Ascending"}
    if prefix:
        params["NameContains"] = prefix
    page = aws.sagemaker.list_endpoints(**params)
    return [e["EndpointName"] for e in page.get("Endpoints", []) if e["EndpointName"].startswith(prefix)]


def list_endpoints(aws: Aws, name_contains: Optional[str] = None) -> Readable:
    """Every endpoint of the region (or those whose name contains the text) that the caller may read."""
    params = {"SortBy": "Name", "SortOrder": "Ascending"}
    if name_contains:
        params["NameContains"] = name_contains
    names = [e["EndpointName"] for page in aws.sagemaker.paginate("list_endpoints", **params)
             for e in page.get("Endpoints", [])]
    return each_readable(aws, names, lambda a, n: _summary(a, endpoint_view.load(a, n)))


def _summary(aws: Aws, view: endpoint_view.EndpointView) -> EndpointSummary:
    return summarize(view, revisions.given_image(aws, view))
