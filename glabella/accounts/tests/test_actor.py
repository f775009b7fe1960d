"""Actor.today(): the calendar day at the actor's clinic, not the server's."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from glabella.accounts.actor import Actor

# At any hour one of these is on another calendar day than UTC.
FAR_ZONES = ("Pacific/Kiritimati", "Etc/GMT+12")


@pytest.mark.parametrize("zone", FAR_ZONES)
def test_today_is_the_clinics_day(world, zone):
    world.clinic.timezone = zone
    assert world.actor("injector").today() == datetime.now(UTC).astimezone(ZoneInfo(zone)).date()


def test_the_far_zones_are_not_both_on_the_servers_day():
    assert any(
        datetime.now(UTC).astimezone(ZoneInfo(z)).date() != timezone.localdate() for z in FAR_ZONES
    )


def test_without_a_clinic_or_with_an_unknown_zone_it_is_the_servers_day(world):
    assert Actor.system(world.org).today() == timezone.localdate()
    world.clinic.timezone = "Mars/Olympus_Mons"
    assert world.actor("injector").today() == timezone.localdate()
