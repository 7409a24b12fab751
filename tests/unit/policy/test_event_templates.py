"""Event templates: what they render from an alert, what the sandbox refuses, and how a template
that fails on one alert leaves an event PagerDuty accepts."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from pdrelay.config import parse_config
from pdrelay.errors import ConfigError
from pdrelay.models import Alert
from pdrelay.ops import configtool
from pdrelay.policy import templates
from pdrelay.policy.templates import ERRORS_KEY, Templates, apply, merged

KEY = "pdrelaydemo000000000000000000000"


def make_alert(**fields: Any) -> Alert:
    doc: dict[str, Any] = {
        "format": "alertmanager",
        "identity": "fp-1",
        "action": "trigger",
        "occurred_at": datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
        "summary": "Checkout 5xx rate above 5%",
        "source": "prometheus",
        "severity": "error",
        "custom_details": {
            "labels": {"alertname": "HighErrorRate", "instance": "checkout-7:8080", "env": "prod"},
            "annotations": {"runbook_url": "https://runbooks.example.com/checkout"},
        },
    }
    doc.update(fields)
    return Alert.model_validate(doc)


def rendered(alert: Alert | None = None, **fields: Any) -> Alert:
    return apply(alert or make_alert(), Templates.model_validate(fields), route="shop", rule=None)


def config_problems(route_templates: Any, rule_templates: Any = None) -> list[str]:
    route: dict[str, Any] = {"routing_key": KEY}
    if route_templates is not None:
        route["templates"] = route_templates
    if rule_templates is not None:
        route["rules"] = [{"name": "db", "templates": rule_templates}]
    doc = {"default_route": "shop", "callers": [{"name": "a", "token": "a" * 20}], "routes": {"shop": route}}
    with pytest.raises(ConfigError) as caught:
        parse_config(json.dumps(doc))
    return caught.value.problems


# --- rendering -------------------------------------------------------------------------------------


def test_fields_render_from_labels_annotations_fields_and_times() -> None:
    alert = rendered(
        summary="[{{ labels.env | upper }}] {{ labels.alertname }} on {{ labels.instance }} ({{ format }})",
        source="{{ labels.instance.split(':')[0] }}",
        component="{{ route }}",
        group="{{ occurred_at[:10] }}",
        **{"class": "{{ summary | truncate(8, true, '') }}"},
        severity="{{ 'critical' if labels.env == 'prod' else severity }}",
        custom_details={"runbook": "{{ annotations.runbook_url }}#{{ labels.alertname | lower }}"},
    )
    assert alert.summary == "[PROD] HighErrorRate on checkout-7:8080 (alertmanager)"
    assert alert.source == "checkout-7"
    assert alert.component == "shop"
    assert alert.group == "2026-11-24"
    assert alert.class_ == "Checkout"
    assert alert.severity == "critical"
    assert alert.custom_details["runbook"] == "https://runbooks.example.com/checkout#higherrorrate"
    assert alert.custom_details["labels"]["env"] == "prod"  # the alert's own details stay
    assert ERRORS_KEY not in alert.custom_details


def test_a_missing_label_renders_empty_and_default_fills_it() -> None:
    alert = rendered(summary="{{ labels.alertname }}{{ labels.nope }} in {{ labels.region | default('any region') }}")
    assert alert.summary == "HighErrorRate in any region"


def test_loops_and_dict_methods_work_within_limits() -> None:
    alert = rendered(
        summary="{% for k, v in labels | dictsort %}{{ k }}={{ v }}{% if not loop.last %},{% endif %}{% endfor %}"
    )
    assert alert.summary == "alertname=HighErrorRate,env=prod,instance=checkout-7:8080"


def test_the_same_alert_renders_the_same_text_every_time() -> None:
    fields = {"summary": "{{ labels | tojson }} {{ details | dictsort }} {{ occurred_at }}"}
    assert rendered(**fields) == rendered(**fields)


def test_a_resolve_without_a_payload_is_left_alone() -> None:
    resolve = make_alert(action="resolve", summary=None)
    assert rendered(resolve, summary="{{ labels.alertname }}") is resolve


def test_a_rules_templates_override_the_routes_field_by_field() -> None:
    route = Templates.model_validate({"summary": "route", "source": "route", "custom_details": {"a": "1", "b": "2"}})
    rule = Templates.model_validate({"summary": "rule", "custom_details": {"b": "3"}})
    both = merged(route, rule)
    assert both is not None
    assert (both.summary, both.source, both.custom_details) == ("rule", "route", {"a": "1", "b": "3"})
    assert merged(None, rule) is rule and merged(route, None) is route


def test_a_route_gives_the_templates_of_the_rule_that_sent_the_alert() -> None:
    doc = f"""
default_route: shop
callers: [{{name: a, token: {"a" * 20}}}]
routes:
  shop:
    routing_key: {KEY}
    templates: {{summary: "route {{{{ labels.env }}}}", source: "{{{{ labels.instance }}}}"}}
    rules:
      - {{name: db, templates: {{summary: "db {{{{ labels.env }}}}"}}}}
"""
    route = parse_config(doc).routes["shop"]
    by_rule = apply(make_alert(), route.templates_for("db"))
    by_route = apply(make_alert(), route.templates_for(None))
    assert (by_rule.summary, by_rule.source) == ("db prod", "checkout-7:8080")
    assert by_route.summary == "route prod"


# --- the configuration refuses mistakes with their place ----------------------------------------------


def test_syntax_errors_name_the_field_and_line() -> None:
    assert config_problems({"summary": "{{ labels.alertname }"}) == [
        "routes.shop.templates.summary: unexpected '}' at line 1"
    ]


def test_rule_templates_and_custom_details_entries_are_checked_too() -> None:
    found = config_problems({"custom_details": {"runbook": "{{ x }}"}}, {"source": "{% if %}"})
    assert found[0].startswith("routes.shop.rules.0.templates.source: ")
    assert found[1] == "routes.shop.templates.custom_details: runbook: unknown name 'x'"


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("{{ lables.team }}", "unknown name 'lables'"),
        ("{% set x = 1 %}{{ x }}", "{% set %} is not allowed"),
        ("{% macro f() %}{% endmacro %}", "{% macro %} is not allowed"),
        ("{% include 'x' %}", "{% include %} is not allowed"),
        ("{% for x in labels recursive %}{% endfor %}", "recursive loops are not allowed"),
        ("{{ summary.__class__ }}", "names that start with '_' are not available"),
        ("{{ labels['__class__'] }}", "names that start with '_' are not available"),
        ("{{ summary | center(9) }}", "No filter named 'center'"),
        ("{{ summary | random }}", "No filter named 'random'"),
        ("{{ namespace() }}", "unknown name 'namespace'"),
        ("{{ lipsum() }}", "unknown name 'lipsum'"),
        ("x" * 5000, "at most 4096 characters"),
    ],
)
def test_the_sandbox_refuses_at_load(source: str, says: str) -> None:
    with pytest.raises(ValueError) as caught:
        templates.check(source)
    assert says in str(caught.value)


# --- at run time: refused, bounded, and a fallback the event can carry ---------------------------------------


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("{{ summary['_' ~ '_class__'] }}", "str.__class__ is not available"),
        ("{{ summary.format(1) }}", "str.format is not available"),
        ("{{ summary.center(100000000) }}", "str.center is not available"),
        ("{{ labels.pop('env') }}", "has no attribute 'pop'"),
        ("{{ labels.items }}", "a function is printed"),
        ("{{ '%999999999d' % 1 }}", "'%' formatting is not available"),
        ("{{ 'x' * 100000000 }}", "'*' would make more than"),
        ("{{ 9 ** 64 ** 64 }}", "'**' is limited"),
        ("{{ range(10000000) | length }}", "range() gives at most"),
        ("{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}", "loops ran more than"),
        ("{% for a in range(1000) %}{{ 'x' * 1000 }}{% endfor %}", "longer than 1024"),
        ("{{ summary | replace('', summary) | replace('', summary) | replace('', summary) }}", "replace() would make"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("  ", "rendered empty"),
    ],
)
def test_a_summary_that_fails_keeps_the_formats_and_says_why(source: str, says: str) -> None:
    alert = rendered(summary=source)
    assert alert.summary == "Checkout 5xx rate above 5%"
    (error,) = alert.custom_details[ERRORS_KEY]
    assert error.startswith("summary: ") and says in error, error
    assert error.endswith("kept the format's summary")


def test_a_slow_template_stops_at_the_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templates, "TIME_LIMIT_SECONDS", -1.0)  # every check is past the deadline
    alert = rendered(summary="{% for a in range(3) %}{{ a }}{% endfor %}")
    assert alert.custom_details[ERRORS_KEY] == ["summary: took longer than -1.0 s; kept the format's summary"]


def test_an_over_long_summary_falls_back_whole() -> None:
    alert = rendered(summary="{% for a in range(11) %}{{ summary * 4 }}{% endfor %}")
    assert alert.summary == "Checkout 5xx rate above 5%"
    assert "more than 1024" in alert.custom_details[ERRORS_KEY][0]


def test_a_severity_must_render_to_a_severity() -> None:
    alert = rendered(severity="{{ labels.env }}", summary="{{ labels.alertname }}")
    assert (alert.severity, alert.summary) == ("error", "HighErrorRate")
    assert alert.custom_details[ERRORS_KEY] == [
        "severity: 'prod' is not a severity (critical, error, warning, info); kept the format's severity"
    ]


def test_an_empty_component_keeps_the_alerts_own_silently() -> None:
    alert = rendered(make_alert(component="web"), component="{{ labels.nope }}")
    assert alert.component == "web" and ERRORS_KEY not in alert.custom_details


def test_a_failing_custom_details_entry_is_left_out_and_named() -> None:
    alert = rendered(custom_details={"ok": "{{ labels.env }}", "broken": "{{ 1 / 0 }}"})
    assert alert.custom_details["ok"] == "prod" and "broken" not in alert.custom_details
    assert alert.custom_details[ERRORS_KEY] == ["custom_details.broken: ZeroDivisionError: division by zero; left out"]


def test_templates_see_the_alert_and_never_a_routing_key() -> None:
    seen = templates.context(make_alert(), route="shop", rule="db")
    assert KEY not in str(seen) and "routing_key" not in seen
    assert set(seen) == templates.NAMES - {"range", "loop"}


# --- the guide's examples and `pdrelay config explain` ---------------------------------------------------

ROOT = Path(__file__).resolve().parents[3]


def guide_section() -> str:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    start = text.index("## Event templates\n")
    return text[start : text.index("\n## ", start + 1)]


def test_the_guides_example_renders_as_it_says() -> None:
    block = re.search(r"```yaml\n(.*?)```", guide_section(), re.S)
    assert block is not None
    routes = yaml.safe_load(block.group(1))["routes"]
    doc = {"default_route": "shop", "callers": [{"name": "a", "token": "a" * 20}], "routes": routes}
    route = parse_config(json.dumps(doc)).routes["shop"]
    alert = make_alert(custom_details={"labels": {"alertname": "DiskFull", "tier": "db", "env": "prod"}})
    by_route, by_rule = apply(alert, route.templates_for(None)), apply(alert, route.templates_for("db"))
    assert (by_route.summary, by_route.source, by_route.severity) == (
        "[PROD] DiskFull on an unknown host",
        "prometheus",
        "critical",
    )
    assert by_route.custom_details["runbook"] == "https://runbooks.example.com/diskfull"
    assert by_route.custom_details["fired"] == "2026-11-24T09:00 UTC"
    assert by_rule.summary == "DB DiskFull: Checkout 5xx rate above 5%"


def test_the_guides_error_lines_are_what_loading_says() -> None:
    block = re.search(r"```text\n(.*?)```", guide_section(), re.S)
    assert block is not None
    shown = block.group(1).splitlines()
    assert config_problems({"summary": "{{ labels.alertname }"}) == shown[:1]
    found = config_problems(None, {"custom_details": {"runbook": "{{ summary | center(80) }}"}})
    assert found == [shown[1]]


def test_config_explain_shows_the_example_routes_rendered_events() -> None:
    config = parse_config((ROOT / "events" / "config" / "example.yaml").read_text(encoding="utf-8"))
    body = (ROOT / "events" / "formats" / "alertmanager" / "firing.json").read_bytes()
    result = configtool.explain(config, body, route="payments", at=datetime.fromisoformat("2026-11-24T09:05:00+00:00"))
    summaries = {e["destination"]: e["event"]["payload"]["summary"] for e in result.events}
    assert summaries == {
        "payments": "CRITICAL HighErrorRate on checkout-7f9c:8080",
        "platform": "CRITICAL HighErrorRate on checkout-7f9c:8080",
    }
    assert "    templated: summary 'CRITICAL HighErrorRate on checkout-7f9c:8080', source 'checkout-7f9c'" in (
        result.lines
    )
    warning = json.loads(body)
    warning["alerts"][0]["labels"]["severity"] = "warning"
    result = configtool.explain(
        config, json.dumps(warning).encode(), route="payments", at=datetime.fromisoformat("2026-11-24T09:05:00+00:00")
    )
    (event,) = (e["event"] for e in result.events)
    assert event["payload"]["summary"] == "[prod-eu] HighErrorRate: Checkout 5xx rate above 5% for 10 minutes"
    assert event["payload"]["custom_details"]["runbook"] == "https://runbooks.example.com/checkout/errors"
    assert any(
        "templates (route: summary, source; rule critical-to-both)" in line for line in configtool.summary(config)
    )


def test_config_explain_names_a_template_that_failed() -> None:
    config = parse_config(
        json.dumps(
            {
                "default_route": "shop",
                "callers": [{"name": "a", "token": "a" * 20}],
                "routes": {"shop": {"routing_key": KEY, "templates": {"summary": "{{ 1 / 0 }}"}}},
            }
        )
    )
    body = (ROOT / "events" / "formats" / "alertmanager" / "firing.json").read_bytes()
    result = configtool.explain(config, body, at=datetime.fromisoformat("2026-11-24T09:05:00+00:00"))
    assert (
        "    template failed: summary: ZeroDivisionError: division by zero; kept the format's summary" in result.lines
    )
