"""The dose safety engine: every rule just inside and just outside its limit, never a crash."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glabella.clinical import _reference, indications, sources
from glabella.clinical.safety import (
    RULES,
    Finding,
    PastTreatment,
    PatientFacts,
    Plan,
    PlannedPoint,
    VialFacts,
    check,
    rule_ids,
)
from glabella.clinical.settings import ClinicalSettings

D = Decimal
DAY = date(2026, 12, 1)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ADULT = PatientFacts(date(1980, 5, 17), D(70), frozenset())


def adult(*flags: str) -> PatientFacts:
    return PatientFacts(date(1980, 5, 17), D(70), frozenset(flags))


def child(weight: Decimal | None, *flags: str, age: int = 8) -> PatientFacts:
    return PatientFacts(date(DAY.year - age, 1, 15), weight, frozenset(flags))


def points(*units: object, muscle: str = "frontalis", side: str = "L") -> list[PlannedPoint]:
    return [PlannedPoint("face", muscle, side, u) for u in units]  # type: ignore[arg-type]


def plan(
    product: str,
    indication: str,
    *units: object,
    muscle: str = "frontalis",
    side: str = "L",
    vial: VialFacts | None = None,
    on: date = DAY,
) -> Plan:
    return Plan(product, indication, on, points(*units, muscle=muscle, side=side), vial)


def past(
    days_ago: int, product: str, indication: str, units: object, outside: bool = False
) -> PastTreatment:
    return PastTreatment(DAY - timedelta(days=days_ago), product, indication, units, outside)  # type: ignore[arg-type]


def rules(findings: Sequence[Finding], severity: str | None = None) -> set[str]:
    return {f.rule for f in findings if severity is None or f.severity == severity}


def only(findings: Sequence[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule == rule]


def run(
    p: Plan,
    patient: PatientFacts = ADULT,
    history: Sequence[PastTreatment] = (),
    now: datetime = NOW,
    clinic: ClinicalSettings | None = None,
) -> list[Finding]:
    findings = check(p, patient, list(history), now, clinic)
    assert_well_formed(findings)
    return findings


def assert_well_formed(findings: Sequence[Finding]) -> None:
    known = set(rule_ids())
    for f in findings:
        assert f.rule in known, f"rule id {f.rule!r} is not registered in RULES"
        assert f.severity in ("block", "warn", "info")
        assert f.message.strip(), f
        assert f.source.strip(), f"finding {f.rule} has no source"
        for sid in f.source_ids:
            assert sources.get(sid).id == sid
            assert f"{sid}" in f.source
        if f.status is not None:
            assert f"({f.status})" in f.source
        if f.status == "unconfirmed":
            assert "unconfirmed" in f.message
    ranks = [("block", "warn", "info").index(f.severity) for f in findings]
    assert ranks == sorted(ranks), "blocks first, then warnings, then notes"


# ------------------------------------------------------------------------------------------
# A clean plan


def test_labelled_glabellar_dose_for_an_adult_has_no_findings() -> None:
    assert run(plan("botox_cosmetic", "glabellar-lines", *[D(4)] * 5)) == []


def test_labelled_chronic_migraine_dose_has_no_findings() -> None:
    assert run(plan("botox", "chronic-migraine", *[D(5)] * 31)) == []


# ------------------------------------------------------------------------------------------
# cumulative-3-month


def test_onabotulinumtoxina_across_indications_and_brands_at_400_units_is_allowed() -> None:
    history = [
        past(60, "botox", "chronic-migraine", D(155)),
        past(30, "botox", "cervical-dystonia", D(200)),
    ]
    findings = run(plan("botox_cosmetic", "forehead-lines", *[D(5)] * 9), history=history)
    assert "cumulative-3-month" not in rules(findings)


def test_migraine_plus_cervical_plus_cosmetic_above_400_units_in_90_days_is_blocked() -> None:
    history = [
        past(60, "botox", "chronic-migraine", D(155)),
        past(30, "botox", "cervical-dystonia", D(200)),
    ]
    findings = run(plan("botox_cosmetic", "forehead-lines", *[D(4)] * 16), history=history)
    [finding] = only(findings, "cumulative-3-month")
    assert finding.severity == "block"
    assert finding.limit == 400 and finding.value == 419
    assert (
        "419 U of onabotulinumtoxinA in 90 days would exceed the 400 U maximum" in finding.message
    )
    assert "this plan 64 U + 355 U since 2026-09-02" in finding.message
    assert "[S2, S67, S96] (confirmed)" in finding.source


def test_cumulative_message_counts_outside_treatments_and_says_so() -> None:
    history = [
        past(80, "botox", "cervical-dystonia", D(280)),
        past(40, "botox_cosmetic", "glabellar-lines", D(40), outside=True),
    ]
    findings = run(plan("botox", "chronic-migraine", *[D(5)] * 20), history=history)
    [finding] = only(findings, "cumulative-3-month")
    assert finding.message == (
        "Blocked: 420 U of onabotulinumtoxinA in 90 days would exceed the 400 U maximum "
        "(this plan 100 U + 320 U since 2026-09-02, 40 U of it given elsewhere)."
    )


def test_outside_treatment_alone_can_tip_the_cumulative_limit() -> None:
    inside = [past(30, "botox", "cervical-dystonia", D(300))]
    assert "cumulative-3-month" not in rules(
        run(plan("botox", "chronic-migraine", *[D(5)] * 20), history=inside)
    )
    with_outside = [*inside, past(10, "botox", "upper-limb-spasticity", D(1), outside=True)]
    findings = run(plan("botox", "chronic-migraine", *[D(5)] * 20), history=with_outside)
    assert "cumulative-3-month" in rules(findings, "block")


@pytest.mark.parametrize(
    ("days_ago", "window", "counted"),
    [
        (84, 84, True),
        (85, 84, False),
        (85, 90, True),
        (88, 84, False),
        (88, 90, True),
        (90, 84, False),
        (90, 90, True),
        (91, 90, False),
    ],
)
def test_treatment_85_to_90_days_ago_counts_at_90_days_not_at_84(
    days_ago: int, window: int, counted: bool
) -> None:
    history = [past(days_ago, "botox", "cervical-dystonia", D(300))]
    findings = run(
        plan("botox", "chronic-migraine", *[D(5)] * 21),  # 105 U: 405 U if the 300 U counts
        history=history,
        clinic=ClinicalSettings(cumulative_window_days=window),
    )
    assert ("cumulative-3-month" in rules(findings, "block")) is counted


def test_cumulative_message_states_the_window_in_use() -> None:
    history = [past(50, "botox", "cervical-dystonia", D(300))]
    findings = run(
        plan("botox", "chronic-migraine", *[D(5)] * 21),
        history=history,
        clinic=ClinicalSettings(cumulative_window_days=84),
    )
    [finding] = only(findings, "cumulative-3-month")
    assert "405 U of onabotulinumtoxinA in 84 days" in finding.message
    assert "since 2026-09-08" in finding.message


def test_units_of_another_toxin_family_never_count_towards_the_botox_limit() -> None:
    history = [
        past(20, "dysport", "cervical-dystonia", D(1000)),
        past(25, "xeomin", "upper-limb-spasticity", D(400)),
    ]
    findings = run(plan("botox", "chronic-migraine", *[D(5)] * 31), history=history)
    assert "cumulative-3-month" not in rules(findings)
    assert "recent-other-toxin" in rules(findings, "warn")


def test_a_later_history_entry_inside_the_window_is_counted() -> None:
    # A treatment charted after the planned date (late entry) is within 3 months of it.
    later = PastTreatment(DAY + timedelta(days=20), "botox", "cervical-dystonia", D(300))
    findings = run(plan("botox", "chronic-migraine", *[D(5)] * 21), history=[later])
    [finding] = only(findings, "cumulative-3-month")
    assert finding.value == 405
    assert "between 2026-09-22 and 2026-12-21" in finding.message


def test_paediatric_botox_cumulative_is_the_lesser_of_10_units_per_kg_and_340() -> None:
    kid = child(D(30))  # 10 U/kg x 30 kg = 300 U < 340 U
    plan_ = plan("botox", "upper-limb-spasticity", *[D(25)] * 4, muscle="biceps")  # 100 U
    ok = run(plan_, kid, [past(60, "botox", "lower-limb-spasticity", D(200))])
    assert "cumulative-3-month" not in rules(ok)
    over = run(plan_, kid, [past(60, "botox", "lower-limb-spasticity", D(201))])
    [finding] = only(over, "cumulative-3-month")
    assert finding.limit == 300 and finding.value == 301
    assert "(secondary)" in finding.source


def test_paediatric_botox_cumulative_uses_340_units_for_a_heavy_child() -> None:
    kid = child(D(60), age=16)  # 600 U by weight > 340 U
    plan_ = plan("botox", "chronic-migraine", *[D(5)] * 28)  # 140 U
    assert "cumulative-3-month" not in rules(
        run(plan_, kid, [past(30, "botox", "cervical-dystonia", D(200))])
    )
    over = run(plan_, kid, [past(30, "botox", "cervical-dystonia", D(201))])
    [finding] = only(over, "cumulative-3-month")
    assert finding.limit == 340


# ------------------------------------------------------------------------------------------
# blepharospasm-30-day


def test_blepharospasm_200_units_in_30_days_is_allowed_201_is_blocked() -> None:
    plan_ = plan("botox", "blepharospasm", *[D(5)] * 20, muscle="orbicularis oculi")  # 100 U
    ok = run(plan_, history=[past(30, "botox", "blepharospasm", D(100))])
    assert "blepharospasm-30-day" not in rules(ok)
    over = run(plan_, history=[past(30, "botox", "blepharospasm", D(101))])
    [finding] = only(over, "blepharospasm-30-day")
    assert finding.severity == "block"
    assert (
        "201 U of onabotulinumtoxinA in 30 days would exceed the 200 U maximum" in finding.message
    )
    assert "[S3] (confirmed)" in finding.source


def test_blepharospasm_treatment_31_days_ago_is_outside_the_30_day_window() -> None:
    plan_ = plan("botox", "blepharospasm", *[D(5)] * 20, muscle="orbicularis oculi")
    findings = run(plan_, history=[past(31, "botox", "blepharospasm", D(150))])
    assert "blepharospasm-30-day" not in rules(findings)


def test_blepharospasm_limit_counts_only_blepharospasm_treatments() -> None:
    plan_ = plan("botox", "blepharospasm", *[D(5)] * 20, muscle="orbicularis oculi")
    findings = run(plan_, history=[past(10, "botox", "cervical-dystonia", D(150))])
    assert "blepharospasm-30-day" not in rules(findings)


# ------------------------------------------------------------------------------------------
# session-max


def test_xeomin_400_units_in_a_session_is_allowed_401_is_blocked() -> None:
    assert "session-max" not in rules(run(plan("xeomin", "upper-limb-spasticity", *[D(50)] * 8)))
    findings = run(plan("xeomin", "upper-limb-spasticity", *[D(50)] * 7, D(51)))
    [finding] = only(findings, "session-max")
    assert finding.severity == "block" and finding.limit == 400 and finding.value == 401
    assert "401 U of incobotulinumtoxinA in one session" in finding.message
    assert "[S37] (confirmed)" in finding.source


def test_xeomin_session_limit_applies_to_any_indication() -> None:
    findings = run(plan("xeomin", "other", *[D(100)] * 4, D(1)))
    assert "session-max" in rules(findings, "block")


def test_dysport_adult_spasticity_1500_units_is_allowed_1501_is_blocked() -> None:
    ok = run(plan("dysport", "lower-limb-spasticity", *[D(150)] * 10, muscle="gastrocnemius"))
    assert "session-max" not in rules(ok)
    over = run(
        plan("dysport", "lower-limb-spasticity", *[D(150)] * 10, D(1), muscle="gastrocnemius")
    )
    [finding] = only(over, "session-max")
    assert finding.limit == 1500 and finding.value == 1501


def test_xeomin_upper_face_64_units_is_the_session_maximum() -> None:
    ok = run(plan("xeomin", "glabellar-lines", *[D(4)] * 16))
    assert "session-max" not in rules(ok)
    assert "label-dose" in rules(ok, "warn")  # 64 U is above the 20 U glabellar dose
    over = run(plan("xeomin", "glabellar-lines", *[D(4)] * 16, D(1)))
    [finding] = only(over, "session-max")
    assert finding.limit == 64


def test_unconfirmed_botox_upper_limb_maximum_applies_and_says_unconfirmed() -> None:
    findings = run(plan("botox", "upper-limb-spasticity", *[D(50)] * 8, D(1), muscle="biceps"))
    [finding] = only(findings, "session-max")
    assert finding.severity == "block" and finding.limit == 400
    assert finding.status == "unconfirmed"
    assert "unconfirmed" in finding.message and "(unconfirmed)" in finding.source


def test_clinic_cap_tightens_the_session_limit() -> None:
    clinic = ClinicalSettings(session_caps={"botox_cosmetic": D(40)})
    ok = run(plan("botox_cosmetic", "forehead-lines", *[D(4)] * 10), clinic=clinic)
    assert "session-max" not in rules(ok)
    over = run(plan("botox_cosmetic", "forehead-lines", *[D(4)] * 10, D(1)), clinic=clinic)
    [finding] = only(over, "session-max")
    assert "clinic's cap of 40 U" in finding.message
    assert finding.source.startswith("Clinic setting")


# ------------------------------------------------------------------------------------------
# site-max and muscle-max


def test_botox_cervical_dystonia_50_units_at_a_site_is_allowed_51_is_blocked() -> None:
    assert "site-max" not in rules(
        run(plan("botox", "cervical-dystonia", D(50), D(50), muscle="splenius capitis"))
    )
    findings = run(plan("botox", "cervical-dystonia", D(50), D(51), muscle="splenius capitis"))
    [finding] = only(findings, "site-max")
    assert finding.severity == "block" and finding.limit == 50 and finding.value == 51
    assert "point 2" in finding.message


def test_per_site_maximum_applies_to_spasticity_not_to_cosmetic_points() -> None:
    assert "site-max" in rules(run(plan("botox", "lower-limb-spasticity", D(60), muscle="soleus")))
    assert "site-max" not in rules(run(plan("botox_cosmetic", "platysma-bands", D(30))))


def test_blepharospasm_above_5_units_per_site_is_a_note_not_a_block() -> None:
    findings = run(plan("botox", "blepharospasm", D(5), D("5.5"), muscle="orbicularis oculi"))
    [finding] = only(findings, "site-max")
    assert finding.severity == "info"


def test_sternocleidomastoid_above_100_units_warns() -> None:
    ok = run(plan("botox", "cervical-dystonia", D(50), D(50), muscle="sternocleidomastoid"))
    assert "muscle-max" not in rules(ok)
    p = Plan(
        "botox",
        "cervical-dystonia",
        DAY,
        [
            PlannedPoint("neck", "Sternocleidomastoid", "L", D(50)),
            PlannedPoint("neck", "SCM", "R", D(51)),
        ],
    )
    [finding] = only(run(p), "muscle-max")
    assert finding.severity == "warn" and finding.value == 101


# ------------------------------------------------------------------------------------------
# paediatric-max


def test_20_kg_child_upper_limb_limit_is_6_units_per_kg_120_units() -> None:
    kid = child(D(20))
    assert "paediatric-max" not in rules(
        run(plan("botox", "upper-limb-spasticity", *[D(30)] * 4, muscle="biceps"), kid)
    )
    findings = run(plan("botox", "upper-limb-spasticity", *[D(30)] * 4, D(1), muscle="biceps"), kid)
    [finding] = only(findings, "paediatric-max")
    assert finding.limit == 120 and finding.value == 121
    assert "6 U/kg x 20 kg = 120 U, lower than the 200 U absolute maximum" in finding.message


def test_40_kg_child_upper_limb_limit_is_the_200_unit_absolute_maximum() -> None:
    kid = child(D(40))
    assert "paediatric-max" not in rules(
        run(plan("botox", "upper-limb-spasticity", *[D(40)] * 5, muscle="biceps"), kid)
    )
    findings = run(plan("botox", "upper-limb-spasticity", *[D(40)] * 5, D(1), muscle="biceps"), kid)
    [finding] = only(findings, "paediatric-max")
    assert finding.limit == 200 and finding.value == 201
    assert "200 U absolute maximum; 6 U/kg x 40 kg = 240 U is higher" in finding.message


@pytest.mark.parametrize("weight", [None, D(0), D(-3), D("NaN"), D("Infinity")])
def test_child_without_a_valid_weight_is_blocked_for_weight_based_limits(
    weight: Decimal | None,
) -> None:
    findings = run(plan("botox", "upper-limb-spasticity", D(10), muscle="biceps"), child(weight))
    blocks = only(findings, "paediatric-max")
    assert blocks and all(f.severity == "block" for f in blocks)
    assert "weight" in blocks[0].message and "cannot be checked" in blocks[0].message


def test_adult_without_a_weight_is_not_blocked() -> None:
    no_weight = PatientFacts(date(1980, 1, 1), None, frozenset())
    findings = run(plan("botox", "upper-limb-spasticity", *[D(40)] * 5, muscle="biceps"), no_weight)
    assert rules(findings, "block") == set()


def test_dysport_child_per_limb_and_per_session_limits() -> None:
    kid = child(D(20))  # 16 U/kg per arm = 320 U; 30 U/kg per session = 600 U
    one_arm = plan("dysport", "upper-limb-spasticity", D(160), D(160), muscle="biceps", side="L")
    assert "paediatric-max" not in rules(run(one_arm, kid))
    over_arm = plan("dysport", "upper-limb-spasticity", D(160), D(161), muscle="biceps", side="L")
    [finding] = only(run(over_arm, kid), "paediatric-max")
    assert finding.limit == 320 and "left limb" in finding.message
    both = Plan(
        "dysport",
        "upper-limb-spasticity",
        DAY,
        [PlannedPoint("arm", "biceps", "L", D(300)), PlannedPoint("arm", "biceps", "R", D(301))],
    )
    [finding] = only(run(both, kid), "paediatric-max")
    assert finding.limit == 600 and finding.value == 601


def test_dysport_adult_spasticity_maximum_does_not_replace_the_childs_limit() -> None:
    findings = run(plan("dysport", "lower-limb-spasticity", D(500), muscle="soleus"), child(D(20)))
    assert {f.limit for f in only(findings, "paediatric-max")} == {D(300)}  # 15 U/kg per leg
    assert "session-max" not in rules(findings)


def test_children_treated_for_spasticity_get_the_distant_spread_note() -> None:
    findings = run(plan("botox", "upper-limb-spasticity", D(10), muscle="biceps"), child(D(20)))
    assert "distant-spread" in rules(findings, "info")
    assert "distant-spread" not in rules(
        run(plan("botox", "upper-limb-spasticity", D(10), muscle="biceps"))
    )


# ------------------------------------------------------------------------------------------
# min-interval


def test_cosmetic_retreatment_at_90_days_is_allowed_89_is_blocked() -> None:
    p = plan("botox_cosmetic", "glabellar-lines", *[D(4)] * 5)
    assert "min-interval" not in rules(
        run(p, history=[past(90, "botox_cosmetic", "glabellar-lines", D(20))])
    )
    findings = run(p, history=[past(89, "botox_cosmetic", "glabellar-lines", D(20))])
    [finding] = only(findings, "min-interval")
    assert finding.severity == "block" and finding.limit == 90 and finding.value == 89
    assert "89 days ago" in finding.message and "earliest date is 2026-12-02" in finding.message


def test_interval_counts_the_product_family_not_the_brand_and_outside_treatments() -> None:
    p = plan("botox_cosmetic", "glabellar-lines", *[D(4)] * 5)
    findings = run(p, history=[past(30, "botox", "glabellar-lines", D(20), outside=True)])
    [finding] = only(findings, "min-interval")
    assert "given elsewhere" in finding.message


def test_interval_is_per_family_another_toxin_does_not_reset_it() -> None:
    p = plan("botox_cosmetic", "glabellar-lines", *[D(4)] * 5)
    findings = run(p, history=[past(30, "dysport", "glabellar-lines", D(50))])
    assert "min-interval" not in rules(findings)
    assert "recent-other-toxin" in rules(findings, "warn")


def test_interval_is_per_indication() -> None:
    p = plan("botox_cosmetic", "lateral-canthal-lines", *[D(4)] * 6)
    assert "min-interval" not in rules(
        run(p, history=[past(10, "botox_cosmetic", "glabellar-lines", D(20))])
    )


@pytest.mark.parametrize(
    ("indication", "units"),
    [("chronic-migraine", [D(5)] * 31), ("overactive-bladder", [D(5)] * 20)],
)
def test_twelve_week_indications_allow_84_days_and_block_83(
    indication: str, units: list[Decimal]
) -> None:
    p = plan("botox", indication, *units)
    assert "min-interval" not in rules(run(p, history=[past(84, "botox", indication, D(100))]))
    [finding] = only(run(p, history=[past(83, "botox", indication, D(100))]), "min-interval")
    assert finding.limit == 84


def test_dysport_child_upper_limb_interval_is_16_weeks() -> None:
    p = plan("dysport", "upper-limb-spasticity", D(100), muscle="biceps")
    kid = child(D(20))
    assert "min-interval" not in rules(
        run(p, kid, [past(112, "dysport", "upper-limb-spasticity", D(100))])
    )
    [finding] = only(
        run(p, kid, [past(111, "dysport", "upper-limb-spasticity", D(100))]), "min-interval"
    )
    assert finding.limit == 112
    adult_ok = run(p, history=[past(84, "dysport", "upper-limb-spasticity", D(100))])
    assert "min-interval" not in rules(adult_ok)


def test_unconfirmed_interval_applies_and_says_so() -> None:
    p = plan("dysport", "cervical-dystonia", D(250), D(250), muscle="splenius capitis")
    [finding] = only(
        run(p, history=[past(60, "dysport", "cervical-dystonia", D(500))]), "min-interval"
    )
    assert finding.status == "unconfirmed" and "unconfirmed" in finding.message


def test_no_interval_is_invented_where_the_reference_has_none() -> None:
    p = plan("botox", "cervical-dystonia", D(50), muscle="splenius capitis")
    assert "min-interval" not in rules(
        run(p, history=[past(20, "botox", "cervical-dystonia", D(200))])
    )


# ------------------------------------------------------------------------------------------
# product-mixing


def test_two_toxin_products_in_one_plan_warn_with_totals_per_product_never_summed() -> None:
    p = Plan(
        "botox_cosmetic",
        "glabellar-lines",
        DAY,
        [
            *points(*[D(4)] * 5),
            *[PlannedPoint("face", "frontalis", "R", D(10), product_id="dysport")] * 5,
        ],
    )
    findings = run(p)
    [finding] = only(findings, "product-mixing")
    assert finding.severity == "warn"
    assert "Botox Cosmetic 20 U" in finding.message and "Dysport 50 U" in finding.message
    assert "70 U" not in finding.message


def test_units_of_mixed_products_are_checked_against_their_own_limits_only() -> None:
    p = Plan(
        "botox",
        "upper-limb-spasticity",
        DAY,
        [
            *points(*[D(50)] * 7, muscle="biceps"),
            PlannedPoint("arm", "soleus", "L", D(500), product_id="dysport"),
        ],
    )
    findings = run(p)
    assert "cumulative-3-month" not in rules(findings)  # 350 U Botox; Dysport never added
    assert "session-max" not in rules(findings)


def test_botox_and_botox_cosmetic_together_is_a_note_and_counts_as_one_toxin() -> None:
    p = Plan(
        "botox",
        "chronic-migraine",
        DAY,
        [
            *points(*[D(5)] * 31),
            PlannedPoint("face", "procerus", "mid", D(250), product_id="botox_cosmetic"),
        ],
    )
    findings = run(p)
    [mixing] = only(findings, "product-mixing")
    assert mixing.severity == "info"
    [cumulative] = only(findings, "cumulative-3-month")
    assert cumulative.value == 405


# ------------------------------------------------------------------------------------------
# contraindication


def test_infection_at_the_site_blocks_any_product() -> None:
    [finding] = only(
        run(plan("xeomin", "glabellar-lines", *[D(4)] * 5), adult("infection-at-site")),
        "contraindication",
    )
    assert finding.severity == "block" and "infection" in finding.message


def test_cow_milk_protein_allergy_blocks_dysport_not_botox() -> None:
    allergic = adult("allergy-cow-milk-protein")
    dysport = run(plan("dysport", "glabellar-lines", *[D(10)] * 5), allergic)
    assert "contraindication" in rules(dysport, "block")
    assert "cow's milk" in only(dysport, "contraindication")[0].message
    botox = run(plan("botox_cosmetic", "glabellar-lines", *[D(4)] * 5), allergic)
    assert "contraindication" not in rules(botox)


def test_albumin_allergy_blocks_albumin_products_only() -> None:
    allergic = adult("allergy-albumin")
    assert "contraindication" in rules(
        run(plan("botox_cosmetic", "glabellar-lines", *[D(4)] * 5), allergic), "block"
    )
    assert "contraindication" not in rules(
        run(plan("daxxify", "glabellar-lines", *[D(8)] * 5), allergic)
    )


def test_albumin_in_xeomin_is_unconfirmed_and_the_block_says_so() -> None:
    [finding] = only(
        run(plan("xeomin", "glabellar-lines", *[D(4)] * 5), adult("allergy-albumin")),
        "contraindication",
    )
    assert finding.severity == "block" and finding.status == "unconfirmed"
    assert "unconfirmed" in finding.message


def test_hypersensitivity_to_the_product_blocks_it_and_its_family() -> None:
    [finding] = only(
        run(plan("botox_cosmetic", "glabellar-lines", *[D(4)] * 5), adult("allergy-botox")),
        "contraindication",
    )
    assert finding.severity == "block" and "same toxin" in finding.message


def test_hypersensitivity_to_another_toxin_blocks_per_the_labels_class_wording() -> None:
    [finding] = only(
        run(plan("xeomin", "glabellar-lines", *[D(4)] * 5), adult("allergy-dysport")),
        "contraindication",
    )
    assert finding.severity == "block"
    assert "any botulinum toxin preparation" in finding.message


@pytest.mark.parametrize(
    "flag", ["neuromuscular-disorder", "neuromuscular-blocking-drug", "pregnant", "breastfeeding"]
)
def test_precautions_warn_but_do_not_block(flag: str) -> None:
    findings = run(plan("botox_cosmetic", "glabellar-lines", *[D(4)] * 5), adult(flag))
    [finding] = only(findings, "contraindication")
    assert finding.severity == "warn"
    assert rules(findings, "block") == set()


def test_anticoagulant_is_a_note_for_bladder_injection_only() -> None:
    bladder = run(plan("botox", "overactive-bladder", *[D(5)] * 20), adult("anticoagulant"))
    assert [f.severity for f in only(bladder, "contraindication")] == ["info"]
    assert (
        only(
            run(plan("botox_cosmetic", "glabellar-lines", *[D(4)] * 5), adult("anticoagulant")),
            "contraindication",
        )
        == []
    )


def test_urinary_tract_infection_blocks_bladder_injection() -> None:
    findings = run(
        plan("botox", "overactive-bladder", *[D(5)] * 20), adult("urinary-tract-infection")
    )
    assert "contraindication" in rules(findings, "block")


# ------------------------------------------------------------------------------------------
# expired-lot and vial-use-by


def test_lot_expiring_on_the_treatment_day_is_usable_the_day_before_is_blocked() -> None:
    ok = run(plan("botox", "chronic-migraine", *[D(5)] * 31, vial=VialFacts(DAY)))
    assert "expired-lot" not in rules(ok)
    expired = run(
        plan("botox", "chronic-migraine", *[D(5)] * 31, vial=VialFacts(DAY - timedelta(days=1)))
    )
    [finding] = only(expired, "expired-lot")
    assert finding.severity == "block" and "2026-11-30" in finding.message


def test_reconstituted_vial_past_its_use_by_time_is_blocked() -> None:
    use_by = NOW
    ok = run(plan("botox", "chronic-migraine", *[D(5)] * 31, vial=VialFacts(DAY, use_by)))
    assert "vial-use-by" not in rules(ok)
    late = run(
        plan("botox", "chronic-migraine", *[D(5)] * 31, vial=VialFacts(DAY, use_by)),
        now=NOW + timedelta(minutes=1),
    )
    [finding] = only(late, "vial-use-by")
    assert finding.severity == "block" and "24 hours" in finding.source


def test_use_by_without_a_time_zone_is_blocked_not_a_crash() -> None:
    naive = datetime(2026, 12, 1, 18, 0)
    findings = run(plan("botox", "chronic-migraine", *[D(5)] * 31, vial=VialFacts(DAY, naive)))
    assert "vial-use-by" in rules(findings, "block")


# ------------------------------------------------------------------------------------------
# Bad input: a block finding, never an exception


def test_empty_plan_is_blocked() -> None:
    assert rules(run(Plan("botox", "chronic-migraine", DAY, [])), "block") == {"empty-plan"}


@pytest.mark.parametrize(
    "units",
    [
        D(0),
        D("-0"),
        D(-5),
        D("NaN"),
        D("sNaN"),
        D("Infinity"),
        D("-Infinity"),
        "abc",
        None,
        True,
        D("1E+9"),
        D("1E+999999"),
    ],
)
def test_impossible_units_are_a_block_finding_never_an_exception(units: object) -> None:
    findings = run(plan("botox", "chronic-migraine", D(5), units))
    assert "invalid-units" in rules(findings, "block")


def test_units_above_any_vial_still_count_towards_the_limits() -> None:
    findings = run(plan("botox", "chronic-migraine", D(20000)))
    assert {"invalid-units", "cumulative-3-month"} <= rules(findings, "block")


def test_unknown_product_and_indication_are_blocked_with_a_clear_message() -> None:
    findings = run(plan("botux", "frown", D(5)))
    assert {"unknown-product", "unknown-indication"} <= rules(findings, "block")
    text = " ".join(f.message for f in findings)
    assert "'botux'" in text and "'frown'" in text


def test_unknown_point_product_is_blocked() -> None:
    p = Plan(
        "botox",
        "chronic-migraine",
        DAY,
        [PlannedPoint("face", "procerus", "mid", D(5), product_id="nope")],
    )
    assert "unknown-product" in rules(run(p), "block")


def test_product_wide_limits_still_apply_with_an_unknown_indication() -> None:
    findings = run(plan("xeomin", "frown", *[D(100)] * 5))
    assert {"unknown-indication", "session-max"} <= rules(findings, "block")


def test_date_of_birth_after_the_treatment_is_blocked() -> None:
    findings = run(
        plan("botox", "chronic-migraine", *[D(5)] * 31),
        PatientFacts(DAY + timedelta(days=1), None, frozenset()),
    )
    assert "invalid-patient" in rules(findings, "block")


@pytest.mark.parametrize("on", [date(1, 1, 1), date(1899, 12, 31), date(2200, 1, 1), date.max])
def test_a_plan_dated_outside_plausible_years_is_blocked_not_a_crash(on: date) -> None:
    findings = run(plan("botox", "chronic-migraine", *[D(5)] * 31, on=on))
    assert [f.rule for f in findings if f.severity == "block"] == ["empty-plan"]
    assert on.isoformat() in findings[0].message


def test_history_at_the_calendars_ends_does_not_overflow_the_windows() -> None:
    history = [
        PastTreatment(date(1, 1, 2), "botox", "chronic-migraine", D(155)),
        PastTreatment(date.max, "botox", "chronic-migraine", D(155)),
    ]
    findings = run(plan("botox", "chronic-migraine", *[D(5)] * 31), history=history)
    assert "cumulative-3-month" not in rules(findings, "block")


def test_history_with_impossible_units_blocks_instead_of_being_ignored() -> None:
    findings = run(
        plan("botox", "chronic-migraine", *[D(5)] * 31),
        history=[past(10, "botox", "cervical-dystonia", D("NaN"))],
    )
    assert "invalid-history" in rules(findings, "block")


def test_history_with_an_unknown_product_warns() -> None:
    findings = run(
        plan("botox", "chronic-migraine", *[D(5)] * 31),
        history=[past(10, "mystery", "cervical-dystonia", D(100))],
    )
    assert "unknown-product" in rules(findings, "warn")


# ------------------------------------------------------------------------------------------
# label-dose and off-label


def test_above_the_labelled_dose_warns_without_blocking() -> None:
    assert "label-dose" not in rules(run(plan("botox_cosmetic", "glabellar-lines", *[D(4)] * 5)))
    findings = run(plan("botox_cosmetic", "glabellar-lines", *[D(4)] * 5, D(1)))
    [finding] = only(findings, "label-dose")
    assert finding.severity == "warn" and finding.limit == 20 and finding.value == 21
    assert rules(findings, "block") == set()


def test_label_dose_mentions_the_labelled_combination_totals() -> None:
    [finding] = only(
        run(plan("botox_cosmetic", "lateral-canthal-lines", *[D(4)] * 11)), "label-dose"
    )
    assert "44 U when treated together with glabellar lines" in finding.message


def test_product_without_labelled_dosing_for_the_indication_is_off_label() -> None:
    [finding] = only(run(plan("jeuveau", "cervical-dystonia", D(20))), "off-label")
    assert finding.severity == "warn" and finding.source


def test_dysport_glabellar_lines_at_65_is_off_label() -> None:
    senior = PatientFacts(date(1961, 1, 1), D(70), frozenset())
    assert "off-label" in rules(
        run(plan("dysport", "glabellar-lines", *[D(10)] * 5), senior), "warn"
    )
    assert "off-label" not in rules(run(plan("dysport", "glabellar-lines", *[D(10)] * 5)))


# ------------------------------------------------------------------------------------------
# Reference integrity: every figure sourced, limits match the labelled dosing they come from


def test_every_rule_id_is_stable_kebab_case_and_unique() -> None:
    ids = rule_ids()
    assert len(ids) == len(set(ids))
    for ident in ids:
        assert ident == ident.lower() and " " not in ident and "_" not in ident
    required = {
        "cumulative-3-month",
        "min-interval",
        "session-max",
        "site-max",
        "paediatric-max",
        "product-mixing",
        "contraindication",
        "expired-lot",
        "vial-use-by",
    }
    assert required <= set(ids)
    assert all(r.checks for r in RULES)


def test_every_limit_cites_sources_that_exist_and_a_known_status() -> None:
    lim = indications.limits()
    citations = [
        lim.units_guard.citation,
        *(c.citation for c in lim.cumulative),
        *(c.citation for c in lim.session),
        *(c.citation for c in lim.site),
        *(c.citation for c in lim.muscle),
        *(c.citation for c in lim.paediatric),
        *(c.citation for c in lim.min_interval),
        *(c.citation for c in lim.contraindications),
        *(c.citation for c in lim.warnings),
    ]
    for citation in citations:
        assert citation.basis and citation.origin
        assert citation.status in ("confirmed", "secondary", "unconfirmed")
        for sid in citation.sources:
            sources.get(sid)
        if not citation.sources:
            assert citation.status == "unconfirmed", citation


def _entry(product: str, label: str, population: str) -> dict[str, object]:
    data = _reference.load("indications")
    [row] = [
        r
        for r in data["dosing"]
        if r["product"] == product and r["indication"] == label and r["population"] == population
    ]
    return dict(row)


def _limit(kind: str, ident: str) -> dict[str, object]:
    [row] = [r for r in _reference.load("limits")[kind] if r["id"] == ident]
    return dict(row)


def test_limit_figures_match_the_labelled_dosing_they_come_from() -> None:
    assert (
        _limit("session", "incobotulinumtoxinA-upper-face-64")["max_units"]
        == _entry("xeomin", "upper facial lines (GL+FHL+LCL simultaneous)", "adult")[
            "max_units_per_session"
        ]
    )
    assert (
        _limit("session", "incobotulinumtoxinA-session-400")["max_units"]
        == _entry("xeomin", "upper limb spasticity", "adult")["max_units_per_session"]
    )
    assert (
        _limit("session", "abobotulinumtoxinA-adult-spasticity-1500")["max_units"]
        == _entry("dysport", "upper limb spasticity", "adult")["max_units_per_session_all_limbs"]
    )
    botox_uls = _entry("botox", "upper limb spasticity", "adult")
    assert (
        _limit("session", "onabotulinumtoxinA-adult-upper-limb-400")["max_units"]
        == botox_uls["max_units_per_session"]
    )
    assert (
        _limit("session", "onabotulinumtoxinA-adult-upper-limb-400")["status"]
        == botox_uls["max_status"]
    )
    assert (
        _limit("site", "onabotulinumtoxinA-site-50")["max_units_per_site"]
        == _entry("botox", "cervical dystonia", "adult")["max_units_per_site"]
    )
    assert (
        _limit("site", "onabotulinumtoxinA-blepharospasm-site-5")["max_units_per_site"]
        == _entry("botox", "blepharospasm", ">=12 y")["max_units_per_site_useful"]
    )
    assert (
        _limit("muscle", "onabotulinumtoxinA-cervical-dystonia-scm-100")["max_units"]
        == _entry("botox", "cervical dystonia", "adult")["scm_max_units"]
    )
    bleph = _entry("botox", "blepharospasm", ">=12 y")
    cum = _limit("cumulative", "onabotulinumtoxinA-blepharospasm-30-day")
    assert (cum["max_units"], cum["window_days"]) == (
        bleph["cumulative_max_units"],
        bleph["cumulative_window_days"],
    )
    pairs = {
        "onabotulinumtoxinA-paediatric-upper-limb": (
            "botox",
            "upper limb spasticity",
            "pediatric 2-17 y",
        ),
        "onabotulinumtoxinA-paediatric-lower-limb": (
            "botox",
            "lower limb spasticity",
            "pediatric 2-17 y",
        ),
        "abobotulinumtoxinA-paediatric-upper-limb-per-limb": (
            "dysport",
            "upper limb spasticity",
            "pediatric >=2 y (unilateral)",
        ),
        "abobotulinumtoxinA-paediatric-lower-limb-per-limb": (
            "dysport",
            "lower limb spasticity (unilateral)",
            "pediatric >=2 y",
        ),
        "abobotulinumtoxinA-paediatric-spasticity-session": (
            "dysport",
            "upper + lower limb spasticity combined",
            "pediatric >=2 y",
        ),
    }
    for ident, key in pairs.items():
        row, entry = _limit("paediatric", ident), _entry(*key)
        assert (row["max_units_per_kg"], row["max_units_abs"]) == (
            entry["max_units_per_kg"],
            entry["max_units_abs"],
        ), ident
        assert row["status"] == entry["status"], ident
    xeo = _entry("xeomin", "upper limb spasticity", "pediatric 2-17 y (excluding cerebral palsy)")
    per_limb = _limit("paediatric", "incobotulinumtoxinA-paediatric-upper-limb-per-limb")
    assert (per_limb["max_units_per_kg"], per_limb["max_units_abs"]) == (
        xeo["max_units_per_kg_per_limb"],
        xeo["max_units_per_limb"],
    )
    both = _limit("paediatric", "incobotulinumtoxinA-paediatric-upper-limb-both")
    assert (both["max_units_per_kg"], both["max_units_abs"]) == (
        xeo["bilateral_max_units_per_kg"],
        xeo["bilateral_max_units"],
    )
    assert both["status"] == xeo["bilateral_status"]


def test_every_min_interval_matches_a_labelled_dosing_entry() -> None:
    dosing = indications.dosing()
    for row in indications.limits().min_interval:
        for indication in row.indications:
            matching = [
                d
                for d in dosing
                if d.generic == row.generic
                and indication in d.indication_ids
                and d.min_retreatment_days == row.days
            ]
            assert matching, f"{row.id}: no dosing entry for {indication} with {row.days} days"


def test_indication_reference_carries_every_original_dosing_entry_and_the_twelve_ids() -> None:
    data = _reference.load("indications")
    assert [i["id"] for i in data["indications"]] == list(indications.INDICATION_IDS)
    assert len(data["dosing"]) == 37
    for row in data["dosing"]:
        for key in ("product", "indication", "population", "status", "sources"):
            assert key in row
        for sid in row["sources"]:
            sources.get(sid)
    cosmetic = {i.id for i in indications.indications() if i.cosmetic}
    assert cosmetic == {
        "glabellar-lines",
        "lateral-canthal-lines",
        "forehead-lines",
        "platysma-bands",
    }


def test_dosing_families_match_the_catalogue() -> None:
    from glabella.clinical import catalogue

    for row in indications.dosing():
        assert catalogue.product(row.product_id).generic == row.generic


def test_safety_engine_modules_import_no_django() -> None:
    import ast
    from pathlib import Path

    import glabella.clinical as package

    root = Path(package.__file__).parent
    for name in (
        "indications",
        "safety",
        "schedule",
        "scales",
        "settings",
        "dose_check_cli",
        "rules_doc",
    ):
        tree = ast.parse((root / f"{name}.py").read_text(encoding="utf-8"))
        imported = [
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        ] + [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        assert not [m for m in imported if m.split(".")[0] == "django"], name


# ------------------------------------------------------------------------------------------
# Properties

PRODUCTS = [
    "botox",
    "botox_cosmetic",
    "dysport",
    "xeomin",
    "jeuveau",
    "daxxify",
    "letybo",
    "myobloc",
]
units_st = st.decimals(
    min_value=D("0.25"), max_value=D(600), places=2, allow_nan=False, allow_infinity=False
)
point_st = st.builds(
    PlannedPoint,
    area=st.sampled_from(["face", "neck", "arm", "leg"]),
    muscle=st.sampled_from(["frontalis", "sternocleidomastoid", "biceps", "soleus", "procerus"]),
    side=st.sampled_from(["L", "R", "mid"]),
    units=units_st,
    product_id=st.one_of(st.none(), st.sampled_from(PRODUCTS)),
)
plan_st = st.builds(
    Plan,
    product_id=st.sampled_from(PRODUCTS),
    indication=st.sampled_from(indications.INDICATION_IDS),
    date=st.just(DAY),
    points=st.lists(point_st, min_size=1, max_size=6),
)
patient_st = st.builds(
    PatientFacts,
    date_of_birth=st.dates(min_value=date(1930, 1, 1), max_value=date(2024, 1, 1)),
    weight_kg=st.one_of(st.none(), st.decimals(min_value=D(8), max_value=D(120), places=1)),
    flags=st.frozensets(
        st.sampled_from(
            ["pregnant", "allergy-albumin", "allergy-cow-milk-protein", "infection-at-site"]
        ),
        max_size=2,
    ),
)
history_st = st.lists(
    st.builds(
        PastTreatment,
        date=st.integers(min_value=0, max_value=200).map(lambda n: DAY - timedelta(days=n)),
        product_id=st.sampled_from(PRODUCTS),
        indication=st.sampled_from(indications.INDICATION_IDS),
        units=units_st,
        outside=st.booleans(),
    ),
    max_size=5,
)


def _serious(findings: Sequence[Finding]) -> set[tuple[str, str]]:
    return {(f.rule, f.severity) for f in findings if f.severity in ("block", "warn")}


@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow])
@given(plan_st, patient_st, history_st, st.data(), st.sampled_from([84, 90]))
def test_a_finding_never_disappears_when_a_dose_only_grows(
    p: Plan, patient: PatientFacts, history: list[PastTreatment], data: st.DataObject, window: int
) -> None:
    clinic = ClinicalSettings(cumulative_window_days=window)
    before = check(p, patient, history, NOW, clinic)
    index = data.draw(st.integers(min_value=0, max_value=len(p.points) - 1))
    extra = data.draw(st.decimals(min_value=D("0.01"), max_value=D(20000), places=2))
    grown = list(p.points)
    old = grown[index]
    grown[index] = PlannedPoint(
        old.area, old.muscle, old.side, old.units + extra, old.depth, old.product_id
    )
    after = check(
        Plan(p.product_id, p.indication, p.date, grown, p.vial), patient, history, NOW, clinic
    )
    assert_well_formed(after)
    assert _serious(before) <= _serious(after)


@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow])
@given(plan_st, patient_st, history_st, st.integers(min_value=1, max_value=400))
def test_a_longer_time_since_past_treatments_never_creates_a_finding(
    p: Plan, patient: PatientFacts, history: list[PastTreatment], shift: int
) -> None:
    before = check(p, patient, history, NOW)
    earlier = [
        PastTreatment(
            t.date - timedelta(days=shift), t.product_id, t.indication, t.units, t.outside
        )
        for t in history
    ]
    after = check(p, patient, earlier, NOW)
    assert {(f.rule, f.severity) for f in after} <= {(f.rule, f.severity) for f in before}


@settings(max_examples=200)
@given(
    st.lists(
        st.one_of(
            st.decimals(allow_nan=True, allow_infinity=True),
            st.integers(),
            st.text(max_size=5),
            st.none(),
            st.floats(),
        ),
        max_size=5,
    ),
    st.sampled_from([*PRODUCTS, "unknown"]),
    st.text(max_size=12),
)
def test_any_input_gives_findings_never_an_exception(
    units: list[object], product: str, indication: str
) -> None:
    p = Plan(product, indication, DAY, [PlannedPoint("face", "frontalis", "L", u) for u in units])  # type: ignore[arg-type]
    findings = check(p, ADULT, [], NOW)
    assert_well_formed(findings)
    if not units:
        assert "empty-plan" in rules(findings, "block")


def _scenarios() -> list[Callable[[], list[Finding]]]:
    return [
        lambda: run(
            plan("botox", "upper-limb-spasticity", D(10), muscle="biceps"),
            child(None, "pregnant", "neuromuscular-disorder"),
        ),
        lambda: run(
            plan("dysport", "glabellar-lines", D(10)),
            adult("allergy-cow-milk-protein", "allergy-albumin", "breastfeeding"),
        ),
        lambda: run(
            plan("botox", "overactive-bladder", *[D(5)] * 20),
            adult("anticoagulant", "urinary-retention", "neuromuscular-blocking-drug"),
        ),
    ]


@pytest.mark.parametrize("scenario", _scenarios())
def test_every_finding_has_a_source_and_resolvable_source_ids(
    scenario: Callable[[], list[Finding]],
) -> None:
    findings = scenario()
    assert findings
    assert all(f.source for f in findings)
