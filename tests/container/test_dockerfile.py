"""`byoc init`: Dockerfile output for each base and region class, extension parsing, refusals."""

from __future__ import annotations

import json
import time

import pytest

from byoc.container import build, dockerfile
from byoc.errors import BadInput
from byoc.sandbox import ACCOUNT, seed
from support.cli import first_error, run_cli

COMMIT = "0123456789abcdef0123456789abcdef01234567"
CONTROLNET = f"https://github.com/Mikubill/sd-webui-controlnet.git#main#{COMMIT}"




def from_line(path) -> str:
    return next(line for line in (path / "Dockerfile").read_text().splitlines() if line.startswith("FROM "))


# -- extensions ---------------------------------------------------------------------------

def test_extension_spec_is_parsed_into_url_branch_commit_and_name():
    ext = dockerfile.parse_extension(CONTROLNET)
    assert (ext.url, ext.branch, ext.commit) == ("https://github.com/Mikubill/sd-webui-controlnet.git", "main", COMMIT)
    assert ext.name == "sd-webui-controlnet"
    assert ext.spec == CONTROLNET


@pytest.mark.parametrize("spec, why", [
    ("https://github.com/a/b.git#main", "1 '#' separators, not 2"),
    (f"https://github.com/a/b.git#main#{COMMIT}#x", "3 '#' separators"),
    (f"http://github.com/a/b.git#main#{COMMIT}", "not an https://github.com/ URL"),
    (f"https://gitlab.com/a/b.git#main#{COMMIT}", "not an https://github.com/ URL"),
    (f"https://github.com/a/b#main#{COMMIT}", "not https://github.com/<owner>/<repo>.git"),
    (f"https://github.com/a/b.git#-rf#{COMMIT}", "invalid branch name '-rf'"),
    (f"https://github.com/a/b.git#a..b#{COMMIT}", "invalid branch name"),
    (f"https://github.com/a/b.git#ma in#{COMMIT}", "invalid branch name"),
    ("https://github.com/a/b.git#main#0123abc", "not a full 40-character"),
    (f"https://github.com/a/b.git#main#{COMMIT.upper()}", "not a full 40-character lowercase"),
])
def test_bad_extension_specs_say_what_is_wrong(spec, why):
    with pytest.raises(BadInput) as exc:
        dockerfile.parse_extension(spec)
    assert why in exc.value.message
    assert exc.value.fix


def test_more_than_three_extensions_or_a_duplicate_are_refused():
    specs = [f"https://github.com/o/ext{i}.git#main#{COMMIT}" for i in range(4)]
    assert len(dockerfile.parse_extensions(specs[:3])) == 3
    with pytest.raises(BadInput, match="4 extensions given; the solution accepts at most 3"):
        dockerfile.parse_extensions(specs)
    with pytest.raises(BadInput, match="'ext0' is given twice"):
        dockerfile.parse_extensions([specs[0], specs[0]])


@pytest.mark.parametrize("apt, pip, bad", [
    (["libgl1; rm -rf /"], [], "is not an apt package name"),
    (["LibGL"], [], "is not an apt package name"),
    ([], ["xformers==0.0.28 --index-url http://evil"], "is not a pip requirement"),
    ([], ["torch\nRUN echo"], "is not a pip requirement"),
])
def test_package_names_that_could_break_the_dockerfile_are_refused(apt, pip, bad):
    with pytest.raises(BadInput, match=bad):
        dockerfile.check_packages(apt, pip)


def test_reasonable_package_specs_are_accepted():
    dockerfile.check_packages(["libgl1", "ffmpeg=7:4.4.2-0ubuntu0.22.04.1", "libstdc++6"],
                        ["xformers==0.0.28", "diffusers[torch]>=0.30,<0.32", "opencv-python-headless"])


# -- bases ----------------------------------------------------------------------------------

@pytest.mark.parametrize("region, expected", [
    ("us-east-1", "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:"),
    ("eu-west-3", "763104351884.dkr.ecr.eu-west-3.amazonaws.com/pytorch-inference:"),
    ("af-south-1", "626614931356.dkr.ecr.af-south-1.amazonaws.com/pytorch-inference:"),  # opt-in region
    ("ap-east-1", "871362719292.dkr.ecr.ap-east-1.amazonaws.com/pytorch-inference:"),  # opt-in region
    ("il-central-1", "780543022126.dkr.ecr.il-central-1.amazonaws.com/pytorch-inference:"),
    ("cn-north-1", "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/pytorch-inference:"),  # China
    ("cn-northwest-1", "727897471807.dkr.ecr.cn-northwest-1.amazonaws.com.cn/pytorch-inference:"),
])
def test_dlc_base_uses_the_region_registry_account_and_partition_domain(tmp_path, capsys, region, expected):
    code, out, err = run_cli(capsys, "init", str(tmp_path), "--base", "dlc", "--region", region, "-o", "json")
    assert code == 0, err
    tag = dockerfile.dlc_table()["image"]["tag"]
    assert from_line(tmp_path) == f"FROM {expected}{tag}"
    assert tag.endswith("-sagemaker") and "-gpu-" in tag  # pinned SageMaker GPU inference image
    doc = json.loads(out)
    assert doc["base"]["kind"] == "dlc" and doc["needs"] == []  # init wrote a starter serve
    assert str(tmp_path / "serve") in doc["files"]


def test_dlc_base_in_a_region_without_dlcs_is_refused_and_writes_nothing(tmp_path, capsys):
    code, out, err = run_cli(capsys, "init", str(tmp_path / "img"), "--base", "dlc", "--region", "us-gov-west-1")
    assert code == 2
    assert first_error(err).startswith("error: AWS Deep Learning Containers are not published in us-gov-west-1.")
    assert "--base IMAGE" in err
    assert not (tmp_path / "img").exists()


def test_dlc_table_lists_every_region_with_a_12_digit_account():
    table = dockerfile.dlc_table()["registries"]
    assert len(table) >= 30
    assert all(len(acct) == 12 and acct.isdigit() for acct in table.values())


def test_any_image_is_used_as_given_without_aws(tmp_path, capsys):
    ref = "public.ecr.aws/docker/library/python:3.12-slim"
    code, _out, err = run_cli(capsys, "init", str(tmp_path), "--base", ref)
    assert code == 0, err
    assert from_line(tmp_path) == f"FROM {ref}"


def test_a_malformed_base_is_refused(tmp_path, capsys):
    code, _out, err = run_cli(capsys, "init", str(tmp_path), "--base", "my image")
    assert code == 2
    assert "is not 'solution', 'dlc' or an image reference" in err


def test_solution_base_is_the_newest_inference_image_pinned_by_digest(sandbox, ecr, tmp_path, capsys):
    seed.push_image(ecr, "esd-inference", "v1.7.0")
    time.sleep(1.1)  # ECR's imagePushedAt has one-second resolution
    _uri, digest = seed.push_image(ecr, "esd-inference", "v1.8.0")
    code, out, err = run_cli(capsys, "init", str(tmp_path), "-o", "json")
    assert code == 0, err
    expected = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/esd-inference:v1.8.0@{digest}"
    assert from_line(tmp_path) == f"FROM {expected}"
    doc = json.loads(out)
    assert doc["base"]["kind"] == "solution" and doc["needs"] == []
    text = (tmp_path / "Dockerfile").read_text()
    assert "ENTRYPOINT" not in text and "COPY serve" not in text  # the solution's entrypoint is kept


def test_solution_base_falls_back_to_the_v1_repository(sandbox, ecr, tmp_path, capsys):
    _uri, digest = seed.push_image(ecr, "stable-diffusion-aws-extension/aigc-webui-inference", "latest")
    code, _out, err = run_cli(capsys, "init", str(tmp_path))
    assert code == 0, err
    assert from_line(tmp_path).endswith(f"/stable-diffusion-aws-extension/aigc-webui-inference:latest@{digest}")


def test_solution_base_without_the_solution_is_refused_with_the_alternatives(sandbox, tmp_path, capsys):
    code, out, err = run_cli(capsys, "init", str(tmp_path / "x"))
    assert code == 2
    assert first_error(err).startswith(f"error: No solution inference image (esd-inference or "
                          f"stable-diffusion-aws-extension/aigc-webui-inference) in account {ACCOUNT}, us-east-1.")
    assert "--base dlc" in err
    assert not (tmp_path / "x").exists()


# -- rendering and writing ------------------------------------------------------------------

def test_dockerfile_follows_the_template_with_packages_and_pinned_extensions(tmp_path, capsys):
    code, _out, err = run_cli(
        capsys, "init", str(tmp_path), "--base", "dlc", "--region", "us-west-2",
        "--apt", "libgl1", "--apt", "ffmpeg", "--pip", "xformers==0.0.28", "--pip", "diffusers[torch]>=0.30",
        "--extension", CONTROLNET,
        "--extension", f"https://github.com/continue-revolution/sd-webui-animatediff.git#release/v2#{'f' * 40}",
    )
    assert code == 0, err
    text = (tmp_path / "Dockerfile").read_text()
    assert "ENV DEBIAN_FRONTEND=noninteractive" in text
    assert ("RUN apt-get update -y \\\n"
            "    && apt-get install -y --no-install-recommends ca-certificates ffmpeg git libgl1 \\\n"
            "    && rm -rf /var/lib/apt/lists/*") in text
    assert "RUN python -m pip install --no-cache-dir xformers==0.0.28 'diffusers[torch]>=0.30'" in text
    assert ("RUN git clone --single-branch --branch main https://github.com/Mikubill/sd-webui-controlnet.git "
            "/opt/program/extensions/sd-webui-controlnet \\\n"
            f"    && git -C /opt/program/extensions/sd-webui-controlnet checkout --detach {COMMIT} \\\n"
            "    && git clone --single-branch --branch release/v2 "
            "https://github.com/continue-revolution/sd-webui-animatediff.git "
            "/opt/program/extensions/sd-webui-animatediff \\\n"
            f"    && git -C /opt/program/extensions/sd-webui-animatediff checkout --detach {'f' * 40}\n") in text
    assert text.rstrip().endswith('ENTRYPOINT ["python", "/opt/program/serve"]')
    assert "*.safetensors" in (tmp_path / ".dockerignore").read_text()


def test_extensions_go_to_the_webui_extensions_folder_on_the_solution_base():
    base = dockerfile.Base("solution", "1.dkr.ecr.us-east-1.amazonaws.com/esd-inference:v1", "the solution")
    text = dockerfile.render_dockerfile(base, [dockerfile.parse_extension(CONTROLNET)])
    assert "/home/ubuntu/stable-diffusion-webui/extensions/sd-webui-controlnet" in text
    custom = dockerfile.render_dockerfile(base, [dockerfile.parse_extension(CONTROLNET)], extensions_dir="/srv/ext")
    assert "/srv/ext/sd-webui-controlnet" in custom


def test_rendering_is_deterministic_and_build_finds_the_base_and_missing_serve(tmp_path):
    base = dockerfile.dlc_base("eu-central-1")
    first = dockerfile.render_dockerfile(base, [dockerfile.parse_extension(CONTROLNET)], ["libgl1"], ["xformers==0.0.28"])
    assert first == dockerfile.render_dockerfile(base, [dockerfile.parse_extension(CONTROLNET)], ["libgl1"], ["xformers==0.0.28"])
    assert build.base_images(first) == [base.image]
    assert build.missing_sources(first, tmp_path) == ["serve"]
    (tmp_path / "serve").write_text("print('hi')\n")
    assert build.missing_sources(first, tmp_path) == []


def test_existing_files_are_not_overwritten_without_force(tmp_path, capsys):
    (tmp_path / "Dockerfile").write_text("FROM mine\n")
    code, out, err = run_cli(capsys, "init", str(tmp_path), "--base", "python:3.12-slim")
    assert code == 2
    assert first_error(err) == f"error: {tmp_path / 'Dockerfile'} already exists; nothing was written."
    assert "--force" in err
    assert (tmp_path / "Dockerfile").read_text() == "FROM mine\n"
    assert not (tmp_path / ".dockerignore").exists()
    code, _out, err = run_cli(capsys, "init", str(tmp_path), "--base", "python:3.12-slim", "--force")
    assert code == 0, err
    assert from_line(tmp_path) == "FROM python:3.12-slim"


def test_an_existing_dockerignore_alone_also_blocks(tmp_path, capsys):
    (tmp_path / ".dockerignore").write_text("keep\n")
    code, _out, err = run_cli(capsys, "init", str(tmp_path), "--base", "python:3.12-slim")
    assert code == 2 and ".dockerignore already exists" in err
    assert not (tmp_path / "Dockerfile").exists()


def test_dir_that_is_a_file_and_bad_extension_are_one_line_errors(tmp_path, capsys):
    target = tmp_path / "afile"
    target.write_text("x")
    code, _out, err = run_cli(capsys, "init", str(target), "--base", "python:3.12-slim")
    assert code == 2 and "is a file, not a directory" in err
    code, _out, err = run_cli(capsys, "init", str(tmp_path / "d"), "--base", "python:3.12-slim",
                              "--extension", "https://github.com/a/b.git#main")
    assert code == 2
    assert first_error(err).startswith("error: Extension 'https://github.com/a/b.git#main' is not valid")
    assert "Traceback" not in err
    assert not (tmp_path / "d").exists()


def test_text_output_names_the_files_and_the_next_step(tmp_path, capsys):
    code, out, _err = run_cli(capsys, "init", str(tmp_path), "--base", "dlc", "--region", "us-east-1")
    assert code == 0
    assert f"Wrote {tmp_path / 'Dockerfile'}, {tmp_path / '.dockerignore'} and {tmp_path / 'serve'}" in out
    assert "replace Model.load and Model.generate" in out
    assert f"byoc build {tmp_path} --repository <name> --push" in out


def test_init_writes_a_starter_serve_from_package_data_and_keeps_the_users_own(tmp_path, capsys):
    """pip installs do not ship examples/: init writes the reference serve program itself."""
    import os
    from pathlib import Path

    code, _, err = run_cli(capsys, "init", str(tmp_path), "--base", "dlc", "--region", "us-east-1")
    assert code == 0, err
    serve = tmp_path / "serve"
    examples = Path(__file__).resolve().parents[2] / "examples" / "serve"
    assert serve.read_text() == examples.read_text()  # package data and examples/serve are the same program
    assert os.access(serve, os.X_OK)
    serve.write_text("#!/bin/sh\nmine\n")
    code, _, err = run_cli(capsys, "init", str(tmp_path), "--base", "dlc", "--region", "us-east-1", "--force")
    assert code == 0, err
    assert serve.read_text() == "#!/bin/sh\nmine\n"
