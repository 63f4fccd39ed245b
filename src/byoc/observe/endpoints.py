"""List endpoints with what matters for byoc: status, kind, instances, image, solution generation."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from byoc.endpoint import solution
from byoc.endpoint import view as endpoint_view
from byoc.images import ref as image_ref


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

    @property
    def image_short(self) -> str:
        ref = image_ref.try_parse(self.image or "")
        name = ref.repository + (f":{ref.tag}" if ref.tag else "") if ref else (self.image or "-")
        if self.digest:
            name += f" ({self.digest[7:19]})"
        return name

    @property
    def solution_label(self) -> str:
        return self.solution["label"] if self.solution else "-"

    def to_dict(self) -> dict:
        return asdict(self)


def summarize(view: endpoint_view.EndpointView) -> EndpointSummary:
    variants = view.variants
    first = variants[0] if variants else None
    kind = "async" if view.is_async else ("serverless" if first and first.serverless else "real-time")
    return EndpointSummary(
        name=view.name,
        status=view.status,
        kind=kind,
        instance_type=first.instance_type if first else None,
        instances=sum(v.current_instances or 0 for v in variants) if variants else None,
        image=first.image if first else None,
        digest=first.digest if first else None,
        config=view.config_name,
        solution=_solution(view),
    )


def _solution(view: endpoint_view.EndpointView) -> Optional[dict]:
    sol = solution.of_view(view)
    return sol.to_dict() if sol else None


def list_endpoints(aws, name_contains: Optional[str] = None) -> list:
    params = {"SortBy": "Name", "SortOrder": "Ascending"}
    if name_contains:
        params["NameContains"] = name_contains
    names = [e["EndpointName"] for page in aws.sagemaker.paginate("list_endpoints", **params)
             for e in page.get("Endpoints", [])]
    return [summarize(v) for v in endpoint_view.load_many(aws, names)]
