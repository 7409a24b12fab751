"""Reconcile's comparison, without I/O: what PagerDuty has open beside what the table has open,
one kind of drift per difference, and what is not compared (yet)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pdrelay.delivery.decisions import Record
from pdrelay.ops.pagerduty_api import Incident
from pdrelay.ops.reconcile import Drift, Sides, candidate_items, compare
from pdrelay.policy.judge import ROLLUP_PREFIX
from pdrelay.table import item_key

KEY = "K" * 31 + "1"
OTHER = "K" * 31 + "2"  # a second integration of the same service
SERVICE = "PSERVC1"
NOW = 10_000 * 1_000_000  # µs
GRACE = 120


def incident(dedup: str, status: str = "triggered", number: int = 1) -> Incident:
    return Incident(f"Q{number}", number, status, dedup, SERVICE, "t", "", "")


def record(dedup: str, state: str = "triggered", key: str = KEY, **fields: object) -> Record:
    base = Record(
        pk=item_key(key, dedup),
        dedup_key=dedup,
        state=state,
        started_at=1,
        event_at=1,
        last_action="trigger" if state != "resolved" else "resolve",
        content_hash="h",
        delivered=True,
        version=2,
        routing_key=key,
        paged=True,
        sent_at=NOW - 600 * 1_000_000,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def diff(
    open_at_pd: list[Incident],
    table: list[Record],
    *,
    resolved: Incident | None = None,
    rollups: tuple[str, ...] = (),
    services: dict[str, str] | None = None,
    alerts_open: bool = True,
) -> tuple[list[tuple[str, str]], dict[str, int], list[Drift]]:
    services = services or {KEY: SERVICE}
    items = {r.pk: r for r in table}
    asked: list[str] = []
    sides = Sides(services, open_at_pd, items, [r for r in table if r.state != "resolved"])

    def resolved_lookup(service: str, dedup: str) -> Incident | None:
        asked.append(dedup)
        return resolved

    _keys, drifts, skipped = compare(
        sides, NOW, GRACE, resolved_lookup, lambda dedup, keys: dedup in rollups, lambda incident, dedup: alerts_open
    )
    return [(d.kind, d.dedup_key) for d in drifts], skipped, drifts


def test_open_on_both_sides_is_no_difference() -> None:
    assert diff([incident("a")], [record("a")])[:2] == ([], {})


def test_open_at_pagerduty_resolved_here_is_resolved_here() -> None:
    kinds, _, drifts = diff([incident("a")], [record("a", "resolved")])
    assert kinds == [("resolved-here", "a")]
    assert drifts[0].record is not None and drifts[0].table_state == "resolved"


def test_open_at_pagerduty_unknown_here_is_unknown_here() -> None:
    kinds, _, drifts = diff([incident("a")], [])
    assert kinds == [("unknown-here", "a")]
    assert drifts[0].key == KEY and drifts[0].table_state == "none"


def test_open_here_resolved_at_pagerduty_is_resolved_at_pagerduty_with_its_incident() -> None:
    kinds, _, drifts = diff([], [record("a")], resolved=incident("a", "resolved", 7))
    assert kinds == [("resolved-at-pagerduty", "a")]
    assert (drifts[0].incident, drifts[0].pagerduty_status) == ("Q7", "resolved")


def test_open_here_unknown_at_pagerduty_is_missing_at_pagerduty() -> None:
    kinds, _, drifts = diff([], [record("a")])
    assert kinds == [("missing-at-pagerduty", "a")]
    assert drifts[0].pagerduty_status == "none"


def test_an_incident_opened_under_another_integration_of_the_service_finds_its_item() -> None:
    services = {KEY: SERVICE, OTHER: SERVICE}
    assert diff([incident("a")], [record("a", key=OTHER)], services=services)[0] == []
    assert item_key(OTHER, "a") in candidate_items(services, [incident("a")])
    kinds, _, drifts = diff([incident("b")], [record("b", "resolved", key=OTHER)], services=services)
    assert kinds == [("resolved-here", "b")] and drifts[0].key == OTHER


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"paged": False, "hold": "window:nightly"}, "never paged (held, rolled up, waiting)"),
        ({"delivered": False}, "being sent"),
        ({"lease_until": NOW + 1}, "being sent"),
        ({"sent_at": NOW - 30 * 1_000_000}, "sent moments ago"),
        ({"pd_resolved_at": NOW - 1}, "already marked"),
    ],
)
def test_alerts_pagerduty_cannot_be_expected_to_show_yet_are_not_compared(fields: dict[str, object], why: str) -> None:
    assert diff([], [record("a", **fields)])[:2] == ([], {why: 1})


def test_a_roll_up_incident_agrees_while_open_here_and_is_resolved_here_once_closed() -> None:
    rollup = f"{ROLLUP_PREFIX}default:1-abc"
    assert diff([incident(rollup)], [], rollups=(rollup,))[0] == []
    assert diff([incident(rollup)], [])[0] == [("resolved-here", rollup)]


def test_routing_keys_pagerduty_lacks_are_left_out_and_incidents_without_a_key_ignored() -> None:
    stranger = record("a", key="Z" * 32)
    assert diff([incident("")], [stranger])[:2] == ([], {})


def test_an_alert_grouped_into_another_open_incident_agrees() -> None:
    grouped = replace(incident("first-alert"), status="triggered")
    assert diff([], [record("a")], resolved=grouped)[:2] == ([], {})


@pytest.mark.parametrize("fields", [{"delivered": False}, {"lease_until": NOW + 1}])
def test_a_resolve_on_its_way_is_not_called_drift(fields: dict[str, object]) -> None:
    assert diff([incident("a")], [record("a", "resolved", **fields)])[:2] == ([], {"resolve on the way": 1})


def test_an_incident_open_only_for_other_alerts_grouped_into_it_is_no_difference() -> None:
    # The alert that opened it resolved here and there; PagerDuty keeps the incident open for the
    # alerts grouped into it since: nothing to send, and no drift to count on every run.
    kinds, skipped, _ = diff([incident("a")], [record("a", "resolved")], alerts_open=False)
    assert (kinds, skipped) == ([], {"open for other alerts": 1})


def test_a_resolve_delivered_moments_ago_is_not_compared_yet() -> None:
    just_now = record("a", "resolved", updated_at=NOW // 1_000_000 - 5)  # seconds, as the store writes it
    kinds, skipped, _ = diff([incident("a")], [just_now])
    assert (kinds, skipped) == ([], {"resolved moments ago": 1})
    long_ago = record("a", "resolved", updated_at=NOW // 1_000_000 - GRACE - 1)
    assert diff([incident("a")], [long_ago])[0] == [("resolved-here", "a")]
