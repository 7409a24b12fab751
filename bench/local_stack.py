"""The local stack under load, as users run it: `pdrelay dev` in a process of its own, Alertmanager
alerts posted at a fixed rate (one alert per request, each with a fingerprint of its own), each
found in the PagerDuty emulator's event list. Prints figures, asserts nothing.

Per rate: alerts sent and delivered, the POST's latency, the end-to-end latency (from the moment
the POST starts to the moment the emulator received the event; both clocks are this machine's),
and the CPU seconds per alert of `pdrelay dev` and every process it started, in all and split by
process beside the load generator's own (read from /proc, so Linux only). The stack is started
afresh for each rate, so one rate's backlog does not slow the next.

The relay's own limits would shape the figures rather than measure the stack: PagerDuty's
per-routing-key limit (120 events a minute) holds sends back and the per-caller limit (600
requests a minute) answers 429. Both are lifted here (PDRELAY_RATE_LIMIT, PDRELAY_CALLER_RATE_LIMIT).

    .venv/bin/python bench/local_stack.py --rates 5 50 --seconds 20
    .venv/bin/python bench/local_stack.py --pdrelay "env PYTHONPATH=/tmp/old/layers/pdrelay python -m pdrelay.cli"
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "events" / "formats" / "alertmanager" / "firing.json"
TOKEN = "bench-local-stack-token-00000001"
LIFTED_LIMITS = {"PDRELAY_RATE_LIMIT": "1000000", "PDRELAY_CALLER_RATE_LIMIT": "0"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    """``pid`` and every process under it, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of this process (its threads included); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15 of stat)


def _label(pid: int, root: int) -> str:
    """What a process of the stack is: ``stack`` (`pdrelay dev` itself), else the module it runs
    (``-m pdrelay.local.aws_process`` → ``aws_process``) with its first argument after the host
    and port, if any (which services it serves)."""
    if pid == root:
        return "stack"
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return f"pid {pid}"
    if "-m" in argv:
        rest = argv[argv.index("-m") + 1 :]
        name = rest[0].rsplit(".", 1)[-1]
        extra = [a for a in rest[3:] if a]
        return f"{name}:{extra[0]}" if extra else name
    return Path(argv[0]).name if argv and argv[0] else f"pid {pid}"


@dataclass
class Sent:
    started: float  # time.time() when the POST started
    post_seconds: float
    status: int
    dedup_key: str = ""


@dataclass
class DevStack:
    """`pdrelay dev` started as a user starts it, in a folder of its own."""

    command: list[str]
    workdir: Path
    port: int = field(default_factory=_free_port)
    emulator_port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    def start(self) -> DevStack:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PDRELAY_", "AWS_"))}
        env.update(LIFTED_LIMITS, PDRELAY_STATE_DIR=str(self.workdir / "state"))
        argv = [*self.command, "dev", "--port", str(self.port), "--emulator-port", str(self.emulator_port)]
        argv += ["--token", TOKEN, "--template", str(ROOT / "template.yaml")]
        log = (self.workdir / "dev.log").open("wb")
        self.process = subprocess.Popen(argv, cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"pdrelay dev did not start: {(self.workdir / 'dev.log').read_text()[-2000:]}")

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds so far of `pdrelay dev` and of each process under it, by :func:`_label`."""
        assert self.process is not None
        cpu: dict[str, float] = {}
        for pid in _children(self.process.pid):
            label = _label(pid, self.process.pid)
            cpu[label] = cpu.get(label, 0.0) + _cpu_seconds(pid)
        return cpu

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _alert(sample: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(sample)
    doc["alerts"] = [doc["alerts"][0]]
    doc["alerts"][0]["fingerprint"] = uuid.uuid4().hex
    doc["alerts"][0]["labels"]["instance"] = f"bench-{uuid.uuid4().hex[:12]}"
    return doc


def _post(url: str, doc: dict[str, Any], at: float, local: threading.local) -> Sent:
    session: requests.Session | None = getattr(local, "session", None)
    if session is None:
        session = local.session = requests.Session()
    time.sleep(max(0.0, at - time.monotonic()))
    started, clock = time.time(), time.perf_counter()
    try:
        answer = session.post(
            url + "/v1/alerts/alertmanager", json=doc, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
        )
    except requests.RequestException:
        return Sent(started, time.perf_counter() - clock, 0)
    elapsed = time.perf_counter() - clock
    keys = [a.get("dedup_key", "") for a in answer.json().get("alerts", [])] if answer.status_code == 202 else []
    return Sent(started, elapsed, answer.status_code, keys[0] if keys else "")


def _received(emulator_url: str) -> dict[str, float]:
    """When the emulator received each event, by dedup key (the first time)."""
    seen: dict[str, float] = {}
    for event in requests.get(emulator_url + "/events", timeout=30).json():
        seen.setdefault(event["dedup_key"], float(event["t"]))
    return seen


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run_rate(command: list[str], rate: float, seconds: float, drain_seconds: float) -> dict[str, Any]:
    sample = json.loads(SAMPLE.read_text())
    count = int(rate * seconds)
    with tempfile.TemporaryDirectory(prefix="pdrelay-bench-") as tmp:
        stack = DevStack(command, Path(tmp)).start()
        try:
            docs = [_alert(sample) for _ in range(count)]
            local = threading.local()
            cpu_before, load_before = stack.cpu_seconds(), time.process_time()
            begin = time.monotonic() + 0.2
            with ThreadPoolExecutor(max_workers=min(128, max(4, int(rate * 3)))) as pool:
                futures = [pool.submit(_post, stack.url, doc, begin + i / rate, local) for i, doc in enumerate(docs)]
                sent = [f.result() for f in futures]
            keys = {s.dedup_key for s in sent if s.dedup_key}
            deadline = time.monotonic() + drain_seconds
            received = _received(stack.emulator_url)
            while not keys <= received.keys() and time.monotonic() < deadline:
                time.sleep(1.0)
                received = _received(stack.emulator_url)
            load = time.process_time() - load_before  # this process: the load generator (and its polls)
            cpu_after = stack.cpu_seconds()
            cpu = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_after.items()}
        finally:
            stack.stop()
    accepted = [s for s in sent if s.dedup_key]
    e2e = [received[s.dedup_key] - s.started for s in accepted if s.dedup_key in received]
    posts = [s.post_seconds for s in sent]
    return {
        "rate": rate,
        "sent": count,
        "accepted": len(accepted),
        "delivered": len(e2e),
        "errors": sorted({s.status for s in sent if s.status != 202}),
        "post_p50": _percentile(posts, 0.50),
        "post_p99": _percentile(posts, 0.99),
        "e2e_p50": _percentile(e2e, 0.50),
        "e2e_p99": _percentile(e2e, 0.99),
        "e2e_max": max(e2e) if e2e else float("nan"),
        "cpu_per_alert": sum(cpu.values()) / max(1, count),  # the stack's processes, not the load generator
        "cpu_split": {**{k: v / max(1, count) for k, v in sorted(cpu.items())}, "load generator": load / max(1, count)},
    }


def _print(label: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{label}")
    print(
        f"{'rate/s':>7} {'sent':>6} {'deliv':>6}  {'POST p50':>9} {'p99':>8}  "
        f"{'e2e p50':>9} {'p99':>8} {'max':>8}  {'CPU ms/alert':>12}  errors"
    )
    for r in rows:
        print(
            f"{r['rate']:>7g} {r['sent']:>6} {r['delivered']:>6}  {r['post_p50'] * 1000:>7.0f}ms "
            f"{r['post_p99'] * 1000:>6.0f}ms  {r['e2e_p50'] * 1000:>7.0f}ms {r['e2e_p99'] * 1000:>6.0f}ms "
            f"{r['e2e_max'] * 1000:>6.0f}ms  {r['cpu_per_alert'] * 1000:>12.1f}  {r['errors'] or ''}",
            flush=True,
        )
    print("CPU ms per alert, by process:")
    for r in rows:
        split = ", ".join(f"{name} {seconds * 1000:.1f}" for name, seconds in r["cpu_split"].items())
        print(f"{r['rate']:>7g}  {split}", flush=True)


def bench_local(
    rates: tuple[float, ...] = (5, 50),
    seconds: float = 20,
    commands: dict[str, list[str]] | None = None,
    drain_seconds: float = 120,
) -> None:
    """Each rate against each `pdrelay dev` command (default: this interpreter's `pdrelay`)."""
    commands = commands or {"pdrelay dev": [sys.executable, "-m", "pdrelay.cli"]}
    print(
        f"local stack: {seconds:g} s per rate, one Alertmanager alert per request; "
        f"limits lifted: {', '.join(f'{k}={v}' for k, v in LIFTED_LIMITS.items())}; "
        f"{os.cpu_count()} cores; drain wait up to {drain_seconds:g} s"
    )
    results: dict[str, list[dict[str, Any]]] = {label: [] for label in commands}
    for rate in rates:  # interleaved, so a busy machine weighs on both alike
        for label, command in commands.items():
            results[label].append(run_rate(command, rate, seconds, drain_seconds))
    for label, rows in results.items():
        _print(label, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=[5, 50], help="alerts per second")
    parser.add_argument("--seconds", type=float, default=20, help="how long to send at each rate")
    parser.add_argument("--drain", type=float, default=120, help="how long to wait for the last deliveries")
    parser.add_argument(
        "--pdrelay",
        action="append",
        metavar="COMMAND",
        help="the command to run `dev` with (repeatable, to compare builds side by side); "
        "default: this interpreter's `python -m pdrelay.cli`",
    )
    args = parser.parse_args()
    commands = {c: shlex.split(c) for c in args.pdrelay} if args.pdrelay else None
    bench_local(tuple(args.rates), args.seconds, commands, args.drain)


if __name__ == "__main__":
    main()
