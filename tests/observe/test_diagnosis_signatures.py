"""Every signature of the catalogue, matched from realistic text and not from healthy logs."""

from __future__ import annotations

import pytest

from byoc import diagnosis

PING = ("The primary container for production variant prod did not pass the ping health check. "
        "Please check CloudWatch logs for this endpoint.")
T0 = 1_714_640_000_000


def events(lines, stream="prod/i-0a1b2c3d4e5f60718", start=T0, step=250):
    return [{"timestamp": start + n * step, "message": line, "logStreamName": stream}
            for n, line in enumerate(lines)]


# A healthy Stable Diffusion container: env dump, nvidia-smi, df, extension clone, web UI on
# 0.0.0.0:8080, pings and invocations answered. Lines that resemble failures on purpose.
# Failing samples follow the prelude (a failing container never gets to its server lines).
HEALTHY_PRELUDE = [
    "+ env",
    "ESD_VERSION=v1.6.0",
    "ENDPOINT_NAME=sd-async-abc1234",
    "S3_BUCKET_NAME=sd-extension-bucket-1x2y3z",
    "LOG_LEVEL=INFO",
    "+ nvidia-smi",
    "Thu May  2 08:53:20 2024       ",
    "+---------------------------------------------------------------------------------------+",
    "| NVIDIA-SMI 535.104.12             Driver Version: 535.104.12   CUDA Version: 12.2     |",
    "|   0  NVIDIA A10G                    On  | 00000000:00:1E.0 Off |                    0 |",
    "|  0%   24C    P8              15W / 300W |      4MiB / 23028MiB |      0%      Default |",
    "+ df -h",
    "Filesystem      Size  Used Avail Use% Mounted on",
    "overlay         120G   38G   83G  32% /",
    "Cloning into 'extensions/sd-webui-controlnet'...",
    "HEAD is now at 1a2b3c4 fix: memory leak",
    "Collecting opencv-python>=4.8.0",
    "Successfully installed opencv-python-4.8.1.78",
    "No module 'xformers'. Proceeding without it.",
    "Launching Web UI with arguments: --listen --port 8080 --api --nowebui --skip-version-check",
]
HEALTHY_SERVER = [
    "Loading weights [6ce0161689] from /home/ubuntu/models/Stable-diffusion/v1-5-pruned-emaonly.safetensors",
    "Creating model from config: /home/ubuntu/stable-diffusion-webui/configs/v1-inference.yaml",
    "Applying attention optimization: Doggettx... done.",
    "Model loaded in 5.2s (load weights from disk: 0.6s, create model: 0.4s, apply weights to model: 3.5s).",
    "INFO:     Started server process [214]",
    "INFO:     Waiting for application startup.",
    "INFO:     Application startup complete.",
    "INFO:     Uvicorn running on http://0.0.0.0:8080 (Press CTRL+C to quit)",
    'INFO:     10.2.88.5:43210 - "GET /ping HTTP/1.1" 200 OK',
    'INFO:     10.2.88.5:43232 - "POST /invocations HTTP/1.1" 200 OK',
    "100%|##########| 20/20 [00:02<00:00,  8.61it/s]",
    "Total progress: 100%|##########| 20/20 [00:02<00:00,  8.40it/s]",
    "2024-05-02 08:55:01,417 - inference - INFO - task 7f3c2 finished, uploaded s3://sd-extension-bucket-1x2y3z/out/7f3c2.png",
    "[2024-05-02 08:55:03 +0000] [1] [INFO] Handling signal: winch",
    "Warning: retries left 3, no errors so far",
]
HEALTHY = HEALTHY_PRELUDE + HEALTHY_SERVER

HEALTHY_GUNICORN = [
    "Starting the inference server with 4 workers.",
    "[2024-05-02 08:53:01 +0000] [18] [INFO] Starting gunicorn 21.2.0",
    "[2024-05-02 08:53:01 +0000] [18] [INFO] Listening at: unix:/tmp/gunicorn.sock (18)",
    "[2024-05-02 08:53:01 +0000] [18] [INFO] Using worker: sync",
    "[2024-05-02 08:53:01 +0000] [22] [INFO] Booting worker with pid: 22",
    '10.32.0.2 - - [02/May/2024:08:53:05 +0000] "GET /ping HTTP/1.1" 200 1 "-" "AHC/2.0"',
    '10.32.0.2 - - [02/May/2024:08:54:05 +0000] "POST /invocations HTTP/1.1" 200 5182 "-" "AHC/2.0"',
]

# id -> (log lines, FailureReason, context). Each is what a user would really see.
SAMPLES = {
    "wrong-port": ([
        "[2024-05-02 08:53:01 +0000] [1] [INFO] Starting gunicorn 21.2.0",
        "[2024-05-02 08:53:01 +0000] [1] [INFO] Listening at: http://127.0.0.1:8000 (1)",
        "[2024-05-02 08:53:01 +0000] [1] [INFO] Using worker: sync",
    ], PING, {}),
    "serve-argument": ([
        "usage: app.py [-h] [--port PORT] [--model MODEL]",
        "app.py: error: unrecognized arguments: serve",
    ], PING, {}),
    "exec-format": (["exec /opt/conda/bin/python: exec format error"], PING, {"instance_type": "ml.g5.xlarge"}),
    "image-not-found": ([], "Requested image 123456789012.dkr.ecr.us-east-1.amazonaws.com/my-sd:v2 not found.",
                        {"ecr_image": "ImageNotFoundException: The image with imageId {imageTag:'v2'} does not exist"}),
    "ecr-pull-denied": ([], "The role 'arn:aws:iam::123456789012:role/sd-createEndpoint-role' does not have "
                            "BatchGetImage permission for the image: "
                            "'210987654321.dkr.ecr.us-east-1.amazonaws.com/esd-inference:v1.6.0'.", {}),
    "cuda-oom": ([
        "Traceback (most recent call last):",
        '  File "/home/ubuntu/stable-diffusion-webui/modules/sd_models.py", line 612, in load_model',
        "    sd_model.to(devices.device)",
        "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 22.20 GiB total "
        "capacity; 19.62 GiB already allocated; 1.12 GiB free; 20.01 GiB reserved in total by PyTorch)",
    ], PING, {}),
    "cuda-driver": ([
        "RuntimeError: The NVIDIA driver on your system is too old (found version 11040). Please update your GPU "
        "driver by downloading and installing a new version from the URL: http://www.nvidia.com/Download/index.aspx",
    ], PING, {}),
    "no-gpu": ([
        "RuntimeError: Torch is not able to use GPU; add --skip-torch-cuda-test to COMMANDLINE_ARGS variable to "
        "disable this check",
    ], PING, {}),
    "python-import": ([
        "Traceback (most recent call last):",
        '  File "/opt/program/serve.py", line 4, in <module>',
        "    import xformers.ops",
        "ModuleNotFoundError: No module named 'xformers'",
    ], PING, {}),
    "pip-conflict": ([
        "ERROR: pip's dependency resolver does not currently take into account all the packages that are "
        "installed. This behaviour is the source of the following dependency conflicts.",
        "torchvision 0.15.2+cu118 requires torch==2.0.1, but you have torch 2.1.0 which is incompatible.",
    ], None, {}),
    "disk-full": ([
        "OSError: [Errno 28] No space left on device: '/home/ubuntu/models/Stable-diffusion/sdxl.safetensors'",
    ], PING, {"volume_size": "30 GB"}),
    "model-data-download-timeout": ([], "Model data download exceeded the ModelDataDownloadTimeoutInSeconds of 600 "
                                        "seconds for production variant prod.", {"model_download_timeout": "600 s"}),
    "startup-timeout": ([
        "Loading weights [31e35c80fc] from /home/ubuntu/models/Stable-diffusion/sd_xl_base_1.0.safetensors",
    ], PING, {"startup_exceeded": "prod/i-0a1 was still writing start-up lines", "startup_timeout": "600 s"}),
    "s3-access-denied": ([], 'Failed to download model data for container "container_1" from URL: '
                             '"s3://sd-extension-bucket-1x2y3z/data/model.tar.gz". Please ensure that there is an '
                             "object located at the URL and that the role passed to CreateModel has permissions "
                             "to download the object.", {}),
    "kms-access-denied": ([
        "botocore.exceptions.ClientError: An error occurred (AccessDenied) when calling the PutObject operation: "
        "User: arn:aws:sts::123456789012:assumed-role/sd-createEndpoint-role/SageMaker is not authorized to "
        "perform: kms:GenerateDataKey on resource: arn:aws:kms:us-east-1:123456789012:key/1a2b3c4d",
    ], None, {}),
    "insufficient-capacity": ([], "Unable to provision requested ML compute capacity due to "
                                  "InsufficientInstanceCapacity error. Please retry using a different ML instance "
                                  "type or after some time.", {"instance_type": "ml.g5.2xlarge"}),
    "quota-exceeded": ([], "ResourceLimitExceeded: The account-level service limit 'ml.g5.2xlarge for endpoint "
                           "usage' is 2 Instances, with current utilization of 2 Instances and a request delta of "
                           "1 Instances. Please use AWS Service Quotas to request an increase for this quota.", {}),
    "oom-killed": ([
        "[2024-05-02 09:01:12 +0000] [1] [WARNING] Worker (pid:7) was sent SIGKILL! Perhaps out of memory?",
        "[2024-05-02 09:01:12 +0000] [31] [INFO] Booting worker with pid: 31",
    ], PING, {}),
    "address-in-use": ([
        "[2024-05-02 09:01:12 +0000] [1] [ERROR] Connection in use: ('0.0.0.0', 8080)",
        "[2024-05-02 09:01:12 +0000] [1] [ERROR] Retrying in 1 second.",
    ], PING, {}),
    "worker-timeout": ([
        "[2024-05-02 09:01:12 +0000] [1] [CRITICAL] WORKER TIMEOUT (pid:7)",
        "[2024-05-02 09:01:12 +0000] [7] [INFO] Worker exiting (pid: 7)",
    ], None, {}),
    "invocation-timeout": ([], None, {"invocation_error": "ModelError: Received server error (0) from primary with "
                                      "message \"Your invocation timed out while waiting for a response from "
                                      "container primary.\""}),
    "missing-env": ([
        "+ '[' -z '' ']'",
        "ESD_VERSION is not set",
    ], PING, {}),
    "no-internet": ([
        "Cloning into 'extensions/sd-webui-controlnet'...",
        "fatal: unable to access 'https://github.com/Mikubill/sd-webui-controlnet.git/': Could not resolve host: "
        "github.com",
    ], PING, {"network_isolation": "on", "vpc": "subnet-0a1b2c"}),
    "model-data-extract": ([], "Failed to extract model data archive from URL "
                               "\"s3://sd-extension-bucket-1x2y3z/data/model.tar.gz\". Please ensure that the "
                               "object located at the URL is a valid tar.gz archive.", {}),
    "no-logs": ([], None, {"log_group": "missing"}),
    "ping-health-check": ([], PING, {}),
}

# Other realistic wordings of the same causes.
VARIANTS = [
    ("wrong-port", ["INFO:     Uvicorn running on http://127.0.0.1:8000 (Press CTRL+C to quit)"]),
    ("wrong-port", ["Running on local URL:  http://0.0.0.0:7860"]),
    ("wrong-port", [" * Running on http://127.0.0.1:5000"]),
    ("serve-argument", ['docker: Error response from daemon: failed to create task: exec: "serve": '
                        "executable file not found in $PATH: unknown."]),
    ("serve-argument", ["/entrypoint.sh: line 12: serve: command not found"]),
    ("serve-argument", ["main.py: error: argument mode: invalid choice: 'serve' (choose from 'api', 'ui')"]),
    ("exec-format", ["standard_init_linux.go:228: exec user process caused: exec format error"]),
    ("cuda-oom", ["RuntimeError: CUDA error: out of memory"]),
    ("cuda-driver", ["nvidia-container-cli: requirement error: unsatisfied condition: cuda>=12.4, please update "
                     "your driver to a newer version, or use an earlier cuda container: unknown"]),
    ("cuda-driver", ["RuntimeError: CUDA driver version is insufficient for CUDA runtime version"]),
    ("python-import", ["ImportError: libGL.so.1: cannot open shared object file: No such file or directory"]),
    ("python-import", ["ImportError: cannot import name 'cached_download' from 'huggingface_hub' "
                       "(/opt/conda/lib/python3.10/site-packages/huggingface_hub/__init__.py)"]),
    ("pip-conflict", ["ERROR: Cannot install diffusers==0.21.0 and transformers==4.19.2 because these package "
                      "versions have conflicting dependencies."]),
    ("disk-full", ["cp: error writing '/tmp/model.ckpt': No space left on device"]),
    ("oom-killed", ["/opt/program/serve: line 8:    42 Killed                  python webui.py --listen"]),
    ("oom-killed", ["Killed"]),
    ("oom-killed", ["serve exited with code 137"]),
    ("address-in-use", ["ERROR:    [Errno 98] error while attempting to bind on address ('0.0.0.0', 8080): "
                        "address already in use"]),
    ("worker-timeout", ['2024/05/02 09:01:12 [error] 22#22: *193 upstream timed out (110: Connection timed out) '
                        'while reading response header from upstream, client: 10.32.0.2, server: , request: '
                        '"POST /invocations HTTP/1.1", upstream: "http://unix:/tmp/gunicorn.sock/invocations"']),
    ("missing-env", ["KeyError: 'S3_BUCKET_NAME'"]),
    ("missing-env", ["ERROR: required environment variable ENDPOINT_NAME is not set"]),
    ("no-internet", ["WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after "
                     "connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection "
                     "object at 0x7f>: Failed to establish a new connection: [Errno 101] Network is unreachable')'"]),
    ("no-internet", ["fatal: unable to access 'https://github.com/ashen-sensored/sd_webui_SAG.git/': Failed to "
                     "connect to github.com port 443 after 129348 ms: Connection timed out"]),
    ("s3-access-denied", ["botocore.exceptions.ClientError: An error occurred (403) when calling the HeadObject "
                          "operation: Forbidden"]),
    ("kms-access-denied", ["botocore.exceptions.ClientError: An error occurred (KMS.AccessDeniedException) when "
                           "calling the GetObject operation: The ciphertext refers to a customer master key that "
                           "does not exist"]),
    ("ping-health-check", ['2024/05/02 09:01:12 [error] 22#22: *1 connect() failed (111: Connection refused) while '
                           'connecting to upstream, client: 10.32.0.2, server: , request: "GET /ping HTTP/1.1", '
                           'upstream: "http://127.0.0.1:8081/ping"']),
]


def test_every_signature_has_a_sample():
    assert set(SAMPLES) == {s.id for s in diagnosis.load().signatures}
    assert len(SAMPLES) >= 20


@pytest.mark.parametrize("sig_id", sorted(SAMPLES))
def test_signature_matches_realistic_text_and_ranks_first(sig_id):
    lines, reason, context = SAMPLES[sig_id]
    findings = diagnosis.match(events(HEALTHY_PRELUDE + lines), failure_reason=reason, context=context)
    assert findings, "nothing matched"
    assert findings[0].id == sig_id, [f.id for f in findings]
    top = findings[0]
    assert top.evidence and top.cause and top.fix
    assert "{" not in top.title + top.cause + top.fix  # every placeholder filled


@pytest.mark.parametrize("sig_id, lines", VARIANTS, ids=[f"{v[0]}-{n}" for n, v in enumerate(VARIANTS)])
def test_other_wordings_match(sig_id, lines):
    found = {f.id for f in diagnosis.match(events(lines))}
    assert sig_id in found


def test_healthy_logs_match_nothing():
    assert diagnosis.match(events(HEALTHY)) == []
    assert diagnosis.match(events(HEALTHY_GUNICORN, stream="AllTraffic/i-0ffe")) == []


def test_healthy_logs_with_facts_of_a_healthy_endpoint_match_nothing():
    context = {"instance_type": "ml.g5.xlarge", "volume_size": "30 GB", "log_group": "", "ecr_image": None}
    assert diagnosis.match(events(HEALTHY), failure_reason="", context=context) == []


def test_placeholders_come_from_the_log_line_then_the_context():
    found = diagnosis.match(events(SAMPLES["missing-env"][0]))
    assert found[0].title == "The environment variable ESD_VERSION is not set"
    assert "ENV ESD_VERSION=" in found[0].fix
    port = diagnosis.match(events(SAMPLES["wrong-port"][0]))[0]
    assert "127.0.0.1:8000" in port.title and "127.0.0.1:8000" in port.cause
    arch = diagnosis.match(events(SAMPLES["exec-format"][0]), context={"instance_type": "ml.c7g.xlarge"})[0]
    assert "linux/arm64" in arch.fix and "ml.c7g.xlarge" in arch.cause
    x86 = diagnosis.match(events(SAMPLES["exec-format"][0]), context={"instance_type": "ml.g5.xlarge"})[0]
    assert "linux/amd64" in x86.fix


def test_missing_placeholders_read_naturally():
    finding = diagnosis.match(events(SAMPLES["exec-format"][0]))[0]
    assert "the instance type" in finding.cause and "{" not in finding.fix
