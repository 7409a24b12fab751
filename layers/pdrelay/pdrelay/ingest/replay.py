"""Replay protection at ingest: the same request, sent again within a window, is not queued twice.

Monitors retry: an SNS notification is redelivered with the same ``MessageId``, a webhook sender
that timed out posts the same body again. Powertools idempotency (records in the dedup table,
under keys of its own) runs the enqueue once per key within ``PDRELAY_REPLAY_WINDOW_SECONDS`` and
answers repeats with the first answer, marked ``"replayed": true``. The key covers the caller,
the endpoint, the format and the route, plus an explicit delivery id when the sender gives one
(SNS's ``x-amz-sns-message-id``, an ``Idempotency-Key`` header, or a request's
``X-Pdrelay-Signature``), else the body. Bodies are only
used for formats whose every notification carries its own times (a re-fire differs from the first
firing; the format module says so with ``REPLAY_BY_BODY = True``): for PagerDuty-style events and
user templates, where the same body legitimately recurs (trigger, resolve, trigger again), only
explicit ids count. A window of 0 turns it off.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)

from pdrelay.errors import EnqueueError
from pdrelay.observability import REPLAYS_IGNORED, count, logger
from pdrelay.table import REPLAY_PREFIX

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
    """The key for this request, or None when it has no reliable identity of its own."""
    # A signed request's signature covers its timestamp and body: the same signature again is a
    # replay (of a request captured on the way), never a new event.
    explicit = (
        headers.get("x-amz-sns-message-id") or headers.get("idempotency-key") or headers.get("x-pdrelay-signature")
    )
    if explicit:
        # Tied to the body too: a sender reusing a key for a different event is not swallowed.
        content = f"id:{explicit}:{hashlib.sha256(body).hexdigest()}"
    elif not by_body:
        return None
    else:
        content = hashlib.sha256(body).hexdigest()
    return "\x1f".join([caller, endpoint, format_name, route or "", content])


def _mark_replayed(response: Any, _record: Any) -> Any:
    if isinstance(response, dict):
        response = {**response, "replayed": True}
        count(REPLAYS_IGNORED, Format=str(response.get("format", "events_v2")))
        logger.info("replayed request answered without queueing again")
    return response


@lru_cache(maxsize=4)
def _guard(
    table_name: str, window_seconds: int, dynamodb: DynamoDBClient
) -> tuple[Callable[..., Answer], IdempotencyConfig]:
    persistence = DynamoDBPersistenceLayer(
        table_name=table_name,
        key_attr="pk",
        expiry_attr="expires_at",
        status_attr="replay_status",
        data_attr="replay_answer",
        in_progress_expiry_attr="replay_in_progress_until",
        validation_key_attr="replay_validation",
        boto3_client=dynamodb,
    )
    config = IdempotencyConfig(
        event_key_jmespath="key",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=window_seconds,
        hash_function="sha256",
        response_hook=_mark_replayed,  # type: ignore[arg-type]
    )

    @idempotent_function(  # type: ignore[untyped-decorator]  # Powertools' decorator factory is untyped
        data_keyword_argument="request", persistence_store=persistence, config=config, key_prefix=REPLAY_PREFIX
    )
    def run(request: dict[str, str], work: Callable[[], Answer]) -> Answer:
        del request  # the key only
        return work()

    return run, config


def once(
    key: str | None,
    work: Callable[[], Answer],
    *,
    table_name: str,
    window_seconds: int,
    dynamodb: DynamoDBClient,
    lambda_context: Any = None,
) -> Answer:
    """``work()``'s answer, computed once per ``key`` within the window."""
    if key is None or window_seconds <= 0 or not table_name:
        return work()
    run, config = _guard(table_name, window_seconds, dynamodb)
    if lambda_context is not None:
        config.register_lambda_context(lambda_context)  # bounds how long "in progress" may last
    try:
        return run(request={"key": key}, work=work)
    except IdempotencyAlreadyInProgressError as exc:
        raise EnqueueError("an identical request is being processed right now") from exc
    except IdempotencyPersistenceLayerError:
        # The table is unavailable: queueing twice is safe (dispatch dedups); refusing is not.
        logger.warning("replay protection unavailable; queueing without it")
        return work()


def clear_guards() -> None:
    _guard.cache_clear()
