"""Application Auto Scaling and SageMaker in the sandbox ("Update or delete endpoints that use auto
scaling", endpoint-scaling.html): an update that changes the instance type of (or removes) a
registered variant fails, a model-only change is allowed, and deleting an endpoint deregisters its
scalable targets and their policies."""

from __future__ import annotations

import pytest

from byoc.sandbox import seed
from support.sandbox import config, endpoint, error_of, gone, model, revision, settle, wait_for

DIMENSION = "sagemaker:variant:DesiredInstanceCount"


@pytest.fixture
def aas(clients):
    return clients.client("application-autoscaling")


def _targets(aas, endpoint_name=None):
    found = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    return [t["ResourceId"] for t in found
            if endpoint_name is None or t["ResourceId"].startswith(f"endpoint/{endpoint_name}/")]


def _policies(aas):
    return [p["PolicyName"] for p in aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]]


def test_instance_type_change_of_a_registered_variant_is_refused(sm, ecr, aas):
    endpoint(sm, ecr)
    seed.register_autoscaling(aas, "ep", min_capacity=1, max_capacity=2, is_async=False, variant="AllTraffic")
    cfg, _ = revision(sm, ecr, "ep", "v2", instance_type="ml.g6.xlarge")
    err = error_of(sm.update_endpoint, EndpointName="ep", EndpointConfigName=cfg)
    assert err["Code"] == "ValidationException"
    assert "AllTraffic" in err["Message"] and "DeregisterScalableTarget" in err["Message"]
    d = sm.describe_endpoint(EndpointName="ep")
    assert (d["EndpointStatus"], d["EndpointConfigName"]) == ("InService", "ep-c-v1")


def test_removing_a_registered_variant_is_refused(sm, ecr, aas):
    endpoint(sm, ecr)
    seed.register_autoscaling(aas, "ep", is_async=False, variant="AllTraffic")
    model(sm, ecr, "renamed-m", tag="v2")
    config(sm, "renamed", "renamed-m", variant="Other")
    err = error_of(sm.update_endpoint, EndpointName="ep", EndpointConfigName="renamed")
    assert err["Code"] == "ValidationException" and "AllTraffic" in err["Message"]


def test_model_only_change_of_a_registered_variant_is_allowed(sm, ecr, aas):
    endpoint(sm, ecr)
    seed.register_autoscaling(aas, "ep", is_async=False, variant="AllTraffic")
    cfg, digest = revision(sm, ecr, "ep", "v2")
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg, RetainAllVariantProperties=True)
    d = settle(sm, "ep")
    assert d["EndpointConfigName"] == cfg and "FailureReason" not in d
    assert d["ProductionVariants"][0]["DeployedImages"][0]["ResolvedImage"].endswith("@" + digest)
    assert _targets(aas, "ep") == ["endpoint/ep/variant/AllTraffic"]


def test_after_deregistering_the_instance_type_can_change(sm, ecr, aas):
    endpoint(sm, ecr)
    rid = seed.register_autoscaling(aas, "ep", is_async=False, variant="AllTraffic")
    for name in _policies(aas):
        aas.delete_scaling_policy(PolicyName=name, ServiceNamespace="sagemaker", ResourceId=rid,
                                  ScalableDimension=DIMENSION)
    aas.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=DIMENSION)
    cfg, _ = revision(sm, ecr, "ep", "v2", instance_type="ml.g6.xlarge")
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg)
    assert settle(sm, "ep")["EndpointConfigName"] == cfg


def test_deregistering_alone_deletes_the_policies_and_allows_the_change(sm, ecr, aas):
    endpoint(sm, ecr)
    rid = seed.register_autoscaling(aas, "ep", is_async=False, variant="AllTraffic")
    aas.put_scheduled_action(ServiceNamespace="sagemaker", ScheduledActionName="night", ResourceId=rid,
                             ScalableDimension=DIMENSION, Schedule="cron(0 22 * * ? *)",
                             ScalableTargetAction={"MinCapacity": 1})
    aas.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=DIMENSION)
    assert _policies(aas) == []
    assert aas.describe_scheduled_actions(ServiceNamespace="sagemaker")["ScheduledActions"] == []
    with pytest.raises(aas.exceptions.ObjectNotFoundException):
        aas.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=DIMENSION)
    cfg, _ = revision(sm, ecr, "ep", "v2", instance_type="ml.g6.xlarge")
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg)
    assert settle(sm, "ep")["EndpointConfigName"] == cfg


def test_unregistered_variants_may_change_instance_type(sm, ecr, aas):
    endpoint(sm, ecr)
    endpoint(sm, ecr, "other")
    seed.register_autoscaling(aas, "other", is_async=False, variant="AllTraffic")
    cfg, _ = revision(sm, ecr, "ep", "v2", instance_type="ml.g6.xlarge")
    sm.update_endpoint(EndpointName="ep", EndpointConfigName=cfg)
    assert settle(sm, "ep")["EndpointConfigName"] == cfg


def test_delete_deregisters_the_endpoints_targets_and_policies_only(sm, ecr, aas):
    endpoint(sm, ecr)
    endpoint(sm, ecr, "keep")
    seed.register_autoscaling(aas, "ep", min_capacity=0, max_capacity=1, is_async=True, variant="AllTraffic")
    seed.register_autoscaling(aas, "keep", is_async=False, variant="AllTraffic")
    assert sorted(_policies(aas)) == ["ep-has-backlog-without-capacity", "ep-target-tracking", "keep-target-tracking"]
    sm.delete_endpoint(EndpointName="ep")
    assert _targets(aas, "ep") == []  # deregistered as the deletion starts
    assert _policies(aas) == ["keep-target-tracking"]
    assert _targets(aas, "keep") == ["endpoint/keep/variant/AllTraffic"]
    assert wait_for(lambda: gone(sm, "ep"))


def test_the_solutions_async_endpoint_is_registered_with_minimum_zero(clients, aas):
    out = seed.solution(clients, realtime_id=None)
    name = out["endpoints"][0]
    targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets] == \
        [(f"endpoint/{name}/variant/prod", 0, 1)]
    d = clients.client("sagemaker").describe_endpoint(EndpointName=name)
    assert d["AsyncInferenceConfig"]["OutputConfig"]["S3OutputPath"].startswith("s3://")
