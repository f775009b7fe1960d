from __future__ import annotations

import pytest

from glabella.conftest import World
from glabella.consent import services


@pytest.fixture
def forms(world: World) -> None:
    """The default consent forms of both organizations."""
    services.ensure_default_templates(world.org)
    services.ensure_default_templates(world.outsider_org)
