"""The endpoint lock: announce with a run's own tag, then one read (issue 11: one ListTags, not two)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from byoc.aws.client import Aws
from byoc.endpoint import lock, revisions
from byoc.errors import PreflightFailed
from support.sandbox import endpoint

START = [{"Key": "byoc:r1", "Value": "in-progress mine"}]


def _tags(sm, arn) -> dict:
    return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}


@pytest.fixture
def ep(sandbox, sm, ecr):
    endpoint(sm, ecr, "ep")
    return sm.describe_endpoint(EndpointName="ep")["EndpointArn"]


@pytest.fixture
def other_run():
    """A live process on this host: what another byoc run's lock value names."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield f"{socket.gethostname()[:60]} {proc.pid} {int(time.time())}", f"byoc:lock:{socket.gethostname()[:60]}:{proc.pid}"
    proc.kill()
    proc.wait()


def test_a_lock_costs_one_write_and_one_read_when_the_plan_read_the_tags(sm, ep):
    aws = Aws()
    held = lock.EndpointLock(aws, "ep", ep)
    held.acquire(START, known=revisions.list_tags(aws, ep))
    assert (aws.calls["sagemaker:ListTags"], aws.calls["sagemaker:AddTags"]) == (2, 1)  # the plan's read, the check
    tags = _tags(sm, ep)
    assert tags["byoc:r1"] == "in-progress mine" and tags["byoc:lock"] == tags[held.key]
    held.release()
    assert not [k for k in _tags(sm, ep) if k.startswith("byoc:lock")]


def test_a_run_that_locked_since_the_plan_keeps_the_endpoint(sm, ep, other_run):
    value, key = other_run
    aws = Aws()
    planned = revisions.list_tags(aws, ep)  # free when planned; the other run locks it just after
    sm.add_tags(ResourceArn=ep, Tags=[{"Key": "byoc:lock", "Value": value}, {"Key": key, "Value": value},
                                      {"Key": "byoc:r1", "Value": "in-progress theirs"}])
    with pytest.raises(PreflightFailed, match=f"Another byoc run \\(process {value.split()[1]} "):
        lock.EndpointLock(aws, "ep", ep).acquire(START, known=planned)
    tags = _tags(sm, ep)
    assert tags["byoc:lock"] == value and tags[key] == value  # theirs, as it was
    assert {k for k in tags if k.startswith("byoc:lock")} == {"byoc:lock", key}  # ours is gone
    assert "byoc:r1" not in tags  # our attempt tag is withdrawn (theirs is written again when they end)


def test_withdrawing_keeps_the_original_config_another_first_update_wrote(sm, ep, other_run):
    value, key = other_run
    aws = Aws()
    planned = revisions.list_tags(aws, ep)  # never updated by byoc: both runs are first updates
    original = {"Key": revisions.T_ORIGINAL, "Value": "ep-c-v1"}
    sm.add_tags(ResourceArn=ep, Tags=[{"Key": "byoc:lock", "Value": value}, {"Key": key, "Value": value}, original])
    with pytest.raises(PreflightFailed):
        lock.EndpointLock(aws, "ep", ep).acquire(START + [original], known=planned)
    assert _tags(sm, ep)[revisions.T_ORIGINAL] == "ep-c-v1"  # the other run's revision 0 stays known


def test_a_run_holding_the_endpoint_when_planned_is_refused_without_a_write(sm, ep, other_run):
    value, key = other_run
    sm.add_tags(ResourceArn=ep, Tags=[{"Key": "byoc:lock", "Value": value}, {"Key": key, "Value": value}])
    aws = Aws()
    with pytest.raises(PreflightFailed):
        lock.EndpointLock(aws, "ep", ep).acquire(START, known=revisions.list_tags(aws, ep))
    assert aws.calls["sagemaker:AddTags"] == 0


def test_a_dead_runs_lock_is_taken_over_and_its_tag_removed(sm, ep):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    value = f"{socket.gethostname()[:60]} {dead.pid} {int(time.time())}"
    stale = f"byoc:lock:{socket.gethostname()[:60]}:{dead.pid}"
    sm.add_tags(ResourceArn=ep, Tags=[{"Key": "byoc:lock", "Value": value}, {"Key": stale, "Value": value}])
    aws = Aws()
    held = lock.EndpointLock(aws, "ep", ep)
    held.acquire(known=revisions.list_tags(aws, ep))
    assert held.held and held.key.endswith(f":{os.getpid()}")
    held.release()
    assert not [k for k in _tags(sm, ep) if k.startswith("byoc:lock")]
