"""An endpoint's CloudWatch log events: listing streams, reading them in parallel, following.

SageMaker writes each instance's container output to group /aws/sagemaker/Endpoints/<endpoint>,
stream <variant>/<instance-id> ("Log Amazon SageMaker AI Events with Amazon CloudWatch").
Whole streams are read with GetLogEvents, one stream per worker; a filter pattern is applied
server-side with FilterLogEvents, the streams split across workers (at most 100 names a call).
Both return events in timestamp order per stream; `merge` interleaves the streams.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from byoc import redaction, timespec
from byoc.aws.client import Aws
from byoc.endpoint import view as endpoint_view
from byoc.endpoint.view import require_endpoint_name
from byoc.errors import AwsError, BadInput

GROUP_PREFIX = "/aws/sagemaker/Endpoints/"
MAX_STREAM_NAMES = 100  # FilterLogEvents logStreamNames
# DescribeLogStreams' lastEventTimestamp "updates on an eventual consistency basis ... typically
# in less than an hour": streams whose last event looks older than --since by less are still read.
LAST_EVENT_SLACK_MS = 2 * 3600 * 1000
# How far behind the newest event `tail` re-reads, for events CloudWatch ingests late.
FOLLOW_LAG_MS = 60_000
DEFAULT_SINCE_MS = 3600 * 1000  # `byoc logs` without --since or --last-update: the last hour
FILTER_SYNTAX_URL = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html"


def log_group(endpoint: str) -> str:
    return GROUP_PREFIX + endpoint


@dataclass(frozen=True)
class Stream:
    name: str
    created: int  # ms
    last_event: Optional[int] = None  # ms, eventually consistent

    @property
    def variant(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def instance(self) -> str:
        parts = self.name.split("/")
        return parts[1] if len(parts) > 1 else ""


@dataclass
class LogRead:
    """Events of one read, merged in time order, and what was read."""

    group: str
    events: List[dict]
    streams: List[Stream]
    start: Optional[int]
    end: Optional[int]
    truncated: bool = False


class LogGroupMissing(BadInput):
    """The endpoint has no log group: none of its containers has written a line yet."""


def list_streams(aws: Aws, endpoint: str, since: Optional[int] = None,
                 variant: Optional[str] = None, instance: Optional[str] = None,
                 created_after: Optional[int] = None) -> List[Stream]:
    """The endpoint's streams that may hold events from `since` on, newest activity first."""
    group = log_group(endpoint)
    out: List[Stream] = []
    try:
        pages = aws.logs.paginate("describe_log_streams", logGroupName=group,
                                  orderBy="LastEventTime", descending=True)
        for page in pages:
            stop = False
            for raw in page.get("logStreams", []):
                s = Stream(raw["logStreamName"], int(raw.get("creationTime") or 0), raw.get("lastEventTimestamp"))
                if since is not None and s.last_event is not None and s.last_event < since - LAST_EVENT_SLACK_MS:
                    stop = True  # ordered by last event: every later stream is older still
                    break
                if variant and s.variant != variant:
                    continue
                if instance and s.instance != instance:
                    continue
                if created_after is not None and s.created < created_after:
                    continue
                out.append(s)
            if stop:
                break
    except AwsError as exc:
        if exc.not_found:
            raise missing_group_error(aws, endpoint) from exc
        raise
    return out


def missing_group_error(aws: Aws, endpoint: str) -> LogGroupMissing:
    """Why an endpoint may have no log group, from its status."""
    group = log_group(endpoint)
    head = f"No logs for '{endpoint}': log group {group} does not exist, so none of its containers has started"
    try:
        ep = aws.sagemaker.describe_endpoint(EndpointName=endpoint)
    except AwsError as exc:
        if exc.not_found:
            return LogGroupMissing(f"{head}; the endpoint does not exist in {aws.region}.",
                                   "List endpoints with `byoc endpoints` (and check --region).")
        raise
    status = ep.get("EndpointStatus", "")
    reason = ep.get("FailureReason")
    if status in ("Creating", "Updating", "SystemUpdating"):
        return LogGroupMissing(f"{head} yet; the endpoint is {status} and its instances are still being provisioned.",
                               f"Wait, or watch with `byoc logs {endpoint} --follow`.")
    if reason:
        return LogGroupMissing(f"{head}; it is {status}: {reason}",
                               f"Run `byoc diagnose {endpoint}` for the likely cause and fix.")
    return LogGroupMissing(
        f"{head}; it is {status}: its execution role may lack logs:CreateLogStream and logs:PutLogEvents.",
        "Grant the model's execution role logs:CreateLogGroup, logs:CreateLogStream, logs:PutLogEvents "
        "(AmazonSageMakerFullAccess has them), then run `byoc diagnose " + endpoint + "`.")


def _with_stream(events: Sequence[dict], stream: str) -> List[dict]:
    for e in events:
        e.setdefault("logStreamName", stream)
    return _redacted(events)


def _redacted(events: Sequence[dict]) -> List[dict]:
    """The container wrote these lines: secret-looking values are masked before anything shows them."""
    for e in events:
        if e.get("message"):
            e["message"] = redaction.text(e["message"])
    return list(events)


def _read_stream(aws: Aws, group: str, stream: str, start: Optional[int], end: Optional[int],
                 budget: _Budget) -> List[dict]:
    """All events of one stream in [start, end], oldest first (GetLogEvents, forward tokens)."""
    params = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
    if start is not None:
        params["startTime"] = start
    if end is not None:
        params["endTime"] = end
    out: List[dict] = []
    token = None
    while budget.left():
        page = aws.logs.get_log_events(**params, **({"nextToken": token} if token else {}))
        events = page.get("events", [])
        out.extend(_with_stream(events, stream))
        budget.take(len(events))
        nxt = page.get("nextForwardToken")
        if not nxt or nxt == token:  # the same token back means the end of the stream
            break
        token = nxt
    return out


def _filter(aws: Aws, group: str, streams: Optional[List[str]], prefix: Optional[str], start: Optional[int],
            end: Optional[int], pattern: Optional[str], budget: _Budget) -> List[dict]:
    """FilterLogEvents over some streams (or a name prefix, or the whole group), every page."""
    params: dict = {"logGroupName": group}
    if streams:
        params["logStreamNames"] = streams
    elif prefix:
        params["logStreamNamePrefix"] = prefix
    if start is not None:
        params["startTime"] = start
    if end is not None:
        params["endTime"] = end
    if pattern:
        params["filterPattern"] = pattern
    out: List[dict] = []
    try:
        for page in aws.logs.paginate("filter_log_events", **params):
            events = page.get("events", [])
            if prefix:  # CloudWatch applies the prefix; this keeps servers that ignore it exact too
                events = [e for e in events if e.get("logStreamName", "").startswith(prefix)]
            out.extend(_redacted(events))
            budget.take(len(events))
            if not budget.left():
                break
    except AwsError as exc:
        if exc.code == "InvalidParameterException" and pattern and "pattern" in exc.aws_message.lower():
            raise BadInput(f"--grep '{pattern}' is not a CloudWatch Logs filter pattern: {exc.aws_message}",
                           f"Quote terms with spaces (\"CUDA out of memory\"), see {FILTER_SYNTAX_URL}.") from exc
        raise
    return out


class _Budget:
    """A shared cap on events read by all workers (None: no cap)."""

    def __init__(self, limit: Optional[int]) -> None:
        self.limit = limit
        self.count = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        with self._lock:
            self.count += n

    def left(self) -> bool:
        return self.limit is None or self.count < self.limit


def merge(batches: Sequence[List[dict]]) -> List[dict]:
    """Interleave per-stream event lists by time (stable for equal timestamps)."""
    events = [e for batch in batches for e in batch]
    events.sort(key=lambda e: (e.get("timestamp", 0), e.get("logStreamName", "")))
    return events


def stream_groups(names: List[str], workers: int) -> List[List[str]]:
    """Split stream names across workers, at most MAX_STREAM_NAMES per FilterLogEvents call."""
    n = max(1, min(workers, len(names)), -(-len(names) // MAX_STREAM_NAMES))
    return [g for g in (names[i::n] for i in range(n)) if g]


def read(aws: Aws, endpoint: str, start: Optional[int] = None, end: Optional[int] = None,
         pattern: Optional[str] = None, streams: Optional[List[Stream]] = None,
         variant: Optional[str] = None, instance: Optional[str] = None,
         created_after: Optional[int] = None, max_events: Optional[int] = None,
         workers: int = 8) -> LogRead:
    """The endpoint's events in [start, end] from all (or the selected) streams, merged in time order.

    `pattern` is a CloudWatch Logs filter pattern applied server-side ("" reads with FilterLogEvents
    too, unfiltered: one call for up to 100 streams). `max_events` caps what is
    read (oldest first per stream); `truncated` says when the cap was reached.
    """
    group = log_group(endpoint)
    if streams is None:
        streams = list_streams(aws, endpoint, start, variant, instance, created_after)
    budget = _Budget(max_events)
    if not streams:
        return LogRead(group, [], [], start, end)
    names = [s.name for s in streams]
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(names)))) as pool:
        if pattern is not None:
            jobs = [pool.submit(_filter, aws, group, g, None, start, end, pattern, budget)
                    for g in stream_groups(names, workers)]
        else:
            jobs = [pool.submit(_read_stream, aws, group, name, start, end, budget) for name in names]
        batches = [j.result() for j in jobs]
    events = merge(batches)
    truncated = max_events is not None and len(events) >= max_events
    return LogRead(group, events, streams, start, end, truncated)


def last_update_ms(endpoint: dict, config: Optional[dict] = None) -> Optional[int]:
    """When the deployment that made the current fleet began: when SageMaker resolved the live
    images (DeployedImages[].ResolutionTime, API_DescribeEndpoint), else the later of the endpoint's
    and its current config's creation (a rollback reuses an old config, so that is only a fallback)."""
    resolved = [epoch_ms(i.get("ResolutionTime")) for v in endpoint.get("ProductionVariants") or []
                for i in v.get("DeployedImages") or []]
    known_resolved = [t for t in resolved if t is not None]
    if known_resolved:
        return max(known_resolved)
    times = [epoch_ms(endpoint.get("CreationTime")), epoch_ms((config or {}).get("CreationTime"))]
    known = [t for t in times if t is not None]
    return max(known) if known else None


def epoch_ms(value: Union[int, float, str, None]) -> Optional[int]:
    """Milliseconds since the epoch of a boto3 datetime (or epoch seconds)."""
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return int(value.timestamp() * 1000)
    return int(float(value) * 1000)


def tail(aws: Aws, endpoint: str, since_ms: int, stop_event: threading.Event,
         stream_prefixes: Optional[Sequence[str]] = None, pattern: Optional[str] = None,
         poll_seconds: float = 2.0, lag_ms: int = FOLLOW_LAG_MS,
         on_wait: Optional[Callable[[str], None]] = None, quiet_max: Optional[float] = None) -> Iterator[dict]:
    """Yield the endpoint's events from `since_ms` on, as they arrive, until `stop_event` is set.

    Each poll re-reads the last `lag_ms` before the newest event seen, so events CloudWatch
    ingests late still appear (no gaps); events already yielded are skipped by
    (stream, eventId) (no duplicates). A missing log group is waited for (`on_wait` is told once).
    Polls come every `poll_seconds`; with `quiet_max`, each poll that found nothing new doubles the
    wait up to `quiet_max` (a new fleet provisions for minutes before its first line: a fixed 2 s
    would cost one FilterLogEvents per 2 s of it, against a quota of 5 to 25 per second per account).
    """
    group = log_group(endpoint)
    prefixes: List[Optional[str]] = [*stream_prefixes] if stream_prefixes else [None]
    seen: Dict[Tuple[str, str], int] = {}
    newest = since_ms
    told = False
    wait = poll_seconds
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(prefixes)))) as pool:
        while not stop_event.is_set():
            fresh = False
            start = max(since_ms, newest - lag_ms)
            try:
                jobs = [pool.submit(_filter, aws, group, None, p, start, None, pattern, _Budget(None))
                        for p in prefixes]
                batch = merge([j.result() for j in jobs])
            except AwsError as exc:
                if not exc.not_found:
                    raise
                batch = []
                if on_wait and not told:
                    on_wait(f"waiting for log group {group} (no container has written a line yet)")
                    told = True
            for event in batch:
                key = (event.get("logStreamName", ""), str(event.get("eventId") or _identity(event)))
                if key in seen:
                    continue
                ts = int(event.get("timestamp") or 0)
                seen[key] = ts
                newest = max(newest, ts)
                fresh = True
                yield event
                if stop_event.is_set():
                    return
            horizon = max(since_ms, newest - lag_ms)
            for key in [k for k, ts in seen.items() if ts < horizon]:
                del seen[key]  # the next poll starts after them: they cannot come back
            wait = poll_seconds if fresh or quiet_max is None else min(quiet_max, wait * 2)
            stop_event.wait(wait)


def _identity(event: dict) -> str:
    return f"{event.get('timestamp')}:{event.get('ingestionTime')}:{event.get('message')}"



@dataclass
class Selection:
    """What `byoc logs` reads: a time window and which streams."""

    start: Optional[int]
    end: Optional[int]
    variant: Optional[str] = None
    instance: Optional[str] = None
    created_after: Optional[int] = None  # --last-update: streams of instances started since then


def select(aws: Aws, endpoint: str, since: Optional[str] = None, until: Optional[str] = None,
           variant: Optional[str] = None, instance: Optional[str] = None, last_update: bool = False,
           follow: bool = False, now: Optional[int] = None) -> Selection:
    """Check the options and resolve them to a Selection (--last-update reads the endpoint)."""
    require_endpoint_name(endpoint)
    if follow and until:
        raise BadInput("--until cannot be used with --follow.",
                       "Drop --until to follow new lines, or drop --follow to read a closed window.")
    now = timespec.now_ms() if now is None else now
    default = now - DEFAULT_SINCE_MS
    created_after = None
    if last_update:
        described = endpoint_view.describe_endpoint(aws, endpoint)
        config = aws.sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        created_after = last_update_ms(described, config)
        default = created_after if created_after is not None else default
    if variant:
        check_variant(aws, endpoint, variant)
    start, end = timespec.window(since, until, default_since=default, now=now)
    return Selection(start, end, variant, instance, created_after)


def check_variant(aws: Aws, endpoint: str, variant: str) -> None:
    """BadInput when the endpoint exists and has no such variant (a deleted endpoint's logs stay readable)."""
    try:
        described = aws.sagemaker.describe_endpoint(EndpointName=endpoint)
        config = aws.sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    except AwsError:
        return
    names = [v["VariantName"] for key in ("ProductionVariants", "ShadowProductionVariants")
             for v in config.get(key) or []]
    if names and variant not in names:
        raise BadInput(f"Endpoint {endpoint} has no variant '{variant}' (its variants: {', '.join(names)}).",
                       f"Pass --variant {names[0]}" + (" or another of them." if len(names) > 1 else "."))


def settled_status(aws: Aws, endpoint: str) -> Optional[str]:
    """The endpoint's status once SageMaker is no longer changing it ("Deleted" when gone), else None."""
    try:
        status = aws.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"]
    except AwsError as exc:
        if exc.not_found:
            return "Deleted"
        raise
    return None if status in endpoint_view.BUSY else status


def read_selection(aws: Aws, endpoint: str, sel: Selection, pattern: Optional[str] = None) -> LogRead:
    return read(aws, endpoint, start=sel.start, end=sel.end, pattern=pattern, variant=sel.variant,
                instance=sel.instance, created_after=sel.created_after)


def follow(aws: Aws, endpoint: str, sel: Selection, stop_event: threading.Event, pattern: Optional[str] = None,
           poll_seconds: float = 2.0, on_wait: Optional[Callable[[str], None]] = None,
           quiet_max: Optional[float] = None) -> Iterator[dict]:
    """`tail` restricted to the selection's variant, instance and deployment."""
    created: Dict[str, int] = {}

    def keep(name: str) -> bool:
        stream = Stream(name, 0)
        if sel.instance and stream.instance != sel.instance:
            return False
        if sel.created_after is None:
            return True
        if name not in created:
            created.update({s.name: s.created for s in list_streams(aws, endpoint, variant=sel.variant)})
        return created.get(name, sel.created_after) >= sel.created_after

    prefixes = [f"{sel.variant}/"] if sel.variant else None
    start = sel.start if sel.start is not None else timespec.now_ms()
    for event in tail(aws, endpoint, start, stop_event, prefixes, pattern, poll_seconds, on_wait=on_wait,
                      quiet_max=quiet_max):
        if keep(event.get("logStreamName", "")):
            yield event
