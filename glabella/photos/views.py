"""Photo pages and the photo files. Thin: look up within the organization, call a service,
render.

Another organization's patient or photo is simply not found (404). The files are only ever
served from here (``file``), after the same checks as the pages, with headers that keep them
out of shared caches and stop a browser from guessing another type; every file served is
audited.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from glabella.accounts.actor import Actor
from glabella.accounts.decorators import require
from glabella.consent.categories import PHOTO_MARKETING, PHOTOGRAPHY
from glabella.patients.models import Patient
from glabella.photos import images, services
from glabella.photos.forms import ErrorForm, TakePhotoForm
from glabella.photos.models import Area, Expression, Photo, Source, View
from glabella.web.forms_util import apply_errors

PRIVATE = "private, no-store"


def _patient(request: HttpRequest, pk: int) -> Patient:
    return get_object_or_404(Patient.objects.for_org(request.org), pk=pk)  # type: ignore[attr-defined]


def _photo(request: HttpRequest, pk: int) -> Photo:
    return get_object_or_404(
        Photo.objects.for_org(request.org).select_related(  # type: ignore[attr-defined]
            "patient", "session", "uploaded_by", "error_by", "marketing_changed_by"
        ),
        pk=pk,
    )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        raise Http404("No such photo.") from None


# --- the gallery -----------------------------------------------------------------------------


@require("photo.view")
def patient_photos(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    patient = _patient(request, pk)
    show_errors = request.GET.get("errors") == "1"
    photos = services.patient_photos(actor, patient, include_errors=show_errors)
    hidden = 0
    if not show_errors:
        hidden = (
            Photo.objects.for_org(actor.organization)
            .filter(patient=patient, entered_in_error=True)
            .count()
        )
    services.view_photos(actor, patient, "photo gallery", photos)
    today = services.today_for(actor)
    context = {
        "patient": patient,
        "groups": services.gallery(photos),
        "count": len(photos),
        "hidden": hidden,
        "show_errors": show_errors,
        "photography_consent": services.photography_consent(patient, today),
        "marketing_consent": services.marketing_consent(patient, today),
        "today": today,
    }
    return render(request, "photos/patient.html", context)


# --- taking a photo --------------------------------------------------------------------------


def _take_context(
    actor: Actor, patient: Patient, form: TakePhotoForm, consent_missing: bool = False
) -> dict[str, Any]:
    today = services.today_for(actor)
    guides = services.guides(patient)
    return {
        "patient": patient,
        "form": form,
        "today": today,
        "consent": services.photography_consent(patient, today),
        "consent_missing": consent_missing,
        "consent_url": reverse("consent:take", args=[patient.pk, PHOTOGRAPHY]),
        "guides_json": json.dumps(
            {
                key: {
                    "url": reverse("photos:file", args=[p.pk]),
                    "label": f"Previous photo: {p}",
                }
                for key, p in guides.items()
            }
        ),
        "max_mb": images.max_bytes() // (1024 * 1024),
        "areas": Area.choices,
        "views": View.choices,
        "expressions": Expression.choices,
    }


@require("photo.take")
def take(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    patient = _patient(request, pk)
    today = services.today_for(actor)
    status = 200
    if request.method == "POST":
        form = TakePhotoForm(request.POST, request.FILES, patient=patient)
        if form.is_valid():
            cd = form.cleaned_data
            try:
                photo = services.take_photo(
                    actor,
                    patient,
                    cd["photo"] or None,
                    area=cd["area"],
                    view=cd["view"],
                    expression=cd["expression"],
                    taken_on=cd["taken_on"] or today,
                    session=cd["session"],
                    source=cd["source"] or Source.UPLOAD,
                )
            except services.NoPhotographyConsent as exc:
                apply_errors(form, exc)
                return render(
                    request,
                    "photos/take.html",
                    _take_context(actor, patient, form, consent_missing=True),
                    status=409,
                )
            except ValidationError as exc:
                apply_errors(form, exc)
            else:
                messages.success(
                    request,
                    f"Photo saved: {photo}. Location and camera details were removed.",
                )
                return redirect(f"{reverse('photos:take', args=[patient.pk])}?{_again(photo)}")
        status = 422
    else:
        initial: dict[str, Any] = {"taken_on": today, "source": Source.UPLOAD}
        for name, choices in (("area", Area), ("view", View), ("expression", Expression)):
            value = request.GET.get(name, "")
            if value in choices.values:
                initial[name] = value
        initial.setdefault("view", View.FRONT)
        initial.setdefault("expression", Expression.REST)
        form = TakePhotoForm(initial=initial, patient=patient)
    services.view_photos(actor, patient, "take photo", [])
    context = _take_context(actor, patient, form)
    context["consent_missing"] = context["consent"] is None
    return render(request, "photos/take.html", context, status=status)


def _again(photo: Photo) -> str:
    """Keep the area and expression for the next photo of the series."""
    from urllib.parse import urlencode

    return urlencode({"area": photo.area, "view": photo.view, "expression": photo.expression})


# --- one photo -------------------------------------------------------------------------------


def _detail_context(actor: Actor, photo: Photo, error_form: ErrorForm) -> dict[str, Any]:
    today = services.today_for(actor)
    return {
        "photo": photo,
        "patient": photo.patient,
        "error_form": error_form,
        "marketing_consent": services.marketing_consent(photo.patient, today),
        "marketing_allowed": services.marketing_allowed(photo, today),
        "marketing_consent_url": reverse("consent:take", args=[photo.patient_id, PHOTO_MARKETING]),
        "today": today,
    }


@require("photo.view")
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    photo = _photo(request, pk)
    services.view_photo(actor, photo, part="detail")
    return render(request, "photos/detail.html", _detail_context(actor, photo, ErrorForm()))


@require_POST
@require("photo.take")
def enter_in_error(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    photo = _photo(request, pk)
    form = ErrorForm(request.POST)
    if form.is_valid():
        try:
            services.mark_entered_in_error(actor, photo, form.cleaned_data["reason"])
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(
                request, "The photo is marked entered in error. It is kept with the record."
            )
            return redirect("photos:patient", pk=photo.patient_id)
    return render(request, "photos/detail.html", _detail_context(actor, photo, form), status=422)


@require_POST
@require("photo.take")
def marketing(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    photo = _photo(request, pk)
    use = request.POST.get("use") == "1"
    try:
        services.set_marketing_use(actor, photo, use)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("photos:detail", pk=photo.pk)
    messages.success(
        request,
        "The photo may be used in marketing." if use else "The photo is no longer for marketing.",
    )
    return redirect("photos:detail", pk=photo.pk)


@require("photo.view")
def photo_file(request: HttpRequest, pk: int) -> FileResponse:
    actor = Actor.from_request(request)
    photo = _photo(request, pk)
    thumb = request.GET.get("size") == "thumb"
    try:
        handle = services.open_file(actor, photo, thumb=thumb)
    except FileNotFoundError:
        raise Http404("The photo's file is missing from storage.") from None
    response = FileResponse(
        handle,
        content_type=photo.content_type,
        as_attachment=False,
        filename=f"photo-{photo.pk}{'-thumb' if thumb else ''}.jpg",
    )
    response["Cache-Control"] = PRIVATE
    response["X-Content-Type-Options"] = "nosniff"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Content-Security-Policy"] = (
        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
    )
    return response


# --- before and after ------------------------------------------------------------------------


@require("photo.view")
def compare(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    patient = _patient(request, pk)
    photos = services.patient_photos(actor, patient, include_errors=True)
    before_id = _int(request.GET.get("before"))
    after_id = _int(request.GET.get("after"))
    current = [p for p in photos if not p.entered_in_error]
    try:
        pair = services.choose_comparison(
            current if before_id is None and after_id is None else photos, before_id, after_id
        )
    except LookupError:
        raise Http404("No such photo for this patient.") from None
    shown = [p for p in (pair.before, pair.after) if p is not None]
    services.view_photos(actor, patient, "photo comparison", shown)
    context = {
        "patient": patient,
        "pair": pair,
        "groups": services.gallery(current),
        "choices": current,
    }
    return render(request, "photos/compare.html", context)
