"""The clinical core is pure Python: no Django, nothing from the rest of glabella.

Two independent checks: a static scan of every ``.py`` file's imports with ``ast``, and a
fresh interpreter that imports every module of ``glabella.clinical`` and then looks at
``sys.modules`` (the test process itself may have Django loaded by other tests' conftest, so
the import check must run in a subprocess).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import glabella.clinical

PACKAGE_DIR = Path(glabella.clinical.__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent.parent


def _python_files() -> list[Path]:
    files = sorted(PACKAGE_DIR.rglob("*.py"))
    assert PACKAGE_DIR / "units.py" in files  # the scan really sees the package
    return files


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _forbidden(module: str) -> bool:
    root = module.split(".")[0]
    if root == "django":
        return True
    if root == "glabella":
        # the root package itself (its __init__) is loaded to reach glabella.clinical
        allowed = module in ("glabella", "glabella.clinical")
        return not (allowed or module.startswith("glabella.clinical."))
    return False


def _violations_in_source(source: str, package: str, filename: str = "<source>") -> list[str]:
    """Forbidden modules imported by ``source``; ``package`` resolves relative imports."""
    tree = ast.parse(source, filename=filename)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _forbidden(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the file's package
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module == "glabella":
                names = [f"glabella.{a.name}" for a in node.names]
                found += [n for n in names if _forbidden(n)]
            elif _forbidden(module):
                found.append(module)
        elif isinstance(node, ast.Call):
            # importlib.import_module("django...") / __import__("django...")
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in {"import_module", "__import__"} and node.args:
                arg = node.args[0]
                if (
                    isinstance(arg, ast.Constant)
                    and isinstance(arg.value, str)
                    and _forbidden(arg.value)
                ):
                    found.append(arg.value)
    return found


def _import_violations(path: Path) -> list[str]:
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found = _violations_in_source(path.read_text(encoding="utf-8"), package, str(path))
    return [f"{path.relative_to(REPO_ROOT)}: {m}" for m in found]


def test_no_file_in_the_clinical_core_imports_django_or_other_glabella_apps() -> None:
    violations = [v for path in _python_files() for v in _import_violations(path)]
    assert violations == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import django", ["django"]),
        ("from django.db import models", ["django.db"]),
        ("import django.conf as c", ["django.conf"]),
        ("import os, django", ["django"]),
        ("def f():\n    import django", ["django"]),
        ("from glabella.patients import models", ["glabella.patients"]),
        ("import glabella.accounts.models", ["glabella.accounts.models"]),
        ("from glabella import accounts", ["glabella.accounts"]),
        ("from .. import accounts", ["glabella.accounts"]),
        ("from ..web.views import x", ["glabella.web.views"]),
        ("import importlib\nimportlib.import_module('django.conf')", ["django.conf"]),
        ("__import__('django')", ["django"]),
        ("from glabella.clinical import units", []),
        ("from . import catalogue", []),
        ("from .units import Units", []),
        ("from glabella import clinical", []),
        ("import djangoish", []),
        ("import glabella", []),
    ],
)
def test_the_static_scan_catches_forbidden_imports(source: str, expected: list[str]) -> None:
    assert _violations_in_source(source, "glabella.clinical") == expected


IMPORT_ALL = """
import importlib, json, pkgutil, sys
import glabella.clinical as pkg
names = []
for info in pkgutil.walk_packages(pkg.__path__, prefix="glabella.clinical."):
    if ".tests" in info.name or info.name.endswith(".tests"):
        continue
    importlib.import_module(info.name)
    names.append(info.name)
loaded = sorted(sys.modules)
print(json.dumps({"imported": names, "loaded": loaded}))
"""


def test_importing_every_clinical_module_loads_no_django() -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    imported = set(report["imported"])
    expected = {
        "glabella.clinical._reference",
        "glabella.clinical.sources",
        "glabella.clinical.units",
        "glabella.clinical.catalogue",
        "glabella.clinical.reconstitution",
        "glabella.clinical.protocols",
        "glabella.clinical.cli",
    }
    assert expected <= imported
    on_disk = {
        _module_name(p) for p in _python_files() if "tests" not in p.relative_to(PACKAGE_DIR).parts
    }
    assert on_disk - {"glabella.clinical"} <= imported
    loaded = report["loaded"]
    assert [m for m in loaded if m == "django" or m.startswith("django.")] == []
    assert [m for m in loaded if _forbidden(m)] == []
