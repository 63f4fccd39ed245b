"""byoc.observe.logs against the sandbox: merged reads, server-side filters, parallel streams,
follow without duplicates or gaps, and a missing log group explained."""

from __future__ import annotations

import threading
import time

import pytest

from byoc.aws.client import Aws
from byoc.observe import logs
from byoc.sandbox import seed

EP = "infer-endpoint-a1b2c3d"
GROUP = f"/aws/sagemaker/Endpoints/{EP}"
ROLE = "arn:aws:iam::123456789012:role/ESD-createEndpoint-Role"


@pytest.fixture
def aws(sandbox):
    return Aws(region="us-east-1")


@pytest.fixture
def cw(clients):
    c = clients.client("logs")
    c.create_log_group(logGroupName=GROUP)
    return c


def write(cw, stream, lines, start=None, step=1):
    """Put (timestamp, message) events into a stream, creating it as needed."""
    try:
        cw.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    except cw.exceptions.ResourceAlreadyExistsException:
        pass
    start = int(time.time() * 1000) if start is None else start
    events = [{"timestamp": start + n * step, "message": m} for n, m in enumerate(lines)]
    cw.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=events)
    return start


def test_read_merges_all_streams_in_time_order_and_names_each(aws, cw):
    t0 = int(time.time() * 1000) - 60_000
    write(cw, "prod/i-0aaa", ["a0", "a1", "a2"], start=t0, step=10)
    write(cw, "prod/i-0bbb", ["b0", "b1"], start=t0 + 5, step=10)
    write(cw, "canary/i-0ccc", ["c0"], start=t0 + 1)
    got = logs.read(aws, EP, start=t0 - 1)
    assert [e["message"] for e in got.events] == ["a0", "c0", "b0", "a1", "b1", "a2"]
    assert [e["logStreamName"] for e in got.events][:3] == ["prod/i-0aaa", "canary/i-0ccc", "prod/i-0bbb"]
    assert {s.name for s in got.streams} == {"prod/i-0aaa", "prod/i-0bbb", "canary/i-0ccc"}
    assert not got.truncated


def test_streams_are_read_in_parallel(aws, cw, monkeypatch):
    t0 = int(time.time() * 1000) - 10_000
    names = [f"prod/i-{n:04x}" for n in range(6)]
    for n, name in enumerate(names):
        write(cw, name, [f"line {n}"], start=t0 + n)
    in_flight, peak, lock = [0], [0], threading.Lock()
    real_call = aws.call

    def observed(client, method, params):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        try:
            time.sleep(0.02)  # long enough for the workers' calls to overlap
            return real_call(client, method, params)
        finally:
            with lock:
                in_flight[0] -= 1

    monkeypatch.setattr(aws, "call", observed)
    got = logs.read(aws, EP, start=t0)
    assert len(got.events) == 6
    assert peak[0] >= 3
    # Per stream: one page, then the same forward token back, which marks the end.
    assert aws.calls["logs:GetLogEvents"] == 12
    assert aws.calls["logs:FilterLogEvents"] == 0


def test_time_window_variant_and_instance_select_events(aws, cw):
    t0 = int(time.time() * 1000) - 100_000
    write(cw, "prod/i-0aaa", [f"p{n}" for n in range(10)], start=t0, step=1000)
    write(cw, "shadow/i-0ddd", ["s0"], start=t0 + 2500)
    window = logs.read(aws, EP, start=t0 + 2000, end=t0 + 4000)
    assert [e["message"] for e in window.events] == ["p2", "s0", "p3", "p4"]
    only_prod = logs.read(aws, EP, start=t0, variant="prod")
    assert {e["logStreamName"] for e in only_prod.events} == {"prod/i-0aaa"}
    one = logs.read(aws, EP, start=t0, instance="i-0ddd")
    assert [e["message"] for e in one.events] == ["s0"]


def test_grep_filters_server_side(aws, cw):
    t0 = int(time.time() * 1000) - 10_000
    write(cw, "prod/i-0aaa", ["GET /ping 200", "CUDA out of memory. Tried to allocate", "done"], start=t0)
    write(cw, "prod/i-0bbb", ["torch.cuda.OutOfMemoryError: CUDA out of memory."], start=t0 + 5)
    got = logs.read(aws, EP, start=t0, pattern='"CUDA out of memory"')
    assert [e["logStreamName"] for e in got.events] == ["prod/i-0aaa", "prod/i-0bbb"]
    assert aws.calls["logs:FilterLogEvents"] >= 1 and aws.calls["logs:GetLogEvents"] == 0


def test_max_events_caps_what_is_read(aws, cw):
    t0 = int(time.time() * 1000) - 10_000
    write(cw, "prod/i-0aaa", [f"l{n}" for n in range(50)], start=t0)
    got = logs.read(aws, EP, start=t0, max_events=20)
    assert got.truncated and len(got.events) >= 20


def test_filter_groups_split_stream_names_within_the_api_limit():
    names = [f"prod/i-{n}" for n in range(250)]
    groups = logs.stream_groups(names, workers=2)
    assert len(groups) == 3 and all(len(g) <= 100 for g in groups)
    assert sorted(n for g in groups for n in g) == sorted(names)
    assert logs.stream_groups(names[:5], workers=8) == [[n] for n in names[:5]]


def test_created_after_keeps_only_streams_of_the_latest_deployment(aws, cw):
    t0 = int(time.time() * 1000)
    write(cw, "prod/i-old", ["old fleet"], start=t0 - 5000)
    cut = int(time.time() * 1000) + 1
    time.sleep(0.01)
    write(cw, "prod/i-new", ["new fleet"], start=t0)
    got = logs.read(aws, EP, start=t0 - 10_000, created_after=cut)
    assert [e["message"] for e in got.events] == ["new fleet"]


def test_last_update_is_the_later_of_endpoint_and_config_creation():
    from datetime import datetime, timezone

    ep = {"CreationTime": datetime(2024, 5, 1, tzinfo=timezone.utc)}
    cfg = {"CreationTime": datetime(2024, 5, 2, tzinfo=timezone.utc)}
    assert logs.last_update_ms(ep, cfg) == 1_714_608_000_000
    assert logs.last_update_ms(ep) == 1_714_521_600_000
    assert logs.last_update_ms({}) is None


# -- follow ---------------------------------------------------------------------------------

def _follow(aws, since, stop, out, **kwargs):
    for event in logs.tail(aws, EP, since, stop, poll_seconds=0.05, **kwargs):
        out.append(event)


def test_follow_sees_lines_written_after_it_started_once_each(aws, cw):
    start = int(time.time() * 1000)
    write(cw, "prod/i-0aaa", ["before"], start=start - 5000)  # older than since: not shown
    stop, seen = threading.Event(), []
    reader = threading.Thread(target=_follow, args=(aws, start, stop, seen))
    reader.start()
    try:
        for n in range(5):
            write(cw, "prod/i-0aaa", [f"a{n}"])
            write(cw, "prod/i-0bbb", [f"b{n}"])
            time.sleep(0.08)
        # Ingested late: stamped before the newest events already seen, within the re-read window.
        write(cw, "prod/i-0ccc", ["late"], start=start + 1)
        deadline = time.time() + 5
        while len(seen) < 11 and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # more polls: nothing may repeat
    finally:
        stop.set()
        reader.join(timeout=5)
    messages = [e["message"] for e in seen]
    assert sorted(messages) == sorted([f"a{n}" for n in range(5)] + [f"b{n}" for n in range(5)] + ["late"])
    assert len(messages) == len(set(messages)) == 11
    assert not reader.is_alive()
    assert aws.calls["logs:FilterLogEvents"] > 3  # it kept polling


def test_follow_keeps_to_the_stream_prefixes_and_waits_for_the_group(aws, clients):
    stop, seen, waits = threading.Event(), [], []
    since = int(time.time() * 1000) - 1000
    reader = threading.Thread(target=_follow, args=(aws, since, stop, seen),
                              kwargs={"stream_prefixes": ["prod/i-0new"], "on_wait": waits.append})
    reader.start()
    try:
        deadline = time.time() + 5
        while not waits and time.time() < deadline:  # it polled and found no group yet
            time.sleep(0.02)
        cw = clients.client("logs")
        cw.create_log_group(logGroupName=GROUP)
        write(cw, "prod/i-0old", ["old fleet line"])
        write(cw, "prod/i-0new", ["new fleet line"])
        deadline = time.time() + 5
        while not seen and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        stop.set()
        reader.join(timeout=5)
    assert [e["message"] for e in seen] == ["new fleet line"]
    assert len(waits) == 1 and GROUP in waits[0]


class _Waits(threading.Event):
    """A stop event that records how long each poll waits (without waiting), and at some waits writes
    lines or stops."""

    def __init__(self, at: dict, stop_after: int) -> None:
        super().__init__()
        self.seconds: list = []
        self.at, self.stop_after = at, stop_after

    def wait(self, timeout=None):
        self.seconds.append(timeout)
        if len(self.seconds) in self.at:
            self.at[len(self.seconds)]()
        if len(self.seconds) >= self.stop_after:
            self.set()
        return self.is_set()


def test_a_quiet_follow_polls_less_and_less_then_quickly_again_once_lines_come(aws, cw):
    since = int(time.time() * 1000)
    waits = _Waits({6: lambda: write(cw, "prod/i-0new", ["container started"])}, stop_after=9)
    seen = [e["message"] for e in logs.tail(aws, EP, since, waits, poll_seconds=2.0, quiet_max=16.0)]
    assert seen == ["container started"]
    # Nothing for the first six polls (a fleet provisioning): 4, 8, 16, 16 ... then the line, then 2 s again.
    assert waits.seconds == [4.0, 8.0, 16.0, 16.0, 16.0, 16.0, 2.0, 4.0, 8.0]
    assert aws.calls["logs:FilterLogEvents"] == 9


def test_byoc_logs_follow_keeps_its_pace(aws, cw):
    waits = _Waits({}, stop_after=4)
    assert list(logs.tail(aws, EP, int(time.time() * 1000), waits, poll_seconds=2.0)) == []
    assert waits.seconds == [2.0] * 4


# -- a missing log group is explained ---------------------------------------------------------

def test_missing_group_of_an_unknown_endpoint(aws):
    with pytest.raises(logs.LogGroupMissing) as info:
        logs.read(aws, "no-such-endpoint", start=0)
    assert "does not exist" in info.value.message and "byoc endpoints" in info.value.fix


def test_missing_group_of_an_endpoint_whose_image_could_not_be_pulled(aws, sm, ecr):
    image, _ = seed.push_image(ecr, "sd", "v1", "healthy")
    sm.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})
    ecr.batch_delete_image(repositoryName="sd", imageIds=[{"imageTag": "v1"}])  # gone before the deployment
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
        {"VariantName": "prod", "ModelName": "m", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="ep-nopull", EndpointConfigName="c")
    assert seed.wait_status(sm, "ep-nopull")["EndpointStatus"] == "Failed"
    with pytest.raises(logs.LogGroupMissing) as info:
        logs.read(aws, "ep-nopull", start=0)
    assert "Failed" in info.value.message and "Please make sure all images" in info.value.message
    assert "byoc diagnose ep-nopull" in info.value.fix
    assert info.value.exit_code == 2


def test_missing_group_while_the_endpoint_is_still_creating(aws, sm, ecr, sandbox):
    sandbox.app.clock.time_scale = 20.0  # provisioning takes ~36 s: the group cannot exist yet, even on a loaded machine
    image, _ = seed.push_image(ecr, "sd", "v1", "healthy")
    sm.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
        {"VariantName": "prod", "ModelName": "m", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="ep-new", EndpointConfigName="c")
    with pytest.raises(logs.LogGroupMissing) as info:
        logs.read(aws, "ep-new", start=0)
    assert "Creating" in info.value.message and "--follow" in info.value.fix


def test_endpoint_names_are_checked_before_any_call(aws):
    with pytest.raises(logs.BadInput):
        logs.require_endpoint_name("bad_name!")
    assert logs.require_endpoint_name("infer-endpoint-a1b2c3d") == "infer-endpoint-a1b2c3d"
    assert sum(aws.calls.values()) == 0
