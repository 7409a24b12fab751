"""Reading template.yaml, so the local stack creates resources with the template's own properties.

In a checkout the local stack reads template.yaml itself (:func:`find_template`). An installed
package has no template.yaml: it carries what the stack reads from it, ``template.json`` beside this
module, generated from the template by ``python -m pdrelay.local.template`` (a test fails when it
is stale), and loads each function's handler from the package (:mod:`pdrelay.handlers`).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that keeps CloudFormation's short-form tags as their long forms."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node for !{suffix}", node.start_mark)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    attributes: dict[str, str]
    dead_letter_target: str | None = None
    max_receive_count: int | None = None


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    key_schema: list[dict[str, str]]
    attribute_definitions: list[dict[str, str]]
    billing_mode: str
    ttl_attribute: str | None
    global_secondary_indexes: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class SqsSource:
    queue: str
    batch_size: int
    batching_window_seconds: int
    max_concurrency: int
    report_batch_item_failures: bool


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: str  # e.g. "functions/ingest/": its handler is also pdrelay.handlers.ingest's
    handler: str
    timeout: int
    sqs_source: SqsSource | None = None
    root: Path | None = None  # the template's folder; None: the packaged spec, no checkout

    @property
    def code_dir(self) -> Path | None:
        return self.root / self.code_uri if self.root is not None else None

    @property
    def package_module(self) -> str:
        """The module in the package that holds this function's handler (see pdrelay.handlers)."""
        return f"pdrelay.handlers.{Path(self.code_uri).name}"

    def load_handler(self) -> Callable[[dict[str, Any], Any], Any]:
        """The function's handler in an execution environment of its own, as Lambda would load it.

        From the CodeUri when it is there (a checkout), else from :attr:`package_module`. The
        module that defines the handler is loaded afresh each time, even when the CodeUri's
        ``app.py`` only re-exports it from the package: its module-level state is then never
        shared by two concurrent invocations, as in Lambda.
        """
        module_name, _, attr = self.handler.rpartition(".")
        name = f"pdrelay_fn_{self.logical_id}"
        code = self.code_dir / f"{module_name.replace('.', '/')}.py" if self.code_dir is not None else None
        if code is not None and code.is_file():
            module = _fresh_module(name, code)
            handler: Callable[[dict[str, Any], Any], Any] = getattr(module, attr)
            defined_in = getattr(handler, "__module__", name)
            if defined_in == name:
                return handler
        else:
            defined_in = self.package_module
        spec = importlib.util.find_spec(defined_in)
        if spec is None or spec.origin is None:
            raise ImportError(f"{self.logical_id}: cannot find {defined_in}")
        handler = getattr(_fresh_module(name, Path(spec.origin)), attr)
        return handler


def _fresh_module(name: str, path: Path) -> ModuleType:
    """The module at ``path`` executed anew (not put in sys.modules: each call, a copy of its own)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class TemplateSpec:
    root: Path | None  # the template's folder; None: the packaged spec
    queues: dict[str, QueueSpec] = field(default_factory=dict)
    tables: dict[str, TableSpec] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        """What the local stack reads, as JSON (the packaged ``template.json``): no paths."""
        functions = {
            k: {n: v for n, v in dataclasses.asdict(f).items() if n != "root"} for k, f in self.functions.items()
        }
        return {
            "queues": {k: dataclasses.asdict(q) for k, q in self.queues.items()},
            "tables": {k: dataclasses.asdict(t) for k, t in self.tables.items()},
            "functions": functions,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any], root: Path | None = None) -> TemplateSpec:
        functions = {}
        for logical_id, function in doc["functions"].items():
            source = function.get("sqs_source")
            functions[logical_id] = FunctionSpec(
                **{**function, "sqs_source": SqsSource(**source) if source else None}, root=root
            )
        return cls(
            root=root,
            queues={k: QueueSpec(**q) for k, q in doc["queues"].items()},
            tables={k: TableSpec(**t) for k, t in doc["tables"].items()},
            functions=functions,
        )


PACKAGED_SPEC = Path(__file__).with_name("template.json")
TEMPLATE_NAME = "template.yaml"


def packaged_spec(path: Path = PACKAGED_SPEC) -> TemplateSpec:
    """What the local stack reads from template.yaml, as the package carries it."""
    return TemplateSpec.from_document(json.loads(path.read_text(encoding="utf-8")))


def find_template(start: Path) -> Path | None:
    """The template.yaml of the pdrelay checkout ``start`` is in (it or a folder above it), if any.

    A checkout is a folder holding both template.yaml and the package (layers/pdrelay/pdrelay):
    another project's template.yaml is not taken for pdrelay's.
    """
    for folder in (start, *start.parents):
        template = folder / TEMPLATE_NAME
        if template.is_file() and (folder / "layers" / "pdrelay" / "pdrelay").is_dir():
            return template
    return None


def load_template(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return doc


def _resolver(doc: dict[str, Any]) -> Callable[[Any], Any]:
    params = {name: spec.get("Default") for name, spec in (doc.get("Parameters") or {}).items()}

    def resolve(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in params:
            return params[value["Ref"]]
        return value

    return resolve


def read_spec(path: Path) -> TemplateSpec:
    doc = load_template(path)
    resolve = _resolver(doc)
    globals_fn = (doc.get("Globals") or {}).get("Function") or {}
    spec = TemplateSpec(root=path.parent)
    for logical_id, resource in (doc.get("Resources") or {}).items():
        kind = resource.get("Type")
        props = resource.get("Properties") or {}
        if kind == "AWS::SQS::Queue":
            attributes = {
                name: str(resolve(props[name]))
                for name in (
                    "VisibilityTimeout",
                    "MessageRetentionPeriod",
                    "DelaySeconds",
                    "ReceiveMessageWaitTimeSeconds",
                    "MaximumMessageSize",
                )
                if name in props
            }
            redrive = props.get("RedrivePolicy") or {}
            target = redrive.get("deadLetterTargetArn")
            spec.queues[logical_id] = QueueSpec(
                logical_id=logical_id,
                attributes=attributes,
                dead_letter_target=target["Fn::GetAtt"][0] if isinstance(target, dict) else None,
                max_receive_count=int(resolve(redrive["maxReceiveCount"])) if redrive else None,
            )
        elif kind == "AWS::DynamoDB::Table":
            ttl = props.get("TimeToLiveSpecification") or {}
            spec.tables[logical_id] = TableSpec(
                logical_id=logical_id,
                key_schema=props["KeySchema"],
                attribute_definitions=props["AttributeDefinitions"],
                billing_mode=props.get("BillingMode", "PAY_PER_REQUEST"),
                ttl_attribute=ttl.get("AttributeName") if ttl.get("Enabled") else None,
                global_secondary_indexes=props.get("GlobalSecondaryIndexes") or [],
            )
        elif kind == "AWS::Serverless::Function":
            source = None
            for event in (props.get("Events") or {}).values():
                if event.get("Type") != "SQS":
                    continue
                ev = event["Properties"]
                source = SqsSource(
                    queue=ev["Queue"]["Fn::GetAtt"][0],
                    batch_size=int(resolve(ev.get("BatchSize", 10))),
                    batching_window_seconds=int(resolve(ev.get("MaximumBatchingWindowInSeconds", 0))),
                    max_concurrency=int(resolve((ev.get("ScalingConfig") or {}).get("MaximumConcurrency", 2))),
                    report_batch_item_failures="ReportBatchItemFailures" in (ev.get("FunctionResponseTypes") or []),
                )
            spec.functions[logical_id] = FunctionSpec(
                logical_id=logical_id,
                code_uri=props["CodeUri"],
                root=path.parent,
                handler=props.get("Handler", globals_fn.get("Handler", "app.lambda_handler")),
                timeout=int(resolve(props.get("Timeout", globals_fn.get("Timeout", 3)))),
                sqs_source=source,
            )
    return spec


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the packaged spec from a checkout's template.yaml."""
    parser = argparse.ArgumentParser(prog="python -m pdrelay.local.template", description=main.__doc__)
    parser.add_argument("--template", type=Path, default=None, help="default: the checkout's, found from here")
    parser.add_argument("--check", action="store_true", help="exit 1 when the packaged spec is stale")
    args = parser.parse_args(argv)
    template = args.template or find_template(Path.cwd())
    if template is None:
        print("no pdrelay checkout here: pass --template", file=sys.stderr)
        return 2
    text = json.dumps(read_spec(template).document(), indent=1, sort_keys=True) + "\n"
    if args.check:
        current = PACKAGED_SPEC.read_text(encoding="utf-8") if PACKAGED_SPEC.is_file() else ""
        stale = current != text
        print(f"{PACKAGED_SPEC.name} is {'stale' if stale else 'up to date'} with {template}")
        return 1 if stale else 0
    PACKAGED_SPEC.write_text(text, encoding="utf-8")
    print(f"wrote {PACKAGED_SPEC} from {template}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
