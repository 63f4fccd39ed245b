"""The secret-name rule shared by plans, history and logs."""

from __future__ import annotations

import pytest

from byoc.redaction import MASK, is_secret_name, shown, shown_env


@pytest.mark.parametrize("name", ["HF_TOKEN", "hf_token", "DB_PASSWORD", "MYSQL_PASSWD", "OPENAI_API_KEY",
                                  "AWS_SECRET_ACCESS_KEY", "aws-access-key-id", "GOOGLE_CREDENTIALS",
                                  "PRIVATE_KEY_PEM", "ClientSecret"])
def test_secret_looking_names(name):
    assert is_secret_name(name)
    assert shown(name, "s3cr3t") == MASK


@pytest.mark.parametrize("name", ["LOG_LEVEL", "EXTENSIONS", "IMAGE_URL", "APIKEYS_URL", "KEYBOARD", ""])
def test_ordinary_names_keep_their_values(name):
    assert not is_secret_name(name)
    assert shown(name, "v") == "v"


def test_shown_env_masks_only_the_secret_values_and_keeps_the_input():
    env = {"LOG_LEVEL": "debug", "HF_TOKEN": "hf_abc"}
    assert shown_env(env) == {"LOG_LEVEL": "debug", "HF_TOKEN": MASK}
    assert env["HF_TOKEN"] == "hf_abc"
