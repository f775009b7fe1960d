"""The clinical rules document is generated from the reference and cannot drift from it."""

from __future__ import annotations

import re
from pathlib import Path

from glabella.clinical import indications, sources
from glabella.clinical.rules_doc import REGENERATE, render
from glabella.clinical.safety import RULES

DOC = Path(__file__).resolve().parents[3] / "docs" / "clinical-rules.md"


def test_committed_rules_document_matches_the_reference() -> None:
    assert DOC.exists(), f"docs/clinical-rules.md is missing; create it with: {REGENERATE}"
    committed = DOC.read_text(encoding="utf-8")
    assert committed == render(), (
        "docs/clinical-rules.md is out of date with the clinical reference data. "
        f"Regenerate it from the repository root with: {REGENERATE}"
    )


def test_every_rule_id_is_documented_with_what_it_checks() -> None:
    text = render()
    for rule in RULES:
        assert f"| `{rule.id}` |" in text, rule.id
        assert f"### `{rule.id}`" in text, rule.id


def test_every_enforced_figure_is_documented_with_its_source_and_status() -> None:
    text = render()
    lim = indications.limits()
    citations = [
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
        ids = ", ".join(citation.sources) if citation.sources else "none in the reference"
        assert f"| {citation.basis} | {ids} | {citation.status} |" in text, citation.basis
    for row in lim.not_applied:
        assert row.figure in text


def test_every_labelled_dosing_entry_is_documented() -> None:
    text = render()
    for row in indications.dosing():
        assert f"| {row.product_id} | {', '.join(row.indication_ids)} | {row.label} |" in text


def test_every_source_cited_in_the_document_resolves_and_is_listed() -> None:
    text = render()
    cited = set(re.findall(r"\bS\d+\b", text))
    assert cited
    for sid in cited:
        assert f"- [{sid}] {sources.get(sid).citation}" in text
