"""InstantText: the database writes a moment's FHIR instant text exactly as iso_instant does
(the bulk export reads patients' meta.lastUpdated that way), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import NotSupportedError
from django.db.models import F, Value

from glabella.interop.fhir.build import iso_instant
from glabella.interop.fhir.instants import InstantText
from glabella.patients.models import Patient

MOMENTS = [
    datetime(2026, 11, 22, 3, 4, 5, tzinfo=UTC),  # whole seconds: no fraction written
    datetime(2026, 11, 22, 3, 4, 5, 1, tzinfo=UTC),  # one microsecond: six places
    datetime(2026, 7, 1, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(2026, 3, 29, 1, 30, 0, 120_000, tzinfo=UTC),  # trailing zeros kept: .120000
    # Another offset (London in summer, and a half-hour zone): written in UTC, as Z.
    datetime(2026, 7, 1, 0, 30, 0, 500, tzinfo=timezone(timedelta(hours=1))),
    datetime(2024, 2, 29, 12, 0, 0, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
    datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
]


def test_the_database_writes_each_moment_as_iso_instant_does(world):
    patient = world.patient
    for moment in MOMENTS:
        Patient.objects.filter(pk=patient.pk).update(updated_at=moment)
        text = (
            Patient.objects.filter(pk=patient.pk)
            .annotate(t=InstantText("updated_at"))
            .values_list("t", flat=True)
            .get()
        )
        # As the export wrote it before: the moment read back from the database, in UTC.
        assert text == iso_instant(moment.astimezone(UTC)), moment
        assert text.endswith("Z") and ("." in text) == bool(moment.microsecond), text


def test_every_stored_patient_reads_the_same_as_formatted_in_python(world):
    """The rows as they are written by the app (auto_now, microseconds and all)."""
    rows = Patient.objects.annotate(t=InstantText("updated_at")).values_list("updated_at", "t")
    assert rows
    for stored, text in rows:
        assert text == iso_instant(stored)


def test_no_moment_is_no_text(world):
    assert (
        Patient.objects.filter(pk=world.patient.pk)
        .annotate(t=InstantText(Value(None, output_field=Patient._meta.get_field("updated_at"))))
        .values_list("t", flat=True)
        .get()
    ) is None


def test_an_expression_with_values_is_refused(world):
    """The column is written several times in the SQL: an expression carrying parameters
    would need them repeated, so it is refused rather than mismatched."""
    shifted = F("updated_at") + Value(timedelta(seconds=1))
    with pytest.raises(NotSupportedError):
        list(Patient.objects.annotate(t=InstantText(shifted)).values_list("t", flat=True))
