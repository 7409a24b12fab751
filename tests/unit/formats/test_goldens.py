"""Every monitor fixture against the PagerDuty events it must produce, and ``auto`` picks its format.

A golden file is the reviewed, expected output; ``PDRELAY_UPDATE_GOLDEN=1`` rewrites them (read
the diff). A fixture without a golden fails: nothing is accepted unreviewed.
"""

from __future__ import annotations

import json
import os

import pytest

from pdrelay import formats
from pdrelay.ingest.body import decode_json
from tests.formats_harness import Case, cases, format_names, lifecycle_pairs, load_case, run

ALL = cases()
UPDATE = os.environ.get("PDRELAY_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("case", ALL, ids=[c.id for c in ALL])
def test_the_events_sent_match_the_golden_file(case: Case) -> None:
    produced = run(case)
    if UPDATE:
        case.golden_path.parent.mkdir(parents=True, exist_ok=True)
        case.golden_path.write_text(json.dumps(produced, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert case.golden_path.exists(), f"no golden file for {case.id}: run with PDRELAY_UPDATE_GOLDEN=1 and review it"
    expected = json.loads(case.golden_path.read_text(encoding="utf-8"))
    assert produced == expected


DETECTABLE = [c for c in ALL if c.detect]


@pytest.mark.parametrize("case", DETECTABLE, ids=[c.id for c in DETECTABLE])
def test_auto_picks_the_fixtures_format(case: Case) -> None:
    assert formats.detect(decode_json(case.body), case.headers).name == case.format


def test_every_format_has_fixtures_and_a_lifecycle() -> None:
    have = set(format_names())
    assert set(formats.names()) <= have, f"formats without fixtures: {set(formats.names()) - have}"
    for name in formats.names():
        assert lifecycle_pairs(name), f"{name}: no lifecycle.json"


PAIRS = [(fmt, firing, recovery) for fmt in format_names() for firing, recovery in lifecycle_pairs(fmt)]


@pytest.mark.parametrize(("fmt", "firing", "recovery"), PAIRS, ids=[f"{p[0]}/{p[1]}" for p in PAIRS])
def test_firing_and_recovery_share_one_dedup_key(fmt: str, firing: str, recovery: str | None) -> None:
    fired = run(load_case(fmt, firing))["events"]
    assert fired and all(e["event_action"] == "trigger" for e in fired)
    if recovery is None:
        return
    recovered = run(load_case(fmt, recovery))["events"]
    assert recovered and all(e["event_action"] == "resolve" for e in recovered)
    assert {e["dedup_key"] for e in recovered} == {e["dedup_key"] for e in fired}


def test_each_module_is_named_by_its_format_and_named_ones_load_alone() -> None:
    assert sorted(formats.registry()) == formats.names()  # a module's NAME is its file name
    formats._load.cache_clear()
    formats.get("datadog")
    assert formats._load.cache_info().currsize == 1  # a URL naming its format imports only that one
