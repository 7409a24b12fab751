"""Reading template.yaml, so the local stack creates resources with the template's own properties."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
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
    code_dir: Path
    handler: str
    timeout: int
    sqs_source: SqsSource | None = None

    def load_handler(self) -> Callable[[dict[str, Any], Any], Any]:
        """Import the function's module from its CodeUri, as Lambda would."""
        module_name, _, attr = self.handler.rpartition(".")
        path = self.code_dir / f"{module_name.replace('.', '/')}.py"
        spec = importlib.util.spec_from_file_location(f"pdrelay_fn_{self.logical_id}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        handler: Callable[[dict[str, Any], Any], Any] = getattr(module, attr)
        return handler


@dataclass
class TemplateSpec:
    root: Path
    queues: dict[str, QueueSpec] = field(default_factory=dict)
    tables: dict[str, TableSpec] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)


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
                code_dir=path.parent / props["CodeUri"],
                handler=props.get("Handler", globals_fn.get("Handler", "app.lambda_handler")),
                timeout=int(resolve(props.get("Timeout", globals_fn.get("Timeout", 3)))),
                sqs_source=source,
            )
    return spec
