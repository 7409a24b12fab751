"""moto (the local stack's AWS emulator) is the optional 'local' extra: without it, `pdrelay dev`
says what to install in one line, and every other command still works."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pdrelay.cli import main
from tests.conftest import ROOT


@pytest.mark.parametrize("missing", ["moto", "moto.server", "cheroot.wsgi"])
def test_dev_without_moto_says_how_to_install_it_in_one_line(
    missing: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given moto is not installed (or installed without its server: `moto` rather than `moto[server]`),
    # or cheroot, which serves it, is not (an install from before the extra listed it)
    monkeypatch.setitem(sys.modules, missing, None)  # None in sys.modules makes `import` fail
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PDRELAY_STATE_DIR", str(tmp_path / "state"))

    # When a user runs `pdrelay dev`
    code = main(["dev", "--template", str(ROOT / "template.yaml")])

    # Then one line on stderr names the extra to install, with no traceback, and nothing was started
    out, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("pdrelay dev needs the local stack's AWS emulator")
    local_extra = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    wanted = " ".join(f"'{requirement}'" for requirement in local_extra["local"])
    assert f"pip install {wanted}," in err  # what the extra holds (pyproject.toml), not a package name
    assert out == ""
    assert not (tmp_path / "state").exists()
    assert list(tmp_path.iterdir()) == []


def test_the_other_commands_start_without_moto(tmp_path: Path) -> None:
    # Given a fresh interpreter in which moto cannot be imported
    block_moto = "import sys; sys.modules['moto'] = None; from pdrelay.cli import main; sys.exit(main())"

    # When a user asks for help, and runs `pdrelay send` (stopped at its own check, before any HTTP)
    helped = subprocess.run([sys.executable, "-c", block_moto, "--help"], capture_output=True, text=True, cwd=tmp_path)
    sent = subprocess.run(
        [sys.executable, "-c", block_moto, "send", "-k", "key", "-t", "trigger", "-d", "disk full", "-f", "oops"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )

    # Then both get as far as their own answers
    assert helped.returncode == 0 and "maintenance" in helped.stdout
    assert (sent.returncode, sent.stderr) == (2, "pdrelay send: -f takes KEY=VALUE, got 'oops'\n")
