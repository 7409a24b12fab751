"""Amazon CloudWatch alarms, in every way they arrive.

User documentation: docs/senders/cloudwatch.md.

Shapes, told apart by their keys: the SNS envelope (``Type``, ``MessageId``, ``TopicArn``,
``Message``, ``Timestamp``, ``Signature``...) with the alarm as a JSON *string* in ``Message``;
the alarm itself (raw message delivery); EventBridge "CloudWatch Alarm State Change" events
(``detail``); and the alarm Lambda action event (``alarmData``). SNS confirmations are visited in
``Parsed.after``, so only once the request has been accepted.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, Literal, cast
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from pdrelay.errors import BadRequest, Unauthorized, UpstreamError
from pdrelay.formats import ParseContext, Parsed
from pdrelay.formats._common import SEVERITY_WORDS, compact, links, listed, obj, summary, text
from pdrelay.models import Action, Alert, Severity, without_lone_surrogates
from pdrelay.timeutil import iso, parse_time

NAME = "cloudwatch"
DETECT_ORDER = 25
REPLAY_BY_BODY = True  # every notification carries its own state-change time

SNS_TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
EVENTBRIDGE_TYPE = "CloudWatch Alarm State Change"
ARN = re.compile(r"^arn:aws[a-z-]*:(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):(?P<account>\d*):(?P<rest>.*)$")
SEVERITY_MARKER = re.compile(r"^\s*(?:severity\s*[:=]\s*(\w+)|\[(\w+)\])", re.IGNORECASE)


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    insufficient_data: Literal["ignore", "trigger", "resolve"] = Field(
        "ignore", description="What INSUFFICIENT_DATA does: nothing (answered only), page, or resolve."
    )
    severity: Literal["critical", "error", "warning", "info"] = Field(
        "error", description="Severity of alarms whose description names none."
    )
    verify_signatures: bool = Field(True, description="Check SNS message signatures (versions 1 and 2).")


def detect(doc: Any, headers: Mapping[str, str]) -> bool:
    if not isinstance(doc, dict):
        return False
    if headers.get("x-amz-sns-message-type") in SNS_TYPES:
        return True
    return (
        (doc.get("Type") in SNS_TYPES and "TopicArn" in doc)
        or doc.get("detail-type") == EVENTBRIDGE_TYPE
        or (doc.get("source") == "aws.cloudwatch" and isinstance(doc.get("alarmData"), dict))
        or ("AlarmName" in doc and "NewStateValue" in doc)
    )


# ---- SNS: signatures and subscription confirmation ------------------------------------------------


def _sns_url(value: object, what: str) -> str:
    url = text(value) or ""
    try:
        parts = urlsplit(url)
        scheme, host, port = parts.scheme, parts.hostname or "", parts.port
    except ValueError:  # an unclosed IPv6 bracket, a port out of range
        scheme, host, port = "", "", -1
    if scheme != "https" or not SNS_HOST.fullmatch(host) or port not in (None, 443):
        raise BadRequest(
            f"SNS {what} is not an HTTPS URL of Amazon SNS",
            [f"{what}: expected https://sns.<region>.amazonaws.com/..."],
        )
    return url


def _fetch_certificate(url: str) -> bytes:
    import requests

    try:
        answer = requests.get(url, timeout=5)
        answer.raise_for_status()
    except requests.RequestException as exc:
        raise UpstreamError(f"could not fetch the SNS signing certificate ({type(exc).__name__}); retry") from exc
    return answer.content


def _visit_subscribe_url(url: str) -> None:
    import requests

    try:
        requests.get(url, timeout=5).raise_for_status()
    except requests.RequestException as exc:
        raise UpstreamError(f"could not confirm the SNS subscription ({type(exc).__name__}); retry") from exc


# Replaced in tests: no test talks to AWS.
fetch_certificate: Callable[[str], bytes] = _fetch_certificate
visit_subscribe_url: Callable[[str], None] = _visit_subscribe_url

_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}


def string_to_sign(doc: Mapping[str, Any]) -> bytes:
    """SNS's canonical form: each present field's name and value, one per line, in its fixed order."""
    lines = []
    for name in _SIGNED_FIELDS.get(str(doc.get("Type")), ()):
        value = doc.get(name)
        if value is None:
            continue  # only Subject is optional
        lines.append(f"{name}\n{value}\n")
    return "".join(lines).encode("utf-8")


@lru_cache(maxsize=16)
def _public_key(url: str) -> Any:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(fetch_certificate(url)).public_key()
    except ValueError as exc:
        raise BadRequest("the SNS signing certificate could not be read") from exc


def verify_signature(doc: Mapping[str, Any]) -> None:
    """Raise :class:`Unauthorized` unless ``doc`` carries a valid SNS signature."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    version = str(doc.get("SignatureVersion") or "")
    algorithm: hashes.HashAlgorithm
    if version == "1":
        algorithm = hashes.SHA1()  # noqa: S303 - SNS signature version 1 is SHA1withRSA by definition
    elif version == "2":
        algorithm = hashes.SHA256()
    else:
        raise Unauthorized(
            "SNS message signature missing or of an unknown version", ["SignatureVersion: expected 1 or 2"]
        )
    url = _sns_url(doc.get("SigningCertURL"), "SigningCertURL")
    try:
        signature = base64.b64decode(str(doc.get("Signature") or ""), validate=True)
    except binascii.Error:
        raise Unauthorized("SNS message signature is not base64") from None
    key = _public_key(url)
    if not isinstance(key, rsa.RSAPublicKey):
        raise Unauthorized("the SNS signing certificate has no RSA key")
    try:
        key.verify(signature, string_to_sign(doc), padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise Unauthorized(
            "SNS message signature does not match", ["the message was altered, or was not signed by Amazon SNS"]
        ) from None


def _sns(doc: dict[str, Any], headers: Mapping[str, str], ctx: ParseContext, options: Options) -> Parsed:
    kind = doc.get("Type")
    declared = headers.get("x-amz-sns-message-type")
    if declared and declared != kind:
        raise BadRequest(
            "SNS message type header and body disagree", [f"x-amz-sns-message-type is {declared!r}, Type is {kind!r}"]
        )
    if options.verify_signatures:
        verify_signature(doc)
    topic = text(doc.get("TopicArn")) or "?"
    if kind == "SubscriptionConfirmation":
        url = _sns_url(doc.get("SubscribeURL"), "SubscribeURL")
        return Parsed(
            notes=[f"SNS subscription to {topic} confirmed; nobody paged"], after=[lambda: visit_subscribe_url(url)]
        )
    if kind == "UnsubscribeConfirmation":
        return Parsed(notes=[f"SNS unsubscribe confirmation for {topic} noted; nothing done"])
    raw = doc.get("Message")
    try:
        alarm = without_lone_surrogates(json.loads(raw)) if isinstance(raw, str) else None
    except (ValueError, RecursionError):
        alarm = None
    if not isinstance(alarm, dict) or "AlarmName" not in alarm:
        raise BadRequest(
            "the SNS message is not a CloudWatch alarm",
            ["Message: expected the JSON of a CloudWatch alarm state change"],
        )
    return _from_sns_alarm(alarm, ctx, options, topic_region=_arn_part(topic, "region"))


# ---- The alarm, whatever its envelope --------------------------------------------------------------


def _arn_part(arn: object, part: str) -> str:
    match = ARN.match(text(arn) or "")
    return match.group(part) if match else ""


def _console_link(region: str, name: str) -> str | None:
    if not region or not name:
        return None
    return f"https://console.aws.amazon.com/cloudwatch/home?region={region}#alarmsV2:alarm/{quote(name, safe='')}"


def _dimensions(value: Any) -> dict[str, str]:
    """Dimensions as name → value, from SNS's list of {name, value} or EventBridge's mapping."""
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items() if v is not None}
    found: dict[str, str] = {}
    for item in value if isinstance(value, list) else []:
        if isinstance(item, Mapping):
            name, val = text(item.get("name") or item.get("Name")), text(item.get("value") or item.get("Value"))
            if name and val:
                found[name] = val
    return found


def _metrics(items: Any) -> list[dict[str, Any]]:
    """The metrics and expressions of a metric-math or anomaly-detection alarm, flattened."""
    found = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        item = {str(k)[:1].lower() + str(k)[1:]: v for k, v in item.items()}  # SNS: Id, MetricStat...
        stat = obj(item.get("metricStat"))
        stat = {str(k)[:1].lower() + str(k)[1:]: v for k, v in stat.items()}
        metric = obj(stat.get("metric"))
        metric = {str(k)[:1].lower() + str(k)[1:]: v for k, v in metric.items()}
        found.append(
            compact(
                {
                    "id": text(item.get("id")),
                    "expression": text(item.get("expression")),
                    "label": text(item.get("label")),
                    "namespace": text(metric.get("namespace")),
                    "metric": text(metric.get("name") or metric.get("metricName")),
                    "dimensions": _dimensions(metric.get("dimensions")),
                    "stat": text(stat.get("stat")),
                    "period": stat.get("period") if isinstance(stat.get("period"), int) else None,
                    "returnData": item.get("returnData") if isinstance(item.get("returnData"), bool) else None,
                }
            )
        )
    return found


def _severity(description: str | None, options: Options) -> Severity:
    match = SEVERITY_MARKER.match(description or "")
    word = (match.group(1) or match.group(2)).lower() if match else ""
    return cast(Severity, SEVERITY_WORDS.get(word, options.severity))


def _reason_data(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return without_lone_surrogates(json.loads(value))
        except (ValueError, RecursionError):
            return value
    return value


def _alarm(
    *,
    name: str,
    arn: str,
    account: str,
    region: str,
    state: str,
    reason: str | None,
    reason_data: Any,
    changed_at: Any,
    previous: str | None,
    description: str | None,
    namespace: str | None,
    metric: str | None,
    dimensions: dict[str, str],
    metrics: list[dict[str, Any]],
    extra: dict[str, Any],
    ctx: ParseContext,
    options: Options,
) -> Parsed:
    state = state.upper()
    action: Action
    if state == "ALARM":
        action = "trigger"
    elif state == "OK":
        action = "resolve"
    elif state == "INSUFFICIENT_DATA" and options.insufficient_data != "ignore":
        action = "trigger" if options.insufficient_data == "trigger" else "resolve"
    elif state == "INSUFFICIENT_DATA":
        return Parsed(
            notes=[f"alarm {name!r} is INSUFFICIENT_DATA: not paged (route policy insufficient_data: ignore)"]
        )
    else:
        raise BadRequest(
            "unknown CloudWatch alarm state", [f"state: {state!r}, expected ALARM, OK or INSUFFICIENT_DATA"]
        )
    identity = arn or f"arn:aws:cloudwatch:{region or 'unknown-region'}:{account or 'unknown-account'}:alarm:{name}"
    occurred = parse_time(changed_at) or ctx.received_at
    where = ", ".join(f"{k}={v}" for k, v in sorted(dimensions.items()))
    math_metrics = sorted({m["metric"] for m in metrics if m.get("metric")})
    lines = [line.strip() for line in SEVERITY_MARKER.sub("", description or "", count=1).splitlines()]
    headline = next((line for line in lines if line), "")
    details = compact(
        {
            "alarm": name,
            "state": state,
            "previous_state": previous,
            "reason": reason,
            "reason_data": reason_data,
            "description": description,
            "state_changed_at": iso(occurred),
            "namespace": namespace,
            "metric": metric,
            "dimensions": dimensions,
            "metrics": metrics,
            "alarm_arn": arn or None,
            "account": account,
            "region": region,
            **extra,
        }
    )
    return Parsed(
        alerts=[
            Alert(
                format=NAME,
                identity=identity,
                action=action,
                occurred_at=occurred,
                summary=summary(
                    headline and f"{headline} ({name}: {state})",
                    f"{name} is in {state}: {reason or ''}",
                    fallback=f"CloudWatch alarm {name} is in {state}",
                ),
                source=where or name,
                severity=_severity(description, options),
                timestamp=occurred,
                component=namespace,
                group="/".join(p for p in (account, region) if p) or None,
                class_=metric or (", ".join(math_metrics) if math_metrics else None),
                custom_details=details,
                links=links((_console_link(region, name), "CloudWatch alarm")),
                client="Amazon CloudWatch",
                client_url=_console_link(region, name),
            )
        ]
    )


def _from_sns_alarm(alarm: dict[str, Any], ctx: ParseContext, options: Options, topic_region: str = "") -> Parsed:
    name = text(alarm.get("AlarmName")) or "unnamed alarm"
    arn = text(alarm.get("AlarmArn")) or ""
    trigger = obj(alarm.get("Trigger"))
    region = _arn_part(arn, "region") or topic_region or text(alarm.get("Region")) or ""
    return _alarm(
        name=name,
        arn=arn,
        account=text(alarm.get("AWSAccountId")) or _arn_part(arn, "account"),
        region=region,
        state=text(alarm.get("NewStateValue")) or "",
        reason=text(alarm.get("NewStateReason")),
        reason_data=None,
        changed_at=alarm.get("StateChangeTime"),
        previous=text(alarm.get("OldStateValue")),
        description=text(alarm.get("AlarmDescription")),
        namespace=text(trigger.get("Namespace")),
        metric=text(trigger.get("MetricName")),
        dimensions=_dimensions(trigger.get("Dimensions")),
        metrics=_metrics(trigger.get("Metrics")),
        extra=compact(
            {
                "threshold": trigger.get("Threshold"),
                "comparison": text(trigger.get("ComparisonOperator")),
                "statistic": text(trigger.get("Statistic")) or text(trigger.get("ExtendedStatistic")),
                "period": trigger.get("Period"),
                "evaluation_periods": trigger.get("EvaluationPeriods"),
                "threshold_metric": text(trigger.get("ThresholdMetricId")),
                "alarm_rule": text(alarm.get("AlarmRule")),  # composite alarms
                "region_name": text(alarm.get("Region")),
            }
        ),
        ctx=ctx,
        options=options,
    )


def _from_state_change(
    body: dict[str, Any], *, arn: str, account: str, region: str, ctx: ParseContext, options: Options
) -> Parsed:
    """EventBridge's ``detail`` and the Lambda action's ``alarmData`` share one shape."""
    state = obj(body.get("state"))
    previous = obj(body.get("previousState"))
    config = obj(body.get("configuration"))
    metrics = _metrics(config.get("metrics"))
    single = metrics[0] if len(metrics) == 1 and "expression" not in metrics[0] else {}
    return _alarm(
        name=text(body.get("alarmName")) or _arn_part(arn, "rest").removeprefix("alarm:") or "unnamed alarm",
        arn=arn,
        account=account,
        region=region,
        state=text(state.get("value")) or "",
        reason=text(state.get("reason")),
        reason_data=_reason_data(state.get("reasonData")),
        changed_at=state.get("timestamp"),
        previous=text(previous.get("value")),
        description=text(config.get("description")),
        namespace=single.get("namespace"),
        metric=single.get("metric"),
        dimensions=single.get("dimensions", {}),
        metrics=metrics if not single else [],
        extra=compact({"alarm_rule": text(config.get("alarmRule"))}),
        ctx=ctx,
        options=options,
    )


def parse(doc: Any, context: ParseContext) -> Parsed:
    options = context.options if isinstance(context.options, Options) else Options()
    if not isinstance(doc, dict):
        raise BadRequest("a CloudWatch payload is a JSON object", ["body: expected an object"])
    if "AlarmName" in doc and "Type" not in doc:
        # SNS raw message delivery (x-amz-sns-rawdelivery: true): the alarm itself, which carries no
        # signature to check; the caller's credentials are the only proof of origin.
        return _from_sns_alarm(doc, context, options)
    if doc.get("Type") in SNS_TYPES or context.headers.get("x-amz-sns-message-type"):
        return _sns(doc, context.headers, context, options)
    if doc.get("detail-type") == EVENTBRIDGE_TYPE and isinstance(doc.get("detail"), dict):
        resources = listed(doc.get("resources"))
        arn = next((r for r in resources if isinstance(r, str) and ":alarm:" in r), "")
        return _from_state_change(
            doc["detail"],
            arn=arn,
            account=text(doc.get("account")) or _arn_part(arn, "account"),
            region=text(doc.get("region")) or _arn_part(arn, "region"),
            ctx=context,
            options=options,
        )
    if isinstance(doc.get("alarmData"), dict):
        arn = text(doc.get("alarmArn")) or ""
        return _from_state_change(
            doc["alarmData"],
            arn=arn,
            account=text(doc.get("accountId")) or _arn_part(arn, "account"),
            region=text(doc.get("region")) or _arn_part(arn, "region"),
            ctx=context,
            options=options,
        )
    raise BadRequest(
        "not a CloudWatch alarm payload",
        [
            "expected an SNS message, an EventBridge 'CloudWatch Alarm State Change' event, "
            "or a CloudWatch alarm Lambda action event"
        ],
    )
