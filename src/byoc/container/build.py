"""`byoc build`: build an image with docker, finch or podman, push it to ECR, pin it by digest.

Plan, then apply. The plan validates everything first (builder on PATH, Dockerfile and the files
it copies, repository name, tag) and reads ECR only (DescribeRepositories), so bad input changes
nothing. Applying: log in to every ECR registry involved (GetAuthorizationToken; the password
goes to `<builder> login --password-stdin` on stdin, never argv, and is redacted from any
output), build for linux/amd64 (SageMaker's GPU instances are x86_64), create the repository
with scan on push if missing, push, and read the digest back (DescribeImages) to print the
digest-pinned URI `byoc update` takes.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

from byoc.aws.client import Aws, policy_statement
from byoc.errors import EXIT_FAILED, AuthError, AwsError, BadInput, ByocError
from byoc.images import ecr
from byoc.images import ref as image_ref

BUILDERS = ("docker", "finch", "podman")
INSTALL_FIX = ("Install Docker (https://docs.docker.com/engine/install/), Finch (https://runfinch.com) or "
               "Podman (https://podman.io/docs/installation); AWS CloudShell already has docker.")
DEFAULT_PLATFORM = "linux/amd64"
PLATFORM_RE = re.compile(r"^linux/(amd64|arm64)(/v\d)?$")
# Amazon ECR API Reference, CreateRepository: repositoryName, 2-256 characters.
REPOSITORY_RE = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DENIED_RE = re.compile(r"not authorized to perform:? (?P<action>ecr:\w+)(?: on resource:? (?P<resource>\S+))?")
_LOCAL_SOURCE_RE = re.compile(r"^(COPY|ADD)\s+(?P<args>.+)$", re.IGNORECASE)


class BuilderFailed(ByocError):
    """The builder (docker, finch, podman) exited non-zero; its output was shown."""

    exit_code = EXIT_FAILED


@dataclass(frozen=True)
class Builder:
    name: str
    path: str


@dataclass
class BuildPlan:
    dir: str
    dockerfile: str
    builder: Builder
    platform: str
    repository: str
    tag: str
    account: str
    region: str
    push: bool
    repository_exists: bool
    registries: list  # [(registry, region)] to log in to, target first
    base_images: list = field(default_factory=list)

    @property
    def image(self) -> str:
        return image_ref.registry_uri(self.account, self.region, self.repository, self.tag)

    def commands(self) -> list:
        """The builder command lines, as shown by --dry-run (login passwords go on stdin)."""
        cmds = [login_argv(self.builder.name, r) for r, _ in self.registries]
        cmds.append(build_argv(self.builder.name, self))
        if self.push:
            cmds.append([self.builder.name, "push", self.image])
        return cmds

    def to_dict(self) -> dict:
        return {"dir": self.dir, "dockerfile": self.dockerfile, "builder": self.builder.name,
                "platform": self.platform, "image": self.image, "push": self.push,
                "create_repository": self.push and not self.repository_exists,
                "logins": [r for r, _ in self.registries], "base_images": self.base_images,
                "commands": [" ".join(c) for c in self.commands()]}


@dataclass
class BuildResult:
    image: str  # repo:tag as built
    pinned: Optional[str]  # repo@sha256:... once pushed
    digest: Optional[str]
    repository: str
    tag: str
    pushed: bool
    repository_created: bool
    builder: str
    platform: str
    build_seconds: float
    push_seconds: Optional[float]

    def to_dict(self) -> dict:
        return asdict(self)


# -- builder discovery and command lines ----------------------------------------------------

def find_builder(name: Optional[str] = None) -> Builder:
    """The named builder, or the first of docker, finch, podman found on PATH."""
    if name:
        if name not in BUILDERS:
            raise BadInput(f"Unknown builder '{name}'.", f"Use one of: {', '.join(BUILDERS)}.")
        path = shutil.which(name)
        if not path:
            raise BadInput(f"{name} is not installed (not found on PATH).", INSTALL_FIX)
        return Builder(name, path)
    for candidate in BUILDERS:
        path = shutil.which(candidate)
        if path:
            return Builder(candidate, path)
    raise BadInput("No container builder found: none of docker, finch or podman is on PATH.", INSTALL_FIX)


def login_argv(builder: str, registry: str) -> list:
    return [builder, "login", "--username", "AWS", "--password-stdin", registry]


def build_argv(builder: str, plan: BuildPlan) -> list:
    return [builder, "build", "--platform", plan.platform, "--tag", plan.image, "--file", plan.dockerfile, plan.dir]


# -- validation -----------------------------------------------------------------------------

def check_repository(name: str) -> None:
    """ECR's rule, narrowed to names whose URIs `byoc update` parses (single separators)."""
    valid = 2 <= len(name or "") <= 256 and REPOSITORY_RE.match(name)
    if not valid or not image_ref.try_parse(image_ref.registry_uri("123456789012", "us-east-1", name)):
        raise BadInput(
            f"'{name}' is not a valid ECR repository name.",
            "Use 2-256 lowercase letters and digits with single . _ - separators, optionally in "
            "/-separated namespaces (e.g. sd/my-webui).",
        )


def check_tag(tag: str) -> None:
    if not TAG_RE.match(tag or ""):
        raise BadInput(f"'{tag}' is not a valid image tag.",
                       "Use up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'.")


def _logical_lines(text: str) -> list:
    out, buf = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") and not buf:
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        out.append((buf + line).strip())
        buf = ""
    if buf:
        out.append(buf.strip())
    return [line for line in out if line]


def base_images(dockerfile_text: str) -> list:
    """Images named in FROM lines (ARG defaults substituted; stage names and scratch skipped)."""
    args: dict = {}
    stages: set = set()
    found: list = []
    for line in _logical_lines(dockerfile_text):
        word, _, rest = line.partition(" ")
        if word.upper() == "ARG" and not stages:
            for item in rest.split():
                key, _, value = item.partition("=")
                args[key] = value.strip("\"'")
        elif word.upper() == "FROM":
            tokens = [t for t in rest.split() if not t.startswith("--")]
            if not tokens:
                continue
            ref = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), tokens[0])
            if len(tokens) >= 3 and tokens[1].upper() == "AS":
                stages.add(tokens[2].lower())
            if ref.lower() not in stages and ref != "scratch" and "$" not in ref:
                found.append(ref)
    return found


def missing_sources(dockerfile_text: str, root: Path) -> list:
    """Local COPY/ADD sources that do not exist in the build context."""
    missing = []
    for line in _logical_lines(dockerfile_text):
        m = _LOCAL_SOURCE_RE.match(line)
        if not m or "--from" in m["args"] or m["args"].lstrip().startswith("["):
            continue
        parts = [p for p in m["args"].split() if not p.startswith("--")]
        for src in parts[:-1]:
            if "://" in src or any(ch in src for ch in "*?[$"):
                continue
            if not (root / src).exists():
                missing.append(src)
    return missing


def default_tag() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime())


def plan_build(aws: Aws, dir_: str, repository: str, tag: Optional[str] = None, push: bool = False,
               platform: str = DEFAULT_PLATFORM, builder: Optional[str] = None) -> BuildPlan:
    """Validate the request and read what exists; changes nothing."""
    root = Path(dir_ or ".")
    dockerfile = root / "Dockerfile"
    if not root.is_dir():
        raise BadInput(f"Build directory '{root}' does not exist.", "Pass the directory that holds your Dockerfile.")
    if not dockerfile.is_file():
        raise BadInput(f"No Dockerfile in '{root}'.", f"Create one with `byoc init {dir_ or '.'}` or pass its directory.")
    check_repository(repository)
    tag = tag or default_tag()
    check_tag(tag)
    if not PLATFORM_RE.match(platform or ""):
        raise BadInput(f"'{platform}' is not a platform SageMaker runs.",
                       "Use linux/amd64 (GPU and most CPU instances) or linux/arm64 (Graviton ml.*6g/7g).")
    text = dockerfile.read_text()
    missing = missing_sources(text, root)
    if missing:
        raise BadInput(f"The Dockerfile copies '{missing[0]}', which is not in '{root}'.",
                       "Add the file (for a serve program start from examples/serve) or fix the COPY line.")
    found = find_builder(builder)
    account, region = aws.account, aws.region
    exists = True
    if push:
        try:
            aws.ecr.describe_repositories(repositoryNames=[repository])
        except AwsError as exc:
            if exc.code != "RepositoryNotFoundException":
                raise
            exists = False
    bases = base_images(text)
    target = image_ref.registry_uri(account, region, repository).split("/", 1)[0]
    registries = [(target, region)] if push else []
    for ref in bases:
        parsed = image_ref.try_parse(ref)
        if parsed and parsed.registry not in [r for r, _ in registries]:
            registries.append((parsed.registry, parsed.region))
    return BuildPlan(dir=str(root), dockerfile=str(dockerfile), builder=found, platform=platform,
                     repository=repository, tag=tag, account=account, region=region, push=push,
                     repository_exists=exists, registries=registries, base_images=bases)


# -- running the builder --------------------------------------------------------------------

def redactor(secrets: list) -> Callable[[str], str]:
    def redact(line: str) -> str:
        for s in secrets:
            if s:
                line = line.replace(s, "***")
        return line
    return redact


def run_streaming(argv: list, path: str, on_line: Callable[[str], None], stdin_text: Optional[str] = None,
                  env: Optional[dict] = None) -> tuple:
    """Run argv (argv[0] replaced by `path`), forwarding each output line; (exit code, last lines)."""
    proc = subprocess.Popen([path] + argv[1:], stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                            bufsize=1, env=env)
    tail: list = []
    try:
        if stdin_text is not None and proc.stdin is not None:
            proc.stdin.write(stdin_text)
            proc.stdin.close()
        for raw in proc.stdout or ():
            line = raw.rstrip("\n")
            on_line(line)
            tail = (tail + [line])[-40:]
        return proc.wait(), tail
    except BaseException:
        proc.kill()
        proc.wait()
        raise


def registry_password(aws: Aws) -> str:
    """ECR GetAuthorizationToken: the token decodes to 'AWS:<password>', valid 12 hours."""
    data = aws.ecr.get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    if user != "AWS" or not password:
        raise AwsError("InvalidAuthorizationToken", "ECR returned an authorization token byoc cannot read.",
                       "GetAuthorizationToken")
    return password


# A builder CLI without its engine: Docker's own wording, and the socket or pipe it cannot reach
# (`docker login` says "error during connect: ... dial unix /var/run/docker.sock: connect: ...").
_NO_ENGINE_RE = re.compile(r"cannot connect to the docker daemon|is the docker daemon running|error during connect"
                           r"|dial unix \S*\.sock|docker_engine|cannot connect to podman|finch vm .*not running",
                           re.IGNORECASE)


NO_ENGINE_FIX = ("Start Docker Desktop or `sudo systemctl start docker` (`finch vm start` for Finch, "
                 "`podman machine start` for Podman).")


def engine_problem(path: str) -> Optional[str]:
    """Why the builder at `path` cannot run anything (its engine does not answer `info`), or None."""
    try:
        proc = subprocess.run([path, "info"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if proc.returncode == 0:
        return None
    return next((line for line in reversed((proc.stderr or proc.stdout).splitlines()) if line.strip()),
                f"exit code {proc.returncode}").strip()


def no_engine(builder: Builder) -> BadInput:
    return BadInput(f"{builder.name} is installed but its daemon is not running.", NO_ENGINE_FIX)


def check_engine(builder: Builder) -> None:
    """Refuse (exit 2) when the builder's engine does not answer, before anything runs."""
    if engine_problem(builder.path):
        raise no_engine(builder)


def builder_error(builder: Builder, what: str, code: int, tail: list,
                  fix: str = "Read the builder output above; fix the Dockerfile or the build context and run again.",
                  ) -> ByocError:
    """Turn a builder's failing output into the clearest error."""
    text = "\n".join(tail)
    denied = _DENIED_RE.search(text)
    if denied:
        action, resource = denied["action"], denied["resource"] or ""
        return AuthError(f"{what} was denied: your identity lacks {action}.",
                         f"Add this statement to your IAM policy: {policy_statement(action, resource)} (or run `byoc policy`).",
                         action=action, resource=resource)
    if _NO_ENGINE_RE.search(text):
        return no_engine(builder)
    if re.search(r"port is already allocated|address already in use", text, re.IGNORECASE):
        return BadInput(f"{what} failed: the host port is already in use.", "Pass --port with a free port.")
    if re.search(r"tag invalid|cannot be overwritten because the (?:tag|repository) is immutable", text, re.IGNORECASE):
        return BadInput(f"{what} failed: the tag already exists in an immutable repository.", "Pass a new --tag.")
    last = next((line for line in reversed(tail) if line.strip()), "no output")
    return BuilderFailed(f"{what} failed ({builder.name} exited with {code}): {last.strip()}", fix)


def login(aws_for_region: Callable[[str], Aws], builder: Builder, registries: list,
          on_line: Callable[[str], None]) -> list:
    """Log the builder in to each (registry, region); returns the passwords, for redaction."""
    passwords: dict = {}
    for registry, region in registries:
        if region not in passwords:
            passwords[region] = registry_password(aws_for_region(region))
        redact = redactor(list(passwords.values()))

        def forward(line: str, redact: Callable[[str], str] = redact) -> None:
            on_line(redact(line))

        code, tail = run_streaming(login_argv(builder.name, registry), builder.path, forward,
                                   stdin_text=passwords[region] + "\n")
        if code != 0:
            raise builder_error(builder, f"Login to {registry}", code, [redact(t) for t in tail])
    return list(passwords.values())


def ensure_repository(aws: Aws, name: str) -> bool:
    """Create the repository with scan on push; False when it already exists."""
    try:
        aws.ecr.create_repository(repositoryName=name, imageScanningConfiguration={"scanOnPush": True},
                                  imageTagMutability="MUTABLE")
        return True
    except AwsError as exc:
        if exc.code == "RepositoryAlreadyExistsException":
            return False
        raise


def apply_build(aws: Aws, plan: BuildPlan, on_line: Callable[[str], None], progress: Callable[[str], None],
                aws_for_region: Optional[Callable[[str], Aws]] = None) -> BuildResult:
    """Log in, build, and with plan.push create the repository, push, and pin the digest."""
    def for_region(region: str) -> Aws:
        if region == aws.region:
            return aws
        assert aws_for_region is not None, f"a base image in {region} needs aws_for_region"
        return aws_for_region(region)

    b = plan.builder
    passwords = login(for_region, b, plan.registries, on_line) if plan.registries else []
    redact = redactor(passwords)
    progress(f"Building {plan.image} for {plan.platform} with {b.name}")
    start = time.monotonic()
    code, tail = run_streaming(build_argv(b.name, plan), b.path, lambda line: on_line(redact(line)))
    build_seconds = round(time.monotonic() - start, 1)
    if code != 0:
        raise builder_error(b, "The build", code, [redact(t) for t in tail])
    created, digest, push_seconds = False, None, None
    if plan.push:
        if not plan.repository_exists:
            created = ensure_repository(aws, plan.repository)
            if created:
                progress(f"Created ECR repository {plan.repository} (scan on push)")
        progress(f"Pushing {plan.image}")
        start = time.monotonic()
        code, tail = run_streaming([b.name, "push", plan.image], b.path, lambda line: on_line(redact(line)))
        push_seconds = round(time.monotonic() - start, 1)
        if code != 0:
            raise builder_error(b, f"Pushing {plan.image}", code, [redact(t) for t in tail])
        resolved = ecr.resolve(aws, image_ref.parse(plan.image), read_architecture=False)
        digest, pinned = resolved.digest, resolved.pinned
    else:
        pinned = None
    return BuildResult(image=plan.image, pinned=pinned, digest=digest, repository=plan.repository, tag=plan.tag,
                       pushed=plan.push, repository_created=created, builder=b.name, platform=plan.platform,
                       build_seconds=build_seconds, push_seconds=push_seconds)
