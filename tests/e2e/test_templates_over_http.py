"""Event templates through the local stack over HTTP: a monitor posts, the route's template writes
the summary, and the PagerDuty emulator opens the incident under it."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from pdrelay.local.stack import LocalStack, StackOptions
from tests.conftest import ROOT, TOKEN, load_event, unique
from tests.e2e.conftest import Relay

pytestmark = pytest.mark.e2e

SHOP_KEY = "SH0PR0UT1NGKEY00000000000000te01"

CONFIG = {
    "default_route": "shop",
    "callers": [{"name": "tests", "token": TOKEN}],
    "routes": {
        "shop": {
            "routing_key": SHOP_KEY,
            "templates": {
                "summary": "[{{ labels.cluster | upper }}] {{ labels.alertname }} on {{ labels.instance }}",
                "source": "{{ labels.instance.split(':')[0] }}",
                "custom_details": {"runbook": "{{ annotations.runbook_url }}"},
            },
        }
    },
}


@pytest.fixture(scope="module")
def templated_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    path = tmp_path_factory.mktemp("templates") / "pdrelay.json"
    path.write_text(json.dumps(CONFIG))
    options = StackOptions(template=ROOT / "template.yaml", port=0, emulator_port=0, config=str(path))
    with LocalStack(options) as running:
        yield running


def test_a_templated_summary_reaches_pagerduty(templated_stack: LocalStack) -> None:
    relay = Relay(templated_stack)
    doc: dict[str, Any] = copy.deepcopy(load_event("formats/alertmanager/firing.json"))
    doc["alerts"][0]["fingerprint"] = fingerprint = unique("fp")

    answer = relay.post("/v1/alerts/alertmanager", doc)

    assert answer.status_code == 202 and answer.json()["accepted"] == 1
    dedup_key = f"alertmanager:{fingerprint}"
    relay.wait_until(lambda: len(relay.incidents(dedup_key)) == 1)
    (incident,) = relay.incidents(dedup_key)
    assert incident["summary"] == "[PROD-EU] HighErrorRate on checkout-7f9c:8080"
    assert incident["source"] == "checkout-7f9c"
    (event,) = relay.events_for(dedup_key)
    assert event["payload"]["custom_details"]["runbook"] == "https://runbooks.example.com/checkout/errors"
