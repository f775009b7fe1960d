"""The clinical rules document, generated from the reference data so it cannot drift.

``render()`` returns Markdown listing every rule id of :mod:`glabella.clinical.safety`, what it
checks, and every figure it enforces per product family and indication with its source ids and
status. Regenerate ``docs/clinical-rules.md`` with::

    python -m glabella.clinical.rules_doc > docs/clinical-rules.md
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

from glabella.clinical import catalogue, indications, sources
from glabella.clinical.indications import Citation
from glabella.clinical.safety import RULES
from glabella.clinical.settings import (
    COSMETIC_RECALL_MAX_DAYS,
    WINDOW_DAYS_CHOICES,
    cosmetic_min_interval_days,
)

__all__ = ["REGENERATE", "render"]

REGENERATE = "python -m glabella.clinical.rules_doc > docs/clinical-rules.md"


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _ids(ids: Sequence[str]) -> str:
    return ", ".join(ids) if ids else "none in the reference"


def _inds(ids: Sequence[str] | None) -> str:
    return "all indications" if ids is None else ", ".join(ids)


def _num(value: object) -> str:
    text = str(value)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _brands(generic: str) -> str:
    names = [p.brand for p in catalogue.products() if p.generic == generic]
    return f"{generic} ({', '.join(names)})" if names else generic


def _cite_cols(c: Citation) -> list[str]:
    return [c.basis, _ids(c.sources), c.status]


def _rule_section(rule_id: str) -> list[str]:
    info = next(r for r in RULES if r.id == rule_id)
    return [
        f"### `{rule_id}`",
        "",
        f"Severity: {', '.join(info.severities)}. {info.checks}",
        "",
    ]


def render() -> str:
    """The whole document as Markdown (ends with a newline)."""
    lim = indications.limits()
    cited: list[str] = []

    def note(ids: Iterable[str]) -> None:
        cited.extend(ids)

    out: list[str] = [
        "# Clinical rules",
        "",
        "<!-- Generated from glabella/clinical/reference/*.json. Do not edit by hand: run",
        f"     {REGENERATE} -->",
        "",
        "What the dose safety engine (`glabella.clinical.safety.check`) checks, with every figure "
        "it enforces, its source ids (see *Sources* at the end) and its status:",
        "",
        "- **confirmed**: seen verbatim in the prescribing information, a manufacturer page "
        "quoting it, or the cited paper;",
        "- **secondary**: seen only in a secondary source, or derived by arithmetic;",
        "- **unconfirmed**: not confirmed against a primary source. The limit still applies, and "
        "its finding says the figure is unconfirmed.",
        "",
        "Units belong to a product family (generic name). Doses are added only within one family "
        "(Botox and Botox Cosmetic are both onabotulinumtoxinA); units of different families are "
        "never added, compared or converted. Adult means 18 years or older.",
        "",
        "## Rule ids",
        "",
    ]
    out += _table(
        ["rule id", "severity", "what it checks"],
        ([f"`{r.id}`", ", ".join(r.severities), r.checks] for r in RULES),
    )
    out.append("")

    out += ["## Limits per rule", ""]

    out += _rule_section("cumulative-3-month")
    rows: list[list[object]] = []
    for c in lim.cumulative:
        if c.rule != "cumulative-3-month":
            continue
        figure = (
            f"{_num(c.max_units)} U"
            if c.max_units is not None
            else f"lesser of {_num(c.max_units_per_kg)} U/kg and {_num(c.max_units_abs)} U"
        )
        window = (
            f"{c.window_days} days"
            if c.window_days is not None
            else f"clinic setting: {' or '.join(map(str, WINDOW_DAYS_CHOICES))} days"
        )
        rows.append(
            [
                _brands(c.generic),
                c.population,
                _inds(c.indications),
                figure,
                window,
                *_cite_cols(c.citation),
            ]
        )
        note(c.citation.sources)
    out += _table(
        ["family", "population", "indications", "maximum", "window", "basis", "sources", "status"],
        rows,
    )
    out.append("")

    out += _rule_section("blepharospasm-30-day")
    rows = []
    for c in lim.cumulative:
        if c.rule != "blepharospasm-30-day":
            continue
        rows.append(
            [
                _brands(c.generic),
                _inds(c.indications),
                f"{_num(c.max_units)} U",
                c.window_days,
                *_cite_cols(c.citation),
            ]
        )
        note(c.citation.sources)
    out += _table(
        ["family", "indications", "maximum", "window (days)", "basis", "sources", "status"], rows
    )
    out.append("")

    out += _rule_section("session-max")
    rows = []
    for s in lim.session:
        rows.append(
            [
                _brands(s.generic),
                s.population,
                _inds(s.indications),
                f"{_num(s.max_units)} U",
                *_cite_cols(s.citation),
            ]
        )
        note(s.citation.sources)
    out += _table(
        ["family", "population", "indications", "per session", "basis", "sources", "status"], rows
    )
    out += [
        "",
        "A clinic may also set its own, tighter per-session cap per product (see *Clinic "
        "settings*).",
        "",
    ]

    out += _rule_section("site-max")
    rows = []
    for site in lim.site:
        rows.append(
            [
                _brands(site.generic),
                _inds(site.indications),
                f"{_num(site.max_units_per_site)} U",
                site.severity,
                *_cite_cols(site.citation),
            ]
        )
        note(site.citation.sources)
    out += _table(
        ["family", "indications", "per site", "severity", "basis", "sources", "status"], rows
    )
    out.append("")

    out += _rule_section("muscle-max")
    rows = []
    for m in lim.muscle:
        rows.append(
            [
                _brands(m.generic),
                _inds(m.indications),
                m.muscle,
                f"{_num(m.max_units)} U",
                *_cite_cols(m.citation),
            ]
        )
        note(m.citation.sources)
    out += _table(
        ["family", "indications", "muscle", "maximum", "basis", "sources", "status"], rows
    )
    out.append("")

    out += _rule_section("paediatric-max")
    rows = []
    for p in lim.paediatric:
        rows.append(
            [
                _brands(p.generic),
                _inds(p.indications),
                p.scope,
                f"lesser of {_num(p.max_units_per_kg)} U/kg and {_num(p.max_units_abs)} U",
                *_cite_cols(p.citation),
            ]
        )
        note(p.citation.sources)
    out += _table(["family", "indications", "scope", "maximum", "basis", "sources", "status"], rows)
    out += [
        "",
        "Per limb: the units on each side (left / right; midline points count towards both). "
        "A child without a valid recorded weight is blocked for every weight-based limit.",
        "",
    ]

    out += _rule_section("min-interval")
    rows = []
    for mi in lim.min_interval:
        rows.append(
            [
                _brands(mi.generic),
                ", ".join(mi.indications),
                mi.population,
                f"{mi.days} days",
                *_cite_cols(mi.citation),
            ]
        )
        note(mi.citation.sources)
    out += _table(
        ["family", "indications", "population", "minimum", "basis", "sources", "status"], rows
    )
    out += [
        "",
        "Counted from the nearest treatment with the same family for the same indication, "
        "treatments given elsewhere included. When no entry matches the patient's age group, "
        "the strictest entry for the family and indication applies.",
        "",
    ]

    out += _rule_section("label-dose")
    out += _rule_section("off-label")
    out += ["Labelled dosing in the reference (product x indication x population):", ""]
    rows = []
    for d in indications.dosing():
        labelled = d.labelled_dose_text or "no session total in the reference"
        if d.combination_note:
            labelled += f"; {d.combination_note}"
        rows.append(
            [
                d.product_id,
                ", ".join(d.indication_ids),
                d.label,
                d.population,
                labelled,
                _ids(d.sources),
                d.status,
            ]
        )
        note(d.sources)
    out += _table(
        [
            "product",
            "indication ids",
            "label indication",
            "population",
            "labelled dose",
            "sources",
            "status",
        ],
        rows,
    )
    out.append("")

    out += _rule_section("contraindication")
    rows = []
    for r in (*lim.contraindications, *lim.warnings):
        if r.rule != "contraindication":
            continue
        rows.append([f"`{r.flag}`", r.severity, r.applies_to, r.text, *_cite_cols(r.citation)])
        note(r.citation.sources)
    out += _table(
        ["patient flag", "severity", "applies to", "what", "basis", "sources", "status"], rows
    )
    out += [
        "",
        "Excipient allergies use the catalogue's allergens per product (and their status): "
        + "; ".join(
            f"{p.brand}: "
            + (", ".join(f"{a} ({st})" for a, st in p.allergen_statuses) or "none listed")
            for p in catalogue.products()
        )
        + ".",
        "",
    ]

    for rule_id in ("product-mixing", "recent-other-toxin", "distant-spread"):
        out += _rule_section(rule_id)
        rows = []
        for w in lim.warnings:
            if w.rule == rule_id:
                rows.append([w.applies_to, w.text, *_cite_cols(w.citation)])
                note(w.citation.sources)
        out += _table(["applies to", "what", "basis", "sources", "status"], rows)
        out.append("")

    out += _rule_section("invalid-units")
    guard = lim.units_guard
    out += _table(
        ["bound per point", "basis", "sources", "status"],
        [[f"{_num(guard.max_units)} U", *_cite_cols(guard.citation)]],
    )
    note(guard.citation.sources)
    out.append("")

    for rule_id in (
        "empty-plan",
        "unknown-product",
        "unknown-indication",
        "invalid-patient",
        "invalid-history",
        "expired-lot",
        "vial-use-by",
    ):
        out += _rule_section(rule_id)
        out += ["No reference figure: a check of the input itself.", ""]

    out += [
        "## Clinic settings (tighten only)",
        "",
        f"- Cumulative window: {' or '.join(map(str, WINDOW_DAYS_CHOICES))} days for the label's "
        '"3 months" (default 90); anything else is refused.',
        f"- Cosmetic recall: {cosmetic_min_interval_days()} to {COSMETIC_RECALL_MAX_DAYS} days "
        "(3-4 months; never below the cosmetic minimum interval); default 120.",
        "- Per-session caps per product, each at most the family's labelled ceiling:",
        "",
    ]
    rows = []
    for generic in dict.fromkeys(p.generic for p in catalogue.products()):
        ceiling = lim.label_ceiling(generic)
        rows.append(
            [
                _brands(generic),
                f"{_num(ceiling)} U"
                if ceiling is not None
                else "no labelled ceiling in the reference: any positive cap tightens",
            ]
        )
    out += _table(["family", "highest cap a clinic may set"], rows)
    out.append("")

    out += ["## Recall intervals (schedule)", ""]
    out += [
        "`schedule.next_due`: last treatment + the cosmetic recall setting (cosmetic "
        "indications), else the usual interval below, else the minimum interval; a personal "
        "duration of effect replaces it; never earlier than the minimum interval.",
        "",
    ]
    rows = []
    for indication in indications.INDICATION_IDS:
        for generic in dict.fromkeys(p.generic for p in catalogue.products()):
            usual = indications.recall(indication, generic)
            if usual is None:
                continue
            rows.append(
                [indication, _brands(generic), f"{usual.days} days", *_cite_cols(usual.citation)]
            )
            note(usual.citation.sources)
    out += _table(["indication", "family", "usual interval", "basis", "sources", "status"], rows)
    out.append("")

    out += ["## Reference figures not enforced", ""]
    rows = []
    for n in lim.not_applied:
        rows.append([n.figure, _ids(n.sources), n.status, n.reason])
        note(n.sources)
    out += _table(["figure", "sources", "status", "why not enforced"], rows)
    out.append("")

    out += ["## Sources", ""]
    for sid in sorted(dict.fromkeys(cited), key=lambda s: int(s.lstrip("S"))):
        out.append(f"- [{sid}] {_cell(sources.get(sid).citation)}")
    out.append("")
    return "\n".join(out)


def main() -> None:  # pragma: no cover - thin wrapper for ``python -m``
    sys.stdout.write(render())


if __name__ == "__main__":  # pragma: no cover
    main()
