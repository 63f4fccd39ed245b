"""`byoc init`, `byoc build`, `byoc check-contract`, `byoc test-image`: step 1, build your container."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

import click

from byoc.cli.common import Ctx, Duration, aws_options, output_option

if TYPE_CHECKING:
    from rich.console import Console

BUILDER_CHOICE = click.Choice(["docker", "finch", "podman"])
REFUSED_GRACE = 20.0  # check-contract: seconds of refused connections before it says nothing listens


def _payload(path: Any) -> Any:
    """The bytes of --payload FILE (None: check-contract's default prompt)."""
    if path is None:
        return None
    from byoc.errors import BadInput

    p = Path(path)
    if not p.is_file():
        raise BadInput(f"Payload file '{path}' does not exist.", "Pass --payload with a file holding one request body.")
    return p.read_bytes()


def _aws_for(c: Ctx) -> Any:
    """A factory of `Aws` sessions in other regions, with the same profile and endpoint."""
    def make(region: Optional[str]) -> Any:
        from byoc.aws.client import Aws

        return Aws(region=region, profile=c.profile, endpoint_url=c.endpoint_url)
    return make


def _print_report(console: Console, report: Any) -> None:
    console.print(f"check-contract {report.url}")
    for chk in report.checks:
        style = "green" if chk.ok else "bold red"
        console.print(f"  [{style}]{chk.status}[/{style}]  {chk.name:<16} {chk.detail}")
        if not chk.ok and chk.fix:
            console.print(f"        {'':<16} fix: {chk.fix}", markup=False, soft_wrap=True)
    failed = sum(1 for chk in report.checks if not chk.ok)
    verdict = "[green]PASS[/green]" if report.ok else f"[bold red]FAIL[/bold red] ({failed} of {len(report.checks)} checks failed)"
    console.print(f"Result: {verdict}")


# -- init -----------------------------------------------------------------------------------

@click.command("init")
@click.argument("dir", required=False, default=".")
@click.option("--base", default="solution", show_default=True, metavar="solution|dlc|IMAGE",
              help="Start from the solution's inference image, the region's AWS PyTorch inference DLC, or any image.")
@click.option("--extension", "extensions", multiple=True, metavar="URL#BRANCH#COMMIT",
              help="An extension to clone at its commit (at most 3), in the solution's format.")
@click.option("--apt", multiple=True, metavar="PKG", help="An apt package to install (repeatable).")
@click.option("--pip", multiple=True, metavar="PKG", help="A pip requirement to install, e.g. xformers==0.0.28 (repeatable).")
@click.option("--extensions-dir", metavar="PATH", help="Where extensions are cloned (default: the base's extensions folder).")
@click.option("--force", is_flag=True, help="Overwrite an existing Dockerfile and .dockerignore.")
@aws_options
def init_cmd(c: Ctx, dir: Any, base: Any, extensions: Any, apt: Any, pip: Any, extensions_dir: Any, force: bool) -> int:
    """Write a Dockerfile (and .dockerignore) for your image into DIR (default: current directory)."""
    from byoc.container import dockerfile

    exts = dockerfile.parse_extensions(extensions)
    dockerfile.check_packages(apt, pip)
    resolved = dockerfile.resolve_base(base, c.region, lambda: c.aws)
    result = dockerfile.write(dir, resolved, exts, apt, pip, force=force, extensions_dir=extensions_dir)

    def text(console: Console) -> None:
        files = result.files
        console.print(f"Wrote {', '.join(files[:-1])} and {files[-1]}" if len(files) > 1 else f"Wrote {files[0]}",
                      soft_wrap=True)
        console.print(f"  base: {resolved.source}")
        console.print(f"  FROM {resolved.image}")
        for ext in exts:
            console.print(f"  extension: {ext.name} at {ext.commit[:12]} ({ext.branch})")
        if str(Path(result.dir) / "serve") in result.files:
            console.print(f"Next: make {Path(result.dir) / 'serve'} (a starter that answers /ping and /invocations) "
                          "run your model: replace Model.load and Model.generate, then", soft_wrap=True)
        else:
            console.print("Next:")
        console.print(f"  byoc build {result.dir} --repository <name> --push")

    c.emit(result.to_dict(), text)
    return 0


# -- build ----------------------------------------------------------------------------------

@click.command("build")
@click.argument("dir", required=False, default=".")
@click.option("--repository", required=True, metavar="NAME", help="ECR repository to tag (and push) the image in.")
@click.option("--tag", help="Image tag (default: the UTC time, YYYYmmdd-HHMMSS).")
@click.option("--push", is_flag=True, help="Create the repository if missing (scan on push), push, print the pinned URI.")
@click.option("--platform", default="linux/amd64", show_default=True,
              help="Target platform; SageMaker GPU instances are x86_64.")
@click.option("--builder", type=BUILDER_CHOICE, help="Builder to use (default: the first of docker, finch, podman found).")
@click.option("--dry-run", is_flag=True, help="Show the plan and the command lines; run nothing.")
@aws_options
def build_cmd(c: Ctx, dir: Any, repository: Any, tag: Any, push: bool, platform: Any, builder: Any, dry_run: bool) -> int:
    """Build the image in DIR; with --push, push it to ECR and print its digest-pinned URI."""
    from byoc.container import build

    plan = build.plan_build(c.aws, dir, repository, tag, push, platform, builder)
    if dry_run:
        def plan_text(console: Console) -> None:
            console.print(f"Would build {plan.image} ({plan.platform}) with {plan.builder.name}:")
            if plan.push and not plan.repository_exists:
                console.print(f"  create ECR repository {plan.repository} (scan on push)")
            for cmd in plan.commands():
                console.print("  " + " ".join(cmd) + ("  (password on stdin)" if cmd[1] == "login" else ""))
        c.emit({"dry_run": True, "plan": plan.to_dict()}, plan_text)
        return 0
    result = build.apply_build(c.aws, plan, on_line=lambda line: click.echo(line, err=True),
                               progress=c.progress, aws_for_region=_aws_for(c))

    def text(console: Console) -> None:
        if result.pinned:
            c.progress(f"Pushed {result.image}; pinned by digest (ready for `byoc update`):")
            console.print(result.pinned)
        else:
            c.progress(f"Built {result.image} ({result.build_seconds} s); push it with --push.")
            console.print(result.image)

    c.emit(result.to_dict(), text)
    return 0


# -- check-contract -------------------------------------------------------------------------

def _contract_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--payload", metavar="FILE", help="Request body for POST /invocations (default: a small prompt)."),
        click.option("--content-type", default="application/json", show_default=True,
                     help="Content-Type of the request body."),
        click.option("--accept", default="application/json", show_default=True,
                     help="Accept header; JSON answers are checked to parse."),
        click.option("--startup-timeout", type=Duration(), default="5m", show_default=True,
                     help="How long GET /ping may take to answer 200 after start: seconds or 5m."),
        click.option("--invocation-timeout", type=Duration(minimum=0.1), default="10m", show_default=True,
                     help="How long to wait for POST /invocations: seconds or 10m."),
    ]):
        func = option(func)
    return func


@click.command("check-contract")
@click.option("--url", required=True, metavar="http://HOST:PORT", help="Where the container listens.")
@_contract_options
@click.option("--wait", is_flag=True, help="Wait the whole --startup-timeout even while nothing listens at --url "
              f"(default: give up after {REFUSED_GRACE:g} s of refused connections).")
@output_option
def check_contract_cmd(c: Ctx, url: Any, payload: Any, content_type: Any, accept: Any, startup_timeout: Any,
                       invocation_timeout: Any, wait: bool) -> int:
    """Check a running container against the SageMaker hosting contract (exit 1 on FAIL)."""
    from byoc.container import contract

    body = _payload(payload)
    report = contract.check(url, body, content_type, accept, startup_timeout, invocation_timeout,
                            progress=c.progress, refused_grace=None if wait else REFUSED_GRACE)
    if report.unreachable:
        raise contract.unreachable_error(report)
    c.emit(report.to_dict(), lambda console: _print_report(console, report))
    return 0 if report.ok else 1


# -- test-image -----------------------------------------------------------------------------

@click.command("test-image")
@click.argument("image")
@_contract_options
@click.option("--env", "env", multiple=True, metavar="NAME=VALUE", help="Container environment (repeatable).")
@click.option("--gpus", metavar="all|N|device=I[,J]", help="GPUs to give the container, e.g. all.")
@click.option("--model-dir", metavar="DIR", help="Mounted at /opt/ml/model, where SageMaker unpacks ModelDataUrl.")
@click.option("--port", type=int, default=8080, show_default=True, help="Host port mapped to the container's 8080.")
@click.option("--builder", type=BUILDER_CHOICE, help="Container tool (default: the first of docker, finch, podman).")
@aws_options
def test_image_cmd(c: Ctx, image: str, payload: Any, content_type: Any, accept: Any, startup_timeout: Any, invocation_timeout: Any,
                   env: Any, gpus: Any, model_dir: Any, port: Any, builder: Any) -> int:
    """Run IMAGE locally as SageMaker does, check the contract, diagnose failures, remove it."""
    from byoc.container import run_local

    body = _payload(payload)
    plan = run_local.plan_test(image, env, gpus, model_dir, port, builder)
    result = run_local.run_test(plan, body, content_type, accept, startup_timeout, invocation_timeout,
                                 on_log=lambda line: click.echo(f"  | {line}", err=True), progress=c.progress,
                                 aws_for_region=_aws_for(c))

    def text(console: Console) -> None:
        _print_report(console, result.report)
        if result.exit_code not in (None, ""):
            console.print(f"The container exited with code {result.exit_code}.")
        for f in result.findings:
            console.print(f"[bold]{f['severity']}[/bold]: {f['title']}")
            console.print(f"  cause: {f['cause']}", markup=False, soft_wrap=True)
            for ev in f["evidence"]:
                console.print(f"  log:   {ev['text']}", markup=False, soft_wrap=True)
            console.print(f"  fix:   {f['fix']}", markup=False, soft_wrap=True)
        console.print(f"Container {plan.name} {'removed' if result.removed else 'NOT removed'}.")

    c.emit(result.to_dict(), text)
    return 0 if result.report.ok else 1


COMMANDS = [init_cmd, build_cmd, check_contract_cmd, test_image_cmd]
