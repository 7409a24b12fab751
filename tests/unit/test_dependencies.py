"""One dependency list: pyproject.toml. The Lambda layer's requirements are generated from it."""

from __future__ import annotations

import importlib.util
import tomllib

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("layer_requirements", ROOT / "scripts" / "layer_requirements.py")
assert spec is not None and spec.loader is not None
layer_requirements = importlib.util.module_from_spec(spec)
spec.loader.exec_module(layer_requirements)


def test_the_layer_requirements_are_generated_from_pyproject() -> None:
    written = (ROOT / "layers" / "pdrelay" / "requirements.txt").read_text(encoding="utf-8")
    assert written == layer_requirements.render(), "run: python scripts/layer_requirements.py"


def test_the_layer_leaves_out_only_what_the_lambda_runtime_provides() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {layer_requirements.requirement_name(d) for d in project["dependencies"]}
    listed = {
        layer_requirements.requirement_name(line)
        for line in layer_requirements.render().splitlines()
        if line and not line.startswith("#")
    }
    assert names - listed == {"boto3"}


def test_the_local_stacks_aws_emulator_is_an_extra_not_a_runtime_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert not any(layer_requirements.requirement_name(d) == "moto" for d in project["dependencies"])
    assert any(d.startswith("moto[server]") for d in project["optional-dependencies"]["local"])
