"""No payload makes a format crash: every field of every fixture, replaced by junk, gives alerts
that serialise and build valid events, or a 4xx with reasons; so does a URL that cannot be parsed.
Never another exception."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from pdrelay import formats
from pdrelay.delivery.events_api import build_event
from pdrelay.errors import BadRequest, RequestError
from pdrelay.formats import ParseContext
from pdrelay.ingest.parsing import parse_payload as _parse
from pdrelay.models import make_message
from tests.conftest import ROUTING_KEY
from tests.formats_harness import RECEIVED, Case, cases, load_case

JUNK: list[Any] = [
    None,
    "",
    0,
    -1.5e308,
    True,
    {"unexpected": ["object"]},
    ["a", None],
    "Ω\u0000\u202e" * 3000,
    "{{ template }} $ALERT_ID",
    "2026-13-45T99:99:99Z",
]
MAX_PATHS = 60


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield (*prefix, key)
            yield from paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc[:3]):
            yield (*prefix, index)
            yield from paths(value, (*prefix, index))


def replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    copy_ = copy.deepcopy(doc)
    node = copy_
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return copy_


def outcome(case: Case, doc: Any) -> str:
    fmt = formats.get(case.format)
    context = formats.ParseContext(
        received_at=RECEIVED, headers=case.headers, body=case.body, options=fmt.options_for(case.options)
    )
    try:
        parsed = _parse(fmt, doc, context)
    except RequestError as exc:
        assert 400 <= exc.status < 500 and exc.message
        return "refused"
    for alert in parsed.alerts:
        message = make_message(alert, route="r", routing_key=ROUTING_KEY, received_at=RECEIVED, request_id="x")
        json.loads(message.to_json())
        event = build_event(message, alert.action)
        assert event["payload"]["summary"] and event["payload"]["source"]
        assert len(event["payload"]["summary"]) <= 1024
    return "parsed"


ALL = cases()


@pytest.mark.parametrize("case", ALL, ids=[c.id for c in ALL])
def test_junk_in_any_field_is_parsed_or_refused_never_a_crash(case: Case) -> None:
    doc = case.doc
    seen = {"parsed": 0, "refused": 0}
    for path in list(paths(doc))[:MAX_PATHS]:
        for value in JUNK:
            seen[outcome(case, replaced(doc, path, value))] += 1
    for whole in ([], "text", 42, None, {}, [doc]):
        seen[outcome(case, whole)] += 1
    assert seen["parsed"] + seen["refused"] > 0


@pytest.mark.parametrize(
    ("fmt", "case", "where"),
    [
        ("cloudwatch", "sns-subscription-confirmation", ("SubscribeURL",)),
        ("gcp", "open", ("incident", "url")),
    ],
)
def test_an_unparseable_url_is_a_400_or_ignored_not_a_crash(fmt: str, case: str, where: tuple[str, ...]) -> None:
    try:
        doc = load_case(fmt, case).doc
    except FileNotFoundError:
        pytest.skip(f"no {fmt}/{case} fixture")
    node = doc
    for step in where[:-1]:
        node = node[step]
    node[where[-1]] = "https://[::1/x?project=p"
    f = formats.get(fmt)
    options = f.options_for({"verify_signatures": False} if fmt == "cloudwatch" else None)
    with contextlib.suppress(BadRequest):
        f.run(doc, ParseContext(received_at=RECEIVED, options=options))
