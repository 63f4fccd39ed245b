"""What an update changes besides the image: container environment and instance types.

Parsed once from `--env KEY=VALUE`, `--unset-env KEY`, `--env-file FILE` and
`--instance-type TYPE|VARIANT=TYPE` into a frozen `Changes`; the planner applies it to its lossless
copies. Names, lengths and instance types are checked against botocore's own model of CreateModel
(EnvironmentMap: at most 100 entries, keys [a-zA-Z_][a-zA-Z0-9_]* up to 1024 characters, values up
to 1024) and CreateEndpointConfig (ProductionVariantInstanceType), so a bad value is refused before
anything is created.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from byoc.aws import shapes
from byoc.errors import BadInput
from byoc.redaction import shown

ALL_VARIANTS = ""


@dataclass(frozen=True)
class Changes:
    env: tuple = ()  # ((KEY, VALUE), ...) to set, in order
    unset_env: tuple = ()  # KEYs to remove
    instance_types: tuple = ()  # ((VARIANT or ALL_VARIANTS, TYPE), ...)

    def __bool__(self) -> bool:
        return bool(self.env or self.unset_env or self.instance_types)

    def environment(self, current: dict) -> dict:
        """`current` with this change applied (a new dict)."""
        out = {k: v for k, v in current.items() if k not in self.unset_env}
        out.update(dict(self.env))
        return out

    def instance_type(self, variant: str) -> Optional[str]:
        """The new instance type of `variant`, or None when it keeps its own."""
        wanted = dict(self.instance_types)
        return wanted.get(variant, wanted.get(ALL_VARIANTS))

    def to_dict(self) -> dict:
        """For --dry-run/-o json: secret-looking values masked."""
        return {"env": {k: shown(k, v) for k, v in self.env}, "unset_env": list(self.unset_env),
                "instance_types": {(v or "*"): t for v, t in self.instance_types}}


def _env_shapes() -> Any:
    env = shapes.member("CreateModel", "PrimaryContainer", "Environment")
    return env, env.key, env.value


def check_name(key: str, where: str) -> None:
    _, key_shape, _ = _env_shapes()
    pattern = key_shape.metadata.get("pattern", "")
    if not key or not re.fullmatch(pattern, key) or len(key) > key_shape.metadata.get("max", 1024):
        raise BadInput(f"{where}: '{key}' is not a valid environment variable name for SageMaker.",
                       "Use letters, digits and '_', not starting with a digit (CreateModel's Environment).")


def check_environment(env: dict, model: str) -> None:
    """The merged environment of `model` fits CreateModel's EnvironmentMap."""
    env_shape, _, value_shape = _env_shapes()
    limit = env_shape.metadata.get("max", 100)
    if len(env) > limit:
        raise BadInput(f"Model {model} would have {len(env)} environment variables; SageMaker allows {limit}.",
                       "Remove some with --unset-env KEY.")
    vmax = value_shape.metadata.get("max", 1024)
    for k, v in env.items():
        if len(v) > vmax:
            raise BadInput(f"The value of {k} is {len(v)} characters long; SageMaker allows {vmax}.",
                           "Shorten it, or pass a reference (an S3 URI, a Secrets Manager name) instead.")


def _pair(text: str, where: str) -> tuple:
    if "=" not in text:
        # The text itself is not echoed: it may be a secret pasted without its name.
        raise BadInput(f"{where}: an entry is not KEY=VALUE.", "Write it as KEY=VALUE, e.g. --env LOG_LEVEL=DEBUG.")
    key, value = text.split("=", 1)
    key = key.strip()
    check_name(key, where)
    return key, value


def read_env_file(path: str) -> list:
    """[(KEY, VALUE)] of a KEY=VALUE file: blank lines and '#' comments skipped, an optional
    `export ` prefix and one pair of surrounding quotes around a value removed."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise BadInput(f"Cannot read --env-file {path}: {exc.strerror or exc}.", "Check the path.") from exc
    out = []
    for n, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("export "):
            text = text[len("export "):].lstrip()
        key, value = _pair(text, f"{path} line {n}")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out.append((key, value))
    return out


def instance_types() -> tuple:
    """Every instance type SageMaker hosting accepts (botocore's ProductionVariantInstanceType)."""
    return tuple(shapes.member("CreateEndpointConfig", "ProductionVariants", "[]", "InstanceType").enum)


def check_instance_type(itype: str) -> None:
    known = instance_types()
    if itype in known:
        return
    close = difflib.get_close_matches(itype, known, n=3, cutoff=0.8)
    raise BadInput(f"'{itype}' is not an instance type SageMaker hosting accepts"
                   + (f" (did you mean {', '.join(close)}?)." if close else "."),
                   "Pick one from the SageMaker pricing page (real-time inference); if it is new, upgrade botocore "
                   "(`pip install -U botocore`): byoc reads the accepted types from its model.")


def parse(env: Sequence[str] = (), unset_env: Sequence[str] = (), env_files: Sequence[str] = (),
          instance_type: Sequence[str] = ()) -> Changes:
    """Changes from the options as given; env files first, then --env (later wins)."""
    pairs = [p for path in env_files for p in read_env_file(path)]
    pairs += [_pair(text, "--env") for text in env]
    merged = dict(pairs)
    unset = tuple(dict.fromkeys(unset_env))
    for key in unset:
        check_name(key, "--unset-env")
        if key in merged:
            raise BadInput(f"{key} is both set (--env/--env-file) and removed (--unset-env).", "Keep one of them.")
    types: dict = {}
    for text in instance_type:
        variant, _, itype = text.rpartition("=")
        variant, itype = variant.strip(), itype.strip()
        if variant in types:
            what = f"variant {variant}" if variant else "every variant"
            raise BadInput(f"--instance-type names {what} twice.", "Give one type per variant: --instance-type VARIANT=TYPE.")
        check_instance_type(itype)
        types[variant] = itype
    return Changes(env=tuple(merged.items()), unset_env=unset, instance_types=tuple(types.items()))
