"""SQS → pdrelay dispatch, with partial batch failure reporting. An adapter, nothing more."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from pdrelay.delivery.dispatcher import attributes_from_event, get_dispatcher
from pdrelay.observability import logger

# Report every failed record, even when all fail, rather than raising: same effect, clearer logs.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord, lambda_context: LambdaContext | None = None) -> str:
    dispatcher = get_dispatcher()
    if lambda_context is not None and lambda_context.get_remaining_time_in_millis() < dispatcher.start_guard_ms:
        # Too little time left to finish a send: leave this record to SQS rather than be cut off
        # mid-send, which would return the whole batch (deferred copies included) to the queue.
        dispatcher.release_unstarted(record.receipt_handle)
        raise TimeoutError("not started: the invocation is about to time out")
    outcome = dispatcher.process(
        record.body,
        receipt_handle=record.receipt_handle,
        receive_count=int(record.attributes.approximate_receive_count or 1),
        message_attributes=attributes_from_event(record.raw_event.get("messageAttributes")),
        message_id=record.message_id,
    )
    return outcome.result


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
