"""The owner's import page: upload → dry-run report → "Import N rows" → progress → result.

Thin views over :mod:`glabella.interop.imports.jobs`. Only a role with ``data.import`` (the
owner) gets here; another organization's run is a 404. No inline script: the progress page
refreshes itself (``<meta http-equiv="refresh">``).
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from glabella.accounts.actor import Actor
from glabella.accounts.decorators import require
from glabella.accounts.reauth import require_recent_auth
from glabella.interop.imports import jobs
from glabella.interop.imports.formats import COLUMNS, KINDS
from glabella.interop.imports.importer import LABELS, Options
from glabella.interop.imports.mapping import MappingError, parse_map_options
from glabella.interop.models import ImportKind, ImportRun, JobState

PRIVATE = "private, no-store"
REFRESH_SECONDS = 2
SHOWN = 500


class UploadForm(forms.Form):
    kind = forms.ChoiceField(
        label="What the file holds",
        choices=[(k, ImportKind(k).label) for k in KINDS],
        widget=forms.RadioSelect,
    )
    file = forms.FileField(label="CSV file")
    day_first = forms.BooleanField(
        label="Dates are written day first (DD/MM/YYYY)",
        required=False,
        help_text="Leave unticked if the file writes dates as YYYY-MM-DD. Dates such as "
        "03/04/2024 are refused unless this is ticked: they could be read two ways.",
    )
    encoding = forms.CharField(
        label="Encoding, if not UTF-8",
        required=False,
        max_length=40,
        help_text="Only if the file was not saved as UTF-8, e.g. cp1252 (Windows) or latin-1.",
    )
    mapping = forms.CharField(
        label="Column mapping",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line: the file's column = the Glabella column, e.g. "
        "“Client First Name = given_name”. Only for columns Glabella does not recognise.",
    )

    def clean_file(self):  # type: ignore[no-untyped-def]
        f = self.cleaned_data["file"]
        limit = settings.GLABELLA_IMPORT_MAX_BYTES
        if f.size > limit:
            raise forms.ValidationError(
                f"The file is {f.size / 1_000_000:.1f} MB; the limit is {limit / 1_000_000:.1f} "
                "MB. Split it into smaller files, each with the header row."
            )
        return f

    def clean_mapping(self) -> dict[str, str]:
        lines = [ln for ln in self.cleaned_data["mapping"].splitlines() if ln.strip()]
        try:
            return parse_map_options(lines)
        except MappingError as exc:
            raise forms.ValidationError(str(exc)) from None


def _runs(request: HttpRequest):  # type: ignore[no-untyped-def]
    return ImportRun.objects.for_org(request.org)  # type: ignore[attr-defined]


@require("data.import")
@require_http_methods(["GET", "POST"])
def home(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    jobs.purge_uploads(actor.organization.pk)
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        data = b"".join(upload.chunks())
        run = jobs.check_upload(
            actor,
            form.cleaned_data["kind"],
            upload.name[:200],
            data,
            Options(
                day_first=form.cleaned_data["day_first"],
                encoding=form.cleaned_data["encoding"].strip() or None,
                mapping=form.cleaned_data["mapping"],
            ),
        )
        return redirect("interop:import_run", run.pk)
    recent = list(_runs(request).filter(dry_run=False).select_related("run_by")[:10])
    response = render(
        request,
        "interop/import.html",
        {
            "form": form,
            "recent": recent,
            "columns": [(k, ImportKind(k).label, COLUMNS[k]) for k in KINDS],
            "limit": settings.GLABELLA_IMPORT_MAX_BYTES,
        },
        status=400 if request.method == "POST" else 200,
    )
    response["Cache-Control"] = PRIVATE
    return response


def _counts(run: ImportRun) -> list[tuple[str, int, int]]:
    new = (run.created or {}).get("new") or {}
    already = (run.created or {}).get("already") or {}
    rows = []
    for kind in KINDS:
        if new.get(kind) or already.get(kind):
            rows.append((LABELS[kind][1], new.get(kind, 0), already.get(kind, 0)))
    return rows


@require("data.import")
@require_GET
def run_page(request: HttpRequest, pk: int) -> HttpResponse:
    """A dry-run report (with "Import N rows"), or a real run's progress, then its result."""
    run = get_object_or_404(_runs(request).select_related("run_by"), pk=pk)
    active = run.state in (JobState.QUEUED, JobState.RUNNING)
    done, total = jobs.progress(run) if active else (0, 0)
    created = run.created or {}
    confirmed = created.get("confirmed_run")
    counts = _counts(run)
    to_import = sum(n for _, n, _ in counts)
    response = render(
        request,
        "interop/import_run.html",
        {
            "run": run,
            "active": active,
            "refresh": REFRESH_SECONDS if active else None,
            "done": done,
            "total": total,
            "percent": int(100 * done / total) if total else 0,
            "problems": run.problems[:SHOWN],
            "more_problems": max(0, len(run.problems) - SHOWN),
            "warnings": (created.get("warnings") or [])[:SHOWN],
            "counts": counts,
            "to_import": to_import,
            "confirmed": confirmed,
            "columns": ((run.mapping or {}).get("columns") or {}),
        },
    )
    response["Cache-Control"] = PRIVATE
    return response


@require("data.import")
@require_POST
@require_recent_auth(action="Import")
def confirm(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    dry = get_object_or_404(_runs(request).filter(dry_run=True), pk=pk)
    try:
        real = jobs.confirm(actor, dry)
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("interop:import_run", dry.pk)
    if not jobs.background() and real.state == JobState.QUEUED:
        jobs.run(real.pk)  # SQLite: here and now (see jobs)
    return redirect("interop:import_run", real.pk)
