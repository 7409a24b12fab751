"""The Lambda layer with and without bytecode: what a cold start pays to compile the layer's modules.

Lambda mounts a layer read-only, so Python cannot write the ``.pyc`` files it compiles: a layer
shipped without them (what SAM's ``BuildMethod: python3.13`` builds) compiles every module a
handler imports from source on each cold start. ``layers/pdrelay/Makefile`` ships the bytecode.

Both layers are built here for this machine (the real one is for arm64 and Python 3.13, which this
machine may not run) from ``layers/pdrelay/requirements.txt``, with the Makefile's ``compileall``
options for the second, and each handler is imported in fresh interpreters (``-B``: nothing is
written) with the layer first on the path and boto3 after it, as in Lambda (``/opt/python`` before
the runtime's own packages, whose bytecode the runtime ships). Runs alternate between the two
layers, so both see the same machine. Needs the package registry for ``pip install`` (pip's cache
after the first run).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER_SOURCE = ROOT / "layers" / "pdrelay"
HANDLERS = ("ingest", "dispatch", "sweep")

SNIPPET = """
import sys, time
sys.path[:0] = [{layer!r}]
sys.path.append({site!r})
t = time.process_time()
import {module}
print(time.process_time() - t)
"""


def _build(into: Path, compiled: bool) -> None:
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    subprocess.run([*pip, "--target", str(into), "-r", str(LAYER_SOURCE / "requirements.txt")], check=True)
    shutil.copytree(LAYER_SOURCE / "pdrelay", into / "pdrelay", ignore=shutil.ignore_patterns("__pycache__"))
    if compiled:
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(into)],
            check=True,
        )


def _cpu_seconds(layer: Path, module: str) -> float:
    site = sysconfig.get_paths()["purelib"]  # boto3 and botocore, as the runtime has them
    out = subprocess.run(
        [sys.executable, "-S", "-E", "-B", "-c", SNIPPET.format(layer=str(layer), site=site, module=module)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out.split()[-1])


def bench_layer(runs: int) -> None:
    print("\nthe layer's bytecode (CPU ms of the import in a fresh interpreter; median of runs, side by side)")
    with tempfile.TemporaryDirectory(prefix="pdrelay-layer-") as tmp:
        plain, compiled = Path(tmp) / "plain", Path(tmp) / "compiled"
        try:
            _build(plain, compiled=False)
            _build(compiled, compiled=True)
        except subprocess.CalledProcessError as exc:
            print(f"  skipped: building the layers failed ({exc})")
            return
        print(f"  {'import':<28} {'no bytecode':>12} {'bytecode':>10}   saved per cold start")
        for module in ("boto3", *(f"pdrelay.handlers.{h}" for h in HANDLERS)):
            times: dict[Path, list[float]] = {plain: [], compiled: []}
            for _ in range(runs):
                for layer in (plain, compiled):
                    times[layer].append(_cpu_seconds(layer, module))
            without, with_ = (statistics.median(times[layer]) * 1000 for layer in (plain, compiled))
            print(f"  {module:<28} {without:>9.0f} ms {with_:>7.0f} ms   {without - with_:6.0f} ms")
    print("  (boto3 too: the layer's urllib3 comes before the runtime's. Lambda bills INIT since August 2025.)")
