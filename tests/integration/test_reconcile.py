"""`pdrelay reconcile` against the table in moto and the PagerDuty emulator over HTTP: each kind of
drift is reported by a dry run that changes nothing, and acted on by --fix; the sweep runs it with
--fix when a key is configured and it is due, and counts the drift per kind."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from pdrelay.cli import main
from pdrelay.delivery.events_api import EventsClient
from pdrelay.local.emulator import EMULATOR_API_KEY, EmulatorServer
from pdrelay.ops.pagerduty_api import RestClient
from pdrelay.ops.reconcile import KINDS, Options, ReconcileReport, reconcile
from pdrelay.ops.resources import ReconcileSchedule, Resources, read_secret_string, run_sweep
from pdrelay.table import DedupStore, item_key, key_hash
from pdrelay.timeutil import ManualClock
from tests.conftest import ROUTING_KEY, unique
from tests.integration.conftest import Aws
from tests.integration.test_delivery_under_faults import dispatcher, firing

# A minute that is a multiple of 5, then the seconds past it the sweep runs at.
ON_THE_FIVE = datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC).timestamp()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(ON_THE_FIVE)


def store(aws: Aws, clock: ManualClock) -> DedupStore:
    return DedupStore(aws.dynamodb, aws.table_name, clock=clock)


def run(aws: Aws, pd: EmulatorServer, clock: ManualClock, **options: Any) -> ReconcileReport:
    return reconcile(
        store(aws, clock),
        RestClient(EMULATOR_API_KEY, pd.rest_url),
        EventsClient(pd.url),
        None,
        Options(**options),
    )


def paged(aws: Aws, pd: EmulatorServer, clock: ManualClock, fingerprint: str | None = None) -> Any:
    """An alert triggered through the dispatcher, delivered, and PagerDuty's grace period over."""
    message = firing(fingerprint=fingerprint or unique(), received_at=clock.now())
    assert dispatcher(aws, pd, clock).process(message.to_json()).result == "delivered"
    # What a dispatcher with the route configured writes before paging: the route's routing keys.
    store(aws, clock).remember_route_keys("default", {key_hash(ROUTING_KEY)})
    clock.advance(600)
    return message


def repeated(message: Any, clock: ManualClock) -> Any:
    """The monitor's next notification of the same alert: the same content, received later."""
    clock.advance(60)
    return message.model_copy(update={"received_at": clock.now()})


def by_hand(pd: EmulatorServer, dedup_key: str) -> None:
    (incident,) = [i for i in pd.state.snapshot() if i["dedup_key"] == dedup_key and i["status"] != "resolved"]
    answer = requests.put(
        f"{pd.rest_url}/incidents/{incident['id']}",
        json={"incident": {"type": "incident_reference", "status": "resolved"}},
        headers={"Authorization": f"Token token={EMULATOR_API_KEY}", "From": "oncall@example.com"},
        timeout=5,
    )
    assert answer.status_code == 200


def incidents(pd: EmulatorServer, dedup_key: str) -> list[str]:
    return [i["status"] for i in pd.state.snapshot() if i["dedup_key"] == dedup_key]


def kinds(report: ReconcileReport) -> list[tuple[str, str]]:
    return [(d.kind, d.dedup_key) for d in report.drifts]


def test_nothing_differs_when_pagerduty_agrees(aws: Aws, pagerduty: EmulatorServer, clock: ManualClock) -> None:
    message = paged(aws, pagerduty, clock)
    report = run(aws, pagerduty, clock)
    assert report.drifts == []
    assert [(k.open_at_pagerduty, k.open_here) for k in report.keys] == [(1, 1)]
    assert message.dedup_key in pagerduty.state.snapshot()[0]["dedup_key"]


def test_a_resolve_by_hand_is_reported_then_marked_so_the_identical_repeat_pages_again(
    aws: Aws, pagerduty: EmulatorServer, clock: ManualClock
) -> None:
    # Given an alert paged, then resolved at PagerDuty by a person while the monitor still fires
    message = paged(aws, pagerduty, clock)
    by_hand(pagerduty, message.dedup_key)
    d = dispatcher(aws, pagerduty, clock)
    assert d.process(message.to_json()).result == "skipped"  # the relay cannot know yet
    pk = item_key(ROUTING_KEY, message.dedup_key)
    before = store(aws, clock).get(pk)

    # When reconcile runs dry, it says so and changes nothing
    dry = run(aws, pagerduty, clock)
    assert kinds(dry) == [("resolved-at-pagerduty", message.dedup_key)]
    assert dry.drifts[0].pagerduty_status == "resolved" and dry.drifts[0].table_state == "triggered"
    assert store(aws, clock).get(pk) == before
    assert d.process(message.to_json()).result == "skipped"

    # When it fixes, the next identical trigger opens a new incident
    fixed = run(aws, pagerduty, clock, fix=True)
    assert [(d.kind, d.done) for d in fixed.drifts] == [("resolved-at-pagerduty", True)]
    assert d.process(message.to_json()).result == "skipped"  # a late copy of what PagerDuty had: no page
    outcome = dispatcher(aws, pagerduty, clock).process(repeated(message, clock).to_json())
    assert (outcome.result, outcome.reason) == ("delivered", "reopen")
    assert incidents(pagerduty, message.dedup_key) == ["resolved", "triggered"]
    # ...and only one: its repeats are unchanged again, and PagerDuty agrees once more
    assert dispatcher(aws, pagerduty, clock).process(message.to_json()).result == "skipped"
    clock.advance(600)
    assert run(aws, pagerduty, clock).drifts == []


def test_a_resolve_pagerduty_never_applied_is_sent_again_and_recorded(
    aws: Aws, pagerduty: EmulatorServer, clock: ManualClock
) -> None:
    # Given an alert resolved and delivered per the table, its incident still open at PagerDuty
    message = paged(aws, pagerduty, clock)
    table = store(aws, clock)
    pk = item_key(ROUTING_KEY, message.dedup_key)
    record = table.get(pk)
    assert record is not None
    table.write(replace(record, state="resolved", last_action="resolve", version=record.version + 1), record.version)
    clock.advance(600)  # resolved a while ago: past reconcile's grace
    sent = len(pagerduty.state.events)

    dry = run(aws, pagerduty, clock)
    assert kinds(dry) == [("resolved-here", message.dedup_key)]
    assert len(pagerduty.state.events) == sent and incidents(pagerduty, message.dedup_key) == ["triggered"]

    fixed = run(aws, pagerduty, clock, fix=True)
    assert [(d.kind, d.done, d.action) for d in fixed.drifts] == [("resolved-here", True, "resolve sent")]
    assert incidents(pagerduty, message.dedup_key) == ["resolved"]
    after = table.get(pk)
    assert after is not None and after.delivered and after.lease_until == 0
    assert table.pending_resolves(0) == []
    assert run(aws, pagerduty, clock).drifts == []


def test_a_resolve_that_fails_is_left_pending_for_the_sweeper(
    aws: Aws, pagerduty: EmulatorServer, clock: ManualClock
) -> None:
    message = paged(aws, pagerduty, clock)
    table = store(aws, clock)
    record = table.get(item_key(ROUTING_KEY, message.dedup_key))
    assert record is not None
    table.write(replace(record, state="resolved", last_action="resolve", version=record.version + 1), record.version)
    clock.advance(600)  # resolved a while ago: past reconcile's grace
    pagerduty.state.set_faults([{"mode": "outage", "status": 503}])
    fixed = run(aws, pagerduty, clock, fix=True)
    assert [(d.kind, d.done) for d in fixed.drifts] == [("resolved-here", False)]
    assert [r.dedup_key for r in table.pending_resolves(0)] == [message.dedup_key]


def test_an_incident_the_relay_does_not_know_is_reported_and_resolved_only_when_asked(
    aws: Aws, pagerduty: EmulatorServer, clock: ManualClock
) -> None:
    # Given an incident opened on one of the relay's keys (its route's history) by someone else
    store(aws, clock).remember_route_keys("default", {key_hash(ROUTING_KEY)})
    EventsClient(pagerduty.url).send(
        {
            "routing_key": ROUTING_KEY,
            "event_action": "trigger",
            "dedup_key": "opened-before-pdrelay",
            "payload": {"summary": "old", "source": "elsewhere", "severity": "error"},
        }
    )
    assert kinds(run(aws, pagerduty, clock)) == [("unknown-here", "opened-before-pdrelay")]
    fixed = run(aws, pagerduty, clock, fix=True)
    assert [(d.kind, d.done) for d in fixed.drifts] == [("unknown-here", False)]
    assert incidents(pagerduty, "opened-before-pdrelay") == ["triggered"]
    asked = run(aws, pagerduty, clock, fix=True, resolve_unknown=True)
    assert [(d.kind, d.done) for d in asked.drifts] == [("unknown-here", True)]
    assert incidents(pagerduty, "opened-before-pdrelay") == ["resolved"]


def test_an_open_alert_pagerduty_has_no_incident_for_is_marked_so_its_next_trigger_goes(
    aws: Aws, pagerduty: EmulatorServer, clock: ManualClock
) -> None:
    message = paged(aws, pagerduty, clock)
    pagerduty.state.incidents.clear()  # PagerDuty lost it (or never opened it), the key still there
    assert kinds(run(aws, pagerduty, clock)) == [("missing-at-pagerduty", message.dedup_key)]
    run(aws, pagerduty, clock, fix=True)
    assert dispatcher(aws, pagerduty, clock).process(repeated(message, clock).to_json()).reason == "reopen"
    assert incidents(pagerduty, message.dedup_key) == ["triggered"]


def test_alerts_sent_moments_ago_and_keys_pagerduty_lacks_are_not_called_drift(
    aws: Aws, pagerduty: EmulatorServer, clock: ManualClock
) -> None:
    message = firing(fingerprint=unique(), received_at=clock.now())
    assert dispatcher(aws, pagerduty, clock).process(message.to_json()).result == "delivered"
    pagerduty.state.incidents.clear()
    store(aws, clock).remember_route_keys("gone", {key_hash("N0SUCHKEY0000000000000000000000X")})
    report = run(aws, pagerduty, clock)
    assert report.drifts == []
    assert report.skipped == {"sent moments ago": 1}
    assert report.not_at_pagerduty == ["#" + key_hash("N0SUCHKEY0000000000000000000000X")[:8]]


def test_the_command_prints_json_for_tools_and_exits_1_while_differences_remain(
    aws: Aws,
    pagerduty: EmulatorServer,
    clock: ManualClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
) -> None:
    message = paged(aws, pagerduty, clock)
    by_hand(pagerduty, message.dedup_key)
    state = {
        "queue_url": aws.queue_url,
        "dlq_url": aws.dlq_url,
        "table_name": aws.table_name,
        "aws_endpoint": "",
        "events_url": pagerduty.url,
        "pagerduty_api_url": pagerduty.rest_url,
        "pagerduty_api_key": EMULATOR_API_KEY,
    }
    (tmp_path / "dev.json").write_text(json.dumps(state))
    monkeypatch.setenv("PDRELAY_STATE_DIR", str(tmp_path))
    capsys.readouterr()
    assert main(["reconcile", "--json", "--grace", "0"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"mode", "routing_keys", "not_at_pagerduty", "drift", "differences", "skipped", "api_requests"}
    assert doc["mode"] == "dry-run"
    assert doc["drift"] == {**dict.fromkeys(KINDS, 0), "resolved-at-pagerduty": 1}
    (diff,) = doc["differences"]
    assert diff["dedup_key"] == message.dedup_key and diff["routing_key"] == "…0001"
    assert ROUTING_KEY not in json.dumps(doc) and EMULATOR_API_KEY not in json.dumps(doc)
    assert main(["reconcile", "--fix", "--grace", "0"]) == 0
    out = capsys.readouterr().out
    assert "done: marked: the next trigger opens a new incident" in out
    assert ROUTING_KEY not in out and EMULATOR_API_KEY not in out
    assert main(["reconcile", "--api-key-file", str(tmp_path / "missing")]) == 2
    monkeypatch.setenv("PDRELAY_PAGERDUTY_API_KEY", "wrong")
    assert main(["reconcile"]) == 2
    assert "401" in capsys.readouterr().err


# -- the sweep's scheduled reconcile -------------------------------------------------------------
def schedule(aws: Aws, pd: EmulatorServer, every: int, secret: str) -> ReconcileSchedule:
    return ReconcileSchedule(every, secret, pd.rest_url, lambda arn: read_secret_string(arn, aws_secrets()))


def aws_secrets() -> Any:
    import boto3

    return boto3.client("secretsmanager")


def metric_values(err: str, name: str) -> dict[str, float]:
    found = {}
    for line in err.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and name in doc:
            found[doc.get("Kind", "")] = doc[name]
    return found


def test_the_sweep_reconciles_with_fix_when_configured_and_due_and_counts_each_kind(
    aws: Aws, pagerduty: EmulatorServer, clock: ManualClock, capsys: Any
) -> None:
    message = paged(aws, pagerduty, clock)
    by_hand(pagerduty, message.dedup_key)
    arn = aws_secrets().create_secret(Name=unique("pd-api-key"), SecretString=EMULATOR_API_KEY)["ARN"]
    resources = Resources(aws.queue_url, aws.dlq_url, aws.table_name)
    clock.seconds = ON_THE_FIVE + 60  # 12:01: not due for every 5 minutes
    capsys.readouterr()
    result = run_sweep(resources, pagerduty.url, 900, clock=clock, reconcile=schedule(aws, pagerduty, 5, arn))
    assert not any(k.startswith("reconcile") for k in result)
    clock.seconds = ON_THE_FIVE + 240  # 12:04
    assert not any(k.startswith("reconcile") for k in run_sweep(resources, pagerduty.url, 900, clock=clock))
    assert "ReconcileDrift" not in capsys.readouterr().err

    clock.seconds = ON_THE_FIVE + 300  # 12:05: due
    result = run_sweep(resources, pagerduty.url, 900, clock=clock, reconcile=schedule(aws, pagerduty, 5, arn))
    assert result["reconcile_resolved_at_pagerduty"] == 1 and result["reconcile_fixed"] == 1
    assert metric_values(capsys.readouterr().err, "ReconcileDrift") == {
        **dict.fromkeys(KINDS, 0),
        "resolved-at-pagerduty": 1,
    }
    assert dispatcher(aws, pagerduty, clock).process(repeated(message, clock).to_json()).reason == "reopen"


@pytest.mark.parametrize(("every", "secret"), [(0, "arn"), (5, "")])
def test_the_sweep_makes_no_call_to_pagerduty_when_reconcile_is_off(
    aws: Aws, pagerduty: EmulatorServer, clock: ManualClock, every: int, secret: str
) -> None:
    read: list[str] = []
    off = ReconcileSchedule(every, secret, pagerduty.rest_url, lambda arn: read.append(arn) or "")
    result = run_sweep(
        Resources(aws.queue_url, aws.dlq_url, aws.table_name), pagerduty.url, 900, clock=clock, reconcile=off
    )
    assert not any(k.startswith("reconcile") for k in result)
    assert read == [] and pagerduty.state.answers.get(200, 0) == 0


def test_the_sweep_function_reconciles_from_its_settings(
    aws: Aws, pagerduty: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pdrelay.handlers.sweep import lambda_handler
    from pdrelay.local.runtime import FakeLambdaContext
    from pdrelay.settings import get_settings

    arn = aws_secrets().create_secret(Name=unique("pd-api-key"), SecretString=EMULATOR_API_KEY)["ARN"]
    monkeypatch.setenv("PDRELAY_RECONCILE_EVERY_MINUTES", "1")
    monkeypatch.setenv("PDRELAY_RECONCILE_API_KEY_SECRET", arn)
    monkeypatch.setenv("PDRELAY_PAGERDUTY_API_URL", pagerduty.rest_url)
    get_settings.cache_clear()
    result = lambda_handler({}, FakeLambdaContext("SweepFunction"))
    assert result["reconcile_fixed"] == 0 and "reconcile_error" not in result
    monkeypatch.setenv("PDRELAY_RECONCILE_API_KEY_SECRET", arn + "-nope")
    get_settings.cache_clear()
    assert (
        "cannot read the PagerDuty API key" in lambda_handler({}, FakeLambdaContext("SweepFunction"))["reconcile_error"]
    )


def test_a_roll_up_incident_agrees_while_its_document_is_open_and_is_resolved_once_closed(
    aws: Aws, pagerduty: EmulatorServer, clock: ManualClock
) -> None:
    from pdrelay.policy.judge import ROLLUP_PREFIX
    from pdrelay.table import rollup_key

    table = store(aws, clock)
    table.remember_route_keys("default", {key_hash(ROUTING_KEY)})
    dedup = f"{ROLLUP_PREFIX}default:{int(ON_THE_FIVE)}-abc123"
    version = table.put_doc(rollup_key("default", ROUTING_KEY), {"state": "open", "dedup_key": dedup, "members": {}}, 0)
    EventsClient(pagerduty.url).send(
        {
            "routing_key": ROUTING_KEY,
            "event_action": "trigger",
            "dedup_key": dedup,
            "payload": {"summary": "3 alerts", "source": "pdrelay", "severity": "error"},
        }
    )
    assert run(aws, pagerduty, clock).drifts == []
    table.put_doc(rollup_key("default", ROUTING_KEY), {"state": "closed", "dedup_key": dedup, "members": {}}, version)
    assert kinds(run(aws, pagerduty, clock)) == [("resolved-here", dedup)]
    assert [d.done for d in run(aws, pagerduty, clock, fix=True).drifts] == [True]
    assert incidents(pagerduty, dedup) == ["resolved"]
