"""Lint: every query of an organization's data is scoped to an organization.

Run from the project root: ``.venv/bin/python scripts/lint_scoping.py [paths...]`` (``make
lint`` runs it on glabella/). Exit 1 with one line per problem:

    glabella/app/views.py:42: Patient.objects.get(...) is not scoped to an organization

**Which models.** Every model (found through Django's app registry) with a field named
``organization``: patients, sessions, stock, appointments, consents, photos, exports, the
audit trail... except the organization's own structure in ``accounts`` (clinics,
memberships, tokens: looked up through the signed-in user's own memberships).

**Which code.** Every Python file under the paths given, except tests (``tests/``,
``conftest.py``, ``testing.py``, ``mail_testing.py``) and migrations.

**What is a query.** A chain that starts at ``<Model>.objects`` or ``<Model>._default_manager``
(``Patient.objects.filter(...).order_by(...)``), and, when that chain is itself an argument of a
call (``get_object_or_404(Patient.objects, pk=pk)``), that call's arguments too.

**What is scoped.** Any call of the chain (or the enclosing call):

1. is ``.for_org(...)`` (the managers' own scoping, glabella/common_models.py);
2. has a keyword ``organization``, ``organization_id``, ``organization__...``, or one that
   goes through a related record to it: ``patient__organization...``,
   ``session__organization...``, ``<anything>__organization...`` (also inside ``Q(...)``);
3. filters by a related *record* of a scoped model: ``patient=patient``, ``session=s``,
   ``clinic=c``, ``lot__in=lots`` (a keyword naming a foreign key to an organization's model
   or to a clinic, with no ``_id``/``pk``): that record was itself fetched through a scoped
   query, which this lint checks where it was fetched;
4. re-reads a record already in hand: ``pk=session.pk``, ``pk=point.vial_id``,
   ``pk__in=[v.pk for v in vials]`` (an id read off a loaded record, typically to lock it
   with ``select_for_update``). Filtering by a bare id (``patient_id=pid``, ``pk=pk``) is
   not scoped: a bare id may come from a request.

``.none()`` (an empty queryset) and the writes ``create``, ``bulk_create``, ``bulk_update``
(of records in hand) are not checked.

**Exceptions.** A query that is safe for another reason (a system job over every
organization, a pk read from an already scoped record, a uniqueness check that must see every
organization) carries a comment ``# scoped: <why>`` on one of its lines, or on its own line
just above it.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANAGERS = {"objects", "_default_manager"}
WRITES = {"create", "bulk_create", "bulk_update"}
EMPTY = {"none"}
RECORD_KEYS = {"pk", "id", "pk__in", "id__in"}
ANNOTATION = re.compile(r"#\s*scoped:\s*\S")
# The organization's own structure (clinics, memberships, tokens) is not patient data; its
# queries go by the signed-in user's own memberships (accounts/).
STRUCTURE_APPS = {"accounts", "auth", "contenttypes", "sessions", "admin"}
# A record of these belongs to one organization: filtering by one (clinic=clinic) is scoped.
OWNED_BY_ONE = {"Organization", "Clinic"}
ORG_KEYWORD = re.compile(
    r"^(?:organization(?:_id)?|organization__\w+|\w+__organization(?:__\w+|_id)?)$"
)


@dataclass(frozen=True)
class Models:
    scoped: frozenset[str]  # class names of models with an `organization` field
    relations: dict[str, frozenset[str]]  # model -> its FK/M2M field names to scoped models


def load_models() -> Models:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "glabella.settings")
    import django
    from django.apps import apps

    django.setup()
    scoped = set()
    for model in apps.get_models():
        names = {f.name for f in model._meta.get_fields()}
        if "organization" in names and model._meta.app_label not in STRUCTURE_APPS:
            scoped.add(model)
    relations = {}
    for model in apps.get_models():
        relations[model.__name__] = frozenset(
            f.name
            for f in model._meta.get_fields()
            if getattr(f, "is_relation", False)
            and (
                getattr(f, "related_model", None) in scoped
                or getattr(getattr(f, "related_model", None), "__name__", "") in OWNED_BY_ONE
            )
            and (f.many_to_one or f.one_to_one or f.many_to_many)
            and getattr(f, "concrete", False)
        )
    return Models(frozenset(m.__name__ for m in scoped), relations)


def _excluded(path: Path) -> bool:
    parts = path.parts
    return (
        "tests" in parts
        or "migrations" in parts
        or path.name in ("conftest.py", "testing.py", "mail_testing.py")
        or path.name.startswith("test_")
    )


def python_files(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_file():
            found.append(path)
        else:
            found.extend(f for f in sorted(path.rglob("*.py")) if not _excluded(f))
    return found


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    return parents


def _model_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):  # models.Patient.objects
        return node.attr
    return None


def _keywords(node: ast.AST) -> list[ast.keyword]:
    """Every keyword of every call under NODE (Q objects, nested calls included)."""
    return [kw for sub in ast.walk(node) if isinstance(sub, ast.Call) for kw in sub.keywords]


def _is_scoped(chain: list[ast.Call], outer: ast.Call | None, model: str, models: Models) -> bool:
    related = models.relations.get(model, frozenset())
    calls = [*chain, *([outer] if outer is not None else [])]
    for call in calls:
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr == "for_org":
            return True
        for kw in _keywords(call):
            if kw.arg is None:
                continue
            if ORG_KEYWORD.match(kw.arg):
                return True
            base = kw.arg.removesuffix("__in")
            if base in related:
                return True
            if kw.arg in RECORD_KEYS and _from_record(kw.value):
                return True
    return False


def _from_record(value: ast.expr) -> bool:
    """pk=session.pk, pk=point.vial_id, pk__in=[v.pk for v in vials]: an id read from a record
    already in hand (which was fetched, scoped, where it was fetched)."""
    if isinstance(value, ast.Attribute):
        return value.attr in ("pk", "id") or value.attr.endswith("_id")
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
        return _from_record(value.func.value)  # settings_for(clinic).pk handled above
    if isinstance(value, ast.ListComp | ast.SetComp | ast.GeneratorExp):
        return _from_record(value.elt)
    return False


def check_source(path: str, source: str, models: Models) -> list[str]:
    tree = ast.parse(source, filename=path)
    lines = source.splitlines()
    parents = _parents(tree)
    problems = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr in MANAGERS):
            continue
        model = _model_name(node.value)
        if model not in models.scoped:
            continue
        # climb the chain: Model.objects.a(...).b(...)
        chain: list[ast.Call] = []
        top: ast.AST = node
        first_method = None
        while True:
            parent = parents.get(top)
            if isinstance(parent, ast.Attribute) and parent.value is top:
                if first_method is None:
                    first_method = parent.attr
                top = parent
                continue
            if isinstance(parent, ast.Call) and parent.func is top:
                chain.append(parent)
                top = parent
                continue
            break
        if first_method in WRITES or first_method in EMPTY:
            continue
        parent = parents.get(top)
        outer = parent if isinstance(parent, ast.Call) and top in parent.args else None
        if _is_scoped(chain, outer, model, models):
            continue
        start = node.lineno
        end = max(getattr(top, "end_lineno", start) or start, start)
        if outer is not None:
            start = min(start, outer.lineno)
            end = max(end, outer.end_lineno or end)
        # on a line of the query, or on its own line just above the query
        if any(ANNOTATION.search(lines[i - 1]) for i in range(max(start - 1, 1), end + 1)):
            continue
        shown = f"{model}.{node.attr}" + (f".{first_method}(...)" if first_method else "")
        problems.append(f"{path}:{node.lineno}: {shown} is not scoped to an organization")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=["glabella"])
    args = parser.parse_args(argv)
    models = load_models()
    problems: list[str] = []
    for path in python_files(args.paths):
        shown = os.path.relpath(path)
        problems += check_source(shown, path.read_text(encoding="utf-8"), models)
    for line in problems:
        print(line)
    if problems:
        print(
            f"\n{len(problems)} quer{'y' if len(problems) == 1 else 'ies'} of an organization's "
            "data not scoped: add .for_org(org) or organization=..., or, when it is safe, a "
            "trailing '# scoped: <why>' comment (see scripts/lint_scoping.py).",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
