"""Helpers for the patient's own pages: links made through the services, a clean rate-limit
cache for every test, signed treatments through the charting services."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from glabella.portal import services
from glabella.scheduling.models import Appointment


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


def qr_link(world, patient=None, role: str = "front_desk") -> services.NewLink:
    """A live link for the patient (made as a QR code, so nothing is sent)."""
    return services.show_link(world.actor(role), patient or world.patient)


def appointment(world, patient=None, *, days: int = 3, hour: int = 10, kind: str = "treatment"):
    when = (timezone.now() + timedelta(days=days)).replace(
        hour=hour, minute=0, second=0, microsecond=0
    )
    return Appointment.objects.create(
        organization=world.org,
        clinic=world.clinic,
        patient=patient or world.patient,
        practitioner=world.users["injector"],
        kind=kind,
        notes="Staff only: prefers the left chair",
        starts_at=when,
        ends_at=when + timedelta(minutes=30),
    )
