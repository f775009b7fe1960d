"""Indications, their labelled dosing, and the limits the safety engine enforces.

Two reference files, both carried from the clinical reference (``clinical.json``) with a source
and a status on every figure:

- ``reference/indications.json``: the twelve Glabella indication ids (display name, cosmetic or
  not), every product x indication x population dosing entry of the reference, and the sourced
  recall intervals (typical duration of effect / retreatment schedule).
- ``reference/limits.json``: cumulative limits, per-session / per-site / per-muscle maximums,
  paediatric per-kg + absolute ceilings, minimum intervals, contraindications and warnings, plus
  the reference figures deliberately *not* enforced (with the reason).

Everything is keyed by the product *family* (the generic name, e.g. ``onabotulinumtoxinA`` for
both Botox and Botox Cosmetic), because the labels' limits and intervals follow the toxin, not the
carton. Units are never converted between families.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from types import MappingProxyType
from typing import Any, Literal

from glabella.clinical import _reference
from glabella.clinical._reference import Status

__all__ = [
    "ADULT_AGE_YEARS",
    "INDICATION_IDS",
    "AgeGroup",
    "Citation",
    "ContraindicationRule",
    "CumulativeLimit",
    "Dosing",
    "Indication",
    "Limits",
    "MinInterval",
    "MuscleLimit",
    "NotApplied",
    "PaediatricLimit",
    "Population",
    "Recall",
    "SessionLimit",
    "SiteLimit",
    "UnitsGuard",
    "UnknownIndication",
    "display_name",
    "dosing",
    "exists",
    "get",
    "indications",
    "is_cosmetic",
    "limits",
    "population_for_age",
    "recall",
]

INDICATION_IDS: tuple[str, ...] = (
    "glabellar-lines",
    "lateral-canthal-lines",
    "forehead-lines",
    "platysma-bands",
    "chronic-migraine",
    "axillary-hyperhidrosis",
    "blepharospasm",
    "cervical-dystonia",
    "upper-limb-spasticity",
    "lower-limb-spasticity",
    "overactive-bladder",
    "other",
)

ADULT_AGE_YEARS = 18
"""Adult from this age (years). The reference's paediatric rows say "2-17 y"."""

Population = Literal["adult", "paediatric", "all"]
AgeGroup = Literal["adult", "paediatric"]
Severity = Literal["block", "warn", "info"]


class UnknownIndication(KeyError):
    """An indication id that is not one of :data:`INDICATION_IDS`."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "Unknown indication"


# --------------------------------------------------------------------------------------------
# Small typed readers for the JSON (the reference is data; a malformed file must fail loudly).


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: expected a whole number, got {value!r}")
    return value


def _opt_int(value: Any, where: str) -> int | None:
    return None if value is None else _int(value, where)


def _dec(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    result = Decimal(value)
    if not result.is_finite() or result <= 0:
        raise ValueError(f"{where}: expected a positive number, got {value!r}")
    return result


def _opt_dec(value: Any, where: str) -> Decimal | None:
    return None if value is None else _dec(value, where)


def _ids(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a list of source ids, got {value!r}")
    return tuple(_str(v, where) for v in value)


def _indications(value: Any, where: str) -> tuple[str, ...] | None:
    """``"all"`` -> None (every indication); a list -> those ids (each must be known)."""
    if value == "all":
        return None
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}: expected 'all' or a list of indication ids, got {value!r}")
    result = tuple(_str(v, where) for v in value)
    for ident in result:
        if ident not in INDICATION_IDS:
            raise ValueError(f"{where}: unknown indication id {ident!r}")
    return result


def _population(value: Any, where: str) -> Population:
    if value == "adult":
        return "adult"
    if value == "paediatric":
        return "paediatric"
    if value == "all":
        return "all"
    raise ValueError(f"{where}: population must be adult, paediatric or all, got {value!r}")


def _severity(value: Any, where: str) -> Severity:
    if value == "block":
        return "block"
    if value == "warn":
        return "warn"
    if value == "info":
        return "info"
    raise ValueError(f"{where}: severity must be block, warn or info, got {value!r}")


# --------------------------------------------------------------------------------------------
# Citations


@dataclass(frozen=True, slots=True)
class Citation:
    """Where a figure comes from: what it says (``basis``), its source ids and its status.

    ``origin`` names where the figure sits in the shared clinical reference, so that a test can
    check it has not drifted from it.
    """

    basis: str
    status: Status
    sources: tuple[str, ...]
    origin: str = ""

    def text(self) -> str:
        """Human-readable citation, e.g. ``"Botox blepharospasm ... [S3] (confirmed)"``."""
        ids = ", ".join(self.sources) if self.sources else "no source in the reference"
        return f"{self.basis} [{ids}] ({self.status})"


def _citation(row: Mapping[str, Any], where: str) -> Citation:
    return Citation(
        basis=_str(row["basis"], f"{where}.basis"),
        status=_reference.status(row["status"]),
        sources=_ids(row["sources"], f"{where}.sources"),
        origin=str(row.get("from", "")),
    )


# --------------------------------------------------------------------------------------------
# Indications and labelled dosing


@dataclass(frozen=True, slots=True)
class Indication:
    """One of the twelve indications a session is charted under."""

    id: str
    name: str
    cosmetic: bool


@dataclass(frozen=True, slots=True)
class Dosing:
    """One labelled dosing entry (product x indication x population) from the reference.

    ``labelled_max_units`` is the top of the labelled dose for the session, taken from the entry's
    own figures (``total_units``; the largest of ``dose_options``; the top of ``range_units``);
    None when the entry gives no total (per-kg entries, initial doses, trial means).
    ``raw`` is the complete reference entry, every field as carried over.
    """

    product_id: str
    generic: str
    indication_ids: tuple[str, ...]
    label: str
    population: str
    age_min_years: int
    age_below_years: int | None
    route: str
    status: Status
    sources: tuple[str, ...]
    labelled_max_units: Decimal | None
    labelled_dose_text: str
    combination_note: str
    min_retreatment_days: int | None
    raw: Mapping[str, Any]

    def applies_to_age(self, age_years: int) -> bool:
        """Whether a patient of this age (whole years) is in the entry's population."""
        if age_years < self.age_min_years:
            return False
        return self.age_below_years is None or age_years < self.age_below_years

    @property
    def citation(self) -> Citation:
        return Citation(
            basis=f"{self.product_id} {self.label} ({self.population}) labelled dosing",
            status=self.status,
            sources=self.sources,
            origin=f"indications[{self.product_id}/{self.label}/{self.population}]",
        )


def _fmt(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral_value() else str(value)


def _labelled(row: Mapping[str, Any], where: str) -> tuple[Decimal | None, str]:
    if row.get("total_units") is not None:
        total = _dec(row["total_units"], f"{where}.total_units")
        text = f"{_fmt(total)} U"
        if row.get("n_sites") is not None and row.get("units_per_site") is not None:
            per = _dec(row["units_per_site"], f"{where}.units_per_site")
            text += f" ({row['n_sites']} sites x {_fmt(per)} U)"
        return total, text
    if row.get("dose_options"):
        options = [
            _dec(o["total_units"], f"{where}.dose_options") for o in list(row["dose_options"])
        ]
        return max(options), " or ".join(f"{_fmt(o)} U" for o in options)
    if row.get("range_units") is not None:
        low, high = (_dec(v, f"{where}.range_units") for v in list(row["range_units"]))
        return high, f"{_fmt(low)}-{_fmt(high)} U"
    return None, ""


def _combination_note(row: Mapping[str, Any]) -> str:
    notes: list[str] = []
    if row.get("combined_with_gl_total_units") is not None:
        notes.append(
            f"{row['combined_with_gl_total_units']} U when treated together with glabellar lines"
        )
    if row.get("all_three_areas_total_units") is not None:
        notes.append(
            f"{row['all_three_areas_total_units']} U for forehead, glabellar and lateral canthal "
            "lines together"
        )
    ids = row.get("indication_ids")
    if isinstance(ids, list) and len(ids) > 1 and row.get("max_units_per_session") is not None:
        notes.append(
            f"at most {row['max_units_per_session']} U when {row['indication']} are treated "
            "in one session"
        )
    ftp = row.get("follow_the_pain_non_label")
    if isinstance(ftp, Mapping) and ftp.get("max_total_units") is not None:
        notes.append(
            f"the PREEMPT trial protocol (not the label) allowed up to {ftp['max_total_units']} U "
            "with follow-the-pain sites"
        )
    return "; ".join(notes)


def _dosing_row(row: Mapping[str, Any], index: int) -> Dosing:
    where = f"reference/indications.json dosing[{index}]"
    ids = _indications(row["indication_ids"], f"{where}.indication_ids")
    if ids is None:
        raise ValueError(f"{where}: a dosing entry names its indications")
    labelled_max, labelled_text = _labelled(row, where)
    min_days = row.get("min_retreatment_days")
    if min_days is None:
        min_days = row.get("retreatment_interval_days")
    return Dosing(
        product_id=_str(row["product"], f"{where}.product"),
        generic=_str(row["generic"], f"{where}.generic"),
        indication_ids=ids,
        label=_str(row["indication"], f"{where}.indication"),
        population=_str(row["population"], f"{where}.population"),
        age_min_years=_int(row["age_min_years"], f"{where}.age_min_years"),
        age_below_years=_opt_int(row["age_below_years"], f"{where}.age_below_years"),
        route=_str(row["route"], f"{where}.route"),
        status=_reference.status(row["status"]),
        sources=_ids(row["sources"], f"{where}.sources"),
        labelled_max_units=labelled_max,
        labelled_dose_text=labelled_text,
        combination_note=_combination_note(row),
        min_retreatment_days=_opt_int(min_days, f"{where}.min_retreatment_days"),
        raw=MappingProxyType(dict(row)),
    )


@dataclass(frozen=True, slots=True)
class Recall:
    """Sourced usual recall interval for a product family and indication (non-cosmetic)."""

    indication: str
    generic: str
    days: int
    citation: Citation


@dataclass(frozen=True, slots=True)
class _IndicationData:
    indications: tuple[Indication, ...]
    dosing: tuple[Dosing, ...]
    recall: tuple[Recall, ...]


@cache
def _indication_data() -> _IndicationData:
    data = _reference.load("indications")
    items = tuple(
        Indication(
            id=_str(row["id"], "indications.id"),
            name=_str(row["name"], "indications.name"),
            cosmetic=bool(row["cosmetic"]),
        )
        for row in data["indications"]
    )
    if tuple(i.id for i in items) != INDICATION_IDS:
        raise ValueError(
            "reference/indications.json: indication ids differ from INDICATION_IDS: "
            f"{[i.id for i in items]}"
        )
    rows = tuple(_dosing_row(row, n) for n, row in enumerate(data["dosing"]))
    recalls = []
    for n, row in enumerate(data["recall"]):
        where = f"reference/indications.json recall[{n}]"
        ident = _str(row["indication"], f"{where}.indication")
        if ident not in INDICATION_IDS:
            raise ValueError(f"{where}: unknown indication {ident!r}")
        recalls.append(
            Recall(
                indication=ident,
                generic=_str(row["generic"], f"{where}.generic"),
                days=_int(row["days"], f"{where}.days"),
                citation=_citation(row, where),
            )
        )
    return _IndicationData(items, rows, tuple(recalls))


def indications() -> list[Indication]:
    """The twelve indications, in the stable order of :data:`INDICATION_IDS`."""
    return list(_indication_data().indications)


def exists(indication_id: str) -> bool:
    """Whether ``indication_id`` is one of :data:`INDICATION_IDS`."""
    return isinstance(indication_id, str) and indication_id in INDICATION_IDS


def display_name(indication_id: str) -> str:
    """The indication's name for people; an id not in the reference (one recorded before it was
    renamed, or "") is shown as it was recorded."""
    return get(indication_id).name if exists(indication_id) else indication_id


def get(indication_id: str) -> Indication:
    """The indication with this id; an unknown id raises :class:`UnknownIndication`."""
    for item in _indication_data().indications:
        if item.id == indication_id:
            return item
    raise UnknownIndication(
        f"Unknown indication {indication_id!r}: valid indications are {', '.join(INDICATION_IDS)}"
    )


def is_cosmetic(indication_id: str) -> bool:
    """Whether the indication is cosmetic (unknown ids raise :class:`UnknownIndication`)."""
    return get(indication_id).cosmetic


def dosing(indication_id: str | None = None, generic: str | None = None) -> list[Dosing]:
    """Labelled dosing entries, optionally only those for an indication and/or product family."""
    return [
        row
        for row in _indication_data().dosing
        if (indication_id is None or indication_id in row.indication_ids)
        and (generic is None or row.generic == generic)
    ]


def recall(indication_id: str, generic: str) -> Recall | None:
    """The sourced usual recall interval for this indication and family, if there is one."""
    for row in _indication_data().recall:
        if row.indication == indication_id and row.generic == generic:
            return row
    return None


def population_for_age(age_years: int) -> Literal["adult", "paediatric"]:
    """``"adult"`` from :data:`ADULT_AGE_YEARS`, else ``"paediatric"``."""
    return "adult" if age_years >= ADULT_AGE_YEARS else "paediatric"


# --------------------------------------------------------------------------------------------
# Limits


def _applies(
    rule_generic: str | None,
    rule_population: Population,
    rule_indications: tuple[str, ...] | None,
    generic: str,
    population: Literal["adult", "paediatric"] | None,
    indication: str | None,
) -> bool:
    if rule_generic is not None and rule_generic != generic:
        return False
    if population is not None and rule_population not in ("all", population):
        return False
    if rule_indications is None:
        return True
    return indication is not None and indication in rule_indications


@dataclass(frozen=True, slots=True)
class UnitsGuard:
    """Software sanity bound on one injection point (not a clinical limit)."""

    max_units: Decimal
    citation: Citation


@dataclass(frozen=True, slots=True)
class CumulativeLimit:
    """A ceiling on all doses of a family over a rolling window.

    ``window_days`` None means the clinic's setting (84 or 90 days for "3 months").
    Either ``max_units`` (a fixed ceiling) or ``max_units_per_kg`` + ``max_units_abs`` (the lesser
    of the two) is set.
    """

    id: str
    rule: str
    generic: str
    population: Population
    indications: tuple[str, ...] | None
    max_units: Decimal | None
    max_units_per_kg: Decimal | None
    max_units_abs: Decimal | None
    window_days: int | None
    citation: Citation

    def applies(self, generic: str, population: AgeGroup | None, indication: str | None) -> bool:
        return _applies(
            self.generic, self.population, self.indications, generic, population, indication
        )


@dataclass(frozen=True, slots=True)
class SessionLimit:
    """A ceiling on one session's dose of a family."""

    id: str
    rule: str
    generic: str
    population: Population
    indications: tuple[str, ...] | None
    max_units: Decimal
    citation: Citation

    def applies(self, generic: str, population: AgeGroup | None, indication: str | None) -> bool:
        return _applies(
            self.generic, self.population, self.indications, generic, population, indication
        )


@dataclass(frozen=True, slots=True)
class SiteLimit:
    """A ceiling on the units at one injection site."""

    id: str
    rule: str
    severity: Severity
    generic: str
    population: Population
    indications: tuple[str, ...] | None
    max_units_per_site: Decimal
    citation: Citation

    def applies(self, generic: str, population: AgeGroup | None, indication: str | None) -> bool:
        return _applies(
            self.generic, self.population, self.indications, generic, population, indication
        )


@dataclass(frozen=True, slots=True)
class MuscleLimit:
    """A ceiling on the units into one muscle (both sides together)."""

    id: str
    rule: str
    severity: Severity
    generic: str
    population: Population
    indications: tuple[str, ...] | None
    muscle: str
    muscle_aliases: tuple[str, ...]
    max_units: Decimal
    citation: Citation

    def applies(self, generic: str, population: AgeGroup | None, indication: str | None) -> bool:
        return _applies(
            self.generic, self.population, self.indications, generic, population, indication
        )

    def matches_muscle(self, muscle: str) -> bool:
        name = " ".join(muscle.lower().replace("-", " ").split())
        return any(alias == name or alias in name.split() for alias in self.muscle_aliases) or (
            self.muscle in name
        )


@dataclass(frozen=True, slots=True)
class PaediatricLimit:
    """The lesser of a per-kg and an absolute ceiling, for a child (below 18 y).

    ``scope`` is ``"session"`` (the plan's total) or ``"per-limb"`` (each side's total).
    """

    id: str
    rule: str
    generic: str
    indications: tuple[str, ...] | None
    scope: Literal["session", "per-limb"]
    max_units_per_kg: Decimal
    max_units_abs: Decimal
    citation: Citation

    def applies(self, generic: str, indication: str | None) -> bool:
        return _applies(self.generic, "paediatric", self.indications, generic, None, indication)


@dataclass(frozen=True, slots=True)
class MinInterval:
    """The shortest labelled interval between two treatments (same family and indication)."""

    id: str
    rule: str
    generic: str
    indications: tuple[str, ...]
    population: Population
    days: int
    citation: Citation


@dataclass(frozen=True, slots=True)
class ContraindicationRule:
    """A patient flag checked against the labels (contraindication, warning, interaction).

    ``flag`` is the patient flag (``allergy-<product_id>`` stands for every product id);
    ``allergen`` is set for excipient allergies; ``generic`` / ``indications`` narrow where the
    rule applies (None: every product / indication).
    """

    id: str
    rule: str
    severity: Severity
    flag: str | None
    allergen: str | None
    generic: str | None
    indications: tuple[str, ...] | None
    applies_to: str
    text: str
    citation: Citation


@dataclass(frozen=True, slots=True)
class NotApplied:
    """A reference figure the engine does not enforce, and why."""

    figure: str
    status: Status
    sources: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class Limits:
    """Everything in ``reference/limits.json``, typed."""

    units_guard: UnitsGuard
    cumulative: tuple[CumulativeLimit, ...]
    session: tuple[SessionLimit, ...]
    site: tuple[SiteLimit, ...]
    muscle: tuple[MuscleLimit, ...]
    paediatric: tuple[PaediatricLimit, ...]
    min_interval: tuple[MinInterval, ...]
    contraindications: tuple[ContraindicationRule, ...]
    warnings: tuple[ContraindicationRule, ...]
    not_applied: tuple[NotApplied, ...]

    def min_intervals(
        self,
        indication: str,
        generic: str,
        population: Literal["adult", "paediatric"] | None = None,
    ) -> list[MinInterval]:
        """Interval entries for this indication and family (and population, when given)."""
        return [
            row
            for row in self.min_interval
            if row.generic == generic
            and indication in row.indications
            and (population is None or row.population in ("all", population))
        ]

    def label_ceiling(self, generic: str) -> Decimal | None:
        """The loosest labelled per-session ceiling any dose of this family can have.

        The largest of the family's session maximums and adult cumulative maximums (a session
        cannot exceed a cumulative ceiling either). None when the reference gives none.
        """
        figures = [row.max_units for row in self.session if row.generic == generic]
        figures += [
            row.max_units
            for row in self.cumulative
            if row.generic == generic and row.max_units is not None and row.indications is None
        ]
        return max(figures) if figures else None


def _cumulative(row: Mapping[str, Any], where: str) -> CumulativeLimit:
    window = row.get("window_days", row.get("window"))
    window_days = None if window == "settings" else _int(window, f"{where}.window_days")
    return CumulativeLimit(
        id=_str(row["id"], f"{where}.id"),
        rule=_str(row["rule"], f"{where}.rule"),
        generic=_str(row["generic"], f"{where}.generic"),
        population=_population(row["population"], f"{where}.population"),
        indications=_indications(row["indications"], f"{where}.indications"),
        max_units=_opt_dec(row.get("max_units"), f"{where}.max_units"),
        max_units_per_kg=_opt_dec(row.get("max_units_per_kg"), f"{where}.max_units_per_kg"),
        max_units_abs=_opt_dec(row.get("max_units_abs"), f"{where}.max_units_abs"),
        window_days=window_days,
        citation=_citation(row, where),
    )


def _session(row: Mapping[str, Any], where: str) -> SessionLimit:
    return SessionLimit(
        id=_str(row["id"], f"{where}.id"),
        rule=_str(row["rule"], f"{where}.rule"),
        generic=_str(row["generic"], f"{where}.generic"),
        population=_population(row["population"], f"{where}.population"),
        indications=_indications(row["indications"], f"{where}.indications"),
        max_units=_dec(row["max_units"], f"{where}.max_units"),
        citation=_citation(row, where),
    )


def _site(row: Mapping[str, Any], where: str) -> SiteLimit:
    return SiteLimit(
        id=_str(row["id"], f"{where}.id"),
        rule=_str(row["rule"], f"{where}.rule"),
        severity=_severity(row["severity"], f"{where}.severity"),
        generic=_str(row["generic"], f"{where}.generic"),
        population=_population(row["population"], f"{where}.population"),
        indications=_indications(row["indications"], f"{where}.indications"),
        max_units_per_site=_dec(row["max_units_per_site"], f"{where}.max_units_per_site"),
        citation=_citation(row, where),
    )


def _muscle(row: Mapping[str, Any], where: str) -> MuscleLimit:
    return MuscleLimit(
        id=_str(row["id"], f"{where}.id"),
        rule=_str(row["rule"], f"{where}.rule"),
        severity=_severity(row["severity"], f"{where}.severity"),
        generic=_str(row["generic"], f"{where}.generic"),
        population=_population(row["population"], f"{where}.population"),
        indications=_indications(row["indications"], f"{where}.indications"),
        muscle=_str(row["muscle"], f"{where}.muscle"),
        muscle_aliases=tuple(_str(a, f"{where}.muscle_aliases") for a in row["muscle_aliases"]),
        max_units=_dec(row["max_units"], f"{where}.max_units"),
        citation=_citation(row, where),
    )


def _paediatric(row: Mapping[str, Any], where: str) -> PaediatricLimit:
    scope = row["scope"]
    if scope not in ("session", "per-limb"):
        raise ValueError(f"{where}.scope: expected session or per-limb, got {scope!r}")
    return PaediatricLimit(
        id=_str(row["id"], f"{where}.id"),
        rule=_str(row["rule"], f"{where}.rule"),
        generic=_str(row["generic"], f"{where}.generic"),
        indications=_indications(row["indications"], f"{where}.indications"),
        scope="session" if scope == "session" else "per-limb",
        max_units_per_kg=_dec(row["max_units_per_kg"], f"{where}.max_units_per_kg"),
        max_units_abs=_dec(row["max_units_abs"], f"{where}.max_units_abs"),
        citation=_citation(row, where),
    )


def _min_interval(row: Mapping[str, Any], where: str) -> MinInterval:
    ids = _indications(row["indications"], f"{where}.indications")
    if ids is None:
        raise ValueError(f"{where}: a minimum interval names its indications")
    return MinInterval(
        id=_str(row["id"], f"{where}.id"),
        rule=_str(row["rule"], f"{where}.rule"),
        generic=_str(row["generic"], f"{where}.generic"),
        indications=ids,
        population=_population(row["population"], f"{where}.population"),
        days=_int(row["days"], f"{where}.days"),
        citation=_citation(row, where),
    )


def _patient_rule(row: Mapping[str, Any], where: str) -> ContraindicationRule:
    raw_indications = row.get("indications", "all")
    return ContraindicationRule(
        id=_str(row["id"], f"{where}.id"),
        rule=_str(row["rule"], f"{where}.rule"),
        severity=_severity(row["severity"], f"{where}.severity"),
        flag=None if row.get("flag") is None else _str(row["flag"], f"{where}.flag"),
        allergen=None if row.get("allergen") is None else _str(row["allergen"], f"{where}"),
        generic=None if row.get("generic") is None else _str(row["generic"], f"{where}"),
        indications=_indications(raw_indications, f"{where}.indications"),
        applies_to=_str(row["applies_to"], f"{where}.applies_to"),
        text=_str(row["text"], f"{where}.text"),
        citation=_citation(row, where),
    )


def _rows(data: Mapping[str, Any], key: str) -> Sequence[Mapping[str, Any]]:
    rows = data[key]
    if not isinstance(rows, list):
        raise ValueError(f"reference/limits.json: {key} must be a list")
    return rows


@cache
def limits() -> Limits:
    """The typed content of ``reference/limits.json`` (read once)."""
    data = _reference.load("limits")
    w = "reference/limits.json"
    guard = data["absurd_units_per_point"]
    return Limits(
        units_guard=UnitsGuard(
            max_units=_dec(guard["max_units"], f"{w} absurd_units_per_point"),
            citation=_citation(guard, f"{w} absurd_units_per_point"),
        ),
        cumulative=tuple(
            _cumulative(r, f"{w} cumulative[{n}]") for n, r in enumerate(_rows(data, "cumulative"))
        ),
        session=tuple(
            _session(r, f"{w} session[{n}]") for n, r in enumerate(_rows(data, "session"))
        ),
        site=tuple(_site(r, f"{w} site[{n}]") for n, r in enumerate(_rows(data, "site"))),
        muscle=tuple(_muscle(r, f"{w} muscle[{n}]") for n, r in enumerate(_rows(data, "muscle"))),
        paediatric=tuple(
            _paediatric(r, f"{w} paediatric[{n}]") for n, r in enumerate(_rows(data, "paediatric"))
        ),
        min_interval=tuple(
            _min_interval(r, f"{w} min_interval[{n}]")
            for n, r in enumerate(_rows(data, "min_interval"))
        ),
        contraindications=tuple(
            _patient_rule(r, f"{w} contraindications[{n}]")
            for n, r in enumerate(_rows(data, "contraindications"))
        ),
        warnings=tuple(
            _patient_rule(r, f"{w} warnings[{n}]") for n, r in enumerate(_rows(data, "warnings"))
        ),
        not_applied=tuple(
            NotApplied(
                figure=_str(r["figure"], f"{w} not_applied[{n}].figure"),
                status=_reference.status(r["status"]),
                sources=_ids(r["sources"], f"{w} not_applied[{n}].sources"),
                reason=_str(r["reason"], f"{w} not_applied[{n}].reason"),
            )
            for n, r in enumerate(_rows(data, "not_applied"))
        ),
    )
