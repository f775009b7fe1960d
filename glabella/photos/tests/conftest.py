from __future__ import annotations

import pytest

from glabella.photos.tests.helpers import photography_consent


@pytest.fixture
def consented(world):
    """The world's patient has signed the consent to clinical photographs today."""
    return photography_consent(world)
