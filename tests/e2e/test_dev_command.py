"""`pdrelay dev` as a user runs it: a process of its own, started in a folder that is no checkout (no
template.yaml: the package's own spec and handlers), then curl-like posts and `pdrelay incidents`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from pdrelay.local.stack import free_port
from tests.conftest import load_event, unique

pytestmark = pytest.mark.e2e
TOKEN = "dev-command-token-0000000001"


@pytest.fixture(scope="module")
def dev_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str, dict[str, str]]]:
    workdir = tmp_path_factory.mktemp("dev")
    port, emulator_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PDRELAY_", "AWS_"))}
    env["XDG_STATE_HOME"] = str(workdir / "xdg-state")  # the default state folder, not the user's
    log = (workdir / "dev.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pdrelay.cli",
            "dev",
            "--port",
            str(port),
            "--emulator-port",
            str(emulator_port),
            "--token",
            TOKEN,
        ],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/health", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail(f"pdrelay dev did not start: {(workdir / 'dev.log').read_text()}")
    yield url, f"http://127.0.0.1:{emulator_port}", str(workdir), env
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)
    log.close()


def test_dev_brings_up_a_relay_where_firing_and_resolved_make_one_resolved_incident(
    dev_process: tuple[str, str, str, dict[str, str]],
) -> None:
    url, emulator_url, workdir, env = dev_process
    doc = load_event("formats/alertmanager/firing.json")
    doc["alerts"][0]["fingerprint"] = unique()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    answer = requests.post(url + "/v1/alerts/alertmanager", json=doc, headers=headers, timeout=10)
    assert answer.status_code == 202
    key = answer.json()["alerts"][0]["dedup_key"]

    def statuses() -> list[str]:
        return [
            i["status"] for i in requests.get(emulator_url + "/incidents", timeout=5).json() if i["dedup_key"] == key
        ]

    def wait_for(expected: list[str]) -> None:
        deadline = time.monotonic() + 40
        while statuses() != expected and time.monotonic() < deadline:
            time.sleep(0.1)

    wait_for(["triggered"])  # as a person would: the resolve comes after the page
    doc["alerts"][0].update(status="resolved", endsAt="2026-11-24T09:20:00Z")
    assert requests.post(url + "/v1/alerts/alertmanager", json=doc, headers=headers, timeout=10).status_code == 202
    wait_for(["resolved"])
    assert statuses() == ["resolved"], (Path(workdir) / "dev.log").read_text()[-3000:]
    listing = subprocess.run(
        [sys.executable, "-m", "pdrelay.cli", "incidents"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "resolved" in listing.stdout and key[:40] in listing.stdout
    page = requests.get(emulator_url + "/", timeout=5)
    assert "PagerDuty Events API emulator" in page.text


def test_dev_runs_from_a_folder_without_template_yaml_and_writes_nothing_there(
    dev_process: tuple[str, str, str, dict[str, str]],
) -> None:
    url, _, workdir, env = dev_process
    log = (Path(workdir) / "dev.log").read_text()
    assert not (Path(workdir) / "template.yaml").exists()
    assert "queues and table from the template packaged with pdrelay" in log
    assert sorted(p.name for p in Path(workdir).iterdir()) == ["dev.log", "xdg-state"]  # no .pdrelay/ here
    state = json.loads((Path(env["XDG_STATE_HOME"]) / "pdrelay" / "dev.json").read_text())
    assert state["url"] == url and state["token"] == TOKEN
    assert "forgotten" in log  # the banner still says what a restart loses


def test_dev_tells_how_to_reconcile_against_its_emulator_and_reconcile_runs_there(
    dev_process: tuple[str, str, str, dict[str, str]],
) -> None:
    _, emulator_url, workdir, env = dev_process
    log = (Path(workdir) / "dev.log").read_text()
    assert "pdrelay reconcile" in log and f"{emulator_url}/rest" in log
    state = json.loads((Path(env["XDG_STATE_HOME"]) / "pdrelay" / "dev.json").read_text())
    assert state["pagerduty_api_url"] == f"{emulator_url}/rest" and state["pagerduty_api_key"] in log
    run = subprocess.run(
        [sys.executable, "-m", "pdrelay.cli", "reconcile", "--json"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode in (0, 1), run.stderr
    assert json.loads(run.stdout)["mode"] == "dry-run"
