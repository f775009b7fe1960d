"""The only writers of consent data. Each writer: check, write, audit, in one transaction.

Reads that other apps rely on: ``valid_consent`` (may this session be signed?),
``summary_for`` (the patient page), ``category_for_indication`` and ``verify``.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.audit.models import Action
from glabella.audit.services import record
from glabella.consent import files
from glabella.consent.categories import (
    CATEGORIES,
    CATEGORY_LABELS,
    category_for_indication,
    label,
)
from glabella.consent.defaults import DEFAULTS
from glabella.consent.models import Consent, ConsentTemplate, Method
from glabella.patients.models import Patient
from glabella.prepared import Prepared

if TYPE_CHECKING:
    from glabella.accounts.models import Clinic, Organization, User

__all__ = [
    "CATEGORIES",
    "PLACEHOLDERS",
    "CategorySummary",
    "add_months",
    "category_for_indication",
    "current_template",
    "ensure_default_templates",
    "new_template_version",
    "patient_consents",
    "png_from_data_url",
    "render",
    "summary_for",
    "take_consent",
    "templates_by_category",
    "text_hash",
    "today_for",
    "valid_consent",
    "verify",
    "view_consent",
    "view_patient_consents",
    "withdraw",
]

PLACEHOLDERS = ("patient_name", "date_of_birth", "clinic_name", "date")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_TITLE = 200
MAX_BODY = 30_000
MIN_VALID_MONTHS = 1
MAX_VALID_MONTHS = 60
DUPLICATE_WINDOW = timedelta(seconds=10)
DATA_URL_PREFIX = "data:image/png;base64,"

MSG_READ = "Tick this box once the patient has read the form and had the chance to ask questions."
MSG_NO_SIGNATURE = (
    "Ask the patient to sign in the box, or choose “On paper, then scan it” and upload "
    "the signed form."
)
MSG_BAD_SIGNATURE = (
    "The signature could not be read. Press “Clear” and ask the patient to sign again."
)
MSG_BLANK_SIGNATURE = (
    "The signature box looks empty. Ask the patient to sign across the box "
    "with a finger or the stylus."
)
MSG_NO_SCAN = "Upload the scan or photo of the signed paper form."
MSG_SCAN_TYPE = (
    "This file is not a PDF, PNG or JPEG (checked by what is inside it, not by its name). "
    "Scan the signed form as a PDF or take a photo of it."
)


# --- small helpers -----------------------------------------------------------------


def _check_category(category: str) -> None:
    if category not in CATEGORIES:
        raise ValidationError({"category": "Choose one of the consent categories."})


def _check_org(actor: Actor, obj: Any) -> None:
    if obj.organization_id != actor.organization.pk:
        # Pages never get here (they look up within the organization), but a service
        # must not trust its caller.
        raise PermissionDenied("That record belongs to another organization.")


def today_for(actor: Actor | None) -> date:
    """Today where the actor works (the clinic's time zone), else the server's."""
    return actor.today() if actor is not None else timezone.localdate()


def add_months(day: date, months: int) -> date:
    """DAY plus MONTHS calendar months; the 31st becomes the last day of a shorter month."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _normalise_text(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


def _setup_actor(organization: Organization, created_by: User | None) -> Actor:
    if created_by is None:
        return Actor.system(organization, via="setup")
    return Actor(organization=organization, user=created_by, clinic=None, role=None, via="setup")


# --- templates ---------------------------------------------------------------------


def current_template(organization: Organization, category: str) -> ConsentTemplate | None:
    return (
        ConsentTemplate.objects.for_org(organization)
        .filter(category=category, is_current=True)
        .first()
    )


def templates_by_category(organization: Organization) -> dict[str, list[ConsentTemplate]]:
    """Every version of every category, newest first (the current one is first)."""
    result: dict[str, list[ConsentTemplate]] = {c: [] for c in CATEGORIES}
    rows = (
        ConsentTemplate.objects.for_org(organization)
        .select_related("created_by")
        .order_by("category", "-version")
    )
    for t in rows:
        result.setdefault(t.category, []).append(t)
    return result


def ensure_default_templates(
    organization: Organization,
    created_by: User | None = None,
    *,
    actor: Actor | None = None,
) -> list[ConsentTemplate]:
    """Version 1 of the default wording for each category that has no template yet.

    Safe to call again and again (returns only what it created). Called when an
    organization is set up, and by the pages before they need a template.
    """
    existing = set(
        ConsentTemplate.objects.for_org(organization).values_list("category", flat=True).distinct()
    )
    missing = [c for c in CATEGORIES if c not in existing]
    if not missing:
        return []
    who = actor or _setup_actor(organization, created_by)
    created: list[ConsentTemplate] = []
    for category in missing:
        default = DEFAULTS[category]
        try:
            with transaction.atomic():
                template = ConsentTemplate(
                    organization=organization,
                    category=category,
                    version=1,
                    title=default.title,
                    body=default.body,
                    valid_months=default.valid_months,
                    created_by=created_by if created_by is not None else who.user,
                    is_current=True,
                )
                template.save(force_insert=True)
                record(
                    who,
                    Action.CREATE,
                    template,
                    label=f"Consent template: {label(category)} v1 (default wording)",
                    detail={"category": category, "version": 1, "default": True},
                )
        except IntegrityError:
            # Someone else created it at the same moment: theirs stands.
            continue
        created.append(template)
    return created


def _clean_template(
    title: str, body: str, valid_months: Any
) -> tuple[str, str, int, dict[str, str]]:
    errors: dict[str, str] = {}
    title = " ".join(str(title or "").split())
    if not title:
        errors["title"] = "Give the form a title."
    elif len(title) > MAX_TITLE:
        errors["title"] = f"Keep the title under {MAX_TITLE} characters."
    body = _normalise_text(str(body or ""))
    if not body:
        errors["body"] = "Write the text the patient will read."
    elif len(body) > MAX_BODY:
        errors["body"] = f"The text is too long (at most {MAX_BODY:,} characters)."
    else:
        unknown = sorted({m for m in _PLACEHOLDER.findall(body) if m not in PLACEHOLDERS})
        if unknown:
            allowed = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            errors["body"] = (
                "Unknown placeholder "
                + ", ".join("{" + u + "}" for u in unknown)
                + f". You can use {allowed}."
            )
    months = 0
    try:
        months = int(str(valid_months).strip())
    except (TypeError, ValueError):
        errors["valid_months"] = "Enter a whole number of months, e.g. 12."
    else:
        if not MIN_VALID_MONTHS <= months <= MAX_VALID_MONTHS:
            errors["valid_months"] = (
                f"A consent can last from {MIN_VALID_MONTHS} to {MAX_VALID_MONTHS} months."
            )
    return title, body, months, errors


def new_template_version(
    actor: Actor, category: str, title: str, body: str, valid_months: int = 12
) -> ConsentTemplate:
    """Write a new version of the CATEGORY form and make it the current one.

    Earlier versions stay as they were: every consent keeps pointing at the version the
    patient signed.
    """
    actor.require("consent.manage_templates")
    _check_category(category)
    title, body, months, errors = _clean_template(title, body, valid_months)
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            versions = list(
                ConsentTemplate.objects.for_org(actor.organization)
                .select_for_update()
                .filter(category=category)
                .order_by("-version")
            )
            current = next((t for t in versions if t.is_current), None)
            if (
                current is not None
                and current.title == title
                and current.body == body
                and current.valid_months == months
            ):
                raise ValidationError(
                    {NON_FIELD_ERRORS: "Nothing has changed: this is the current version."}
                )
            number = (versions[0].version if versions else 0) + 1
            if current is not None:
                current.is_current = False
                current.save(update_fields=["is_current"])
            template = ConsentTemplate(
                organization=actor.organization,
                category=category,
                version=number,
                title=title,
                body=body,
                valid_months=months,
                created_by=actor.user,
                is_current=True,
            )
            template.save(force_insert=True)
            record(
                actor,
                Action.CREATE,
                template,
                label=f"Consent template: {label(category)} v{number}",
                detail={
                    "category": category,
                    "version": number,
                    "replaces": current.version if current else None,
                    "valid_months": months,
                    "hash": text_hash(body),
                },
            )
    except IntegrityError:
        raise ValidationError(
            {
                NON_FIELD_ERRORS: "Someone saved a new version of this form at the same moment. "
                "Reload the page and check theirs before writing another."
            }
        ) from None
    return template


def render(
    template: ConsentTemplate, patient: Patient, clinic: Clinic | None, on_date: date
) -> str:
    """The text the patient reads, with the placeholders filled in.

    Only the four known placeholders are replaced (never ``str.format``: a template is
    text written by a person, and must not reach into Python objects).
    """
    clinic_name = clinic.name if clinic is not None else str(template.organization)
    values = {
        "patient_name": patient.full_name,
        "date_of_birth": f"{patient.date_of_birth:%d/%m/%Y}",
        "clinic_name": clinic_name,
        "date": f"{on_date:%d/%m/%Y}",
    }

    def fill(match: re.Match[str]) -> str:
        return values.get(match.group(1), match.group(0))

    return _normalise_text(_PLACEHOLDER.sub(fill, template.body))


# --- consents ----------------------------------------------------------------------


def png_from_data_url(value: str) -> bytes:
    """The PNG bytes of a ``data:image/png;base64,...`` URL from the signature pad."""
    value = (value or "").strip()
    if not value:
        return b""
    if not value.startswith(DATA_URL_PREFIX):
        raise ValidationError({"signature": MSG_BAD_SIGNATURE})
    encoded = value[len(DATA_URL_PREFIX) :]
    if len(encoded) > files.MAX_SIGNATURE_BYTES * 4 // 3 + 4:
        raise ValidationError({"signature": MSG_BAD_SIGNATURE})
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError({"signature": MSG_BAD_SIGNATURE}) from None


def _check_signature(png: bytes | None) -> str | None:
    if not png:
        return MSG_NO_SIGNATURE
    try:
        files.inspect_png(png)
    except files.BlankImage:
        return MSG_BLANK_SIGNATURE
    except files.BadImage:
        return MSG_BAD_SIGNATURE
    return None


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f}".rstrip("0").rstrip(".") + " MB"


def _check_scan(scan: UploadedFile | None) -> tuple[str | None, files.ScanKind | None]:
    if scan is None:
        return MSG_NO_SCAN, None
    size = scan.size or 0
    if size == 0:
        return "The file is empty. Scan the form again.", None
    limit = int(settings.GLABELLA_MAX_UPLOAD_BYTES)
    if size > limit:
        return (
            f"The file is {_megabytes(size)}; the limit is {_megabytes(limit)}. "
            "Scan at a lower resolution or in black and white.",
            None,
        )
    scan.seek(0)
    head = scan.read(16)
    scan.seek(0)
    kind = files.sniff_scan(head)
    if kind is None:
        return MSG_SCAN_TYPE, None
    return None, kind


def take_consent(
    actor: Actor,
    patient: Patient,
    category: str,
    *,
    method: str,
    signature_png: bytes | None = None,
    scan: UploadedFile | None = None,
    signed_on: date | None = None,
    read_confirmed: bool = False,
    expected_version: int | None = None,
    form_token: str = "",
) -> Consent:
    """Record PATIENT's consent for CATEGORY on the current version of its form.

    ``method`` is "drawn" (``signature_png``: the PNG from the signature pad, dated today)
    or "paper" (``scan``: the signed form as PDF/PNG/JPEG, ``signed_on`` the date on it).
    ``read_confirmed``: the person taking consent confirms the patient read the form and
    could ask questions. ``expected_version``: the version the patient was shown; if the
    form changed since, nothing is saved. ``form_token``: the page's one-time token; the
    same token again (a double submit) returns the consent it already created, as does
    the same user recording the same text for the same patient within a few seconds.
    """
    actor.require("consent.record")
    _check_org(actor, patient)
    _check_category(category)
    today = today_for(actor)
    errors: dict[str, str] = {}
    kind: files.ScanKind | None = None
    if method == Method.DRAWN:
        problem = _check_signature(signature_png)
        if problem:
            errors["signature"] = problem
        if signed_on is not None and signed_on != today:
            errors["signed_on"] = "A signature drawn on screen is dated today."
        signed_on = today
    elif method == Method.PAPER:
        problem, kind = _check_scan(scan)
        if problem:
            errors["scan"] = problem
        signed_on = signed_on or today
        if signed_on > today:
            errors["signed_on"] = "The date signed cannot be in the future."
        elif signed_on < patient.date_of_birth:
            errors["signed_on"] = "The date signed is before the patient was born."
    else:
        errors["method"] = "Choose how the patient signs: on screen or on a paper form."
    if not read_confirmed:
        errors["read_confirmed"] = MSG_READ
    if errors:
        raise ValidationError(errors)
    assert signed_on is not None

    if form_token:
        earlier = _earlier_submission(actor, patient, category, form_token)
        if earlier is not None:
            return earlier

    ensure_default_templates(actor.organization, actor=actor)
    stored_name = ""
    try:
        with transaction.atomic():
            # One writer per patient at a time (PostgreSQL row lock; SQLite's write lock).
            Patient.objects.select_for_update().filter(pk=patient.pk).first()
            template = current_template(actor.organization, category)
            if template is None:  # pragma: no cover - ensure_default_templates made one
                raise ValidationError({NON_FIELD_ERRORS: "There is no form for this category."})
            if expected_version is not None and template.version != expected_version:
                raise ValidationError(
                    {
                        NON_FIELD_ERRORS: f"The wording of this form changed (now version "
                        f"{template.version}) while the page was open. Let the patient read "
                        "the new version below, then sign again."
                    }
                )
            text = render(template, patient, actor.clinic, signed_on)
            digest = text_hash(text)
            duplicate = _recent_duplicate(actor, patient, category, digest)
            if duplicate is not None:
                return duplicate
            consent = Consent(
                organization=actor.organization,
                patient=patient,
                clinic=actor.clinic,
                template=template,
                category=category,
                template_version=template.version,
                rendered_text=text,
                text_hash=digest,
                method=method,
                signed_on=signed_on,
                valid_until=add_months(signed_on, template.valid_months),
                recorded_by=actor.user,
                form_token=form_token[:64],
            )
            if method == Method.DRAWN:
                consent.signature = signature_png
            else:
                assert scan is not None and kind is not None
                consent.scan_content_type = kind.content_type
                consent.scan.save(f"{uuid.uuid4().hex}.{kind.extension}", scan, save=False)
                stored_name = consent.scan.name or ""
            consent.save(force_insert=True)
            record(
                actor,
                Action.CREATE,
                consent,
                label=f"{patient}: {label(category)} consent",
                detail={
                    "patient": patient.pk,
                    "category": category,
                    "template_version": template.version,
                    "method": method,
                    "signed_on": signed_on.isoformat(),
                    "valid_until": consent.valid_until.isoformat(),
                    "hash": digest,
                    "read_confirmed": True,
                },
            )
    except BaseException as exc:
        if stored_name:
            Consent._meta.get_field("scan").storage.delete(stored_name)  # type: ignore[attr-defined]
        if isinstance(exc, IntegrityError) and form_token:
            earlier = _earlier_submission(actor, patient, category, form_token)
            if earlier is not None:
                return earlier
        raise
    return consent


def _earlier_submission(
    actor: Actor, patient: Patient, category: str, form_token: str
) -> Consent | None:
    earlier = Consent.objects.for_org(actor.organization).filter(form_token=form_token).first()
    if earlier is None:
        return None
    if earlier.patient_id != patient.pk or earlier.category != category:
        raise ValidationError(
            {NON_FIELD_ERRORS: "This form was already used for another consent. Reload the page."}
        )
    return earlier


def _recent_duplicate(actor: Actor, patient: Patient, category: str, digest: str) -> Consent | None:
    if actor.user is None:
        return None
    return (
        Consent.objects.for_org(actor.organization)
        .filter(
            patient=patient,
            category=category,
            text_hash=digest,
            recorded_by=actor.user,
            withdrawn_at__isnull=True,
            recorded_at__gte=timezone.now() - DUPLICATE_WINDOW,
        )
        .order_by("recorded_at")
        .first()
    )


def withdraw(actor: Actor, consent: Consent, reason: str) -> Consent:
    """Record that the patient withdrew CONSENT, and why. The consent itself stays."""
    actor.require("consent.record")
    _check_org(actor, consent)
    reason = _normalise_text(str(reason or ""))
    if not reason:
        raise ValidationError(
            {"reason": "Say why the consent is withdrawn (for example, what the patient said)."}
        )
    if len(reason) > 2000:
        raise ValidationError({"reason": "Keep the reason under 2,000 characters."})
    with transaction.atomic():
        locked = Consent.objects.select_for_update().get(pk=consent.pk)
        if locked.withdrawn_at is not None:
            return locked
        locked.withdrawn_at = timezone.now()
        locked.withdrawn_reason = reason
        locked.withdrawn_by = actor.user
        locked.save(update_fields=["withdrawn_at", "withdrawn_reason", "withdrawn_by"])
        record(
            actor,
            Action.UPDATE,
            locked,
            label=f"{locked.patient}: {label(locked.category)} consent withdrawn",
            detail={"withdrawn": True, "reason": reason[:500], "patient": locked.patient_id},
        )
    return locked


def valid_consent(patient: Patient, category: str, on: date) -> Consent | None:
    """The latest consent of PATIENT for CATEGORY that covers day ON, if any.

    Withdrawn consents never count; ON must lie within signed_on..valid_until (both ends
    included).
    """
    return (
        Consent.objects.for_org(patient.organization_id)
        .filter(
            patient=patient,
            category=category,
            withdrawn_at__isnull=True,
            signed_on__lte=on,
            valid_until__gte=on,
        )
        .order_by("-signed_on", "-recorded_at")
        .first()
    )


def verify(consent: Consent) -> bool:
    """True when the stored text is exactly the text that was signed (its hash matches)."""
    return hmac.compare_digest(text_hash(consent.rendered_text), consent.text_hash)


@dataclass(frozen=True)
class CategorySummary:
    category: str
    label: str
    consent: Consent | None  # valid on the day asked about
    latest: Consent | None  # the most recent one, whatever its state


_CONSENTS = Prepared(
    lambda org, patient: Consent.objects.filter(organization_id=org, patient_id=patient).order_by(
        "-signed_on", "-recorded_at"
    )
)


def summary_for(patient: Patient, on_date: date) -> list[CategorySummary]:
    """Per category, in a fixed order: the consent valid on ON_DATE (or None)."""
    consents = _CONSENTS(patient.organization_id, patient.pk)
    result = []
    for category in CATEGORIES:
        mine = [c for c in consents if c.category == category]
        valid = next((c for c in mine if c.is_valid_on(on_date)), None)
        result.append(
            CategorySummary(category, CATEGORY_LABELS[category], valid, mine[0] if mine else None)
        )
    return result


def patient_consents(actor: Actor, patient: Patient) -> list[Consent]:
    actor.require("consent.view")
    _check_org(actor, patient)
    return list(
        Consent.objects.for_org(actor.organization)
        .filter(patient=patient)
        .select_related("recorded_by", "withdrawn_by")
        .order_by("-signed_on", "-recorded_at")
    )


def view_patient_consents(actor: Actor, patient: Patient) -> None:
    """Audit that ACTOR looked at PATIENT's consents."""
    _check_org(actor, patient)
    record(actor, Action.VIEW, patient, label=str(patient), detail={"part": "consents"})


def view_consent(actor: Actor, consent: Consent, part: str = "consent") -> None:
    """Audit that ACTOR opened a signed consent (or its scan)."""
    _check_org(actor, consent)
    record(
        actor,
        Action.VIEW,
        consent,
        label=f"{consent.patient}: {label(consent.category)} consent",
        detail={"part": part, "patient": consent.patient_id},
    )
