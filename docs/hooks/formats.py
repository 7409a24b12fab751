"""mkdocs hook: what a sender page says about its format's code is read from the code.

A sender page writes ``<!-- pdrelay:format NAME -->`` where the format's facts belong (its endpoint,
whether ``auto`` detects it, whether an identical body is a retry) and ``<!-- pdrelay:options NAME -->``
where its per-route options are listed (name, values, default and description, from the module's
``Options`` model). A fix to an option's default or description then lands once, in the module.
``<!-- pdrelay:severity-words -->`` lists the words formats read as each severity, and
``<!-- pdrelay:template-parameters -->`` the stack's parameters, from template.yaml, and
``<!-- pdrelay:replay-formats -->`` which formats' identical bodies are a sender's retry and which
keep ingest's replay protection (each module's ``REPLAY_BY_BODY``).
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from mkdocs.exceptions import PluginError
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from pdrelay import formats
from pdrelay.formats._common import SEVERITY_WORDS as SEVERITY_WORD_MAP

MARKER = re.compile(r"^<!-- pdrelay:(format|options) ([a-z0-9_]+) -->$", re.M)
SEVERITY_WORDS = "<!-- pdrelay:severity-words -->"
TEMPLATE_PARAMETERS = "<!-- pdrelay:template-parameters -->"
REPLAY_FORMATS = "<!-- pdrelay:replay-formats -->"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    markdown = markdown.replace(SEVERITY_WORDS, _severity_words())
    if REPLAY_FORMATS in markdown:
        markdown = markdown.replace(REPLAY_FORMATS, _replay_formats())
    if TEMPLATE_PARAMETERS in markdown:
        markdown = markdown.replace(TEMPLATE_PARAMETERS, _template_parameters(Path(config.config_file_path).parent))

    def render(found: re.Match[str]) -> str:
        kind, name = found.groups()
        if name not in formats.names():
            known = ", ".join(formats.names())
            raise PluginError(f"{page.file.src_uri}: no format named {name!r} (known: {known})")
        fmt = formats.get(name)
        return _facts(fmt) if kind == "format" else _options(fmt)

    return MARKER.sub(render, markdown)


def _facts(fmt: formats.Format) -> str:
    name = fmt.name
    detected = (
        "no: name it in the URL"
        if fmt.detect_order >= formats.MANUAL_ONLY
        else "yes: `/v1/alerts/auto` recognises it and says so in the answer"
    )
    replay = (
        "a sender's retry: queued again, and the dispatcher skips its events as already applied "
        "(see [replays](../http-api.md#replays))"
        if fmt.replay_by_body
        else "a new notification (this format's notifications do not all carry their own times; "
        "an explicit delivery id makes it a replay)"
    )
    lines = [
        f"- **Endpoint**: `POST /v1/alerts/{name}?route=<route>`",
        f"- **Detected by `auto`**: {detected}",
        f"- **The same body again within the replay window**: {replay}",
        "",
    ]
    return "\n".join(lines)


def _replay_formats() -> str:
    """Which formats' identical bodies the dispatcher tells apart, and which ingest guards."""
    by_body = [f"[{f.name}](senders/{f.name}.md)" for f in formats.registry().values() if f.replay_by_body]
    guarded = [f"[{f.name}](senders/{f.name}.md)" for f in formats.registry().values() if not f.replay_by_body]
    return "\n".join(
        [
            "| | formats |",
            "|---|---|",
            f"| every notification carries its own times: nothing written at ingest | {', '.join(sorted(by_body))} |",
            f"| guarded at ingest when the request carries an explicit id | {', '.join(sorted(guarded))} |",
        ]
    )


def _severity_words() -> str:
    """The words formats map to PagerDuty's four severities (``formats._common.SEVERITY_WORDS``)."""
    by_severity: dict[str, list[str]] = {}
    for word, severity in SEVERITY_WORD_MAP.items():
        by_severity.setdefault(severity, []).append(f"`{word}`")
    lines = ["| severity | words (in any case) |", "|---|---|"]
    lines += [f"| `{severity}` | {', '.join(words)} |" for severity, words in by_severity.items()]
    return "\n".join(lines)


class _TemplateLoader(yaml.SafeLoader):
    """template.yaml with CloudFormation's short tags (``!Ref``, ``!Sub``...) read as plain values."""


_TemplateLoader.add_multi_constructor("!", lambda loader, tag, node: None)


def _template_parameters(root: Path) -> str:
    template = yaml.load((root / "template.yaml").read_text(encoding="utf-8"), Loader=_TemplateLoader)  # noqa: S506
    lines = ["| parameter | default | meaning |", "|---|---|---|"]
    for name, spec in template["Parameters"].items():
        default = spec.get("Default")
        shown = f"`{default}`" if default not in (None, "") else "(none)"
        lines.append(f"| `{name}` | {shown} | {_escape(' '.join(str(spec.get('Description', '')).split()))} |")
    return "\n".join(lines)


def _options(fmt: formats.Format) -> str:
    name = fmt.name
    if fmt.options is None:
        return f"Format `{name}` takes no per-route options.\n"
    lines = [
        f"Per-route options, under `routes.<route>.formats.{name}` in the [configuration](../configuration.md),"
        " checked when it loads:",
        "",
        "| option | values | default | what it does |",
        "|---|---|---|---|",
    ]
    for field_name, field in fmt.options.model_fields.items():
        lines.append(
            f"| `{field.alias or field_name}` | {_values(field.annotation)} | {_default(field)} "
            f"| {_escape(field.description or '')} |"
        )
    return "\n".join([*lines, ""])


def _values(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is typing.Literal:
        return ", ".join(f"`{value}`" for value in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_values(a) for a in args)
    if origin is list:
        return f"a list of {_values(args[0])}"
    if origin is dict:
        return "a mapping"
    if annotation is bool:
        return "`true`, `false`"
    if annotation is SecretStr:
        return "text (a secret: never logged)"
    if annotation in (str,):
        return "text"
    if annotation in (int, float):
        return "a number"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a mapping"
    return _escape(str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return "`[" + ", ".join(str(v) for v in value) + "]`" if value else "`[]`"
    if isinstance(value, dict):
        return "`{}`" if not value else f"`{value}`"
    return f"`{value}`"  # a table cell's code span may hold a pipe


def _escape(text: str) -> str:
    """Plain text for a table cell: a pipe would end the cell, and ``<name>`` would read as HTML."""
    return text.replace("|", "\\|").replace("<", "&lt;")
