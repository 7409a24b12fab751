"""Replay protection at ingest: a request sent again is not queued twice, where that matters.

Monitors retry: an SNS notification is redelivered with the same ``MessageId``, a webhook sender
that timed out posts the same body again, a captured signed request may be sent again.

**Where the dispatcher's own dedup already covers it, nothing is written.** A format whose every
notification carries its own times (the format module says so with ``REPLAY_BY_BODY = True``:
Alertmanager, CloudWatch, Datadog, Zabbix, Splunk, Pingdom, Uptime Kuma, Azure, Google Cloud,
ThousandEyes, Wavefront) gives the same request the same events with the same times: the
dispatcher finds each one already applied (``duplicate``, ``unchanged``) or older than what it
applied (``stale``), so a repeat costs a queue message and a read, never a page, and a trigger
sent again after its resolve does not reopen the incident. Such requests carry no replay key.

**Where it does not, one write.** PagerDuty-style events (Events API v1/v2, change events) and
user templates carry no time of their own: the same body legitimately recurs (trigger, resolve,
trigger again), so only an explicit delivery id identifies a repeat (SNS's
``x-amz-sns-message-id``, an ``Idempotency-Key`` header, or the request's
``X-Pdrelay-Signature``), and a repeat after a resolve would reopen the incident. For those, the
key is read (one read), the work done, and its answer written (one unconditional write, expiring
after ``PDRELAY_REPLAY_WINDOW_SECONDS``); a repeat within the window gets the first answer with
``"replayed": true`` and is not queued. Nothing is written before the work, so a request that
failed or whose function died is queued when it is sent again; two copies arriving at the same
moment may both be queued, which the dispatcher answers as one (``unchanged``, ``in-flight``). A
window of 0 turns it off.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from pdrelay.observability import REPLAYS_IGNORED, count, logger
from pdrelay.table import REPLAY_PREFIX
from pdrelay.timeutil import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Answer = dict[str, Any]


def replay_key(
    caller: str,
    endpoint: str,
    format_name: str,
    route: str | None,
    body: bytes,
    headers: Mapping[str, str],
    *,
    by_body: bool,
) -> str | None:
    """The key for this request, or None when it needs none: its format's events carry their own
    times (``by_body``: the dispatcher tells a repeat), or it has no explicit delivery id."""
    if by_body:
        return None
    # A signed request's signature covers its timestamp and body: the same signature again is a
    # replay (of a request captured on the way), never a new event.
    explicit = (
        headers.get("x-amz-sns-message-id") or headers.get("idempotency-key") or headers.get("x-pdrelay-signature")
    )
    if not explicit:
        return None
    # Tied to the body too: a sender reusing a key for a different event is not swallowed.
    content = f"id:{explicit}:{hashlib.sha256(body).hexdigest()}"
    return "\x1f".join([caller, endpoint, format_name, route or "", content])


def once(
    key: str | None,
    work: Callable[[], Answer],
    *,
    table_name: str,
    window_seconds: int,
    dynamodb: DynamoDBClient,
    clock: Clock = SYSTEM_CLOCK,
) -> Answer:
    """``work()``'s answer, computed once per ``key`` within the window (one read, one write)."""
    if key is None or window_seconds <= 0 or not table_name:
        return work()
    pk = {"S": f"{REPLAY_PREFIX}#{hashlib.sha256(key.encode()).hexdigest()}"}
    now = int(clock.time())
    try:
        item = dynamodb.get_item(TableName=table_name, Key={"pk": pk}, ConsistentRead=True).get("Item")
    except (ClientError, BotoCoreError):
        # The table is unavailable: queueing twice is safe (dispatch dedups); refusing is not.
        logger.warning("replay protection unavailable; queueing without it")
        return work()
    if item and int(item.get("expires_at", {}).get("N", "0")) > now and "replay_answer" in item:
        answer = {**json.loads(item["replay_answer"]["S"]), "replayed": True}
        count(REPLAYS_IGNORED, Format=str(answer.get("format", "events_v2")))
        logger.info("replayed request answered without queueing again")
        return answer
    answer = work()
    try:
        dynamodb.put_item(
            TableName=table_name,
            Item={
                "pk": pk,
                "replay_answer": {"S": json.dumps(answer, separators=(",", ":"), default=str)},
                "expires_at": {"N": str(now + window_seconds)},
            },
        )
    except (ClientError, BotoCoreError):
        logger.warning("replay protection could not record this request; a repeat would be queued again")
    return answer
