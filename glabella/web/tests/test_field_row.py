"""``{% field_row %}`` writes what ``{% include "web/_field.html" %}`` wrote, for every kind of
field the app's forms have: bound and unbound, with errors, help text, markup in labels and
help, optional and required, without ids, choices, check boxes, files, and a variable that
did not resolve. And no template includes web/_field.html any more."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django import forms
from django.template import Context, Template
from django.utils.safestring import mark_safe

import glabella
from glabella.web import plain_html

INCLUDE = Template('{% include "web/_field.html" with field=f %}')
TAG = Template("{% load form_tags %}{% field_row f %}")


class Odd(forms.Form):
    name = forms.CharField(label="Name <b>&</b> title", max_length=10)
    notes = forms.CharField(
        required=False, widget=forms.Textarea, help_text="Never <shared> & kept"
    )
    units = forms.DecimalField(required=False, help_text=mark_safe("In <b>units</b>"))
    day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    size = forms.TypedChoiceField(coerce=int, choices=[(50, "50 U"), (100, "100 U")])
    kind = forms.ChoiceField(widget=forms.RadioSelect, choices=[("a", "A"), ("b", "B <c>")])
    agree = forms.BooleanField(label="I agree")
    many = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, choices=[("x", "X"), ("y", "Y")]
    )
    photo = forms.FileField(required=False)
    email = forms.EmailField(required=False)

    def clean(self):
        data = super().clean()
        if data.get("name") == "twice":
            self.add_error("name", "A second error <here>.")
        return data


BAD = {
    "name": "twice",
    "units": "x<y",
    "day": "2026-02-30",
    "size": "7",
    "kind": "z",
    "many": ["q"],
    "email": "not an e-mail",
}


@pytest.mark.parametrize(
    ("data", "kwargs"),
    [
        (None, {}),
        (None, {"initial": {"units": Decimal("2.50"), "day": date(2026, 1, 2), "kind": "b"}}),
        (None, {"auto_id": False}),
        (None, {"prefix": "amend"}),
        ({}, {}),
        (BAD, {}),
        ({"name": "ok", "day": "2026-01-02", "size": "50", "kind": "a", "agree": "on"}, {}),
    ],
)
def test_every_kind_of_field_is_written_as_the_include_wrote_it(data, kwargs):
    form = Odd(data, **kwargs)
    if data is not None:
        form.is_valid()
    for name in Odd.base_fields:
        context = {"f": form[name]}
        assert TAG.render(Context(context)) == INCLUDE.render(Context(context)), name


def test_a_variable_that_did_not_resolve_is_written_as_the_include_wrote_it():
    form = Odd()
    for template in ("{% load form_tags %}{% field_row form.missing %}", "{% field_row nothing %}"):
        if "load" not in template:
            template = "{% load form_tags %}" + template
        ours = Template(template).render(Context({"form": form}))
        theirs = Template(
            template.replace("{% load form_tags %}", "").replace(
                "{% field_row ", '{% include "web/_field.html" with field='
            )
        ).render(Context({"form": form}))
        assert ours == theirs
    assert plain_html.field_html("") == INCLUDE.render(Context({"f": ""}))


def test_no_template_includes_the_field_template_any_more():
    root = Path(glabella.__file__).parent
    including = [
        str(path.relative_to(root))
        for path in root.rglob("*.html")
        if "web/_field.html" in path.read_text(encoding="utf-8")
    ]
    assert including == []
