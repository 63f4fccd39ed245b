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


def test_text_masks_secret_values_after_their_names_and_remembered_values_anywhere():
    from byoc import redaction

    assert redaction.text("HF_TOKEN=hf_abc def") == "HF_TOKEN=****"
    assert redaction.text("{'DB_PASSWORD': 'p w', 'LOG_LEVEL': 'INFO'}") == "{'DB_PASSWORD': '****', 'LOG_LEVEL': 'INFO'}"
    assert redaction.text('{"OPENAI_API_KEY": "sk-1", "n": 1}') == '{"OPENAI_API_KEY": "****", "n": 1}'
    assert redaction.text("LOG_LEVEL=INFO") == "LOG_LEVEL=INFO"
    redaction.remember({"HF_TOKEN": "hf_rememberedV4LUE", "LOG_LEVEL": "INFO", "API_KEY": "ab"})
    assert redaction.text("logging in with hf_rememberedV4LUE now") == "logging in with **** now"
    assert redaction.text("level INFO ab") == "level INFO ab"  # not secret names, or too short to mask
    redaction.reveal(True)
    try:
        assert redaction.text("HF_TOKEN=hf_abc") == "HF_TOKEN=hf_abc"
    finally:
        redaction.reveal(False)
