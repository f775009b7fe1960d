"""Consent pages. Thin: look up within the organization, call a service, render.

Another organization's patient or consent is simply not found (404). Signature images
and scans are only ever served from here, after the same checks as the page itself.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from glabella.accounts.actor import Actor
from glabella.accounts.decorators import require
from glabella.consent import files, services
from glabella.consent.categories import CATEGORIES, CATEGORY_LABELS
from glabella.consent.defaults import REVIEW_MARKER
from glabella.consent.forms import TakeConsentForm, TemplateForm, WithdrawForm
from glabella.consent.models import Consent, Method
from glabella.patients.models import Patient
from glabella.web.forms_util import apply_errors

PRIVATE = "private, no-store"


def _patient(request: HttpRequest, pk: int) -> Patient:
    return get_object_or_404(Patient.objects.for_org(request.org), pk=pk)  # type: ignore[attr-defined]


def _consent(request: HttpRequest, pk: int) -> Consent:
    return get_object_or_404(
        Consent.objects.for_org(request.org).select_related(  # type: ignore[attr-defined]
            "patient", "template", "recorded_by", "withdrawn_by", "clinic"
        ),
        pk=pk,
    )


def _category(category: str) -> str:
    if category not in CATEGORIES:
        raise Http404("No such consent category.")
    return category


@require("consent.view")
def patient_consents(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    patient = _patient(request, pk)
    consents = services.patient_consents(actor, patient)
    services.view_patient_consents(actor, patient)
    today = services.today_for(actor)
    context = {
        "patient": patient,
        "consent_summary": services.summary_for(patient, today),
        "rows": [(c, c.status_on(today)) for c in consents],
        "today": today,
    }
    return render(request, "consent/patient.html", context)


@require("consent.record")
def take(request: HttpRequest, pk: int, category: str) -> HttpResponse:
    actor = Actor.from_request(request)
    patient = _patient(request, pk)
    category = _category(category)
    services.ensure_default_templates(actor.organization, actor=actor)
    template = services.current_template(actor.organization, category)
    if template is None:  # pragma: no cover - ensure_default_templates made one
        raise Http404("No consent form for this category.")
    today = services.today_for(actor)
    if request.method == "POST":
        data = request.POST.copy()
        form = TakeConsentForm(data, request.FILES)
        if form.is_valid():
            cd = form.cleaned_data
            try:
                png = (
                    services.png_from_data_url(cd["signature"])
                    if cd["method"] == Method.DRAWN
                    else None
                )
                consent = services.take_consent(
                    actor,
                    patient,
                    category,
                    method=cd["method"],
                    signature_png=png,
                    scan=cd["scan"] or None,
                    signed_on=cd["signed_on"] if cd["method"] == Method.PAPER else None,
                    read_confirmed=bool(cd["read_confirmed"]),
                    expected_version=cd["template_version"],
                    form_token=cd["form_token"] or "",
                )
            except ValidationError as exc:
                apply_errors(form, exc)
            else:
                messages.success(
                    request,
                    f"{CATEGORY_LABELS[category]} consent recorded, valid until "
                    f"{consent.valid_until:%d/%m/%Y}.",
                )
                return redirect("consent:detail", pk=consent.pk)
        # Show the current wording, and sign against it next time.
        template = services.current_template(actor.organization, category) or template
        data["template_version"] = str(template.version)
        method = data.get("method") or Method.DRAWN
    else:
        form = TakeConsentForm(
            initial={
                "form_token": uuid.uuid4().hex,
                "template_version": template.version,
                "signed_on": today,
            }
        )
        method = Method.DRAWN
    context = {
        "patient": patient,
        "category": category,
        "category_label": CATEGORY_LABELS[category],
        "template": template,
        "text": services.render(template, patient, actor.clinic, today),
        "form": form,
        "method": method,
        "today": today,
        "unreviewed": REVIEW_MARKER in template.body,
    }
    return render(request, "consent/take.html", context)


def _detail_context(actor: Actor, consent: Consent, form: WithdrawForm) -> dict[str, object]:
    today = services.today_for(actor)
    return {
        "consent": consent,
        "patient": consent.patient,
        "status": consent.status_on(today),
        "intact": services.verify(consent),
        "scan_kind": files.kind_for_content_type(consent.scan_content_type),
        "withdraw_form": form,
        "today": today,
    }


@require("consent.view")
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    consent = _consent(request, pk)
    services.view_consent(actor, consent)
    return render(request, "consent/detail.html", _detail_context(actor, consent, WithdrawForm()))


@require_POST
@require("consent.record")
def withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    consent = _consent(request, pk)
    form = WithdrawForm(request.POST)
    if form.is_valid():
        try:
            services.withdraw(actor, consent, form.cleaned_data["reason"])
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, "The withdrawal of consent is recorded.")
            return redirect("consent:detail", pk=consent.pk)
    return render(request, "consent/detail.html", _detail_context(actor, consent, form))


@require("consent.view")
def signature_png(request: HttpRequest, pk: int) -> HttpResponse:
    consent = _consent(request, pk)
    if not consent.signature:
        raise Http404("This consent has no drawn signature.")
    response = HttpResponse(bytes(consent.signature), content_type="image/png")
    response["Cache-Control"] = PRIVATE
    response["Content-Disposition"] = f'inline; filename="consent-{consent.pk}-signature.png"'
    return response


@require("consent.view")
def scan(request: HttpRequest, pk: int) -> FileResponse:
    actor = Actor.from_request(request)
    consent = _consent(request, pk)
    kind = files.kind_for_content_type(consent.scan_content_type)
    if not consent.scan or kind is None:
        raise Http404("This consent has no scanned form.")
    try:
        handle = consent.scan.open("rb")
    except FileNotFoundError:
        raise Http404("The scanned form is missing from storage.") from None
    services.view_consent(actor, consent, part="scan")
    response = FileResponse(
        handle,
        content_type=kind.content_type,
        as_attachment=False,
        filename=f"consent-{consent.pk}.{kind.extension}",
    )
    response["Cache-Control"] = PRIVATE
    return response


@require("consent.view")
def template_list(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    services.ensure_default_templates(actor.organization, actor=actor)
    by_category = services.templates_by_category(actor.organization)
    categories = []
    for c in CATEGORIES:
        current = next((t for t in by_category[c] if t.is_current), None)
        categories.append(
            {
                "id": c,
                "label": CATEGORY_LABELS[c],
                "current": current,
                "older": [t for t in by_category[c] if not t.is_current],
                "unreviewed": current is not None and REVIEW_MARKER in current.body,
            }
        )
    return render(
        request, "consent/templates.html", {"categories": categories, "marker": REVIEW_MARKER}
    )


@require("consent.manage_templates")
def template_new(request: HttpRequest, category: str) -> HttpResponse:
    actor = Actor.from_request(request)
    category = _category(category)
    current = services.current_template(actor.organization, category)
    initial = (
        {"title": current.title, "body": current.body, "valid_months": current.valid_months}
        if current
        else {"valid_months": 12}
    )
    form = TemplateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        cd = form.cleaned_data
        try:
            template = services.new_template_version(
                actor, category, cd["title"], cd["body"], cd["valid_months"]
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(
                request,
                f"Version {template.version} of the {CATEGORY_LABELS[category].lower()} form "
                "is now in use. Consents already signed keep their own version.",
            )
            return redirect("consent:templates")
    return render(
        request,
        "consent/template_form.html",
        {
            "form": form,
            "category": category,
            "category_label": CATEGORY_LABELS[category],
            "current": current,
            "placeholders": services.PLACEHOLDERS,
        },
    )
