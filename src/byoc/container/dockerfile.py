"""`byoc init`: render a Dockerfile and .dockerignore for a custom inference image.

The Dockerfile follows the seed's template (pinned base, non-interactive apt in one layer, exec-form
ENTRYPOINT) and adds pinned pip packages and the solution's extensions, cloned at their commit.
Bases: the solution's own inference image (found in the user's ECR), the AWS PyTorch inference
Deep Learning Container of the region (registry table in data/dlc_registries.json), or any image.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from byoc.aws.client import Aws
from byoc.errors import AwsError, BadInput
from byoc.images import ref as image_ref

MAX_EXTENSIONS = 3  # the solution accepts at most 3 custom extensions

# The solution's inference image repositories, newest naming first (v1.x used the second).
SOLUTION_REPOSITORIES = ("esd-inference", "stable-diffusion-aws-extension/aigc-webui-inference")
# Where extensions go: the WebUI's extensions folder in the solution's image, beside serve otherwise.
EXTENSIONS_DIR = {
    "solution": "/home/ubuntu/stable-diffusion-webui/extensions",
    "dlc": "/opt/program/extensions",
    "image": "/opt/program/extensions",
}

_EXTENSION_RE = re.compile(
    r"^(?P<url>https://github\.com/(?P<owner>[A-Za-z0-9_.-]+)/(?P<repo>[A-Za-z0-9_.-]+?)\.git)"
    r"#(?P<branch>[^#]*)#(?P<commit>[^#]*)$"
)
_BRANCH_RE = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]+(?<![./])$")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_APT_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+:~-]+)?$")
_PIP_OP = r"(?:===|==|~=|!=|<=|>=|<|>)[A-Za-z0-9.*+!-]+"
_PIP_RE = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:\[[A-Za-z0-9._,-]+\])?"
    rf"(?:{_PIP_OP}(?:,{_PIP_OP})*)?$"
)
_IMAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$")

EXTENSION_FORMAT = "https://github.com/<owner>/<repo>.git#<branch>#<40-hex commit>"


@dataclass(frozen=True)
class Extension:
    url: str
    branch: str
    commit: str

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[1][: -len(".git")]

    @property
    def spec(self) -> str:
        return f"{self.url}#{self.branch}#{self.commit}"


@dataclass(frozen=True)
class Base:
    kind: str  # "solution" | "dlc" | "image"
    image: str  # the FROM reference
    source: str  # one line saying where it comes from


@dataclass
class InitResult:
    dir: str
    files: list
    base: Base
    extensions: list = field(default_factory=list)
    apt: list = field(default_factory=list)
    pip: list = field(default_factory=list)
    needs: list = field(default_factory=list)  # files the Dockerfile copies that DIR lacks

    def to_dict(self) -> dict:
        data = asdict(self)
        data["extensions"] = [e.spec for e in self.extensions]
        return data


# -- input parsing --------------------------------------------------------------------------

def parse_extension(spec: str) -> Extension:
    """Parse the solution's `URL#BRANCH#COMMIT` extension format or say what is wrong."""
    text = (spec or "").strip()
    fix = f"Use {EXTENSION_FORMAT}, e.g. https://github.com/Mikubill/sd-webui-controlnet.git#main#<commit>."
    m = _EXTENSION_RE.match(text)
    if not m:
        if text.count("#") != 2:
            why = f"it has {text.count('#')} '#' separators, not 2"
        elif not text.startswith("https://github.com/"):
            why = "it is not an https://github.com/ URL"
        else:
            why = "the URL is not https://github.com/<owner>/<repo>.git"
        raise BadInput(f"Extension '{spec}' is not valid: {why}.", fix)
    if not _BRANCH_RE.match(m["branch"]):
        raise BadInput(f"Extension '{spec}' has an invalid branch name '{m['branch']}'.", fix)
    if not _COMMIT_RE.match(m["commit"]):
        raise BadInput(
            f"Extension '{spec}' pins '{m['commit']}', which is not a full 40-character lowercase commit hash.",
            "Copy the full hash from `git rev-parse HEAD` or the commit's GitHub page.",
        )
    return Extension(url=m["url"], branch=m["branch"], commit=m["commit"])


def parse_extensions(specs: Sequence[str]) -> List[Extension]:
    exts = [parse_extension(s) for s in specs or ()]
    if len(exts) > MAX_EXTENSIONS:
        raise BadInput(
            f"{len(exts)} extensions given; the solution accepts at most {MAX_EXTENSIONS}.",
            "Keep the three you need, or add more in the Dockerfile yourself.",
        )
    names = [e.name for e in exts]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise BadInput(f"Extension '{dupes[0]}' is given twice.", "Pass each extension once.")
    return exts


def check_packages(apt: Sequence[str], pip: Sequence[str]) -> None:
    for pkg in apt or ():
        if not _APT_RE.match(pkg):
            raise BadInput(f"'{pkg}' is not an apt package name.",
                           "Use NAME or NAME=VERSION (lowercase, e.g. libgl1 or ffmpeg=7:4.4.2-0ubuntu0.22.04.1).")
    for pkg in pip or ():
        if not _PIP_RE.match(pkg):
            raise BadInput(f"'{pkg}' is not a pip requirement byoc can pin.",
                           "Use NAME, NAME==VERSION or NAME>=VERSION (e.g. xformers==0.0.28); edit the Dockerfile for anything else.")


# -- bases ----------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def dlc_table() -> dict:
    return json.loads(resources.files("byoc").joinpath("data/dlc_registries.json").read_text())


def dlc_base(region: str) -> Base:
    """The AWS PyTorch inference DLC for `region`: its registry account differs by region and partition."""
    table = dlc_table()
    account = table["registries"].get(region)
    if not account:
        raise BadInput(
            f"AWS Deep Learning Containers are not published in {region}.",
            "Pass --base IMAGE with an image you can pull there, or use --base solution.",
        )
    image = table["image"]
    ref = image_ref.registry_uri(account, region, image["repository"], image["tag"])
    return Base("dlc", ref, f"AWS PyTorch inference Deep Learning Container for {region} (registry {account})")


def solution_base(aws: Aws) -> Base:
    """The solution's newest inference image in this account and region, pinned by digest."""
    for repo in SOLUTION_REPOSITORIES:
        try:
            pages = list(aws.ecr.paginate("describe_images", repositoryName=repo, filter={"tagStatus": "TAGGED"}))
        except AwsError as exc:
            if exc.code == "RepositoryNotFoundException":
                continue
            raise
        details = [d for page in pages for d in page.get("imageDetails", []) if d.get("imageTags")]
        if not details:
            continue
        newest = max(details, key=lambda d: d.get("imagePushedAt") or 0)
        tag = sorted(newest["imageTags"])[0]
        ref = f"{image_ref.registry_uri(aws.account, aws.region, repo, tag)}@{newest['imageDigest']}"
        return Base("solution", ref, f"the solution's inference image {repo}:{tag} in {aws.account}/{aws.region}")
    raise BadInput(
        f"No solution inference image ({' or '.join(SOLUTION_REPOSITORIES)}) in account {aws.account}, {aws.region}.",
        "Pass the region the solution is deployed in (--region), or start from --base dlc or --base IMAGE.",
    )


def image_base(ref: str) -> Base:
    text = (ref or "").strip()
    if not _IMAGE_RE.match(text):
        raise BadInput(f"--base '{ref}' is not 'solution', 'dlc' or an image reference.",
                       "Use solution, dlc, or an image such as 123456789012.dkr.ecr.us-east-1.amazonaws.com/repo:tag.")
    parsed = image_ref.try_parse(text)
    where = f"ECR {parsed.account}/{parsed.region}" if parsed else "your image"
    return Base("image", text, f"{where}: {text}")


def resolve_base(base: str, region: Optional[str], aws_factory: Callable[[], Aws]) -> Base:
    """`solution` and `dlc` need the region (and, for solution, ECR); anything else is an image."""
    if base == "dlc":
        return dlc_base(region or aws_factory().region)
    if base == "solution":
        return solution_base(aws_factory())
    return image_base(base)


# -- rendering ------------------------------------------------------------------------------

def _q(items: Sequence[str]) -> str:
    return " ".join(shlex.quote(i) for i in items)


def render_dockerfile(base: Base, extensions: Sequence[Extension] = (), apt: Sequence[str] = (), pip: Sequence[str] = (),
                      extensions_dir: Optional[str] = None) -> str:
    """The Dockerfile text; deterministic for the same inputs."""
    ext_dir = extensions_dir or EXTENSIONS_DIR[base.kind]
    lines = [
        "# Generated by `byoc init`. Build and push with: byoc build . --repository <name> --push",
        f"# Base: {base.source}.",
        f"FROM {base.image}",
        "",
        "ENV DEBIAN_FRONTEND=noninteractive",
    ]
    apt_pkgs = sorted(set(apt or ()) | ({"git", "ca-certificates"} if extensions else set()))
    if apt_pkgs:
        lines += [
            "",
            "# System packages in one layer; the apt lists are removed to keep the image small.",
            "RUN apt-get update -y \\",
            f"    && apt-get install -y --no-install-recommends {_q(apt_pkgs)} \\",
            "    && rm -rf /var/lib/apt/lists/*",
        ]
    if pip:
        lines += [
            "",
            "# Python packages (pin versions for reproducible builds).",
            f"RUN python -m pip install --no-cache-dir {_q(pip)}",
        ]
    if extensions:
        lines += ["", f"# Extensions, each cloned at its pinned commit into {ext_dir}."]
        for i, ext in enumerate(extensions):
            dest = f"{ext_dir}/{ext.name}"
            lines += [
                ("RUN " if i == 0 else "    && ")
                + f"git clone --single-branch --branch {shlex.quote(ext.branch)} {shlex.quote(ext.url)} {shlex.quote(dest)} \\",
                f"    && git -C {shlex.quote(dest)} checkout --detach {ext.commit}"
                + (" \\" if i < len(extensions) - 1 else ""),
            ]
    if base.kind == "solution":
        lines += [
            "",
            "# The solution's entrypoint is kept: SageMaker runs `docker run <image> serve`.",
        ]
    else:
        lines += [
            "",
            "# Your serve program: answers GET /ping and POST /invocations on port 8080, with inference",
            "# off the request thread (start from examples/serve in the byoc repository).",
            "COPY serve /opt/program/serve",
            "WORKDIR /opt/program",
            "EXPOSE 8080",
            'ENTRYPOINT ["python", "/opt/program/serve"]',
        ]
    return "\n".join(lines) + "\n"


DOCKERIGNORE = """\
# Keep the build context small: models belong in the model directory or S3, not in the image.
.git
.venv
**/__pycache__
**/*.pyc
*.ckpt
*.safetensors
"""


def write(dir_: str, base: Base, extensions: Sequence[Extension] = (), apt: Sequence[str] = (), pip: Sequence[str] = (),
          force: bool = False,
          extensions_dir: Optional[str] = None) -> InitResult:
    """Write DIR/Dockerfile and DIR/.dockerignore; refuse to overwrite either without `force`."""
    root = Path(dir_ or ".")
    if root.exists() and not root.is_dir():
        raise BadInput(f"'{root}' is a file, not a directory.", "Pass a directory for the Dockerfile.")
    targets = {"Dockerfile": render_dockerfile(base, extensions, apt, pip, extensions_dir),
               ".dockerignore": DOCKERIGNORE}
    existing = [name for name in targets if (root / name).exists()]
    if existing and not force:
        raise BadInput(f"{root / existing[0]} already exists; nothing was written.",
                       "Pass --force to overwrite it, or choose another directory.")
    root.mkdir(parents=True, exist_ok=True)
    for name, text in targets.items():
        (root / name).write_text(text)
    files = [str(root / n) for n in targets]
    if base.kind != "solution" and not (root / "serve").exists():
        # A starter serve program (pip installs do not ship examples/); one the user has is never replaced.
        starter = root / "serve"
        starter.write_text(resources.files("byoc").joinpath("data/serve").read_text())
        starter.chmod(0o755)
        files.append(str(starter))
    return InitResult(dir=str(root), files=files, base=base,
                      extensions=list(extensions), apt=list(apt), pip=list(pip))

