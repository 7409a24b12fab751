"""`pdrelay test` says, per destination, the dedup key the test incident got (to find it in PagerDuty),
in its lines and in --json, whose stdout is then one JSON document. The relay is a transport mounted
on the command's session: no network."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from pdrelay.cli import build_parser
from pdrelay.cli.relay import cmd_test

URL = "http://relay.test"
PROBE = "9f5a077a8d66"
OK = {"status": 202, "ok": True, "error": None, "advice": "ok: PagerDuty accepted the event", "at": 1}


class FakeRelay(BaseAdapter):
    """``POST /v1/test/{route}`` and ``GET /v1/test/{probe}`` answered from memory."""

    def __init__(self, started: dict[str, Any], report: dict[str, Any], report_status: int = 200) -> None:
        super().__init__()
        self.started, self.report, self.report_status = started, report, report_status
        self.seen: list[tuple[str, str]] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.seen.append((str(request.method), str(request.path_url)))
        answer = requests.Response()
        answer.status_code, body = (self.report_status, self.report) if request.method == "GET" else (202, self.started)
        answer._content = json.dumps(body).encode()
        answer.headers["Content-Type"] = "application/json"
        answer.request, answer.url = request, str(request.url)
        return answer

    def close(self) -> None:
        pass


def relay(started: dict[str, Any]) -> tuple[requests.Session, FakeRelay]:
    report = {
        "probe": PROBE,
        "route": "shop",
        "destinations": [
            {"destination": d["destination"], "routing_key": d["routing_key"], "trigger": OK, "resolve": OK}
            for d in started["destinations"]
        ],
    }
    fake = FakeRelay(started, report)
    session = requests.Session()
    session.mount(URL, fake)
    return session, fake


def started(**keys: str) -> dict[str, Any]:
    """The relay's answer to the trigger; ``keys``: destination → its dedup key (none: an older relay)."""
    names = keys or {"team": "", "platform": ""}
    return {
        "status": "accepted",
        "probe": PROBE,
        "route": "shop",
        "action": "trigger",
        "dedup_key": f"pdrelay-test:shop:{PROBE}",
        "destinations": [
            {"destination": name, "routing_key": f"…000{i}", **({"dedup_key": key} if key else {})}
            for i, (name, key) in enumerate(names.items(), 1)
        ],
        "results": f"/v1/test/{PROBE}",
    }


def run(session: requests.Session, *options: str) -> int:
    args = build_parser().parse_args(["test", "--route", "shop", "--url", URL, "--token", "t0ken", *options])
    return cmd_test(args, session)


def test_each_destinations_line_names_the_dedup_key_its_test_incident_got(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a relay whose destinations hold the test incident under keys of their own
    session, fake = relay(started(team="pdrelay-test:shop:team-key", platform="pdrelay-test:shop:platform-key"))

    # When the test runs to its resolve
    code = run(session)

    # Then each destination's trigger line carries its own dedup key
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    (team,) = [line for line in lines if line.split()[:1] == ["team"] and " trigger " in line]
    (platform,) = [line for line in lines if line.split()[:1] == ["platform"] and " trigger " in line]
    assert team.endswith("HTTP 202: ok: PagerDuty accepted the event (dedup key pdrelay-test:shop:team-key)")
    assert platform.endswith("(dedup key pdrelay-test:shop:platform-key)")
    assert out.count("dedup key") == 2  # once per destination, on its trigger line
    assert ("POST", "/v1/test/shop") in fake.seen and ("GET", f"/v1/test/{PROBE}") in fake.seen


def test_json_gives_each_destination_its_dedup_key_and_nothing_else_on_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    session, _ = relay(started(team="pdrelay-test:shop:team-key", platform="pdrelay-test:shop:platform-key"))

    code = run(session, "--json")

    out, err = capsys.readouterr()
    report = json.loads(out)  # stdout is one JSON document
    assert code == 0
    assert {d["destination"]: d["dedup_key"] for d in report["destinations"]} == {
        "team": "pdrelay-test:shop:team-key",
        "platform": "pdrelay-test:shop:platform-key",
    }
    assert report["destinations"][0]["trigger"] == OK
    assert f"test {PROBE}: trigger sent" in err and "all destinations accepted the test" in err


def test_a_relay_that_answers_one_dedup_key_for_all_has_it_printed_for_each(
    capsys: pytest.CaptureFixture[str],
) -> None:
    session, _ = relay(started())

    assert run(session, "--no-resolve") == 0

    out = capsys.readouterr().out
    assert out.count(f"(dedup key pdrelay-test:shop:{PROBE})") == 2


def test_when_the_report_cannot_be_read_each_destination_is_still_named_with_its_dedup_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a relay that queues the test trigger but then answers its report with a 500
    answer = started(team="pdrelay-test:shop:team-key", platform="pdrelay-test:shop:platform-key")
    fake = FakeRelay(answer, {"status": "error", "message": "internal error"}, report_status=500)
    session = requests.Session()
    session.mount(URL, fake)

    # When the test runs (a short wait: the report never comes)
    monkeypatch.setattr("pdrelay.cli.relay.time.sleep", lambda seconds: None)
    code = run(session, "--no-resolve", "--timeout", "0.1")

    # Then the command fails, says the outcome is unknown (not that PagerDuty refused), and still gives
    # each destination's dedup key, to look the incident up by
    out = capsys.readouterr().out
    assert code == 1
    assert "(dedup key pdrelay-test:shop:team-key)" in out and "(dedup key pdrelay-test:shop:platform-key)" in out
    assert "no report from the relay" in out and "did not accept" not in out


def test_an_error_answer_while_waiting_for_the_resolve_keeps_the_trigger_report_already_read(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a relay whose report shows both triggers accepted, then answers every later poll with a
    # 429 (the template throttles GET /v1/test/{probe} for all callers together)
    answer = started(team="pdrelay-test:shop:team-key", platform="pdrelay-test:shop:platform-key")
    session, fake = relay(answer)
    good = fake.report
    trigger_only = {**good, "destinations": [{**d, "resolve": None} for d in good["destinations"]]}
    answers = iter([(200, trigger_only)])

    def send(request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if request.method == "GET":
            fake.report_status, fake.report = next(answers, (429, {"status": "rejected", "message": "slow down"}))
        return FakeRelay.send(fake, request, *args, **kwargs)

    monkeypatch.setattr(fake, "send", send)
    monkeypatch.setattr("pdrelay.cli.relay.time.sleep", lambda seconds: None)

    # When the test runs to its resolve, which never shows
    code = run(session, "--timeout", "0.05")

    # Then what was read stands: both triggers accepted, each with its key; the resolves have no answer
    out = capsys.readouterr().out
    assert code == 1
    assert "(dedup key pdrelay-test:shop:team-key)" in out and "HTTP 202" in out
    assert "no report from the relay" not in out
    assert out.count("no answer yet") == 2
