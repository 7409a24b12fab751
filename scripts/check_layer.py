"""Check what `sam build` made of the layer: every module ships its Python 3.13 bytecode, hash-based
and unchecked (layers/pdrelay/Makefile), so no cold start compiles it, and pdrelay is there.

    python3 scripts/check_layer.py .aws-sam/build/PdrelayLayer/python
"""

from __future__ import annotations

import sys
from pathlib import Path

MAGIC_TAG = "cpython-313"
UNCHECKED_HASH = 0b01  # PEP 552: hash-based, not checked against the source


def problems(root: Path, tag: str = MAGIC_TAG) -> list[str]:
    found: list[str] = []
    if not (root / "pdrelay" / "handlers" / "ingest.py").is_file():
        found.append(f"{root}: no pdrelay package")
    sources = [p for p in root.rglob("*.py") if "__pycache__" not in p.parts]
    for source in sources:
        compiled = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        if not compiled.is_file():
            found.append(f"{source.relative_to(root)}: no {compiled.name}")
            continue
        flags = int.from_bytes(compiled.read_bytes()[4:8], "little")
        if flags != UNCHECKED_HASH:
            found.append(f"{compiled.relative_to(root)}: flags {flags}, not an unchecked hash-based .pyc")
    if not sources:
        found.append(f"{root}: no Python modules")
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(".aws-sam/build/PdrelayLayer/python")
    found = problems(root)
    for line in found[:20]:
        print(f"check_layer: {line}", file=sys.stderr)
    if found:
        print(f"check_layer: {len(found)} problem(s) in {root}", file=sys.stderr)
        return 1
    count = sum(1 for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    print(f"check_layer: {count} modules in {root}, each with its {MAGIC_TAG} bytecode")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
