"""One dependency list: pyproject.toml. The Lambda layer's requirements are generated from it."""

from __future__ import annotations

import importlib.util
import py_compile
import sys
import tomllib
from pathlib import Path

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
    assert any(layer_requirements.requirement_name(d) == "cheroot" for d in project["optional-dependencies"]["local"])


check_spec = importlib.util.spec_from_file_location("check_layer", ROOT / "scripts" / "check_layer.py")
assert check_spec is not None and check_spec.loader is not None
check_layer = importlib.util.module_from_spec(check_spec)
check_spec.loader.exec_module(check_layer)


def _layer(root: Path, mode: py_compile.PycInvalidationMode | None) -> Path:
    """A layer folder holding pdrelay's ingest handler, compiled with ``mode`` (None: no bytecode)."""
    source = root / "pdrelay" / "handlers" / "ingest.py"
    source.parent.mkdir(parents=True)
    source.write_text("ANSWER = 42\n")
    if mode is not None:
        tag = sys.implementation.cache_tag
        py_compile.compile(
            str(source), cfile=str(source.parent / "__pycache__" / f"ingest.{tag}.pyc"), invalidation_mode=mode
        )
    return root


def test_the_layer_check_wants_unchecked_bytecode_for_every_module(tmp_path: Path) -> None:
    tag = sys.implementation.cache_tag
    good = _layer(tmp_path / "good", py_compile.PycInvalidationMode.UNCHECKED_HASH)
    assert check_layer.problems(good, tag) == []
    stamped = _layer(tmp_path / "stamped", py_compile.PycInvalidationMode.TIMESTAMP)
    assert check_layer.problems(stamped, tag) == [
        f"pdrelay/handlers/__pycache__/ingest.{tag}.pyc: flags 0, not an unchecked hash-based .pyc"
    ]
    bare = _layer(tmp_path / "bare", None)
    assert check_layer.problems(bare, tag) == [f"pdrelay/handlers/ingest.py: no ingest.{tag}.pyc"]
    assert check_layer.problems(good, "cpython-399") == [  # bytecode for another Python does not count
        "pdrelay/handlers/ingest.py: no ingest.cpython-399.pyc"
    ]


def test_sam_builds_the_layer_with_its_makefile_which_compiles_it() -> None:
    template = (ROOT / "template.yaml").read_text(encoding="utf-8")
    assert "BuildMethod: makefile" in template
    makefile = (ROOT / "layers" / "pdrelay" / "Makefile").read_text(encoding="utf-8")
    assert "build-PdrelayLayer:" in makefile and "--invalidation-mode unchecked-hash" in makefile
