"""No secret on screen: a container that prints its environment (as the solution's start.sh does with
printenv) must not put the values of secret-looking variables into byoc's output, text or JSON, unless
--show-secrets asks for them."""

from __future__ import annotations

import pytest

from byoc.sandbox import seed
from support.sandbox import endpoint
from support.update import run

SECRETS = {"HF_TOKEN": "hf_tok3n_V4LUE", "DB_PASSWORD": "pa55w0rd V4LUE", "OPENAI_API_KEY": "sk-k3y-V4LUE",
           "aws_secret_access_key": "wJalrXUtn-V4LUE", "GIT_CREDENTIALS": "https://u:pw-V4LUE@git.example"}
PLAIN = {"LOG_LEVEL": "INFO", "ESD_VERSION": "v1.7.0", "SERVICE_TYPE": "sd"}


def leaked(text: str) -> list:
    return [name for name, value in SECRETS.items() if value in text or value.split(" ")[0] in text]


@pytest.fixture
def secret_endpoint(sandbox, sm, ecr):
    endpoint(sm, ecr, "sd-real-time-s3cr3t0", environment={**SECRETS, **PLAIN})
    image, _ = seed.push_image(ecr, "my-sd-webui", "v2", "healthy")
    broken, _ = seed.push_image(ecr, "my-sd-webui", "v3-broken", "crash")
    return "sd-real-time-s3cr3t0", image, broken


def test_update_logs_diagnose_verify_never_show_a_secret(capsys, secret_endpoint):
    ep, image, broken = secret_endpoint
    outputs = []
    for argv, codes in ((["update", ep, image, "--yes"], (0,)),
                        (["update", ep, broken, "--yes"], (1,)),
                        (["update", ep, broken, "--yes", "-o", "json"], (1,)),
                        (["logs", ep, "--since", "1h"], (0,)),
                        (["logs", ep, "--since", "1h", "-o", "json"], (0,)),
                        (["diagnose", ep, "--since", "1h"], (0, 1)),
                        (["diagnose", ep, "--since", "1h", "-o", "json"], (0, 1)),
                        (["verify", ep], (0,)),
                        (["verify", ep, "-o", "json"], (0,)),
                        (["status", ep, "-o", "json"], (0,)),
                        (["history", ep, "-o", "json"], (0,))):
        code, out, err = run(capsys, *argv)
        assert code in codes, (argv, err)
        assert leaked(out + err) == [], argv
        outputs.append(out + err)
    # The container did print them: the masked names are there, values replaced.
    assert "HF_TOKEN=****" in outputs[3] and '"HF_TOKEN=****"' in outputs[4] or "HF_TOKEN=****" in outputs[4]
    assert "LOG_LEVEL=INFO" in outputs[3]  # ordinary variables keep their values
    # --show-secrets shows what the container printed.
    code, out, err = run(capsys, "logs", ep, "--since", "1h", "--show-secrets")
    assert code == 0 and sorted(leaked(out)) == sorted(SECRETS)
    # ... for that run only.
    code, out, err = run(capsys, "logs", ep, "--since", "1h")
    assert code == 0 and leaked(out) == []
