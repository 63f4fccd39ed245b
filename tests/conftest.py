"""Shared fixtures: one sandbox per test process, reset before each test that uses it."""

from __future__ import annotations

import os

import pytest

from byoc.sandbox import Sandbox, seed
from support import response_shapes

response_shapes.install()  # every SageMaker (Runtime) response is checked against botocore's output shape

TEST_TIME_SCALE = 0.05  # a healthy create takes ~0.15 s; tests may raise it with sandbox.app.clock.time_scale


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch, tmp_path):
    """Never reach real AWS from a test: no config or credential files, no inherited endpoint."""
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # byoc's quota-code cache: one per test
    monkeypatch.delenv("COLUMNS", raising=False)  # piped output is as wide as COLUMNS says: tests set it themselves


@pytest.fixture(autouse=True)
def _responses_match_botocore_shapes():
    """A sandbox response that deviates from botocore's output shape fails the test that caused it."""
    response_shapes.take()
    yield
    found = response_shapes.take()
    assert not found, "responses that deviate from botocore's output shapes:\n" + "\n".join(sorted(set(found)))


@pytest.fixture(scope="session")
def _sandbox_server():
    sb = Sandbox(time_scale=TEST_TIME_SCALE).start()
    yield sb
    sb.stop()


@pytest.fixture
def sandbox(_sandbox_server, monkeypatch):
    """A clean sandbox with the environment pointing boto3 (and byoc) at it."""
    sb = _sandbox_server
    sb.reset()
    sb.app.clock.time_scale = TEST_TIME_SCALE
    sb.app.enforce_iam = False
    for key, value in sb.env().items():
        monkeypatch.setenv(key, value)
    # The account has the solution's execution role (SageMaker checks it on CreateModel, as AWS does).
    seed.execution_role(seed.session(sb.url).client("iam"))
    yield sb
    sb.reset()


@pytest.fixture
def clients(sandbox):
    """boto3 clients for the sandbox: clients.client("sagemaker")."""
    return seed.session(sandbox.url)


@pytest.fixture
def sm(clients):
    return clients.client("sagemaker")


@pytest.fixture
def ecr(clients):
    return clients.client("ecr")
