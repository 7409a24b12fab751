"""Test events: ``pdrelay test --route NAME`` and ``POST /v1/test/{route}``.

A probe sends a clearly labelled test trigger to every destination of a route through the whole
pipeline (ingest, the queue, the dispatcher, the Events API), then a resolve. The dispatcher
records what PagerDuty answered each destination under ``probe#<id>`` in the dedup table, and
``GET /v1/test/{id}`` (or the command) reports it with plain advice. Probes skip maintenance
windows and storm control, and a refused probe is reported, not dead-lettered.
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime
from typing import Any

from pdrelay.errors import ConcurrentUpdate
from pdrelay.models import Alert
from pdrelay.table import DedupStore, probe_key, read_modify_write

PROBE_ID_LENGTH = 12


def new_probe_id() -> str:
    return secrets.token_hex(PROBE_ID_LENGTH // 2)


def test_alert(
    route: str, probe: str, action: str, received_at: datetime, caller: str, severity: str = "info"
) -> Alert:
    """The test alert: labelled in its summary, its source and its details."""
    return Alert.model_validate(
        {
            "format": "pdrelay",
            "identity": f"test:{probe}",
            "dedup_key": f"pdrelay-test:{route}:{probe}",
            "action": action,
            "occurred_at": received_at,
            "summary": f"[TEST] pdrelay test event for route {route}: no action needed, it resolves by itself",
            "source": "pdrelay-test",
            "severity": severity,
            "component": "pdrelay",
            "class": "test",
            "custom_details": {"pdrelay_test": True, "probe": probe, "route": route, "requested_by": caller},
            "test": True,
        }
    )


def record_answer(
    store: DedupStore, probe: str, destination: str, action: str, status: int | None, error: str | None
) -> None:
    key = probe_key(probe)

    def step() -> None:
        doc, version = store.get_doc(key)
        destinations = dict(doc.get("destinations", {}))
        entry = dict(destinations.get(destination, {}))
        entry[action] = {
            "status": status,
            "error": error,
            "ok": error is None and status is not None and 200 <= status < 300,
            "advice": advice(status, error),
            "at": int(time.time()),
        }
        destinations[destination] = entry
        doc["destinations"] = destinations
        store.put_doc(key, doc, version)

    try:
        read_modify_write(step, "the probe's answers")
    except ConcurrentUpdate:
        return


def start(store: DedupStore, probe: str, route: str, destinations: dict[str, str]) -> None:
    """Note which destinations a probe expects answers from (names → masked routing keys)."""
    key = probe_key(probe)

    def step() -> None:
        doc, version = store.get_doc(key)
        doc.update(
            {
                "probe": probe,
                "route": route,
                "expected": destinations,
                "created_at": doc.get("created_at") or int(time.time()),
            }
        )
        doc.setdefault("destinations", {})
        store.put_doc(key, doc, version)

    try:
        read_modify_write(step, "the probe")
    except ConcurrentUpdate:
        return


def report(store: DedupStore, probe: str) -> dict[str, Any] | None:
    doc, version = store.get_doc(probe_key(probe))
    if not version:
        return None
    expected: dict[str, str] = doc.get("expected", {})
    answers: dict[str, Any] = doc.get("destinations", {})
    rows = []
    for name, masked in expected.items():
        entry = answers.get(name, {})
        rows.append(
            {
                "destination": name,
                "routing_key": masked,
                **{action: entry.get(action) for action in ("trigger", "resolve")},
            }
        )
    return {"probe": probe, "route": doc.get("route"), "destinations": rows}


def advice(status: int | None, error: str | None) -> str:
    """What an operator should do about an Events API answer, in plain words."""
    text = (error or "").lower()
    if status is not None and 200 <= status < 300 and error is None:
        return "ok: PagerDuty accepted the event"
    if status == 400:
        if "routing" in text or "integration" in text or "service_key" in text:
            return (
                "the routing key is not an Events API v2 integration key: check the service's integration "
                "(Service → Integrations → Events API V2 → Integration Key) and the route's routing_key"
            )
        return f"PagerDuty refused the event as invalid: {error or 'no reason given'}"
    if status in (401, 403):
        return "PagerDuty refused the request: check that the integration and its service are enabled"
    if status == 404:
        return "the Events API URL looks wrong: check PDRELAY_EVENTS_URL (https://events.pagerduty.com)"
    if status == 429:
        return "PagerDuty is throttling this routing key (too many events): pdrelay paces and retries"
    if status is not None and status >= 500:
        return "PagerDuty had a problem answering: pdrelay retries; check status.pagerduty.com if it lasts"
    if "timed out" in text:
        return "the Events API did not answer in time: pdrelay retries; check outbound network latency"
    if "connect" in text:
        return (
            "pdrelay cannot reach the Events API: check outbound network access (NAT gateway, proxy, "
            "firewall) and PDRELAY_EVENTS_URL"
        )
    return f"not delivered: {error or 'unknown error'}"
