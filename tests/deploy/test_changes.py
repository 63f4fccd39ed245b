"""Parsing what an update changes besides the image: --env, --unset-env, --env-file, --instance-type."""

from __future__ import annotations

import pytest

from byoc.deploy import changes
from byoc.endpoint import revisions
from byoc.errors import BadInput


def test_env_files_come_first_and_env_options_win(tmp_path):
    f = tmp_path / "model.env"
    f.write_text("# the solution's settings\n\nexport LOG_LEVEL=INFO\nEXTENSIONS='a,b'\nHF_TOKEN=\"hf_x=y\"\nEMPTY=\n")
    c = changes.parse(env=("LOG_LEVEL=DEBUG", "URL=http://x/?a=b"), env_files=(str(f),))
    assert dict(c.env) == {"LOG_LEVEL": "DEBUG", "EXTENSIONS": "a,b", "HF_TOKEN": "hf_x=y", "EMPTY": "",
                           "URL": "http://x/?a=b"}
    assert c.to_dict()["env"]["HF_TOKEN"] == "****"
    assert c.to_dict()["env"]["LOG_LEVEL"] == "DEBUG"


def test_environment_applies_sets_and_unsets_to_a_copy():
    c = changes.parse(env=("FOO=1",), unset_env=("OLD",))
    current = {"OLD": "x", "KEEP": "y", "FOO": "0"}
    assert c.environment(current) == {"KEEP": "y", "FOO": "1"}
    assert current == {"OLD": "x", "KEEP": "y", "FOO": "0"}


def test_no_options_is_no_change():
    assert not changes.parse()
    assert changes.parse(unset_env=("A",))


@pytest.mark.parametrize("kwargs, message", [
    ({"env": ("NOVALUE",)}, "--env: an entry is not KEY=VALUE."),
    ({"env": ("1BAD=x",)}, "--env: '1BAD' is not a valid environment variable name"),
    ({"env": ("A-B=x",)}, "'A-B' is not a valid environment variable name"),
    ({"unset_env": ("A B",)}, "--unset-env: 'A B' is not a valid"),
    ({"env": ("A=1",), "unset_env": ("A",)}, "A is both set (--env/--env-file) and removed (--unset-env)."),
    ({"instance_type": ("ml.g6.2xlarg",)}, "'ml.g6.2xlarg' is not an instance type SageMaker hosting accepts "
                                           "(did you mean ml.g6.2xlarge"),
    ({"instance_type": ("g6.2xlarge",)}, "'g6.2xlarge' is not an instance type"),
    ({"instance_type": ("ml.g6.xlarge", "ml.g5.xlarge")}, "--instance-type names every variant twice."),
    ({"instance_type": ("a=ml.g6.xlarge", "a=ml.g5.xlarge")}, "--instance-type names variant a twice."),
])
def test_bad_options_are_refused_with_one_line(kwargs, message):
    with pytest.raises(BadInput) as exc:
        changes.parse(**kwargs)
    assert message in exc.value.message
    assert exc.value.fix


def test_a_value_without_its_name_is_never_echoed():
    with pytest.raises(BadInput) as exc:
        changes.parse(env=("hf_abcdefsecret",))
    assert "hf_abcdefsecret" not in str(exc.value)


def test_env_file_errors_name_the_line(tmp_path):
    f = tmp_path / "bad.env"
    f.write_text("A=1\n2B=3\n")
    with pytest.raises(BadInput, match=r"bad.env line 2: '2B'"):
        changes.parse(env_files=(str(f),))
    with pytest.raises(BadInput, match="Cannot read --env-file"):
        changes.parse(env_files=(str(tmp_path / "missing.env"),))


def test_instance_types_per_variant_and_for_all():
    c = changes.parse(instance_type=("ml.g6.2xlarge",))
    assert c.instance_type("prod") == "ml.g6.2xlarge"
    c = changes.parse(instance_type=("blue=ml.g6.2xlarge",))
    assert (c.instance_type("blue"), c.instance_type("green")) == ("ml.g6.2xlarge", None)
    assert c.to_dict()["instance_types"] == {"blue": "ml.g6.2xlarge"}


def test_environment_limits_come_from_botocores_model():
    changes.check_environment({f"K{i}": "v" for i in range(100)}, "m")
    with pytest.raises(BadInput, match="would have 101 environment variables; SageMaker allows 100"):
        changes.check_environment({f"K{i}": "v" for i in range(101)}, "m")
    with pytest.raises(BadInput, match="The value of K is 1025 characters long; SageMaker allows 1024"):
        changes.check_environment({"K": "x" * 1025}, "m")


def test_env_diff_masks_secret_values():
    d = revisions.env_diff({"A": "1", "B": "2", "HF_TOKEN": "old"}, {"A": "1", "B": "3", "HF_TOKEN": "new", "C": "4"})
    assert d == {"added": {"C": "4"}, "changed": {"B": ["2", "3"], "HF_TOKEN": ["****", "****"]}, "removed": []}


def _view(*variants):
    from byoc.endpoint.view import EndpointView

    return EndpointView(name="ep", endpoint={"ProductionVariants": []},
                        config={"ProductionVariants": [dict(v, ModelName="m") for v in variants]})


def test_new_types_name_the_variant_on_multi_variant_endpoints():
    from byoc.deploy.instance_checks import new_types

    two = _view({"VariantName": "a", "InstanceType": "ml.g5.xlarge"}, {"VariantName": "b", "InstanceType": "ml.g5.xlarge"})
    with pytest.raises(BadInput, match="has 2 variants"):
        new_types(two, changes.parse(instance_type=("ml.g6.xlarge",)))
    assert new_types(two, changes.parse(instance_type=("b=ml.g6.xlarge",))) == {"b": ("ml.g5.xlarge", "ml.g6.xlarge")}
    assert new_types(two, changes.parse(instance_type=("b=ml.g5.xlarge",))) == {}  # the same type is no change
    serverless = _view({"VariantName": "s", "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 1}})
    with pytest.raises(BadInput, match="Variant s of ep is serverless"):
        new_types(serverless, changes.parse(instance_type=("ml.g6.xlarge",)))


def test_gpu_and_architecture_facts():
    from byoc import instances

    assert instances.has_gpu("ml.g6.2xlarge") and instances.has_gpu("ml.p4d.24xlarge")
    assert not instances.has_gpu("ml.c7g.xlarge") and not instances.has_gpu("ml.inf2.xlarge")
    assert instances.architecture("ml.p6e-gb200.36xlarge") == "arm64"  # Grace CPUs
    assert instances.has_gpu("ml.p6e-gb200.36xlarge")
