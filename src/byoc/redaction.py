"""Which names hold secrets, and how their values are shown: one rule for plans, history and logs.

A name is secret-looking when, upper-cased with '-' read as '_', it contains one of SECRET_WORDS
(HF_TOKEN, DB_PASSWORD, OPENAI_API_KEY, aws-secret-access-key ...). Its value is never printed.
"""

from __future__ import annotations

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
