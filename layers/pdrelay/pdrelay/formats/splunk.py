"""Splunk's webhook alert action (Splunk Enterprise and Splunk Cloud Platform).

Splunk posts ``{"result": {...first result row...}, "sid", "results_link", "search_name", "owner",
"app"}`` when an alert's search triggers (once per run, or once per result row when the alert
triggers "for each result").

- Firing vs recovered: Splunk only ever says "fired"; it has no recovery and no way to send one,
  so every notification triggers, and the incident is resolved in PagerDuty (by a person, or by
  PagerDuty's auto-resolve timeout on the service). While it is open, later firings update it.
- Identity: ``search_name`` (the alert's name), plus the values of the result fields named in the
  route option ``identity_fields`` (e.g. ``["host"]`` for one incident per host when the alert
  triggers for each result). The ``sid`` changes on every run and is not an identity; when
  ``search_name`` is missing (it can be null) the scheduler's sid without its ``_at_<time>_<n>``
  run suffix is used, which names the saved search; an ad-hoc sid with no such suffix stays as it
  is (one incident per run: better a page too many than one lost).
- Severity: the result field ``severity``, ``priority`` or ``urgency`` when it is a known word
  (critical/high/medium/low..., see ``_common.SEVERITY_WORDS``; Splunk's "severe"/"fatal" are
  critical), else the route option ``severity`` (default ``error``).
- Summary: the result field ``summary``, ``message``, ``description`` or ``_raw``, else
  "Splunk alert <search_name>". Source: the result's ``host``, else the Splunk host of
  ``results_link``. Component: the result's ``component``/``service``; group: its
  ``environment``/``env``/``cluster``; class: the search name.
- Links: ``results_link`` (the triggering search's results). custom_details: search name, sid,
  owner, app, the results link and the whole result row.
- Ordering time: pdrelay's receipt (the body carries no trigger time of its own).
- Test notifications: Splunk has none; running the alert's search with a condition that is
  always true is the way to try it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext
from pdrelay.formats._common import SEVERITY_WORDS, compact, links, summary, text
from pdrelay.models import Alert, Severity

NAME = "splunk"
DETECT_ORDER = 55
REPLAY_BY_BODY = True  # every run has its own sid: the same body again is the sender retrying

SPLUNK_WORDS = {**SEVERITY_WORDS, "severe": "critical", "fatal": "critical"}
_RUN_SUFFIX = re.compile(r"_at_\d+_\d+$")


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identity_fields: list[str] = Field(
        default_factory=list,
        description="Result fields whose values join the search name in the identity, e.g. [host].",
    )
    severity: Severity = Field("error", description="Severity when the result has no severity/priority/urgency.")


def detect(doc: Any, headers: Mapping[str, str]) -> bool:
    return (
        isinstance(doc, dict) and "sid" in doc and "results_link" in doc and ("result" in doc or "search_name" in doc)
    )


def field(result: Mapping[str, Any], name: str) -> str | None:
    """A result field's text; a multivalue field's values joined with ", "."""
    value = result.get(name)
    if isinstance(value, list):
        return ", ".join(v for v in (text(item) for item in value) if v) or None
    return text(value)


def _first(result: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = field(result, name)
        if value:
            return value
    return None


def severity(result: Mapping[str, Any], default: str) -> str:
    for name in ("severity", "priority", "urgency"):
        value = field(result, name)
        if value and value.lower() in SPLUNK_WORDS:
            return SPLUNK_WORDS[value.lower()]
    return default


def _splunk(results_link: str | None) -> tuple[str | None, str | None]:
    """The Splunk host name and base URL that ``results_link`` points to."""
    if not results_link or not results_link.lower().startswith(("https://", "http://")):
        return None, None
    try:
        parts = urlsplit(results_link)
    except ValueError:
        return None, None
    return (parts.hostname, f"{parts.scheme}://{parts.netloc}") if parts.hostname else (None, None)


def parse(doc: Any, context: ParseContext) -> list[Alert]:
    if not isinstance(doc, dict):
        raise BadRequest("a Splunk webhook payload is a JSON object", ["body: expected an object"])
    options = context.options if isinstance(context.options, Options) else Options()
    result: dict[str, Any] = doc["result"] if isinstance(doc.get("result"), dict) else {}
    search_name = text(doc.get("search_name"))
    sid = text(doc.get("sid"))
    base = search_name or (_RUN_SUFFIX.sub("", sid) if sid else None)
    if not base:
        raise BadRequest("invalid Splunk payload", ["search_name: the alert's name (or its sid) is needed"])
    identity = base + "".join(f"|{name}={field(result, name) or ''}" for name in options.identity_fields)

    results_link = text(doc.get("results_link"))
    splunk_host, splunk_url = _splunk(results_link)
    name = search_name or base
    return [
        Alert(
            format=NAME,
            identity=identity,
            action="trigger",
            occurred_at=context.received_at,
            summary=summary(
                _first(result, "summary", "message", "description", "_raw"), fallback=f"Splunk alert {name}"
            ),
            source=field(result, "host") or splunk_host or "Splunk",
            severity=severity(result, options.severity),
            timestamp=context.received_at,
            component=_first(result, "component", "service"),
            group=_first(result, "environment", "env", "cluster"),
            class_=name,
            custom_details=compact(
                {
                    "search_name": search_name,
                    "sid": sid,
                    "owner": text(doc.get("owner")),
                    "app": text(doc.get("app")),
                    "results_link": results_link,
                    "result": result,
                }
            ),
            links=links((results_link, "Splunk search results")),
            client="Splunk",
            client_url=splunk_url,
        )
    ]
