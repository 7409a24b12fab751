"""The local stack runs from an installed package: it finds a checkout's template.yaml from the working
folder, else uses the spec the package carries (generated from template.yaml, never edited by hand),
and loads each function's handler from the package when its CodeUri folder is not there."""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

import pytest

from pdrelay.local.state import dev_state_file, state_dir
from pdrelay.local.template import PACKAGED_SPEC, find_template, packaged_spec, read_spec
from tests.conftest import ROOT

FUNCTIONS = ("IngestFunction", "DispatchFunction", "RedriveFunction", "SweepFunction")


def test_the_packaged_spec_is_what_the_stack_reads_from_template_yaml() -> None:
    # Given the template as it is now, When the stack's reading of it is written as the package's spec,
    # Then it is the packaged file, byte for byte
    expected = json.dumps(read_spec(ROOT / "template.yaml").document(), indent=1, sort_keys=True) + "\n"
    assert PACKAGED_SPEC.read_text(encoding="utf-8") == expected, (
        "layers/pdrelay/pdrelay/local/template.json is stale: run `.venv/bin/python -m pdrelay.local.template`"
    )


def test_the_packaged_spec_reads_back_as_the_template_does() -> None:
    from_template, packaged = read_spec(ROOT / "template.yaml"), packaged_spec()
    assert packaged.root is None
    assert packaged.queues == from_template.queues and packaged.tables == from_template.tables
    for logical_id in FUNCTIONS:
        function = packaged.functions[logical_id]
        assert function.code_dir is None
        assert function.sqs_source == from_template.functions[logical_id].sqs_source


@pytest.mark.parametrize("spec", ["checkout", "packaged"])
def test_each_load_is_an_execution_environment_of_its_own(spec: str) -> None:
    # Given the functions as a checkout defines them (functions/<name>/app.py re-exports the
    # package's handler) or as the package carries them (no functions/ folder)
    functions = (read_spec(ROOT / "template.yaml") if spec == "checkout" else packaged_spec()).functions
    for logical_id in FUNCTIONS:
        # When the handler is loaded twice
        first, second = functions[logical_id].load_handler(), functions[logical_id].load_handler()

        # Then both are callable and share no module state
        assert callable(first) and callable(second)
        assert inspect.unwrap(first).__globals__ is not inspect.unwrap(second).__globals__


def test_a_checkout_is_found_from_any_folder_inside_it(tmp_path: Path) -> None:
    checkout = tmp_path / "pdrelay"
    (checkout / "layers" / "pdrelay" / "pdrelay").mkdir(parents=True)
    shutil.copy(ROOT / "template.yaml", checkout / "template.yaml")
    (checkout / "docs" / "senders").mkdir(parents=True)

    assert find_template(checkout) == checkout / "template.yaml"
    assert find_template(checkout / "docs" / "senders") == checkout / "template.yaml"


def test_another_projects_template_is_not_taken_for_pdrelays(tmp_path: Path) -> None:
    # Given a folder with a SAM template.yaml of some other project, inside no pdrelay checkout
    (tmp_path / "template.yaml").write_text("Resources: {}\n")

    # Then no template is found there: the stack uses the packaged spec
    assert find_template(tmp_path) is None


def test_the_state_folder_is_the_option_then_xdg_then_home_never_the_working_folder(tmp_path: Path) -> None:
    assert state_dir({"PDRELAY_STATE_DIR": str(tmp_path / "s"), "XDG_STATE_HOME": "/x"}) == tmp_path / "s"
    assert state_dir({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "pdrelay"
    assert state_dir({"XDG_STATE_HOME": "relative/ignored"}) == Path.home() / ".local" / "state" / "pdrelay"
    assert state_dir({}) == Path.home() / ".local" / "state" / "pdrelay"
    assert dev_state_file({"PDRELAY_STATE_DIR": str(tmp_path)}) == tmp_path / "dev.json"
