"""The CSV import: check every row, then write all of it or nothing.

``run_import(actor, kind, files, options)`` reads the file(s) (:mod:`.reading`), checks every
row of every file and collects *every* problem (by file, row and column) without writing
anything, then, unless it is a dry run or there is a problem, writes everything in ONE
transaction through the services (``patients.imported``, ``inventory.imported``,
``charting.imported``), each write with its audit row. A problem found while writing (a rule a
service enforces that the check did not foresee) rolls back the whole import: the database is
left exactly as it was, and the problem is reported like the others.

What is already there is not imported again, so importing the same file twice creates nothing
the second time (the report says how many rows were already there):

- a patient with the same reference (``patient_ref``) or the same name and date of birth;
  rows of other files that use the reference then refer to that patient;
- a history item with the same patient, kind, code, detail, date, product, units and area;
- a lot with the same product and lot number (and the same expiry and vial size; different
  ones are a problem: a lot has one expiry);
- a treatment with the same reference for the same patient and date, or, whatever its
  reference, a treatment of the same patient on the same date with the same product and the
  same total units.

Every run that writes (or fails to) is kept as an :class:`~glabella.interop.models.ImportRun`
with the file's SHA-256, the column mapping used, the counts and every problem. A dry run from
the command line writes nothing at all; the upload page keeps its dry-run report as an
``ImportRun`` with ``dry_run`` set (a report, no patient data).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.models import Clinic, Membership, User
from glabella.charting import imported as charting_imported
from glabella.charting.models import Depth, Status, TreatmentSession, live_units
from glabella.charting.services import max_units_per_point
from glabella.clinical import catalogue
from glabella.interop.imports import values as v
from glabella.interop.imports.formats import EXPORT_FILES, KINDS, REQUIRED, VOID_PREFIX
from glabella.interop.imports.reading import Problem, Table, Unreadable, read_table
from glabella.interop.models import ImportRun, JobState
from glabella.inventory import imported as inventory_imported
from glabella.inventory.gs1 import normalize_lot
from glabella.inventory.models import Lot
from glabella.patients import imported as patients_imported
from glabella.patients import screening
from glabella.patients.models import HistoryItem, HistoryKind, Patient, name_key
from glabella.patients.services import (
    EARLIEST_BIRTH,
    check_plausible_units,
    clean_patient,  # the same checks as the patient form and API
    parse_units,
)
from glabella.scheduling import recalls

Progress = Callable[[int, int], None]

LABELS = {
    "patients": ("patient", "patients"),
    "history": ("history item", "history items"),
    "lots": ("lot", "lots"),
    "treatments": ("treatment", "treatments"),
}


@dataclass
class Options:
    dry_run: bool = False
    day_first: bool = False
    encoding: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)


@dataclass
class Report:
    """What an import found and did. ``ok``: no problem (a dry run would import)."""

    kind: str
    dry_run: bool
    sha256: str = ""
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    new: Counter[str] = field(default_factory=Counter)  # would be / were created, by kind
    already: Counter[str] = field(default_factory=Counter)  # already there, by kind
    mapping: dict[str, dict[str, str]] = field(default_factory=dict)  # file -> {field: header}
    ignored: dict[str, list[str]] = field(default_factory=dict)  # file -> headers not read
    written: bool = False
    run: ImportRun | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        parts = []
        for kind in KINDS:
            one, many = LABELS[kind]
            n, a = self.new.get(kind, 0), self.already.get(kind, 0)
            verb = "imported" if self.written else "to import"
            if n:
                parts.append(f"{n} {one if n == 1 else many} {verb}")
            if a:
                parts.append(f"{a} {one if a == 1 else many} already there")
        return "; ".join(parts) or "nothing to import"


# --- plans: what one row (or group of rows) will write ------------------------------------------


@dataclass
class PatientPlan:
    row: int
    file: str
    ref: str
    data: dict[str, Any]
    existing: Patient | None = None
    link: bool = False  # record REF on the existing patient
    patient: Patient | None = None  # once written (or the existing one)


PatientKey = Patient | PatientPlan


@dataclass
class HistoryPlan:
    row: int
    file: str
    patient: PatientKey
    data: dict[str, Any]
    resolved_on: date | None


@dataclass
class LotPlan:
    row: int
    file: str
    product_id: str
    lot_number: str
    expiry: date
    vial_units: int
    gtin: str


@dataclass
class PointRow:
    row: int
    number: int | None
    area: str
    muscle: str
    side: str
    units: Decimal
    depth: str
    diagram: str
    x: Decimal | None
    y: Decimal | None


@dataclass
class SessionPlan:
    rows: list[int]
    file: str
    ref: str
    patient: PatientKey
    treated_on: date
    status: str
    indication: str
    product_id: str
    practitioner: User | None
    practitioner_text: str
    prescriber: User | None
    prescriber_text: str
    clinic: Clinic | None
    clinic_text: str
    lot_number: str
    lot_expiry: date | None
    notes: list[str]
    points: list[PointRow]


def _resolve(key: PatientKey) -> Patient:
    if isinstance(key, Patient):
        return key
    assert key.patient is not None, "patients are written before what refers to them"
    return key.patient


# --- the checker ----------------------------------------------------------------------------------


class Checker:
    """Checks tables against the organization's data (read-only) and plans the writes."""

    def __init__(self, actor: Actor, options: Options, report: Report) -> None:
        self.actor = actor
        self.org = actor.organization
        self.options = options
        self.report = report
        self.today = timezone.localdate()
        self.patients: list[PatientPlan] = []
        self.history: list[HistoryPlan] = []
        self.lots: list[LotPlan] = []
        self.sessions: list[SessionPlan] = []
        self.refs: dict[str, PatientKey] = {}  # patient_ref of this import -> patient
        self._org_by_ref: dict[str, int] | None = None
        self._org_by_name: dict[tuple[str, date], int] | None = None
        self._patient_cache: dict[int, Patient] = {}
        self._lots: dict[tuple[str, str], tuple[date, int]] | None = None

    # problems ------------------------------------------------------------------------------
    def problem(self, t: Table, row: int | None, fld: str, message: str) -> None:
        self.report.problems.append(Problem(row, t.column(fld) if fld else "", message, t.filename))

    def warn(self, t: Table, row: int | None, fld: str, message: str) -> None:
        self.report.warnings.append(Problem(row, t.column(fld) if fld else "", message, t.filename))

    def cell(
        self,
        t: Table,
        number: int,
        row: dict[str, str],
        fld: str,
        parse: Callable[..., Any],
        *a: Any,
    ) -> Any:
        """PARSE the cell, or record the problem and return None."""
        try:
            return parse(row.get(fld, ""), *a)
        except v.BadValue as exc:
            self.problem(t, number, fld, str(exc))
            return None

    def required(self, t: Table, number: int, row: dict[str, str]) -> bool:
        ok = True
        for fld in REQUIRED[t.kind]:
            if not row.get(fld, "").strip():
                self.problem(t, number, fld, f"Empty: every row needs a {t.column(fld)}.")
                ok = False
        return ok

    def common(
        self,
        t: Table,
        number: int,
        row: dict[str, str],
        seen: dict[tuple[str, ...], int],
        *,
        repeats_are_distinct: bool = False,
    ) -> bool:
        """Rows that cannot be read, and rows repeated word for word (refused, naming the
        first) unless REPEATS_ARE_DISTINCT: a treatment file without point numbers lists
        one row per injection, and three equal rows are three injections, never one."""
        if row.pop("__extra__", None):
            self.problem(
                t,
                number,
                "",
                "This row has more cells than the header has columns (a value with a comma or "
                "semicolon in it needs quotes). Check the row in the file.",
            )
            return False
        key = tuple(row.get(f, "") for f in sorted(row))
        if repeats_are_distinct:
            return True
        if key in seen:
            self.problem(t, number, "", f"This row is the same as row {seen[key]}: remove one.")
            return False
        seen[key] = number
        return True

    def date(
        self, t: Table, number: int, row: dict[str, str], fld: str, *, past: bool = True
    ) -> date | None:
        if not row.get(fld, "").strip():
            return None
        d = self.cell(
            t, number, row, fld, lambda s: v.parse_date(s, day_first=self.options.day_first)
        )
        if d is not None and past and d > self.today:
            self.problem(t, number, fld, f"{d:%Y-%m-%d} is in the future.")
            return None
        return d

    # the organization's patients -----------------------------------------------------------------
    def _load_patients(self) -> None:
        if self._org_by_ref is not None:
            return
        self._org_by_ref, self._org_by_name = {}, {}
        rows = Patient.objects.for_org(self.org).values_list(
            "pk", "import_ref", "name_key", "date_of_birth"
        )
        for pk, ref, key, dob in rows.iterator(chunk_size=2000):
            if ref:
                self._org_by_ref[ref] = pk
            self._org_by_name[(key, dob)] = pk

    def _patient(self, pk: int) -> Patient:
        if pk not in self._patient_cache:
            # scoped: pk from this organization's own patient index (scoped rows above)
            self._patient_cache[pk] = Patient.objects.get(pk=pk)
        return self._patient_cache[pk]

    def find_patient(self, ref: str) -> PatientKey | None:
        if ref in self.refs:
            return self.refs[ref]
        self._load_patients()
        assert self._org_by_ref is not None
        pk = self._org_by_ref.get(ref)
        return self._patient(pk) if pk else None

    @staticmethod
    def born(key: PatientKey) -> date:
        return key.date_of_birth if isinstance(key, Patient) else key.data["date_of_birth"]

    # patients ------------------------------------------------------------------------------------
    def check_patients(self, t: Table) -> None:
        self._load_patients()
        assert self._org_by_ref is not None and self._org_by_name is not None
        seen: dict[tuple[str, ...], int] = {}
        by_ref: dict[str, int] = {}
        by_name: dict[tuple[str, date], int] = {}
        for number, row in t.rows:
            if not self.common(t, number, row, seen) or not self.required(t, number, row):
                continue
            before = len(self.report.problems)
            ref = row["patient_ref"].strip()
            dob = self.date(t, number, row, "date_of_birth")
            if dob is not None and dob < EARLIEST_BIRTH:
                self.problem(
                    t, number, "date_of_birth", "The date of birth is before 1900. Check the year."
                )
            data: dict[str, Any] = {
                "given_name": row["given_name"],
                "family_name": row["family_name"],
                "date_of_birth": dob,
                "sex": self.cell(t, number, row, "sex", v.parse_sex),
                "phone": row["phone"],
                "email": row["email"],
                "address": row["address"],
                "preferred_channel": self.cell(
                    t, number, row, "preferred_channel", v.parse_channel
                ),
                "reminder_consent": self.cell(t, number, row, "reminder_consent", v.parse_bool),
            }
            weight = row["weight_kg"].strip()
            if weight:
                data["weight_kg"] = self.cell(
                    t, number, row, "weight_kg", v.parse_decimal, "weight in kilograms"
                )
            if len(self.report.problems) > before:
                continue
            try:
                clean = clean_patient(data, self.today, self.org.pk)
            except ValidationError as exc:
                for fld, messages in exc.message_dict.items():
                    self.problem(t, number, fld if fld in t.mapping else "", " ".join(messages))
                continue
            clean["clinical_notes"] = row["clinical_notes"]
            clean.pop("home_clinic", None)
            key = (name_key(clean["given_name"], clean["family_name"]), clean["date_of_birth"])
            if ref and ref in by_ref:
                self.problem(
                    t,
                    number,
                    "patient_ref",
                    f"Reference {ref} is also on row {by_ref[ref]}: each patient once.",
                )
                continue
            if key in by_name:
                self.problem(
                    t,
                    number,
                    "family_name",
                    f"{clean['given_name']} {clean['family_name']}, born {dob:%Y-%m-%d}, is "
                    "also on "
                    f"row {by_name[key]}: each patient once.",
                )
                continue
            if ref:
                by_ref[ref] = number
            by_name[key] = number
            plan = PatientPlan(number, t.filename, ref, clean)
            pk_by_ref = self._org_by_ref.get(ref) if ref else None
            pk_by_name = self._org_by_name.get(key)
            if pk_by_ref is not None and pk_by_ref != pk_by_name:
                other = self._patient(pk_by_ref)
                self.problem(
                    t,
                    number,
                    "patient_ref",
                    f"Reference {ref} was imported before for {other.full_name}, born "
                    f"{other.date_of_birth:%Y-%m-%d}, not for {clean['given_name']} "
                    f"{clean['family_name']}. Check the reference.",
                )
                continue
            if pk_by_name is not None:
                existing = self._patient(pk_by_name)
                plan.existing = plan.patient = existing
                if ref and not existing.import_ref:
                    plan.link = True
                elif ref and existing.import_ref != ref:
                    self.warn(
                        t,
                        number,
                        "patient_ref",
                        f"{existing.full_name} is already registered (imported before with "
                        f"reference {existing.import_ref}); this file's rows for reference {ref} "
                        "are matched to that patient.",
                    )
                self.report.already["patients"] += 1
            else:
                self.report.new["patients"] += 1
            self.patients.append(plan)
            if ref:
                self.refs[ref] = plan.existing or plan

    # history -------------------------------------------------------------------------------------
    def check_history(self, t: Table) -> None:
        seen: dict[tuple[str, ...], int] = {}
        existing: dict[int, set[tuple[Any, ...]]] | None = None
        kinds = {v.norm(k): k for k in HistoryKind.values} | {
            v.norm(label): k for k, label in HistoryKind.choices
        }
        planned: set[tuple[Any, ...]] = set()
        for number, row in t.rows:
            if not self.common(t, number, row, seen) or not self.required(t, number, row):
                continue
            before = len(self.report.problems)
            ref = row["patient_ref"].strip()
            patient = self.find_patient(ref)
            if patient is None:
                self.problem(
                    t,
                    number,
                    "patient_ref",
                    f"No patient with reference {ref}: import the patients file first, or "
                    "check the reference.",
                )
                continue
            kind = kinds.get(v.norm(row["kind"]))
            if kind is None:
                self.problem(
                    t,
                    number,
                    "kind",
                    f"“{row['kind']}” is not a kind of history. Use one of: "
                    f"{', '.join(HistoryKind.values)}.",
                )
                continue
            code = row["code"].strip()
            if (kind, code) not in screening.BY_KEY:
                codes = [c.code for c in screening.CODES if c.kind == kind]
                self.problem(
                    t,
                    number,
                    "code",
                    f"“{code}” is not a {kind} code. Use one of: {', '.join(codes)}.",
                )
                continue
            detail = row["detail"]
            if code in ("other", "other-neuromuscular", "other-nm-drug") and not detail.strip():
                self.problem(t, number, "detail", "Say what it is (a code “other” needs a detail).")
            data: dict[str, Any] = {"kind": kind, "code": code, "detail": detail}
            if kind == HistoryKind.OUTSIDE_TREATMENT:
                treated_on = self.date(t, number, row, "treated_on")
                if treated_on is None and not row["treated_on"].strip():
                    self.problem(t, number, "treated_on", "Enter the date of the treatment.")
                elif treated_on is not None and treated_on < self.born(patient):
                    self.problem(
                        t, number, "treated_on", "That date is before the patient was born."
                    )
                product = self.cell(t, number, row, "product", v.parse_product)
                units = None
                try:
                    units = parse_units(row["units"])
                    if product:
                        check_plausible_units(units, product)
                except ValidationError as exc:
                    self.problem(
                        t, number, "units", " ".join(exc.message_dict.get("units", exc.messages))
                    )
                if not row["area"].strip():
                    self.problem(t, number, "area", "Say where it was injected.")
                indication = self.cell(t, number, row, "indication", v.parse_indication)
                data |= {
                    "treated_on": treated_on,
                    "product_id": product,
                    "units": units,
                    "area": row["area"].strip(),
                    "indication": indication,
                }
            resolved_on = self.date(t, number, row, "resolved_on")
            if len(self.report.problems) > before:
                continue
            sig = (
                kind,
                code,
                detail.strip()[:500],
                data.get("treated_on"),
                data.get("product_id") or "",
                data.get("units"),
                data.get("area", "")[:100],
            )
            if isinstance(patient, Patient):
                if existing is None:
                    existing = self._existing_history()
                if sig in existing.get(patient.pk, set()):
                    self.report.already["history"] += 1
                    continue
            key = (id(patient), *sig)
            if key in planned:
                self.problem(
                    t, number, "", "The same history item is on an earlier row: remove one."
                )
                continue
            planned.add(key)
            self.history.append(HistoryPlan(number, t.filename, patient, data, resolved_on))
            self.report.new["history"] += 1

    def _existing_history(self) -> dict[int, set[tuple[Any, ...]]]:
        found: dict[int, set[tuple[Any, ...]]] = defaultdict(set)
        rows = HistoryItem.objects.for_org(self.org).values_list(
            "patient_id", "kind", "code", "detail", "treated_on", "product_id", "units", "area"
        )
        for pid, *sig in rows.iterator(chunk_size=2000):
            found[pid].add(tuple(sig))
        return found

    # lots ----------------------------------------------------------------------------------------
    def _org_lots(self) -> dict[tuple[str, str], tuple[date, int]]:
        if self._lots is None:
            self._lots = {
                (p, n): (e, u)
                for p, n, e, u in Lot.objects.for_org(self.org).values_list(
                    "product_id", "lot_number", "expiry", "vial_units"
                )
            }
        return self._lots

    def check_lots(self, t: Table) -> None:
        seen: dict[tuple[str, ...], int] = {}
        in_file: dict[tuple[str, str], int] = {}
        known = self._org_lots()
        for number, row in t.rows:
            if not self.common(t, number, row, seen) or not self.required(t, number, row):
                continue
            before = len(self.report.problems)
            product = self.cell(t, number, row, "product", v.parse_product)
            lot_number = normalize_lot(row["lot_number"])
            if not lot_number or len(lot_number) > 40:
                self.problem(
                    t,
                    number,
                    "lot_number",
                    "That is not a lot number (1 to 40 letters and digits).",
                )
            expiry = self.date(t, number, row, "expiry", past=False)
            size = self.cell(t, number, row, "vial_units", v.parse_decimal, "vial size in units")
            if product and size is not None:
                sizes = catalogue.product(product).vial_units
                if size != size.to_integral() or int(size) not in sizes:
                    self.problem(
                        t,
                        number,
                        "vial_units",
                        f"{catalogue.product(product).brand} comes in vials of "
                        + ", ".join(f"{u}" for u in sizes)
                        + f" units, not {size}.",
                    )
            gtin = row["gtin"].strip()
            if gtin and (not gtin.isdigit() or len(gtin) > 14):
                self.problem(t, number, "gtin", f"“{gtin}” is not a GTIN (up to 14 digits).")
            if (
                len(self.report.problems) > before
                or product is None
                or expiry is None
                or size is None
            ):
                continue
            key = (product, lot_number)
            if key in in_file:
                self.problem(
                    t,
                    number,
                    "lot_number",
                    f"Lot {lot_number} is also on row {in_file[key]}: each lot once.",
                )
                continue
            in_file[key] = number
            if expiry < self.today:
                self.warn(
                    t,
                    number,
                    "expiry",
                    f"Lot {lot_number} expired on {expiry:%Y-%m-%d}: it is imported as a record "
                    "of past use; it cannot be received into stock.",
                )
            if key in known:
                if known[key] != (expiry, int(size)):
                    e, u = known[key]
                    self.problem(
                        t,
                        number,
                        "expiry",
                        f"Lot {lot_number} is on record with expiry {e:%Y-%m-%d} and {u} U vials; "
                        "this row says otherwise. A lot has one expiry and one vial size.",
                    )
                    continue
                self.report.already["lots"] += 1
                continue
            self.lots.append(
                LotPlan(number, t.filename, product, lot_number, expiry, int(size), gtin)
            )
            self.report.new["lots"] += 1

    # treatments ----------------------------------------------------------------------------------
    def check_treatments(self, t: Table) -> None:
        members = {
            m.user.email.lower(): m
            for m in Membership.objects.filter(
                organization=self.org, is_active=True
            ).select_related("user")
        }
        prescribers = {
            m.user.email.lower()
            for m in Membership.objects.filter(
                organization=self.org, is_active=True, role="prescriber"
            ).select_related("user")
        }
        clinics = {v.norm(c.name): c for c in Clinic.objects.filter(organization=self.org)}
        lots_known = self._org_lots() | {
            (lp.product_id, lp.lot_number): (lp.expiry, lp.vial_units) for lp in self.lots
        }
        seen: dict[tuple[str, ...], int] = {}
        groups: dict[tuple[str, ...], SessionPlan] = {}
        order: list[SessionPlan] = []
        session_fields = (
            "patient_ref",
            "date",
            "status",
            "indication",
            "product",
            "practitioner_email",
            "prescriber_email",
            "clinic",
            "lot_number",
            "lot_expiry",
        )
        first_row: dict[int, dict[str, str]] = {}
        for number, row in t.rows:
            distinct = not row.get("point", "").strip()
            if not self.common(
                t, number, row, seen, repeats_are_distinct=distinct
            ) or not self.required(t, number, row):
                continue
            ref = row["treatment_ref"].strip()
            key = (
                ("ref", ref)
                if ref
                else (
                    "row",
                    row["patient_ref"].strip(),
                    row["date"].strip(),
                    row["product"].strip(),
                    row["indication"].strip(),
                )
            )
            plan = groups.get(key)
            if plan is not None:
                first = first_row[id(plan)]
                clash = [f for f in session_fields if row[f].strip() != first[f].strip()]
                if clash:
                    self.problem(
                        t,
                        number,
                        clash[0],
                        f"Treatment {ref or ''} is on row {plan.rows[0]} with {t.column(clash[0])} "
                        f"“{first[clash[0]]}”, here “{row[clash[0]]}”. The rows of one treatment "
                        "must agree.",
                    )
                    continue
                self._add_point(t, number, row, plan)
                plan.rows.append(number)
                if row["notes"].strip() and row["notes"].strip() not in plan.notes:
                    plan.notes.append(row["notes"].strip())
                continue
            before = len(self.report.problems)
            patient = self.find_patient(row["patient_ref"].strip())
            if patient is None:
                self.problem(
                    t,
                    number,
                    "patient_ref",
                    f"No patient with reference {row['patient_ref']}: import the patients file "
                    "first, or check the reference.",
                )
                continue
            treated_on = self.date(t, number, row, "date")
            if treated_on is not None and treated_on < self.born(patient):
                self.problem(t, number, "date", "That date is before the patient was born.")
            product = self.cell(t, number, row, "product", v.parse_product)
            indication = self.cell(t, number, row, "indication", v.parse_indication)
            status = self.cell(t, number, row, "status", v.parse_status)
            lot_number = normalize_lot(row["lot_number"]) if row["lot_number"].strip() else ""
            lot_expiry = self.date(t, number, row, "lot_expiry", past=False)
            if len(self.report.problems) > before or treated_on is None:
                continue
            assert product is not None and indication is not None and status is not None
            if lot_number and lot_expiry is None and (product, lot_number) in lots_known:
                lot_expiry = lots_known[(product, lot_number)][0]
            if lot_expiry is not None and lot_expiry < treated_on and status != Status.VOIDED:
                self.warn(
                    t,
                    number,
                    "lot_expiry",
                    f"Lot {lot_number} had expired ({lot_expiry:%Y-%m-%d}) on the day of this "
                    "treatment. It is imported as recorded.",
                )
            p_text = row["practitioner_email"].strip()
            practitioner = members.get(p_text.lower())
            if p_text and practitioner is None:
                self.warn(
                    t,
                    number,
                    "practitioner_email",
                    f"{p_text} is not a member of this organization: the treatment is recorded "
                    "under your name, with theirs kept in its notes.",
                )
            s_text = row["prescriber_email"].strip()
            prescriber = members.get(s_text.lower()) if s_text.lower() in prescribers else None
            if s_text and prescriber is None:
                self.warn(
                    t,
                    number,
                    "prescriber_email",
                    f"{s_text} is not a prescriber of this organization: kept in the notes.",
                )
            c_text = row["clinic"].strip()
            clinic = clinics.get(v.norm(c_text)) if c_text else None
            if c_text and clinic is None:
                self.warn(
                    t,
                    number,
                    "clinic",
                    f"There is no clinic called “{c_text}”: recorded at your clinic, with the "
                    "name kept in its notes.",
                )
            plan = SessionPlan(
                rows=[number],
                file=t.filename,
                ref=ref,
                patient=patient,
                treated_on=treated_on,
                status=status,
                indication=indication,
                product_id=product,
                practitioner=practitioner.user if practitioner else None,
                practitioner_text=p_text,
                prescriber=prescriber.user if prescriber else None,
                prescriber_text=s_text,
                clinic=clinic,
                clinic_text=c_text,
                lot_number=lot_number,
                lot_expiry=lot_expiry,
                notes=[row["notes"].strip()] if row["notes"].strip() else [],
                points=[],
            )
            self._add_point(t, number, row, plan)
            groups[key] = plan
            first_row[id(plan)] = row
            order.append(plan)
        self._finish_sessions(t, order)

    def _add_point(self, t: Table, number: int, row: dict[str, str], plan: SessionPlan) -> None:
        point_fields = ("point", "area", "muscle", "side", "units", "depth", "diagram", "x", "y")
        if not any(row[f].strip() for f in point_fields):
            return
        before = len(self.report.problems)
        units: Decimal | None = None
        if not row["units"].strip():
            self.problem(t, number, "units", "Enter the units given at this point (or area).")
        else:
            units = self.cell(t, number, row, "units", v.parse_decimal, "number of units")
            if units is not None:
                if units <= 0:
                    self.problem(t, number, "units", "Units must be more than zero.")
                elif units > (ceiling := max_units_per_point(plan.product_id)):
                    self.problem(
                        t,
                        number,
                        "units",
                        f"{units} U at one point is not a plausible dose (more than "
                        f"{ceiling} U). Check the figure.",
                    )
                elif units != units.quantize(Decimal("0.01")):
                    self.problem(t, number, "units", "Units can have at most two decimal places.")
        if not row["area"].strip() and not row["muscle"].strip():
            self.problem(t, number, "area", "Say where it was injected (the area or the muscle).")
        side = self.cell(t, number, row, "side", v.parse_side)
        depth = self.cell(t, number, row, "depth", v.parse_depth)
        point_no = None
        if row["point"].strip():
            n = self.cell(t, number, row, "point", v.parse_decimal, "point number")
            if n is not None and (n != n.to_integral() or n < 1):
                self.problem(t, number, "point", "A point number is a whole number from 1.")
            elif n is not None:
                point_no = int(n)
        diagram, x, y = row["diagram"].strip(), None, None
        if diagram or row["x"].strip() or row["y"].strip():
            from glabella.charting import diagrams

            if diagram not in diagrams.ids():
                self.problem(
                    t,
                    number,
                    "diagram",
                    f"“{diagram}” is not a diagram. Use one of: {', '.join(diagrams.ids())}, "
                    "or leave diagram, x and y empty.",
                )
            for fld in ("x", "y"):
                c = self.cell(t, number, row, fld, v.parse_decimal, "position (0 to 100)")
                if c is not None and not Decimal(0) <= c <= Decimal(100):
                    self.problem(t, number, fld, "The position is off the diagram (0 to 100).")
                if fld == "x":
                    x = c
                else:
                    y = c
        if len(self.report.problems) > before or units is None:
            return
        plan.points.append(
            PointRow(
                number,
                point_no,
                row["area"].strip(),
                row["muscle"].strip(),
                side or "",
                units,
                depth or "",
                diagram,
                x,
                y,
            )
        )

    def _finish_sessions(self, t: Table, order: list[SessionPlan]) -> None:
        existing = self._existing_sessions()
        planned: set[tuple[Any, ...]] = set()
        bad = {p.row for p in self.report.problems if p.file == t.filename and p.row}
        for plan in order:
            if bad.intersection(plan.rows):
                continue
            total = sum((p.units for p in plan.points), Decimal(0))
            if total:
                try:
                    check_plausible_units(total, plan.product_id)
                except ValidationError as exc:
                    self.problem(t, plan.rows[0], "units", f"In total, {' '.join(exc.messages)}")
                    continue
            numbers = [p.number for p in plan.points if p.number is not None]
            if len(numbers) != len(set(numbers)):
                self.problem(
                    t,
                    plan.rows[0],
                    "point",
                    "Two rows of this treatment have the same point number.",
                )
                continue
            if isinstance(plan.patient, Patient):
                pid = plan.patient.pk
                same_ref = existing["ref"].get(plan.ref) if plan.ref else None
                if same_ref is not None:
                    if same_ref[0] == pid and same_ref[1] == plan.treated_on:
                        self.report.already["treatments"] += 1
                        continue
                    self.problem(
                        t,
                        plan.rows[0],
                        "treatment_ref",
                        f"Treatment {plan.ref} was imported before for another patient or date. "
                        "Check the reference.",
                    )
                    continue
                if (pid, plan.treated_on, plan.product_id, total) in existing["same"]:
                    self.report.already["treatments"] += 1
                    continue
            sig = (id(plan.patient), plan.treated_on, plan.product_id, total, plan.indication)
            if sig in planned and not plan.ref:
                self.problem(
                    t, plan.rows[0], "", "The same treatment is on earlier rows: remove one."
                )
                continue
            planned.add(sig)
            self.sessions.append(plan)
            self.report.new["treatments"] += 1

    def _existing_sessions(self) -> dict[str, Any]:
        qs = TreatmentSession.objects.for_org(self.org).annotate(total=live_units())
        by_ref: dict[str, tuple[int, date]] = {}
        same: set[tuple[int, date, str, Decimal]] = set()
        for pid, day, product, total, ref in qs.values_list(
            "patient_id", "treated_on", "product_id", "total", "import_ref"
        ).iterator(chunk_size=2000):
            if ref:
                by_ref[ref] = (pid, day)
            same.add((pid, day, product, total or Decimal(0)))
        return {"ref": by_ref, "same": same}


# --- the writer -----------------------------------------------------------------------------------


class WriteProblem(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _service_problem(exc: ValidationError, file: str, row: int) -> Problem:
    if hasattr(exc, "message_dict"):
        text = "; ".join(
            f"{k}: {' '.join(m)}" if k != "__all__" else " ".join(m)
            for k, m in exc.message_dict.items()
        )
    else:
        text = " ".join(exc.messages)
    return Problem(row, "", text, file)


def _write(
    actor: Actor, checker: Checker, run: ImportRun | None, progress: Progress | None
) -> Counter[str]:
    total = len(checker.patients) + len(checker.lots) + len(checker.history) + len(checker.sessions)
    done = 0
    created: Counter[str] = Counter()
    step = max(1, total // 200)

    def tick() -> None:
        nonlocal done
        done += 1
        if progress and (done % step == 0 or done == total):
            progress(done, total)

    source_name = run.filename if run else "import"
    for p in checker.patients:
        try:
            if p.existing is not None:
                if p.link:
                    patients_imported.link_patient(actor, p.existing, p.ref)
            else:
                p.patient = patients_imported.import_patient(actor, p.data, ref=p.ref)
                created["patients"] += 1
        except ValidationError as exc:
            raise WriteProblem(_service_problem(exc, p.file, p.row)) from None
        tick()
    for lp in checker.lots:
        try:
            inventory_imported.import_lot(
                actor,
                product_id=lp.product_id,
                lot_number=lp.lot_number,
                expiry=lp.expiry,
                vial_units=lp.vial_units,
                gtin=lp.gtin,
                source=f"{source_name} row {lp.row}",
            )
            created["lots"] += 1
        except ValidationError as exc:
            raise WriteProblem(_service_problem(exc, lp.file, lp.row)) from None
        tick()
    for h in checker.history:
        try:
            patients_imported.import_history_item(
                actor, _resolve(h.patient), h.data, resolved_on=h.resolved_on
            )
            created["history"] += 1
        except ValidationError as exc:
            raise WriteProblem(_service_problem(exc, h.file, h.row)) from None
        tick()
    treated: dict[int, Patient] = {}
    for s in checker.sessions:
        patient = _resolve(s.patient)
        try:
            _write_session(actor, s, patient, run)
        except ValidationError as exc:
            raise WriteProblem(_service_problem(exc, s.file, s.rows[0])) from None
        created["treatments"] += 1
        treated[patient.pk] = patient
        tick()
    _refresh_recalls(actor.organization.pk, sorted(treated))
    return created


RECALL_CHUNK = 500


def _refresh_recalls(organization_id: int, patient_ids: list[int]) -> None:
    """Recompute the recalls of the treated patients, RECALL_CHUNK at a time (a few set-based
    queries per chunk, not per patient), inside the import's transaction."""
    recalls.refresh_many(organization_id, patient_ids, chunk=RECALL_CHUNK)


def _write_session(actor: Actor, s: SessionPlan, patient: Patient, run: ImportRun | None) -> None:
    notes = list(s.notes)
    void_reason = ""
    if s.status == Status.VOIDED:
        text = "\n".join(notes)
        if text.startswith(VOID_PREFIX):
            first, _, rest = text.partition("\n")
            void_reason = first[len(VOID_PREFIX) :].strip()
            notes = [rest] if rest.strip() else []
        void_reason = void_reason or "Voided in the system it was imported from."
    where = [f"{s.file} row {s.rows[0]}" + (f" to {s.rows[-1]}" if len(s.rows) > 1 else "")]
    if s.ref:
        where.append(f"reference {s.ref}")
    if s.practitioner is None and s.practitioner_text:
        where.append(charting_imported.SOURCE_PRACTITIONER + s.practitioner_text)
    if s.prescriber is None and s.prescriber_text:
        where.append(charting_imported.SOURCE_PRESCRIBER + s.prescriber_text)
    if s.clinic is None and s.clinic_text:
        where.append(f"clinic in the source: {s.clinic_text}")
    used: dict[tuple[str, str], int] = {}
    points: list[charting_imported.ImportedPoint] = []
    ordered = sorted(s.points, key=lambda p: (p.number is None, p.number or 0, p.row))
    for p in ordered:
        if p.diagram and p.x is not None and p.y is not None:
            diagram, x, y, area, muscle, side = p.diagram, p.x, p.y, p.area, p.muscle, p.side
        else:
            diagram, x, y, area, muscle, side = charting_imported.place(
                p.area, p.muscle, p.side, used
            )
            if v.norm(area) != v.norm(p.area) and p.area:
                where.append(f"area “{p.area}” charted as {area}")
        depth = p.depth or (Depth.ID if area == "axilla" else Depth.IM)
        points.append(
            charting_imported.ImportedPoint(
                area,
                muscle,
                side,
                p.units,
                depth,
                diagram,
                Decimal(x).quantize(Decimal("0.01")),
                Decimal(y).quantize(Decimal("0.01")),
            )
        )
    assert actor.user is not None and actor.clinic is not None
    charting_imported.record_imported_session(
        actor,
        patient,
        import_run=run,
        ref=s.ref,
        source="Imported: " + "; ".join(dict.fromkeys(where)),
        clinic=s.clinic or actor.clinic,
        practitioner=s.practitioner or actor.user,
        prescriber=s.prescriber,
        indication=s.indication,
        product_id=s.product_id,
        treated_on=s.treated_on,
        status=s.status,
        void_reason=void_reason,
        lot_number=s.lot_number,
        lot_expiry=s.lot_expiry,
        notes="\n".join(notes),
        points=points,
    )


# --- the entry point ------------------------------------------------------------------------------


def sha256_of(files: Mapping[str, tuple[str, bytes]]) -> str:
    """One file: its SHA-256. Several (an export): the SHA-256 of their names and hashes."""
    if len(files) == 1:
        return hashlib.sha256(next(iter(files.values()))[1]).hexdigest()
    h = hashlib.sha256()
    for kind in sorted(files):
        name, data = files[kind]
        h.update(f"{kind}:{name}:{hashlib.sha256(data).hexdigest()}\n".encode())
    return h.hexdigest()


def check(
    actor: Actor, kind: str, files: Mapping[str, tuple[str, bytes]], options: Options
) -> tuple[Report, Checker]:
    """Read and check; write nothing."""
    report = Report(kind=kind, dry_run=options.dry_run, sha256=sha256_of(files))
    checker = Checker(actor, options, report)
    tables: dict[str, Table] = {}
    for k in KINDS:
        if k not in files:
            continue
        name, data = files[k]
        try:
            tables[k] = read_table(
                k, data, name, encoding=options.encoding, explicit=options.mapping
            )
        except Unreadable as exc:
            report.problems.extend(exc.problems)
    if report.problems:
        return report, checker
    for table in tables.values():
        report.rows += len(table.rows)
        report.mapping[table.filename] = dict(table.mapping)
        if table.ignored:
            report.ignored[table.filename] = table.ignored
            report.warnings.append(
                Problem(
                    None,
                    "",
                    "These columns are not imported (Glabella has no place for them, or they "
                    "need a mapping): " + ", ".join(f"“{h}”" for h in table.ignored) + ".",
                    table.filename,
                )
            )
        if not table.rows:
            report.warnings.append(
                Problem(None, "", "The file has a header but no rows.", table.filename)
            )
    # Patients first (the others refer to them), lots before treatments (their expiry).
    for k in ("patients", "lots", "history", "treatments"):
        if k in tables:
            getattr(checker, f"check_{k}")(tables[k])
    return report, checker


def run_import(
    actor: Actor,
    kind: str,
    files: Mapping[str, tuple[str, bytes]],
    options: Options,
    *,
    progress: Progress | None = None,
    record_dry_run: bool = False,
    run: ImportRun | None = None,
) -> Report:
    """Check FILES ({kind: (filename, bytes)}) and, unless a dry run or a problem, import them.

    RUN: an ImportRun prepared by the caller (the upload page), else one is created (except
    for a dry run, unless RECORD_DRY_RUN).
    """
    actor.require("data.import")
    report, checker = check(actor, kind, files, options)
    filename = ", ".join(name for name, _ in files.values())
    if run is None and (not options.dry_run or record_dry_run):
        run = ImportRun.objects.create(
            organization=actor.organization,
            kind=kind,
            filename=filename[:255],
            sha256=report.sha256,
            dry_run=options.dry_run,
            state=JobState.RUNNING,
            run_by=actor.user,
            created_at=timezone.now(),
        )
    report.run = run
    if run is not None:
        run.rows = report.rows
        run.mapping = {**(run.mapping or {}), "columns": report.mapping}
    if report.ok and not options.dry_run:
        try:
            with transaction.atomic():
                created = _write(actor, checker, run, progress)
            report.written = True
            report.new = created
        except WriteProblem as exc:
            report.problems.append(exc.problem)
        except BaseException as exc:
            # Nothing was written (the transaction rolled back); the run must not stay
            # "running" in the list for ever: record the failure, then let it surface.
            if run is not None:
                ImportRun.objects.filter(pk=run.pk).update(
                    state=JobState.FAILED,
                    finished_at=timezone.now(),
                    problems=[
                        {
                            "file": "",
                            "row": None,
                            "column": "",
                            "message": "The import stopped before the end and nothing was "
                            f"imported ({exc.__class__.__name__}: {exc})."[:500],
                        }
                    ],
                )
            raise
    if run is not None:
        run.state = JobState.DONE if report.ok else JobState.FAILED
        run.done_rows = report.rows if report.written else 0
        run.created = {
            "new": dict(report.new),
            "already": dict(report.already),
            "warnings": [w.as_dict() for w in report.warnings][:1000],
        }
        run.problems = [p.as_dict() for p in report.problems][:5000]
        run.finished_at = timezone.now()
        run.save()
    return report


def export_files(directory: str) -> dict[str, tuple[str, bytes]]:
    """The CSV files of a Glabella export directory (``DIR/csv/*.csv``), by kind."""
    from pathlib import Path

    root = Path(directory)
    base = root / "csv" if (root / "csv").is_dir() else root
    files: dict[str, tuple[str, bytes]] = {}
    for k, name in EXPORT_FILES.items():
        path = base / name
        if path.is_file():
            files[k] = (f"csv/{name}" if base != root else name, path.read_bytes())
    return files
