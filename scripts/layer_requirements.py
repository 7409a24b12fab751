"""Write layers/pdrelay/requirements.txt from pyproject.toml's dependencies (the one list).

The Lambda layer installs the same runtime dependencies as ``pip install pdrelay``, less boto3,
which the Lambda runtime provides. ``--check`` exits 1 when the file is out of date (CI runs it
through a unit test).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "layers" / "pdrelay" / "requirements.txt"
PROVIDED_BY_LAMBDA = {"boto3", "botocore"}
HEADER = (
    "# Generated from pyproject.toml by scripts/layer_requirements.py: edit the dependencies there.\n"
    "# What the pdrelay package needs inside Lambda (boto3 comes with the runtime).\n"
)


def requirement_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()


def render(pyproject: Path = ROOT / "pyproject.toml") -> str:
    dependencies = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    kept = [d for d in dependencies if requirement_name(d) not in PROVIDED_BY_LAMBDA]
    return HEADER + "".join(f"{d}\n" for d in kept)


def main(argv: list[str]) -> int:
    wanted = render()
    if "--check" in argv:
        if TARGET.read_text(encoding="utf-8") != wanted:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run python scripts/layer_requirements.py")
            return 1
        return 0
    TARGET.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
