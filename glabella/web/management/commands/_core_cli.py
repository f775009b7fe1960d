"""Management commands that hand their arguments straight to the clinical core's CLI.

The core's command functions parse their own arguments, print one clear line on bad
input and return the exit status (2 for bad input); Django's parser stays out of the way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from django.core.management.base import BaseCommand

CoreCommand = Callable[[list[str], TextIO, TextIO], int]


class CoreCommandBase(BaseCommand):
    core: CoreCommand

    def run_from_argv(self, argv: list[str]) -> None:
        # argv: [program, subcommand, *arguments]
        sys.exit(type(self).core(argv[2:], sys.stdout, sys.stderr))

    def handle(self, *args: str, **options: object) -> None:
        status = type(self).core(list(args), self.stdout, self.stderr)  # type: ignore[arg-type]
        if status:
            sys.exit(status)
