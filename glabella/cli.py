"""The ``glabella`` console command: a thin front over Django's management commands.

``glabella audit-verify`` runs ``manage.py audit_verify``; hyphens in the subcommand
become underscores. Everything else is passed through unchanged.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and not args[0].startswith("-"):
        args[0] = args[0].replace("-", "_")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "glabella.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["glabella", *args])


if __name__ == "__main__":
    main()
