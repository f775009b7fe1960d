"""The dose safety engine: checks a planned treatment against the labels before it is given.

``check(plan, patient, history, now, settings)`` returns a list of :class:`Finding` (block / warn /
info), each with a message a nurse understands (numbers stated) and the source of the figure
beside it (source ids and status). It never raises on bad clinical input: an empty plan, a dose of
0, -5, NaN or 10^9 units, an unknown product or indication all come back as *block* findings.

Principles:

- Units belong to a product family. Doses are added only within one family (Botox and Botox
  Cosmetic are both onabotulinumtoxinA, and the label's 400 U / 3 months counts them together);
  units of different families are never added, compared or converted.
- Every figure comes from ``reference/limits.json`` / ``reference/indications.json``; a figure
  whose status is unconfirmed still applies, and the finding says so.
- A clinic may tighten limits through :class:`~glabella.clinical.settings.ClinicalSettings`,
  never loosen them.

The rule ids (:data:`RULES`) are stable; their meaning does not change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Context, Decimal, InvalidOperation, localcontext
from typing import Literal

from glabella.clinical import catalogue, indications
from glabella.clinical._reference import Status
from glabella.clinical.catalogue import Product
from glabella.clinical.indications import AgeGroup, Citation, ContraindicationRule, Limits
from glabella.clinical.settings import ClinicalSettings

__all__ = [
    "RULES",
    "Finding",
    "PastTreatment",
    "PatientFacts",
    "Plan",
    "PlannedPoint",
    "RuleInfo",
    "Severity",
    "VialFacts",
    "check",
    "rule_ids",
]

Severity = Literal["block", "warn", "info"]

# --------------------------------------------------------------------------------------------
# Inputs (DESIGN.md) and output


@dataclass(frozen=True, slots=True)
class VialFacts:
    """The vial a plan draws from. ``use_by`` is None for a sealed vial."""

    lot_expiry: date
    use_by: datetime | None = None


@dataclass(frozen=True, slots=True)
class PlannedPoint:
    """One planned injection point. ``product_id`` None: the plan's product."""

    area: str
    muscle: str
    side: str
    units: Decimal
    depth: str = "IM"
    product_id: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """A planned treatment: one indication, one date, its injection points."""

    product_id: str
    indication: str
    date: date
    points: Sequence[PlannedPoint]
    vial: VialFacts | None = None


@dataclass(frozen=True, slots=True)
class PatientFacts:
    """What the rules need to know about the patient.

    ``flags``: ``neuromuscular-disorder``, ``pregnant``, ``breastfeeding``, ``infection-at-site``,
    ``allergy-albumin``, ``allergy-cow-milk-protein``, ``allergy-<product_id>``,
    ``neuromuscular-blocking-drug``, ``anticoagulant``; for bladder injection also
    ``urinary-tract-infection`` and ``urinary-retention`` (retention without routine
    self-catheterisation).
    """

    date_of_birth: date
    weight_kg: Decimal | None
    flags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class PastTreatment:
    """A treatment already given; ``outside`` when given elsewhere (another clinic)."""

    date: date
    product_id: str
    indication: str
    units: Decimal
    outside: bool = False


@dataclass(frozen=True, slots=True)
class Finding:
    """One result of the check.

    ``source`` is the human-readable citation of the figure (basis, source ids, status).
    ``source_ids`` / ``status`` are the same, structured; ``limit`` / ``value`` the numbers
    compared, when there are numbers.
    """

    rule: str
    severity: Severity
    message: str
    source: str
    source_ids: tuple[str, ...] = ()
    status: Status | None = None
    limit: Decimal | None = None
    value: Decimal | None = None


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """A rule id, the severities it can produce and what it checks (for the rules document)."""

    id: str
    severities: tuple[Severity, ...]
    checks: str


RULES: tuple[RuleInfo, ...] = (
    RuleInfo("empty-plan", ("block",), "The plan has at least one injection point."),
    RuleInfo(
        "invalid-units",
        ("block",),
        "Every point's units are a finite number above 0 U and no more than the largest vial of "
        "any product; a point above that bound still counts towards every total.",
    ),
    RuleInfo(
        "unknown-product",
        ("block", "warn"),
        "The plan's product and every point's product are in the catalogue (block); a past "
        "treatment with an unknown product is not counted in any limit (warn).",
    ),
    RuleInfo("unknown-indication", ("block",), "The plan's indication is a known indication id."),
    RuleInfo(
        "invalid-patient",
        ("block",),
        "The date of birth is on or before the treatment date.",
    ),
    RuleInfo(
        "invalid-history",
        ("block",),
        "Every past treatment has a valid positive number of units, so cumulative limits and "
        "intervals can be checked.",
    ),
    RuleInfo("expired-lot", ("block",), "The lot's expiry date is not before the treatment date."),
    RuleInfo(
        "vial-use-by",
        ("block",),
        "A reconstituted vial is used before its use-by time (now).",
    ),
    RuleInfo(
        "contraindication",
        ("block", "warn", "info"),
        "Patient flags against the labels: infection at the site, hypersensitivity to a "
        "botulinum toxin or an excipient (albumin, cow's milk protein), bladder contraindications "
        "(block); neuromuscular disorders, neuromuscular-blocking drugs, pregnancy, "
        "breastfeeding (warn); anticoagulants before bladder injection (info).",
    ),
    RuleInfo(
        "product-mixing",
        ("warn", "info"),
        "More than one toxin product in one plan: totals are given per product, never added or "
        "converted (warn; info when the products are the same toxin, e.g. Botox and Botox "
        "Cosmetic).",
    ),
    RuleInfo(
        "recent-other-toxin",
        ("warn",),
        "Another toxin family given within the cumulative window (its units are not added).",
    ),
    RuleInfo(
        "session-max",
        ("block",),
        "One session's units of a product family are within the label's per-session maximum "
        "and within the clinic's own tighter cap, if set.",
    ),
    RuleInfo("site-max", ("block", "info"), "Units at each injection site are within the label."),
    RuleInfo(
        "muscle-max",
        ("warn",),
        "Units into one muscle (both sides) are within the label's advice.",
    ),
    RuleInfo(
        "label-dose",
        ("warn",),
        "The session total is not above the labelled dose for the indication (above is off-label).",
    ),
    RuleInfo(
        "off-label",
        ("warn",),
        "The product family has labelled dosing for the indication and the patient's age.",
    ),
    RuleInfo(
        "paediatric-max",
        ("block",),
        "For a child (below 18 y): the lesser of the per-kg and the absolute maximum, per session "
        "or per limb; a child without a valid recorded weight is blocked.",
    ),
    RuleInfo(
        "cumulative-3-month",
        ("block",),
        "All doses of a product family in a rolling window (84 or 90 days, clinic setting) across "
        "every indication, including treatments given elsewhere, are within the label's maximum "
        "(paediatric: the lesser of per-kg and absolute).",
    ),
    RuleInfo(
        "blepharospasm-30-day",
        ("block",),
        "Blepharospasm doses in any 30 days are within the label's maximum.",
    ),
    RuleInfo(
        "min-interval",
        ("block",),
        "The time since the last treatment with the same product family for the same indication "
        "(including treatments elsewhere) is at least the label's minimum interval.",
    ),
    RuleInfo(
        "distant-spread",
        ("info",),
        "Children treated for spasticity: the boxed warning on distant spread of toxin effect.",
    ),
)


def rule_ids() -> list[str]:
    """Every rule id the engine can produce."""
    return [rule.id for rule in RULES]


# --------------------------------------------------------------------------------------------
# Formatting helpers

_SEVERITY_WORD: dict[Severity, str] = {"block": "Blocked", "warn": "Warning", "info": "Note"}
_SEVERITY_RANK: dict[Severity, int] = {"block": 0, "warn": 1, "info": 2}
_UNCONFIRMED = " This figure is unconfirmed in the reference: verify it against the current label."

# Arithmetic on absurd input (1E+999999 U) must not raise: overflow gives Infinity.
_CONTEXT = Context(prec=28, traps=[InvalidOperation])


def _num(value: Decimal) -> str:
    """Plain text of a number, e.g. ``100``, ``2.5``; huge numbers in scientific form."""
    if not value.is_finite():
        return str(value)
    if value != 0 and value.adjusted() > 12:
        return f"{value:.4E}"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _u(value: Decimal) -> str:
    return f"{_num(value)} U"


def _cite(citation: Citation) -> str:
    return citation.text()


def _finding(
    rule: str,
    severity: Severity,
    message: str,
    citation: Citation,
    *,
    limit: Decimal | None = None,
    value: Decimal | None = None,
) -> Finding:
    text = f"{_SEVERITY_WORD[severity]}: {message}"
    if citation.status == "unconfirmed":
        text += _UNCONFIRMED
    return Finding(
        rule=rule,
        severity=severity,
        message=text,
        source=_cite(citation),
        source_ids=citation.sources,
        status=citation.status,
        limit=limit,
        value=value,
    )


def _plain(rule: str, severity: Severity, message: str, source: str) -> Finding:
    """A finding about the input itself (no reference figure involved)."""
    return Finding(
        rule=rule,
        severity=severity,
        message=f"{_SEVERITY_WORD[severity]}: {message}",
        source=source,
    )


_INPUT_SOURCE = "Glabella input check (no clinical figure involved)"
# A plan dated outside these years is a typing slip, not a treatment.
FIRST_PLAUSIBLE_YEAR = 1900
LAST_PLAUSIBLE_YEAR = 2199


def _as_date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return None


def _shift(day: date, days: int) -> date:
    """DAY moved by DAYS, held at the calendar's ends instead of overflowing."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


def _as_units(value: object) -> Decimal | None:
    """The units as a Decimal, or None when they are not a number at all."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, (float, str)):
        try:
            return Decimal(str(value).strip())
        except InvalidOperation:
            return None
    return None


def _units_problem(units: Decimal | None, raw: object) -> str | None:
    """Why these units cannot be a dose (None: they can)."""
    if units is None:
        return f"{raw!r} is not a number of units"
    if units.is_nan():
        return "the units are not a number (NaN)"
    if units.is_infinite():
        return f"{units} units is not a dose"
    if units <= 0:
        return f"{_u(units)} is not a dose: units must be more than 0"
    return None


def _age_years(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _side(side: str) -> str:
    text = side.strip().lower() if isinstance(side, str) else ""
    if text in ("l", "left"):
        return "L"
    if text in ("r", "right"):
        return "R"
    return "mid"


def _indication_name(indication: str) -> str:
    return indications.display_name(indication).lower()


# --------------------------------------------------------------------------------------------
# Normalised context


@dataclass(frozen=True, slots=True)
class _Point:
    number: int
    area: str
    muscle: str
    side: str
    units: Decimal
    product: Product

    @property
    def label(self) -> str:
        parts = [p for p in (self.area, self.muscle) if isinstance(p, str) and p.strip()]
        where = " / ".join(dict.fromkeys(parts)) or "no site given"
        return f"point {self.number} ({where}, {self.side})"


@dataclass(frozen=True, slots=True)
class _Past:
    date: date
    product: Product
    indication: str
    units: Decimal
    outside: bool


@dataclass(frozen=True, slots=True)
class _Ctx:
    plan_date: date
    now: datetime
    settings: ClinicalSettings
    limits: Limits
    indication: str | None
    plan_product: Product | None
    points: tuple[_Point, ...]
    products_named: tuple[Product, ...]
    age: int | None
    group: AgeGroup | None
    weight: Decimal | None
    weight_problem: str
    flags: frozenset[str]
    past: tuple[_Past, ...]

    def families(self) -> list[str]:
        return list(dict.fromkeys(p.product.generic for p in self.points))

    def family_total(self, generic: str) -> Decimal:
        return sum((p.units for p in self.points if p.product.generic == generic), Decimal(0))

    def product_totals(self) -> dict[str, tuple[Product, Decimal]]:
        totals: dict[str, tuple[Product, Decimal]] = {}
        for p in self.points:
            product, total = totals.get(p.product.id, (p.product, Decimal(0)))
            totals[p.product.id] = (product, total + p.units)
        return totals

    def brands(self, generic: str) -> str:
        names = [p.brand for p in catalogue.products() if p.generic == generic]
        return "/".join(names) if names else generic


def _prepare(
    plan: Plan,
    patient: PatientFacts,
    history: Iterable[PastTreatment],
    now: datetime,
    settings: ClinicalSettings,
    out: list[Finding],
) -> _Ctx | None:
    plan_date = _as_date(plan.date)
    if plan_date is None:
        out.append(
            _plain(
                "empty-plan", "block", f"the plan has no valid date ({plan.date!r}).", _INPUT_SOURCE
            )
        )
        return None
    if not FIRST_PLAUSIBLE_YEAR <= plan_date.year <= LAST_PLAUSIBLE_YEAR:
        out.append(
            _plain(
                "empty-plan",
                "block",
                f"the plan's date {plan_date.isoformat()} is not a plausible treatment date "
                f"(years {FIRST_PLAUSIBLE_YEAR} to {LAST_PLAUSIBLE_YEAR}).",
                _INPUT_SOURCE,
            )
        )
        return None

    indication: str | None = plan.indication if indications.exists(plan.indication) else None
    if indication is None:
        out.append(
            _plain(
                "unknown-indication",
                "block",
                f"the indication {plan.indication!r} is not known. Choose one of: "
                f"{', '.join(indications.INDICATION_IDS)}.",
                _INPUT_SOURCE,
            )
        )

    plan_product: Product | None = None
    try:
        plan_product = catalogue.product(plan.product_id)
    except catalogue.UnknownProduct:
        plan_product = None

    raw_points = tuple(plan.points or ())
    if not raw_points:
        out.append(
            _plain(
                "empty-plan",
                "block",
                "the plan has no injection points. Add at least one point with its units.",
                _INPUT_SOURCE,
            )
        )

    guard = indications.limits().units_guard
    unknown: dict[str, list[int]] = {}
    points: list[_Point] = []
    named: dict[str, Product] = {}
    if plan_product is not None:
        named[plan_product.id] = plan_product
    for number, raw in enumerate(raw_points, start=1):
        pid = raw.product_id if raw.product_id is not None else plan.product_id
        try:
            product = catalogue.product(pid)
        except catalogue.UnknownProduct:
            unknown.setdefault(str(pid), []).append(number)
            continue
        named.setdefault(product.id, product)
        units = _as_units(raw.units)
        side = _side(raw.side)
        area = raw.area if isinstance(raw.area, str) else ""
        muscle = raw.muscle if isinstance(raw.muscle, str) else ""
        problem = _units_problem(units, raw.units)
        where = _Point(number, area, muscle, side, Decimal(1), product).label
        if problem is not None or units is None:
            out.append(
                _plain(
                    "invalid-units",
                    "block",
                    f"{where}: {problem}. Enter the units to inject at this point.",
                    _INPUT_SOURCE,
                )
            )
            continue
        if units > guard.max_units:
            out.append(
                _finding(
                    "invalid-units",
                    "block",
                    f"{where} has {_u(units)}, more than the largest vial of any product holds "
                    f"({_u(guard.max_units)}). Check the number.",
                    guard.citation,
                    limit=guard.max_units,
                    value=units,
                )
            )
        points.append(_Point(number, area, muscle, side, units, product))

    for pid, numbers in unknown.items():
        where = "the plan" if pid == plan.product_id else "point " + ", ".join(map(str, numbers))
        out.append(
            _plain(
                "unknown-product",
                "block",
                f"{where}: the product {pid!r} is not in the catalogue. Known products: "
                f"{', '.join(catalogue.PRODUCT_IDS)}.",
                _INPUT_SOURCE,
            )
        )
    if plan_product is None and plan.product_id not in unknown:
        out.append(
            _plain(
                "unknown-product",
                "block",
                f"the plan's product {plan.product_id!r} is not in the catalogue. Known products: "
                f"{', '.join(catalogue.PRODUCT_IDS)}.",
                _INPUT_SOURCE,
            )
        )

    born = _as_date(patient.date_of_birth)
    age: int | None = None
    if born is None or born > plan_date:
        out.append(
            _plain(
                "invalid-patient",
                "block",
                f"the date of birth {patient.date_of_birth!r} is not a date on or before the "
                f"treatment date {plan_date.isoformat()}. Age-based limits cannot be checked.",
                _INPUT_SOURCE,
            )
        )
    else:
        age = _age_years(born, plan_date)
    group: AgeGroup | None = None if age is None else indications.population_for_age(age)

    weight: Decimal | None = None
    weight_problem = "no weight is recorded"
    if patient.weight_kg is not None:
        raw_weight = _as_units(patient.weight_kg)
        if raw_weight is None or not raw_weight.is_finite() or raw_weight <= 0:
            weight_problem = f"the recorded weight ({patient.weight_kg!r} kg) is not valid"
        else:
            weight = raw_weight

    past: list[_Past] = []
    for item in history or ():
        when = _as_date(item.date)
        try:
            product = catalogue.product(item.product_id)
        except catalogue.UnknownProduct:
            out.append(
                _plain(
                    "unknown-product",
                    "warn",
                    f"a past treatment on {when} names the product {item.product_id!r}, which is "
                    "not in the catalogue; it is not counted in any limit.",
                    _INPUT_SOURCE,
                )
            )
            continue
        units = _as_units(item.units)
        problem = _units_problem(units, item.units)
        if when is None or problem is not None or units is None:
            reason = problem if when is not None else f"its date {item.date!r} is not a date"
            out.append(
                _plain(
                    "invalid-history",
                    "block",
                    f"a past {product.brand} treatment ({when}) cannot be counted: {reason}. "
                    "Correct the history first: cumulative limits and intervals cannot be "
                    "checked without it.",
                    _INPUT_SOURCE,
                )
            )
            continue
        past.append(_Past(when, product, str(item.indication), units, bool(item.outside)))

    flags = frozenset(
        f.strip().lower() for f in (patient.flags or frozenset()) if isinstance(f, str)
    )
    return _Ctx(
        plan_date=plan_date,
        now=now,
        settings=settings,
        limits=indications.limits(),
        indication=indication,
        plan_product=plan_product,
        points=tuple(points),
        products_named=tuple(named.values()),
        age=age,
        group=group,
        weight=weight,
        weight_problem=weight_problem,
        flags=flags,
        past=tuple(past),
    )


# --------------------------------------------------------------------------------------------
# Rules


def _rule_vial(plan: Plan, ctx: _Ctx) -> list[Finding]:
    vial = plan.vial
    if vial is None:
        return []
    found: list[Finding] = []
    expiry = _as_date(vial.lot_expiry)
    if expiry is None:
        found.append(
            _plain(
                "expired-lot",
                "block",
                f"the lot expiry {vial.lot_expiry!r} is not a date.",
                _INPUT_SOURCE,
            )
        )
    elif expiry < ctx.plan_date:
        found.append(
            _plain(
                "expired-lot",
                "block",
                f"the lot expired on {expiry.isoformat()}, before the treatment date "
                f"{ctx.plan_date.isoformat()}. Use a lot within its expiry date.",
                "Expiry date printed on the lot by the manufacturer",
            )
        )
    if vial.use_by is not None:
        product = ctx.plan_product
        if product is not None and product.use_within_hours is not None:
            status = product.use_within_status or "unconfirmed"
            citation = Citation(
                basis=(
                    f"{product.brand}: use within {_num(product.use_within_hours)} hours of "
                    "reconstitution"
                ),
                status=status,
                sources=product.sources,
            )
        else:
            citation = Citation(
                basis="Use-by time recorded on the reconstituted vial",
                status="confirmed",
                sources=(),
            )
        use_by = vial.use_by
        if not isinstance(use_by, datetime):
            found.append(
                _plain(
                    "vial-use-by",
                    "block",
                    f"the vial's use-by time {use_by!r} is not a date and time.",
                    _INPUT_SOURCE,
                )
            )
        elif (use_by.tzinfo is None) != (ctx.now.tzinfo is None):
            found.append(
                _plain(
                    "vial-use-by",
                    "block",
                    "the vial's use-by time and the current time cannot be compared (one has a "
                    "time zone, the other has not). Check the vial's use-by time.",
                    _INPUT_SOURCE,
                )
            )
        elif use_by < ctx.now:
            found.append(
                Finding(
                    rule="vial-use-by",
                    severity="block",
                    message=(
                        f"Blocked: this reconstituted vial had to be used by "
                        f"{use_by.isoformat(sep=' ', timespec='minutes')}; it is now "
                        f"{ctx.now.isoformat(sep=' ', timespec='minutes')}. Discard it and use "
                        "a new vial."
                    ),
                    source=_cite(citation),
                    source_ids=citation.sources,
                    status=citation.status,
                )
            )
    return found


def _patient_rule_applies(rule: ContraindicationRule, ctx: _Ctx) -> bool:
    if rule.indications is not None and ctx.indication not in rule.indications:
        return False
    if rule.generic is not None:
        return any(p.generic == rule.generic for p in ctx.products_named)
    return True


def _rule_contraindications(ctx: _Ctx) -> list[Finding]:
    found: list[Finding] = []
    rules = [
        r
        for r in (*ctx.limits.contraindications, *ctx.limits.warnings)
        if r.rule == "contraindication"
    ]
    allergic_to = [
        catalogue.product(flag.removeprefix("allergy-"))
        for flag in sorted(ctx.flags)
        if flag.startswith("allergy-") and flag.removeprefix("allergy-") in catalogue.PRODUCT_IDS
    ]
    for rule in rules:
        if rule.flag == "allergy-<product_id>":
            for allergen_product in allergic_to:
                for product in ctx.products_named:
                    if product.generic == allergen_product.generic:
                        detail = (
                            f"the patient is recorded as allergic to {allergen_product.brand}; "
                            f"{product.brand} is the same toxin ({product.generic})."
                            if product.id != allergen_product.id
                            else f"the patient is recorded as allergic to {product.brand}."
                        )
                    else:
                        detail = (
                            f"the patient is recorded as allergic to {allergen_product.brand}. "
                            f"The labels contraindicate every botulinum toxin product, including "
                            f"{product.brand}, after hypersensitivity to any botulinum toxin "
                            "preparation."
                        )
                    found.append(_finding("contraindication", "block", detail, rule.citation))
            continue
        if rule.flag is None or rule.flag not in ctx.flags:
            continue
        if rule.allergen is not None:
            for product in ctx.products_named:
                if rule.allergen not in product.allergens:
                    continue
                st = product.allergen_status(rule.allergen) or "unconfirmed"
                extra = dict(product.allergen_sources).get(rule.allergen, ())
                citation = Citation(
                    basis=rule.citation.basis,
                    status=_weaker(rule.citation.status, st),
                    sources=tuple(dict.fromkeys((*rule.citation.sources, *extra))),
                )
                if rule.allergen == "albumin":
                    allergy, contains = "human albumin", "contains human albumin"
                else:
                    allergy = "cow's milk protein"
                    contains = "may contain traces of cow's milk protein"
                message = (
                    f"an allergy to {allergy} is recorded and {product.brand} {contains}. "
                    "The label contraindicates it: do not inject this product."
                )
                found.append(_finding("contraindication", "block", message, citation))
            continue
        if not _patient_rule_applies(rule, ctx):
            continue
        if rule.severity == "block":
            message = f"the patient's record shows {rule.text}. The label contraindicates it."
        else:
            message = f"the patient's record shows {rule.text}."
        found.append(_finding(rule.rule, rule.severity, message, rule.citation))
    return found


_STATUS_RANK: dict[Status, int] = {"confirmed": 0, "secondary": 1, "unconfirmed": 2}


def _weaker(a: Status, b: Status) -> Status:
    return a if _STATUS_RANK[a] >= _STATUS_RANK[b] else b


def _warning_rule(ctx: _Ctx, rule_id: str) -> ContraindicationRule:
    for rule in ctx.limits.warnings:
        if rule.rule == rule_id:
            return rule
    raise LookupError(f"reference/limits.json has no warning for rule {rule_id!r}")


def _rule_product_mixing(ctx: _Ctx) -> list[Finding]:
    totals = ctx.product_totals()
    if len(totals) < 2:
        return []
    listed = ", ".join(f"{product.brand} {_u(total)}" for product, total in totals.values())
    families = ctx.families()
    rule = _warning_rule(ctx, "product-mixing")
    if len(families) > 1:
        message = (
            f"this plan uses {len(totals)} toxin products: {listed}. Units of different products "
            "cannot be compared, converted or added; each product is checked against its own "
            "limits."
        )
        return [_finding("product-mixing", "warn", message, rule.citation)]
    message = (
        f"this plan uses {listed}: the same toxin ({families[0]}), so their units count together "
        "towards its limits."
    )
    return [_finding("product-mixing", "info", message, rule.citation)]


def _rule_recent_other_toxin(ctx: _Ctx) -> list[Finding]:
    families = set(ctx.families())
    if not families:
        return []
    window = ctx.settings.cumulative_window_days
    others = [
        p
        for p in ctx.past
        if p.product.generic not in families and abs((ctx.plan_date - p.date).days) <= window
    ]
    if not others:
        return []
    listed = "; ".join(
        f"{p.product.brand} ({p.product.generic}) {_u(p.units)} on {p.date.isoformat()}"
        + (" elsewhere" if p.outside else "")
        for p in sorted(others, key=lambda p: p.date)
    )
    rule = _warning_rule(ctx, "recent-other-toxin")
    message = (
        f"another toxin was given within {window} days: {listed}. Effects may add up; its units "
        "cannot be compared with or added to this plan's."
    )
    return [_finding("recent-other-toxin", "warn", message, rule.citation)]


def _rule_session_max(ctx: _Ctx) -> list[Finding]:
    found: list[Finding] = []
    for product, total in ctx.product_totals().values():
        cap = ctx.settings.session_cap(product.id)
        if cap is not None and total > cap:
            found.append(
                Finding(
                    rule="session-max",
                    severity="block",
                    message=(
                        f"Blocked: {_u(total)} of {product.brand} in this session is above this "
                        f"clinic's cap of {_u(cap)} per session."
                    ),
                    source=(
                        f"Clinic setting: {product.brand} at most {_u(cap)} per session "
                        "(tighter than the label)"
                    ),
                    limit=cap,
                    value=total,
                )
            )
    for generic in ctx.families():
        total = ctx.family_total(generic)
        for limit in ctx.limits.session:
            if not limit.applies(generic, ctx.group, ctx.indication):
                continue
            if total > limit.max_units:
                scope = (
                    f" for {_indication_name(ctx.indication)}"
                    if limit.indications is not None and ctx.indication is not None
                    else ""
                )
                found.append(
                    _finding(
                        "session-max",
                        "block",
                        f"{_u(total)} of {generic} in one session{scope} is above the "
                        f"{_u(limit.max_units)} per-session maximum.",
                        limit.citation,
                        limit=limit.max_units,
                        value=total,
                    )
                )
    return found


def _rule_site_max(ctx: _Ctx) -> list[Finding]:
    found: list[Finding] = []
    for limit in ctx.limits.site:
        for point in ctx.points:
            if not limit.applies(point.product.generic, ctx.group, ctx.indication):
                continue
            if point.units > limit.max_units_per_site:
                if limit.severity == "info":
                    tail = "; the label notes little added benefit above that."
                else:
                    tail = ". Spread the dose over more sites."
                found.append(
                    _finding(
                        "site-max",
                        limit.severity,
                        f"{point.label} has {_u(point.units)} of {point.product.generic}, above "
                        f"{_u(limit.max_units_per_site)} per site for "
                        f"{_indication_name(ctx.indication or '')}{tail}",
                        limit.citation,
                        limit=limit.max_units_per_site,
                        value=point.units,
                    )
                )
    return found


def _rule_muscle_max(ctx: _Ctx) -> list[Finding]:
    found: list[Finding] = []
    for limit in ctx.limits.muscle:
        for generic in ctx.families():
            if not limit.applies(generic, ctx.group, ctx.indication):
                continue
            matching = [
                p
                for p in ctx.points
                if p.product.generic == generic
                and (limit.matches_muscle(p.muscle) or limit.matches_muscle(p.area))
            ]
            total = sum((p.units for p in matching), Decimal(0))
            if total > limit.max_units:
                found.append(
                    _finding(
                        "muscle-max",
                        limit.severity,
                        f"{_u(total)} of {generic} into the {limit.muscle} (both sides) is above "
                        f"the {_u(limit.max_units)} the label advises, to reduce the risk of "
                        "swallowing problems.",
                        limit.citation,
                        limit=limit.max_units,
                        value=total,
                    )
                )
    return found


def _rule_label_dose(ctx: _Ctx) -> list[Finding]:
    if ctx.indication is None or ctx.indication == "other" or ctx.age is None:
        return []
    found: list[Finding] = []
    for generic in ctx.families():
        matching = [
            row
            for row in indications.dosing(ctx.indication, generic)
            if row.applies_to_age(ctx.age)
        ]
        rows = [row for row in matching if row.labelled_max_units is not None]
        if not rows:
            continue
        top = max(rows, key=lambda row: row.labelled_max_units or Decimal(0))
        labelled = top.labelled_max_units
        total = ctx.family_total(generic)
        if labelled is None or total <= labelled:
            continue
        notes = "; ".join(row.combination_note for row in matching if row.combination_note)
        message = (
            f"{_u(total)} of {generic} for {_indication_name(ctx.indication)} is above the "
            f"labelled dose of {top.labelled_dose_text}: above the label is off-label use."
        )
        if notes:
            message += f" The label also gives: {notes}."
        found.append(
            _finding("label-dose", "warn", message, top.citation, limit=labelled, value=total)
        )
    return found


def _rule_off_label(ctx: _Ctx) -> list[Finding]:
    if ctx.indication is None or ctx.indication == "other" or ctx.age is None:
        return []
    found: list[Finding] = []
    for generic in ctx.families():
        rows = indications.dosing(ctx.indication, generic)
        if any(row.applies_to_age(ctx.age) for row in rows):
            continue
        name = _indication_name(ctx.indication)
        if rows:
            populations = ", ".join(dict.fromkeys(row.population for row in rows))
            message = (
                f"{generic} ({ctx.brands(generic)}) has labelled dosing for {name} only for "
                f"{populations}; this patient is {ctx.age}. This is off-label use."
            )
            first = rows[0]
            citation = Citation(
                basis=f"Labelled dosing for {name} ({populations})",
                status=first.status,
                sources=tuple(dict.fromkeys(s for row in rows for s in row.sources)),
            )
        else:
            message = (
                f"the reference has no labelled dosing for {name} with {generic} "
                f"({ctx.brands(generic)}). This is off-label use."
            )
            citation = Citation(
                basis="No labelled dosing entry for this product and indication in the clinical "
                "reference (reference/indications.json)",
                status="confirmed",
                sources=(),
            )
        found.append(_finding("off-label", "warn", message, citation))
    return found


def _per_limb_totals(points: Sequence[_Point]) -> dict[str, Decimal]:
    left = sum((p.units for p in points if p.side == "L"), Decimal(0))
    right = sum((p.units for p in points if p.side == "R"), Decimal(0))
    middle = sum((p.units for p in points if p.side == "mid"), Decimal(0))
    sides = {p.side for p in points} - {"mid"}
    if not sides:
        return {"one limb": middle}
    totals: dict[str, Decimal] = {}
    if "L" in sides or middle:
        totals["left limb"] = left + middle
    if "R" in sides:
        totals["right limb"] = right + middle
    return totals


def _lesser(per_kg: Decimal, absolute: Decimal, weight: Decimal) -> tuple[Decimal, str]:
    by_weight = per_kg * weight
    if by_weight <= absolute:
        return by_weight, (
            f"{_num(per_kg)} U/kg x {_num(weight)} kg = {_u(by_weight)}, lower than the "
            f"{_u(absolute)} absolute maximum"
        )
    return absolute, (
        f"the {_u(absolute)} absolute maximum; {_num(per_kg)} U/kg x {_num(weight)} kg = "
        f"{_u(by_weight)} is higher"
    )


def _missing_weight(ctx: _Ctx, rule: str, what: str, citation: Citation) -> Finding:
    return _finding(
        rule,
        "block",
        f"{ctx.weight_problem} for this {ctx.age}-year-old child, so the weight-based limit "
        f"({what}) cannot be checked. Record the child's weight first.",
        citation,
    )


def _rule_paediatric_max(ctx: _Ctx) -> list[Finding]:
    if ctx.group != "paediatric":
        return []
    found: list[Finding] = []
    for generic in ctx.families():
        points = [p for p in ctx.points if p.product.generic == generic]
        for limit in ctx.limits.paediatric:
            if not limit.applies(generic, ctx.indication):
                continue
            what = (
                f"{_num(limit.max_units_per_kg)} U/kg or {_u(limit.max_units_abs)}"
                f"{' per limb' if limit.scope == 'per-limb' else ''} for {generic}"
            )
            if ctx.weight is None:
                found.append(_missing_weight(ctx, "paediatric-max", what, limit.citation))
                continue
            cap, explain = _lesser(limit.max_units_per_kg, limit.max_units_abs, ctx.weight)
            if limit.scope == "session":
                totals = {"": sum((p.units for p in points), Decimal(0))}
            else:
                totals = _per_limb_totals(points)
            for where, total in totals.items():
                if total <= cap:
                    continue
                place = f" on the {where}" if where else ""
                found.append(
                    _finding(
                        "paediatric-max",
                        "block",
                        f"{_u(total)} of {generic}{place} for this {_num(ctx.weight)} kg child is "
                        f"above the {_u(cap)} maximum ({explain}).",
                        limit.citation,
                        limit=cap,
                        value=total,
                    )
                )
    return found


@dataclass(frozen=True, slots=True)
class _Window:
    start: date
    end: date
    inside: tuple[_Past, ...]
    total: Decimal


def _heaviest_window(past: Sequence[_Past], plan_date: date, days: int) -> _Window:
    """The window of ``days`` days containing the plan date that holds the most past units.

    Both ends count: with 90 days, a treatment 90 days before the plan counts, 91 days before
    does not. Treatments dated after the plan (late entries) count when within the window.
    """
    earliest = _shift(plan_date, -days)
    # The heaviest window starts at a treatment date or ends at one (or at the plan's edges).
    candidates = {earliest, plan_date}
    candidates |= {p.date for p in past} | {_shift(p.date, -days) for p in past}
    starts = sorted(s for s in candidates if earliest <= s <= plan_date)
    best: _Window | None = None
    for start in starts:
        end = _shift(start, days)
        inside = tuple(p for p in past if start <= p.date <= end)
        total = sum((p.units for p in inside), Decimal(0))
        if best is None or total > best.total:
            best = _Window(start, end, inside, total)
    if best is None:  # pragma: no cover - starts always holds ``earliest``
        return _Window(earliest, plan_date, (), Decimal(0))
    return best


def _window_message(
    total: Decimal,
    generic: str,
    days: int,
    cap: Decimal,
    plan_units: Decimal,
    window: _Window,
    plan_date: date,
    cap_text: str,
) -> str:
    message = (
        f"{_u(total)} of {generic} in {days} days would exceed the {cap_text} "
        f"(this plan {_u(plan_units)}"
    )
    if window.total > 0:
        span = (
            f"since {window.start.isoformat()}"
            if window.end >= plan_date and all(p.date <= plan_date for p in window.inside)
            else f"between {window.start.isoformat()} and {window.end.isoformat()}"
        )
        message += f" + {_u(window.total)} {span}"
        outside = sum((p.units for p in window.inside if p.outside), Decimal(0))
        if outside > 0:
            message += f", {_u(outside)} of it given elsewhere"
    else:
        message += f"; nothing else given in the {days} days"
    return message + ")."


def _rule_cumulative(ctx: _Ctx) -> list[Finding]:
    found: list[Finding] = []
    for generic in ctx.families():
        plan_units = ctx.family_total(generic)
        for limit in ctx.limits.cumulative:
            if not limit.applies(generic, ctx.group, ctx.indication):
                continue
            days = (
                limit.window_days
                if limit.window_days is not None
                else ctx.settings.cumulative_window_days
            )
            relevant = [
                p
                for p in ctx.past
                if p.product.generic == generic
                and (limit.indications is None or p.indication in limit.indications)
            ]
            window = _heaviest_window(relevant, ctx.plan_date, days)
            total = plan_units + window.total
            if limit.max_units is not None:
                cap, cap_text = limit.max_units, f"{_u(limit.max_units)} maximum"
            elif limit.max_units_per_kg is not None and limit.max_units_abs is not None:
                what = (
                    f"{_num(limit.max_units_per_kg)} U/kg or {_u(limit.max_units_abs)} in "
                    f"{days} days for {generic}"
                )
                if ctx.weight is None:
                    found.append(_missing_weight(ctx, limit.rule, what, limit.citation))
                    continue
                cap, explain = _lesser(limit.max_units_per_kg, limit.max_units_abs, ctx.weight)
                cap_text = f"{_u(cap)} maximum for this {_num(ctx.weight)} kg child ({explain})"
            else:  # pragma: no cover - the reference loader guarantees one of the two
                continue
            if total > cap:
                found.append(
                    _finding(
                        limit.rule,
                        "block",
                        _window_message(
                            total, generic, days, cap, plan_units, window, ctx.plan_date, cap_text
                        ),
                        limit.citation,
                        limit=cap,
                        value=total,
                    )
                )
    return found


def _rule_min_interval(ctx: _Ctx) -> list[Finding]:
    if ctx.indication is None or ctx.indication == "other":
        return []
    found: list[Finding] = []
    for generic in ctx.families():
        entries = ctx.limits.min_intervals(ctx.indication, generic, ctx.group) or (
            ctx.limits.min_intervals(ctx.indication, generic)
        )
        if not entries:
            continue
        entry = max(entries, key=lambda row: row.days)
        close = [
            p
            for p in ctx.past
            if p.product.generic == generic
            and p.indication == ctx.indication
            and abs((ctx.plan_date - p.date).days) < entry.days
        ]
        if not close:
            continue
        nearest = min(close, key=lambda p: (abs((ctx.plan_date - p.date).days), p.date))
        gap = (ctx.plan_date - nearest.date).days
        name = _indication_name(ctx.indication)
        where = ", given elsewhere" if nearest.outside else ""
        if gap >= 0:
            earliest = _shift(nearest.date, entry.days)
            message = (
                f"the last {name} treatment with {generic} was {gap} days ago "
                f"({nearest.date.isoformat()}{where}); the minimum interval is {entry.days} days, "
                f"so the earliest date is {earliest.isoformat()}."
            )
        else:
            message = (
                f"a {name} treatment with {generic} is recorded {-gap} days after this date "
                f"({nearest.date.isoformat()}{where}); the minimum interval is {entry.days} days."
            )
        found.append(
            _finding(
                "min-interval",
                "block",
                message,
                entry.citation,
                limit=Decimal(entry.days),
                value=Decimal(abs(gap)),
            )
        )
    return found


def _rule_distant_spread(ctx: _Ctx) -> list[Finding]:
    if ctx.group != "paediatric" or not ctx.points:
        return []
    if ctx.indication not in ("upper-limb-spasticity", "lower-limb-spasticity"):
        return []
    rule = _warning_rule(ctx, "distant-spread")
    return [
        _finding(
            "distant-spread",
            "info",
            f"boxed warning for this child: {rule.text}. Tell the family which signs to watch for.",
            rule.citation,
        )
    ]


# --------------------------------------------------------------------------------------------
# The check


def check(
    plan: Plan,
    patient: PatientFacts,
    history: Sequence[PastTreatment],
    now: datetime,
    settings: ClinicalSettings | None = None,
) -> list[Finding]:
    """Check a planned treatment; return every finding, blocks first, then warnings, then notes.

    ``history`` holds the patient's past treatments (here and elsewhere); ``now`` is the current
    time (for a reconstituted vial's use-by); ``settings`` the clinic's tightened limits
    (defaults: 90-day window, no extra caps).
    """
    effective = settings if settings is not None else ClinicalSettings()
    out: list[Finding] = []
    with localcontext(_CONTEXT):
        ctx = _prepare(plan, patient, history, now, effective, out)
        if ctx is not None:
            out.extend(_rule_vial(plan, ctx))
            out.extend(_rule_contraindications(ctx))
            out.extend(_rule_product_mixing(ctx))
            out.extend(_rule_recent_other_toxin(ctx))
            out.extend(_rule_session_max(ctx))
            out.extend(_rule_site_max(ctx))
            out.extend(_rule_muscle_max(ctx))
            out.extend(_rule_label_dose(ctx))
            out.extend(_rule_off_label(ctx))
            out.extend(_rule_paediatric_max(ctx))
            out.extend(_rule_cumulative(ctx))
            out.extend(_rule_min_interval(ctx))
            out.extend(_rule_distant_spread(ctx))
    unique = list(dict.fromkeys(out))
    return sorted(unique, key=lambda f: _SEVERITY_RANK[f.severity])
