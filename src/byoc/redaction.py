"""Which names hold secrets, and how their values are shown: one rule for plans, history and logs.

A name is secret-looking when, upper-cased with '-' read as '_', it contains one of SECRET_WORDS
(HF_TOKEN, DB_PASSWORD, OPENAI_API_KEY, aws-secret-access-key ...). Its value is never printed.
Text byoc did not write (log lines, a container's answers) goes through `text()` at the observe/
boundary: the value after a secret-looking name (`NAME=value` as printenv prints it, `NAME: value`,
`"NAME": "value"`, `'NAME': 'value'`) is masked, and so are the values of secret-looking variables
of the models byoc has read (`remember`), wherever they appear. `--show-secrets` turns that off
for one run.
"""

from __future__ import annotations

import re

SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "ACCESS_KEY", "CREDENTIAL", "PRIVATE")
MASK = "****"


def is_secret_name(name: str) -> bool:
    upper = (name or "").upper().replace("-", "_")
    return any(word in upper for word in SECRET_WORDS)


def shown(name: str, value: str) -> str:
    """`value` as byoc may print it: MASK for a secret-looking name."""
    return MASK if is_secret_name(name) else value


def shown_env(env: dict) -> dict:
    """A copy of an environment with the values of secret-looking names masked."""
    return {k: shown(k, v) for k, v in env.items()}


# printenv / `export` lines: the whole rest of the line is the value.
_LINE = re.compile(r"^(?P<head>\s*(?:export\s+)?(?P<name>[A-Za-z_][\w.-]*)=)(?P<value>.+)$")
# Inline: NAME=value, NAME: value, "NAME": "value", 'NAME': 'value' (JSON and Python dict reprs).
_INLINE = re.compile(r"""(?P<head>(?P<name>[A-Za-z_][\w.-]*)["']?\s*[=:]\s*)"""
                     r"""(?P<value>"[^"]*"|'[^']*'|[^\s,;&"'}\]]+)""")
_REVEAL = {"on": False}
_KNOWN: set = set()  # values of secret-looking variables of the models byoc has read in this process


def remember(env: dict) -> None:
    """Values of a model's secret-looking variables: `text()` masks them wherever they appear (a
    container may print a token without its name). Values shorter than 4 characters are too common."""
    for name, value in (env or {}).items():
        if is_secret_name(name) and isinstance(value, str) and len(value) >= 4:
            _KNOWN.add(value)


def reveal(on: bool) -> None:
    """--show-secrets: `text()` returns what it is given (until called again with False)."""
    _REVEAL["on"] = bool(on)


def _mask_value(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[0] + MASK + value[0]
    return MASK


def text(message: str) -> str:
    """A line byoc did not write, with the values of secret-looking names masked."""
    if _REVEAL["on"] or not message:
        return message
    out = []
    for line in message.split("\n"):
        m = _LINE.match(line)
        if m and is_secret_name(m.group("name")):
            out.append(m.group("head") + MASK)
            continue
        out.append(_INLINE.sub(lambda x: x.group("head") + _mask_value(x.group("value"))
                               if is_secret_name(x.group("name")) else x.group(0), line))
    masked = "\n".join(out)
    for value in sorted(_KNOWN, key=len, reverse=True):
        if value in masked:
            masked = masked.replace(value, MASK)
    return masked
