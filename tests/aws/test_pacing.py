"""Pacing: an operation AWS throttles is sent at the rate AWS accepts it; other operations are not slowed."""

from __future__ import annotations

from byoc.aws.pacing import Pacer


class Bucket:
    """AWS's side: a token bucket of `rate` requests per second holding at most `rate` (the sandbox's)."""

    def __init__(self, rate: float) -> None:
        self.rate, self.tokens, self.at = rate, rate, 0.0

    def take(self, now: float) -> bool:
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def _send_for(pacer: Pacer, clock: Clock, bucket: Bucket, seconds: float, gap: float = 0.01) -> tuple:
    """A caller sending one operation back to back for `seconds`, each answer `gap` later: (accepted, throttled)."""
    accepted = throttled = 0
    while clock.now < seconds:
        pacer.before_send("sagemaker.ListTags")
        clock.now += gap
        if bucket.take(clock.now):
            accepted += 1
            pacer.accepted("sagemaker.ListTags")
        else:
            throttled += 1
            pacer.throttled("sagemaker.ListTags")
    return accepted, throttled


def test_a_throttled_operation_is_sent_at_the_rate_aws_accepts():
    clock = Clock()
    pacer = Pacer(clock=lambda: clock.now, sleep=clock.sleep)
    accepted, throttled = _send_for(pacer, clock, Bucket(10), 20.0)
    assert accepted >= 0.85 * (10 + 10 * 20)  # close to all the bucket allows ...
    assert throttled <= 0.1 * accepted  # ... with few refusals: each costs a retry and its backoff


def test_without_pacing_the_same_caller_is_refused_most_of_the_time():
    clock = Clock()
    pacer = Pacer(clock=lambda: clock.now, sleep=clock.sleep)
    pacer.throttled = lambda operation: None  # AWS's refusals ignored
    accepted, throttled = _send_for(pacer, clock, Bucket(10), 20.0)
    assert throttled > 5 * accepted


def test_an_operation_is_not_slowed_before_aws_throttles_it_nor_by_another_ones_limit():
    clock = Clock()
    pacer = Pacer(clock=lambda: clock.now, sleep=clock.sleep)
    for _ in range(100):
        pacer.before_send("sagemaker.DescribeEndpoint")
        pacer.accepted("sagemaker.DescribeEndpoint")
    assert clock.slept == 0
    pacer.throttled("sagemaker.AddTags")
    for _ in range(100):
        pacer.before_send("sagemaker.DescribeEndpoint")
    assert clock.slept == 0
    pacer.before_send("sagemaker.AddTags")
    pacer.before_send("sagemaker.AddTags")
    assert clock.slept > 0


def test_a_runs_threads_share_the_pace_aws_set(sandbox, sm, ecr):
    """Four threads reading tags under a 5 requests/s limit: once throttled, they queue for their turn
    (few refusals), and every call succeeds."""
    import threading

    from byoc.aws.client import Aws
    from support.sandbox import add_fault, control, endpoint

    endpoint(sm, ecr, "ep")
    arn = sm.describe_endpoint(EndpointName="ep")["EndpointArn"]
    add_fault(sandbox, service="sagemaker", operation="ListTags", throttle_rps=5)
    aws = Aws()
    errors: list = []

    def read() -> None:
        try:
            for _ in range(15):
                aws.sagemaker.list_tags(ResourceArn=arn)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    refused = control(sandbox, "GET", "/_sandbox/faults")[1]["throttled"]
    assert not errors and aws.calls["sagemaker:ListTags"] == 60
    assert 0 < refused <= 25, refused  # without the pacer's turns: 45 to 54
