"""The data behind the plots: headache days per month with the treatments marked, wrinkle
grades per area and contraction, units per area and product."""

from __future__ import annotations

from datetime import date, timedelta

from glabella.charting.models import Status
from glabella.outcomes import assessments, series
from glabella.outcomes.charts import NONE
from glabella.outcomes.models import DiaryEntry, TimePoint
from glabella.outcomes.tests.test_diary_service import session

TODAY = date(2025, 12, 10)


def _row(chart, first_cell):
    rows = [r for r in chart.rows if r[0] == first_cell]
    assert len(rows) == 1, f"{first_cell!r} in {chart.rows}"
    return dict(zip(chart.columns, rows[0], strict=True))


def test_headache_days_are_counted_per_calendar_month_with_treatments_marked(world):
    # October: 10 headache days (4 migraine, 3 with medication) in 31 recorded; November: 6.
    days = []
    for i in range(31):
        day = date(2025, 10, 1) + timedelta(days=i)
        days.append((day, i < 10, i < 4, ["triptan"] if i < 3 else []))
    for i in range(30):
        day = date(2025, 11, 1) + timedelta(days=i)
        days.append((day, i % 5 == 0, False, []))
    DiaryEntry.objects.bulk_create(
        DiaryEntry(
            organization=world.org,
            patient=world.patient,
            day=d,
            headache=h,
            migraine=m,
            acute_medication=med,
        )
        for d, h, m, med in days
    )
    session(world, date(2025, 11, 14))
    session(world, date(2025, 11, 20), status=Status.VOIDED)
    chart = series.headache_days_chart(world.patient, TODAY)
    assert chart.title == "Headache days per month" and not chart.empty
    assert chart.columns[:4] == ["Month", "Headache days", "Migraine days", "Acute-medication days"]
    october = _row(chart, "October 2025")
    assert (october["Headache days"], october["Migraine days"]) == ("10", "4")
    assert october["Acute-medication days"] == "3" and october["Days recorded"] == "31"
    november = _row(chart, "November 2025")
    assert november["Headache days"] == "6" and november["Days recorded"] == "30"
    assert "Chronic migraine treatment 14/11/2025" in november["Marked"]
    assert "20/11/2025" not in str(chart.rows)  # the voided one is not a cycle
    december = _row(chart, "December 2025")
    assert december["Headache days"] == NONE  # nothing recorded yet: not zero
    assert "<svg" in chart.svg and "Headache days per month" in chart.svg


def test_no_diary_is_an_empty_chart_that_says_so(world):
    chart = series.headache_days_chart(world.patient, TODAY)
    assert chart.empty and chart.empty_text == "No diary days recorded yet."


def test_replaced_diary_entries_are_not_counted_twice(world):
    from glabella.outcomes import diary

    actor = world.actor("injector")
    diary.record_day(actor, world.patient, date(2025, 12, 1), headache=True, today=TODAY)
    diary.record_day(actor, world.patient, date(2025, 12, 1), headache=False, today=TODAY)
    chart = series.headache_days_chart(world.patient, TODAY)
    assert _row(chart, "December 2025")["Headache days"] == "0"


def test_wrinkle_grades_are_one_line_per_area_and_contraction(world):
    actor = world.actor("injector")

    def grade(on, area, contraction, value):
        return assessments.record(
            actor,
            world.patient,
            "facial-wrinkle-scale",
            value,
            area=area,
            contraction=contraction,
            time_point=TimePoint.OTHER,
            assessed_on=on,
            today=TODAY,
        )

    grade(date(2025, 9, 1), "glabella", "maximum", 3)
    grade(date(2025, 9, 30), "glabella", "maximum", 1)
    grade(date(2025, 9, 1), "glabella", "rest", 1)
    wrong = grade(date(2025, 9, 30), "forehead", "rest", 2)
    assessments.mark_in_error(actor, wrong, "other patient")
    chart = series.wrinkle_chart(world.patient)
    assert chart.columns == [
        "Date",
        "Frown lines (glabella), at maximum contraction",
        "Frown lines (glabella), at rest",
    ]
    assert chart.rows == [["01 Sep 2025", "3", "1"], ["30 Sep 2025", "1", NONE]]


def test_no_wrinkle_grades_is_an_empty_chart(world):
    assert series.wrinkle_chart(world.patient).empty


def test_units_are_summed_per_area_for_signed_sessions_only(world):
    session(
        world,
        date(2025, 6, 2),
        indication="glabellar-lines",
        product_id="botox_cosmetic",
        points=[("glabella", "4"), ("glabella", "4"), ("forehead", "2")],
    )
    session(
        world,
        date(2025, 9, 1),
        indication="glabellar-lines",
        product_id="botox_cosmetic",
        points=[("glabella", "5"), ("glabella", "5")],
    )
    session(
        world,
        date(2025, 10, 1),
        indication="glabellar-lines",
        product_id="botox_cosmetic",
        status=Status.VOIDED,
        points=[("glabella", "50")],
    )
    session(world, date(2025, 11, 1), status=Status.DRAFT, points=[("forehead", "9")])
    chart = series.units_chart(world.patient)
    assert chart.columns == ["Date", "Forehead", "Glabella"]
    assert chart.rows == [["02 Jun 2025", "2", "8"], ["01 Sep 2025", NONE, "10"]]


def test_units_of_different_products_are_never_one_line(world):
    session(world, date(2025, 6, 2), indication="glabellar-lines", product_id="botox_cosmetic",
            points=[("glabella", "20")])  # fmt: skip
    session(world, date(2025, 9, 2), indication="glabellar-lines", product_id="dysport",
            points=[("glabella", "50")])  # fmt: skip
    chart = series.units_chart(world.patient)
    assert len(chart.columns) == 3
    assert any("Dysport" in c for c in chart.columns)
    assert any("Botox" in c for c in chart.columns)
    assert "never added" in chart.description


def test_a_removed_point_is_not_counted(world):
    from glabella.charting.models import InjectionPoint

    s = session(world, date(2025, 6, 2), indication="glabellar-lines", product_id="botox_cosmetic",
                status=Status.DRAFT, points=[("glabella", "4"), ("glabella", "6")])  # fmt: skip
    InjectionPoint.objects.filter(session=s, number=2).update(removed=True)
    s.status = Status.SIGNED
    s.save()
    assert series.units_chart(world.patient).rows == [["02 Jun 2025", "4"]]
