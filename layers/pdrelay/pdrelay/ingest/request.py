"""What every ingest endpoint takes: the request as it arrived, and what it works with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from pdrelay.config import RelayConfig
from pdrelay.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True)
class IncomingRequest:
    body: bytes
    request_id: str
    received_at: datetime
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Deps:
    settings: Settings
    config: RelayConfig
    sqs: SQSClient
    dynamodb: DynamoDBClient | None = None  # for rate limits, replay protection and probes; None turns them off
