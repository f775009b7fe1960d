"""Forms of the outcome pages: an assessment (one scale, several areas for wrinkles), a month of
a paper headache diary, marking an assessment in error, and the continue-or-stop decision.

The forms only read what was typed; the services (``assessments``, ``diary``, ``continuation``)
decide what is valid and say so in words, and the views put those words beside the fields.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django import forms
from django.http import QueryDict

from glabella.clinical import diary as core
from glabella.outcomes.assessments import QUESTIONNAIRES, WRINKLE_AREAS, WRINKLE_SCALES
from glabella.outcomes.diary import MEDICATION_NAMES, SEVERITY_NAMES
from glabella.outcomes.models import Contraction, Decision, DiaryEntry, Rater, TimePoint

DATE_FORMATS = ["%Y-%m-%d", "%d/%m/%Y"]
SCALE_CHOICES = [
    ("facial-wrinkle-scale", "Wrinkles, 0-3 (Facial Wrinkle Scale)"),
    ("merz-aesthetics-scale", "Wrinkles, 0-4 (Merz Aesthetics Scale)"),
    ("hit-6", "HIT-6 (headache impact)"),
    ("midas", "MIDAS (migraine disability)"),
    ("hdss", "HDSS (sweating)"),
    ("headache-days", "Headache days per month"),
]
SCALE_NAMES = dict(SCALE_CHOICES)
WRINKLE_GRADES = {
    "facial-wrinkle-scale": [(0, "0 none"), (1, "1 mild"), (2, "2 moderate"), (3, "3 severe")],
    "merz-aesthetics-scale": [
        (0, "0 none"),
        (1, "1 mild"),
        (2, "2 moderate"),
        (3, "3 severe"),
        (4, "4 very severe"),
    ],
}


def cell_name(area: str, contraction: str) -> str:
    return f"{area}__{contraction}"


class AssessForm(forms.Form):
    """Common fields, and the fields of one scale (chosen before the form is shown)."""

    time_point = forms.ChoiceField(
        label="Time point",
        choices=TimePoint.choices,
        error_messages={"required": "Choose the time point."},
    )
    assessed_on = forms.DateField(
        label="Date",
        input_formats=DATE_FORMATS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"required": "Give the date.", "invalid": "Enter the date as DD/MM/YYYY."},
    )
    rater = forms.ChoiceField(
        label="Rated by",
        choices=Rater.choices,
        initial=Rater.CLINICIAN,
        error_messages={"required": "Say who rated."},
    )
    session = forms.ChoiceField(
        label="Treatment assessed",
        required=False,
        help_text="Leave empty for a baseline before any treatment.",
    )

    def __init__(
        self,
        *args: Any,
        scale_id: str,
        sessions: list[tuple[int, str]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.scale_id = scale_id
        self.fields["session"].choices = [("", "None")] + [(str(k), v) for k, v in sessions]
        self.cells: list[tuple[str, str, list[tuple[str, forms.BoundField]]]] = []
        if scale_id in WRINKLE_SCALES:
            grades = [("", "not graded")] + [(str(v), t) for v, t in WRINKLE_GRADES[scale_id]]
            for area, (words, _) in WRINKLE_AREAS.items():
                for c in Contraction:
                    self.fields[cell_name(area, c.value)] = forms.ChoiceField(
                        label=f"{words}, {c.label.lower()}", choices=grades, required=False
                    )
        elif scale_id in QUESTIONNAIRES:
            for item in QUESTIONNAIRES[scale_id].items:
                if item.choices is None:
                    self.fields[item.key] = forms.CharField(
                        label=item.text,
                        required=False,
                        widget=forms.NumberInput(
                            attrs={"min": 0, "max": 92, "inputmode": "numeric"}
                        ),
                    )
                else:
                    self.fields[item.key] = forms.ChoiceField(
                        label=item.text,
                        required=False,
                        choices=[(str(v), f"{t} ({v})" if scale_id == "hit-6" else f"{v}: {t}")
                                 for v, t in item.choices],
                        widget=forms.RadioSelect,
                    )  # fmt: skip
        elif scale_id == "headache-days":
            numeric = {"min": 0, "inputmode": "numeric"}
            self.fields["headache_days"] = forms.CharField(
                label="Headache days", required=False, widget=forms.NumberInput(attrs=numeric)
            )
            self.fields["migraine_days"] = forms.CharField(
                label="Of which migraine days",
                required=False,
                widget=forms.NumberInput(attrs=numeric),
                help_text="Optional.",
            )
            self.fields["period_days"] = forms.CharField(
                label="Days counted",
                required=False,
                initial="28",
                widget=forms.NumberInput(attrs={"min": 1, "max": 92, "inputmode": "numeric"}),
                help_text="Usually the last 28 days (4 weeks) or a month (30 or 31).",
            )

    def wrinkle_rows(self) -> list[tuple[str, list[forms.BoundField]]]:
        """(area words, [at rest, at maximum]) for the grid."""
        if self.scale_id not in WRINKLE_SCALES:
            return []
        return [
            (words, [self[cell_name(area, c.value)] for c in Contraction])
            for area, (words, _) in WRINKLE_AREAS.items()
        ]

    def item_fields(self) -> list[forms.BoundField]:
        common = {"time_point", "assessed_on", "rater", "session"}
        return [self[name] for name in self.fields if name not in common]

    def grades(self) -> list[tuple[str, str, str]]:
        """(area, contraction, grade) of each graded cell (wrinkle scales)."""
        out = []
        for area in WRINKLE_AREAS:
            for c in Contraction:
                value = self.cleaned_data.get(cell_name(area, c.value)) or ""
                if value != "":
                    out.append((area, c.value, value))
        return out

    def answers(self) -> Any:
        if self.scale_id in QUESTIONNAIRES:
            return {
                item.key: self.cleaned_data.get(item.key)
                for item in QUESTIONNAIRES[self.scale_id].items
            }
        if self.scale_id == "headache-days":
            return {
                k: self.cleaned_data.get(k)
                for k in ("headache_days", "migraine_days", "period_days")
            }
        return None  # wrinkles: see grades()


class ErrorForm(forms.Form):
    reason = forms.CharField(
        label="Why was it entered in error?",
        max_length=300,
        error_messages={"required": "Say why this assessment was entered in error."},
    )


class DecisionForm(forms.Form):
    after_cycles = forms.IntegerField(
        label="After how many cycles",
        min_value=1,
        max_value=50,
        error_messages={
            "required": "Say after how many cycles.",
            "invalid": "Give a whole number of cycles.",
            "min_value": "Give a whole number of cycles.",
            "max_value": "Give a whole number of cycles.",
        },
    )
    decision = forms.ChoiceField(
        label="Decision",
        choices=Decision.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose continue or stop."},
    )
    reason = forms.CharField(
        label="Reason",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Needed to stop; welcome either way.",
    )


# --- the paper diary, a month at a time -------------------------------------------------------


def month_days(month: date, today: date) -> list[date]:
    last = calendar.monthrange(month.year, month.month)[1]
    return [d for n in range(1, last + 1) if (d := month.replace(day=n)) <= today]


@dataclass
class DayRow:
    """One day of the month grid: what is shown (current entry or what was sent) and errors."""

    day: date
    prefix: str
    headache: str = ""  # "yes" | "no" | "" (not recorded)
    migraine: bool = False
    severity: str = ""
    hours: str = ""
    medication: list[str] = field(default_factory=list)
    recorded: bool = False
    via: str = ""
    error: str = ""
    error_field: str = ""


def day_prefix(day: date) -> str:
    return f"d{day.isoformat()}"


def rows_from_entries(days: list[date], entries: list[DiaryEntry]) -> list[DayRow]:
    by_day = {e.day: e for e in entries}
    rows = []
    for d in days:
        row = DayRow(d, day_prefix(d))
        e = by_day.get(d)
        if e is not None:
            row.headache = "yes" if e.headache else "no"
            row.migraine = e.migraine
            row.severity = "" if e.severity is None else str(e.severity)
            row.hours = "" if e.hours is None else f"{e.hours.normalize():f}"
            row.medication = list(e.acute_medication or [])
            row.recorded = True
            row.via = e.get_via_display()
        rows.append(row)
    return rows


@dataclass
class SentDay:
    day: date
    headache: bool
    migraine: bool
    severity: int | None
    hours: str | None
    medication: list[str]


def read_month(post: QueryDict, rows: list[DayRow], extra_days: list[date]) -> list[SentDay]:
    """What was sent for each day (rows are updated to show it again). Days left blank are
    skipped. ``extra_days`` are days sent that the grid does not show (a future day)."""
    sent: list[SentDay] = []
    known = {r.day: r for r in rows}
    for d in [r.day for r in rows] + extra_days:
        p = day_prefix(d)
        headache = post.get(f"{p}-headache", "")
        row = known.get(d)
        migraine = post.get(f"{p}-migraine") in ("on", "yes", "1")
        severity = post.get(f"{p}-severity", "").strip()
        hours = post.get(f"{p}-hours", "").strip()
        meds = [m for m in post.getlist(f"{p}-med") if m]
        if row is not None:
            row.headache, row.migraine, row.severity, row.hours = (
                headache,
                migraine,
                severity,
                hours,
            )
            row.medication = meds
        if headache not in ("yes", "no"):
            continue
        sent.append(
            SentDay(
                d,
                headache == "yes",
                migraine,
                int(severity) if severity.isdigit() else (None if severity == "" else -1),
                hours or None,
                meds,
            )
        )
    return sent


MEDICATION_CHOICES = [(k, MEDICATION_NAMES[k]) for k in core.MEDICATION_KINDS]
MEDICATION_SHORT = {
    "simple_analgesic": "Painkiller",
    "triptan": "Triptan",
    "ergot": "Ergot",
    "opioid": "Opioid",
    "combination": "Combination",
}
SEVERITY_CHOICES = [("", "-")] + [(str(k), v) for k, v in SEVERITY_NAMES.items()]
