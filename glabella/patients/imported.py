"""Writing imported patients: the patient service, plus the reference the file gave them.

Used by the CSV import (:mod:`glabella.interop.imports`). A new patient is created by
:func:`glabella.patients.services.create_patient` (same validation, same audit row); its
``import_ref`` (the id in the imported file) is set in the same transaction. An existing
patient matched by name and date of birth is *linked*: the reference is recorded on it (with an
audit row) so later files (history, treatments) that use the reference find it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.audit.models import Action
from glabella.audit.services import record
from glabella.patients import services
from glabella.patients.models import HistoryItem, Patient
from glabella.scheduling import recalls

MAX_REF = 100


def _clean_ref(ref: str) -> str:
    ref = (ref or "").strip()
    if len(ref) > MAX_REF:
        raise ValidationError({"patient_ref": f"A reference is at most {MAX_REF} characters."})
    return ref


def _set_ref(patient: Patient, ref: str) -> None:
    # The unique constraint (organization, import_ref) is the check: no query per row.
    try:
        with transaction.atomic():
            Patient.objects.filter(pk=patient.pk).update(import_ref=ref)
    except IntegrityError:
        raise ValidationError(
            {"patient_ref": f"Another patient was already imported with reference {ref}."}
        ) from None
    patient.import_ref = ref


def import_patient(actor: Actor, data: Mapping[str, Any], *, ref: str = "") -> Patient:
    """Create a patient from an imported row (``data`` as for ``create_patient``, plus
    ``clinical_notes``), remembering REF."""
    actor.require("data.import")
    ref = _clean_ref(ref)
    notes = str(data.get("clinical_notes") or "").strip()
    with transaction.atomic():
        patient = services.create_patient(actor, data)
        if ref:
            _set_ref(patient, ref)
        if notes:
            patient = services.update_clinical_notes(actor, patient, notes)
    return patient


def link_patient(actor: Actor, patient: Patient, ref: str) -> Patient:
    """Record that the imported file's REF is PATIENT (found by name and date of birth)."""
    actor.require("data.import")
    ref = _clean_ref(ref)
    if patient.organization_id != actor.organization.pk:
        raise PermissionError("That record belongs to another organization.")
    if not ref or patient.import_ref == ref:
        return patient
    if patient.import_ref:
        raise ValidationError(
            {
                "patient_ref": f"{patient.full_name} was imported before with reference "
                f"{patient.import_ref}, not {ref}."
            }
        )
    with transaction.atomic():
        _set_ref(patient, ref)
        record(
            actor,
            Action.UPDATE,
            patient,
            label=str(patient),
            detail={"changes": {"import_ref": ["", ref]}, "why": "matched by an import"},
        )
    return patient


def import_history_item(
    actor: Actor, patient: Patient, data: Mapping[str, Any], *, resolved_on: date | None = None
) -> HistoryItem:
    """Add an imported history item (``services.add_history_item``: same checks, audit row and
    recall update); one the source marks resolved keeps the day it was resolved on."""
    actor.require("data.import")
    with transaction.atomic():
        item = services.add_history_item(actor, patient, data)
        if resolved_on is not None:
            if resolved_on > timezone.localdate():
                raise ValidationError({"resolved_on": "That date is in the future."})
            HistoryItem.objects.filter(pk=item.pk).update(resolved_on=resolved_on)
            item.resolved_on = resolved_on
            record(
                actor,
                Action.UPDATE,
                item,
                label=f"{patient}: {item.code}",
                detail={
                    "patient": patient.pk,
                    "change": "resolved",
                    "resolved_on": resolved_on.isoformat(),
                    "why": "resolved in the imported record",
                },
            )
            recalls.history_changed(item)
    return item
