"""A test that compares dates with the app's today reads the day it runs, not the day the run
started (glabella/conftest.py: steady_today and the today_from_the_clock marker)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from glabella import conftest

pytestmark = pytest.mark.today_from_the_clock

#: Deliberately wrong: the marker's fixture must replace it before each test.
TODAY = date(2000, 1, 1)


def test_a_marked_module_reads_today_again_when_each_test_starts():
    assert date(2000, 1, 1) < TODAY <= date.today()


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now_at = now
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.now_at

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.mark.parametrize(
    ("now", "sleeps"),
    [
        (datetime(2026, 11, 21, 12, 0, 0), None),
        (datetime(2026, 11, 21, 23, 58, 29), None),  # 91 s to go: starts now
        (datetime(2026, 11, 21, 23, 58, 31), 90.0),  # 89 s to go: waits for the new day
        (datetime(2026, 11, 21, 23, 59, 59, 500_000), 1.5),
        (datetime(2026, 11, 22, 0, 0, 0), None),
    ],
)
def test_a_test_starting_just_before_midnight_waits_for_the_new_day(monkeypatch, now, sleeps):
    clock = _Clock(now)
    monkeypatch.setattr(
        conftest, "datetime", type("D", (datetime,), {"now": staticmethod(clock.now)})
    )
    monkeypatch.setattr(conftest.time, "sleep", clock.sleep)
    conftest.steady_today()
    assert clock.slept == ([] if sleeps is None else [pytest.approx(sleeps)])
