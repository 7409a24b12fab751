"""The normalized alert and the versioned queue message that carries it.

Every monitor format turns its payload into :class:`Alert` objects; ingest wraps each in a
:class:`QueueMessage` (the alert plus routing and receipt metadata), so the dispatcher never
re-parses monitor formats. A schema change bumps ``v`` and :func:`parse_message` reads every version.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

Action = Literal["trigger", "acknowledge", "resolve"]
Severity = Literal["critical", "error", "warning", "info"]
SEVERITIES: tuple[str, ...] = ("critical", "error", "warning", "info")

SUMMARY_LIMIT = 1024
DEDUP_KEY_LIMIT = 255
TRUNCATION_MARKER = " …[truncated by pdrelay]"


def truncate(text: str, limit: int, marker: str = TRUNCATION_MARKER) -> str:
    """``text`` cut to at most ``limit`` characters, with a visible marker when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(marker))] + marker


def _fix(text: str) -> str:
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def without_lone_surrogates(doc: Any) -> Any:
    """JSON escapes can spell half an emoji (senders that cut text blindly); DynamoDB and
    PagerDuty refuse those, so they become U+FFFD. For every JSON document pdrelay decodes,
    including JSON carried inside a string (SNS's ``Message``)."""
    if isinstance(doc, str):
        return _fix(doc)
    if isinstance(doc, list):
        return [without_lone_surrogates(item) for item in doc]
    if isinstance(doc, dict):
        return {_fix(str(k)): without_lone_surrogates(v) for k, v in doc.items()}
    return doc


def utcnow() -> datetime:
    return datetime.now(UTC)


class Link(BaseModel):
    model_config = ConfigDict(extra="ignore")
    href: str
    text: str | None = None


class Image(BaseModel):
    model_config = ConfigDict(extra="ignore")
    src: str
    href: str | None = None
    alt: str | None = None


class Alert(BaseModel):
    """One alert event in pdrelay's own terms."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    format: str
    identity: str = Field(min_length=1, description="Stable across firing and recovery within the format.")
    action: Action
    occurred_at: datetime = Field(description="When the reported state began; orders events of one alert.")
    summary: str | None = Field(None, min_length=1, max_length=SUMMARY_LIMIT)
    source: str | None = Field(None, min_length=1)
    severity: Severity = "error"
    timestamp: datetime | None = None
    component: str | None = None
    group: str | None = None
    class_: str | None = Field(None, alias="class")
    custom_details: dict[str, Any] = Field(default_factory=dict)
    links: list[Link] = Field(default_factory=list)
    images: list[Image] = Field(default_factory=list)
    client: str | None = None
    client_url: str | None = None
    dedup_key: str | None = Field(None, max_length=DEDUP_KEY_LIMIT, description="Given by the sender.")
    test: bool = Field(False, description="A monitor's test notification: paged only if the route asks.")

    @model_validator(mode="after")
    def _trigger_has_payload(self) -> Alert:
        if self.action == "trigger" and not (self.summary and self.source):
            raise ValueError("a trigger needs a summary and a source")
        return self


def deterministic_dedup_key(fmt: str, identity: str) -> str:
    """The dedup key for an alert identity: readable when short, hashed when long."""
    key = f"{fmt}:{identity}"
    if len(key) <= DEDUP_KEY_LIMIT and key.isprintable():
        return key
    return f"{fmt}:sha256:{hashlib.sha256(identity.encode()).hexdigest()}"


class QueueMessageV1(BaseModel):
    """The first queue message version: still read (messages in flight or in the DLQ across an upgrade)."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    alert: Alert
    route: str | None
    routing_key: str
    dedup_key: str = Field(min_length=1, max_length=DEDUP_KEY_LIMIT)
    received_at: datetime
    request_id: str = ""


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    route: str | None
    destination: str | None = Field(None, description="The route's destination name this copy is for.")
    routing_key: str
    received_at: datetime
    request_id: str = ""

    def to_json(self) -> str:
        """ASCII JSON: SQS refuses some Unicode characters (U+FFFE, U+FFFF, lone surrogates)."""
        return json.dumps(
            self.model_dump(mode="json", by_alias=True, exclude_none=True), ensure_ascii=True, separators=(",", ":")
        )


class QueueMessage(_Message):
    """An alert event for one destination (version 2: adds destination, rule and probe)."""

    v: Literal[2] = 2
    kind: Literal["alert"] = "alert"
    alert: Alert
    dedup_key: str = Field(min_length=1, max_length=DEDUP_KEY_LIMIT)
    rule: str | None = Field(None, description="The routing rule that sent it here, if any.")
    probe: str | None = Field(None, description="A `pdrelay test` run: outcomes are recorded under this id.")


class ChangeEvent(BaseModel):
    """A PagerDuty change event (a deploy marker): no action, no dedup key, no incident."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(min_length=1, max_length=SUMMARY_LIMIT)
    source: str | None = None
    timestamp: datetime | None = None
    custom_details: dict[str, Any] = Field(default_factory=dict)
    links: list[Link] = Field(default_factory=list)


class ChangeMessage(_Message):
    v: Literal[2] = 2
    kind: Literal["change"] = "change"
    change: ChangeEvent


AnyMessage = QueueMessage | ChangeMessage
_MESSAGE: TypeAdapter[QueueMessageV1 | QueueMessage | ChangeMessage] = TypeAdapter(
    QueueMessageV1 | QueueMessage | ChangeMessage
)


def parse_message(body: str) -> QueueMessage | ChangeMessage:
    """Read a queue message of any known version (version 1 becomes version 2)."""
    doc = json.loads(body)
    if isinstance(doc, dict) and doc.get("v") == 1:
        old = QueueMessageV1.model_validate(doc)
        return QueueMessage.model_validate({**old.model_dump(by_alias=True), "v": 2})
    message = _MESSAGE.validate_python(doc)
    assert not isinstance(message, QueueMessageV1)
    return message


def make_message(
    alert: Alert,
    *,
    route: str | None,
    routing_key: str,
    received_at: datetime,
    request_id: str,
    destination: str | None = None,
    rule: str | None = None,
    probe: str | None = None,
) -> QueueMessage:
    return QueueMessage(
        alert=alert,
        route=route,
        destination=destination,
        rule=rule,
        routing_key=routing_key,
        dedup_key=alert.dedup_key or deterministic_dedup_key(alert.format, alert.identity),
        received_at=received_at,
        request_id=request_id,
        probe=probe,
    )
