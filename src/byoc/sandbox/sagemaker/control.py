"""SageMaker control-plane operations (AWS JSON 1.1, X-Amz-Target: SageMaker.<Operation>).

Wording of errors follows what SageMaker answers (Amazon SageMaker API Reference, "Common Errors"
and each operation's Errors section): ValidationException for missing resources ("Could not
find endpoint ..."), duplicates ("Cannot create already existing ..."), and endpoints that are
busy ("Cannot update in-progress endpoint ..."); ResourceInUse; ResourceLimitExceeded.
"""

from __future__ import annotations

import base64
import copy
import time
from typing import Any, Dict, Optional

from byoc.sandbox import peers
from byoc.sandbox import validation as shapes
from byoc.sandbox.protocol import ServiceError, validation
from byoc.sandbox.sagemaker import access, deploy, notifications
from byoc.sandbox.sagemaker.resources import Endpoint, EndpointConfig, Model, Region, arn

# The Resource Groups Tagging API answers from its own index of tags, not the service's ("services
# with taggable resources should be onboarded to an internal tag management service", aws/aws-sdk#302),
# which follows late: new tags "within seconds may not reflect ... Sleep 10-15 seconds" (user reports),
# deleted resources stay listed for 20 minutes (aws/aws-cli#4173) to hours (boto/boto3#3341). Simulated
# seconds (clock.py); see _index_tags.
TAG_INDEX_LAG = 60.0
TAG_INDEX_DELETE_LAG = 45 * 60.0
DEFAULT_ENDPOINT_QUOTA = 100  # instances per type "for endpoint usage" unless set via /_sandbox/quotas
BUSY = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting", "UpdateRollbackFailed")


class SageMaker:
    def __init__(self, clock: Any, lock: Any) -> None:
        self.clock = clock
        self.lock = lock
        self.regions: dict = {}
        self.deployer = deploy.Deployer(clock, lambda reg: (reg.account, reg.region))

    def reset(self) -> None:
        with self.lock:
            self.regions.clear()

    def region(self, account: str, region: str) -> Region:
        key = (account, region)
        if key not in self.regions:
            self.regions[key] = Region(account, region)
        return self.regions[key]

    def handle(self, operation: str, params: dict, account: str, region: str) -> dict:
        handler = getattr(self, "op_" + operation, None)
        if handler is None:
            raise ServiceError("UnknownOperationException", f"Operation {operation} is not supported by the sandbox.")
        with self.lock:
            return handler(self.region(account, region), params)

    # -- helpers -------------------------------------------------------------------------------
    # "Could not find model/endpoint configuration/endpoint": aws/amazon-sagemaker-operator-for-k8s,
    # controllers/sdkutil/clientwrapper/sagemaker_client.go (the prefixes it matches as 404s).
    @staticmethod
    def _arn(reg: Region, kind: str, name: str) -> str:
        return arn(reg.region, reg.account, kind, name)

    def _model(self, reg: Region, name: str) -> Any:
        if name not in reg.models:
            raise validation(f'Could not find model "{self._arn(reg, "model", name)}".')
        return reg.models[name]

    def _config(self, reg: Region, name: str) -> Any:
        if name not in reg.configs:
            raise validation(f'Could not find endpoint configuration "{self._arn(reg, "endpoint-config", name)}".')
        return reg.configs[name]

    def _endpoint(self, reg: Region, name: str) -> Endpoint:
        if name not in reg.endpoints:
            raise validation(f'Could not find endpoint "{self._arn(reg, "endpoint", name)}".')
        return reg.endpoints[name]

    # -- models --------------------------------------------------------------------------------
    def op_CreateModel(self, reg: Region, p: dict) -> Any:
        name = p["ModelName"]
        if name in reg.models:
            # Wording of the duplicates: public stubs of create_endpoint_config and callers matching
            # "Cannot create already existing endpoint" (docs/sandbox.md, Wording).
            raise validation(f'Cannot create already existing model "{self._arn(reg, "model", name)}".')
        spec = {k: copy.deepcopy(v) for k, v in p.items() if k not in ("ModelName", "Tags")}
        model = Model(name=name, arn=self._arn(reg, "model", name), spec=spec, tags=list(p.get("Tags") or []))
        if not model.containers and not p.get("InferenceExecutionConfig"):
            raise validation("Either PrimaryContainer or Containers must be provided.")
        for c in model.containers:
            self._check_image(reg, c)
        self._check_execution_role(reg, p.get("ExecutionRoleArn"), model.containers)
        reg.models[name] = model
        self._index_tags(reg, model)
        return {"ModelArn": model.arn}

    def _check_image(self, reg: Region, container: dict) -> None:
        image = container.get("Image")
        if not image:
            if container.get("ModelPackageName") or container.get("InferenceSpecificationName"):
                return
            raise validation("Image is required for a container.")
        if (container.get("ImageConfig") or {}).get("RepositoryAccessMode") == "Vpc":
            return  # a private registry reached through the model's VPC: nothing to check here
        parsed = peers.parse_ecr(image)
        if parsed is None:
            # CreateModel's answer for registries other than ECR without ImageConfig Vpc mode (aws/sagemaker-python-sdk
            # pull request #4700).
            raise validation(f'Using non-ECR image "{image}" without Vpc repository access mode is not supported.')
        if parsed["region"] != reg.region:
            # SageMaker hosting pulls only from ECR in the model's region ("Use a private Docker registry
            # for real-time inference containers" / "Amazon ECR" requirements in the Developer Guide);
            # CreateModel answers with this wording (ed-donner/alex issue #30).
            raise validation(f'Region of "{image}" does not match expected region of {reg.region}. '
                             "Cross region ECR image pulls are not allowed.")
        suffix = "amazonaws.com.cn" if peers.partition(reg.region) == "aws-cn" else "amazonaws.com"
        if parsed["suffix"] != suffix:
            # ECR registries are <account>.dkr.ecr.<region>.amazonaws.com, .amazonaws.com.cn in the China
            # regions ("Amazon ECR endpoints and quotas", AWS General Reference); SageMaker rejects a
            # registry host with the wrong DNS suffix.
            raise validation(f"Invalid DNS suffix '{parsed['suffix']}' for region '{reg.region}' in image. "
                             f"Please provide the valid <region>.<dns-suffix>: '{reg.region}.{suffix}'")
        if deploy.resolve(reg.account, reg.region, image) is None:
            # aws-samples/easy-amazon-sagemaker-deployments issue #4 ("...CreateModel operation: Requested image ...
            # not found.").
            raise validation(f"Requested image {image} not found.")

    @staticmethod
    def _check_execution_role(reg: Region, role_arn: Any, containers: list) -> None:
        """CreateModel checks synchronously that SageMaker can assume the execution role, read each
        container's ModelDataUrl and pull each ECR image with it (API_CreateModel, ExecutionRoleArn: "the
        IAM role that SageMaker can assume to access model artifacts and docker image for deployment";
        wording and sources in access.py)."""
        urls = [c["ModelDataUrl"] for c in containers if str(c.get("ModelDataUrl") or "").startswith("s3://")]
        for url in urls:
            problem = access.model_data_problem(reg.account, reg.region, role_arn, url)
            if problem:
                raise validation(problem)
        if not role_arn:
            return
        problem = access.role_problem(role_arn)
        if problem:
            raise validation(problem)
        for c in containers:
            if c.get("Image") and (c.get("ImageConfig") or {}).get("RepositoryAccessMode") != "Vpc":
                problem = access.ecr_pull_problem(role_arn, c["Image"])
                if problem:
                    raise validation(problem)

    def op_DescribeModel(self, reg: Region, p: dict) -> Any:
        return self._model(reg, p["ModelName"]).describe()

    def op_DeleteModel(self, reg: Region, p: dict) -> Any:
        self._model(reg, p["ModelName"])
        self._index_tags(reg, reg.models.pop(p["ModelName"]), deleted=True)
        return {}

    def op_ListModels(self, reg: Region, p: dict) -> Any:
        items = [{"ModelName": m.name, "ModelArn": m.arn, "CreationTime": m.created} for m in reg.models.values()]
        return self._list(items, p, "Models", "ModelName", {"Name": "ModelName", "CreationTime": "CreationTime"},
                          default_sort="CreationTime")

    # -- endpoint configs -----------------------------------------------------------------------
    def op_CreateEndpointConfig(self, reg: Region, p: dict) -> Any:
        name = p["EndpointConfigName"]
        if name in reg.configs:
            raise validation(
                f'Cannot create already existing endpoint configuration "{self._arn(reg, "endpoint-config", name)}".')
        names = [v["VariantName"] for v in p["ProductionVariants"]]
        if len(set(names)) != len(names):
            raise validation("The VariantName of each production variant must be unique.")
        for v in p["ProductionVariants"] + list(p.get("ShadowProductionVariants") or []):
            if v.get("ModelName"):
                self._model(reg, v["ModelName"])
            if "InstanceType" not in v and "ServerlessConfig" not in v:
                raise validation(f"Either InstanceType or ServerlessConfig must be provided for variant {v['VariantName']}.")
        spec = {k: copy.deepcopy(v) for k, v in p.items() if k not in ("EndpointConfigName", "Tags")}
        cfg = EndpointConfig(name=name, arn=self._arn(reg, "endpoint-config", name), spec=spec,
                             tags=list(p.get("Tags") or []))
        reg.configs[name] = cfg
        self._index_tags(reg, cfg)
        return {"EndpointConfigArn": cfg.arn}

    def op_DescribeEndpointConfig(self, reg: Region, p: dict) -> Any:
        return self._config(reg, p["EndpointConfigName"]).describe()

    def op_DeleteEndpointConfig(self, reg: Region, p: dict) -> Any:
        self._config(reg, p["EndpointConfigName"])
        self._index_tags(reg, reg.configs.pop(p["EndpointConfigName"]), deleted=True)
        return {}

    def op_ListEndpointConfigs(self, reg: Region, p: dict) -> Any:
        items = [{"EndpointConfigName": c.name, "EndpointConfigArn": c.arn, "CreationTime": c.created}
                 for c in reg.configs.values()]
        return self._list(items, p, "EndpointConfigs", "EndpointConfigName",
                          {"Name": "EndpointConfigName", "CreationTime": "CreationTime"}, default_sort="CreationTime")

    # -- endpoints ------------------------------------------------------------------------------
    def op_CreateEndpoint(self, reg: Region, p: dict) -> Any:
        name = p["EndpointName"]
        if name in reg.endpoints:
            raise validation(f'Cannot create already existing endpoint "{self._arn(reg, "endpoint", name)}".')
        cfg = self._config(reg, p["EndpointConfigName"])
        for v in cfg.variants:
            self._model(reg, v["ModelName"])
        self._check_quota(reg, cfg, None)
        ep = Endpoint(name=name, arn=self._arn(reg, "endpoint", name), config=cfg.name,
                      tags=list(p.get("Tags") or []), deployment_config=p.get("DeploymentConfig"))
        ep.pending = self.deployer.build_fleet(reg, ep, cfg)
        ep.pending_started = time.time()
        reg.endpoints[name] = ep
        self._index_tags(reg, ep)
        self._start(reg, ep, ep.pending)
        notifications.send_test(reg.account, reg.region, cfg.spec.get("AsyncInferenceConfig"))
        return {"EndpointArn": ep.arn}

    def _start(self, reg: Region, ep: Endpoint, fleet: Any) -> None:
        ep.generation += 1
        generation = ep.generation
        self.clock.after(deploy.PROVISION, lambda: self.deployer.launch(reg, ep, fleet, generation))

    def op_DescribeEndpoint(self, reg: Region, p: dict) -> Any:
        return self.describe_endpoint(reg, self._endpoint(reg, p["EndpointName"]))

    def describe_endpoint(self, reg: Region, ep: Endpoint) -> dict:
        out: Dict[str, Any] = {"EndpointName": ep.name, "EndpointArn": ep.arn, "EndpointConfigName": ep.config}
        live_cfg = reg.configs.get(ep.live.config) if ep.live else None
        if ep.live is not None:
            out["ProductionVariants"] = [self._variant_summary(vf, ep.traffic_to_pending if ep.pending else 0.0)
                                         for vf in ep.live.variants.values()]
            spec = live_cfg.spec if live_cfg else {}
            if spec.get("DataCaptureConfig"):
                out["DataCaptureConfig"] = _data_capture_summary(spec["DataCaptureConfig"])
            if spec.get("AsyncInferenceConfig"):
                out["AsyncInferenceConfig"] = spec["AsyncInferenceConfig"]
        out["EndpointStatus"] = ep.status
        if ep.failure_reason:
            out["FailureReason"] = ep.failure_reason
        out["CreationTime"] = ep.created
        out["LastModifiedTime"] = ep.modified
        if ep.deployment_config:
            out["LastDeploymentConfig"] = ep.deployment_config
        if ep.pending is not None:
            # "PendingDeploymentSummary: Returns the summary of an in-progress deployment. This field is only
            # returned when the endpoint is creating or updating with a new endpoint configuration."
            # (API_DescribeEndpoint)
            out["PendingDeploymentSummary"] = {
                "EndpointConfigName": ep.pending.config,
                "ProductionVariants": [
                    {**self._variant_summary(vf, ep.traffic_to_pending),
                     "VariantStatus": [self._variant_status(ep)]}
                    for vf in ep.pending.variants.values()],
                "StartTime": ep.pending_started,
            }
        return out

    @staticmethod
    def _variant_status(ep: Endpoint) -> dict:
        if ep.status == "RollingBack":
            return {"Status": "Deleting", "StatusMessage": "Rolling back: all traffic is on the previous fleet",
                    "StartTime": ep.pending_started}
        if ep.traffic_to_pending:
            return {"Status": "Baking", "StatusMessage": f"Baking: {round(ep.traffic_to_pending * 100)}% of traffic "
                    "on the new fleet", "StartTime": ep.pending_started}
        return {"Status": "Creating", "StatusMessage": "Provisioning the new fleet", "StartTime": ep.pending_started}

    @staticmethod
    def _variant_summary(vf: Any, share: float) -> dict:
        out = {
            "VariantName": vf.name,
            "DeployedImages": [{"SpecifiedImage": vf.image, "ResolvedImage": vf.resolved,
                                "ResolutionTime": vf.resolved_at}],
            "CurrentWeight": vf.weight,
            "DesiredWeight": vf.weight,
            "CurrentInstanceCount": len(vf.serving()),
            "DesiredInstanceCount": vf.desired,
        }
        if vf.serverless:
            out.pop("CurrentInstanceCount")
            out.pop("DesiredInstanceCount")
        return out

    def op_UpdateEndpoint(self, reg: Region, p: dict) -> Any:
        ep = self._endpoint(reg, p["EndpointName"])
        if ep.status in BUSY:
            raise validation(f'Cannot update in-progress endpoint "{ep.arn}".')
        if ep.status == "Failed":
            # A Failed endpoint cannot be updated; delete and create it again (API_UpdateEndpoint).
            raise validation(f'Cannot update failed endpoint "{ep.arn}". Delete it and create it again.')
        cfg = self._config(reg, p["EndpointConfigName"])
        for v in cfg.variants:
            self._model(reg, v["ModelName"])
        self._check_autoscaling(reg, ep, cfg)
        policy = p.get("DeploymentConfig") or {}
        if not policy and p.get("RetainDeploymentConfig"):
            policy = copy.deepcopy(ep.deployment_config or {})
        counts, weights = {}, {}
        live = ep.live.variants if ep.live else {}
        excluded = {e.get("VariantPropertyType") for e in p.get("ExcludeRetainedVariantProperties") or []}
        if p.get("RetainAllVariantProperties"):
            for name, vf in live.items():
                if "DesiredInstanceCount" not in excluded:
                    counts[name] = vf.desired
                if "DesiredWeight" not in excluded:
                    weights[name] = vf.weight
        self._check_deployment_config(reg, ep, cfg, policy, counts)
        self._check_quota(reg, cfg, ep, counts, rolling=policy.get("RollingUpdatePolicy"))
        fleet = self.deployer.build_fleet(reg, ep, cfg, counts, weights)
        ep.pending, ep.pending_started = fleet, time.time()
        ep.status, ep.failure_reason, ep.modified = "Updating", None, time.time()
        if policy or not p.get("RetainDeploymentConfig"):
            # "RetainDeploymentConfig: Specifies whether to reuse the last deployment configuration. The default
            # value is false (the configuration is not reused)." (API_UpdateEndpoint)
            ep.deployment_config = policy or None
        self._start(reg, ep, fleet)
        notifications.send_test(reg.account, reg.region, cfg.spec.get("AsyncInferenceConfig"))
        limit = deploy.max_execution_time(policy)
        if limit:
            self.deployer.time_limit(reg, ep, fleet, ep.generation, limit)
        return {"EndpointArn": ep.arn}

    def _check_autoscaling(self, reg: Region, ep: Endpoint, cfg: Any) -> None:
        """"Update or delete endpoints that use auto scaling" (endpoint-scaling.html; also
        endpoint-scaling-update.html), SageMaker Developer Guide: an update that changes the instance
        type of, or removes, a variant registered as a scalable target fails; changing only the model
        is allowed; once the variant is deregistered (DeregisterScalableTarget) the update goes ahead."""
        if ep.live is None:
            return
        new = {v["VariantName"]: v for v in cfg.variants}
        blocked = []
        for name, vf in ep.live.variants.items():
            if peers.scalable_target(reg.account, reg.region, ep.name, name) is None:
                continue
            if name not in new or new[name].get("InstanceType") != vf.instance_type:
                blocked.append(name)
        if blocked:
            raise validation(
                f"The variant(s) \"[{', '.join(blocked)}]\" of endpoint \"{ep.arn}\" are registered as scalable "
                "targets with Application Auto Scaling and this update would remove them or change their instance "
                "type. Deregister them (DeregisterScalableTarget) before updating, then register them again.")

    def _check_deployment_config(self, reg: Region, ep: Endpoint, cfg: Any, policy: dict, counts: dict) -> None:
        """Deployment guardrails' exclusions (deployment-guardrails-exclusions.html): blue/green and
        rolling need the same variant names; rolling is not for serverless or multi-variant endpoints;
        auto-rollback alarms must exist. Then their documented limits (deploy.guardrail_errors)."""
        if not policy:
            return
        live = set(ep.live.variants) if ep.live else set()
        new = {v["VariantName"] for v in cfg.variants}
        if live and live != new:
            raise validation("Deployment guardrails require the new endpoint config to have the same production "
                             f"variant names as the current one ({', '.join(sorted(live))}).")
        if policy.get("RollingUpdatePolicy"):
            if len(cfg.variants) > 1:
                raise validation("Rolling deployments are not supported for endpoints with multiple production variants.")
            if any("ServerlessConfig" in v for v in cfg.variants):
                raise validation("Rolling deployments are not supported for serverless endpoints.")
        for alarm in ((policy.get("AutoRollbackConfiguration") or {}).get("Alarms") or []):
            if peers.alarm_state(reg.account, reg.region, alarm.get("AlarmName", "")) is None:
                raise validation(f"CloudWatch alarm {alarm.get('AlarmName')} does not exist.")
        for v in cfg.variants:
            if "InstanceType" not in v:
                continue
            errors = deploy.guardrail_errors(policy, int(counts.get(v["VariantName"], v.get("InitialInstanceCount", 1))))
            if errors:
                raise validation(shapes.message(errors))

    def _check_quota(self, reg: Region, cfg: EndpointConfig, ep: Optional[Endpoint], counts: Optional[dict] = None,
                     rolling: Any = None) -> None:
        """ResourceLimitExceeded when instances of a type would exceed the account's
        "<type> for endpoint usage" quota (Service Quotas; "SageMaker AI endpoints and quotas").
        SageMaker answers it synchronously, from CreateEndpoint and UpdateEndpoint (both list
        ResourceLimitExceeded among their errors in botocore's sagemaker service-2.json), before
        changing anything; the wording is the one users report, e.g. aws-samples/aws-genai-llm-chatbot#244
        (UpdateEndpoint/CreateEndpoint, 2023: "... Please use AWS Service Quotas to request an increase
        for this quota") and awsdocs/amazon-sagemaker-developer-guide#70 (the older "Please contact AWS
        support ..." ending). Utilization counts every fleet of every endpoint, both fleets of a
        blue/green update included. A rolling update needs room for one batch only
        (deployment-guardrails-rolling.html)."""
        need: dict = {}
        for v in cfg.variants:
            if "InstanceType" in v:
                n = int((counts or {}).get(v["VariantName"], v.get("InitialInstanceCount", 1)))
                if rolling:
                    n = deploy.batch_instances(rolling.get("MaximumBatchSize") or {}, n)
                need[v["InstanceType"]] = need.get(v["InstanceType"], 0) + n
        for itype, n in need.items():
            limit = self.quota(reg, itype)
            used = self.instances_in_use(reg, itype)
            if used + n > limit:
                raise ServiceError(
                    "ResourceLimitExceeded",
                    f"The account-level service limit '{itype} for endpoint usage' is {limit} Instances, with current "
                    f"utilization of {used} Instances and a request delta of {n} Instances. Please use AWS Service "
                    "Quotas to request an increase for this quota.")

    @staticmethod
    def quota(reg: Region, itype: str) -> int:
        return reg.quotas.get(itype, DEFAULT_ENDPOINT_QUOTA)

    @staticmethod
    def instances_in_use(reg: Region, itype: str) -> int:
        total = 0
        for e in reg.endpoints.values():
            for fleet in (e.live, e.pending):
                if fleet is None or fleet.state in ("Failed", "Terminated"):
                    continue
                total += sum(v.desired for v in fleet.variants.values() if v.instance_type == itype)
        return total

    def op_DeleteEndpoint(self, reg: Region, p: dict) -> Any:
        ep = self._endpoint(reg, p["EndpointName"])
        if ep.status in ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"):
            # AWS answers a delete of a busy endpoint with the update wording: aws/amazon-sagemaker-operator-for-k8s,
            # controllers/sdkutil/clientwrapper/sagemaker_client.go, DeleteEndpointInProgressMessagePrefix = "Cannot update
            # in-progress endpoint" (ValidationException).
            raise validation(f'Cannot update in-progress endpoint "{ep.arn}".')
        ep.status, ep.modified = "Deleting", time.time()
        ep.generation += 1
        # Deleting an endpoint deregisters its variants' scalable targets
        # ("Delete endpoints configured for auto scaling", endpoint-scaling.html).
        peers.deregister_endpoint(reg.account, reg.region, ep.name)

        def gone() -> None:
            for fleet in (ep.live, ep.pending):
                if fleet is not None:
                    self.deployer.terminate(reg, ep, fleet)
            if reg.endpoints.get(ep.name) is ep:
                self._index_tags(reg, reg.endpoints.pop(ep.name), deleted=True)

        self.clock.after(deploy.DELETE, gone)
        return {}

    def op_ListEndpoints(self, reg: Region, p: dict) -> Any:
        items = [{"EndpointName": e.name, "EndpointArn": e.arn, "CreationTime": e.created,
                  "LastModifiedTime": e.modified, "EndpointStatus": e.status} for e in reg.endpoints.values()]
        if p.get("StatusEquals"):
            items = [i for i in items if i["EndpointStatus"] == p["StatusEquals"]]
        for key, field_, cmp in (("LastModifiedTimeBefore", "LastModifiedTime", -1),
                                 ("LastModifiedTimeAfter", "LastModifiedTime", 1)):
            if p.get(key) is not None:
                items = [i for i in items if (i[field_] - _ts(p[key])) * cmp > 0]
        return self._list(items, p, "Endpoints", "EndpointName",
                          {"Name": "EndpointName", "CreationTime": "CreationTime", "Status": "EndpointStatus"},
                          default_sort="CreationTime")

    def op_UpdateEndpointWeightsAndCapacities(self, reg: Region, p: dict) -> Any:
        ep = self._endpoint(reg, p["EndpointName"])
        if ep.status == "Failed":
            raise validation(f'Cannot update failed endpoint "{ep.arn}". Delete it and create it again.')
        if ep.status != "InService" or ep.live is None:
            raise validation(f'Cannot update in-progress endpoint "{ep.arn}".')
        unknown = [d["VariantName"] for d in p["DesiredWeightsAndCapacities"] if d["VariantName"] not in ep.live.variants]
        if unknown:
            raise validation(f"The variant(s) \"[{', '.join(unknown)}]\" are not present in endpoint \"{ep.arn}\".")
        ep.status, ep.modified = "Updating", time.time()
        ep.generation += 1
        generation = ep.generation
        pending = {"n": 0}

        def one_done() -> None:
            pending["n"] -= 1
            if pending["n"] <= 0 and ep.generation == generation and ep.status == "Updating":
                ep.status, ep.modified = "InService", time.time()

        for d in p["DesiredWeightsAndCapacities"]:
            vf = ep.live.variants[d["VariantName"]]
            if d.get("DesiredWeight") is not None:
                vf.weight = float(d["DesiredWeight"])
            if d.get("DesiredInstanceCount") is not None:
                pending["n"] += 1
                self.deployer.resize(reg, ep, vf.name, int(d["DesiredInstanceCount"]), generation, one_done)
        if pending["n"] == 0:
            self.clock.after(1, one_done)
        live_cfg = reg.configs.get(ep.live.config)
        notifications.send_test(reg.account, reg.region, live_cfg.spec.get("AsyncInferenceConfig") if live_cfg else None)
        return {"EndpointArn": ep.arn}

    # -- tags -------------------------------------------------------------------------------------
    def _index_tags(self, reg: Region, item: Any, deleted: bool = False) -> None:
        """The Tagging API's index learns of `item`'s tags TAG_INDEX_LAG later, of its deletion
        TAG_INDEX_DELETE_LAG later; a resource never tagged is not in it ("GetResources does not return
        untagged resources"; "Resources that were previously tagged, but do not currently have tags, are
        shown with an empty tag set")."""
        snapshot, where = [dict(t) for t in item.tags], item.arn

        def index() -> None:
            if deleted:
                if not any(i.arn == where for c in (reg.models, reg.configs, reg.endpoints) for i in c.values()):
                    reg.tag_index.pop(where, None)  # unless a resource of the same name was made since
            elif snapshot or where in reg.tag_index:
                reg.tag_index[where] = snapshot

        self.clock.after(TAG_INDEX_DELETE_LAG if deleted else TAG_INDEX_LAG, index)

    def _tagged(self, reg: Region, resource_arn: str) -> Any:
        for coll in (reg.models, reg.configs, reg.endpoints):
            for item in coll.values():
                if item.arn == resource_arn:
                    return item
        raise validation(f"Could not find resource {resource_arn}.")

    def op_AddTags(self, reg: Region, p: dict) -> Any:
        item = self._tagged(reg, p["ResourceArn"])
        keep = {t["Key"]: t for t in item.tags}
        for t in p["Tags"]:
            keep[t["Key"]] = t
        if len(keep) > 50:
            raise validation("A resource can have at most 50 tags.")
        item.tags = list(keep.values())
        self._index_tags(reg, item)
        return {"Tags": p["Tags"]}

    def op_ListTags(self, reg: Region, p: dict) -> Any:
        item = self._tagged(reg, p["ResourceArn"])
        return self._page(list(item.tags), p, "Tags", default_max=50)

    def op_DeleteTags(self, reg: Region, p: dict) -> Any:
        item = self._tagged(reg, p["ResourceArn"])
        drop = set(p["TagKeys"])
        item.tags = [t for t in item.tags if t["Key"] not in drop]
        self._index_tags(reg, item)
        return {}

    # -- listing ----------------------------------------------------------------------------------
    def _list(self, items: Any, p: dict, key: Any, name_field: Any, sort_fields: Any, default_sort: Any) -> Any:
        if p.get("NameContains"):
            needle = p["NameContains"].lower()
            items = [i for i in items if needle in i[name_field].lower()]
        for pkey, cmp in (("CreationTimeBefore", -1), ("CreationTimeAfter", 1)):
            if p.get(pkey) is not None:
                items = [i for i in items if (i["CreationTime"] - _ts(p[pkey])) * cmp > 0]
        field_ = sort_fields.get(p.get("SortBy") or default_sort, sort_fields[default_sort])
        items.sort(key=lambda i: (i[field_], i[name_field]), reverse=(p.get("SortOrder") or "Descending") == "Descending")
        return self._page(items, p, key)

    @staticmethod
    def _page(items: Any, p: dict, key: Any, default_max: int=10) -> Any:
        start = 0
        if p.get("NextToken"):
            try:
                start = int(base64.b64decode(p["NextToken"]).decode())
            except (ValueError, UnicodeDecodeError):
                raise validation("Invalid pagination token.") from None
        size = int(p.get("MaxResults") or default_max)
        out = {key: items[start:start + size]}
        if start + size < len(items):
            out["NextToken"] = base64.b64encode(str(start + size).encode()).decode()
        return out


def _data_capture_summary(dc: dict) -> dict:
    """DescribeEndpoint's DataCaptureConfigSummary: botocore's model requires all five members (KmsKeyId
    is empty when the config named no key); capture is Stopped when EnableCapture is false
    (API_DataCaptureConfigSummary, CaptureStatus: Started | Stopped)."""
    enabled = dc.get("EnableCapture", True)
    return {"EnableCapture": enabled, "CaptureStatus": "Started" if enabled else "Stopped",
            "CurrentSamplingPercentage": dc.get("InitialSamplingPercentage"),
            "DestinationS3Uri": dc.get("DestinationS3Uri"), "KmsKeyId": dc.get("KmsKeyId") or ""}


def _ts(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    import datetime

    try:
        return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return float(value)
