"""The configuration example (events/config/example.yaml) and the docs that show it.

The example is what a platform team starts from, so it must validate, the configuration page must
show it unchanged (it includes the file), and it must do what its comments say: each explanation
below runs a monitor's payload through `pdrelay config explain`'s code and checks the destinations
the comments promise.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pdrelay.cli import build_parser
from pdrelay.config import RelayConfig, parse_config
from pdrelay.ops import configtool

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "events" / "config" / "example.yaml"
README = ROOT / "README.md"
CONFIGURATION_PAGE = ROOT / "docs" / "configuration.md"
FIRING = ROOT / "events" / "formats" / "alertmanager" / "firing.json"
OUTSIDE_WINDOWS = "2026-11-24T09:05:00+00:00"  # when the fixture fired; no window of the example runs


@pytest.fixture(scope="module")
def example() -> RelayConfig:
    return parse_config(EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE))


def firing(**labels: str) -> bytes:
    """The Alertmanager firing fixture, with labels of its one alert changed or added."""
    doc = json.loads(FIRING.read_text(encoding="utf-8"))
    alert = copy.deepcopy(doc["alerts"][0])
    alert["labels"].update(labels)
    doc["alerts"] = [alert]
    return json.dumps(doc).encode()


def sent(config: RelayConfig, body: bytes, route: str, at: str = OUTSIDE_WINDOWS) -> dict[str, dict[str, Any]]:
    """Destination → its explained event, for what would be sent now (not held)."""
    result = configtool.explain(config, body, route=route, at=datetime.fromisoformat(at))
    return {e["destination"]: e for e in result.events if e["verdict"] == "sent"}


def verdicts(config: RelayConfig, body: bytes, route: str, at: str) -> dict[str, str]:
    result = configtool.explain(config, body, route=route, at=datetime.fromisoformat(at))
    return {e["destination"]: e["verdict"] for e in result.events}


# -- the file and the docs ------------------------------------------------------------------------------


def test_the_example_validates(example: RelayConfig) -> None:
    assert set(example.routes) == {"platform", "payments", "infra", "watchdog"}
    assert [c.name for c in example.callers] == ["alertmanager-prod", "ci-payments"]
    assert [w.name for w in example.maintenance] == [
        "payments-db-failover",
        "weekly-storage-backup",
        "silence-db-7-disk",
    ]


def test_the_example_keys_and_tokens_are_obviously_fake(example: RelayConfig) -> None:
    keys = {key for route in example.routes.values() for key in route.targets.values()}
    assert keys and all(key.startswith("R0UT1NGKEYF0RTHE") for key in keys)
    assert all(caller.token.startswith("change-me-") for caller in example.callers)


def test_the_configuration_page_includes_the_example_file_itself() -> None:
    # A snippet include (pymdownx.snippets, check_paths on), not a copy: the page cannot drift.
    text = CONFIGURATION_PAGE.read_text(encoding="utf-8")
    section = text[text.index("## A complete example\n") :]
    found = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert found, "no YAML block in the configuration page's example section"
    assert found.group(1) == '--8<-- "events/config/example.yaml"\n'


# -- what the comments promise ---------------------------------------------------------------------------


def test_a_critical_alert_on_payments_pages_both_teams_with_the_escalation_note(example: RelayConfig) -> None:
    events = sent(example, FIRING.read_bytes(), "payments")

    assert sorted(events) == ["payments", "platform"]
    assert {e["rule"] for e in events.values()} == {"critical-to-both"}
    for explained in events.values():
        details = explained["event"]["payload"]["custom_details"]
        assert details["escalation"] == "payments on-call; platform on-call informed"
        assert explained["event"]["routing_key"].startswith("…")  # masked


def test_a_canary_pages_nobody_on_payments(example: RelayConfig) -> None:
    assert sent(example, firing(canary="true"), "payments") == {}


def test_the_watchdog_pages_nobody_and_is_the_only_contact_of_its_heartbeat(example: RelayConfig) -> None:
    from pdrelay.formats import ParseContext, get

    assert sent(example, firing(alertname="Watchdog"), "watchdog") == {}
    assert set(sent(example, firing(), "watchdog")) == {"default"}
    heartbeat = example.routes["watchdog"].heartbeat
    assert heartbeat is not None and heartbeat.every.total_seconds() == 300
    fmt = get("alertmanager")

    def alerts(body: bytes) -> list[Any]:
        return fmt.parse(json.loads(body), ParseContext(received_at=datetime.now().astimezone())).alerts

    assert heartbeat.counts(alerts(firing(alertname="Watchdog")))
    assert not heartbeat.counts(alerts(firing()))


def test_a_checkout_warning_pages_payments_as_an_error(example: RelayConfig) -> None:
    events = sent(example, firing(severity="warning"), "payments")

    assert list(events) == ["payments"]
    assert events["payments"]["event"]["payload"]["severity"] == "error"


def test_another_warning_goes_to_the_default_destination_unchanged(example: RelayConfig) -> None:
    events = sent(example, firing(severity="warning", job="ledger"), "payments")

    assert list(events) == ["payments"]
    assert events["payments"]["rule"] is None
    assert events["payments"]["event"]["payload"]["severity"] == "warning"


def test_infra_adds_up_every_matching_rule(example: RelayConfig) -> None:
    assert sorted(sent(example, firing(), "infra")) == ["network", "storage"]  # no rule: every destination
    assert sorted(sent(example, firing(team="storage"), "infra")) == ["storage"]
    assert sorted(sent(example, firing(team="storage", alertname="NetworkLatency"), "infra")) == ["network", "storage"]
    assert sent(example, firing(team="storage", alertname="NetworkLatency", env="staging"), "infra") == {}


def test_the_one_off_window_holds_payments_during_the_failover(example: RelayConfig) -> None:
    during = verdicts(example, FIRING.read_bytes(), "payments", "2026-12-01T23:00:00+01:00")
    after = verdicts(example, FIRING.read_bytes(), "payments", "2026-12-02T02:00:00+01:00")

    assert during == {
        "payments": "held by maintenance window 'payments-db-failover'",
        "platform": "held by maintenance window 'payments-db-failover'",
    }
    assert after == {"payments": "sent", "platform": "sent"}


def test_the_weekly_window_holds_storage_alerts_on_sunday_night_only(example: RelayConfig) -> None:
    sunday = verdicts(example, firing(team="storage"), "infra", "2026-11-29T02:30:00+01:00")
    monday = verdicts(example, firing(team="storage"), "infra", "2026-11-30T02:30:00+01:00")

    assert sunday == {"storage": "held by maintenance window 'weekly-storage-backup'"}
    assert monday == {"storage": "sent"}


@pytest.mark.parametrize(
    ("night", "start", "end"),
    [
        ("2027-03-28T12:00:00+00:00", "2027-03-28T03:00:00+02:00", "2027-03-28T05:00:00+02:00"),  # spring forward
        ("2026-10-25T12:00:00+00:00", "2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00"),  # fall back
    ],
)
def test_the_weekly_window_on_daylight_saving_nights_as_the_docs_say(
    example: RelayConfig, night: str, start: str, end: str
) -> None:
    window = example.maintenance[1]
    assert window.schedule is not None
    day = datetime.fromisoformat(night)
    spans = [(s, e) for s, e in window.schedule.occurrences(day, window.tz) if s.date() == day.date()]

    assert spans == [(datetime.fromisoformat(start), datetime.fromisoformat(end))]


def test_the_silence_holds_only_db_7s_disk_alert(example: RelayConfig) -> None:
    at = "2026-11-25T09:00:00+00:00"
    disk = verdicts(example, firing(alertname="DiskFillingUp", instance="db-7:9100"), "platform", at)
    other = verdicts(example, firing(alertname="DiskFillingUp", instance="db-8:9100"), "platform", at)

    assert disk == {"default": "held by maintenance window 'silence-db-7-disk'"}
    assert other == {"default": "sent"}


# -- the commands the README and the docs name -------------------------------------------------------------


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _documented_commands() -> set[tuple[str, ...]]:
    """Every `pdrelay WORD [WORD]` the README, SECURITY.md and the docs pages show: in code spans and at
    the start of lines in code blocks.

    A group named alone (`pdrelay maintenance`) only has to exist; a second word must be one of its
    subcommands. `maintenance add|list|end` stands for three."""
    pages = [README, ROOT / "SECURITY.md", *sorted((ROOT / "docs").rglob("*.md"))]
    text = "\n".join(page.read_text(encoding="utf-8") for page in pages)
    found: set[tuple[str, ...]] = set()
    code = "\n".join(re.findall(r"^\s*```[^\n]*\n(.*?)^\s*```", text, re.S | re.M))
    starts = [m.group(1) for m in re.finditer(r"`(?:\.venv/bin/)?pdrelay ([^`]+)`", text)]
    starts += [m.group(1) for m in re.finditer(r"^\s*(?:\.venv/bin/)?pdrelay ([^\n]+)$", code, re.M)]
    for rest in starts:
        words = re.match(r"([a-z][a-z-]*)(?: ([a-z|]+))?", rest)
        if words:
            found.update(
                (words.group(1), *([second] if second else [])) for second in (words.group(2) or "").split("|")
            )
    return found


def test_every_pdrelay_command_in_the_docs_exists() -> None:
    top = _commands(build_parser())
    mentioned = _documented_commands()
    assert {("maintenance", "add"), ("config", "explain"), ("test",), ("change",), ("config", "push")} <= mentioned

    missing = []
    for command in sorted(mentioned):
        sub = top.get(command[0])
        nested = _commands(sub) if sub is not None else {}
        if sub is None or (nested and len(command) > 1 and command[1] not in nested):
            missing.append(" ".join(command))
    assert missing == []
