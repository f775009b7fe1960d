"""The data behind the outcome plots, as :class:`glabella.outcomes.charts.Chart`.

- :func:`headache_days_chart`: headache, migraine and acute-medication days per calendar month
  (bars; months of the diary from the first entry to this month), with the signed
  chronic-migraine treatments marked;
- :func:`wrinkle_chart`: wrinkle grades over time, one line per area and contraction (at rest,
  at maximum), assessments entered in error left out;
- :func:`units_chart`: units per area at each signed (or amended) treatment, one line per area
  and product (units of different products are never added or drawn as one line: every label
  forbids converting them).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.db.models import Sum

from glabella.charting.models import InjectionPoint, TreatmentSession
from glabella.clinical import catalogue
from glabella.outcomes.assessments import WRINKLE_SCALES, area_label
from glabella.outcomes.charts import Chart, Marker, Series, time_chart
from glabella.outcomes.diary import SIGNED, current_entries, fmt, injection_dates
from glabella.outcomes.models import Assessment, Contraction
from glabella.patients.models import Patient

HEADACHE_TITLE = "Headache days per month"


def _month(day: date) -> date:
    return day.replace(day=1)


def _months(first: date, last: date) -> list[date]:
    out = []
    month = _month(first)
    while month <= last:
        out.append(month)
        month = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    return out


def _area(area: str) -> str:
    """An injection area id in words, as charting shows it: lateral-canthus -> Lateral canthus."""
    text = area.replace("-", " ").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


_brand = catalogue.brand_name


def headache_days_chart(patient: Patient, today: date) -> Chart:
    """One bar per calendar month: headache, migraine and acute-medication days."""
    entries = current_entries(patient, end=today)
    injections = injection_dates(patient, today)
    # A marker sits on its month's bars (the exact date is in its label): one table row per
    # month, whatever the day of the treatment.
    markers = [Marker(_month(d), f"Chronic migraine treatment {fmt(d)}") for d in injections]
    empty = "No diary days recorded yet."
    if not entries:
        return time_chart(
            HEADACHE_TITLE,
            [],
            y_label="Days",
            x_label="Month",
            x_format="%B %Y",
            empty_text=empty,
        )
    months = _months(entries[0].day, max(today, entries[-1].day))
    counts: dict[date, dict[str, int]] = {
        m: {"recorded": 0, "headache": 0, "migraine": 0, "medication": 0} for m in months
    }
    for e in entries:
        c = counts[_month(e.day)]
        c["recorded"] += 1
        c["headache"] += int(e.headache)
        c["migraine"] += int(e.migraine)
        c["medication"] += int(bool(e.acute_medication))

    def points(key: str) -> list[tuple[date, int | None]]:
        return [(m, counts[m][key] if counts[m]["recorded"] else None) for m in months]

    series = [
        Series("Headache days", points("headache"), "bar"),
        Series("Migraine days", points("migraine"), "bar"),
        Series("Acute-medication days", points("medication"), "bar"),
        Series("Days recorded", points("recorded"), "line"),
    ]
    return time_chart(
        HEADACHE_TITLE,
        series,
        y_label="Days",
        x_label="Month",
        markers=[m for m in markers if m.at >= months[0]],
        y_min=0,
        x_format="%B %Y",
        description=(
            f"Bars: headache, migraine and acute-medication days in each calendar month from "
            f"{months[0]:%B %Y} to {months[-1]:%B %Y}; the line shows how many days were "
            "recorded that month (a month with few days recorded counts few headache days). "
            "Dashed lines mark the chronic migraine treatments. The values are in the table."
        ),
        empty_text=empty,
    )


def wrinkle_chart(patient: Patient) -> Chart:
    """Wrinkle grades over time, one line per area and contraction (and scale, if both)."""
    rows = list(
        Assessment.objects.for_org(patient.organization_id)
        .filter(patient=patient, scale_id__in=WRINKLE_SCALES, entered_in_error=False)
        .order_by("assessed_on", "recorded_at")
    )
    both = len({r.scale_id for r in rows}) > 1
    lines: dict[tuple[str, str, str], list[tuple[date, Decimal]]] = defaultdict(list)
    for r in rows:
        lines[(r.area, r.contraction, r.scale_id)].append((r.assessed_on, r.value))
    series = []
    for (area, contraction, scale_id), pts in sorted(lines.items()):
        words = Contraction(contraction).label.lower() if contraction else ""
        label = f"{area_label(area)}, {words}" if words else area_label(area)
        if both:
            label += " (0-4)" if scale_id == "merz-aesthetics-scale" else " (0-3)"
        # one value per day: the last recorded that day
        by_day = dict(pts)
        series.append(Series(label, sorted(by_day.items()), "line"))
    top = 4 if any(r.scale_id == "merz-aesthetics-scale" for r in rows) else 3
    return time_chart(
        "Wrinkle grades over time",
        series,
        y_label="Grade (0 none to 3 severe)" if top == 3 else "Grade (0 none to 4 very severe)",
        y_min=0,
        y_max=top,
        y_step=1,
        empty_text="No wrinkle grades recorded yet.",
    )


def units_chart(patient: Patient) -> Chart:
    """Units per area at each signed or amended treatment, per product."""
    sessions = TreatmentSession.objects.for_org(patient.organization_id).filter(
        patient=patient, status__in=SIGNED
    )
    sums = (
        InjectionPoint.objects.for_org(patient.organization_id)
        .filter(session__in=sessions, removed=False)
        .values("session__treated_on", "session__product_id", "area")
        .annotate(units=Sum("units"))
        .order_by("session__treated_on")
    )
    lines: dict[tuple[str, str], dict[date, Decimal]] = defaultdict(dict)
    for row in sums:
        key = (row["area"], row["session__product_id"])
        day = row["session__treated_on"]
        lines[key][day] = lines[key].get(day, Decimal(0)) + Decimal(row["units"])
    products = {p for _, p in lines}
    series = [
        Series(
            f"{_area(area)} ({_brand(product)} units)" if len(products) > 1 else _area(area),
            sorted(points.items()),
            "line",
        )
        for (area, product), points in sorted(lines.items())
    ]
    unit_words = (
        f"{_brand(next(iter(products)))} units" if len(products) == 1 else "Units (per product)"
    )
    return time_chart(
        "Units per area over time",
        series,
        y_label=unit_words,
        y_min=0,
        description=(
            "Units injected in each area at each signed treatment"
            + (
                "; units of different products are shown apart, never added (they are not "
                "interchangeable)."
                if len(products) > 1
                else "."
            )
            + " The values are in the table."
        )
        if series
        else "",
        empty_text="No signed treatment with injection points yet.",
    )
