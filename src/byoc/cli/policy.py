"""`byoc policy`: print the least-privilege IAM policy for the features you use."""

from __future__ import annotations

import json
from typing import Any

import click

from byoc.cli.common import Ctx, aws_options

GRANT_KEYS = ("features", "actions", "commands", "why", "by", "degrades")


@click.command("policy")
@click.option("--features", default="all", show_default=True, metavar="LIST",
              help="Comma-separated: update,verify,logs,build,fleet,prune, or all.")
@click.option("--endpoint-pattern", multiple=True, metavar="GLOB",
              help="Endpoints to allow; repeat it or separate with commas (default: the names of the solution "
                   "generations found in the region); models and configs follow from it.")
@click.option("--solution", "generations", multiple=True, metavar="GEN",
              help="Scope to these solution generations without looking at the region: infer (v1.0-v1.3), "
                   "esd (v1.4, v1.5), v1.6 (v1.6+); repeat it or separate with commas.")
@click.option("--partition", help="aws, aws-cn or aws-us-gov (default: the region's).")
@click.option("--account", metavar="ID", help="12-digit account id (default: STS GetCallerIdentity).")
@click.option("--role-pattern", multiple=True, metavar="GLOB",
              help="Execution roles byoc may pass to SageMaker (default: those of the generations in scope).")
@click.option("--repository", metavar="NAME", help="ECR repository to read and push (default: any in the account).")
@click.option("--bucket-pattern", metavar="GLOB", help="S3 buckets of async inputs and outputs (default: any).")
@click.option("--explain", is_flag=True, help="Comment each statement with the commands that need it.")
@aws_options
def policy_cmd(c: Ctx, features: Any, endpoint_pattern: Any, generations: Any, partition: Any, account: Any, role_pattern: Any, repository: Any,
               bucket_pattern: Any, explain: bool) -> int:
    """Print the identity policy byoc needs, as one IAM policy document.

    Over IAM's 2,048-character limit for a user's inline policies (the default, all features,
    is), attach it as a managed policy (`aws iam create-policy`) or to a role; a note on stderr
    says which fits. Partition, region and account default to what the session and STS say;
    pass all three to generate a policy without AWS credentials. Without --endpoint-pattern or
    --solution, the policy covers the solution generations whose endpoints are in the region
    (every generation when none is found or the region cannot be listed).
    """
    from byoc.errors import BadInput
    from byoc.iam import policy as ops

    selected = ops.parse_features(features)
    region = c.region or c.aws.region
    if region == "*" and not (account and partition):
        raise BadInput("--region '*' names no region byoc could ask STS or its partition from.",
                       "Add --account ID and --partition (aws, aws-cn, aws-us-gov), e.g. --region '*' "
                       "--partition aws --account 123456789012.")
    found = None
    if not endpoint_pattern and not generations and region != "*":
        from byoc.aws.client import Aws

        # One quick look (1 s to connect, one attempt): offline, the policy covers every generation at once.
        found = ops.generations_in_region(Aws(region=region, profile=c.profile, endpoint_url=c.endpoint_url,
                                              quick=True))
        generations = found.generations
    scope = ops.make_scope(partition, region, account or c.aws.account, endpoint_pattern, role_pattern,
                           repository, bucket_pattern, generations)
    if found:
        c.progress(f"note: {found.note}")
    result = ops.generate(selected, scope)
    document = result.document

    if c.json:
        if explain:
            c.emit({"policy": document, "size": result.size, "fits": result.fits(),
                    "statements": [{"sid": s.sid, "grants": [{k: g[k] for k in GRANT_KEYS if k in g} for g in s.grants]}
                                   for s in result.statements]})
        else:
            c.emit(document)
        return 0

    if explain:
        click.echo(render_explained(result))
    else:
        click.echo(json.dumps(document, indent=2))
    _size_note(c, result)
    return 0


def render_explained(result: Any) -> str:
    """The policy with a `//` comment above each statement (for reading, not for IAM)."""
    lines = [f"// byoc policy for {', '.join(result.features)} in {result.scope.partition} "
             f"{result.scope.region} {result.scope.account}: {result.size} characters",
             "{", f'  "Version": "{result.document["Version"]}",', '  "Statement": [']
    for i, st in enumerate(result.statements):
        for g in st.grants:
            names = ", ".join(a.split(":", 1)[1] for a in g["actions"])
            lines.append(f"    // [{', '.join(g['features'])}] {names}: byoc {', byoc '.join(g['commands'])}.")
            lines.append(f"    //   {g['why']}")
            if g.get("by") == "builder":
                lines.append("    //   (called by the builder with the ECR login, not by byoc itself)")
            if g.get("degrades"):
                lines.append(f"    //   {g['degrades']}")
        body = json.dumps(st.document, indent=2).splitlines()
        body[-1] += "," if i < len(result.statements) - 1 else ""
        lines.extend("    " + line for line in body)
    lines += ["  ]", "}"]
    return "\n".join(lines)


def _size_note(c: Ctx, result: Any) -> None:
    fits = result.fits()
    if "inline user policy" in fits:
        return
    if "managed policy" in fits:
        how = "create it as a managed policy (`aws iam create-policy`) and `aws iam attach-user-policy`, or put it on a role"
    elif fits:
        how = "put it on a role (`aws iam put-role-policy`)"
    else:
        how = "generate one policy per feature (--features) and attach them separately"
    c.progress(f"note: {result.size} characters (without whitespace) is over the 2,048 IAM allows for a "
               f"user's inline policies; {how}.")


COMMANDS = [policy_cmd]
