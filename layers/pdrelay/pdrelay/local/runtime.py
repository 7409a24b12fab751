"""What Lambda gives a handler, locally: an execution environment per concurrent invocation
(:class:`HandlerPool`) and a context object (:class:`FakeLambdaContext`)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pdrelay.local.template import FunctionSpec

REGION = "us-east-1"

Handler = Callable[[dict[str, Any], Any], Any]  # a function's ``lambda_handler(event, context)``


@dataclass
class FakeLambdaContext:
    function_name: str
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timeout_seconds: int = 30

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000


class HandlerPool:
    """Execution environments for one function, as Lambda keeps them: each invocation gets an
    environment of its own (the handler module loaded afresh when none is free), so module-level
    state is never shared by concurrent calls."""

    def __init__(self, function: FunctionSpec) -> None:
        self.function = function
        self._free: list[Handler] = []
        self._lock = threading.Lock()
        self.environments = 0

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        with self._lock:
            handler = self._free.pop() if self._free else None
        if handler is None:
            handler = self.function.load_handler()
            with self._lock:
                self.environments += 1
        try:
            return handler(event, context)
        finally:
            with self._lock:
                self._free.append(handler)
