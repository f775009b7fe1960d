"""The structured screening vocabulary and how it maps to the clinical core's patient flags.

A history item has a kind and a code. The codes below are the ones the safety engine
understands; ``flags_for`` turns a patient's active items into the flag set that
``glabella.clinical.safety.PatientFacts`` takes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from glabella.clinical import catalogue


@dataclass(frozen=True)
class Code:
    kind: str
    code: str
    label: str
    flag: str | None  # the clinical-core flag this item raises, if any
    question: str = ""  # screening question, for items asked on every screening


NEUROMUSCULAR = "neuromuscular-disorder"

CODES: list[Code] = [
    Code(
        "condition", "myasthenia-gravis", "Myasthenia gravis", NEUROMUSCULAR, "Myasthenia gravis?"
    ),
    Code(
        "condition",
        "lambert-eaton",
        "Lambert-Eaton syndrome",
        NEUROMUSCULAR,
        "Lambert-Eaton myasthenic syndrome?",
    ),
    Code(
        "condition",
        "als",
        "Amyotrophic lateral sclerosis (ALS / motor neurone disease)",
        NEUROMUSCULAR,
        "ALS / motor neurone disease?",
    ),
    Code(
        "condition",
        "other-neuromuscular",
        "Other neuromuscular disorder",
        NEUROMUSCULAR,
        "Any other neuromuscular disorder (e.g. myopathy, peripheral motor neuropathy)?",
    ),
    Code("condition", "other", "Other condition", None),
    Code("pregnancy", "pregnant", "Pregnant", "pregnant", "Pregnant, or could be pregnant?"),
    Code("breastfeeding", "breastfeeding", "Breastfeeding", "breastfeeding", "Breastfeeding?"),
    Code(
        "allergy",
        "albumin",
        "Allergy to human albumin",
        "allergy-albumin",
        "Allergy to human albumin?",
    ),
    Code(
        "allergy",
        "cow-milk-protein",
        "Allergy to cow's milk protein",
        "allergy-cow-milk-protein",
        "Allergy to cow's milk protein?",
    ),
    Code("allergy", "other", "Other allergy", None),
    Code(
        "infection",
        "infection-at-site",
        "Infection at a planned injection site",
        "infection-at-site",
        "Infection or inflammation where we plan to inject?",
    ),
    Code(
        "medication",
        "aminoglycoside",
        "Aminoglycoside antibiotic",
        "neuromuscular-blocking-drug",
        "Taking an aminoglycoside antibiotic (gentamicin, tobramycin, amikacin…)?",
    ),
    Code(
        "medication",
        "other-nm-drug",
        "Other drug that interferes with neuromuscular transmission",
        "neuromuscular-blocking-drug",
        "Taking another drug that affects nerve-muscle transmission (curare-like relaxants, "
        "anticholinergics, other botulinum toxins)?",
    ),
    Code(
        "medication",
        "anticoagulant",
        "Anticoagulant or antiplatelet",
        "anticoagulant",
        "Taking a blood thinner (warfarin, apixaban, rivaroxaban, clopidogrel, aspirin…)?",
    ),
    Code("medication", "other", "Other medication", None),
    Code("outside_treatment", "toxin", "Toxin treatment elsewhere", None),
]

# One allergy code per toxin product: "product:dysport" -> flag "allergy-dysport".
for _p in catalogue.products():
    CODES.append(Code("allergy", f"product:{_p.id}", f"Allergy to {_p.brand}", f"allergy-{_p.id}"))

BY_KEY: dict[tuple[str, str], Code] = {(c.kind, c.code): c for c in CODES}
SCREENING_QUESTIONS: list[Code] = [c for c in CODES if c.question]

KIND_LABELS = {
    "condition": "Condition",
    "allergy": "Allergy",
    "medication": "Medication",
    "pregnancy": "Pregnancy",
    "breastfeeding": "Breastfeeding",
    "infection": "Infection",
    "outside_treatment": "Toxin treatment elsewhere",
}

FLAG_LABELS: dict[str, str] = {
    NEUROMUSCULAR: "Neuromuscular disorder",
    "pregnant": "Pregnant",
    "breastfeeding": "Breastfeeding",
    "infection-at-site": "Infection at a site",
    "allergy-albumin": "Albumin allergy",
    "allergy-cow-milk-protein": "Cow's milk protein allergy",
    "neuromuscular-blocking-drug": "Neuromuscular-blocking drug",
    "anticoagulant": "Anticoagulant",
}
for _p in catalogue.products():
    FLAG_LABELS[f"allergy-{_p.id}"] = f"{_p.brand} allergy"


def code_choices(kind: str) -> list[tuple[str, str]]:
    return [(c.code, c.label) for c in CODES if c.kind == kind]


def flags_for(items: Iterable[tuple[str, str]]) -> frozenset[str]:
    """Flags raised by active history items given as (kind, code) pairs."""
    flags = set()
    for kind, code in items:
        entry = BY_KEY.get((kind, code))
        if entry is not None and entry.flag:
            flags.add(entry.flag)
    return frozenset(flags)
