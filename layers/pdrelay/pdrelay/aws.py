"""AWS clients, created once per execution environment and passed in everywhere else.

boto3 honours ``AWS_ENDPOINT_URL``, which is how the local stack points these at moto.
Tests call :func:`clear_clients` (an autouse fixture does).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10)


@cache
def client(service: str) -> Any:
    return boto3.session.Session().client(service, config=_CONFIG)  # type: ignore[call-overload]


def clear_clients() -> None:
    client.cache_clear()
