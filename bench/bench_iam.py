"""What --enforce-iam costs the sandbox per request, and how fast `byoc policy` is.

Figures: policy evaluations per second for byoc's own policy; `authorize()` latency for a user
holding it (moto lookup included) with 1 and 200 IAM users in the account; a sandbox round trip
(DescribeEndpoint) with enforcement off and on; `byoc policy` generation time.
Prints figures; asserts nothing about time (see HACKING.md). Run: python bench/bench_iam.py
"""

from __future__ import annotations

import json
import statistics
import time

from byoc.iam import policy
from byoc.sandbox import Sandbox, iam, seed
from byoc.sandbox.server import ACCOUNT

REGION = "us-east-1"


def per_call(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def round_trips(sm, n: int = 200) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        sm.describe_endpoint(EndpointName="infer-endpoint-a1b2c3d")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    scope = policy.make_scope(None, REGION, ACCOUNT)
    t_generate = per_call(lambda: policy.generate(policy.parse_features("all"), scope), 500)
    document = policy.generate(policy.parse_features("all"), scope).document
    print(f"byoc policy (all features, {len(document['Statement'])} statements): {t_generate * 1e3:.3f} ms to generate")

    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/infer-endpoint-a1b2c3d"
    t_eval = per_call(lambda: iam.evaluate([document], "sagemaker:UpdateEndpoint", arn), 20_000)
    t_miss = per_call(lambda: iam.evaluate([document], "sagemaker:DeleteModelCard", arn), 20_000)
    print(f"evaluate: {1 / t_eval:,.0f} allowed decisions/s, {1 / t_miss:,.0f} implicit denials/s")

    with Sandbox(time_scale=0.01) as sb:
        clients = seed.session(sb.url)
        seed.solution(clients, realtime_id=None)
        client = clients.client("iam")
        client.create_user(UserName="bench")
        client.put_user_policy(UserName="bench", PolicyName="byoc", PolicyDocument=json.dumps(document))
        key = client.create_access_key(UserName="bench")["AccessKey"]
        params = {"EndpointName": "infer-endpoint-a1b2c3d"}
        auth = lambda: iam.authorize("sagemaker", "DescribeEndpoint", params, key["AccessKeyId"], REGION, ACCOUNT)  # noqa: E731
        t_one = per_call(auth, 2_000)
        for i in range(199):
            client.create_user(UserName=f"filler{i}")
            client.create_access_key(UserName=f"filler{i}")
        t_many = per_call(auth, 500)
        print(f"authorize: {t_one * 1e6:.0f} us with 1 IAM user, {t_many * 1e6:.0f} us with 200 users")

        sm_root = clients.client("sagemaker")
        sm_user = seed.session(sb.url, access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"]).client(
            "sagemaker")
        off = round_trips(sm_root)
        sb.app.enforce_iam = True
        on = round_trips(sm_user)
        print(f"DescribeEndpoint round trip (median): {off * 1e3:.2f} ms without enforcement, "
              f"{on * 1e3:.2f} ms with --enforce-iam")


if __name__ == "__main__":
    main()
