"""AWS clients, created once per execution environment and passed in everywhere else.

boto3 honours ``AWS_ENDPOINT_URL``, which is how the local stack points these at moto.
Tests call :func:`clear_clients` (an autouse fixture does). The clients are typed with the
boto3-stubs packages (a development dependency, imported only for type checking).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient

Service = Literal["sqs", "dynamodb", "ssm", "secretsmanager"]
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10)


@overload
def client(service: Literal["sqs"]) -> SQSClient: ...
@overload
def client(service: Literal["dynamodb"]) -> DynamoDBClient: ...
@overload
def client(service: Literal["ssm"]) -> SSMClient: ...
@overload
def client(service: Literal["secretsmanager"]) -> SecretsManagerClient: ...
def client(service: Service) -> Any:
    """The one client of ``service`` in this process (threads asking at once get the same one)."""
    found = _CLIENTS.get(service)
    if found is None:
        with _LOCK:
            found = _CLIENTS.get(service)
            if found is None:
                found = _CLIENTS[service] = new_client(service)
    return found


def new_client(service: Service, **kwargs: Any) -> Any:
    """A new client with pdrelay's retry and timeout settings (``kwargs``: endpoint, credentials),
    from the process's one boto3 Session: a Session loads botocore's data files afresh (about
    100 ms a first client), so one per process is made and shared (creating clients from it is
    serialised: a Session is not safe to use from several threads at once)."""
    with _LOCK:
        return session().client(service, config=_CONFIG, **kwargs)


@cache
def session() -> boto3.session.Session:
    """The process's boto3 Session (the credentials and region of its environment)."""
    return boto3.session.Session()


_LOCK = threading.RLock()
_CLIENTS: dict[str, Any] = {}


def clear_clients() -> None:
    with _LOCK:
        _CLIENTS.clear()
        session.cache_clear()


def at_init(prepare: Callable[[], object]) -> None:
    """Run ``prepare`` while Lambda starts the execution environment (INIT), in Lambda only: the
    clients and the configuration it builds are then ready before the first invocation (and, with
    SnapStart or provisioned concurrency, before any request waits). Best effort: what fails here
    is met again, and answered, by the first invocation."""
    if not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return
    try:
        prepare()
    except Exception as exc:  # reported by the first invocation, which meets it again
        from pdrelay.observability import logger

        logger.warning("not prepared at start; the first invocation will", extra={"error": type(exc).__name__})
