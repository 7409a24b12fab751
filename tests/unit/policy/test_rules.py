"""Routing rules: what a condition sees, when a rule matches, and where an alert goes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from pdrelay.models import Alert
from pdrelay.policy.rules import Matcher, Rule, check_destinations, labels, lookup, plan


def make_alert(**fields: Any) -> Alert:
    doc: dict[str, Any] = {
        "format": "alertmanager",
        "identity": "group-1",
        "action": "trigger",
        "occurred_at": datetime(2026, 5, 1, 12, 0, tzinfo=UTC),
        "summary": "Disk almost full on db-7",
        "source": "db-7",
        "severity": "warning",
    }
    doc.update(fields)
    return Alert.model_validate(doc)


def problems(model: type[BaseModel], doc: Any) -> list[str]:
    """Validation errors in the form the configuration loader reports them: place, then message."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(doc)
    return [
        ".".join(str(p) for p in err["loc"]) + ": " + err["msg"].removeprefix("Value error, ")
        for err in caught.value.errors()
    ]


def when(doc: Any) -> Matcher:
    return Matcher.model_validate(doc)


def rules(text: str) -> list[Rule]:
    return [Rule.model_validate(item) for item in yaml.safe_load(text)]


# --- what a condition sees -------------------------------------------------------------------------


def test_alert_fields_are_looked_up_by_their_configuration_names() -> None:
    alert = make_alert(component="disk", group="storage", **{"class": "capacity"}, client="Alertmanager")
    assert lookup(alert, "format") == "alertmanager"
    assert lookup(alert, "severity") == "warning"
    assert lookup(alert, "source") == "db-7"
    assert lookup(alert, "class") == "capacity"
    assert lookup(alert, "component") == "disk"
    assert lookup(alert, "group") == "storage"
    assert lookup(alert, "identity") == "group-1"
    assert lookup(alert, "action") == "trigger"
    assert lookup(alert, "client") == "Alertmanager"


def test_an_unset_field_is_missing() -> None:
    assert lookup(make_alert(), "component") is None


def test_labels_come_from_the_labels_mapping() -> None:
    alert = make_alert(custom_details={"labels": {"team": "db-main", "env": "prod"}})
    assert lookup(alert, "labels.team") == "db-main"
    assert lookup(alert, "labels.nope") is None


def test_tags_in_every_shape_monitors_send_are_labels() -> None:
    alert = make_alert(custom_details={"tags": ["env:prod", "url=https://x.example/a", "canary", "image:repo:1.2"]})
    assert labels(alert) == {"env": "prod", "url": "https://x.example/a", "canary": "", "image": "repo:1.2"}
    assert lookup(make_alert(custom_details={"tags": {"env": "prod", "port": 5432}}), "labels.port") == "5432"


def test_labels_win_over_tags_and_the_first_of_repeated_tags_counts() -> None:
    alert = make_alert(custom_details={"labels": {"env": "prod"}, "tags": ["env:staging", "role:web", "role:db"]})
    assert lookup(alert, "labels.env") == "prod"
    assert lookup(alert, "labels.role") == "web"


def test_details_are_reached_by_dotted_paths_with_list_indexes() -> None:
    alert = make_alert(custom_details={"check": {"targets": [{"region": "eu-west-1"}, {"region": "us-east-1"}]}})
    assert lookup(alert, "details.check.targets.1.region") == "us-east-1"
    assert lookup(alert, "details.check.targets.2.region") is None
    assert lookup(alert, "details.check.targets.x") is None


def test_a_details_key_that_holds_dots_is_found() -> None:
    alert = make_alert(custom_details={"app.kubernetes.io": {"name": "checkout"}})
    assert lookup(alert, "details.app.kubernetes.io.name") == "checkout"


def test_values_are_compared_as_text() -> None:
    alert = make_alert(custom_details={"code": 500, "ratio": 0.5, "ok": False, "nothing": None, "doc": {"a": [1, 2]}})
    assert lookup(alert, "details.code") == "500"
    assert lookup(alert, "details.ratio") == "0.5"
    assert lookup(alert, "details.ok") == "false"
    assert lookup(alert, "details.nothing") is None
    assert lookup(alert, "details.doc") == '{"a":[1,2]}'


def test_long_values_are_capped_so_a_regex_has_bounded_work() -> None:
    value = lookup(make_alert(custom_details={"log": "x" * 10_000}), "details.log")
    assert value is not None and len(value) == 4096


# --- conditions ------------------------------------------------------------------------------------


def test_an_empty_or_absent_when_matches_everything() -> None:
    assert when({}).matches(make_alert())
    assert when(None).matches(make_alert())
    assert Rule(name="all").when.matches(make_alert())


def test_a_scalar_is_equality_and_a_list_is_any_of() -> None:
    assert when({"format": "alertmanager"}).matches(make_alert())
    assert not when({"format": "grafana"}).matches(make_alert())
    assert when({"severity": ["critical", "warning"]}).matches(make_alert())
    assert when({"severity": {"in": ["critical", "warning"]}}).matches(make_alert())
    assert not when({"severity": ["critical", "error"]}).matches(make_alert())


def test_numbers_and_booleans_in_configuration_equal_their_text() -> None:
    alert = make_alert(custom_details={"code": 500, "flag": True})
    assert when({"details.code": 500, "details.flag": True}).matches(alert)
    assert when({"details.code": {"equals": "500"}}).matches(alert)
    assert not when({"details.code": 404}).matches(alert)


def test_every_condition_must_hold() -> None:
    alert = make_alert(custom_details={"labels": {"team": "db-main"}})
    assert when({"labels.team": {"regex": "^db-"}, "severity": "warning"}).matches(alert)
    assert not when({"labels.team": {"regex": "^db-"}, "severity": "critical"}).matches(alert)


def test_regex_searches_and_contains_ignores_case() -> None:
    alert = make_alert(component="Checkout-API")
    assert when({"summary": {"regex": "full on db-\\d"}}).matches(alert)
    assert not when({"summary": {"regex": "^full"}}).matches(alert)
    assert when({"component": {"contains": "checkout"}}).matches(alert)
    assert not when({"component": {"contains": "payments"}}).matches(alert)


def test_present_and_absent() -> None:
    alert = make_alert(custom_details={"tags": ["canary"]})
    assert when({"labels.canary": {"present": True}}).matches(alert)
    assert not when({"labels.canary": {"present": False}}).matches(alert)
    assert when({"labels.env": {"present": False}}).matches(alert)
    assert not when({"labels.env": {"present": True}}).matches(alert)


def test_not_inverts_a_test() -> None:
    assert when({"summary": {"not": {"regex": "(?i)canary"}}}).matches(make_alert())
    assert not when({"summary": {"not": {"regex": "(?i)DISK"}}}).matches(make_alert())


def test_a_missing_field_fails_every_test_but_absence_and_a_negated_failure() -> None:
    alert = make_alert()
    for test in (
        {"equals": "x"},
        {"in": ["x"]},
        {"regex": ".*"},
        {"contains": ""},
        {"present": True},
        {"not": {"present": False}},
    ):
        assert not when({"labels.team": test}).matches(alert), test
    assert when({"labels.team": {"present": False}}).matches(alert)
    assert when({"labels.team": {"not": {"regex": ".*"}}}).matches(alert)


def test_operators_combine_and_all_must_hold() -> None:
    alert = make_alert(component="checkout-eu")
    assert when({"component": {"regex": "^checkout", "contains": "EU", "present": True}}).matches(alert)
    assert not when({"component": {"regex": "^checkout", "not": {"contains": "eu"}}}).matches(alert)


def test_explain_says_for_each_condition_whether_and_why() -> None:
    alert = make_alert(custom_details={"labels": {"team": "db-main"}})
    lines = when({"labels.team": {"regex": "^db-"}, "severity": "critical", "labels.env": {"present": True}}).explain(
        alert
    )
    assert lines == [
        "labels.team = 'db-main' matches regex '^db-'",
        "severity = 'warning' does not match 'critical'",
        "labels.env (missing) does not match present: true",
    ]


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"labels.team": {"regex": "("}}, "when.labels.team.regex: invalid regular expression"),
        ({"labels.team": {"regex": "a" * 1001}}, "when.labels.team.regex: a regular expression is at most 1000"),
        ({"labels.team": {"matches": "x"}}, "when.labels.team.matches: Extra inputs are not permitted"),
        ({"summary": {"not": {"regex": "[z-a]"}}}, "when.summary.not.regex: invalid regular expression"),
        ({"hostname": "db-7"}, "when.hostname.[key]: unknown field 'hostname'"),
        ({"labels.": "x"}, "when.labels..[key]: 'labels.': give a name after"),
        ({"details.a..b": "x"}, "when.details.a..b.[key]: 'details.a..b': give a name after"),
        ({"source": {}}, "when.source: no test given"),
        ({"source": None}, "when.source: a test cannot be empty"),
        ({"source": {"in": []}}, "when.source.in: an empty list matches nothing"),
        ({"source": {"equals": {"a": 1}}}, "when.source.equals: expected a single value"),
    ],
)
def test_mistakes_in_conditions_are_reported_with_their_place(doc: Any, expected: str) -> None:
    found = problems(Rule, {"name": "r", "when": doc})
    assert any(p.startswith(expected) for p in found), found


# --- rules -----------------------------------------------------------------------------------------


def test_a_rule_is_strict_and_frozen() -> None:
    assert problems(Rule, {"name": "r", "sendto": ["a"]}) == ["sendto: Extra inputs are not permitted"]
    assert problems(Rule, {"when": {}})[0].startswith("name: Field required")
    rule = Rule(name="r")
    with pytest.raises(ValidationError):
        rule.page = False  # type: ignore[misc]


def test_severities_are_checked() -> None:
    assert problems(Rule, {"name": "r", "severity": "high"})[0].startswith("severity: 'high' is not a severity")
    assert problems(Rule, {"name": "r", "severity": {"warning": "urgent"}})[0].startswith(
        "severity: 'urgent' is not a severity"
    )
    assert Rule.model_validate({"name": "r", "severity": {"warning": "critical"}}).severity == {"warning": "critical"}


# --- plans: mode first -----------------------------------------------------------------------------

ROUTE_RULES = """
- name: db-critical
  when: {labels.team: {regex: "^db-"}}
  send_to: [payments, platform]
  severity: {warning: critical}
  custom_details: {escalation: db on-call}
- name: quiet-canaries
  when: {summary: {regex: "(?i)canary"}}
  page: false
- name: everything-web
  when: {labels.team: web}
  send_to: [web]
  severity: info
"""


def test_no_rules_send_to_the_defaults_unchanged() -> None:
    alert = make_alert()
    result = plan([], "first", ["platform"], alert)
    assert [(t.destination, t.rule) for t in result.targets] == [("platform", None)]
    assert result.targets[0].alert == alert
    assert result.matched == []


def test_no_matching_rule_sends_to_the_defaults_unchanged() -> None:
    result = plan(rules(ROUTE_RULES), "first", ["platform", "ops"], make_alert())
    assert [(t.destination, t.rule, t.alert.severity) for t in result.targets] == [
        ("platform", None, "warning"),
        ("ops", None, "warning"),
    ]
    assert "no rule matches: the default destinations, unchanged" in result.explanation


def test_first_mode_the_first_matching_rule_decides_and_transforms() -> None:
    alert = make_alert(custom_details={"labels": {"team": "db-main"}, "runbook": "r1"})
    result = plan(rules(ROUTE_RULES), "first", ["platform"], alert)
    assert [(t.destination, t.rule) for t in result.targets] == [
        ("payments", "db-critical"),
        ("platform", "db-critical"),
    ]
    sent = result.targets[0].alert
    assert sent.severity == "critical"
    assert sent.custom_details == {"labels": {"team": "db-main"}, "runbook": "r1", "escalation": "db on-call"}
    assert result.matched == ["db-critical"]


def test_the_original_alert_is_not_changed() -> None:
    alert = make_alert(custom_details={"labels": {"team": "db-main"}})
    plan(rules(ROUTE_RULES), "all", ["platform"], alert)
    assert alert.severity == "warning"
    assert alert.custom_details == {"labels": {"team": "db-main"}}


def test_a_severity_mapping_leaves_unlisted_severities_alone() -> None:
    alert = make_alert(severity="error", custom_details={"labels": {"team": "db-main"}})
    result = plan(rules(ROUTE_RULES), "first", ["platform"], alert)
    assert {t.alert.severity for t in result.targets} == {"error"}


def test_a_fixed_severity_replaces_any() -> None:
    alert = make_alert(severity="critical", custom_details={"labels": {"team": "web"}})
    result = plan(rules(ROUTE_RULES), "first", ["platform"], alert)
    assert [(t.destination, t.alert.severity) for t in result.targets] == [("web", "info")]


def test_first_mode_a_page_false_rule_sends_nothing() -> None:
    alert = make_alert(summary="Canary probe failed", custom_details={"labels": {"team": "web"}})
    result = plan(rules(ROUTE_RULES), "first", ["platform", "ops"], alert)
    assert result.targets == []
    assert result.not_paged == [("platform", "quiet-canaries"), ("ops", "quiet-canaries")]
    assert result.matched == ["quiet-canaries"]
    assert "the rules after 'quiet-canaries' are not evaluated (mode: first)" in result.explanation


def test_an_empty_send_to_means_the_defaults() -> None:
    result = plan(rules("- {name: all, severity: critical}"), "first", ["platform", "ops"], make_alert())
    assert [(t.destination, t.rule, t.alert.severity) for t in result.targets] == [
        ("platform", "all", "critical"),
        ("ops", "all", "critical"),
    ]


# --- plans: mode all -------------------------------------------------------------------------------

ALL_RULES = """
- name: db
  when: {labels.team: db}
  send_to: [db-oncall, platform]
  severity: critical
- name: eu
  when: {labels.region: eu}
  send_to: [platform, eu-ops]
  custom_details: {region_owner: eu-ops}
- name: no-platform-at-night
  when: {labels.shift: night}
  send_to: [platform]
  page: false
"""


def labelled(**values: str) -> Alert:
    return make_alert(custom_details={"labels": values})


def test_all_mode_every_matching_rule_adds_its_destinations_once_in_order() -> None:
    result = plan(rules(ALL_RULES), "all", ["default"], labelled(team="db", region="eu"))
    assert [(t.destination, t.rule) for t in result.targets] == [
        ("db-oncall", "db"),
        ("platform", "db"),
        ("eu-ops", "eu"),
    ]
    assert result.matched == ["db", "eu"]


def test_all_mode_the_first_rule_s_transforms_apply_to_a_shared_destination() -> None:
    result = plan(rules(ALL_RULES), "all", ["default"], labelled(team="db", region="eu"))
    by_destination = {t.destination: t.alert for t in result.targets}
    assert by_destination["platform"].severity == "critical"
    assert "region_owner" not in by_destination["platform"].custom_details
    assert by_destination["eu-ops"].custom_details["region_owner"] == "eu-ops"
    assert by_destination["eu-ops"].severity == "warning"


def test_all_mode_a_page_false_rule_removes_its_destinations_whatever_the_order() -> None:
    forward = rules(ALL_RULES)
    for ordered in (forward, list(reversed(forward))):
        result = plan(ordered, "all", ["default"], labelled(team="db", region="eu", shift="night"))
        assert {t.destination for t in result.targets} == {"db-oncall", "eu-ops"}
        assert result.not_paged == [("platform", "no-platform-at-night")]


def test_all_mode_a_page_false_rule_without_send_to_removes_everything() -> None:
    quiet = rules(ALL_RULES + "- {name: silence, when: {labels.env: test}, page: false}")
    result = plan(quiet, "all", ["default"], labelled(team="db", env="test"))
    assert result.targets == []
    assert result.not_paged == [("db-oncall", "silence"), ("platform", "silence")]
    assert "nothing is sent" in result.explanation


def test_all_mode_only_page_false_rules_matching_leaves_the_other_defaults() -> None:
    result = plan(rules(ALL_RULES), "all", ["platform", "ops"], labelled(shift="night"))
    assert [(t.destination, t.rule) for t in result.targets] == [("ops", None)]
    assert result.not_paged == [("platform", "no-platform-at-night")]
    assert result.matched == ["no-platform-at-night"]


def test_all_mode_no_match_sends_to_the_defaults() -> None:
    result = plan(rules(ALL_RULES), "all", ["platform"], labelled(team="web"))
    assert [(t.destination, t.rule) for t in result.targets] == [("platform", None)]


def test_the_explanation_tells_which_rules_matched_and_what_goes_where() -> None:
    result = plan(rules(ALL_RULES), "all", ["default"], labelled(team="db", shift="night"))
    assert result.explanation == [
        "rule 'db' matches",
        "  labels.team = 'db' matches 'db'",
        "rule 'eu' does not match",
        "  labels.region (missing) does not match 'eu'",
        "rule 'no-platform-at-night' matches",
        "  labels.shift = 'night' matches 'night'",
        "send to db-oncall (rule 'db', severity warning -> critical)",
        "do not page platform (rule 'no-platform-at-night' has page: false)",
    ]


# --- checks against the route ----------------------------------------------------------------------


def test_destinations_and_names_are_checked_against_the_route() -> None:
    checked = rules(
        """
- {name: a, send_to: [platform, ghost]}
- {name: b, send_to: [platform, platform]}
- {name: a}
"""
    )
    assert check_destinations(checked, {"platform"}) == [
        "rules.0.send_to: no destination named 'ghost'",
        "rules.1.send_to: 'platform' is listed twice",
        "rules.2.name: 'a' is already the name of rules.0",
    ]
    assert check_destinations(rules(ALL_RULES), {"db-oncall", "platform", "eu-ops"}) == []
