"""The patient's own pages (``/my/<secret>/...``, no sign-in) and the staff page that gives the
link (``/my/staff/patients/<pk>/``, ``portal.manage``).

Thin views: the rules are in ``services`` (links, what is shown) and in the outcomes services
(diary, questionnaires, durations), called with the patient as actor. Every patient page goes
through :func:`patient_page`, which, before anything else, counts the request against the rate
limit, checks the secret (hash, expiry, revocation) and afterwards stamps the response:
``Referrer-Policy: no-referrer`` (the secret is in the address), ``Cache-Control: no-store``,
``X-Robots-Tag: noindex``, and for an answer of 400 or more, marks it logged so Django does
not write the address (and the secret) in its log. The patient pages are exempt from CSRF
checks: see :func:`patient_page` for why that is safe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import wraps
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from glabella.accounts.actor import Actor, client_ip
from glabella.accounts.decorators import require
from glabella.patients import services as patient_services
from glabella.patients.models import Patient
from glabella.portal import services
from glabella.portal.forms import MEDICATION_WORDS, DiaryForm, WearingOffForm
from glabella.portal.models import PatientLink, SentBy

DIARY_WEEKS = 4
PATIENT_SCALES = ("hit-6", "midas", "hdss")


# --- the patient's side -----------------------------------------------------------------------


@dataclass(frozen=True)
class Visit:
    """One request through a live link."""

    link: PatientLink
    token: str
    actor: Actor
    patient: Patient
    today: date

    def url(self, name: str, *args: Any) -> str:
        return reverse(f"portal:{name}", args=[self.token, *args])


def _stamp(response: HttpResponse) -> HttpResponse:
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    if response.status_code >= 400:
        response._has_been_logged = True  # type: ignore[attr-defined]  # the path holds the secret
    return response


def _refusal(request: HttpRequest, template: str, status: int) -> HttpResponse:
    response = render(request, template, {"link_days": services.link_days()}, status=status)
    if status == 429:
        response["Retry-After"] = "60"
    return _stamp(response)


PatientView = Callable[..., HttpResponse]


def patient_page(
    methods: tuple[str, ...] = ("GET", "HEAD"),
) -> Callable[[PatientView], Callable[..., HttpResponse]]:
    """A page under a secret link: rate limit, link check, headers (see the module docstring).
    Methods are checked here too (Django's own decorator would log the address)."""

    def decorator(view: PatientView) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, token: str, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                return _stamp(HttpResponseNotAllowed(methods))
            if services.rate_limited(token, client_ip(request)):
                return _refusal(request, "portal/too_many.html", 429)
            link = services.link_for_token(token)
            if link is None:
                return _refusal(request, "portal/no_link.html", 404)
            actor = services.portal_actor(link, request)
            services.mark_used(link, actor)
            visit = Visit(link, token, actor, link.patient, services.today_for(link.patient))
            # Dates and times in the clinic's time zone, as the patient lives them.
            with timezone.override(services.zone_of(link.patient)):
                try:
                    response = view(request, visit, *args, **kwargs)
                except Http404:
                    response = render(request, "portal/not_found.html", _base(visit), status=404)
            return _stamp(response)

        # No CSRF token on these pages: they carry no ambient credential (no session, no
        # cookie); the secret in the address is the credential, and another site cannot
        # know it, which is what a CSRF token would prove. (Django's origin check would also
        # refuse every form here: with "Referrer-Policy: no-referrer" browsers send
        # "Origin: null".)
        wrapped.csrf_exempt = True  # type: ignore[attr-defined]
        return wrapped

    return decorator


def _base(visit: Visit, **extra: Any) -> dict[str, Any]:
    clinic = services.patient_clinic(visit.patient)
    return {
        "visit": visit,
        "given_name": visit.patient.given_name,
        "clinic_name": clinic.name if clinic else visit.link.organization.name,
        "home_url": visit.url("home"),
        "diary_url": visit.url("diary"),
        "questionnaires_url": visit.url("questionnaires"),
        "expires_on": visit.link.expires_at,
        **extra,
    }


@patient_page()
def home(request: HttpRequest, visit: Visit) -> HttpResponse:
    return _home(request, visit)


def _home(
    request: HttpRequest,
    visit: Visit,
    *,
    errors: dict[int, tuple[str, str]] | None = None,
    status: int = 200,
) -> HttpResponse:
    from glabella.outcomes.assessments import due_questionnaires

    treatments = services.treatments(visit.link)
    errors = errors or {}
    rows = [
        {
            "t": t,
            "wearing_off_url": visit.url("wearing_off", t.session_id),
            "error": errors.get(t.session_id, ("", ""))[0],
            "value": errors.get(t.session_id, ("", ""))[1] or visit.today.isoformat(),
        }
        for t in treatments
    ]
    context = _base(
        visit,
        upcoming=services.upcoming(visit.link),
        treatments=rows,
        due=due_questionnaires(visit.patient, visit.today),
        today=visit.today,
    )
    return render(request, "portal/home.html", context, status=status)


@patient_page(methods=("POST",))
def wearing_off(request: HttpRequest, visit: Visit, session_pk: int) -> HttpResponse:
    from glabella.outcomes.durations import ReturnRefused, record_return
    from glabella.outcomes.models import Rater, Via

    session = services.treatment_session(visit.link, session_pk)
    if session is None:
        raise Http404
    form = WearingOffForm(request.POST)
    if not form.is_valid():
        message = " ".join(m for msgs in form.errors.values() for m in msgs)
        raw = request.POST.get("returned_on", "")
        return _home(request, visit, errors={session.pk: (message, raw)}, status=422)
    returned_on = form.cleaned_data["returned_on"]
    try:
        record_return(
            visit.actor,
            session,
            returned_on,
            rater=Rater.PATIENT,
            via=Via.PORTAL,
            today=visit.today,
        )
    except ReturnRefused as exc:
        errors = {session.pk: (str(exc), returned_on.isoformat())}
        return _home(request, visit, errors=errors, status=422)
    messages.success(
        request,
        f"Thank you: we have noted that your treatment of {session.treated_on:%d/%m/%Y} "
        f"started wearing off on {returned_on:%d/%m/%Y}. Your clinic uses this to suggest "
        "when you are due again.",
    )
    return redirect(visit.url("home"))


@patient_page(methods=("GET", "HEAD", "POST"))
def diary(request: HttpRequest, visit: Visit) -> HttpResponse:
    from glabella.outcomes.diary import DiaryRefused, current_entries, record_day
    from glabella.outcomes.models import Via

    status = 200
    if request.method == "POST":
        form = DiaryForm(request.POST)
        if form.is_valid():
            day = form.cleaned_data["day"]
            had = bool(current_entries(visit.patient, day, day))
            try:
                record_day(
                    visit.actor,
                    visit.patient,
                    day,
                    **form.values(),
                    via=Via.PORTAL,
                    today=visit.today,
                )
            except DiaryRefused as exc:
                field = exc.field if exc.field in form.fields else None
                form.add_error(field, str(exc))
                status = 422
            else:
                if had:
                    text = (
                        f"Saved. You had already filled in {day:%d/%m/%Y}: this entry "
                        "replaces the earlier one (the earlier one is kept in your record)."
                    )
                else:
                    text = f"Saved: {day:%d/%m/%Y}."
                messages.success(request, text)
                return redirect(visit.url("diary"))
        else:
            status = 422
    else:
        form = DiaryForm(initial={"day": visit.today, "headache": ""})
    start = visit.today - timedelta(weeks=DIARY_WEEKS) + timedelta(days=1)
    entries = current_entries(visit.patient, start, visit.today)
    by_day = {e.day: e for e in entries}
    days = []
    for n in range((visit.today - start).days + 1):
        day = visit.today - timedelta(days=n)
        entry = by_day.get(day)
        days.append({"day": day, "entry": entry, "medication": _medication(entry)})
    context = _base(
        visit,
        form=form,
        days=days,
        headache_days=sum(1 for e in entries if e.headache),
        filled=len(entries),
        weeks=DIARY_WEEKS,
    )
    return render(request, "portal/diary.html", context, status=status)


def _medication(entry: Any) -> str:
    if entry is None:
        return ""
    return ", ".join(MEDICATION_WORDS.get(k, k).split(" (")[0] for k in entry.acute_medication)


@patient_page()
def questionnaires(request: HttpRequest, visit: Visit) -> HttpResponse:
    from glabella.outcomes.assessments import QUESTIONNAIRES, due_questionnaires

    due = [
        {"due": d, "url": visit.url("questionnaire", d.scale_id)}
        for d in due_questionnaires(visit.patient, visit.today)
        if d.scale_id in QUESTIONNAIRES and d.scale_id in PATIENT_SCALES
    ]
    return render(request, "portal/questionnaires.html", _base(visit, due=due))


def _answer(raw: str, choices: list[tuple[Any, str]] | None) -> Any:
    raw = (raw or "").strip()
    if not raw:
        return None
    if choices is not None:
        for value, _label in choices:
            if str(value) == raw:
                return value
        return raw
    try:
        return int(raw)
    except ValueError:
        try:
            return Decimal(raw)
        except ArithmeticError:
            return raw


@patient_page(methods=("GET", "HEAD", "POST"))
def questionnaire(request: HttpRequest, visit: Visit, scale_id: str) -> HttpResponse:
    from glabella.outcomes.assessments import (
        QUESTIONNAIRES,
        AssessmentRefused,
        due_questionnaires,
        record,
    )
    from glabella.outcomes.models import Rater, TimePoint, Via

    if scale_id not in PATIENT_SCALES or scale_id not in QUESTIONNAIRES:
        raise Http404
    q = QUESTIONNAIRES[scale_id]
    due = next(
        (d for d in due_questionnaires(visit.patient, visit.today) if d.scale_id == scale_id), None
    )
    error, error_key, status = "", "", 200
    posted: dict[str, str] = {}
    if request.method == "POST":
        posted = {item.key: request.POST.get(item.key, "").strip() for item in q.items}
        answers = {
            item.key: _answer(posted[item.key], item.choices)
            for item in q.items
            if posted[item.key]
        }
        session = (
            services.treatment_session(visit.link, due.session_id)
            if due is not None and due.session_id
            else None
        )
        try:
            record(
                visit.actor,
                visit.patient,
                scale_id,
                answers,
                time_point=due.time_point if due is not None else TimePoint.OTHER,
                assessed_on=visit.today,
                session=session,
                rater=Rater.PATIENT,
                via=Via.PORTAL,
                today=visit.today,
            )
        except AssessmentRefused as exc:
            error, error_key, status = str(exc), exc.field, 422
        else:
            messages.success(request, f"Thank you: your answers to {q.name} are saved.")
            return redirect(visit.url("questionnaires"))
    items = [
        {
            "item": item,
            "name": item.key,
            "value": posted.get(item.key, ""),
            "choices": [(str(v), label) for v, label in item.choices] if item.choices else None,
            "error": item.key == error_key,
        }
        for item in q.items
    ]
    context = _base(
        visit,
        q=q,
        items=items,
        error=error,
        due=due,
        action=visit.url("questionnaire", scale_id),
    )
    return render(request, "portal/questionnaire.html", context, status=status)


@patient_page(methods=("GET", "HEAD", "POST"))
def elsewhere(request: HttpRequest, visit: Visit, rest: str) -> HttpResponse:
    """Any other address under a link: the polite "not found" (and nothing in the log)."""
    raise Http404


# --- the staff side -----------------------------------------------------------------------------


def _patient(actor: Actor, pk: int) -> Patient:
    return get_object_or_404(Patient.objects.for_org(actor.organization), pk=pk)


def _manage_page(
    request: HttpRequest,
    actor: Actor,
    patient: Patient,
    *,
    error: str = "",
    qr: str = "",
    status: int = 200,
) -> HttpResponse:
    now = timezone.now()
    links = [
        {"link": link, "live": services.is_live(link, now), "expired": link.expires_at <= now}
        for link in services.links_of(actor, patient)
    ]
    context = {
        "patient": patient,
        "links": links,
        "error": error,
        "qr": qr,
        "link_days": services.link_days(),
        "sent_by": SentBy,
        "has_email": bool((patient.email or "").strip()),
        "has_phone": bool((patient.phone or "").strip()),
        "zone": services.zone_of(patient),
    }
    response = render(request, "portal/manage.html", context, status=status)
    response["Cache-Control"] = "no-store"  # a QR code is a secret shown once
    return response


@require_http_methods(["GET", "HEAD", "POST"])
@require("portal.manage")
def manage(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    patient = _patient(actor, pk)
    if request.method != "POST":
        patient_services.view_patient(actor, patient, part="links to the patient's own pages")
        return _manage_page(request, actor, patient)
    how = request.POST.get("how", "")
    try:
        if how == SentBy.QR:
            new = services.show_link(actor, patient)
            # Shown on this response only: the secret is kept nowhere else.
            qr = services.qr_svg(request.build_absolute_uri(new.path))
            return _manage_page(request, actor, patient, qr=qr)
        new = services.send_link(actor, patient, how)
    except services.LinkRefused as exc:
        return _manage_page(request, actor, patient, error=str(exc), status=422)
    where = "e-mail" if how == SentBy.EMAIL else "text message"
    until = timezone.localtime(new.link.expires_at, services.zone_of(patient))
    messages.success(
        request,
        f"Link sent to {patient.full_name} by {where} ({new.link.sent_to}). "
        f"It works until {until:%d/%m/%Y}.",
    )
    return redirect("portal:manage", pk=patient.pk)


@require_POST
@require("portal.manage")
def revoke(request: HttpRequest, pk: int, link_pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    patient = _patient(actor, pk)
    link = get_object_or_404(
        PatientLink.objects.for_org(actor.organization).filter(patient=patient), pk=link_pk
    )
    services.revoke_link(actor, link)
    messages.success(
        request,
        f"Link revoked: it no longer opens {patient.full_name}'s pages.",
    )
    return redirect("portal:manage", pk=patient.pk)
