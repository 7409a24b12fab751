"""`pdrelay trace` on the local stack's log file: the timeline is shown even when the table cannot
be read (a `pdrelay dev` that has stopped), with a note saying so; nothing known exits 3."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pdrelay.cli import main
from tests.conftest import ROOT


def test_a_stopped_stacks_log_file_still_tells_the_story(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the log file of a `pdrelay dev` that has stopped (its dev.json names an AWS emulator gone)
    shutil.copy(ROOT / "docs" / "samples" / "trace-dead-lettered.log", tmp_path / "dev.log")
    state = {"aws_endpoint": "http://127.0.0.1:9", "queue_url": "q", "dlq_url": "d", "table_name": "t"}
    (tmp_path / "dev.json").write_text(json.dumps({**state, "log_file": str(tmp_path / "dev.log")}))
    monkeypatch.setenv("PDRELAY_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

    # When the on-call engineer traces the alert
    code = main(["trace", "disk-full-db-1", "--since", "2000-01-01T00:00:00Z"])

    # Then the timeline is there, and a note says why the state is not
    out = capsys.readouterr().out
    assert code == 0
    assert "dead-lettered" in out and "redriven" in out
    assert "note: the dedup table could not be read" in out

    # and a key nobody logged exits 3
    assert main(["trace", "nobody-knows", "--since", "2000-01-01T00:00:00Z", "--json"]) == 3
    assert json.loads(capsys.readouterr().out)["timeline"] == []


def test_on_the_local_stack_it_reads_the_running_stacks_own_lines_unless_asked_for_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a dev.log that holds an earlier run's lines of the alert (05:07 on 2026-12-07), and a
    # `pdrelay dev` started after them (its queues and table start empty)
    shutil.copy(ROOT / "docs" / "samples" / "trace-dead-lettered.log", tmp_path / "dev.log")
    state = {"aws_endpoint": "http://127.0.0.1:9", "queue_url": "q", "dlq_url": "d", "table_name": "t"}
    started = {"log_file": str(tmp_path / "dev.log"), "started_at": "2026-12-07T06:00:00+00:00"}
    (tmp_path / "dev.json").write_text(json.dumps({**state, **started}))
    monkeypatch.setenv("PDRELAY_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

    # Then by default the earlier run's lines are not this run's story
    assert main(["trace", "disk-full-db-1", "--json"]) == 3
    assert "since this `pdrelay dev` started" in json.loads(capsys.readouterr().out)["source"]
    # and --since asks for them
    assert main(["trace", "disk-full-db-1", "--since", "2026-12-07T05:00:00Z", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["timeline"] != []
