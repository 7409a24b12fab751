"""The `pdrelay trace` samples in the operating guide are what the command prints: their log lines
(captured from `pdrelay dev`, beside them in docs/samples/) rendered again give the same timeline.
The state rows come from the table of that run and are not checked here."""

from __future__ import annotations

import pytest

from pdrelay.cli.trace import render
from pdrelay.ops.trace import read_log_files, trace_from_logs
from tests.conftest import ROOT

SAMPLES = ROOT / "docs" / "samples"


@pytest.mark.parametrize(
    ("name", "key"), [("trace-retried", "alertmanager:c0ffee00d15ea5e1"), ("trace-dead-lettered", "disk-full-db-1")]
)
def test_each_sample_is_what_trace_prints_for_its_log_lines(name: str, key: str) -> None:
    printed = (SAMPLES / f"{name}.txt").read_text(encoding="utf-8")
    assert f'--8<-- "docs/samples/{name}.txt"' in (ROOT / "docs" / "operating.md").read_text(encoding="utf-8")
    lines = read_log_files(SAMPLES / f"{name}.log")

    found = trace_from_logs(key, lambda texts: ([ln for ln in lines if any(t in str(ln.doc) for t in texts)], True))
    found.source = printed.split(" from ", 1)[1].split("\n", 1)[0]  # where that run's log file was

    timeline = render(found).split("\nstate now", 1)[0]
    assert printed.split("\nstate now", 1)[0] == timeline
    assert "routing_key" not in (SAMPLES / f"{name}.log").read_text(encoding="utf-8")
