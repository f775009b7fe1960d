"""``dose-check PLAN.json``: findings printed or as JSON, exit 0 / 1 / 2, one clear error line."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from glabella.clinical.dose_check_cli import dose_check_command


def migraine_plan(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "plan": {
            "product_id": "botox",
            "indication": "chronic-migraine",
            "date": "2026-12-01",
            "points": [{"area": "head", "muscle": "frontalis", "side": "L", "units": "5"}] * 31,
            "vial": {"lot_expiry": "2027-06-30", "use_by": "2026-12-01T18:00:00+00:00"},
        },
        "patient": {"date_of_birth": "1980-04-02", "weight_kg": 70, "flags": []},
        "history": [],
    }
    data.update(overrides)
    return data


def run(tmp_path: Path, data: object, *args: str, raw: str | None = None) -> tuple[int, str, str]:
    path = tmp_path / "plan.json"
    path.write_text(raw if raw is not None else json.dumps(data), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    code = dose_check_command([str(path), "--now", "2026-12-01T12:00:00+00:00", *args], out, err)
    return code, out.getvalue(), err.getvalue()


def one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    return err.strip()


def test_a_clean_plan_exits_0_and_says_so(tmp_path: Path) -> None:
    code, out, err = run(tmp_path, migraine_plan())
    assert code == 0 and err == ""
    assert "Dose check: botox, chronic-migraine, 2026-12-01, 31 points" in out
    assert "No findings" in out


def test_a_block_finding_exits_1_with_rule_message_and_source(tmp_path: Path) -> None:
    history = [
        {
            "date": "2026-10-01",
            "product_id": "botox",
            "indication": "cervical-dystonia",
            "units": 200,
        },
        {
            "date": "2026-11-01",
            "product_id": "botox_cosmetic",
            "indication": "glabellar-lines",
            "units": "64",
            "outside": True,
        },
    ]
    code, out, err = run(tmp_path, migraine_plan(history=history))
    assert code == 1 and err == ""
    assert "BLOCK cumulative-3-month" in out
    assert "419 U of onabotulinumtoxinA in 90 days would exceed the 400 U maximum" in out
    assert "Source: " in out and "[S2, S67, S96] (confirmed)" in out
    assert "Result: BLOCKED (1 block" in out


def test_warnings_only_exit_0(tmp_path: Path) -> None:
    data = migraine_plan(patient={"date_of_birth": "1980-04-02", "flags": ["pregnant"]})
    code, out, _ = run(tmp_path, data)
    assert code == 0
    assert "WARN  contraindication" in out and "NOT BLOCKED" in out


def test_json_output_lists_findings_with_sources(tmp_path: Path) -> None:
    data = migraine_plan()
    data["plan"]["vial"]["lot_expiry"] = "2026-11-30"
    code, out, _ = run(tmp_path, data, "--json")
    assert code == 1
    result = json.loads(out)
    assert result["blocked"] is True
    assert result["counts"] == {"block": 1, "warn": 0, "info": 0}
    [finding] = result["findings"]
    assert finding["rule"] == "expired-lot" and finding["severity"] == "block"
    assert set(finding) == {
        "rule",
        "severity",
        "message",
        "source",
        "source_ids",
        "status",
        "limit",
        "value",
    }


def test_numbers_in_json_output_are_exact_strings(tmp_path: Path) -> None:
    data = migraine_plan()
    data["plan"]["points"] = [{"area": "neck", "muscle": "splenius", "side": "L", "units": 50.5}]
    data["plan"]["indication"] = "cervical-dystonia"
    code, out, _ = run(tmp_path, data, "--json")
    assert code == 1
    [site] = [f for f in json.loads(out)["findings"] if f["rule"] == "site-max"]
    assert (site["limit"], site["value"]) == ("50", "50.5")


@pytest.mark.parametrize("units", ["-5", "0", "NaN", -5, 0, "Infinity", "1e9"])
def test_impossible_units_in_the_file_are_a_block_finding_not_bad_input(
    tmp_path: Path, units: object
) -> None:
    data = migraine_plan()
    data["plan"]["points"] = [{"area": "head", "muscle": "procerus", "side": "mid", "units": units}]
    code, out, err = run(tmp_path, data)
    assert code == 1 and err == ""
    assert "invalid-units" in out


def test_a_nan_literal_is_a_block_finding(tmp_path: Path) -> None:
    raw = json.dumps(migraine_plan()).replace('"units": "5"', '"units": NaN', 1)
    code, out, _ = run(tmp_path, None, raw=raw)
    assert code == 1 and "invalid-units" in out


def test_unknown_product_is_a_block_finding_not_bad_input(tmp_path: Path) -> None:
    data = migraine_plan()
    data["plan"]["product_id"] = "botux"
    code, out, _ = run(tmp_path, data)
    assert code == 1 and "unknown-product" in out


def test_units_that_are_not_a_number_are_bad_input_naming_the_path(tmp_path: Path) -> None:
    data = migraine_plan()
    data["plan"]["points"] = [dict(data["plan"]["points"][0]) for _ in range(3)]
    data["plan"]["points"][2]["units"] = "abc"
    code, out, err = run(tmp_path, data)
    assert code == 2 and out == ""
    assert one_line(err) == "plan.points[2].units: 'abc' is not a number"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["plan"].pop("points"), "plan: missing 'points'"),
        (
            lambda d: d["plan"].update(date="1 Dec 2026"),
            "plan.date: '1 Dec 2026' is not an ISO date",
        ),
        (
            lambda d: d["patient"].update(weight_kg="heavy"),
            "patient.weight_kg: 'heavy' is not a number",
        ),
        (lambda d: d["patient"].update(flags="pregnant"), "patient.flags: expected a list"),
        (lambda d: d.update(histroy=[]), "file: unknown key 'histroy'"),
        (
            lambda d: d.update(
                history=[
                    {
                        "date": "2026-01-01",
                        "product_id": "botox",
                        "indication": "other",
                        "units": True,
                    }
                ]
            ),
            "history[0].units: True is not a number",
        ),
        (
            lambda d: d.update(
                history=[
                    {
                        "date": "2026-01-01",
                        "product_id": "botox",
                        "indication": "other",
                        "units": 5,
                        "outside": "yes",
                    }
                ]
            ),
            "history[0].outside: expected true or false",
        ),
        (
            lambda d: d["plan"]["vial"].update(use_by="tonight"),
            "plan.vial.use_by: 'tonight' is not an ISO date-time",
        ),
        (lambda d: d["plan"].update(points={}), "plan.points: expected a list"),
        (lambda d: d.pop("patient"), "file: missing 'patient'"),
    ],
)
def test_wrong_shape_is_bad_input_with_one_clear_line(
    tmp_path: Path, mutate: Any, expected: str
) -> None:
    data = migraine_plan()
    data["plan"]["points"] = [dict(p) for p in data["plan"]["points"]]
    mutate(data)
    code, out, err = run(tmp_path, data)
    assert code == 2 and out == ""
    assert one_line(err).startswith(expected)


def test_malformed_json_is_bad_input(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, None, raw='{"plan": ')
    assert code == 2
    assert "is not valid JSON" in one_line(err) and "line 1" in err


def test_a_top_level_list_is_bad_input(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, [1, 2])
    assert code == 2 and one_line(err) == "file: expected an object, got a list"


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = dose_check_command([str(tmp_path / "nope.json")], out, err)
    assert code == 2 and "cannot read" in one_line(err.getvalue())
    assert "nope.json" in err.getvalue()


def test_missing_argument_is_bad_input() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert dose_check_command([], out, err) == 2
    assert "missing PLAN.json" in one_line(err.getvalue())


def test_plan_can_be_read_from_standard_input() -> None:
    out, err = io.StringIO(), io.StringIO()
    stdin = io.StringIO(json.dumps(migraine_plan()))
    code = dose_check_command(["-", "--now", "2026-12-01T12:00"], out, err, stdin)
    assert code == 0 and "No findings" in out.getvalue()


def test_window_days_84_leaves_out_a_treatment_88_days_ago(tmp_path: Path) -> None:
    history = [
        {
            "date": "2026-09-04",
            "product_id": "botox",
            "indication": "cervical-dystonia",
            "units": 300,
        }
    ]
    data = migraine_plan(history=history)
    data["plan"]["points"] = data["plan"]["points"][:21]  # 105 U
    assert run(tmp_path, data)[0] == 1
    assert run(tmp_path, data, "--window-days", "90")[0] == 1
    assert run(tmp_path, data, "--window-days", "84")[0] == 0


@pytest.mark.parametrize("value", ["85", "3 months", "0"])
def test_window_days_other_than_84_or_90_is_bad_input(tmp_path: Path, value: str) -> None:
    code, _, err = run(tmp_path, migraine_plan(), "--window-days", value)
    assert code == 2 and "--window-days" in one_line(err) and "84 or 90" in err


def test_now_decides_whether_the_vial_is_past_its_use_by(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(migraine_plan()), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    code = dose_check_command([str(path), "--now", "2026-12-01T18:01:00+00:00"], out, err)
    assert code == 1 and "vial-use-by" in out.getvalue()
    assert dose_check_command([str(path), "--now", "yesterday"], io.StringIO(), err) == 2
    assert "--now: 'yesterday' is not an ISO date-time" in err.getvalue()


def test_unknown_option_is_bad_input(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, migraine_plan(), "--yaml")
    assert code == 2 and "unrecognized arguments: --yaml" in one_line(err)


def test_help_prints_usage_and_exits_0() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert dose_check_command(["--help"], out, err) == 0
    assert "usage: dose-check" in out.getvalue() and "--window-days" in out.getvalue()
