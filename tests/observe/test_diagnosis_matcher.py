"""The matcher's mechanics: ranking, evidence, suppression, catalogue checks, key lines."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from byoc import diagnosis
from byoc.diagnosis.catalogue import CatalogueError, parse

T0 = 1_714_640_000_000
PING = ("The primary container for production variant prod did not pass the ping health check. "
        "Please check CloudWatch logs for this endpoint.")


def ev(ts, message, stream="prod/i-01"):
    return {"timestamp": ts, "message": message, "logStreamName": stream}


def test_causes_rank_before_symptoms_then_by_severity_then_time():
    events = [
        ev(T0 + 1, "ERROR: pip's dependency resolver does not currently take into account all the packages "
                    "that are installed. This behaviour is the source of the following dependency conflicts."),
        ev(T0 + 2, "[2024-05-02 09:01:12 +0000] [1] [CRITICAL] WORKER TIMEOUT (pid:7)"),
        ev(T0 + 3, "ModuleNotFoundError: No module named 'insightface'"),
        ev(T0 + 4, "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB"),
    ]
    ids = [f.id for f in diagnosis.match(events, failure_reason=PING)]
    assert ids == ["python-import", "cuda-oom", "worker-timeout", "pip-conflict", "ping-health-check"]


def test_events_out_of_order_are_ranked_by_time():
    events = [ev(T0 + 9, "torch.cuda.OutOfMemoryError: CUDA out of memory."),
              ev(T0 + 1, "ModuleNotFoundError: No module named 'basicsr'")]
    assert [f.id for f in diagnosis.match(events)] == ["python-import", "cuda-oom"]


def test_evidence_keeps_time_and_stream_prefers_distinct_streams_and_counts_all():
    line = "ModuleNotFoundError: No module named 'xformers'"
    events = [ev(T0 + n, line, "prod/i-01") for n in range(5)] + [ev(T0 + 10, line, "prod/i-02")]
    finding = diagnosis.match(events)[0]
    assert finding.count == 6
    assert len(finding.evidence) == 3
    assert {e.stream for e in finding.evidence} == {"prod/i-01", "prod/i-02"}
    first = finding.evidence[0]
    assert first.timestamp == T0 and first.text == line
    assert str(first) == f"2024-05-02T08:53:20.000Z prod/i-01 | {line}"


def test_failure_reason_and_api_evidence_render_their_source():
    found = diagnosis.match([], failure_reason=PING, context={"log_group": "missing"})
    by_id = {f.id: f for f in found}
    assert str(by_id["ping-health-check"].evidence[0]).startswith("DescribeEndpoint FailureReason: The primary")
    assert str(by_id["no-logs"].evidence[0]) == "log_group: missing"


def test_wrong_port_is_not_reported_when_the_server_also_listens_on_8080():
    events = [ev(T0, "Running on local URL:  http://127.0.0.1:7860"),
              ev(T0 + 1, "[INFO] Listening at: http://0.0.0.0:8080 (1)")]
    assert diagnosis.match(events) == []
    assert [f.id for f in diagnosis.match(events[:1])] == ["wrong-port"]


def test_image_not_found_suppresses_the_ambiguous_pull_denied_reading():
    reason = ("Please make sure all images included in the model for the production variant prod exist, and that "
              "the execution role used to create the model has permissions to access them.")
    assert [f.id for f in diagnosis.match([], reason)] == ["ecr-pull-denied"]
    found = diagnosis.match([], reason, {"ecr_image": "ImageNotFoundException: no such tag"})
    assert [f.id for f in found] == ["image-not-found"]


def test_one_event_counts_once_per_rule_and_long_lines_are_clipped():
    line = "CUDA out of memory " * 60
    finding = diagnosis.match([ev(T0, line)])[0]
    assert finding.count == 1
    assert len(finding.evidence[0].text) == 400 and finding.evidence[0].text.endswith("\u2026")


def test_finding_to_dict_is_json_ready():
    finding = diagnosis.match([ev(T0, "exec /usr/bin/python3: exec format error")],
                              context={"instance_type": "ml.g5.xlarge"})[0]
    data = json.loads(json.dumps(finding.to_dict()))
    assert data["id"] == "exec-format" and data["severity"] == "critical" and data["count"] == 1
    assert data["evidence"][0] == {"source": "log", "text": "exec /usr/bin/python3: exec format error",
                                   "timestamp": T0, "stream": "prod/i-01"}


def test_instance_architecture_from_the_instance_family():
    from byoc import instances

    assert instances.architecture("ml.c7g.2xlarge") == "arm64"
    assert instances.architecture("ml.c6gn.xlarge") == "arm64"
    assert instances.architecture("ml.g5.xlarge") == "amd64"
    assert instances.architecture("ml.inf2.xlarge") == "amd64"
    assert instances.architecture(None) is None and instances.architecture("serverless") is None


def _doc():
    return json.loads(resources.files("byoc").joinpath("data/signatures.json").read_text())


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s: s.update(match=[{"where": "log", "pattern": "("}]), "bad pattern"),
        (lambda s: s.update(match=[{"where": "stdout", "pattern": "x"}]), "unknown where"),
        (lambda s: s.update(severity="fatal"), "severity"),
        (lambda s: s.pop("fix"), "missing fix"),
    ],
)
def test_catalogue_errors_name_the_signature(mutate, message):
    doc = _doc()
    mutate(doc["signatures"][0])
    with pytest.raises(CatalogueError) as info:
        parse(doc)
    assert message in str(info.value) and doc["signatures"][0]["id"] in str(info.value)


def test_repeated_ids_are_refused():
    doc = _doc()
    doc["signatures"].append(dict(doc["signatures"][0]))
    with pytest.raises(CatalogueError, match="repeated"):
        parse(doc)


def test_a_new_signature_is_only_data():
    doc = _doc()
    doc["signatures"].append({
        "id": "triton-model-load", "title": "Triton could not load {model}", "severity": "critical",
        "cause": "Model {model} failed to load.", "fix": "Check the model repository.",
        "match": [{"where": "log", "pattern": r"failed to load '(?P<model>\w+)' version"}],
    })
    found = diagnosis.match([ev(T0, "E0502 failed to load 'sdxl' version 1: Internal")], catalogue=parse(doc))
    assert [(f.id, f.title) for f in found] == [("triton-model-load", "Triton could not load sdxl")]


# -- key lines for failures no signature explains --------------------------------------------

def test_key_lines_keep_the_whole_traceback_errors_and_ends_of_each_stream():
    a = [ev(T0 + n, f"step {n}", "prod/i-01") for n in range(30)]
    tb = ["Traceback (most recent call last):", '  File "/app/serve.py", line 9, in <module>',
          "    main()", "ValueError: weights file is truncated"]
    a += [ev(T0 + 100 + n, line, "prod/i-01") for n, line in enumerate(tb)]
    a += [ev(T0 + 200, "shutting down", "prod/i-01")]
    b = [ev(T0 + 50 + n, f"other {n}", "prod/i-02") for n in range(3)]
    lines = diagnosis.key_lines(a + b, head=2, tail=1)
    texts = [k.message for k in lines]
    assert texts[:2] == ["step 0", "step 1"]
    assert tb == [k.message for k in lines if k.why == "traceback"]
    assert "shutting down" in texts and "step 15" not in texts
    assert {"other 0", "other 1", "other 2"} <= set(texts)
    assert [k.timestamp for k in lines] == sorted(k.timestamp for k in lines)


def test_key_lines_fold_repeated_errors_and_respect_the_limit():
    events = [ev(T0 + n, f"[ERROR] request {n} failed with status 500") for n in range(200)]
    events += [ev(T0 + 300, "Fatal: cannot load model")]
    lines = diagnosis.key_lines(events, head=0, tail=0, limit=5)
    errors = [k for k in lines if k.why == "error"]
    assert errors[0].message == "[ERROR] request 0 failed with status 500" and errors[0].repeats == 200
    assert "Fatal: cannot load model" in [k.message for k in lines]
    assert len(diagnosis.key_lines(events, limit=5)) == 5


def test_key_lines_of_nothing_is_nothing():
    assert diagnosis.key_lines([]) == []


# -- the literal prefilter that keeps 100,000 events cheap -----------------------------------

@pytest.mark.parametrize(
    "pattern, expected",
    [
        (r"CUDA out of memory", ("cuda out of memory",)),
        (r"(?i)exit(?:ed)? (?:with )?code 137", ("code 137",)),
        (r"(?:listening on|running on) (?P<a>127\.0\.0\.1|localhost):\d+", ("listening on", "running on")),
        (r"(?:on|at) (?P<a>127\.0\.0\.1|localhost):\d+", ("127.0.0.1", "localhost")),
        (r"(?:foo|\d+) bar baz", (" bar baz",)),
        (r"[A-Z]+_\d", ()),  # nothing literal enough: the matcher scans the whole text instead
        (r"(", ()),
    ],
)
def test_needles_are_literals_every_match_contains(pattern, expected):
    from byoc.diagnosis.logtext import needles

    assert needles(pattern) == expected


def test_every_log_rule_of_the_catalogue_has_a_prefilter():
    cat = diagnosis.load()
    rules = [(s.id, r) for s in cat.signatures for r in s.match + s.unless if r.where == "log"]
    assert all(r.needles for _, r in rules), [(i, r.regex.pattern) for i, r in rules if not r.needles]


def test_prefiltered_search_finds_what_a_full_scan_finds():
    from test_diagnosis_signatures import HEALTHY, SAMPLES, VARIANTS

    from byoc.diagnosis.logtext import LogText

    lines = HEALTHY + [line for s in SAMPLES.values() for line in s[0]] + [x for _, v in VARIANTS for x in v]
    log = LogText([ev(T0 + n, line, f"prod/i-{n % 3}") for n, line in enumerate(lines)])
    for sig in diagnosis.load().signatures:
        for rule in (r for r in sig.match + sig.unless if r.where == "log"):
            fast = [i for i, _ in log.find(rule.regex, rule.needles)]
            full = [i for i, _ in log.find(rule.regex)]
            assert fast == full, (sig.id, rule.regex.pattern)


def test_an_unless_line_of_one_instance_does_not_excuse_another():
    """wrong-port after an update: the old, healthy fleet's `Uvicorn running on 0.0.0.0:8080` in the same
    window must not hide the new instance's `running on 127.0.0.1:8000` (evidence judged per instance)."""
    from byoc.diagnosis import matcher

    events = [
        {"timestamp": 1000, "logStreamName": "prod/i-old", "message": "INFO: Uvicorn running on http://0.0.0.0:8080"},
        {"timestamp": 2000, "logStreamName": "prod/i-new", "message": "INFO: Uvicorn running on http://127.0.0.1:8000"},
    ]
    assert "wrong-port" in [f.id for f in matcher.match(events)]
    same = [dict(e, logStreamName="prod/i-new") for e in events]
    assert "wrong-port" not in [f.id for f in matcher.match(same)]


def test_a_finding_names_the_instance_type_of_the_variant_whose_line_it_shows():
    """Two variants on different instance types: the OOM finding names the type of the instance that ran out."""
    import json

    from byoc.diagnosis import matcher

    context = {"instance_type": "ml.g5.xlarge",
               "variant_instance_types": json.dumps({"a": "ml.g5.xlarge", "b": "ml.g4dn.xlarge"})}
    events = [{"timestamp": 1000, "logStreamName": "b/i-1", "message": "torch.cuda.OutOfMemoryError: CUDA out of memory"}]
    (oom,) = [f for f in matcher.match(events, context=context) if f.id == "cuda-oom"]
    assert "ml.g4dn.xlarge" in oom.cause and "ml.g5.xlarge" not in oom.cause
    events[0]["logStreamName"] = "a/i-2"
    (oom,) = [f for f in matcher.match(events, context=context) if f.id == "cuda-oom"]
    assert "ml.g5.xlarge" in oom.cause
