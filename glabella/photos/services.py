"""The only writers of photographs, and the reads the pages need. Each writer checks the
organization and the permission, writes and audits in one transaction.

- :func:`take_photo` needs ``photo.take`` and a valid *photography* consent on the day the photo
  was taken; the upload is checked and re-encoded by :mod:`glabella.photos.images` (nothing is
  stored when it is refused), written under a random name to the private photo storage, then
  the row and its audit event are written together (the files are removed again if that
  fails).
- :func:`mark_entered_in_error` hides a photo from everyday use, with a reason. Nothing is
  deleted: the row and its files stay with the record.
- :func:`set_marketing_use` switches marketing use on (only under a valid *photo-marketing*
  consent, which is remembered on the photo) or off (always allowed).
- Every page that shows photos and every file served is audited as a view
  (:func:`view_photos`, :func:`view_photo`, :func:`open_file`).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import IO, Any

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.audit.models import Action
from glabella.audit.services import record
from glabella.charting.models import Status as SessionStatus
from glabella.charting.models import TreatmentSession
from glabella.consent import services as consent_services
from glabella.consent.categories import PHOTO_MARKETING, PHOTOGRAPHY
from glabella.consent.models import Consent
from glabella.patients.models import Patient
from glabella.photos import images
from glabella.photos.models import Area, Expression, Photo, Source, View
from glabella.photos.storage import photo_storage

__all__ = [
    "Comparison",
    "Group",
    "NoPhotographyConsent",
    "choose_comparison",
    "gallery",
    "guides",
    "mark_entered_in_error",
    "marketing_allowed",
    "marketing_consent",
    "open_file",
    "patient_photos",
    "photography_consent",
    "previous_photo",
    "set_marketing_use",
    "take_photo",
    "view_photo",
    "view_photos",
]

DUPLICATE_WINDOW = timedelta(seconds=15)
MAX_REASON = 2000

MSG_NO_CONSENT = (
    "There is no valid consent to clinical photographs for this patient on this date. "
    "Take the patient's photography consent first, then the photo."
)
MSG_NO_MARKETING_CONSENT = (
    "This patient has no valid consent to the use of photographs in marketing. Take that "
    "consent first (it is separate from the consent to clinical photographs)."
)


class NoPhotographyConsent(ValidationError):
    """The patient has no valid photography consent for the day."""


# --- helpers ---------------------------------------------------------------------------------


def _check_org(actor: Actor, obj: Any) -> None:
    if obj.organization_id != actor.organization.pk:
        raise PermissionDenied("That record belongs to another organization.")


def today_for(actor: Actor) -> date:
    return consent_services.today_for(actor)


def photography_consent(patient: Patient, on: date) -> Consent | None:
    return consent_services.valid_consent(patient, PHOTOGRAPHY, on)


def marketing_consent(patient: Patient, on: date) -> Consent | None:
    return consent_services.valid_consent(patient, PHOTO_MARKETING, on)


def marketing_allowed(photo: Photo, on: date) -> bool:
    """Marked for marketing, not in error, and the patient's marketing consent still valid."""
    return (
        photo.marketing_use
        and not photo.entered_in_error
        and marketing_consent(photo.patient, on) is not None
    )


def _choice(value: Any, choices: type[Any], field_name: str, message: str) -> str:
    value = str(value or "")
    if value not in choices.values:
        raise ValidationError({field_name: message})
    return value


def _read(upload: UploadedFile | bytes | None) -> bytes:
    if upload is None:
        raise ValidationError({"photo": "Take a photo with the camera, or choose a photo file."})
    if isinstance(upload, bytes):
        data = upload
    else:
        size = upload.size or 0
        if size > images.max_bytes():
            raise ValidationError({"photo": images.too_large_message(size)})
        upload.seek(0)
        data = upload.read(images.max_bytes() + 1)
    return data


def _label(photo: Photo) -> str:
    return f"{photo.patient}: photo, {photo}"


# --- writers ---------------------------------------------------------------------------------


def take_photo(
    actor: Actor,
    patient: Patient,
    upload: UploadedFile | bytes | None,
    *,
    area: str,
    view: str,
    expression: str,
    taken_on: date | None = None,
    session: TreatmentSession | None = None,
    source: str = Source.UPLOAD,
) -> Photo:
    """Store a clinical photograph of PATIENT (see the module's docstring)."""
    actor.require("photo.take")
    _check_org(actor, patient)
    today = today_for(actor)
    taken_on = taken_on or today
    errors: dict[str, str] = {}
    try:
        area = _choice(area, Area, "area", "Choose the area photographed.")
    except ValidationError as exc:
        errors.update({k: v[0] for k, v in exc.message_dict.items()})
    try:
        view = _choice(view, View, "view", "Choose the view (front, oblique or side).")
    except ValidationError as exc:
        errors.update({k: v[0] for k, v in exc.message_dict.items()})
    try:
        expression = _choice(
            expression, Expression, "expression", "Choose the expression (rest, frown...)."
        )
    except ValidationError as exc:
        errors.update({k: v[0] for k, v in exc.message_dict.items()})
    if source not in Source.values:
        source = Source.UPLOAD
    if taken_on > today:
        errors["taken_on"] = "The date taken cannot be in the future."
    elif taken_on < patient.date_of_birth:
        errors["taken_on"] = "The date taken is before the patient was born."
    if session is not None:
        if session.organization_id != actor.organization.pk or session.patient_id != patient.pk:
            errors["session"] = "Choose one of this patient's treatment sessions."
        elif session.status == SessionStatus.VOIDED:
            errors["session"] = "That session was voided (entered in error): choose another."
    if errors:
        raise ValidationError(errors)
    if photography_consent(patient, taken_on) is None:
        raise NoPhotographyConsent({NON_FIELD_ERRORS: MSG_NO_CONSENT})

    data = _read(upload)
    try:
        cleaned = images.clean(data)
    except images.Refused as exc:
        raise ValidationError({"photo": str(exc)}) from None

    duplicate = _recent_duplicate(actor, patient, cleaned.source_sha256, area, view, expression)
    if duplicate is not None:
        return duplicate

    storage = photo_storage()
    stem = f"{actor.organization.pk}/{uuid.uuid4().hex}"
    stored: list[str] = []
    try:
        stored.append(storage.save(f"{stem}.jpg", ContentFile(cleaned.jpeg)))
        stored.append(storage.save(f"{stem}-thumb.jpg", ContentFile(cleaned.thumb)))
        with transaction.atomic():
            Patient.objects.select_for_update().filter(pk=patient.pk).first()
            duplicate = _recent_duplicate(
                actor, patient, cleaned.source_sha256, area, view, expression
            )
            if duplicate is not None:
                for name in stored:
                    storage.delete(name)
                stored = []
                return duplicate
            photo = Photo(
                organization=actor.organization,
                patient=patient,
                session=session,
                area=area,
                view=view,
                expression=expression,
                taken_on=taken_on,
                source=source,
                storage_name=stored[0],
                thumb_name=stored[1],
                content_type="image/jpeg",
                width=cleaned.width,
                height=cleaned.height,
                bytes=len(cleaned.jpeg),
                sha256=cleaned.sha256,
                source_sha256=cleaned.source_sha256,
                source_format=cleaned.source_format,
                uploaded_by=actor.user,
            )
            photo.save(force_insert=True)
            record(
                actor,
                Action.CREATE,
                photo,
                label=_label(photo),
                detail={
                    "patient": patient.pk,
                    "area": area,
                    "view": view,
                    "expression": expression,
                    "taken_on": taken_on.isoformat(),
                    "session": session.pk if session else None,
                    "source": source,
                    "sha256": cleaned.sha256,
                    "source_sha256": cleaned.source_sha256,
                    "source_format": cleaned.source_format,
                    "metadata_removed": True,
                },
            )
    except BaseException:
        for name in stored:
            storage.delete(name)
        raise
    return photo


def _recent_duplicate(
    actor: Actor, patient: Patient, source_sha256: str, area: str, view: str, expression: str
) -> Photo | None:
    """The same file for the same patient and view, just sent by the same person (a double
    submit): the photo already stored."""
    if actor.user is None:
        return None
    return (
        Photo.objects.for_org(actor.organization)
        .filter(
            patient=patient,
            source_sha256=source_sha256,
            area=area,
            view=view,
            expression=expression,
            uploaded_by=actor.user,
            entered_in_error=False,
            created_at__gte=timezone.now() - DUPLICATE_WINDOW,
        )
        .first()
    )


def mark_entered_in_error(actor: Actor, photo: Photo, reason: str) -> Photo:
    """Hide PHOTO from everyday use, with REASON. The row and its files are kept."""
    actor.require("photo.take")
    _check_org(actor, photo)
    reason = " ".join(str(reason or "").split())
    if not reason:
        raise ValidationError(
            {"reason": "Say why the photo is entered in error (for example: wrong patient)."}
        )
    if len(reason) > MAX_REASON:
        raise ValidationError({"reason": "Keep the reason under 2,000 characters."})
    with transaction.atomic():
        locked = Photo.objects.select_for_update().select_related("patient").get(pk=photo.pk)
        if locked.entered_in_error:
            return locked
        was_marketed = locked.marketing_use
        locked.entered_in_error = True
        locked.error_reason = reason
        locked.error_at = timezone.now()
        locked.error_by = actor.user
        fields = ["entered_in_error", "error_reason", "error_at", "error_by"]
        if was_marketed:
            locked.marketing_use = False
            locked.marketing_changed_at = locked.error_at
            locked.marketing_changed_by = actor.user
            fields += ["marketing_use", "marketing_changed_at", "marketing_changed_by"]
        locked.save(update_fields=fields)
        record(
            actor,
            Action.UPDATE,
            locked,
            label=f"{_label(locked)}: entered in error",
            detail={
                "patient": locked.patient_id,
                "entered_in_error": True,
                "reason": reason[:500],
                "marketing_use_removed": was_marketed,
            },
        )
    return locked


def set_marketing_use(actor: Actor, photo: Photo, use: bool) -> Photo:
    """Mark PHOTO for marketing use (needs a valid photo-marketing consent) or unmark it."""
    actor.require("photo.take")
    _check_org(actor, photo)
    today = today_for(actor)
    with transaction.atomic():
        locked = Photo.objects.select_for_update().select_related("patient").get(pk=photo.pk)
        if use:
            if locked.entered_in_error:
                raise ValidationError(
                    {NON_FIELD_ERRORS: "A photo entered in error cannot be used in marketing."}
                )
            consent = marketing_consent(locked.patient, today)
            if consent is None:
                raise ValidationError({NON_FIELD_ERRORS: MSG_NO_MARKETING_CONSENT})
        else:
            consent = None
        if locked.marketing_use == use and (not use or locked.marketing_consent_id == consent.pk):  # type: ignore[union-attr]
            return locked
        locked.marketing_use = use
        if use:
            locked.marketing_consent = consent
        locked.marketing_changed_at = timezone.now()
        locked.marketing_changed_by = actor.user
        locked.save(
            update_fields=[
                "marketing_use",
                "marketing_consent",
                "marketing_changed_at",
                "marketing_changed_by",
            ]
        )
        record(
            actor,
            Action.UPDATE,
            locked,
            label=f"{_label(locked)}: marketing use {'allowed' if use else 'removed'}",
            detail={
                "patient": locked.patient_id,
                "marketing_use": use,
                "consent": consent.pk if consent else None,
            },
        )
    return locked


# --- reads -----------------------------------------------------------------------------------


@dataclass
class Group:
    """The photos of one area, view and expression, newest first."""

    area: str
    view: str
    expression: str
    label: str
    photos: list[Photo] = field(default_factory=list)

    @property
    def newest(self) -> Photo:
        return self.photos[0]

    @property
    def oldest(self) -> Photo:
        return self.photos[-1]


def patient_photos(actor: Actor, patient: Patient, *, include_errors: bool = False) -> list[Photo]:
    actor.require("photo.view")
    _check_org(actor, patient)
    rows = (
        Photo.objects.for_org(actor.organization)
        .filter(patient=patient)
        .select_related("uploaded_by", "session", "error_by")
        .order_by("-taken_on", "-created_at", "-pk")
    )
    if not include_errors:
        rows = rows.filter(entered_in_error=False)
    return list(rows)


def gallery(photos: list[Photo]) -> list[Group]:
    """PHOTOS grouped by area, view and expression; groups in the order of the area, view and
    expression choices; each group newest first (as given)."""
    groups: OrderedDict[tuple[str, str, str], Group] = OrderedDict()
    order = {
        "area": {v: i for i, v in enumerate(Area.values)},
        "view": {v: i for i, v in enumerate(View.values)},
        "expression": {v: i for i, v in enumerate(Expression.values)},
    }
    for photo in photos:
        key = photo.group_key
        if key not in groups:
            groups[key] = Group(*key, label=photo.same_view_label)
        groups[key].photos.append(photo)
    return sorted(
        groups.values(),
        key=lambda g: (
            order["area"].get(g.area, 99),
            order["view"].get(g.view, 99),
            order["expression"].get(g.expression, 99),
        ),
    )


def previous_photo(patient: Patient, area: str, view: str) -> Photo | None:
    """The latest photo (not in error) of PATIENT's AREA from VIEW: the guide for the next."""
    return (
        Photo.objects.for_org(patient.organization_id)
        .filter(patient=patient, area=area, view=view, entered_in_error=False)
        .order_by("-taken_on", "-created_at", "-pk")
        .first()
    )


def guides(patient: Patient) -> dict[str, Photo]:
    """The guide photo for each "area|view" this patient has been photographed in."""
    result: dict[str, Photo] = {}
    rows = (
        Photo.objects.for_org(patient.organization_id)
        .filter(patient=patient, entered_in_error=False)
        .order_by("-taken_on", "-created_at", "-pk")
    )
    for photo in rows:
        result.setdefault(f"{photo.area}|{photo.view}", photo)
    return result


@dataclass(frozen=True)
class Comparison:
    before: Photo | None
    after: Photo | None
    warnings: tuple[str, ...] = ()


def choose_comparison(
    photos: list[Photo], before_id: int | None, after_id: int | None
) -> Comparison:
    """The pair to show side by side. Without a choice: the first and the latest photo of the
    most recently photographed area, view and expression. Ids outside PHOTOS (another
    patient's, another organization's) are not found: the caller turns that into a 404."""
    by_id = {p.pk: p for p in photos}
    if before_id is None and after_id is None:
        if not photos:
            return Comparison(None, None)
        latest = photos[0]
        same = [p for p in photos if p.group_key == latest.group_key]
        if len(same) < 2:
            return Comparison(None, latest)
        before, after = same[-1], same[0]
    else:
        if (before_id is not None and before_id not in by_id) or (
            after_id is not None and after_id not in by_id
        ):
            raise LookupError("No such photo for this patient.")
        before = by_id.get(before_id) if before_id is not None else None
        after = by_id.get(after_id) if after_id is not None else None
    warnings: list[str] = []
    if before is not None and after is not None:
        if (before.taken_on, before.created_at) > (after.taken_on, after.created_at):
            before, after = after, before
        if before.pk == after.pk:
            warnings.append("The same photo is shown twice: choose two different photos.")
        if before.area != after.area:
            warnings.append(
                f"Different areas: {before.get_area_display()} and "
                f"{after.get_area_display()}. Compare photos of the same area."
            )
        if before.view != after.view:
            warnings.append(
                f"Different views: {before.get_view_display().lower()} and "
                f"{after.get_view_display().lower()}. A fair comparison needs the same view."
            )
        if before.expression != after.expression:
            warnings.append(
                f"Different expressions: {before.get_expression_display().lower()} and "
                f"{after.get_expression_display().lower()}. Compare the same expression."
            )
        for p in (before, after):
            if p.entered_in_error:
                warnings.append(f"The photo of {p.taken_on:%d/%m/%Y} was entered in error.")
    return Comparison(before, after, tuple(warnings))


# --- views of photos (audited) ---------------------------------------------------------------


def view_photos(actor: Actor, patient: Patient, part: str, photos: list[Photo]) -> None:
    """Audit that ACTOR was shown PATIENT's photos on a page (gallery, comparison...)."""
    _check_org(actor, patient)
    record(
        actor,
        Action.VIEW,
        patient,
        label=f"{patient}: photos",
        detail={"part": part, "photos": [p.pk for p in photos][:200]},
    )


def view_photo(actor: Actor, photo: Photo, part: str = "photo") -> None:
    _check_org(actor, photo)
    record(
        actor,
        Action.VIEW,
        photo,
        label=_label(photo),
        detail={"part": part, "patient": photo.patient_id},
    )


def open_file(actor: Actor, photo: Photo, *, thumb: bool = False) -> IO[bytes]:
    """The stored JPEG of PHOTO (or its thumbnail), opened for reading; the serving is audited.
    A file missing from the storage raises FileNotFoundError."""
    actor.require("photo.view")
    _check_org(actor, photo)
    name = photo.thumb_name if thumb else photo.storage_name
    storage = photo_storage()
    try:
        handle = storage.open(name, "rb")
    except (FileNotFoundError, OSError) as exc:
        raise FileNotFoundError(name) from exc
    view_photo(actor, photo, part="thumbnail" if thumb else "file")
    return handle  # type: ignore[return-value]
