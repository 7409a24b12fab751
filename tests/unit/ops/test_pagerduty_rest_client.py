"""The REST API v2 client reconcile reads PagerDuty with: token auth, classic paging, errors that
say what went wrong and never show the key (against the emulator over HTTP on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from pdrelay.errors import RestApiError
from pdrelay.local.emulator import EMULATOR_API_KEY, EmulatorServer, service_id
from pdrelay.ops import pagerduty_api
from pdrelay.ops.pagerduty_api import RestClient

KEY_A = "A" * 31 + "1"
KEY_B = "B" * 31 + "2"


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    server = EmulatorServer(routing_keys=(KEY_A,)).start()
    yield server
    server.stop()


def trigger(server: EmulatorServer, key: str, dedup: str) -> None:
    event = {
        "routing_key": key,
        "event_action": "trigger",
        "dedup_key": dedup,
        "payload": {"summary": f"alert {dedup}", "source": "test", "severity": "error"},
    }
    assert requests.post(server.url + "/v2/enqueue", json=event, timeout=5).status_code == 202


def resolve_by_hand(server: EmulatorServer, incident: str, **headers: str) -> requests.Response:
    return requests.put(
        f"{server.rest_url}/incidents/{incident}",
        json={"incident": {"type": "incident_reference", "status": "resolved"}},
        headers={"Authorization": f"Token token={EMULATOR_API_KEY}", "From": "oncall@example.com", **headers},
        timeout=5,
    )


class CountingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []

    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.calls.append({"url": url, **kwargs})
        return super().get(url, **kwargs)


def test_a_configured_or_seen_routing_key_is_a_service_with_its_events_v2_integration(emulator: EmulatorServer) -> None:
    trigger(emulator, KEY_B, "x")
    found = RestClient(EMULATOR_API_KEY, emulator.rest_url).services_by_integration_key()
    assert found == {KEY_A: service_id(KEY_A), KEY_B: service_id(KEY_B)}


def test_every_page_is_read_while_pagerduty_says_more(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pagerduty_api, "PAGE_LIMIT", 2)
    for n in range(5):
        trigger(emulator, KEY_A, f"k{n}")
    session = CountingSession()
    client = RestClient(EMULATOR_API_KEY, emulator.rest_url, session=session)
    incidents = client.incidents([service_id(KEY_A)])
    assert [i.incident_key for i in incidents] == ["k0", "k1", "k2", "k3", "k4"]
    assert [dict(c["params"])["offset"] for c in session.calls] == ["0", "2", "4"]
    assert client.requests == 3
    first = session.calls[0]
    assert first["headers"]["Accept"] == "application/vnd.pagerduty+json;version=2"
    assert ("date_range", "all") in first["params"]
    assert ("statuses[]", "triggered") in first["params"] and ("statuses[]", "acknowledged") in first["params"]


def test_statuses_and_incident_key_filter_the_list(emulator: EmulatorServer) -> None:
    trigger(emulator, KEY_A, "gone")
    trigger(emulator, KEY_A, "firing")
    gone = emulator.state.snapshot()[0]["id"]
    assert resolve_by_hand(emulator, gone).json()["incident"]["status"] == "resolved"
    client = RestClient(EMULATOR_API_KEY, emulator.rest_url)
    assert [i.incident_key for i in client.incidents([service_id(KEY_A)])] == ["firing"]
    resolved = client.incidents([service_id(KEY_A)], ("resolved",), incident_key="gone")
    assert [(i.id, i.status, i.service_id) for i in resolved] == [(gone, "resolved", service_id(KEY_A))]
    assert client.incidents([service_id(KEY_A)], ("resolved",), incident_key="firing") == []


@pytest.mark.parametrize("key", ["", "wrong-key"])
def test_a_missing_or_wrong_key_is_a_401_error_that_does_not_show_the_key(emulator: EmulatorServer, key: str) -> None:
    with pytest.raises(RestApiError) as caught:
        RestClient(key or "x", emulator.rest_url).services_by_integration_key()
    assert caught.value.status == 401
    assert "Unauthorized" in str(caught.value)
    assert "wrong-key" not in str(caught.value)
    answer = requests.get(emulator.rest_url + "/services", timeout=5)  # no Authorization header at all
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == 2006


def test_a_list_longer_than_pagerduty_serves_is_an_error_not_a_silent_cut(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pagerduty_api, "PAGE_LIMIT", 1)
    monkeypatch.setattr(pagerduty_api, "MAX_RECORDS", 2)
    for n in range(3):
        trigger(emulator, KEY_A, f"k{n}")
    with pytest.raises(RestApiError, match="more than 2 records"):
        RestClient(EMULATOR_API_KEY, emulator.rest_url).incidents([service_id(KEY_A)])


def test_the_emulator_refuses_paging_past_ten_thousand_records_as_pagerduty_does(emulator: EmulatorServer) -> None:
    answer = requests.get(
        emulator.rest_url + "/incidents",
        params={"offset": "9950", "limit": "100"},
        headers={"Authorization": f"Token token={EMULATOR_API_KEY}"},
        timeout=5,
    )
    assert answer.status_code == 400
    paged = requests.get(
        emulator.rest_url + "/services",
        params={"limit": "500", "total": "true"},
        headers={"Authorization": f"Token token={EMULATOR_API_KEY}"},
        timeout=5,
    ).json()
    assert (paged["limit"], paged["offset"], paged["more"], paged["total"]) == (100, 0, False, 1)


def test_an_unreachable_api_is_an_error_with_status_zero() -> None:
    with pytest.raises(RestApiError) as caught:
        RestClient(EMULATOR_API_KEY, "http://127.0.0.1:9", timeout=1).services_by_integration_key()
    assert caught.value.status == 0


def test_a_resolve_by_hand_needs_the_key_and_a_from_header(emulator: EmulatorServer) -> None:
    trigger(emulator, KEY_A, "k")
    incident = emulator.state.snapshot()[0]["id"]
    assert resolve_by_hand(emulator, incident, Authorization="Token token=nope").status_code == 401
    assert resolve_by_hand(emulator, incident, From="").status_code == 400
    assert resolve_by_hand(emulator, "Q999999").status_code == 404
    assert emulator.state.snapshot()[0]["status"] == "triggered"
    assert resolve_by_hand(emulator, incident).status_code == 200
    assert emulator.state.snapshot()[0]["status"] == "resolved"


def test_an_incidents_alerts_say_whether_the_alert_with_a_key_is_still_open(emulator: EmulatorServer) -> None:
    trigger(emulator, KEY_A, "disk-full")
    incident = emulator.state.snapshot()[0]["id"]
    client = RestClient(EMULATOR_API_KEY, emulator.rest_url)
    assert client.alert_statuses(incident, "disk-full") == ["triggered"]
    assert client.alert_statuses(incident, "another-key") == []
    assert resolve_by_hand(emulator, incident).status_code == 200
    assert client.alert_statuses(incident, "disk-full") == ["resolved"]
    with pytest.raises(RestApiError) as caught:
        client.alert_statuses("Q999999", "disk-full")
    assert caught.value.status == 404
