"""The owner's export page in a real Chromium: start, watch it finish, download the ZIP."""

from __future__ import annotations

import re
import zipfile

import pytest
from playwright.sync_api import expect

from glabella.conftest import PASSWORD
from glabella.interop.export import full
from glabella.web.tests.browser import assert_fits_and_touchable, login, shot

pytestmark = pytest.mark.browser


def test_export_start_progress_download(live_server, live_world, page, tmp_path):
    login(page, live_server.url, "owner@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/interop/export/")
    expect(page.get_by_role("heading", name="Export everything")).to_be_visible()
    assert_fits_and_touchable(page)
    shot(page, "export-start")
    page.get_by_role("button", name="Prepare an export").click()
    expect(page).to_have_url(re.compile(r"/interop/export/\d+/$"))
    # The page refreshes itself (no script) until the export is ready.
    link = page.get_by_role("link", name=re.compile("Download the ZIP"))
    expect(link).to_be_visible(timeout=30_000)
    assert_fits_and_touchable(page)
    shot(page, "export-ready")
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename.startswith("glabella-export-alpha-aesthetics-")
    saved = tmp_path / "export.zip"
    download.save_as(saved)
    with zipfile.ZipFile(saved) as z:
        z.extractall(tmp_path / "unzipped")
    (folder,) = (tmp_path / "unzipped").iterdir()
    assert full.verify(folder) == []
    assert (folder / "csv" / "patients.csv").read_text("utf-8").count("\n") == 2  # header + Ada
