"""The patient's own pages: links (create, send, show as QR, revoke, check) and what they show.

The link
========
A link is ``/my/<secret>/``: the secret is 32 random bytes (43 URL-safe characters) made
when the link is created, put in the e-mail, the text message or the QR code, and never
stored: the table keeps its SHA-256 only (``PatientLink.token_hash``, a unique index, so the
lookup is by hash and no secret is compared in Python). On every request the secret is
checked against the hash, the expiry (``GLABELLA_PORTAL_LINK_DAYS`` after creation) and the
revocation, and the patient must still belong to the link's organization. An unknown,
expired or revoked link gets the same polite page with no data and the same status (404):
the page says nothing about which.

- **Sending.** By e-mail (the patient's address, Django mail) or SMS (the provider of
  ``glabella.scheduling.sms``). The message is sent first and the link is written (with its
  audit event, in one transaction) only once the message has gone: a message that could not
  be sent leaves nothing behind, and a link that exists was delivered or shown. A patient
  with no e-mail address or mobile number is refused in words.
- **QR code.** Created and shown once on the staff page (an inline SVG made by segno on the
  server, nothing fetched) for the patient to scan in the clinic.
- **Revoking** sets ``revoked_at``/``revoked_by`` (audited); the link is never deleted.
- **Rate limit.** Each link, and each client address, may make
  ``GLABELLA_PORTAL_RATE_PER_MINUTE`` requests a minute (Django's cache, a fixed one-minute
  window); past it the pages answer 429. Unknown secrets count against the address, so
  guessing is slow as well as hopeless.
- **Use.** ``last_used_at`` is written at most once every 5 minutes, with an audit event
  ("patient's own pages opened", by ``system (patient link N)``, with the address).

The patient as actor
====================
Writes from the pages (diary days, questionnaires, "my treatment is wearing off") go through
the outcomes services with :func:`portal_actor`: the link's organization, no user, no role,
``via="patient link <pk>"``, so their audit events say which link wrote them.

What the pages show
===================
Only the link's patient, read through ``for_org(link.organization).filter(patient=...)``:
upcoming appointments (booked or arrived, from now on, in the clinic's time; the clinic, the
type and the practitioner's first name only), the treatment history (signed or amended
sessions, never drafts or voided ones: date, product brand, total units in the product's own
units, the areas treated) and the aftercare of each treatment. Never notes, lots, findings,
other staff or other patients.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import smtplib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from glabella.accounts.actor import Actor, client_ip
from glabella.accounts.models import Clinic
from glabella.audit.models import Action
from glabella.audit.services import record
from glabella.charting.models import Status, TreatmentSession
from glabella.clinical import catalogue, indications
from glabella.patients.models import Patient
from glabella.portal import aftercare
from glabella.portal.models import PatientLink, SentBy
from glabella.scheduling import sms
from glabella.scheduling.models import Appointment, AppointmentStatus, AppointmentType

if TYPE_CHECKING:
    from django.http import HttpRequest

TOKEN_BYTES = 32
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{40,64}$")
USED_AGAIN_AFTER = timedelta(minutes=5)
SIGNED = (Status.SIGNED, Status.AMENDED)
HISTORY_LIMIT = 50


class LinkRefused(ValueError):
    """The link cannot be sent as asked. ``field`` names what is wrong; the text is for a nurse."""

    def __init__(self, message: str, field: str = "channel") -> None:
        super().__init__(message)
        self.field = field


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def link_path(token: str) -> str:
    return reverse("portal:home", args=[token])


def link_url(token: str, base: str | None = None) -> str:
    """The absolute address of the link (``GLABELLA_SITE_URL`` unless BASE is given)."""
    return (base if base is not None else settings.GLABELLA_SITE_URL).rstrip("/") + link_path(token)


@dataclass(frozen=True)
class NewLink:
    """A link just made: the secret exists only here (and in the message or QR code)."""

    link: PatientLink
    token: str

    @property
    def path(self) -> str:
        return link_path(self.token)


def link_days() -> int:
    return int(settings.GLABELLA_PORTAL_LINK_DAYS)


def _check(actor: Actor, patient: Patient) -> None:
    actor.require("portal.manage")
    if actor.user is None:
        raise PermissionDenied("A link to a patient's pages is sent by a person.")
    if patient.organization_id != actor.organization.pk:
        raise PermissionError("That patient belongs to another organization.")


# --- staff: the links of a patient -----------------------------------------------------------


def links_of(actor: Actor, patient: Patient) -> QuerySet[PatientLink]:
    """PATIENT's links, newest first (active, expired and revoked)."""
    actor.require("portal.manage")
    if patient.organization_id != actor.organization.pk:
        raise PermissionError("That patient belongs to another organization.")
    return (
        PatientLink.objects.for_org(actor.organization)
        .filter(patient=patient)
        .select_related("created_by", "revoked_by")
        .order_by("-created_at", "-pk")
    )


def is_live(link: PatientLink, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return link.revoked_at is None and link.expires_at > now


def _clinic_name(actor: Actor, patient: Patient) -> str:
    clinic = actor.clinic or patient.home_clinic
    return clinic.name if clinic else actor.organization.name


def _write(
    actor: Actor,
    patient: Patient,
    token: str,
    sent_by: str,
    sent_to: str,
    now: datetime,
) -> PatientLink:
    with transaction.atomic():
        link = PatientLink.objects.create(
            organization=actor.organization,
            patient=patient,
            token_hash=hash_token(token),
            sent_by=sent_by,
            sent_to=sent_to,
            created_by=actor.user,
            created_at=now,
            expires_at=now + timedelta(days=link_days()),
        )
        record(
            actor,
            Action.CREATE,
            link,
            label=f"link to the patient's own pages for {patient.full_name}, "
            f"{SentBy(sent_by).label.lower()}",
            detail={
                "patient": patient.pk,
                "sent_by": sent_by,
                "sent_to": sent_to,
                "expires_at": link.expires_at.isoformat(),
            },
        )
    return link


def email_text(patient: Patient, clinic_name: str, url: str, expires: date) -> tuple[str, str]:
    subject = f"Your own pages at {clinic_name}"
    body = (
        f"Hello {patient.given_name},\n\n"
        f"{clinic_name} has made you a link to your own pages: your next appointments, "
        "what you were treated with, your headache diary and questionnaires, and the "
        "aftercare advice for each treatment.\n\n"
        f"{url}\n\n"
        f"The link works until {expires:%d/%m/%Y}. Keep it to yourself: anyone who has it "
        "can see these pages. If you did not expect this message, please call the clinic "
        "and they will switch the link off.\n\n"
        f"{clinic_name}\n"
    )
    return subject, body


def sms_text(clinic_name: str, url: str, expires: date) -> str:
    return (
        f"{clinic_name}: your own pages (appointments, treatments, diary): {url} "
        f"Works until {expires:%d/%m/%Y}. Keep it private."
    )


def send_link(
    actor: Actor, patient: Patient, channel: str, *, now: datetime | None = None
) -> NewLink:
    """Make a link for PATIENT and send it by e-mail or SMS; the link exists once it has gone.

    Raises LinkRefused (in words) when the patient has no address for CHANNEL or the message
    could not be sent; nothing is written then."""
    _check(actor, patient)
    now = now or timezone.now()
    clinic_name = _clinic_name(actor, patient)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    url = link_url(token)
    expires = (now + timedelta(days=link_days())).date()
    if channel == SentBy.EMAIL:
        address = (patient.email or "").strip()
        if not address:
            raise LinkRefused(
                f"{patient.full_name} has no e-mail address. Add one to their details, "
                "send the link by text message, or show the QR code.",
            )
        subject, body = email_text(patient, clinic_name, url, expires)
        try:
            EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [address]).send()
        except (smtplib.SMTPException, OSError) as exc:
            raise LinkRefused(
                f"The e-mail to {address} could not be sent ({exc}). Nothing was sent; "
                "try again, or show the QR code instead."
            ) from None
        return NewLink(_write(actor, patient, token, SentBy.EMAIL, address, now), token)
    if channel == SentBy.SMS:
        number = sms.normalise_number(patient.phone)
        if not number:
            raise LinkRefused(
                f"{patient.full_name} has no phone number. Add one to their details, "
                "send the link by e-mail, or show the QR code.",
            )
        try:
            sms.provider().send(
                number, sms_text(clinic_name, url, expires), f"portal-{hash_token(token)[:32]}"
            )
        except sms.SmsError as exc:
            raise LinkRefused(
                f"The text message could not be sent: {exc.reason} Try again, or show the "
                "QR code instead."
            ) from None
        return NewLink(_write(actor, patient, token, SentBy.SMS, number, now), token)
    raise LinkRefused("Choose how to give the link: e-mail, text message or QR code.")


def show_link(actor: Actor, patient: Patient, *, now: datetime | None = None) -> NewLink:
    """Make a link for PATIENT to scan as a QR code in the clinic (shown once)."""
    _check(actor, patient)
    now = now or timezone.now()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return NewLink(_write(actor, patient, token, SentBy.QR, "", now), token)


def qr_svg(url: str) -> str:
    """URL as a QR code: an inline SVG (segno, made here, nothing fetched)."""
    import segno

    code = segno.make(url, error="m", micro=False)
    return str(
        code.svg_inline(
            scale=6,
            border=4,
            dark="#000",
            light="#fff",
            title="QR code of the link to the patient's own pages",
            svgclass="portal-qr",
            omitsize=True,
            lineclass="portal-qr-line",
        )
    )


def revoke_link(actor: Actor, link: PatientLink, *, now: datetime | None = None) -> PatientLink:
    """Switch LINK off from now on (audited). Revoking a revoked link changes nothing."""
    actor.require("portal.manage")
    if link.organization_id != actor.organization.pk:
        raise PermissionError("That link belongs to another organization.")
    if actor.user is None:
        raise PermissionDenied("A link is revoked by a person.")
    with transaction.atomic():
        fresh = PatientLink.objects.select_for_update().select_related("patient").get(pk=link.pk)
        if fresh.revoked_at is not None:
            return fresh
        fresh.revoked_at = now or timezone.now()
        fresh.revoked_by = actor.user
        fresh.save(update_fields=["revoked_at", "revoked_by"])
        record(
            actor,
            Action.UPDATE,
            fresh,
            label=f"link to the patient's own pages for {fresh.patient.full_name} revoked",
            detail={"patient": fresh.patient_id, "revoked": True},
        )
    return fresh


# --- the patient's side: checking a link -----------------------------------------------------


def link_for_token(token: str, now: datetime | None = None) -> PatientLink | None:
    """The live link for TOKEN, or None (malformed, unknown, expired or revoked)."""
    if not TOKEN_PATTERN.match(token or ""):
        return None
    now = now or timezone.now()
    link = (
        # scoped: found by the hash of the secret link: the token is the key
        PatientLink.objects.filter(
            token_hash=hash_token(token), revoked_at__isnull=True, expires_at__gt=now
        )
        .select_related("organization", "patient", "patient__home_clinic")
        .first()
    )
    if link is None or link.patient.organization_id != link.organization_id:
        return None
    return link


def _over(key: str, limit: int) -> bool:
    """Count one request against KEY in this minute; True when past LIMIT."""
    window = int(timezone.now().timestamp() // 60)
    full = f"portal-rate:{key}:{window}"
    if cache.add(full, 1, timeout=120):
        count = 1
    else:
        try:
            count = cache.incr(full)
        except ValueError:  # expired between add and incr
            cache.add(full, 1, timeout=120)
            count = 1
    return count > limit


def rate_limited(token: str, ip: str) -> bool:
    """True when this request is one too many for the link or for the client address."""
    limit = int(settings.GLABELLA_PORTAL_RATE_PER_MINUTE)
    by_ip = _over(f"ip:{ip or '-'}", limit)
    by_link = _over(f"link:{hash_token(token or '')[:32]}", limit)
    return by_ip or by_link


def portal_actor(link: PatientLink, request: HttpRequest) -> Actor:
    """The patient, acting through LINK: no user, no role, the link named in the audit."""
    return Actor(
        organization=link.organization,
        user=None,
        clinic=None,
        role=None,
        ip=client_ip(request),
        request_id=getattr(request, "request_id", ""),
        via=f"patient link {link.pk}",
    )


def mark_used(link: PatientLink, actor: Actor, now: datetime | None = None) -> None:
    """Note that LINK was used (at most every 5 minutes, with an audit event)."""
    now = now or timezone.now()
    if link.last_used_at is not None and now - link.last_used_at < USED_AGAIN_AFTER:
        return
    with transaction.atomic():
        PatientLink.objects.filter(pk=link.pk).update(last_used_at=now)
        record(
            actor,
            Action.VIEW,
            link.patient,
            label=f"{link.patient.full_name}'s own pages opened",
            detail={"link": link.pk},
        )
    link.last_used_at = now


# --- the patient's side: what the pages show --------------------------------------------------


def patient_clinic(patient: Patient) -> Clinic | None:
    """The clinic whose clock the patient's pages use: the home clinic, else the
    organization's first (as the outcomes services count a diary day)."""
    if patient.home_clinic_id:
        return patient.home_clinic
    return Clinic.objects.filter(organization_id=patient.organization_id).order_by("pk").first()


def zone_of(patient: Patient) -> ZoneInfo:
    clinic = patient_clinic(patient)
    return ZoneInfo((clinic.timezone if clinic else "") or "UTC")


def today_for(patient: Patient, now: datetime | None = None) -> date:
    return timezone.localtime(now or timezone.now(), zone_of(patient)).date()


@dataclass(frozen=True)
class Upcoming:
    starts_at: datetime  # in the clinic's time
    ends_at: datetime
    kind: str
    clinic: str
    address: str
    with_whom: str


def upcoming(link: PatientLink, now: datetime | None = None) -> list[Upcoming]:
    now = now or timezone.now()
    rows = (
        Appointment.objects.for_org(link.organization)
        .filter(
            patient=link.patient,
            status__in=(AppointmentStatus.BOOKED, AppointmentStatus.ARRIVED),
            ends_at__gt=now,
        )
        .select_related("clinic", "practitioner")
        .order_by("starts_at", "pk")[:20]
    )
    out = []
    for a in rows:
        zone = ZoneInfo(a.clinic.timezone or "UTC")
        out.append(
            Upcoming(
                starts_at=timezone.localtime(a.starts_at, zone),
                ends_at=timezone.localtime(a.ends_at, zone),
                kind=AppointmentType(a.kind).label if a.kind else "Appointment",
                clinic=a.clinic.name,
                address=a.clinic.address,
                with_whom=(a.practitioner.first_name or "").strip(),
            )
        )
    return out


_brand = catalogue.brand_name


def area_words(area: str) -> str:
    text = (area or "").replace("-", " ").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def units_text(total: Decimal, brand: str) -> str:
    number = f"{total.normalize():f}" if total == total.to_integral() else f"{total:f}"
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    return f"{number} {brand} units"


@dataclass
class Treatment:
    session_id: int
    treated_on: date
    product: str
    indication: str
    total_units: Decimal
    units: str
    areas: list[str]
    advice: aftercare.Aftercare
    returned_on: date | None = None
    area_units: list[tuple[str, str]] = field(default_factory=list)


def treatments(link: PatientLink) -> list[Treatment]:
    """The patient's treatments here, newest first: signed or amended sessions, live points."""
    from glabella.charting.models import InjectionPoint

    sessions = list(
        TreatmentSession.objects.for_org(link.organization)
        .filter(patient=link.patient, status__in=SIGNED)
        .only("pk", "treated_on", "product_id", "indication")
        .order_by("-treated_on", "-pk")[:HISTORY_LIMIT]
    )
    points = (
        InjectionPoint.objects.for_org(link.organization)
        .filter(session__in=[s.pk for s in sessions], removed=False)
        .only("session_id", "area", "units")
        .order_by("number")
    )
    by_session: dict[int, OrderedDict[str, Decimal]] = {s.pk: OrderedDict() for s in sessions}
    for p in points:
        areas = by_session[p.session_id]
        areas[p.area] = areas.get(p.area, Decimal(0)) + p.units
    returns = _returns(link, [s.pk for s in sessions])
    out = []
    for s in sessions:
        areas = by_session[s.pk]
        brand = _brand(s.product_id)
        total = sum(areas.values(), Decimal(0))
        out.append(
            Treatment(
                session_id=s.pk,
                treated_on=s.treated_on,
                product=brand,
                indication=indications.display_name(s.indication),
                total_units=total,
                units=units_text(total, brand),
                areas=[area_words(a) for a in areas],
                area_units=[(area_words(a), units_text(u, brand)) for a, u in areas.items()],
                advice=aftercare.for_indication(s.indication),
                returned_on=returns.get(s.pk),
            )
        )
    return out


def _returns(link: PatientLink, session_ids: list[int]) -> dict[int, date]:
    from glabella.outcomes.models import EffectReturn

    return dict(
        EffectReturn.objects.for_org(link.organization)
        .filter(patient=link.patient, session_id__in=session_ids, entered_in_error=False)
        .values_list("session_id", "returned_on")
    )


def treatment_session(link: PatientLink, session_pk: int) -> TreatmentSession | None:
    """One of the link's patient's signed sessions, or None."""
    return (
        TreatmentSession.objects.for_org(link.organization)
        .filter(patient=link.patient, status__in=SIGNED, pk=session_pk)
        .first()
    )
