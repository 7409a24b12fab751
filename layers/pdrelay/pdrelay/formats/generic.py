"""Any JSON webhook, described per route by JMESPath expressions: for monitors pdrelay has no module for.

User documentation: docs/senders/generic.md (the options' defaults there are generated from ``Options``).

Never auto-detected (``DETECT_ORDER = MANUAL_ONLY``): without the route's description nothing says
what a field means. Expressions are compiled when the configuration loads, so a bad one is a
configuration error, not a 400 at the first alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pdrelay.errors import BadRequest
from pdrelay.formats import MANUAL_ONLY, ParseContext, Parsed
from pdrelay.formats._common import collect, links, map_severity, summary, text
from pdrelay.models import SEVERITIES, Action, Alert
from pdrelay.timeutil import parse_time

NAME = "generic"
DETECT_ORDER = MANUAL_ONLY

TRIGGER_WORDS = [
    "firing",
    "trigger",
    "triggered",
    "alert",
    "alerting",
    "problem",
    "down",
    "critical",
    "error",
    "warning",
    "failed",
    "failure",
    "open",
    "active",
]
RESOLVE_WORDS = [
    "resolved",
    "resolve",
    "ok",
    "up",
    "recovered",
    "recovery",
    "closed",
    "clear",
    "cleared",
    "normal",
    "inactive",
    "succeeded",
    "success",
]


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    alerts: str | None = Field(None, description="Where the list of alerts is; None: the body is one alert.")
    identity: list[str] = Field(default_factory=lambda: ["id"], min_length=1)
    status: str = "status"
    trigger_values: list[str] = Field(default_factory=lambda: list(TRIGGER_WORDS), min_length=1)
    resolve_values: list[str] = Field(default_factory=lambda: list(RESOLVE_WORDS))
    acknowledge_values: list[str] = Field(default_factory=list)
    summary: str = "summary || title || message || description"
    severity: str | None = "severity"
    severity_values: dict[str, str] = Field(default_factory=dict)
    default_severity: str = "error"
    source: str = "source || host || hostname"
    component: str | None = None
    group: str | None = None
    class_: str | None = Field(None, alias="class")
    timestamp: str | None = None
    links: list[str] = Field(default_factory=list)
    test: str | None = None
    client: str = "generic webhook"

    @field_validator("identity", "trigger_values", "resolve_values", "acknowledge_values", "links", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator(
        "alerts",
        "identity",
        "status",
        "summary",
        "severity",
        "source",
        "component",
        "group",
        "class_",
        "timestamp",
        "links",
        "test",
    )
    @classmethod
    def _expressions(cls, value: Any) -> Any:
        for expression in value if isinstance(value, list) else [value]:
            if expression is None:
                continue
            try:
                _compiled(expression)
            except JMESPathError as exc:
                raise ValueError(f"not a JMESPath expression: {expression!r} ({exc.__class__.__name__})") from None
        return value

    @field_validator("default_severity")
    @classmethod
    def _severity(cls, value: str) -> str:
        if value not in SEVERITIES:
            raise ValueError(f"must be one of {', '.join(SEVERITIES)}")
        return value

    @field_validator("severity_values")
    @classmethod
    def _severities(cls, value: dict[str, str]) -> dict[str, str]:
        wrong = [k for k, v in value.items() if v not in SEVERITIES]
        if wrong:
            raise ValueError(f"values must be one of {', '.join(SEVERITIES)} (see {', '.join(wrong)})")
        return {k.lower(): v for k, v in value.items()}


@lru_cache(maxsize=256)
def _compiled(expression: str) -> Any:
    return jmespath.compile(expression)


def _get(item: Any, expression: str | None) -> Any:
    if not expression:
        return None
    try:
        return _compiled(expression).search(item)
    except JMESPathError:  # e.g. a function given the wrong type by this payload
        return None


def detect(doc: Any, headers: Mapping[str, str]) -> bool:
    return False  # a generic payload has no shape of its own: name it in the URL


def _alert(item: Any, options: Options, ctx: ParseContext) -> Alert:
    if not isinstance(item, dict):
        raise ValueError("expected an object")
    parts = [text(_get(item, expression)) for expression in options.identity]
    if not all(parts):
        missing = [e for e, p in zip(options.identity, parts, strict=True) if not p]
        raise ValueError(f"identity: nothing at {', '.join(missing)}")
    identity = "/".join(p for p in parts if p)  # a long one is hashed whole into the dedup key
    raw_status = text(_get(item, options.status)) or ""
    status = raw_status.lower()
    action: Action
    if status in (v.lower() for v in options.trigger_values):
        action = "trigger"
    elif status in (v.lower() for v in options.resolve_values):
        action = "resolve"
    elif status in (v.lower() for v in options.acknowledge_values):
        action = "acknowledge"
    else:
        known = [*options.trigger_values, *options.resolve_values, *options.acknowledge_values]
        raise ValueError(
            f"status at {options.status!r} is {raw_status or 'missing'!r}; configured values: {', '.join(known)}"
        )
    word = text(_get(item, options.severity))
    severity = options.severity_values.get((word or "").lower()) or map_severity(word, options.default_severity)
    when = parse_time(_get(item, options.timestamp)) if options.timestamp else None
    occurred = when or ctx.received_at
    return Alert(
        format=NAME,
        identity=identity,
        action=action,
        occurred_at=occurred,
        summary=summary(_get(item, options.summary), fallback=f"{options.client} alert {identity}"),
        source=text(_get(item, options.source)) or options.client,
        severity=severity,
        timestamp=when,
        component=text(_get(item, options.component)),
        group=text(_get(item, options.group)),
        class_=text(_get(item, options.class_)),
        custom_details=item,
        links=links(*((_get(item, e), "Link") for e in options.links)),
        client=options.client,
        test=_get(item, options.test) is True,
    )


def parse(doc: Any, context: ParseContext) -> Parsed:
    options = context.options if isinstance(context.options, Options) else Options()
    if options.alerts:
        items = _get(doc, options.alerts)
        if not isinstance(items, list) or not items:
            raise BadRequest("invalid generic payload", [f"{options.alerts}: expected a non-empty list of alerts"])
        where = options.alerts
    else:
        items, where = [doc], "body"
    parsed = collect(items, lambda item: _alert(item, options, context), where=where)
    if not parsed.alerts and parsed.rejected:
        raise BadRequest("invalid generic payload", parsed.rejected)
    return parsed
