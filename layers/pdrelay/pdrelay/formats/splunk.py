"""Splunk's webhook alert action (Splunk Enterprise and Splunk Cloud Platform).

User documentation: docs/senders/splunk.md.
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
