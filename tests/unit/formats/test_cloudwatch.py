"""CloudWatch alarms by SNS, EventBridge and the Lambda action; SNS signatures and subscriptions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pdrelay import formats
from pdrelay.errors import BadRequest, Unauthorized
from pdrelay.formats import ParseContext, cloudwatch
from tests import sns_signing
from tests.formats_harness import RECEIVED, load_case

VERIFIED = ParseContext(received_at=RECEIVED, options=cloudwatch.Options())
UNVERIFIED = ParseContext(received_at=RECEIVED, options=cloudwatch.Options(verify_signatures=False))


@pytest.fixture(autouse=True)
def _sns_certificate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cloudwatch, "fetch_certificate", sns_signing.fetch)
    cloudwatch._public_key.cache_clear()


def envelope(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = load_case("cloudwatch", name).doc
    return doc


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_notification_is_verified_with_either_signature_version(version: str) -> None:
    (alert,) = cloudwatch.parse(sns_signing.sign(envelope("sns-alarm"), version), VERIFIED).alerts
    assert alert.action == "trigger"


@pytest.mark.parametrize("field", ["Message", "MessageId", "Timestamp", "TopicArn", "Subject"])
def test_any_altered_signed_field_is_refused(field: str) -> None:
    doc = sns_signing.sign(envelope("sns-alarm"))
    doc[field] = doc[field] + " " if field != "Message" else doc[field].replace("ALARM", "OK")
    with pytest.raises(Unauthorized, match="does not match"):
        cloudwatch.parse(doc, VERIFIED)


def test_unsigned_or_unknown_versions_are_refused_when_verification_is_on() -> None:
    doc = sns_signing.sign(envelope("sns-alarm"))
    with pytest.raises(Unauthorized, match="unknown version"):
        cloudwatch.parse({**doc, "SignatureVersion": "3"}, VERIFIED)
    with pytest.raises(Unauthorized, match="base64"):
        cloudwatch.parse({**doc, "Signature": "not base64 at all!"}, VERIFIED)


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.eu-west-1.amazonaws.com/cert.pem",  # not HTTPS
        "https://sns.eu-west-1.amazonaws.com.evil.example/c.pem",  # lookalike host
        "https://evil.example/sns.eu-west-1.amazonaws.com.pem",
        "https://sns.eu-west-1.amazonaws.com:8443/cert.pem",  # odd port
        "https://user@sns-eu-west-1.amazonaws.com/cert.pem",
    ],
)
def test_a_certificate_outside_sns_is_never_fetched(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_url: str) -> bytes:
        raise AssertionError("fetched")

    monkeypatch.setattr(cloudwatch, "fetch_certificate", refuse)
    doc = {**sns_signing.sign(envelope("sns-alarm")), "SigningCertURL": url}
    with pytest.raises(BadRequest, match="not an HTTPS URL of Amazon SNS"):
        cloudwatch.parse(doc, VERIFIED)


def test_a_subscription_is_confirmed_only_after_acceptance_and_pages_no_one(monkeypatch: pytest.MonkeyPatch) -> None:
    visited: list[str] = []
    monkeypatch.setattr(cloudwatch, "visit_subscribe_url", visited.append)
    parsed = cloudwatch.parse(sns_signing.sign(envelope("sns-subscription-confirmation"), "2"), VERIFIED)
    assert parsed.alerts == [] and "confirmed" in parsed.notes[0]
    assert visited == []
    for action in parsed.after:
        action()
    assert visited == [envelope("sns-subscription-confirmation")["SubscribeURL"]]


@pytest.mark.parametrize(
    "url",
    [
        "https://attacker.example/?Action=ConfirmSubscription",
        "http://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription",
    ],
)
def test_a_subscribe_url_outside_sns_is_refused(url: str) -> None:
    doc = sns_signing.sign({**envelope("sns-subscription-confirmation"), "SubscribeURL": url})
    with pytest.raises(BadRequest, match="SubscribeURL"):
        cloudwatch.parse(doc, VERIFIED)


def test_a_forged_subscription_confirmation_is_not_visited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cloudwatch, "visit_subscribe_url", lambda _u: pytest.fail("visited"))
    doc = sns_signing.sign(envelope("sns-subscription-confirmation"))
    doc["SubscribeURL"] = doc["SubscribeURL"].replace("Token=", "Token=x")
    with pytest.raises(Unauthorized):
        cloudwatch.parse(doc, VERIFIED)


def test_header_and_body_must_agree_on_the_message_type() -> None:
    ctx = ParseContext(
        received_at=RECEIVED,
        headers={"x-amz-sns-message-type": "SubscriptionConfirmation"},
        options=cloudwatch.Options(verify_signatures=False),
    )
    with pytest.raises(BadRequest, match="disagree"):
        cloudwatch.parse(envelope("sns-alarm"), ctx)


def test_sns_raw_message_delivery_with_snss_headers_is_read() -> None:
    alarm = json.loads(load_case("cloudwatch", "sns-alarm").doc["Message"])
    ctx = ParseContext(
        received_at=RECEIVED, headers={"x-amz-sns-message-type": "Notification", "x-amz-sns-rawdelivery": "true"}
    )
    (alert,) = formats.get("cloudwatch").run(alarm, ctx).alerts
    assert alert.action == "trigger"


def test_an_sns_message_that_is_not_an_alarm_is_a_clear_400() -> None:
    doc = {**envelope("sns-alarm"), "Message": "hello from a cron job"}
    with pytest.raises(BadRequest, match="not a CloudWatch alarm"):
        cloudwatch.parse(doc, UNVERIFIED)


def test_half_an_emoji_inside_the_sns_message_is_cleaned_like_the_body() -> None:
    doc = load_case("cloudwatch", "sns-alarm").doc
    doc["Message"] = doc["Message"].replace("checkout-api-5xx-high", "checkout-\\ud83d", 1)
    options = formats.get("cloudwatch").options_for({"verify_signatures": False})
    ctx = ParseContext(received_at=RECEIVED, options=options)
    (alert,) = formats.get("cloudwatch").run(doc, ctx).alerts
    json.dumps(alert.model_dump(mode="json")).encode("utf-8")  # no lone surrogate left to refuse


def test_sns_eventbridge_and_lambda_shapes_of_one_alarm_share_an_identity() -> None:
    sns = envelope("sns-alarm")
    alarm = json.loads(sns["Message"])
    (by_sns,) = cloudwatch.parse(sns, UNVERIFIED).alerts
    bridge = envelope("eventbridge-alarm")
    bridge["resources"] = [alarm["AlarmArn"]]
    (by_bridge,) = cloudwatch.parse(bridge, UNVERIFIED).alerts
    (raw,) = cloudwatch.parse(alarm, UNVERIFIED).alerts  # raw message delivery
    assert by_sns.identity == by_bridge.identity == raw.identity == alarm["AlarmArn"]


def test_an_alarm_without_arn_gets_one_from_the_topic_region_not_the_display_name() -> None:
    (alert,) = cloudwatch.parse(envelope("sns-legacy-without-arn"), UNVERIFIED).alerts
    assert alert.identity == "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:orders-db-cpu"


@pytest.mark.parametrize(("policy", "action"), [("trigger", "trigger"), ("resolve", "resolve")])
def test_insufficient_data_follows_the_route_policy(policy: str, action: str) -> None:
    ctx = ParseContext(
        received_at=RECEIVED, options=cloudwatch.Options(insufficient_data=policy, verify_signatures=False)
    )  # type: ignore[arg-type]
    (alert,) = cloudwatch.parse(envelope("sns-insufficient-data"), ctx).alerts
    assert alert.action == action
    ignored = cloudwatch.parse(envelope("sns-insufficient-data"), UNVERIFIED)
    assert ignored.alerts == [] and "INSUFFICIENT_DATA" in ignored.notes[0]


@pytest.mark.parametrize(
    ("description", "severity"),
    [
        ("severity: critical\nbody", "critical"),
        ("[warning] disk", "warning"),
        ("Severity=INFO x", "info"),
        ("plain text", "error"),
        (None, "error"),
        ("[unheard-of] x", "error"),
    ],
)
def test_severity_comes_from_a_description_marker_or_the_route(description: str | None, severity: str) -> None:
    alarm = json.loads(envelope("sns-alarm")["Message"])
    alarm["AlarmDescription"] = description
    (alert,) = cloudwatch.parse(alarm, UNVERIFIED).alerts
    assert alert.severity == severity


@pytest.mark.parametrize(
    "mutate",
    [
        lambda a: a.update(AlarmName=None),
        lambda a: a.update(Trigger="not an object"),
        lambda a: a.update(StateChangeTime="yesterday-ish", AlarmDescription={"nested": 1}),
        lambda a: a.update(AlarmDescription="Ω" * 100_000),
        lambda a: a["Trigger"].update(Dimensions=[None, 3, {"name": None}], Metrics="junk"),
    ],
)
def test_odd_alarm_fields_degrade_gracefully(mutate: Any) -> None:
    alarm = json.loads(envelope("sns-alarm")["Message"])
    mutate(alarm)
    (alert,) = cloudwatch.parse(alarm, UNVERIFIED).alerts
    assert alert.summary and alert.source and len(alert.summary) <= 1024


def test_an_unknown_state_is_refused_with_the_states_it_knows() -> None:
    alarm = json.loads(envelope("sns-alarm")["Message"])
    alarm["NewStateValue"] = "ON_FIRE"
    with pytest.raises(BadRequest) as caught:
        cloudwatch.parse(alarm, UNVERIFIED)
    assert "ALARM, OK or INSUFFICIENT_DATA" in caught.value.problems[0]
