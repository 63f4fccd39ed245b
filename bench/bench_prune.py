"""What `byoc prune` costs in AWS calls against what a scan of the region would.

Seeds N solution endpoints (v1.7 naming) with R byoc revisions each, deletes half of them the way
v1.6+ does (endpoint, then the config and model named like it), and plans a prune. Prints the
calls the plan made (one tag query, ListEndpoints, what the endpoints use) beside the calls a scan
would make (ListModels + ListEndpointConfigs pages, then DescribeX + ListTags per resource).
Prints figures; asserts nothing about time (see HACKING.md). Run: python bench/bench_prune.py
"""

from __future__ import annotations

import os
import time

from byoc.aws.client import Aws
from byoc.deploy.prune import plan_prune
from byoc.sandbox import Sandbox, seed

N, R = 6, 2
REGION = "us-east-1"


def main() -> None:
    with Sandbox(time_scale=0.05) as sb:
        os.environ.update(sb.env(REGION))
        clients = seed.session(sb.url, REGION)
        sm, ecr = clients.client("sagemaker"), clients.client("ecr")
        images = [seed.push_image(ecr, "my-sd-webui", f"v{r}")[0] for r in range(R)]
        endpoints = []
        for i in range(N):
            endpoints += seed.solution(clients, generation="v1.6", endpoint_id=f"e{i:06d}", realtime_id=None)["endpoints"]
        aws = Aws(region=REGION)
        from byoc.api import update

        for ep in endpoints:
            for image in images:
                update(ep, image, aws=aws, keep=10)
        for ep in endpoints[: N // 2]:
            sm.delete_endpoint(EndpointName=ep)
            while any(e["EndpointName"] == ep for e in sm.list_endpoints()["Endpoints"]):
                time.sleep(0.05)
            sm.delete_endpoint_config(EndpointConfigName=ep)
            sm.delete_model(ModelName=ep)
        planner = Aws(region=REGION)
        start = time.perf_counter()
        plan = plan_prune(planner, keep=5)
        took = time.perf_counter() - start
        models = len(sm.list_models(MaxResults=100)["Models"])
        configs = len(sm.list_endpoint_configs(MaxResults=100)["EndpointConfigs"])
        print(f"{N} endpoints x {R} revisions, {N // 2} deleted by the solution: {models} models, {configs} configs")
        print(f"prune plan: {sum(len(d.names) for d in plan.deletions)} resources to delete, "
              f"{sum(planner.calls.values())} calls in {took:.2f} s: {dict(sorted(planner.calls.items()))}")
        print(f"a scan would make at least {2 + 2 * (models + configs)} calls "
              f"(2 list pages, Describe + ListTags per resource)")


if __name__ == "__main__":
    main()
