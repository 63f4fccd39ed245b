"""The operations are importable from `byoc` with typed results (issue 3, item 12)."""

from __future__ import annotations

import subprocess
import sys

import byoc
from byoc.deploy.results import UpdateResult
from byoc.endpoint.revisions import Revision
from byoc.observe.status import Status
from byoc.sandbox import seed
from support.update import ASYNC_EP, deployment


def test_update_history_status_rollback_as_a_library(sandbox, clients):
    dep = deployment(clients)
    planned = byoc.update(ASYNC_EP, dep["custom_image"], dry_run=True)
    assert isinstance(planned, UpdateResult) and planned.result == "planned" and planned.plan["revision"] == 1
    result = byoc.update(ASYNC_EP, dep["custom_image"])
    assert result.result == "updated" and result.digest == dep["custom_digest"] and result.exit_code == 0
    revs = byoc.history(ASYNC_EP)
    assert all(isinstance(r, Revision) for r in revs) and [r.number for r in revs if r.live] == [1]
    st = byoc.status(ASYNC_EP)
    assert isinstance(st, Status) and st.variants[0]["digest"] == dep["custom_digest"]
    back = byoc.rollback(ASYNC_EP)
    assert back.result == "updated" and back.revision == 0
    sm = clients.client("sagemaker")
    assert seed.wait_status(sm, ASYNC_EP)["EndpointConfigName"] == "infer-config-a1b2c3d"


def test_importing_byoc_loads_neither_boto3_nor_rich():
    code = "import sys, byoc, byoc.cli.main; print('boto3' in sys.modules, 'rich' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
