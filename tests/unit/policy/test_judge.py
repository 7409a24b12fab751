"""The judge's own event: the roll-up incident storm control opens lists its open alerts and says
how many it does not list."""

from __future__ import annotations

from pdrelay.policy.judge import rollup_event

KEY_A = "AAAAR0UT1NGKEY000000000000000001"


def test_the_roll_up_event_lists_its_open_alerts_and_says_how_many_are_not_listed() -> None:
    members = {f"alertmanager:{i}": f"node {i} down" for i in range(60)}
    doc = {"dedup_key": "pdrelay-rollup:ops:1", "route": "ops", "members": members, "total": 75}
    built = rollup_event(doc, "trigger", KEY_A)
    details = built["payload"]["custom_details"]
    assert (built["event_action"], built["dedup_key"], built["routing_key"]) == (
        "trigger",
        "pdrelay-rollup:ops:1",
        KEY_A,
    )
    assert (details["open_alerts"], details["alerts_rolled_up"], details["not_listed"]) == (60, 75, 10)
    assert len(details["alerts"]) == 50
