"""Shared fixtures for scheduling tests: a fixed 'now' and a Monday 10:00 slot in the clinic."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

LONDON = ZoneInfo("Europe/London")


def next_monday_at(hour: int, minute: int = 0, weeks: int = 1) -> datetime:
    """A Monday at HOUR:MINUTE London time, WEEKS weeks ahead (always in the future)."""
    today = datetime.now(LONDON).date()
    monday = today + timedelta(days=(7 - today.weekday()) % 7 or 7) + timedelta(weeks=weeks - 1)
    return datetime(monday.year, monday.month, monday.day, hour, minute, tzinfo=LONDON)


@pytest.fixture
def monday_10() -> datetime:
    return next_monday_at(10)
