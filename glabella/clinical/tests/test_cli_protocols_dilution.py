"""The protocols and dilution command functions: output, JSON and exit codes."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest

from glabella.clinical import cli, protocols


def run(command: Any, *argv: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    code = command(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code: int, out: str, err: str) -> str:
    assert code == 2
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    return err.strip()


# -- protocols -----------------------------------------------------------------------------------


def test_protocols_without_arguments_lists_every_protocol() -> None:
    code, out, err = run(cli.protocols_command)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["id", "name", "indication", "products", "total", "sites"]
    for p in protocols.all():
        row = next(line for line in lines if line.startswith(p.id + " "))
        assert p.indication in row
        assert f" {p.total_units} U " in row
    preempt = next(line for line in lines if line.startswith("chronic-migraine-preempt "))
    assert "Botox" in preempt and "155 U" in preempt and preempt.rstrip().endswith("31")


def test_protocols_json_lists_totals_and_site_counts() -> None:
    code, out, _ = run(cli.protocols_command, "--json")
    assert code == 0
    data = json.loads(out)
    by_id = {item["id"]: item for item in data}
    assert set(by_id) == set(protocols.ids())
    assert by_id["upper-face"]["total_units"] == "64"
    assert by_id["upper-face"]["site_count"] == 16
    assert by_id["glabellar-lines-dysport"]["product_ids"] == ["dysport"]
    assert by_id["blepharospasm"]["total_units"] == "7.5"


def test_protocol_detail_shows_sites_totals_sources_and_statuses() -> None:
    code, out, err = run(cli.protocols_command, "chronic-migraine-preempt")
    assert code == 0 and err == ""
    assert "total: 155 U at 31 sites (status: confirmed)" in out
    assert "maximum: 195 U (status: confirmed; sources: S13, S83)" in out
    assert "Totals by area:" in out and "  temple: 40 U" in out
    assert "Totals by side:" in out and "  mid: 5 U" in out and "  R: 75 U" in out
    assert "[S10]" in out and "[S83]" in out
    site_rows = [
        line for line in out.splitlines() if line.split()[:1] and line.split()[0].isdigit()
    ]
    assert len(site_rows) == 31


def test_protocol_detail_marks_an_unconfirmed_site_map() -> None:
    code, out, _ = run(cli.protocols_command, "platysma-bands")
    assert code == 0
    assert "site map status: unconfirmed" in out
    assert "total: 26 U at 6 sites (status: confirmed)" in out


def test_protocol_detail_json() -> None:
    code, out, _ = run(cli.protocols_command, "axillary-hyperhidrosis", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["total_units"] == "100"
    assert data["units_by_side"] == {"R": "50", "L": "50"}
    assert len(data["sites"]) == 20
    assert {s["depth"] for s in data["sites"]} == {"ID"}
    assert data["source_citations"]["S11"].startswith("botoxsarasotafl.com")


def test_blank_protocol_detail() -> None:
    code, out, _ = run(cli.protocols_command, "blank")
    assert code == 0
    assert "No preset sites." in out


def test_unknown_protocol_is_one_line_and_exit_2() -> None:
    message = assert_one_line_error(*run(cli.protocols_command, "preempt"))
    assert "Unknown protocol 'preempt'" in message
    assert "chronic-migraine-preempt" in message


@pytest.mark.parametrize("argv", [["a", "b"], ["--bogus"], ["--json=1"]])
def test_bad_protocol_arguments_are_one_line_and_exit_2(argv: list[str]) -> None:
    message = assert_one_line_error(*run(cli.protocols_command, *argv))
    assert message.startswith("glabella protocols:")


def test_protocols_help_exits_0_on_out() -> None:
    code, out, err = run(cli.protocols_command, "--help")
    assert code == 0 and err == ""
    assert out.startswith("usage: glabella protocols")


# -- dilution ------------------------------------------------------------------------------------


def test_dilution_prints_concentration_basis_status_source_and_volumes() -> None:
    code, out, err = run(cli.dilution_command, "botox_cosmetic", "100", "2.5")
    assert code == 0 and err == ""
    assert "Concentration: 4 U per 0.1 mL = 40 U per mL" in out
    assert "Basis: reconstitution table" in out
    assert "Status: secondary" in out
    assert "[S1]" in out
    assert "Use within: 24 h after reconstitution" in out
    assert "20 U" in out and "0.5 mL" in out
    assert "64 U" in out and "1.6 mL" in out


def test_dilution_off_table_says_arithmetic() -> None:
    code, out, _ = run(cli.dilution_command, "botox", "100", "2.5")
    assert code == 0
    assert "Basis: arithmetic" in out
    assert "Status: secondary" in out


def test_dilution_daxxify_warns_the_table_figure_is_unconfirmed() -> None:
    code, out, _ = run(cli.dilution_command, "daxxify", "100", "1.2")
    assert code == 0
    assert "Concentration: 8 U per 0.1 mL = 80 U per mL" in out
    assert "Status: unconfirmed" in out
    assert "arithmetic gives 8.333 U per 0.1 mL" in out
    assert "UNCONFIRMED" in out
    assert "72 h" in out


def test_dilution_dysport_volumes_are_rounded_only_for_display() -> None:
    code, out, _ = run(cli.dilution_command, "dysport", "300", "2.5")
    assert code == 0
    assert "label: 10 U per 0.08 mL" in out
    assert "0.083 mL" in out
    code, out, _ = run(cli.dilution_command, "dysport", "300", "2.5", "--json")
    dose = next(d for d in json.loads(out)["doses"] if d["units"] == "10")
    assert dose["volume_ml"].startswith("0.08333333")
    assert dose["volume_ml_display"] == "0.083"


def test_dilution_myobloc_ready_to_use() -> None:
    code, out, _ = run(cli.dilution_command, "myobloc", "5000", "0")
    assert code == 0
    assert "500 U per 0.1 mL = 5000 U per mL" in out
    assert "ready-to-use" in out
    assert "4 h (status: unconfirmed)" in out


def test_dilution_json() -> None:
    code, out, err = run(cli.dilution_command, "botox", "200", "4", "--json")
    assert code == 0 and err == ""
    data = json.loads(out)
    assert data["units_per_0_1ml"] == "5"
    assert data["units_per_ml"] == "50"
    assert data["basis"] == "table"
    assert data["status"] == "confirmed"
    assert data["use_within_hours"] == "24"
    assert data["sources"][0] == "S11"
    assert {"units": "155", "volume_ml": "3.1", "volume_ml_display": "3.1"} in data["doses"]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["nope", "100", "2"], "Unknown product 'nope'"),
        (["botox", "abc", "2"], "VIAL_UNITS must be a number"),
        (["botox", "100", "two"], "DILUENT_ML must be a number"),
        (["botox", "100", "-1"], "more than 0 mL"),
        (["botox", "100", "0"], "more than 0 mL"),
        (["botox", "-100", "2"], "VIAL_UNITS must be more than 0"),
        (["botox", "100.5", "2"], "whole number"),
        (["botox", "100", "nan"], "real number"),
        (["botox", "100", "Infinity"], "real number"),
        (["xeomin", "300", "2"], "Xeomin does not come in a 300 U vial"),
        (["botox", "100"], "required"),
        ([], "required"),
        (["botox", "100", "2", "extra"], "unrecognized arguments"),
    ],
)
def test_bad_dilution_input_is_one_line_and_exit_2(argv: list[str], fragment: str) -> None:
    message = assert_one_line_error(*run(cli.dilution_command, *argv))
    assert message.startswith("glabella dilution:")
    assert fragment in message


def test_dilution_help_exits_0() -> None:
    code, out, err = run(cli.dilution_command, "-h")
    assert code == 0 and err == ""
    assert "PRODUCT VIAL_UNITS DILUENT_ML" in out
