"""Pausing autoscaling around an instance-type change: the exact record, deregistration, registering
again (min, max, suspended state, every policy), alarms of step policies pointed at the new policy
ARN, and the record kept in endpoint tags for a run that is interrupted."""

from __future__ import annotations

import datetime

import pytest

from byoc.aws.client import Aws
from byoc.deploy import autoscaling
from byoc.sandbox import seed
from support.update import ASYNC_EP, deployment, tags_of
from support.update import autoscaling as registered


@pytest.fixture
def aws(sandbox):
    return Aws(region="us-east-1")


@pytest.fixture
def solution(sandbox, clients):
    """The solution's async endpoint, 0..2, target tracking and step scaling, one scaling activity
    suspended, and the CloudWatch alarm that invokes the step policy (as the solution creates it)."""
    dep = deployment(clients)
    aas = clients.client("application-autoscaling")
    rid = seed.register_autoscaling(aas, ASYNC_EP, min_capacity=0, max_capacity=2, is_async=True)
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=rid,
                                 ScalableDimension=autoscaling.DIMENSION,
                                 SuspendedState={"DynamicScalingInSuspended": True})
    aas.put_scheduled_action(ServiceNamespace="sagemaker", ScheduledActionName="nightly", ResourceId=rid,
                             ScalableDimension=autoscaling.DIMENSION, Schedule="cron(0 22 * * ? *)",
                             StartTime=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
                             ScalableTargetAction={"MinCapacity": 0, "MaxCapacity": 1})
    step = [p for p in aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=rid)["ScalingPolicies"]
            if p["PolicyType"] == "StepScaling"][0]
    clients.client("cloudwatch").put_metric_alarm(
        AlarmName=f"{ASYNC_EP}-has-backlog-without-capacity", Namespace="AWS/SageMaker",
        MetricName="HasBacklogWithoutCapacity", Dimensions=[{"Name": "EndpointName", "Value": ASYNC_EP}],
        Statistic="Average", Period=60, EvaluationPeriods=2, Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="missing",
        AlarmActions=[step["PolicyARN"]])
    return dep


def alarm_actions(clients) -> list:
    return clients.client("cloudwatch").describe_alarms(
        AlarmNames=[f"{ASYNC_EP}-has-backlog-without-capacity"])["MetricAlarms"][0]["AlarmActions"]


def step_arn(clients) -> str:
    rid = autoscaling.resource_id(ASYNC_EP, "prod")
    return [p["PolicyARN"] for p in clients.client("application-autoscaling").describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId=rid)["ScalingPolicies"] if p["PolicyType"] == "StepScaling"][0]


def scheduled(clients) -> list:
    return [{k: v for k, v in a.items() if k not in ("CreationTime", "ScheduledActionARN")}
            for a in clients.client("application-autoscaling").describe_scheduled_actions(
                ServiceNamespace="sagemaker")["ScheduledActions"]]


def test_deregister_then_register_restores_everything_exactly(aws, clients, solution):
    before, actions = registered(clients, ASYNC_EP), scheduled(clients)
    assert len(actions) == 1
    assert before[0][0]["SuspendedState"]["DynamicScalingInSuspended"] is True
    saved = autoscaling.save(aws, ASYNC_EP, ["prod"])
    assert [r.variant for r in saved] == ["prod"]
    assert "0..2 instances" in saved[0].summary() and "suspended: DynamicScalingInSuspended" in saved[0].summary()
    autoscaling.deregister(aws, saved)
    assert registered(clients, ASYNC_EP) == ([], []) and scheduled(clients) == []
    autoscaling.deregister(aws, saved)  # already gone: fine
    autoscaling.register(aws, saved)
    assert registered(clients, ASYNC_EP) == before
    assert scheduled(clients) == actions
    assert alarm_actions(clients) == [step_arn(clients)]  # the alarm invokes the step policy again


def test_variants_without_a_target_record_nothing(aws, clients, solution):
    assert autoscaling.save(aws, "infer-endpoint-f9e8d7c", ["prod"]) == []
    assert autoscaling.save(aws, ASYNC_EP, []) == []


def test_the_record_survives_in_endpoint_tags_for_a_fresh_process(aws, sm, clients, solution):
    before, actions = registered(clients, ASYNC_EP), scheduled(clients)
    saved = autoscaling.save(aws, ASYNC_EP, ["prod"])
    arn = sm.describe_endpoint(EndpointName=ASYNC_EP)["EndpointArn"]
    tags = autoscaling.record_tags(saved, revision=3)
    assert all(len(t["Value"]) <= 256 for t in tags)
    sm.add_tags(ResourceArn=arn, Tags=tags)
    autoscaling.deregister(aws, saved)
    record = autoscaling.recorded(tags_of(sm, arn))
    assert record.revision == 3 and record.saved == saved
    assert set(record.keys) == set(autoscaling.record_keys(tags_of(sm, arn)))
    autoscaling.register(aws, record.saved)
    assert registered(clients, ASYNC_EP) == before
    assert scheduled(clients) == actions
    assert alarm_actions(clients) == [step_arn(clients)]


def test_an_incomplete_record_is_not_used():
    tags = {t["Key"]: t["Value"] for t in autoscaling.record_tags(
        [autoscaling.Registration(target={"ResourceId": "endpoint/e/variant/v"})], revision=1)}
    assert autoscaling.recorded(tags).saved[0].variant == "v"
    tags.pop("byoc:autoscaling:0")
    assert autoscaling.recorded(tags) is None
    assert autoscaling.record_keys(tags) == ["byoc:autoscaling"]
