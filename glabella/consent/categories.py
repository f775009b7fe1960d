"""Consent categories and which indication falls under which. Pure Python: no Django.

A treatment session needs a valid consent for the category of its indication. The
category ids are stable; the labels are what a nurse and a patient read.

Two categories are not treatments: ``photography`` (clinical photographs kept in the record;
taking a photo needs it) and ``photo-marketing`` (using those photographs in marketing; a photo
is marked for marketing use only under it). They are separate from each other and from every
treatment consent, and no indication maps to them.
"""

from __future__ import annotations

from types import MappingProxyType

COSMETIC = "cosmetic"
CHRONIC_MIGRAINE = "chronic-migraine"
HYPERHIDROSIS = "hyperhidrosis"
OTHER_MEDICAL = "other-medical"
PHOTOGRAPHY = "photography"
PHOTO_MARKETING = "photo-marketing"

CATEGORY_LABELS: MappingProxyType[str, str] = MappingProxyType(
    {
        COSMETIC: "Cosmetic (lines and wrinkles)",
        CHRONIC_MIGRAINE: "Chronic migraine",
        HYPERHIDROSIS: "Excessive sweating (hyperhidrosis)",
        OTHER_MEDICAL: "Other medical treatment",
        PHOTOGRAPHY: "Clinical photographs (kept in the record)",
        PHOTO_MARKETING: (
            "Use of photographs in marketing (website, social media, before/after examples)"
        ),
    }
)
CATEGORIES: tuple[str, ...] = tuple(CATEGORY_LABELS)
TREATMENT_CATEGORIES: tuple[str, ...] = (COSMETIC, CHRONIC_MIGRAINE, HYPERHIDROSIS, OTHER_MEDICAL)
PHOTO_CATEGORIES: tuple[str, ...] = (PHOTOGRAPHY, PHOTO_MARKETING)
CATEGORY_CHOICES: list[tuple[str, str]] = list(CATEGORY_LABELS.items())

_BY_INDICATION: MappingProxyType[str, str] = MappingProxyType(
    {
        "glabellar-lines": COSMETIC,
        "lateral-canthal-lines": COSMETIC,
        "forehead-lines": COSMETIC,
        "platysma-bands": COSMETIC,
        "chronic-migraine": CHRONIC_MIGRAINE,
        "axillary-hyperhidrosis": HYPERHIDROSIS,
        "blepharospasm": OTHER_MEDICAL,
        "cervical-dystonia": OTHER_MEDICAL,
        "upper-limb-spasticity": OTHER_MEDICAL,
        "lower-limb-spasticity": OTHER_MEDICAL,
        "overactive-bladder": OTHER_MEDICAL,
        "other": OTHER_MEDICAL,
    }
)
INDICATIONS: tuple[str, ...] = tuple(_BY_INDICATION)


def category_for_indication(indication_id: str) -> str:
    """The consent category that covers INDICATION_ID. An unknown id raises ValueError."""
    try:
        return _BY_INDICATION[indication_id]
    except KeyError:
        raise ValueError(f"Unknown indication {indication_id!r}") from None


def label(category: str) -> str:
    return CATEGORY_LABELS.get(category, category)
