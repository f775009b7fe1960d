"""glabella protocols [ID] [--json]: list the protocols, or one protocol's sites and totals."""

from glabella.clinical.cli import protocols_command
from glabella.web.management.commands._core_cli import CoreCommandBase


class Command(CoreCommandBase):
    help = "List treatment protocols, or show one protocol's sites and totals (--json for JSON)."
    core = staticmethod(protocols_command)
