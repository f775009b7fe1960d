"""Which blocking findings a prescriber may override with a written reason, and which never.

A block is the engine saying "not like this". Some blocks are a clinical judgement a
prescriber may take responsibility for (a cumulative or per-session maximum, a minimum
interval, a paediatric limit), recorded with a reason and audited. Others are never
overridable: a lot past its expiry or a mixed vial past its use-by time (the product may
no longer be what the label describes), a contraindication (hypersensitivity, infection at
the site: if the record is wrong, correct the record), and plans that are not valid plans
(no points, impossible units, an unknown product or indication).
"""

from __future__ import annotations

HARD_RULES: frozenset[str] = frozenset(
    {
        "expired-lot",
        "vial-use-by",
        "contraindication",
        "empty-plan",
        "invalid-units",
        "unknown-product",
        "unknown-indication",
        "invalid-patient",
        "invalid-history",
    }
)

WHY_NOT = {
    "expired-lot": "A lot past its expiry date must not be used.",
    "vial-use-by": "A mixed vial past its use-by time must not be used.",
    "contraindication": "A contraindication cannot be overridden; if the record is wrong, "
    "correct the patient's history first.",
}


def can_override(rule_id: str) -> bool:
    """True when a prescriber may override a blocking finding of RULE_ID with a reason."""
    return rule_id not in HARD_RULES


def why_not(rule_id: str) -> str:
    return WHY_NOT.get(rule_id, "This finding means the plan itself is not valid: fix the plan.")
