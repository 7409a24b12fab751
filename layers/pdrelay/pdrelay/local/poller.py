"""Lambda's SQS event source mapping, locally: pollers that receive batches from the queue, invoke
the dispatch handler with them, and delete what it did not report as failed.

The batch size is the template's event source's (at most 10, SQS's limit per receive). Redelivery after the
visibility timeout and the move to the dead-letter queue after ``maxReceiveCount`` are SQS's own
(moto's, here): a record the handler reports in ``batchItemFailures``, or every record of an
invocation that raised, stays on the queue for them.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pdrelay.local.runtime import REGION, FakeLambdaContext
from pdrelay.local.template import FunctionSpec

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef


class SqsPoller:
    """Lambda's SQS event source mapping, in threads: receive a batch, invoke, delete the successes."""

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        queue_arn: str,
        function: FunctionSpec,
        handler: Callable[[dict[str, Any], Any], dict[str, Any]],
        workers: int,
        crash_rate: float = 0.0,
    ) -> None:
        assert function.sqs_source is not None
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.function = function
        self.source = function.sqs_source
        self.handler = handler
        self.workers = workers
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.invocations = 0
        self.errors = 0
        self.crashes = 0
        self.crash_rate = crash_rate  # chaos: the share of invocations killed mid-batch

    def start(self) -> None:
        for i in range(self.workers):
            thread = threading.Thread(target=self._run, name=f"sqs-poller-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(wait_seconds=1)
            except Exception:
                self.errors += 1
                time.sleep(0.5)

    def poll_once(self, wait_seconds: int = 0) -> int:
        answer = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(self.source.batch_size, 10),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = answer.get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [self._record(m) for m in messages]}
        self.invocations += 1
        if self.crash_rate and random.random() < self.crash_rate:
            # Killed mid-batch: the first k records were processed (PagerDuty called, table
            # written), then the process died, so nothing is deleted and SQS redelivers it all.
            self.crashes += 1
            event["Records"] = event["Records"][: random.randint(0, len(messages) - 1)]
            if event["Records"]:
                self.handler(event, FakeLambdaContext(self.function.logical_id, timeout_seconds=self.function.timeout))
            return len(messages)
        try:
            result = self.handler(
                event, FakeLambdaContext(self.function.logical_id, timeout_seconds=self.function.timeout)
            )
        except Exception:
            self.errors += 1
            return len(messages)
        failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return len(messages)

    def _record(self, message: MessageTypeDef) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                name: {
                    "stringValue": attr.get("StringValue"),
                    "dataType": attr.get("DataType", "String"),
                    "stringListValues": [],
                    "binaryListValues": [],
                }
                for name, attr in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": REGION,
        }
