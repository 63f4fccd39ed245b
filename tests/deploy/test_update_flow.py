"""`byoc update` end to end through the CLI: a good update and a failed one while a client invokes
continuously (zero failed calls), the JSON document and the text report, exit codes 0 and 1."""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from support.update import (
    JSON_KEYS,
    REALTIME_EP,
    Invoker,
    deployment,
    live,
    model_of,
    resources,
    run,
    run_json,
    served_digest,
    wait_for,
)


@pytest.fixture
def dep(sandbox, clients):
    return deployment(clients)


def _invoking_around(sandbox, capsys, argv, slow=0.3):
    """Run `byoc <argv> -o json` while a client invokes the real-time endpoint before, during and after."""
    sandbox.app.clock.time_scale = slow  # the update lasts about a second: many invocations land inside it
    with Invoker(sandbox, REALTIME_EP) as inv:
        wait_for(lambda: inv.calls >= 20)
        code, doc, err = run_json(capsys, *argv)
        after = inv.calls
        wait_for(lambda: inv.calls >= after + 20)
    return code, doc, err, inv


def test_good_update_serves_every_request_and_switches_to_the_new_digest(sandbox, capsys, sm, dep):
    old = served_digest(sm, REALTIME_EP)
    code, doc, err, inv = _invoking_around(sandbox, capsys,
                                           ["update", REALTIME_EP, dep["custom_image"], "--yes", "--quiet"])
    assert code == 0, err
    assert inv.failures == []
    assert inv.calls >= 40
    assert inv.digests == [old, dep["custom_digest"]]  # old until the switch, then only the new fleet
    assert doc["result"] == "updated"
    assert served_digest(sm, REALTIME_EP) == dep["custom_digest"]


def test_failed_update_serves_every_request_from_the_previous_image_and_exits_1(sandbox, capsys, sm, dep):
    old = served_digest(sm, REALTIME_EP)
    models_before, configs_before = resources(sm)
    code, doc, err, inv = _invoking_around(sandbox, capsys,
                                           ["update", REALTIME_EP, dep["broken_image"], "--yes", "--quiet"])
    assert code == 1, err
    assert inv.failures == []
    assert inv.digests == [old]
    assert doc["result"] == "failed"
    assert "did not pass the ping health check" in doc["failure_reason"]
    d = live(sm, REALTIME_EP)
    assert d["EndpointStatus"] == "InService"
    assert d["EndpointConfigName"] == "infer-config-f9e8d7c"
    assert served_digest(sm, REALTIME_EP) == old
    # The unused new model and config are deleted; the ones the endpoint runs are kept.
    assert doc["endpoint_config"] == "infer-config-f9e8d7c-r1"
    assert set(doc["swept"]) == {"infer-config-f9e8d7c-r1", "infer-model-f9e8d7c-r1"}
    models_after, configs_after = resources(sm)
    assert (models_after, configs_after) == (models_before, configs_before)


def test_json_document_has_the_keys_of_the_contract(capsys, sm, dep):
    code, doc, _ = run_json(capsys, "update", REALTIME_EP, dep["custom_image"], "--yes", "--quiet")
    assert code == 0
    assert JSON_KEYS <= set(doc)
    assert doc["endpoint"] == REALTIME_EP
    assert doc["image"] == dep["custom_image"].rsplit(":", 1)[0] + "@" + dep["custom_digest"]
    assert doc["digest"] == dep["custom_digest"]
    assert doc["revision"] == 1
    assert doc["previous_image"].endswith("/stable-diffusion-aws-extension/aigc-webui-inference")  # v1.3: untagged
    assert doc["endpoint_config"] == "infer-config-f9e8d7c-r1"
    assert doc["model"] == "infer-model-f9e8d7c-r1"
    assert isinstance(doc["elapsed_seconds"], float) and doc["elapsed_seconds"] >= 0
    assert doc["diagnosis"] == []
    assert sm.describe_endpoint(EndpointName=REALTIME_EP)["EndpointConfigName"] == "infer-config-f9e8d7c-r1"


def test_the_new_model_is_pinned_to_the_digest_so_a_later_push_to_the_tag_changes_nothing(capsys, sm, ecr, dep):
    from byoc.sandbox import seed

    code, doc, _ = run_json(capsys, "update", REALTIME_EP, dep["custom_image"], "--yes", "--quiet")
    assert code == 0
    image = model_of(sm, doc["endpoint_config"])["PrimaryContainer"]["Image"]
    assert image == f"{dep['custom_image'].rsplit(':', 1)[0]}@{dep['custom_digest']}"
    seed.push_image(ecr, "my-sd-webui", "v2", "crash")  # the tag now names another image
    assert model_of(sm, doc["endpoint_config"])["PrimaryContainer"]["Image"] == image


def test_text_report_of_a_good_update(capsys, dep):
    code, out, err = run(capsys, "update", REALTIME_EP, dep["custom_image"], "--yes")
    assert code == 0
    pinned = f"{dep['custom_image'].rsplit(':', 1)[0]}@{dep['custom_digest']}"
    assert out.splitlines()[0].startswith(f"updated: infer-endpoint-f9e8d7c now runs {pinned} "
                                          "(revision 1, config infer-config-f9e8d7c-r1) in ")
    # The plan and the progress go to stderr.
    assert "Plan for infer-endpoint-f9e8d7c (us-east-1), strategy blue-green:" in err
    assert "models    infer-model-f9e8d7c-r1 (new, revision 1)" in err
    assert "config    infer-config-f9e8d7c -> infer-config-f9e8d7c-r1 (new)" in err
    assert "capacity  1 x ml.g5.xlarge extra while both fleets run (blue/green)" in err
    assert "UpdateEndpoint -> infer-config-f9e8d7c-r1" in err


def test_live_log_lines_of_the_new_instances_are_streamed_unless_quiet(sandbox, capsys, dep):
    # At test speed the deployment is over before the follower's first poll: the last read still delivers them.
    code, _, err = run(capsys, "update", REALTIME_EP, dep["custom_image"], "--yes")
    assert code == 0
    logged = [line for line in err.splitlines() if " | " in line and "prod/i-" in line]
    assert any("Uvicorn running on http://0.0.0.0:8080" in line for line in logged), err
    assert any("instance type ml.g5.xlarge" in line for line in logged)


def test_quiet_streams_no_log_lines(sandbox, capsys, dep):
    code, _, err = run(capsys, "update", REALTIME_EP, dep["custom_image"], "--yes", "--quiet")
    assert code == 0
    assert "Uvicorn running" not in err
    assert "UpdateEndpoint -> infer-config-f9e8d7c-r1" in err  # progress is still shown


def test_text_report_of_a_failed_update_names_the_reason_and_the_diagnosis(capsys, sm, dep):
    code, out, err = run(capsys, "update", REALTIME_EP, dep["broken_image"], "--yes", "--quiet")
    assert code == 1
    assert out.startswith("failed: infer-endpoint-f9e8d7c")
    assert "The endpoint still serves its previous image" in out
    assert "FailureReason: The primary container for production variant prod did not pass the ping health check." in out
    assert "ModuleNotFoundError: No module named 'xformers'" in out  # the most telling log line, as evidence


def test_failed_update_json_carries_the_diagnosis(capsys, dep):
    code, doc, _ = run_json(capsys, "update", REALTIME_EP, dep["broken_image"], "--yes", "--quiet")
    assert code == 1
    assert doc["result"] == "failed"
    assert doc["diagnosis"], "a failed update explains itself"
    evidence = " ".join(str(f.get("evidence")) for f in doc["diagnosis"])
    assert "No module named 'xformers'" in evidence


def test_async_requests_queued_around_an_update_all_complete(sandbox, capsys, clients, dep):
    import threading

    from support.update import ASYNC_EP

    s3, rt = clients.client("s3"), clients.client("sagemaker-runtime")
    s3.put_object(Bucket=dep["bucket"], Key="in/prompt.json", Body=b'{"prompt": "a cat"}')
    sandbox.app.clock.time_scale = 0.3
    outputs, refused, stop = [], [], threading.Event()

    def submit():
        while not stop.is_set() or len(outputs) < 10:
            try:
                outputs.append(rt.invoke_endpoint_async(EndpointName=ASYNC_EP, ContentType="application/json",
                                                        InputLocation=f"s3://{dep['bucket']}/in/prompt.json")
                               ["OutputLocation"])
            except ClientError as exc:
                refused.append(str(exc))
            time.sleep(0.02)

    thread = threading.Thread(target=submit, daemon=True)
    thread.start()
    wait_for(lambda: len(outputs) >= 5)
    code, doc, err = run_json(capsys, "update", ASYNC_EP, dep["custom_image"], "--yes", "-q")
    stop.set()
    thread.join(10)
    assert code == 0, err
    assert refused == []
    keys = [o.split("/", 3)[3] for o in outputs]

    def done():
        listed = {o["Key"] for o in s3.list_objects_v2(Bucket=dep["bucket"], Prefix="sagemaker_output/")
                  .get("Contents", [])}
        return all(k in listed for k in keys)

    wait_for(done, timeout=60)
    served = {json.loads(s3.get_object(Bucket=dep["bucket"], Key=k)["Body"].read())["digest"] for k in keys}
    assert dep["custom_digest"] in served  # requests after the switch ran on the new image
