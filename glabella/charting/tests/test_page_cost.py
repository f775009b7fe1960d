"""What the charting and patient pages cost: their queries do not grow with the points, and the
parts written in Python for speed (the per-point rows, the form widgets, the per-point URLs, the
kept diagrams) write what the templates wrote before them."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.forms import Form, fields, widgets
from django.forms.renderers import DjangoTemplates
from django.template import Context, Template
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.safestring import mark_safe

from glabella.charting import diagrams, forms, services, views
from glabella.charting.tests.conftest import ready_to_sign
from glabella.clinical import protocols
from glabella.inventory import services as stock
from glabella.inventory.tests.helpers import receive_botox_cosmetic
from glabella.prepared import logged_sql
from glabella.web import plain_html

PREEMPT = "chronic-migraine-preempt"


def _preempt_draft(world, count=None):
    """A chronic-migraine Botox draft with the first COUNT PREEMPT sites (all 31 by default)."""
    actor = world.actor("prescriber")
    session = services.start_session(
        actor, world.patient, indication="chronic-migraine", product_id="botox"
    )
    sites = protocols.get(PREEMPT).sites[:count]
    new = [services.NewPoint.like(s) for s in sites]
    services.add_points(actor, session, session.version, new)
    session.refresh_from_db()
    return session


def _signed(world, session):
    """SESSION signed (a second one the same day overrides the minimum interval)."""
    prescriber = world.actor("prescriber")
    session = ready_to_sign(world, session)
    for f in services.findings(session):
        if f.severity == "block":
            services.override(prescriber, session, f.rule, "A test: several sessions in a day.")
    session.refresh_from_db()
    return services.sign(prescriber, session, session.version)


def _queries(client, url):
    client.get(url)  # the first request of a client warms what is made once per process
    with CaptureQueriesContext(connection) as seen:
        response = client.get(url)
    assert response.status_code == 200
    # An EXECUTE of a query prepared on PostgreSQL counts as the SQL it runs.
    return [logged_sql(q["sql"]) for q in seen.captured_queries]


_TABLE = r"(?:tr|td|th|tbody|thead|table|optgroup|option|select)"


def _same_html(a: str, b: str) -> bool:
    """Equal but for whitespace where HTML ignores it (runs of it, and beside table cells)."""

    def norm(text: str) -> str:
        text = re.sub(r"\s+", " ", str(text))
        return re.sub(rf"\s*(</?{_TABLE}\b[^>]*>)\s*", r"\1", text).strip()

    return norm(a) == norm(b)


# --- the queries ---------------------------------------------------------------------------


def test_the_charting_page_asks_the_same_queries_for_1_or_31_points(consented):
    world = consented
    client = world.client("prescriber")
    one = _preempt_draft(world, 1)
    all31 = _preempt_draft(world)
    few = _queries(client, reverse("charting:session", args=[one.pk]))
    many = _queries(client, reverse("charting:session", args=[all31.pk]))
    assert len(few) == len(many)
    # A selected point and a tab are the same page again.
    url = reverse("charting:session", args=[all31.pk])
    assert len(_queries(client, url + "?select=12&ui_diagram=head-back")) == len(many)


def test_the_signed_record_asks_the_same_queries_for_1_or_31_points(consented):
    world = consented
    client = world.client("prescriber")
    _signed(world, _preempt_draft(world, 1))  # the two below are the day's second: overridden
    few = _queries(
        client, reverse("charting:session", args=[_signed(world, _preempt_draft(world, 1)).pk])
    )
    many = _queries(
        client, reverse("charting:session", args=[_signed(world, _preempt_draft(world)).pk])
    )
    assert len(few) == len(many)


def _reads(sql: list[str], table: str) -> list[str]:
    return [q for q in sql if f'FROM "{table}"' in q]


def test_the_pages_do_not_read_again_what_the_request_knows(consented):
    """The organization and the user's own clinic come with the signed-in membership; the
    charting page and the patient page do not read them again."""
    world = consented
    client = world.client("prescriber")
    draft = _preempt_draft(world)
    for url in (
        reverse("charting:session", args=[draft.pk]),
        reverse("charting:session", args=[_signed(world, _preempt_draft(world, 3)).pk]),
        reverse("patients:detail", args=[world.patient.pk]),
    ):
        sql = _queries(client, url)
        assert not _reads(sql, "accounts_organization"), url
        assert not _reads(sql, "accounts_clinic"), url


def test_the_signed_record_reads_each_table_once_and_amendments_only_when_there_are_some(
    consented,
):
    """The points are read once for the record, the totals and the price, and with the
    amendment form open once for it too; the membership once for the request and the menu;
    the amendments only when the session has been amended or voided (a session simply
    signed has none)."""
    world = consented
    client = world.client("prescriber")
    signed = _signed(world, _preempt_draft(world, 3))
    url = reverse("charting:session", args=[signed.pk])
    sql = _queries(client, url)
    assert len(_reads(sql, "charting_injectionpoint")) == 1, sql
    with_form = _queries(client, reverse("charting:amend", args=[signed.pk]))
    assert len(_reads(with_form, "charting_injectionpoint")) == 1, with_form
    assert len(_reads(sql, "accounts_membership")) == 1, sql
    assert not _reads(sql, "charting_amendment")
    services.amend(
        world.actor("prescriber"),
        signed,
        "Point 1 was 4 units, not 5.",
        point_units={1: Decimal(4)},
    )
    sql = _queries(client, url)
    assert len(_reads(sql, "charting_amendment")) == 1
    assert len(_reads(sql, "charting_injectionpoint")) == 1, sql
    page = client.get(url).content.decode()
    assert "Point 1 was 4 units, not 5." in page


def _overrides_read(sql: list[str]) -> list[str]:
    """The queries reading overrides themselves (not the session's EXISTS about them)."""
    return [q for q in sql if q.startswith('SELECT "charting_override"."id"')]


def test_the_signed_record_reads_the_overrides_only_when_there_are_some(consented):
    """Whether any warning was overridden comes with the session; a record without overrides
    does not ask for them, one with overrides shows them, read once."""
    world = consented
    client = world.client("prescriber")
    plain = _signed(world, _preempt_draft(world, 3))
    assert not services.session_overrides(plain)
    asked = _overrides_read(_queries(client, reverse("charting:session", args=[plain.pk])))
    assert asked == []
    overridden = _signed(world, _preempt_draft(world, 3))  # the second today: an override
    (override,) = services.session_overrides(overridden)
    url = reverse("charting:session", args=[overridden.pk])
    assert len(_overrides_read(_queries(client, url))) == 1
    assert override.reason in client.get(url).content.decode()


def test_the_patient_page_reads_the_sessions_once_for_the_list_and_the_flags(consented):
    world = consented
    _signed(world, _preempt_draft(world, 3))
    sql = _queries(world.client("prescriber"), reverse("patients:detail", args=[world.patient.pk]))
    assert len(_reads(sql, "charting_treatmentsession")) == 1, sql


def test_the_draft_page_reads_its_points_once_for_the_rows_the_totals_and_the_checks(consented):
    world = consented
    client = world.client("prescriber")
    draft = _preempt_draft(world, 5)
    sql = _queries(client, reverse("charting:session", args=[draft.pk]))
    points = [q for q in _reads(sql, "charting_injectionpoint") if 'session_id" = ' in q]
    assert len(points) == 1, points


def test_no_two_elements_of_the_signed_record_share_an_id(consented):
    """A label names its field by id: the amendment and void forms both have a reason."""
    world = consented
    signed = _signed(world, _preempt_draft(world, 3))
    # The page with the amendment form open (as after a refused amendment, or without script).
    page = world.client("prescriber").get(reverse("charting:amend", args=[signed.pk]))
    ids = re.findall(r'\sid="([^"]+)"', page.content.decode())
    assert "id_reason" in ids and "id_void_reason" in ids
    assert len(ids) == len(set(ids)), sorted(i for i in set(ids) if ids.count(i) > 1)


def test_every_form_of_the_page_carries_the_one_token_of_the_page(consented):
    world = consented
    draft = _preempt_draft(world)
    client = world.client("prescriber")
    url = reverse("charting:session", args=[draft.pk])
    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
        text = client.get(url + "?select=3", **headers).content.decode()
        tokens = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', text)
        assert len(tokens) > 62 and len(set(tokens)) == 1
        if not headers:
            assert f'"X-CSRFToken": "{tokens[0]}"' in text
    # and the token works: a point is mirrored with the one its row's form carries
    text = client.get(url).content.decode()
    row = re.search(r'<tr id="row-5".*?</tr>', text, re.S)
    assert row is not None
    form_token = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', row.group())[0]
    strict = world.client("prescriber")
    strict.handler.enforce_csrf_checks = True
    strict.cookies = client.cookies
    response = strict.post(
        reverse("charting:point_mirror", args=[draft.pk, 5]),
        {"csrfmiddlewaretoken": form_token, "version": draft.version},
    )
    assert response.status_code == 302
    assert services.live_points(draft)[-1].number == 32


# --- the rows written in Python ------------------------------------------------------------

# The loops of the templates as they were, to compare the Python rows with.
OLD_DRAFT_ROWS = """{% load glabella_tags charting_tags %}
  {% for p in points %}
    <tr id="row-{{ p.number }}" class="{% if selected and selected.number == p.number %}is-selected{% endif %}">
      <td><span class="point-badge">{{ p.number }}</span></td>
      <td>{{ p.muscle|capfirst }}<span class="cell-sub">{{ p.area|area_label }} · {{ diagram_titles|get_item:p.diagram }}</span></td>
      <td>{{ p.side|side_word }}</td>
      <td class="num"><b>{{ p.units|units }} U</b></td>
      <td><abbr title="{{ p.depth|depth_word }}">{{ p.depth }}</abbr></td>
      {% if vial_panel %}<td class="point-vial">{% if p.vial %}#{{ p.vial_id }}<span class="cell-sub">lot {{ p.vial.lot.lot_number }}</span>{% else %}<span class="no-vial">No vial</span>{% endif %}</td>{% endif %}
      {% if can_chart %}
      <td class="row-actions">
        <a class="button small" id="edit-{{ p.number }}" href="?select={{ p.number }}&ui_diagram={{ p.diagram }}" hx-get="{% url 'charting:session' session.pk %}" hx-vals='{"select": "{{ p.number }}", "ui_diagram": "{{ p.diagram }}"}'>Edit<span class="sr-only"> point {{ p.number }}</span></a>
        <form method="post" action="{% url 'charting:point_mirror' session.pk p.number %}" hx-post="{% url 'charting:point_mirror' session.pk p.number %}" hx-disabled-elt="find button" class="inline">
          {% csrf_token %}<input type="hidden" name="version" value="{{ session.version }}">
          <button type="submit" class="small" id="mirror-{{ p.number }}">Mirror<span class="sr-only"> point {{ p.number }}</span></button>
        </form>
        <form method="post" action="{% url 'charting:point_remove' session.pk p.number %}" hx-post="{% url 'charting:point_remove' session.pk p.number %}" hx-disabled-elt="find button" class="inline">
          {% csrf_token %}<input type="hidden" name="version" value="{{ session.version }}">
          <button type="submit" class="small danger-outline" id="remove-{{ p.number }}">Remove<span class="sr-only"> point {{ p.number }}</span></button>
        </form>
      </td>
      {% endif %}
    </tr>
  {% endfor %}
"""  # noqa: E501

OLD_SIGNED_ROWS = """{% load glabella_tags charting_tags %}{% for p in points %}
        <tr><td><span class="point-badge">{{ p.number }}</span></td><td>{{ p.muscle|capfirst }}<span class="cell-sub">{{ p.area|area_label }} · {{ diagram_titles|get_item:p.diagram }}</span></td><td>{{ p.side|side_word }}</td><td class="num"><b>{{ p.units|units }} U</b></td><td><abbr title="{{ p.depth|depth_word }}">{{ p.depth }}</abbr></td>{% if lots %}<td class="point-vial">{% if p.vial %}#{{ p.vial_id }}<span class="cell-sub">lot {{ p.vial.lot.lot_number }}</span>{% else %}—{% endif %}</td>{% endif %}</tr>
      {% endfor %}"""  # noqa: E501

OLD_AMEND_ROWS = """{% load glabella_tags charting_tags %}{% for p, field in amend_form.point_fields %}
          <tr><td>{{ p.number }}</td><td><label for="{{ field.id_for_label }}">{{ p.muscle|capfirst }}, {{ p.side|side_word|lower }}</label></td>
            <td class="{% if field.errors %}has-error{% endif %}">{{ field }}{% for e in field.errors %}<p class="error">{{ e }}</p>{% endfor %}</td></tr>
        {% endfor %}"""  # noqa: E501

OLD_REGION_OPTIONS = """{% for title, options in region_options %}
          <optgroup label="{{ title }}">{% for value, label in options %}<option value="{{ value }}">{{ label }}</option>{% endfor %}</optgroup>
        {% endfor %}"""  # noqa: E501


def _old(template: str, **context) -> str:
    return Template(template).render(Context(context))


def _draft_rows_both_ways(session, points, selected, *, vial_column, can_chart):
    token = "tok3n-<&>"
    new = views._draft_point_rows(
        session,
        points,
        selected,
        vial_column=vial_column,
        can_chart=can_chart,
        session_url=reverse("charting:session", args=[session.pk]),
        csrf=token,
    )
    old = _old(
        OLD_DRAFT_ROWS,
        points=points,
        selected=selected,
        vial_panel=vial_column,
        can_chart=can_chart,
        session=session,
        diagram_titles=views.DIAGRAM_TABS,
        csrf_token=token,
    )
    return new, old


def test_the_31_point_rows_are_the_rows_the_template_wrote(consented):
    world = consented
    draft = _preempt_draft(world)
    points = services.live_points(draft)
    assert len(points) == 31
    for selected in (None, points[11]):
        for can_chart in (True, False):
            new, old = _draft_rows_both_ways(
                draft, points, selected, vial_column=False, can_chart=can_chart
            )
            assert _same_html(new, old)
    new, _ = _draft_rows_both_ways(draft, points, points[11], vial_column=False, can_chart=True)
    # Key facts, spelled out: every point's row, its actions and their URLs.
    for p in points:
        assert f'id="row-{p.number}"' in new
        assert f'id="mirror-{p.number}"' in new and f'id="remove-{p.number}"' in new
        for name in ("charting:point_mirror", "charting:point_remove"):
            assert f'action="{reverse(name, args=[draft.pk, p.number])}"' in new
    assert new.count('name="csrfmiddlewaretoken" value="tok3n-&lt;&amp;&gt;"') == 62
    assert new.count('class="is-selected"') == 1
    signed = _signed(world, draft)
    points = services.live_points(signed)
    assert _same_html(
        views._signed_point_rows(points, vial_column=False),
        _old(OLD_SIGNED_ROWS, points=points, lots=[], diagram_titles=views.DIAGRAM_TABS),
    )


def test_rows_with_vials_and_odd_text_are_the_rows_the_template_wrote(consented):
    world = consented
    inj = world.actor("injector")
    receipt = receive_botox_cosmetic(world, lot="C<12>&\"34'", count=1)
    vial = stock.reconstitute(inj, receipt.vials[0], "1.25")
    session = services.start_session(
        inj,
        world.patient,
        indication="glabellar-lines",
        product_id="botox_cosmetic",
        start_from="protocol:glabellar-lines-botox-cosmetic",
        prescriber=world.users["prescriber"],
    )
    session = services.select_vial(inj, session, session.version, vial).session
    session.refresh_from_db()
    services.add_point(
        inj, session, session.version, diagram="face-front", x="50", y="35", units="2.5"
    )
    session.refresh_from_db()
    first = services.live_points(session)[0]
    services.update_point(inj, session, session.version, first.number, muscle='<b>"odd"</b> & co')
    session.refresh_from_db()
    points = services.live_points(session)
    points[1].vial = None  # a point not drawn from a vial (else every one is)
    points[1].vial_id = None
    points[2].diagram = "no-such-diagram"  # shown as "()" by get_item, as before
    for can_chart in (True, False):
        new, old = _draft_rows_both_ways(
            session, points, points[0], vial_column=True, can_chart=can_chart
        )
        assert _same_html(new, old)
        assert "&lt;b&gt;" in new and "C&lt;12&gt;&amp;&quot;34&#x27;" in new
    assert _same_html(
        views._signed_point_rows(points, vial_column=True),
        _old(OLD_SIGNED_ROWS, points=points, lots=[1], diagram_titles=views.DIAGRAM_TABS),
    )


def test_the_amendment_rows_are_the_rows_the_template_wrote(consented):
    world = consented
    signed = _signed(world, _preempt_draft(world, 6))
    unbound = plain_html.plain(forms.AmendForm(session=signed))
    data = {"reason": "", **{f"units_{n}": "4" for n in range(1, 7)}, "units_2": "x<y"}
    bound = plain_html.plain(forms.AmendForm(data, session=signed))
    assert not bound.is_valid()
    for form in (unbound, bound):
        old_form = forms.AmendForm(data if form.is_bound else None, session=signed)
        old_form.is_valid()
        assert _same_html(views._amend_rows(form), _old(OLD_AMEND_ROWS, amend_form=old_form))
    assert 'aria-invalid="true"' in views._amend_rows(bound)
    # The page as it opens takes the quick writer; the form sent back goes through Django.
    assert views._unbound_units_writer(unbound) is not None
    assert views._unbound_units_writer(bound) is None


def test_amendment_fields_not_alike_are_written_by_django_and_still_right(consented):
    world = consented
    signed = _signed(world, _preempt_draft(world, 3))
    form = plain_html.plain(forms.AmendForm(session=signed))
    form.fields["units_2"].help_text = "Whole or half units"  # aria-describedby, its own id
    form.fields["units_3"].disabled = True
    assert views._unbound_units_writer(form) is None
    old_form = forms.AmendForm(session=signed)
    old_form.fields["units_2"].help_text = "Whole or half units"
    old_form.fields["units_3"].disabled = True
    rows = views._amend_rows(form)
    assert _same_html(rows, _old(OLD_AMEND_ROWS, amend_form=old_form))
    assert 'aria-describedby="id_units_2_helptext"' in rows and "disabled" in rows


def test_the_region_options_are_the_options_the_template_wrote():
    for active in diagrams.ids():
        assert _same_html(
            views._region_options_html(active),
            _old(OLD_REGION_OPTIONS, region_options=views._region_options(active)),
        )


@pytest.mark.parametrize("pk", [1, 42, 987654321, 98765432198])
def test_per_point_urls_are_the_reversed_urls(pk):
    for name in ("charting:point_mirror", "charting:point_remove", "charting:point_update"):
        url = views._numbered_url(name, pk)
        for number in (1, 9, 31, 987654321):
            assert url(number) == reverse(name, args=[pk, number])


# --- the widgets written in Python ---------------------------------------------------------


class Every(Form):
    text = fields.CharField(max_length=40, widget=widgets.TextInput(attrs={"spellcheck": False}))
    number = fields.DecimalField(
        required=False, widget=widgets.NumberInput(attrs={"step": "0.1", "inputmode": "decimal"})
    )
    day = fields.DateField(required=False, widget=widgets.DateInput(attrs={"type": "date"}))
    email = fields.EmailField(required=False, help_text="We <never> share it")
    hidden = fields.IntegerField(required=False, widget=widgets.HiddenInput)
    notes = fields.CharField(required=False, widget=widgets.Textarea(attrs={"rows": 3}))
    size = fields.TypedChoiceField(
        required=False, coerce=int, choices=[("", "Not recorded"), (50, "50 U"), (100, "100 U")]
    )
    grouped = fields.ChoiceField(
        required=False,
        choices=[
            ("", "Choose"),
            ("Face <front>", [("face:a", "Frontalis & co"), ("face:b", '"Procerus"')]),
            ("Back", [("back:c", "Occipitalis")]),
        ],
    )
    flag = fields.CharField(required=False, widget=widgets.TextInput(attrs={"disabled": True}))


@pytest.mark.parametrize(
    "data",
    [
        None,
        {},
        {
            "text": "a \"b\" <c> & 'd'",
            "number": "1.25",
            "day": "2026-02-30",
            "email": "not an e-mail",
            "hidden": "7",
            "notes": 'line 1\n<line 2> & "3"',
            "size": "100",
            "grouped": "face:b",
            "flag": "x",
        },
    ],
)
def test_plain_widgets_write_what_the_widget_templates_write(data):
    initial = {"number": Decimal("2.50"), "day": date(2026, 1, 2), "size": 50, "text": "é"}
    plain = plain_html.plain(Every(data, initial=initial))
    usual = Every(data, initial=initial, renderer=DjangoTemplates())
    if data is not None:
        plain.is_valid()
        usual.is_valid()
    for name in Every.base_fields:
        assert str(plain[name]) == str(usual[name]), name


def test_plain_widgets_write_safe_and_lazy_values_as_the_templates_do():
    from django.utils.translation import gettext_lazy

    widget = widgets.Select(
        attrs={"data-x": mark_safe("<b>"), "data-y": 3, "aria-hidden": True},
        choices=[(1, gettext_lazy("One")), (2, mark_safe("<i>two</i>"))],
    )
    for value in (1, "2", None):
        assert widget.render("w", value, renderer=plain_html.PLAIN_WIDGETS) == widget.render(
            "w", value, renderer=DjangoTemplates()
        )
    area = widgets.Textarea(attrs={"data-s": mark_safe("&amp;")})
    for value in ("", mark_safe("<p>"), 12):
        assert area.render("t", value, renderer=plain_html.PLAIN_WIDGETS) == area.render(
            "t", value, renderer=DjangoTemplates()
        )
    # Other widgets are drawn by their templates, as before.
    radio = widgets.RadioSelect(choices=[(1, "a"), (2, "b")])
    assert radio.render("r", 1, renderer=plain_html.PLAIN_WIDGETS) == radio.render(
        "r", 1, renderer=DjangoTemplates()
    )


def test_the_details_form_on_the_page_is_written_as_before(consented):
    world = consented
    draft = _preempt_draft(world, 2)
    draft = services.update_details(
        world.actor("prescriber"),
        draft,
        draft.version,
        {"vial_units": 100, "diluent_ml": Decimal("2.5"), "pre_notes": 'a <b> & "c"'},
    )
    plain = plain_html.plain(forms.DetailsForm(session=draft))
    usual = forms.DetailsForm(session=draft, renderer=DjangoTemplates())
    for name in plain.fields:
        assert str(plain[name]) == str(usual[name]), name


# --- the diagrams kept ---------------------------------------------------------------------


def test_a_kept_diagram_is_the_diagram_drawn_again():
    sites = [s for s in protocols.get(PREEMPT).sites if s.diagram == "head-back"]
    points = [
        diagrams.SvgPoint(number=i + 1, x=s.x, y=s.y, units_label=f"{s.units} U")
        for i, s in enumerate(sites)
    ]
    for interactive in (True, False):
        kept = diagrams.svg("head-back", points=points, interactive=interactive)
        assert kept == diagrams._svg("head-back", points, interactive, None, (), True)
        assert diagrams.svg("head-back", points=list(points), interactive=interactive) is kept
    selected = [*points[:-1], diagrams.SvgPoint(**{**_fields(points[-1]), "selected": True})]
    other = diagrams.svg("head-back", points=selected)
    assert other != diagrams.svg("head-back", points=points) and "is-selected" in other
    for n in range(diagrams._SVGS_KEPT + 5):  # never more than so many kept
        diagrams.svg("face-front", points=[diagrams.SvgPoint(n + 1, Decimal(50), Decimal(40))])
    assert len(diagrams._SVGS) <= diagrams._SVGS_KEPT


def _fields(point):
    return {name: getattr(point, name) for name in point.__slots__}


def test_the_last_lot_used_is_still_suggested(consented):
    """The suggestion of the last lot (shown while no vial is kept) is still written."""
    world = consented
    draft = _preempt_draft(world, 2)
    earlier = ready_to_sign(world, _preempt_draft(world, 1))
    assert earlier.lot_number
    html = world.client("prescriber").get(reverse("charting:session", args=[draft.pk]))
    text = html.content.decode()
    expiry = date.today() + timedelta(days=200)
    assert f"Use lot {earlier.lot_number}, expires {expiry:%d/%m/%Y}" in text
