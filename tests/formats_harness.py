"""Monitor fixtures and what pdrelay makes of them: shared by the golden, detection and e2e tests.

Layout, one folder per format under ``events/formats/<format>/``:

``<case>.json``
    a request body, modelled on the monitor's documented payload (our own samples);
``<case>.meta.json`` (optional)
    ``{"headers": {...}, "options": {...}, "detect": false, "send_test_notifications": true}``:
    request headers, the route's options for the format, whether ``auto`` must pick this format
    for the case (default true), whether the route pages for test notifications;
``lifecycle.json``
    ``{"pairs": [["<firing case>", "<recovery case or null>"], ...]}``: cases that must land on one
    incident, which ends resolved when the pair has a recovery;

and the expected PagerDuty events in ``tests/golden/<format>/<case>.json``. Regenerate goldens
with ``PDRELAY_UPDATE_GOLDEN=1 make test`` and read the diff before committing it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.conftest import EVENTS, ROOT, ROUTING_KEY

FIXTURES = EVENTS / "formats"
GOLDEN = ROOT / "tests" / "golden"
RECEIVED = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Case:
    format: str
    name: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    detect: bool = True
    send_test_notifications: bool = False

    @property
    def id(self) -> str:
        return f"{self.format}/{self.name}"

    @property
    def doc(self) -> Any:
        return json.loads(self.body)

    @property
    def golden_path(self) -> Path:
        return GOLDEN / self.format / f"{self.name}.json"


def load_case(fmt: str, name: str) -> Case:
    folder = FIXTURES / fmt
    meta_path = folder / f"{name}.meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    return Case(
        format=fmt,
        name=name,
        body=(folder / f"{name}.json").read_bytes(),
        headers={k.lower(): v for k, v in meta.get("headers", {}).items()},
        options=meta.get("options", {}),
        detect=meta.get("detect", True),
        send_test_notifications=meta.get("send_test_notifications", False),
    )


def format_names() -> list[str]:
    return sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


def cases(fmt: str | None = None) -> list[Case]:
    found = []
    for name in [fmt] if fmt else format_names():
        for path in sorted((FIXTURES / name).glob("*.json")):
            if path.name.endswith(".meta.json") or path.name == "lifecycle.json":
                continue
            found.append(load_case(name, path.stem))
    return found


def lifecycle_pairs(fmt: str) -> list[tuple[str, str | None]]:
    path = FIXTURES / fmt / "lifecycle.json"
    if not path.exists():
        return []
    return [(first, second) for first, second in json.loads(path.read_text(encoding="utf-8"))["pairs"]]


def documented_template(fmt: str) -> str:
    """The payload template a sender page (``docs/senders/<fmt>.md``) tells users to paste."""
    page = ROOT / "docs" / "senders" / f"{fmt}.md"
    found = re.search(r"```handlebars\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    assert found, f"{page} has no ```handlebars template"
    return found.group(1)


def lookup(stack: list[Any], name: str, missing: Any = None) -> Any:
    """A template variable (``a.b.c``, or ``.`` for the current item) from the innermost scope that has it,
    as Mustache and Handlebars resolve them."""
    if name == ".":
        return stack[-1]
    for scope in reversed(stack):
        value: Any = scope
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            return value
    return missing


def run(case: Case, received_at: datetime = RECEIVED) -> dict[str, Any]:
    """What pdrelay makes of a case: the Events API v2 bodies it would send, and its notes."""
    from pdrelay import formats
    from pdrelay.delivery.events_api import build_event
    from pdrelay.ingest.body import decode_json
    from pdrelay.ingest.parsing import parse_payload as _parse
    from pdrelay.models import make_message

    fmt = formats.get(case.format)
    context = formats.ParseContext(
        received_at=received_at, headers=case.headers, body=case.body, options=fmt.options_for(case.options)
    )
    parsed = _parse(fmt, decode_json(case.body), context)
    events = []
    for alert in parsed.alerts:
        message = make_message(
            alert, route="golden", routing_key=ROUTING_KEY, received_at=received_at, request_id="golden"
        )
        event = build_event(message, alert.action)
        events.append({"test": True, **event} if alert.test else event)
    result: dict[str, Any] = {"events": events}
    if parsed.notes:
        result["notes"] = parsed.notes
    if parsed.rejected:
        result["rejected"] = parsed.rejected
    return result


def walk(fmt: str, docs_at: list[tuple[Any, int]], options: Any = None) -> list[str]:
    """The dedup decision's reason for each of a series of payloads of one format, each received
    ``minutes`` after ``RECEIVED`` and delivered before the next: "new", "update", "resolve",
    "reopen", "stale"..."""
    from pdrelay import formats
    from pdrelay.delivery.decisions import Record, decide
    from pdrelay.delivery.dispatcher import to_event
    from pdrelay.models import make_message

    record: Record | None = None
    reasons = []
    for doc, minutes in docs_at:
        received = RECEIVED + timedelta(minutes=minutes)
        fmt_ = formats.get(fmt)
        ctx = formats.ParseContext(received_at=received, options=options or fmt_.options_for(None))
        (alert,) = fmt_.run(doc, ctx).alerts
        event = to_event(make_message(alert, route="r", routing_key=ROUTING_KEY, received_at=received, request_id="x"))
        decision = decide(record, event)
        reasons.append(decision.reason)
        if decision.record is not None:
            record = replace(decision.record, delivered=True, lease_until=0)
    return reasons


# Values no field of a monitor payload should make a parser crash on: each format's robustness
# tests put them wherever a field may be, adding values of their own.
HOSTILE_VALUES: list[object] = [
    None,
    "",
    0,
    2.5,
    True,
    [],
    {},
    [None, 1, {"a": 2}, ["x"]],
    {"deep": {"er": [1]}},
    "x" * 100_000,
    "ünïcødé ☃ 💥",
    "http://[broken",
]
