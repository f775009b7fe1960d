"""``dose-check PLAN.json [--json] [--now ISO] [--window-days 84|90]``: the safety engine on a file.

PLAN.json (``-`` reads standard input) holds the inputs of
:func:`glabella.clinical.safety.check` in the shape of its dataclasses::

    {
      "plan": {"product_id": "botox", "indication": "chronic-migraine", "date": "2026-12-01",
               "points": [{"area": "forehead", "muscle": "frontalis", "side": "L",
                           "units": "5", "depth": "IM", "product_id": null}],
               "vial": {"lot_expiry": "2027-06-30", "use_by": "2026-12-01T18:00:00+00:00"}},
      "patient": {"date_of_birth": "1980-04-02", "weight_kg": "70", "flags": ["pregnant"]},
      "history": [{"date": "2026-10-01", "product_id": "botox_cosmetic",
                   "indication": "glabellar-lines", "units": 20, "outside": true}]
    }

Dates are ISO dates, times ISO date-times (a time without a zone is local time); units and
weights are numbers or strings, read as Decimal (never float). Exit codes: 0 no block finding,
1 at least one block finding, 2 bad input (one line on ``err`` naming what is wrong). A dose of
0, -5 or NaN units is not bad input: it is a block finding.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn, TextIO

from glabella.clinical.safety import (
    Finding,
    PastTreatment,
    PatientFacts,
    Plan,
    PlannedPoint,
    VialFacts,
    check,
)
from glabella.clinical.settings import WINDOW_DAYS_CHOICES, ClinicalSettings

__all__ = ["dose_check_command"]

PROG = "dose-check"


class _BadInput(Exception):
    """Bad input: reported as one line on ``err``, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _BadInput(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise _BadInput(f"{self.prog}: {(message or 'exit').strip()}")


def _parser() -> _Parser:
    parser = _Parser(
        prog=PROG,
        description="Check a planned botulinum toxin treatment against the label limits.",
        add_help=False,
    )
    parser.add_argument("plan_file", nargs="?", metavar="PLAN.json", help="plan file, - for stdin")
    parser.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument("--now", metavar="ISO", help="current date-time (default: now)")
    parser.add_argument(
        "--window-days",
        metavar="84|90",
        help="days counted as '3 months' for cumulative limits (default 90)",
    )
    return parser


# --------------------------------------------------------------------------------------------
# Reading the file: every error names the JSON path of the bad value.


def _object(
    value: Any, path: str, required: Sequence[str], optional: Sequence[str]
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _BadInput(f"{path}: expected an object, got {_show(value)}")
    missing = [key for key in required if key not in value]
    if missing:
        raise _BadInput(f"{path}: missing {', '.join(repr(k) for k in missing)}")
    unknown = [key for key in value if key not in required and key not in optional]
    if unknown:
        raise _BadInput(
            f"{path}: unknown key {', '.join(repr(k) for k in unknown)} "
            f"(expected {', '.join(repr(k) for k in (*required, *optional))})"
        )
    return value


def _show(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dict, list)):
        return "an object" if isinstance(value, dict) else "a list"
    return repr(value)


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _BadInput(f"{path}: expected text, got {_show(value)}")
    return value


def _date(value: Any, path: str) -> date:
    if not isinstance(value, str):
        raise _BadInput(f"{path}: expected an ISO date (YYYY-MM-DD), got {_show(value)}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _BadInput(f"{path}: {value!r} is not an ISO date (YYYY-MM-DD)") from None


def _aware(moment: datetime) -> datetime:
    """A time without a zone is local time."""
    return moment if moment.tzinfo is not None else moment.astimezone()


def _datetime(value: Any, path: str) -> datetime:
    if not isinstance(value, str):
        raise _BadInput(f"{path}: expected an ISO date-time, got {_show(value)}")
    try:
        return _aware(datetime.fromisoformat(value))
    except ValueError:
        raise _BadInput(f"{path}: {value!r} is not an ISO date-time") from None


def _number(value: Any, path: str) -> Decimal:
    """A number or numeric text as Decimal. NaN and negatives are numbers (the engine blocks)."""
    if isinstance(value, bool):
        raise _BadInput(f"{path}: {value!r} is not a number")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise _BadInput(f"{path}: {value!r} is not a number") from None
    raise _BadInput(f"{path}: {_show(value)} is not a number")


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _BadInput(f"{path}: expected a list, got {_show(value)}")
    return value


def _point(value: Any, path: str) -> PlannedPoint:
    raw = _object(value, path, ("area", "muscle", "side", "units"), ("depth", "product_id"))
    product_id = raw.get("product_id")
    return PlannedPoint(
        area=_text(raw["area"], f"{path}.area"),
        muscle=_text(raw["muscle"], f"{path}.muscle"),
        side=_text(raw["side"], f"{path}.side"),
        units=_number(raw["units"], f"{path}.units"),
        depth=_text(raw.get("depth", "IM"), f"{path}.depth"),
        product_id=None if product_id is None else _text(product_id, f"{path}.product_id"),
    )


def _vial(value: Any, path: str) -> VialFacts | None:
    if value is None:
        return None
    raw = _object(value, path, ("lot_expiry",), ("use_by",))
    use_by = raw.get("use_by")
    return VialFacts(
        lot_expiry=_date(raw["lot_expiry"], f"{path}.lot_expiry"),
        use_by=None if use_by is None else _datetime(use_by, f"{path}.use_by"),
    )


def _plan(value: Any) -> Plan:
    raw = _object(value, "plan", ("product_id", "indication", "date", "points"), ("vial",))
    points = _list(raw["points"], "plan.points")
    return Plan(
        product_id=_text(raw["product_id"], "plan.product_id"),
        indication=_text(raw["indication"], "plan.indication"),
        date=_date(raw["date"], "plan.date"),
        points=[_point(p, f"plan.points[{n}]") for n, p in enumerate(points)],
        vial=_vial(raw.get("vial"), "plan.vial"),
    )


def _patient(value: Any) -> PatientFacts:
    raw = _object(value, "patient", ("date_of_birth",), ("weight_kg", "flags"))
    weight = raw.get("weight_kg")
    flags = _list(raw.get("flags", []), "patient.flags")
    return PatientFacts(
        date_of_birth=_date(raw["date_of_birth"], "patient.date_of_birth"),
        weight_kg=None if weight is None else _number(weight, "patient.weight_kg"),
        flags=frozenset(_text(f, f"patient.flags[{n}]") for n, f in enumerate(flags)),
    )


def _history(value: Any) -> list[PastTreatment]:
    result: list[PastTreatment] = []
    for n, item in enumerate(_list(value, "history")):
        path = f"history[{n}]"
        raw = _object(item, path, ("date", "product_id", "indication", "units"), ("outside",))
        outside = raw.get("outside", False)
        if not isinstance(outside, bool):
            raise _BadInput(f"{path}.outside: expected true or false, got {_show(outside)}")
        result.append(
            PastTreatment(
                date=_date(raw["date"], f"{path}.date"),
                product_id=_text(raw["product_id"], f"{path}.product_id"),
                indication=_text(raw["indication"], f"{path}.indication"),
                units=_number(raw["units"], f"{path}.units"),
                outside=outside,
            )
        )
    return result


def _read(name: str, stdin: TextIO | None) -> str:
    if name == "-":
        stream = stdin if stdin is not None else sys.stdin
        return stream.read()
    try:
        with open(name, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise _BadInput(f"{PROG}: cannot read {name!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise _BadInput(f"{PROG}: {name!r} is not UTF-8 text") from None


def _load(text: str, name: str) -> tuple[Plan, PatientFacts, list[PastTreatment]]:
    try:
        data = json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=Decimal)
    except json.JSONDecodeError as exc:
        raise _BadInput(
            f"{PROG}: {name!r} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise _BadInput(f"{PROG}: {name!r} is not valid JSON: {exc}") from None
    raw = _object(data, "file", ("plan", "patient"), ("history",))
    return _plan(raw["plan"]), _patient(raw["patient"]), _history(raw.get("history", []))


# --------------------------------------------------------------------------------------------
# Output


def _num(value: Decimal | None) -> str | None:
    if value is None:
        return None
    if not value.is_finite():
        return str(value)
    if value != 0 and value.adjusted() > 12:
        return f"{value:.4E}"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "severity": finding.severity,
        "message": finding.message,
        "source": finding.source,
        "source_ids": list(finding.source_ids),
        "status": finding.status,
        "limit": _num(finding.limit),
        "value": _num(finding.value),
    }


def _counts(findings: Sequence[Finding]) -> dict[str, int]:
    return {sev: sum(1 for f in findings if f.severity == sev) for sev in ("block", "warn", "info")}


_LABEL = {"block": "BLOCK", "warn": "WARN", "info": "INFO"}


def _write_text(out: TextIO, plan: Plan, findings: Sequence[Finding]) -> None:
    out.write(
        f"Dose check: {plan.product_id}, {plan.indication}, {plan.date.isoformat()}, "
        f"{len(plan.points)} point{'s' if len(plan.points) != 1 else ''}\n"
    )
    if not findings:
        out.write("No findings: every check passed.\n")
        return
    for finding in findings:
        out.write(f"\n{_LABEL[finding.severity]:<6}{finding.rule}\n")
        out.write(f"      {finding.message}\n")
        out.write(f"      Source: {finding.source}\n")
    counts = _counts(findings)
    verdict = "BLOCKED" if counts["block"] else "NOT BLOCKED"
    out.write(
        f"\nResult: {verdict} ({counts['block']} block, {counts['warn']} warning"
        f"{'s' if counts['warn'] != 1 else ''}, {counts['info']} note"
        f"{'s' if counts['info'] != 1 else ''})\n"
    )


def _write_json(out: TextIO, findings: Sequence[Finding]) -> None:
    data: Mapping[str, Any] = {
        "blocked": any(f.severity == "block" for f in findings),
        "counts": _counts(findings),
        "findings": [_finding_json(f) for f in findings],
    }
    out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------------------------
# The command


def dose_check_command(
    argv: list[str], out: TextIO, err: TextIO, stdin: TextIO | None = None
) -> int:
    """Run ``dose-check``; return 0 (no block), 1 (a block finding) or 2 (bad input)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if args.help:
            out.write(parser.format_help())
            return 0
        if args.plan_file is None:
            raise _BadInput(f"{PROG}: missing PLAN.json (a file name, or - for standard input)")
        settings = ClinicalSettings()
        if args.window_days is not None:
            choices = " or ".join(str(d) for d in WINDOW_DAYS_CHOICES)
            try:
                days = int(args.window_days)
            except ValueError:
                raise _BadInput(
                    f"{PROG}: --window-days: {args.window_days!r} is not {choices}"
                ) from None
            if days not in WINDOW_DAYS_CHOICES:
                raise _BadInput(f"{PROG}: --window-days: {days} is not {choices}")
            settings = ClinicalSettings(cumulative_window_days=days)
        now = datetime.now(UTC) if args.now is None else _datetime(args.now, "--now")
        plan, patient, history = _load(_read(args.plan_file, stdin), args.plan_file)
    except _BadInput as exc:
        err.write(" ".join(str(exc).split()) + "\n")
        return 2
    findings = check(plan, patient, history, now, settings)
    if args.json:
        _write_json(out, findings)
    else:
        _write_text(out, plan, findings)
    return 1 if any(f.severity == "block" for f in findings) else 0


def main() -> None:  # pragma: no cover - thin wrapper for ``python -m``
    raise SystemExit(dose_check_command(sys.argv[1:], sys.stdout, sys.stderr, sys.stdin))


if __name__ == "__main__":  # pragma: no cover
    main()
