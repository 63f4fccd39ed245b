"""byoc as a library: one call per operation, typed results, the same code the CLI runs.

    import byoc
    result = byoc.update("infer-endpoint-1a2b3c4", "123456789012.dkr.ecr.us-east-1.amazonaws.com/sd:v2",
                         region="us-east-1")
    if result.result == "failed":
        print(result.failure_reason, result.diagnosis)

Errors raise `byoc.errors.ByocError` subclasses (with `.exit_code`, `.message`, `.fix`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, List, Optional, Union

from byoc.aws.client import Aws

if TYPE_CHECKING:  # the operations load on first use (see byoc/__init__.py)
    from byoc.deploy.plan import UpdatePlan
    from byoc.deploy.results import UpdateResult
    from byoc.endpoint.revisions import Revision
    from byoc.observe.diagnose import Diagnosis
    from byoc.observe.status import Status
    from byoc.observe.verify import Verification


def session(region: Optional[str] = None, profile: Optional[str] = None, endpoint_url: Optional[str] = None) -> Aws:
    """The AWS layer every operation takes (boto3's credential chain, byoc's retries and errors)."""
    return Aws(region=region, profile=profile, endpoint_url=endpoint_url)


def _run(aws: Aws, plan: UpdatePlan, dry_run: bool, wait: bool, timeout: float,
         events: Optional[Callable]) -> UpdateResult:
    """The CLI's code path: `dry_run` returns the plan `byoc ... --dry-run -o json` prints."""
    from byoc.deploy import apply

    if dry_run:
        return apply.dry_run(plan)
    return apply.apply(aws, plan, wait=wait, timeout=timeout, events=events)


def update(endpoint: str, image: str, *, aws: Optional[Aws] = None, region: Optional[str] = None,
           profile: Optional[str] = None, strategy: str = "blue-green", force: bool = False, dry_run: bool = False,
           wait: bool = True, timeout: float = 3600.0, keep: int = 5, traffic: Optional[str] = None,
           rolling: Optional[str] = None, alarms: tuple = (), max_time: Optional[int] = None,
           events: Optional[Callable] = None, env: Optional[dict] = None, unset_env: tuple = (),
           env_files: tuple = (), instance_type: Any = ()) -> UpdateResult:
    """Replace `endpoint`'s image (an ECR URI or "default"), and optionally set/unset container
    environment variables and change instance types ("TYPE" or "VARIANT=TYPE", one or a tuple);
    returns an `UpdateResult`."""
    from byoc.deploy.changes import parse
    from byoc.deploy.guardrails import deployment_config
    from byoc.deploy.plan import plan_update

    types = (instance_type,) if isinstance(instance_type, str) else tuple(instance_type)
    changes = parse(env=tuple(f"{k}={v}" for k, v in (env or {}).items()), unset_env=tuple(unset_env),
                    env_files=tuple(env_files), instance_type=types)
    aws = aws or session(region, profile)
    plan = plan_update(aws, endpoint, image, strategy=strategy, force=force, keep=keep,
                       deployment_config=deployment_config(traffic, rolling, tuple(alarms), max_time), changes=changes)
    return _run(aws, plan, dry_run, wait, timeout, events)


def restore(endpoint: str, *, default_image: Optional[str] = None, aws: Optional[Aws] = None,
            region: Optional[str] = None, profile: Optional[str] = None, dry_run: bool = False, wait: bool = True,
            timeout: float = 3600.0, keep: int = 5, events: Optional[Callable] = None) -> UpdateResult:
    """Back to the default image (revision 0's when known); returns an `UpdateResult`."""
    from byoc.deploy.rollback import plan_restore

    aws = aws or session(region, profile)
    return _run(aws, plan_restore(aws, endpoint, default_image, keep=keep), dry_run, wait, timeout, events)


def rollback(endpoint: str, *, to: Optional[int] = None, aws: Optional[Aws] = None, region: Optional[str] = None,
             profile: Optional[str] = None, dry_run: bool = False, wait: bool = True, timeout: float = 3600.0,
             events: Optional[Callable] = None) -> UpdateResult:
    """Back to an earlier revision's retained config; returns an `UpdateResult`."""
    from byoc.deploy.rollback import plan_rollback

    aws = aws or session(region, profile)
    return _run(aws, plan_rollback(aws, endpoint, to), dry_run, wait, timeout, events)


def history(endpoint: str, *, aws: Optional[Aws] = None, region: Optional[str] = None,
            profile: Optional[str] = None) -> List[Revision]:
    """Revisions, newest first (`byoc.endpoint.revisions.Revision`)."""
    from byoc.endpoint import revisions
    from byoc.endpoint import view as endpoint_view

    aws = aws or session(region, profile)
    return revisions.history(aws, endpoint_view.load(aws, endpoint))


def status(endpoint: str, *, aws: Optional[Aws] = None, region: Optional[str] = None,
           profile: Optional[str] = None) -> Status:
    """What the endpoint runs now (`byoc.observe.status.Status`)."""
    from byoc.observe.status import status as status_of

    return status_of(aws or session(region, profile), endpoint)


def verify(endpoint: str, *, image: Optional[str] = None, aws: Optional[Aws] = None, region: Optional[str] = None,
           profile: Optional[str] = None, **kwargs: Any) -> Verification:
    """PASS/FAIL with reasons (`byoc.observe.verify.Verification`)."""
    from byoc.observe.verify import verify as verify_endpoint

    return verify_endpoint(aws or session(region, profile), endpoint, image=image, **kwargs)


def diagnose(endpoint: str, *, since: Union[int, str, None] = None, aws: Optional[Aws] = None,
             region: Optional[str] = None, profile: Optional[str] = None) -> Diagnosis:
    """Ranked findings (`byoc.observe.diagnose.Diagnosis`)."""
    from byoc.observe.diagnose import diagnose as diagnose_endpoint

    return diagnose_endpoint(aws or session(region, profile), endpoint, since=since)
