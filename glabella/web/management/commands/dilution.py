"""glabella dilution PRODUCT VIAL_UNITS DILUENT_ML [--json]: concentration of a mixed vial."""

from glabella.clinical.cli import dilution_command
from glabella.web.management.commands._core_cli import CoreCommandBase


class Command(CoreCommandBase):
    help = "Concentration, units-to-volume table and use-within time for a reconstituted vial."
    core = staticmethod(dilution_command)
