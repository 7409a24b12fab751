"""How much the fuzz tests generated, for the whole session, and the settings they share.

The fuzz tests (tests/unit/formats/test_fuzz.py, tests/integration/test_fuzz_ingest.py) run hypothesis
with a fixed seed and no example database, so CI runs the same bodies every time; set
``PDRELAY_FUZZ_SEED`` to explore other ones (a failure prints the seed that found it). Each test asserts
that it ran its own share of examples; the ``fuzz_totals`` fixture (session-scoped, requested by every
fuzz test) prints one line when the session ends::

    fuzz: 10400 bodies in 31.2 s (seed 7) - formats 8900, ingest 1500
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

SEED = int(os.environ.get("PDRELAY_FUZZ_SEED", "7"))
TARGET = 10_000  # bodies per run across every fuzz test

COUNTS: Counter[str] = Counter()
SECONDS: Counter[str] = Counter()
PRINTED: list[bool] = []


def fuzz_settings(max_examples: int) -> settings:
    """Reproducible settings: no deadline (a cold import is slow), no database (runs must not differ)."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


def record(group: str, examples: int, seconds: float) -> None:
    COUNTS[group] += examples
    SECONDS[group] += seconds


def summary() -> str:
    total = sum(COUNTS.values())
    parts = ", ".join(f"{name} {n}" for name, n in sorted(COUNTS.items()))
    below = f" (below the {TARGET} a full run makes)" if total < TARGET else ""
    return f"fuzz: {total} bodies in {sum(SECONDS.values()):.1f} s (seed {SEED}){below} - {parts}"


@pytest.fixture(scope="session")
def fuzz_totals(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if PRINTED:  # each module that imports this fixture holds its own copy of it
        return
    PRINTED.append(True)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if capture is None:
        reporter.write_line(summary())
        return
    with capture.global_and_fixture_disabled():  # the last test's teardown is captured
        reporter.write_line("")
        reporter.write_line(summary())


class Timer:
    """Counts the examples of one hypothesis test and how long they took."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.examples = 0
        self._start = time.perf_counter()

    def tick(self) -> None:
        self.examples += 1

    def done(self) -> int:
        record(self.group, self.examples, time.perf_counter() - self._start)
        return self.examples
