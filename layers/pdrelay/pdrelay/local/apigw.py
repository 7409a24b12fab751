"""API Gateway (HTTP API), locally: an HTTP server that turns each request into the payload format
2.0 event API Gateway would build (:func:`api_gateway_event`), invokes the ingest handler with it,
and answers with what the handler returned. It also serves the API's OpenAPI document.

As API Gateway does, it refuses bodies over 10 MB before the handler sees them, answers 500 when
the handler itself fails, and base64-encodes bodies that are not text.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlparse

import yaml

from pdrelay.local.runtime import FakeLambdaContext

API_GATEWAY_MAX_BODY = 10 * 1024 * 1024
TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
)
OPENAPI_TYPES = {"/openapi.yaml": "application/yaml", "/openapi.json": "application/json"}


def api_gateway_event(
    method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str = "127.0.0.1"
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event, as API Gateway builds it."""
    url = urlparse(raw_path)
    content_type = headers.get("content-type", "")
    is_text = not body or content_type.startswith(TEXT_TYPES) or not content_type
    try:
        text = body.decode("utf-8") if is_text else None
    except UnicodeDecodeError:
        text = None
    query: dict[str, str] = {}
    for key, value in parse_qsl(url.query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    now = datetime.now(UTC)
    request_id = base64.b32encode(uuid.uuid4().bytes[:10]).decode().rstrip("=")
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": url.path,
        "rawQueryString": url.query,
        "headers": headers,
        "queryStringParameters": query or None,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "http": {
                "method": method,
                "path": url.path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": text if text is not None else base64.b64encode(body).decode(),
        "isBase64Encoded": text is None,
    }


class _ApiHandler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # see emulator._Handler

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        if self.command == "GET" and urlparse(self.path).path in OPENAPI_TYPES:
            self._openapi(urlparse(self.path).path)
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > API_GATEWAY_MAX_BODY:
            self._reply(413, {"message": "Request Entity Too Large"})
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        event = api_gateway_event(self.command, self.path, headers, body, self.client_address[0])
        context = FakeLambdaContext("IngestFunction", timeout_seconds=10)
        try:
            answer = self.server.ingest(event, context)
        except Exception:
            self._reply(500, {"message": "Internal Server Error"})
            return
        data = answer.get("body") or ""
        raw = base64.b64decode(data) if answer.get("isBase64Encoded") else data.encode()
        self.send_response(int(answer.get("statusCode", 200)))
        for key, value in (answer.get("headers") or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _openapi(self, path: str) -> None:
        """The API's OpenAPI document (docs/openapi.yaml), as YAML or as JSON: not a Lambda route."""
        source = self.server.openapi
        if source is None or not source.is_file():
            where = f"at {source}" if source else "in this install (docs/openapi.yaml in pdrelay's repository)"
            self._reply(404, {"message": f"no OpenAPI document {where}"})
            return
        text = source.read_text(encoding="utf-8")
        data = (json.dumps(yaml.safe_load(text)) if path.endswith(".json") else text).encode()
        self.send_response(200)
        self.send_header("Content-Type", OPENAPI_TYPES[path])
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, ingest: Callable[[dict[str, Any], Any], dict[str, Any]], host: str, port: int, openapi: Path | None = None
    ) -> None:
        super().__init__((host, port), _ApiHandler)
        self.ingest = ingest
        self.openapi = openapi  # served at GET /openapi.yaml and /openapi.json
