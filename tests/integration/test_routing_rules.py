"""Routing rules, maintenance windows, storm control, test probes and change events, through the real
ingest and dispatch handlers against moto (in process) and the PagerDuty emulator over HTTP."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pdrelay.delivery.dispatcher import get_dispatcher
from pdrelay.local.apigw import api_gateway_event
from pdrelay.local.emulator import EmulatorServer
from pdrelay.models import ChangeMessage, parse_message
from pdrelay.ops.status import queue_status
from pdrelay.ops.sweeper import release_held
from pdrelay.policy import judge
from pdrelay.settings import get_settings
from pdrelay.table import DedupStore
from tests.conftest import TOKEN, load_event, unique
from tests.integration.conftest import Aws, ConfigWriter, Handler

TEAM_KEY = "TEAMR0UT1NGKEY000000000000000001"
PLATFORM_KEY = "PLATF0RMR0UT1NGKEY00000000000002"
OPS_KEY = "0PSR0UT1NGKEY0000000000000000003"


def config_doc(**route: Any) -> dict[str, Any]:
    shop = {
        "destinations": {"team": {"routing_key": TEAM_KEY}, "platform": {"routing_key": PLATFORM_KEY}},
        "default_destinations": ["team"],
        "rules": [
            {"name": "quiet-info", "when": {"severity": "info"}, "page": False},
            {
                "name": "critical-to-both",
                "when": {"labels.severity": "critical"},
                "send_to": ["team", "platform"],
                "severity": {"critical": "critical", "error": "critical"},
                "custom_details": {"escalation": "team then platform"},
            },
        ],
    }
    shop.update(route)
    return {
        "default_route": "shop",
        "callers": [{"name": "tests", "token": TOKEN}],
        "routes": {"shop": shop, "ops": {"routing_key": OPS_KEY}},
    }


@pytest.fixture
def configure(write_config: ConfigWriter) -> ConfigWriter:
    write_config(config_doc())
    return write_config


def post(ingest: Handler, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    answer = ingest(
        api_gateway_event(
            "POST",
            path,
            {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"},
            json.dumps(body).encode(),
        )
    )
    return answer["statusCode"], json.loads(answer["body"])


def alertmanager(
    status: str = "firing", severity: str = "critical", fingerprint: str | None = None, summary: str | None = None
) -> dict[str, Any]:
    doc = copy.deepcopy(load_event("formats/alertmanager/firing.json"))
    alert = doc["alerts"][0]
    alert["fingerprint"] = fingerprint or unique("fp")
    alert["labels"]["severity"] = severity
    alert["status"] = doc["status"] = status
    if summary:
        alert["annotations"]["summary"] = summary
    if status == "resolved":
        alert["endsAt"] = "2026-11-24T09:30:00Z"
    return doc


def dispatch_all(aws: Aws) -> list[Any]:
    """Every queued message through the dispatcher, as Lambda would (repeating until the queue is empty)."""
    outcomes = []
    for _round in range(5):
        batch = aws.drain()
        if not batch:
            break
        d = get_dispatcher()
        outcomes.extend(d.process(m["Body"], receipt_handle="", receive_count=1) for m in batch)
    return outcomes


def incidents(pd: EmulatorServer, key: str) -> list[dict[str, Any]]:
    return pd.state.snapshot(key)


def test_a_critical_alert_opens_one_incident_per_destination_and_its_resolve_closes_each(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    fp = unique("fp")
    status, body = post(ingest, "/v1/alerts/alertmanager", alertmanager(fingerprint=fp))
    assert status == 202
    assert sorted((a["destination"], a["rule"]) for a in body["alerts"]) == [
        ("platform", "critical-to-both"),
        ("team", "critical-to-both"),
    ]
    assert {o.result for o in dispatch_all(aws)} == {"delivered"}
    (team,), (platform,) = incidents(pagerduty, TEAM_KEY), incidents(pagerduty, PLATFORM_KEY)
    assert team["severity"] == platform["severity"] == "critical"
    assert team["dedup_key"] == platform["dedup_key"]
    sent = [e for e in pagerduty.state.events if e["event_action"] == "trigger"]
    assert all(e["payload"]["custom_details"]["escalation"] == "team then platform" for e in sent)

    # The resolve reaches both incidents even though the rule matched on the firing alert's labels.
    status, body = post(ingest, "/v1/alerts/alertmanager", alertmanager("resolved", fingerprint=fp))
    assert status == 202 and len(body["alerts"]) == 2
    dispatch_all(aws)
    assert [i["status"] for i in incidents(pagerduty, TEAM_KEY) + incidents(pagerduty, PLATFORM_KEY)] == [
        "resolved",
        "resolved",
    ]


def test_an_alert_no_rule_matches_goes_to_the_default_destination_only(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    fp = unique("fp")
    _, body = post(ingest, "/v1/alerts/alertmanager", alertmanager(severity="warning", fingerprint=fp))
    assert [(a["destination"], a["rule"]) for a in body["alerts"]] == [("team", None)]
    dispatch_all(aws)
    assert len(incidents(pagerduty, TEAM_KEY)) == 1 and incidents(pagerduty, PLATFORM_KEY) == []
    # Its resolve still goes to every destination; the one that never opened an incident costs no call.
    _, body = post(ingest, "/v1/alerts/alertmanager", alertmanager("resolved", severity="warning", fingerprint=fp))
    outcomes = dispatch_all(aws)
    assert sorted(o.reason for o in outcomes) == ["resolve", "unknown"]
    assert [e["event_action"] for e in pagerduty.state.events] == ["trigger", "resolve"]


def test_a_page_false_rule_answers_with_a_note_and_queues_nothing(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    doc = alertmanager(severity="info")
    status, body = post(ingest, "/v1/alerts/alertmanager", doc)
    assert status == 202 and body["accepted"] == 0
    assert any("quiet-info" in note and "page: false" in note for note in body["notes"])
    assert aws.drain() == []


def test_a_v2_event_naming_a_route_follows_its_rules_and_one_naming_a_key_goes_to_that_key(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    event = {
        "routing_key": "shop",
        "event_action": "trigger",
        "dedup_key": unique("k"),
        "payload": {
            "summary": "disk full",
            "source": "db-1",
            "severity": "critical",
            "custom_details": {"labels": {"severity": "critical"}},
        },
    }
    status, body = post(ingest, "/v2/enqueue", event)
    assert status == 202 and body["dedup_key"] == event["dedup_key"]
    assert sorted(parse_message(m["Body"]).destination or "" for m in aws.drain()) == ["platform", "team"]
    post(ingest, "/v2/enqueue", {**event, "routing_key": PLATFORM_KEY})
    (only,) = [parse_message(m["Body"]) for m in aws.drain()]
    assert (only.routing_key, only.destination) == (PLATFORM_KEY, "platform")


def test_credentials_are_scrubbed_before_the_alert_is_queued(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    doc = alertmanager(severity="warning")
    doc["alerts"][0]["annotations"]["description"] = "login with postgres://app:Hunter2Secret@db.internal/shop"
    doc["alerts"][0]["annotations"]["api_token"] = "tok-live-00000000000000000000abcd"
    post(ingest, "/v1/alerts/alertmanager", doc)
    (queued,) = aws.drain()
    assert "Hunter2Secret" not in queued["Body"] and "tok-live-0000" not in queued["Body"]
    assert "db.internal" in queued["Body"]


# -- maintenance windows --------------------------------------------------------------------------------
def window_doc(name: str, minutes_ago: int = 5, minutes_ahead: int = 60, **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "name": name,
        "start": (now - timedelta(minutes=minutes_ago)).isoformat(),
        "end": (now + timedelta(minutes=minutes_ahead)).isoformat(),
        **extra,
    }


def test_a_window_holds_triggers_lets_resolves_pass_and_sends_what_still_fires_when_it_ends(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    store = DedupStore(aws.dynamodb, aws.table_name)
    judge.save_windows(store, lambda ws: [*ws, window_doc("db-patching", routes=["ops"])])
    get_dispatcher()._policy = None  # no cached windows
    still, gone = unique("fp"), unique("fp")
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager(fingerprint=still))
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager(fingerprint=gone))
    assert {o.result for o in dispatch_all(aws)} == {"held"}
    assert pagerduty.state.events == []
    status = queue_status(aws.sqs, aws.queue_url, aws.dlq_url, store)
    assert [(r.route, r.held, r.open) for r in status.routes] == [("ops", 2, 0)]

    # One recovers during the window: recorded, nothing sent (PagerDuty never heard of it).
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager("resolved", fingerprint=gone))
    (outcome,) = dispatch_all(aws)
    assert (outcome.result, outcome.reason) == ("skipped", "never paged: resolve recorded only")
    # A repeat of the other during the window is held again.
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager(fingerprint=still, summary="still broken"))
    assert [o.result for o in dispatch_all(aws)] == ["held"]

    # While the window runs the sweep keeps it; once it ends, what still fires goes out, once.
    sweep_policy = judge.Policy(store, lambda: None)
    assert release_held(store, sweep_policy, aws.sqs, aws.queue_url).as_dict() == {
        "held": 1,
        "released": 0,
        "dropped": 0,
        "still_held": 1,
    }
    judge.save_windows(store, lambda ws: [])
    sweep_policy = judge.Policy(store, lambda: None)
    assert release_held(store, sweep_policy, aws.sqs, aws.queue_url).released == 1
    get_dispatcher()._policy = None
    (released,) = aws.drain()
    # The hold limit counts from the release, not from when the monitor sent it hours ago.
    assert int(released["MessageAttributes"]["redriven_at"]["StringValue"]) >= datetime.now(UTC).timestamp() - 60
    outcome = get_dispatcher().process(released["Body"], message_attributes=released["MessageAttributes"])
    assert (outcome.result, outcome.reason) == ("delivered", "release")
    (incident,) = incidents(pagerduty, OPS_KEY)
    assert (incident["status"], incident["summary"]) == ("triggered", "still broken")
    assert release_held(store, sweep_policy, aws.sqs, aws.queue_url).held == 0
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager("resolved", fingerprint=still))
    dispatch_all(aws)
    assert incidents(pagerduty, OPS_KEY)[0]["status"] == "resolved"


def test_a_window_from_the_configuration_with_a_matcher_is_a_silence_and_drop_held_lets_go(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    doc = config_doc()
    doc["maintenance"] = [window_doc("silence-checkout", when={"labels.job": "checkout"}, send_held_at_end=False)]
    configure(doc)
    fp = unique("fp")
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager(fingerprint=fp))
    other = alertmanager()
    other["alerts"][0]["labels"]["job"] = "payments"
    post(ingest, "/v1/alerts/alertmanager?route=ops", other)
    assert sorted(o.result for o in dispatch_all(aws)) == ["delivered", "held"]
    doc["maintenance"] = [
        window_doc(
            "silence-checkout",
            minutes_ago=120,
            minutes_ahead=-60,
            when={"labels.job": "checkout"},
            send_held_at_end=False,
        )
    ]
    configure(doc)
    from pdrelay.delivery.dispatcher import config_reader

    store = DedupStore(aws.dynamodb, aws.table_name)
    result = release_held(store, judge.Policy(store, config_reader(get_settings())), aws.sqs, aws.queue_url)
    assert (result.released, result.dropped) == (0, 1)
    assert aws.drain() == [] and len(incidents(pagerduty, OPS_KEY)) == 1


# -- storm control ------------------------------------------------------------------------------------------
def test_updates_within_min_resend_seconds_are_suppressed_and_counted(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    doc = config_doc()
    doc["routes"]["ops"]["storm"] = {"min_resend_seconds": 300}
    configure(doc)
    fp = unique("fp")
    for summary in ("queue depth 100", "queue depth 200", "queue depth 300"):
        post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager(fingerprint=fp, summary=summary))
        dispatch_all(aws)
    assert [e["payload"]["summary"] for e in pagerduty.state.events] == ["queue depth 100"]
    store = DedupStore(aws.dynamodb, aws.table_name)
    (row,) = queue_status(aws.sqs, aws.queue_url, aws.dlq_url, store).routes
    assert (row.open, row.suppressed) == (1, 2)
    # The resolve is never held back.
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager("resolved", fingerprint=fp))
    dispatch_all(aws)
    assert incidents(pagerduty, OPS_KEY)[0]["status"] == "resolved"


def test_above_the_per_minute_cap_new_alerts_roll_up_into_one_incident_resolved_when_they_are(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    doc = config_doc()
    doc["routes"]["ops"]["storm"] = {"max_new_per_minute": 2, "rollup_update_seconds": 0}
    configure(doc)
    fingerprints = [unique("fp") for _ in range(5)]
    for i, fp in enumerate(fingerprints):
        post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager(fingerprint=fp, summary=f"node {i} down"))
        dispatch_all(aws)
    opened = incidents(pagerduty, OPS_KEY)
    assert len(opened) == 3  # two alerts of their own, one roll-up
    rollup = next(i for i in opened if i["dedup_key"].startswith("pdrelay-rollup:ops:"))
    assert rollup["summary"] == "Alert storm on route ops: new alerts above the per-minute cap are rolled up here"
    last = [e for e in pagerduty.state.events if e["dedup_key"] == rollup["dedup_key"]][-1]
    assert sorted(last["payload"]["custom_details"]["alerts"].values()) == ["node 2 down", "node 3 down", "node 4 down"]
    store = DedupStore(aws.dynamodb, aws.table_name)
    (row,) = queue_status(aws.sqs, aws.queue_url, aws.dlq_url, store).routes
    assert (row.open, row.rolled_up) == (2, 3)

    for fp in fingerprints[2:4]:
        post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager("resolved", fingerprint=fp))
        dispatch_all(aws)
    assert (
        next(i for i in incidents(pagerduty, OPS_KEY) if i["dedup_key"] == rollup["dedup_key"])["status"] == "triggered"
    )
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager("resolved", fingerprint=fingerprints[4]))
    dispatch_all(aws)
    statuses = {i["dedup_key"]: i["status"] for i in incidents(pagerduty, OPS_KEY)}
    assert statuses[rollup["dedup_key"]] == "resolved"
    assert sorted(statuses.values()) == ["resolved", "triggered", "triggered"]
    # No event was ever sent for the rolled-up alerts' own dedup keys.
    own = {e["dedup_key"] for e in pagerduty.state.events} - {rollup["dedup_key"]}
    assert len(own) == 2


# -- test probes and change events ------------------------------------------------------------------------
def test_a_test_probe_reaches_every_destination_and_reports_each_answer(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    status, started = post(ingest, "/v1/test/shop", {})
    assert status == 202 and sorted(d["destination"] for d in started["destinations"]) == ["platform", "team"]
    assert all(d["routing_key"].startswith("…") for d in started["destinations"])
    pagerduty.state.set_faults([{"mode": "status", "status": 400, "count": 1}])
    outcomes = dispatch_all(aws)
    assert sorted(o.result for o in outcomes) == ["delivered", "rejected"]
    assert aws.drain(aws.dlq_url) == []  # a refused test is reported, not dead-lettered
    answer = ingest(api_gateway_event("GET", f"/v1/test/{started['probe']}", {"authorization": f"Bearer {TOKEN}"}, b""))
    report = json.loads(answer["body"])
    by_destination = {row["destination"]: row["trigger"] for row in report["destinations"]}
    assert sorted(a["ok"] for a in by_destination.values()) == [False, True]
    refused = next(a for a in by_destination.values() if not a["ok"])
    assert refused["status"] == 400 and "refused the event as invalid" in refused["advice"]
    assert all(e["payload"]["summary"].startswith("[TEST] ") for e in pagerduty.state.events)

    status, _ = post(ingest, "/v1/test/shop", {"action": "resolve", "probe": started["probe"]})
    assert status == 202
    dispatch_all(aws)
    report = json.loads(
        ingest(api_gateway_event("GET", f"/v1/test/{started['probe']}", {"authorization": f"Bearer {TOKEN}"}, b""))[
            "body"
        ]
    )
    assert all(row["resolve"] and row["resolve"]["status"] == 202 for row in report["destinations"])


def test_a_test_probe_is_not_held_by_maintenance(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    doc = config_doc()
    doc["maintenance"] = [window_doc("everything")]
    configure(doc)
    post(ingest, "/v1/test/ops", {})
    assert [o.result for o in dispatch_all(aws)] == ["delivered"]


def test_a_bad_test_request_is_a_400_with_reasons(aws: Aws, ingest: Handler, configure: Any) -> None:
    status, body = post(ingest, "/v1/test/shop", {"action": "explode"})
    assert status == 400 and "action: 'trigger' or 'resolve'" in body["errors"]
    status, body = post(ingest, "/v1/test/nowhere", {})
    assert status == 400 and body["message"] == "unknown route 'nowhere'"


def test_a_change_event_to_a_route_goes_to_each_destination(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    event = {
        "routing_key": "shop",
        "payload": {
            "summary": "Deployed shop v2.4.1",
            "source": "ci",
            "custom_details": {"commit": "abc123", "deploy_token": "s3cr3t-value"},
        },
        "links": [{"href": "https://ci.example.com/build/42", "text": "Build 42"}],
    }
    status, body = post(ingest, "/v2/change/enqueue", event)
    assert (status, body) == (202, {"status": "success", "message": "Change event processed"})
    queued = [parse_message(m["Body"]) for m in aws.drain()]
    assert all(isinstance(m, ChangeMessage) for m in queued) and len(queued) == 2
    for message in queued:
        get_dispatcher().process(message.to_json())
    received = json.loads(json.dumps(pagerduty.state.change_events))
    assert sorted(e["routing_key"] for e in received) == sorted(["…" + TEAM_KEY[-4:], "…" + PLATFORM_KEY[-4:]])
    assert all(e["payload"]["custom_details"]["deploy_token"] == "[redacted by pdrelay]" for e in received)
    assert pagerduty.state.incidents == []

    status, body = post(ingest, "/v2/change/enqueue", {"routing_key": "shop", "payload": {}})
    assert status == 400 and body["status"] == "invalid event"
    status, body = post(ingest, "/v2/change/enqueue", {**event, "event_action": "trigger"})
    assert status == 400 and "event_action" in body["errors"][0]


def test_no_routing_key_token_or_planted_credential_leaks_from_the_new_paths(
    aws: Aws,
    pagerduty: EmulatorServer,
    ingest: Handler,
    configure: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    doc = config_doc()
    doc["routes"]["ops"]["storm"] = {"max_new_per_minute": 1, "rollup_update_seconds": 0}
    doc["maintenance"] = [window_doc("held-shop", routes=["shop"], when={"labels.job": "held"})]
    configure(doc)
    planted = "AKIAPLANTED00EXAMPLE"  # the shape of an AWS access key id
    for route, job in (("shop", "checkout"), ("shop", "held"), ("ops", "a"), ("ops", "b")):
        body = alertmanager()
        body["alerts"][0]["labels"]["job"] = job
        body["alerts"][0]["annotations"]["description"] = f"key {planted} leaked; Authorization: Bearer {TOKEN}"
        assert post(ingest, f"/v1/alerts/alertmanager?route={route}", body)[0] == 202
    post(ingest, "/v2/change/enqueue", {"routing_key": "shop", "payload": {"summary": f"deploy {planted}"}})
    post(ingest, "/v1/test/shop", {})
    outcomes = dispatch_all(aws)
    assert {"delivered", "held", "rolled-up"} <= {o.result for o in outcomes}
    output = capsys.readouterr()
    captured = output.out + output.err + "\n".join(json.dumps(r.__dict__, default=str) for r in caplog.records)
    assert '"AlertsHeld"' in captured and '"EventsSent"' in captured
    for secret in (TEAM_KEY, PLATFORM_KEY, OPS_KEY, TOKEN, planted):
        assert secret not in captured
    sent = json.dumps([*pagerduty.state.events, *pagerduty.state.change_events])
    assert planted not in sent and TOKEN not in sent


def test_config_push_validates_then_stores_in_ssm_or_secrets_manager(aws: Aws, tmp_path: Path) -> None:
    import boto3

    from pdrelay.config import load_config
    from pdrelay.errors import ConfigError
    from pdrelay.ops import configtool
    from pdrelay.settings import Settings

    text = "# ours\n" + json.dumps(config_doc())
    ssm, secrets = boto3.client("ssm"), boto3.client("secretsmanager")
    assert "SecureString" in configtool.push(text, "ssm:/pdrelay/config", ssm=ssm)
    assert ssm.get_parameter(Name="/pdrelay/config", WithDecryption=True)["Parameter"]["Value"] == text
    assert configtool.push(text, "secret:pdrelay/config", secretsmanager=secrets) == "created secret pdrelay/config"
    assert "new version" in configtool.push(text, "secret:pdrelay/config", secretsmanager=secrets)
    # What the functions read back is the same configuration.
    loaded = load_config(Settings.from_env({"PDRELAY_CONFIG": "ssm:/pdrelay/config"}))
    assert loaded.routes["shop"].targets == {"team": TEAM_KEY, "platform": PLATFORM_KEY}
    with pytest.raises(ConfigError) as refused:
        configtool.push(
            text.replace('"default_route": "shop"', '"default_route": "nope"'), "ssm:/pdrelay/config", ssm=ssm
        )
    assert "default_route: no route named 'nope'" in str(refused.value.problems)
    assert ssm.get_parameter(Name="/pdrelay/config", WithDecryption=True)["Parameter"]["Value"] == text
    big = text + "\n#" + "x" * 9000
    with pytest.raises(ConfigError, match="SSM parameters hold at most 8192"):
        configtool.push(big, "ssm:/pdrelay/config", ssm=ssm)


def test_an_incident_open_before_a_window_still_resolves_when_an_update_was_held_in_it(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    fp = unique("fp")
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager(fingerprint=fp, summary="disk 91%"))
    assert [o.result for o in dispatch_all(aws)] == ["delivered"]
    doc = config_doc()
    doc["maintenance"] = [window_doc("late-window", routes=["ops"])]
    configure(doc)
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager(fingerprint=fp, summary="disk 95%"))
    assert [o.result for o in dispatch_all(aws)] == ["held"]
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager("resolved", fingerprint=fp))
    assert [o.result for o in dispatch_all(aws)] == ["delivered"]
    assert incidents(pagerduty, OPS_KEY)[0]["status"] == "resolved"
