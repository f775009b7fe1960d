from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from glabella.accounts.actor import Actor
from glabella.audit.models import AuditEvent
from glabella.charting import services
from glabella.charting.models import InjectionPoint, SessionLocked, Status, TreatmentSession
from glabella.charting.tests.conftest import ready_to_sign
from glabella.patients import services as patient_services


def _outside_botox_300_units_a_month_ago(world):
    patient_services.add_history_item(
        world.actor("injector"),
        world.patient,
        {
            "kind": "outside_treatment",
            "code": "toxin",
            "product_id": "botox",
            "units": "300",
            "area": "neck",
            "indication": "cervical-dystonia",
            "treated_on": date.today() - timedelta(days=30),
        },
    )


def _start(world, protocol="protocol:glabellar-lines-botox-cosmetic", **kw):
    kw.setdefault("indication", "glabellar-lines")
    kw.setdefault("product_id", "botox_cosmetic")
    return services.start_session(world.actor("injector"), world.patient, start_from=protocol, **kw)


def test_preempt_template_lays_out_31_points_and_155_units(world):
    session = _start(
        world,
        "protocol:chronic-migraine-preempt",
        indication="chronic-migraine",
        product_id="botox",
    )
    t = services.totals(session)
    assert (t.points, t.total) == (31, Decimal(155))
    assert t.by_area["temple"] == 40 and t.by_area["glabella"] == 15
    assert t.by_side == {"Left": 75, "Right": 75, "Midline": 5}


def test_glabellar_template_gives_five_points_of_four_units(world):
    session = _start(world)
    points = services.live_points(session)
    assert [p.units for p in points] == [Decimal(4)] * 5
    assert {p.muscle for p in points} == {"corrugator", "procerus"}


def test_a_protocol_for_another_product_is_refused_units_are_not_interchangeable(world):
    with pytest.raises(ValidationError, match="not interchangeable"):
        _start(world, product_id="dysport")
    assert not TreatmentSession.objects.exists()


def test_a_tap_infers_area_muscle_and_side_from_the_diagram(world):
    session = _start(world, "blank")
    glabellar = next(p for p in services.live_points(_start(world)) if p.muscle == "procerus")
    point = services.add_point(
        world.actor("injector"),
        session,
        session.version,
        diagram=glabellar.diagram,
        x=glabellar.x,
        y=glabellar.y,
        units="4",
    )
    assert (point.muscle, point.side) == ("procerus", "mid")


@pytest.mark.parametrize(
    ("units", "message"),
    [
        ("0", "more than zero"),
        ("-2", "more than zero"),
        ("NaN", "ordinary number"),
        ("abc", "not a number"),
        ("501", "not a plausible dose"),
        ("", "Enter the units"),
    ],
)
def test_bad_units_on_a_point_are_refused_and_nothing_is_written(world, units, message):
    session = _start(world, "blank")
    procerus = next(p for p in services.live_points(_start(world)) if p.muscle == "procerus")
    with pytest.raises(ValidationError, match=message):
        services.add_point(
            world.actor("injector"),
            session,
            session.version,
            diagram="face-front",
            x=procerus.x,
            y=procerus.y,
            units=units,
        )
    session.refresh_from_db()
    assert session.points.count() == 0 and session.version == 1


def test_a_point_outside_every_muscle_area_is_refused(world):
    session = _start(world, "blank")
    with pytest.raises(ValidationError, match="outside the marked muscle areas"):
        services.add_point(
            world.actor("injector"), session, 1, diagram="face-front", x=1, y=1, units=4
        )
    with pytest.raises(ValidationError, match="off the diagram"):
        services.add_point(
            world.actor("injector"), session, 1, diagram="face-front", x=150, y=1, units=4
        )


def test_a_stale_page_cannot_overwrite_someone_elses_change(world):
    session = _start(world)
    stale = session.version
    services.update_point(world.actor("injector"), session, stale, 1, units="5")
    with pytest.raises(services.StaleVersion):
        services.update_point(world.actor("prescriber"), session, stale, 1, units="6")
    assert session.points.get(number=1).units == Decimal(5)


def test_remove_and_undo(world):
    session = _start(world)
    services.remove_point(world.actor("injector"), session, session.version, 2)
    session.refresh_from_db()
    assert services.totals(session).total == 16
    services.restore_point(world.actor("injector"), session, session.version, 2)
    session.refresh_from_db()
    assert services.totals(session).total == 20


def test_mirror_puts_the_same_dose_on_the_other_side(world):
    session = _start(world, "protocol:lateral-canthal-lines", indication="lateral-canthal-lines")
    first = services.live_points(session)[0]
    session.refresh_from_db()
    mirrored = services.mirror_point(
        world.actor("injector"), session, session.version, first.number
    )
    assert mirrored.side != first.side and mirrored.muscle == first.muscle
    assert mirrored.units == first.units
    assert mirrored.x == Decimal(100) - first.x


def test_every_change_is_audited(world):
    session = _start(world)
    before = AuditEvent.objects.count()
    services.update_point(world.actor("injector"), session, session.version, 3, units="4.5")
    event = AuditEvent.objects.latest("seq")
    assert AuditEvent.objects.count() == before + 1
    assert event.detail["before"]["units"] == "4.00" and event.detail["after"]["units"] == "4.5"


def test_cumulative_420_units_blocks_with_its_source(world):
    _outside_botox_300_units_a_month_ago(world)
    session = _start(
        world,
        "protocol:chronic-migraine-preempt",
        indication="chronic-migraine",
        product_id="botox",
    )
    block = next(f for f in services.findings(session) if f.rule == "cumulative-3-month")
    assert block.severity == "block" and "455 U" in block.message and "400 U" in block.message
    assert "[S" in block.source


def test_signing_needs_points_lot_prescriber_and_consent(world):
    session = _start(world, "blank")
    with pytest.raises(services.SigningRefused) as refused:
        services.sign(world.actor("injector"), session, session.version)
    text = " ".join(refused.value.reasons)
    assert "at least one injection point" in text
    assert "lot number and expiry" in text
    assert "prescriber of record" in text
    assert "no valid cosmetic consent" in text
    session.refresh_from_db()
    assert session.status == Status.DRAFT


def test_sign_locks_the_session_against_every_service_and_model_write(consented):
    world = consented
    session = _start(world, prescriber=world.users["prescriber"])
    session = ready_to_sign(world, session)
    session = services.sign(world.actor("injector"), session, session.version)
    assert session.status == Status.SIGNED and session.consent is not None
    assert session.review_due_on == session.treated_on + timedelta(days=14)
    actor, v = world.actor("injector"), session.version
    attempts = [
        lambda: services.add_point(actor, session, v, diagram="face-front", x=50, y=35, units=4),
        lambda: services.update_point(actor, session, v, 1, units="8"),
        lambda: services.remove_point(actor, session, v, 1),
        lambda: services.restore_point(actor, session, v, 1),
        lambda: services.mirror_point(actor, session, v, 1),
        lambda: services.update_details(actor, session, v, {"lot_number": "X"}),
        lambda: services.apply_protocol(actor, session, "glabellar-lines-botox-cosmetic", v),
        lambda: services.sign(actor, session, v),
    ]
    for attempt in attempts:
        with pytest.raises(SessionLocked):
            attempt()
    point = session.points.get(number=1)
    point.units = Decimal(40)
    with pytest.raises(SessionLocked):
        point.save()
    session.lot_number = "CHANGED"
    with pytest.raises(SessionLocked):
        session.save()
    with pytest.raises(SessionLocked):
        InjectionPoint.objects.filter(session=session).update(units=40)
    with pytest.raises(SessionLocked):
        TreatmentSession.objects.filter(pk=session.pk).update(lot_number="X")
    with pytest.raises(SessionLocked):
        session.delete()
    with pytest.raises(SessionLocked):
        InjectionPoint.objects.filter(session=session).delete()
    fresh = TreatmentSession.objects.get(pk=session.pk)
    assert fresh.lot_number == "C1234AB" and services.totals(fresh).total == 20


def test_a_block_stops_signing_until_a_prescriber_overrides_it_with_a_reason(consented):
    world = consented
    _outside_botox_300_units_a_month_ago(world)
    session = _start(
        world,
        "protocol:chronic-migraine-preempt",
        indication="chronic-migraine",
        product_id="botox",
        prescriber=world.users["prescriber"],
    )
    session = ready_to_sign(world, session)
    with pytest.raises(services.SigningRefused, match="400 U"):
        services.sign(world.actor("injector"), session, session.version)
    with pytest.raises(PermissionDenied):
        services.override(
            world.actor("injector"), session, "cumulative-3-month", "I know best, honestly"
        )
    with pytest.raises(ValidationError, match="clinical reason"):
        services.override(world.actor("prescriber"), session, "cumulative-3-month", "ok")
    services.override(
        world.actor("prescriber"),
        session,
        "cumulative-3-month",
        "Outside dose was 6 weeks ago per letter; discussed risks, patient agrees.",
    )
    session.refresh_from_db()
    signed = services.sign(world.actor("injector"), session, session.version)
    assert signed.status == Status.SIGNED
    assert any(f["rule"] == "cumulative-3-month" for f in signed.findings_at_signing)
    assert signed.overrides.get().by == world.users["prescriber"]


def test_a_larger_dose_after_the_override_needs_a_new_override(consented):
    world = consented
    _outside_botox_300_units_a_month_ago(world)
    session = _start(
        world,
        "protocol:chronic-migraine-preempt",
        indication="chronic-migraine",
        product_id="botox",
        prescriber=world.users["prescriber"],
    )
    session = ready_to_sign(world, session)
    services.override(
        world.actor("prescriber"),
        session,
        "cumulative-3-month",
        "Outside dose was 6 weeks ago per letter; discussed risks.",
    )
    session.refresh_from_db()
    services.update_point(world.actor("injector"), session, session.version, 1, units="10")
    session.refresh_from_db()
    with pytest.raises(services.SigningRefused, match="460 U"):
        services.sign(world.actor("injector"), session, session.version)


def test_an_expired_lot_blocks_and_cannot_be_overridden(consented):
    world = consented
    session = _start(world, prescriber=world.users["prescriber"])
    session = ready_to_sign(world, session, lot_expiry=date.today() - timedelta(days=1))
    assert any(
        f.rule == "expired-lot" and f.severity == "block" for f in services.findings(session)
    )
    with pytest.raises(ValidationError, match="expiry"):
        services.override(
            world.actor("prescriber"), session, "expired-lot", "we are out of stock today"
        )
    with pytest.raises(services.SigningRefused, match="cannot be overridden"):
        services.sign(world.actor("injector"), session, session.version)


def test_amending_a_signed_session_keeps_before_after_and_reason(consented):
    world = consented
    session = _start(world, prescriber=world.users["prescriber"])
    session = ready_to_sign(world, session)
    session = services.sign(world.actor("injector"), session, session.version)
    with pytest.raises(ValidationError, match="why"):
        services.amend(world.actor("injector"), session, "", point_units={1: "5"})
    amendment = services.amend(
        world.actor("injector"), session, "Point 1 was 5 U, typo", point_units={1: "5"}
    )
    session.refresh_from_db()
    assert session.status == Status.AMENDED
    assert amendment.before["points"][0]["units"] == "4.00"
    assert amendment.after["points"][0]["units"] == "5.00"
    assert services.totals(session).total == 21


def test_voiding_keeps_the_session_visible_and_out_of_the_history(consented):
    world = consented
    session = _start(world, prescriber=world.users["prescriber"])
    session = ready_to_sign(world, session)
    session = services.sign(world.actor("injector"), session, session.version)
    assert len(services.treatment_history(world.patient)) == 1
    services.void(world.actor("injector"), session, "Charted on the wrong patient")
    session.refresh_from_db()
    assert session.status == Status.VOIDED and session.amendments.get().kind == "void"
    assert services.treatment_history(world.patient) == []
    assert TreatmentSession.objects.filter(pk=session.pk).exists()


def test_repeat_last_copies_points_of_the_same_product_only(consented):
    world = consented
    first = _start(world, prescriber=world.users["prescriber"])
    first = ready_to_sign(world, first)
    services.sign(world.actor("injector"), first, first.version)
    again = _start(world, "repeat")
    assert services.totals(again).total == 20 and services.totals(again).points == 5
    with pytest.raises(ValidationError, match="not interchangeable"):
        _start(world, "repeat", product_id="dysport")


def test_a_review_touch_up_is_linked_and_counts_in_cumulative_limits(consented):
    world = consented
    first = _start(world, prescriber=world.users["prescriber"])
    first = ready_to_sign(world, first)
    first = services.sign(world.actor("injector"), first, first.version)
    touch_up = services.start_session(
        world.actor("injector"),
        world.patient,
        indication="glabellar-lines",
        product_id="botox_cosmetic",
        start_from="blank",
        follow_up_of=first,
    )
    assert touch_up.follow_up_of == first
    history = services.treatment_history(world.patient, exclude=touch_up)
    assert [h.units for h in history] == [Decimal(20)]


def test_another_organizations_patient_cannot_get_a_session(world):
    with pytest.raises(PermissionError):
        services.start_session(
            world.actor("injector"),
            world.outsider_patient,
            indication="glabellar-lines",
            product_id="botox_cosmetic",
        )


def test_another_organization_cannot_edit_our_draft_and_nothing_changes(world):
    session = _start(world)
    theirs = world.outsider_actor()
    # An injector over there: the role may chart, the session is simply not theirs.
    outsider = Actor(theirs.organization, theirs.user, theirs.clinic, "injector")
    before = (session.version, session.points.count(), AuditEvent.objects.count())
    first = session.points.get(number=1)
    edits = [
        lambda: services.add_point(
            outsider, session, session.version, diagram=first.diagram, x=first.x, y=first.y, units=4
        ),
        lambda: services.update_point(outsider, session, session.version, 1, units=6),
        lambda: services.remove_point(outsider, session, session.version, 1),
    ]
    for edit in edits:
        with pytest.raises(PermissionError, match="another organization"):
            edit()
    session.refresh_from_db()
    assert (session.version, session.points.count(), AuditEvent.objects.count()) == before


def test_there_is_no_admin_that_could_change_a_signed_session(settings):
    # Signed records change only through charting.services.amend/void: no Django admin is
    # installed, so no admin action exists to bypass the services.
    assert "django.contrib.admin" not in settings.INSTALLED_APPS


@pytest.mark.parametrize(
    ("units", "product", "ok"),
    [
        ("500", "botox", True),
        ("501", "botox", False),
        ("2500", "myobloc", True),  # Myobloc is dosed in thousands of its own units
        ("10000", "myobloc", True),
        ("10001", "myobloc", False),
        ("2500", "dysport", False),
        ("600", None, False),
    ],
)
def test_the_most_units_at_one_point_follow_the_product(units, product, ok):
    if ok:
        assert services.parse_point_units(units, product) == Decimal(units)
    else:
        with pytest.raises(ValidationError, match="not a plausible dose"):
            services.parse_point_units(units, product)


# --- the clinic's day --------------------------------------------------------------------------

# Between them, at any hour, one of these clinics is on another calendar day than UTC: at
# UTC+14 from 10:00 UTC, at UTC-12 until 12:00 UTC.
FAR_ZONES = ("Pacific/Kiritimati", "Etc/GMT+12")


def _clinic_day(zone: str) -> date:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    return datetime.now(UTC).astimezone(ZoneInfo(zone)).date()


def _glabellar(world, **kw):
    return services.start_session(
        world.actor("injector"),
        world.patient,
        indication="glabellar-lines",
        product_id="botox",
        **kw,
    )


@pytest.mark.parametrize("zone", FAR_ZONES)
def test_a_session_is_dated_on_the_clinics_day_and_its_today_is_not_the_future(world, zone):
    world.clinic.timezone = zone
    world.clinic.save(update_fields=["timezone"])
    today = _clinic_day(zone)
    assert _glabellar(world).treated_on == today
    assert _glabellar(world, treated_on=today).treated_on == today
    with pytest.raises(ValidationError, match="future"):
        _glabellar(world, treated_on=today + timedelta(days=1))


def test_the_far_zones_differ_from_utc_at_this_hour():
    """The test above means something whenever it runs."""
    from django.utils import timezone

    assert any(_clinic_day(z) != timezone.localdate() for z in FAR_ZONES)
