"""The request body: its size, its content type and encoding (gzip inflated within a bound), and its
JSON, refused with the place of the problem when nested too deeply or holding an overlong string.

Base64 (API Gateway's ``isBase64Encoded``) is undone by the handler, before a request exists.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import replace
from typing import Any

from pdrelay.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from pdrelay.ingest.request import IncomingRequest
from pdrelay.models import without_lone_surrogates
from pdrelay.settings import Settings

MAX_DEPTH = 32

# Declared types that cannot carry JSON. Anything else is read as JSON, whatever it says: SNS posts
# text/plain, and curl without -H posts application/x-www-form-urlencoded.
NOT_JSON = (
    "multipart/",
    "image/",
    "audio/",
    "video/",
    "font/",
    "text/html",
    "text/xml",
    "application/xml",
    "application/pdf",
    "application/zip",
    "application/gzip",
)


def check_size(request: IncomingRequest, limit: int) -> None:
    if len(request.body) > limit:
        raise PayloadTooLarge(f"body is {len(request.body)} bytes; the limit is {limit} bytes")


def readable_body(request: IncomingRequest, settings: Settings) -> IncomingRequest:
    """The request with its body as JSON text: content type checked, gzip inflated within bounds."""
    check_size(request, settings.max_body_bytes)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media.startswith(NOT_JSON) or (media.endswith("+xml")):
        raise UnsupportedMediaType(
            f"content type {media[:100]!r} is not JSON",
            ["send the monitor's JSON payload (application/json; text/plain is read as JSON too, as SNS sends it)"],
        )
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return request
    if encoding not in ("gzip", "x-gzip"):
        raise UnsupportedMediaType(f"content encoding {encoding[:50]!r} is not supported", ["send gzip or no encoding"])
    return replace(request, body=inflate(request.body, settings.max_inflated_bytes))


def inflate(body: bytes, limit: int) -> bytes:
    """A gzip body inflated (every member: RFC 1952 allows several), refusing more than ``limit``
    bytes of output (a gzip bomb stops there) and anything after the last member."""
    out = bytearray()
    rest = body
    while True:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise BadRequest("body is not valid gzip", [str(exc)[:200]]) from exc
        if len(out) > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"the gzip body inflates past {limit} bytes", ["send less, or split it"])
        if not inflater.eof:
            raise BadRequest("body is not valid gzip", ["the gzip stream ends early"])
        rest = inflater.unused_data
        if not rest:
            return bytes(out)


def decode_json(body: bytes, max_string_chars: int = 65536) -> Any:
    """The body's JSON document (UTF-8, a BOM allowed), or a BadRequest that says what and where."""
    if not body.strip():
        raise BadRequest("empty body", ["send the monitor's JSON payload as the request body"])
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest("body is not UTF-8 text", [f"invalid byte at position {exc.start}"]) from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest("malformed JSON", [f"{exc.msg} at line {exc.lineno} column {exc.colno}"]) from exc
    except RecursionError as exc:
        raise BadRequest("malformed JSON", [f"nested deeper than {MAX_DEPTH} levels"]) from exc
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise BadRequest("malformed JSON", [str(exc)[:200]]) from exc
    problem = _shape_problem(doc, max_string_chars)
    if problem:
        raise BadRequest(*problem)
    if "\\ud" in text.lower():
        doc = without_lone_surrogates(doc)
    return doc


def _shape_problem(doc: Any, max_chars: int) -> tuple[str, list[str]] | None:
    """Nesting past :data:`MAX_DEPTH`, or a string (or key) over ``max_chars``: why, and where.
    The walk keeps no paths (it runs on every body); the place is found only for a refused one."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, str):
            if len(node) > max_chars:
                return "a string is too long", [
                    f"{_path_to(doc, node) or '(body)'}: {len(node)} characters; the limit is {max_chars}"
                ]
        elif isinstance(node, dict):
            if level > MAX_DEPTH:
                return "JSON nested too deeply", [f"the limit is {MAX_DEPTH} levels"]
            for key, child in node.items():
                if len(key) > max_chars:
                    return "a key is too long", [
                        f"{_path_to(doc, key)}…: {len(key)} characters; the limit is {max_chars}"
                    ]
                stack.append((child, level + 1))
        elif isinstance(node, list):
            if level > MAX_DEPTH:
                return "JSON nested too deeply", [f"the limit is {MAX_DEPTH} levels"]
            stack.extend((child, level + 1) for child in node)
    return None


def _path_to(doc: Any, target: str) -> str:
    """Where ``target`` (a value or a key, by identity) sits in ``doc``, e.g. ``alerts[0].summary``."""
    stack: list[tuple[Any, str]] = [(doc, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            for key, child in node.items():
                where = f"{path}.{key[:40]}" if path else key[:40]
                if key is target or child is target:
                    return where
                stack.append((child, where))
        elif isinstance(node, list):
            for i, child in enumerate(node):
                if child is target:
                    return f"{path}[{i}]"
                stack.append((child, f"{path}[{i}]"))
    return ""
