"""glabella dose-check PLAN.json [--json]: the safety engine's findings for a planned session."""

from glabella.clinical.dose_check_cli import dose_check_command
from glabella.web.management.commands._core_cli import CoreCommandBase


class Command(CoreCommandBase):
    help = "Check a planned session (JSON) against every dose rule; exit 1 when a finding blocks."
    core = staticmethod(dose_check_command)
