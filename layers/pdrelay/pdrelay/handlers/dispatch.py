"""SQS → pdrelay dispatch, with partial batch failure reporting. An adapter, nothing more.

Each record of the batch goes through :meth:`~pdrelay.delivery.dispatcher.Dispatcher.process` in
order; a record that raises is reported in ``batchItemFailures`` (the event source mapping has
``ReportBatchItemFailures``), so SQS returns only it to the queue, and the others are deleted.
"""

from __future__ import annotations

import json
from typing import Any

from pdrelay.aws import at_init
from pdrelay.delivery.dispatcher import attributes_from_event, get_dispatcher
from pdrelay.errors import RetryableDelivery, StoreError
from pdrelay.observability import invocation, logger


def record_handler(record: dict[str, Any], lambda_context: Any = None) -> str:
    dispatcher = get_dispatcher()
    if lambda_context is not None and lambda_context.get_remaining_time_in_millis() < dispatcher.start_guard_ms:
        # Too little time left to finish a send: leave this record to SQS rather than be cut off
        # mid-send, which would return the whole batch (deferred copies included) to the queue.
        dispatcher.release_unstarted(record.get("receiptHandle", ""))
        raise TimeoutError("not started: the invocation is about to time out")
    outcome = dispatcher.process(
        record.get("body") or "",
        receipt_handle=record.get("receiptHandle", ""),
        receive_count=int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 1),
        message_attributes=attributes_from_event(record.get("messageAttributes")),
        message_id=record.get("messageId", ""),
    )
    return outcome.result


def _alert_of(record: dict[str, Any]) -> dict[str, Any]:
    """The alert a record carries (its dedup key, request, route), read as plainly as possible: the
    line about an unexpected error must be found by `pdrelay trace` even when the message is the cause."""
    try:
        doc = json.loads(record.get("body") or "")
        return {k: doc[k] for k in ("dedup_key", "request_id", "route") if isinstance(doc.get(k), str)}
    except (ValueError, TypeError, AttributeError):
        return {}


@invocation()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures = []
    for record in event.get("Records") or []:
        try:
            record_handler(record, context)
        except (RetryableDelivery, StoreError, TimeoutError):
            failures.append({"itemIdentifier": record.get("messageId", "")})  # the dispatcher said why
        except Exception as exc:
            logger.warning(
                "message returned to the queue after an unexpected error",
                extra={"message_id": record.get("messageId", ""), "error": type(exc).__name__, **_alert_of(record)},
            )
            failures.append({"itemIdentifier": record.get("messageId", "")})
    return {"batchItemFailures": failures}


at_init(lambda: get_dispatcher().current_config())  # clients, HTTP pool and configuration before the first batch
