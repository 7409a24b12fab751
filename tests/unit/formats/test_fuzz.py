"""No body makes a format adapter do anything but parse it or refuse it (hypothesis).

For every format (``formats.names()``): bodies mutated from that format's own fixtures
(events/formats/<name>/*.json: keys dropped, values of another type, huge and odd strings, nested junk,
deep nesting, numbers at the extremes, NaN and infinities, which Python's JSON reader accepts) and random
JSON go through what ingest does with a body: ``decode_json`` then the format's parse (``ingest._parse``,
which turns a model error into a 400). The outcome is a :class:`~pdrelay.formats.Parsed` whose alerts make
queue messages and Events API events, or a :class:`~pdrelay.errors.RequestError` (4xx) with a message.
Any other exception is a failure. Seeded, so CI runs the same bodies; see tests/fuzz_counter.py.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, seed
from hypothesis import strategies as st

from pdrelay import formats
from pdrelay.delivery.events_api import build_event
from pdrelay.errors import RequestError
from pdrelay.formats import cloudwatch
from pdrelay.ingest.body import decode_json
from pdrelay.ingest.parsing import parse_payload as _parse
from pdrelay.models import SUMMARY_LIMIT, make_message
from tests import sns_signing
from tests.conftest import ROUTING_KEY
from tests.formats_harness import RECEIVED, Case, cases
from tests.fuzz_counter import SEED, Timer, fuzz_settings, fuzz_totals

__all__ = ["fuzz_totals"]  # the session's fixture, requested below

MUTATED_PER_FORMAT = 480  # x 16 formats
RANDOM_PER_FORMAT = 60
NAMES = formats.names()

# -- junk ------------------------------------------------------------------------------------------------
EXTREME_NUMBERS = st.sampled_from(
    [
        0,
        -1,
        2**31,
        -(2**31) - 1,
        2**63,
        -(2**63) - 1,
        2**64 + 1,
        10**300,
        1.7976931348623157e308,
        -1.7976931348623157e308,
        5e-324,
        -0.0,
        math.inf,
        -math.inf,
        math.nan,
        1e20,
        253402300800,
        -62135596800,
    ]
)
ODD_STRINGS = st.sampled_from(
    [
        "",
        " ",
        "\u0000",
        "\u202e\u200b\ufeff",
        "Ω≈ç√∫" * 50,
        "💥" * 200,
        "x" * 20_000,
        "\n" * 500,
        "{{ .Labels.alertname }}",
        "$ALERT_ID",
        "%s%n%x",
        "<script>alert(1)</script>",
        "../../etc/passwd",
        "null",
        "true",
        "0",
        "-1",
        "1e309",
        "NaN",
        "2026-13-45T99:99:99Z",
        "0000-00-00T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "1970-01-01T00:00:00Z",
        "2026-11-24T09:30:00+14:00",
        "1700000000",
        "1700000000000",
        "firing",
        "resolved",
        "ok",
        "OK",
        "ALARM",
        "critical",
        "CRITICAL",
        "up",
        "down",
        "triggered",
        "Recovered",
        "https://",
        "https://sns.us-east-1.amazonaws.com/x.pem",
        "arn:aws:sns:::",
        "a" * 256,
        "Bearer x",
    ]
)
SCALARS = st.one_of(
    st.none(), st.booleans(), EXTREME_NUMBERS, st.integers(), st.floats(), ODD_STRINGS, st.text(max_size=40)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)),
    max_leaves=25,
)


def deep(value: Any, levels: int) -> Any:
    for i in range(levels):
        value = [value] if i % 2 else {"n": value}
    return value


def swapped(value: Any) -> Any:
    """The same value as another JSON type."""
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return [value] if len(value) % 2 else len(value)
    return {}


# -- mutations of a real fixture -------------------------------------------------------------------------
def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            found.append((*prefix, key))
            found.extend(paths(value, (*prefix, key)))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found.append((*prefix, index))
            found.extend(paths(value, (*prefix, index)))
    return found


def _at(doc: Any, path: tuple[Any, ...]) -> tuple[Any, Any]:
    node = doc
    for step in path[:-1]:
        node = node[step]
    return node, path[-1]


@st.composite
def mutated(draw: st.DrawFn, case: Case) -> Any:
    """A fixture's document with one to four mutations (or, rarely, wrapped whole)."""
    doc = copy.deepcopy(case.doc)
    for _ in range(draw(st.integers(1, 4))):
        where = paths(doc)
        if not where:
            break
        path = draw(st.sampled_from(where))
        parent, key = _at(doc, path)
        op = draw(st.sampled_from(["drop", "junk", "swap", "json", "deep", "grow", "null"]))
        if op == "drop":
            del parent[key]
        elif op == "junk":
            parent[key] = draw(SCALARS)
        elif op == "swap":
            parent[key] = swapped(parent[key])
        elif op == "json":
            parent[key] = draw(JSON)
        elif op == "deep":
            parent[key] = deep(parent[key], draw(st.integers(1, 40)))
        elif op == "grow" and isinstance(parent[key], list):
            parent[key] = parent[key] * draw(st.integers(2, 300))
        elif op == "grow" and isinstance(parent[key], dict):
            parent[key] = {**parent[key], **draw(st.dictionaries(st.text(max_size=20), SCALARS, max_size=8))}
        else:
            parent[key] = None
    wrap = draw(st.sampled_from([None] * 12 + ["list", "deep", "string"]))
    if wrap == "list":
        return [doc]
    if wrap == "deep":
        return deep(doc, draw(st.integers(1, 40)))
    if wrap == "string":
        return json.dumps(doc)
    return doc


# -- what ingest does with a body --------------------------------------------------------------------------
def outcome(fmt_name: str, doc: Any, headers: dict[str, str], options: dict[str, Any]) -> str:
    fmt = formats.get(fmt_name)
    body = json.dumps(doc).encode()
    context = formats.ParseContext(received_at=RECEIVED, headers=headers, body=body, options=fmt.options_for(options))
    try:
        parsed = _parse(fmt, decode_json(body), context)
    except RequestError as exc:
        assert 400 <= exc.status < 500 and exc.message
        return "refused"
    assert isinstance(parsed, formats.Parsed)
    for alert in parsed.alerts:
        message = make_message(alert, route="r", routing_key=ROUTING_KEY, received_at=RECEIVED, request_id="fuzz")
        json.loads(message.to_json())
        event = build_event(message, alert.action)
        if alert.action == "trigger":
            assert event["payload"]["summary"] and event["payload"]["source"]
            assert len(event["payload"]["summary"]) <= SUMMARY_LIMIT
    return "parsed"


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """SNS certificates and subscription URLs are never fetched: a mutated fixture keeps its real-shaped URL."""
    monkeypatch.setattr(cloudwatch, "fetch_certificate", lambda _url: sns_signing.certificate_pem())
    monkeypatch.setattr(cloudwatch, "visit_subscribe_url", lambda _url: None)


def run(group: str, examples: int, test: Callable[[Timer], Callable[[], None]]) -> Timer:
    timer = Timer(group)
    try:
        test(timer)()
    finally:
        ran = timer.done()
    assert ran >= examples * 0.9, f"hypothesis ran {ran} of {examples} examples"
    return timer


@pytest.mark.usefixtures("fuzz_totals", "no_aws")
@pytest.mark.parametrize("fmt_name", NAMES)
def test_a_mutated_fixture_is_parsed_or_refused_never_a_crash(fmt_name: str) -> None:
    fixtures = cases(fmt_name)
    assert fixtures, f"no fixtures for {fmt_name}"
    seen = {"parsed": 0, "refused": 0}

    def make(timer: Timer) -> Callable[[], None]:
        @seed(SEED)
        @fuzz_settings(MUTATED_PER_FORMAT)
        @given(data=st.data())
        def fuzz(data: st.DataObject) -> None:
            case = data.draw(st.sampled_from(fixtures), label="fixture")
            doc = data.draw(mutated(case), label="body")
            timer.tick()
            seen[outcome(fmt_name, doc, case.headers, case.options)] += 1

        return fuzz

    run("formats", MUTATED_PER_FORMAT, make)
    assert seen["refused"] > 0  # the mutations do reach the format's checks


@pytest.mark.usefixtures("fuzz_totals", "no_aws")
@pytest.mark.parametrize("fmt_name", NAMES)
def test_random_json_is_parsed_or_refused_never_a_crash(fmt_name: str) -> None:
    def make(timer: Timer) -> Callable[[], None]:
        @seed(SEED)
        @fuzz_settings(RANDOM_PER_FORMAT)
        @given(doc=JSON)
        def fuzz(doc: Any) -> None:
            timer.tick()
            outcome(fmt_name, doc, {}, {})

        return fuzz

    run("formats", RANDOM_PER_FORMAT, make)
