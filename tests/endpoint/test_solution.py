"""The solution's three naming generations (data/solution.json) and the names byoc gives revisions."""

from __future__ import annotations

import pytest

from byoc.endpoint import revisions, solution

REG = "111122223333.dkr.ecr.us-east-1.amazonaws.com"


@pytest.mark.parametrize("endpoint, env, generation, label, model, config, image", [
    ("infer-endpoint-a1b2c3d", {"EndpointID": "OUR_ID"}, "infer", "sd v1.0-v1.3",
     "infer-model-a1b2c3d-r2", "infer-config-a1b2c3d-r2", f"{REG}/stable-diffusion-aws-extension/aigc-webui-inference:latest"),
    ("esd-async-a1b2c3d", {"BUCKET_NAME": "b", "ECR_IMAGE_TAG": "1.5.0"}, "esd", "sd v1.5.0 async",
     "esd-model-async-a1b2c3d-r2", "esd-config-async-a1b2c3d-r2", f"{REG}/esd-inference:1.5.0"),
    ("esd-real-time-mine", {"BUCKET_NAME": "b"}, "esd", "sd v1.4-v1.5 real-time",
     "esd-model-real-time-mine-r2", "esd-config-real-time-mine-r2",
     f"{REG}/stable-diffusion-aws-extension/aigc-webui-inference:latest"),
    ("sd-async-a1b2c3d", {"ESD_VERSION": "v1.7.0", "SERVICE_TYPE": "sd"}, "v1.6", "sd v1.7.0 async",
     "sd-async-a1b2c3d-r2", "sd-async-a1b2c3d-r2", f"{REG}/esd-inference:v1.7.0"),
    ("comfy-real-time-f9e8d7c", {"ESD_VERSION": "v1.6.1", "SERVICE_TYPE": "comfy"}, "v1.6", "comfy v1.6.1 real-time",
     "comfy-real-time-f9e8d7c-r2", "comfy-real-time-f9e8d7c-r2", f"{REG}/esd-inference:v1.6.1"),
])
def test_each_generation_is_recognised_and_keeps_its_own_names(endpoint, env, generation, label, model, config, image):
    sol = solution.recognise(endpoint, env)
    assert (sol.generation, sol.label) == (generation, label)
    current_model, current_config = solution.stems(sol)
    models, new_config = revisions.names(endpoint, [current_model], current_config, 2)
    assert models == {current_model: model} and new_config == config
    assert revisions.config_stem(endpoint, f"{current_config}-r1") == current_config
    assert solution.default_image(sol, env, REG) == image


def test_other_endpoints_are_not_the_solutions_and_follow_their_current_names():
    assert solution.recognise("my-endpoint", {"LOG_LEVEL": "INFO"}) is None
    assert solution.recognise("esd-model-async-x") is None  # a model name, not an endpoint name
    models, config = revisions.names("my-endpoint", ["my-model-r3"], "my-config-r3", 4)
    assert models == {"my-model-r3": "my-model-r4"} and config == "my-config-r4"


def test_environment_alone_names_a_renamed_v16_endpoint_but_not_its_names():
    sol = solution.recognise("renamed", {"ESD_VERSION": "v1.7.0", "SERVICE_TYPE": "comfy"})
    assert sol.generation == "v1.6" and sol.service == "comfy" and solution.stems(sol) is None


def test_a_name_at_the_length_limit_is_cut_to_fit_the_revision_suffix():
    endpoint = "sd-async-" + "x" * 54  # 63 characters, the limit
    models, config = revisions.names(endpoint, [endpoint], endpoint, 12)
    assert len(config) == 63 and config.endswith("-r12") and models[endpoint] == config


def test_endpoints_and_status_show_the_solution_generation(capsys, sandbox, clients):
    from byoc.sandbox import seed
    from support.update import run, run_json

    seed.solution(clients, realtime_id=None)
    seed.solution(clients, generation="esd", endpoint_id="b2c3d4e", realtime_id="c3d4e5f")
    seed.solution(clients, generation="v1.6", service="comfy", version="v1.6.1", endpoint_id="d4e5f6a",
                  realtime_id="e5f6a7b")
    sm = clients.client("sagemaker")
    sm.create_endpoint(EndpointName="mine", EndpointConfigName="comfy-real-time-e5f6a7b")
    seed.wait_status(sm, "mine")
    code, doc, err = run_json(capsys, "endpoints")
    assert code == 0, err
    labels = {e["name"]: (e["solution"] or {}).get("label") for e in doc["endpoints"]}
    assert labels == {"infer-endpoint-a1b2c3d": "sd v1.0-v1.3 async", "esd-async-b2c3d4e": "sd v1.5.0 async",
                      "esd-real-time-c3d4e5f": "sd v1.5.0 real-time", "comfy-async-d4e5f6a": "comfy v1.6.1 async",
                      "comfy-real-time-e5f6a7b": "comfy v1.6.1 real-time",
                      # named by hand, on a v1.6 model: the environment says which generation
                      "mine": "comfy v1.6.1 real-time"}
    code, out, err = run(capsys, "endpoints")
    assert code == 0 and "comfy v1.6.1 async" in out and "Solution" in out
    code, doc, err = run_json(capsys, "status", "esd-async-b2c3d4e")
    assert code == 0 and doc["solution"]["generation"] == "esd" and doc["solution"]["version"] == "v1.5.0"
    code, out, err = run(capsys, "status", "comfy-async-d4e5f6a")
    assert code == 0 and "solution: comfy v1.6.1 async (generation v1.6)" in out
