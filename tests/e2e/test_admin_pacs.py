"""In a real browser against a real server and a real Orthanc: an admin searches the PACS from the
Admin page's PACS tab, ticks a study in the table and imports it with the upload's report.

Runs on a project of its own (one admin account, no demo: nothing else is needed) and its own
throw-away Orthanc with basic auth; the credentials reach the app only through its environment.
"""

from __future__ import annotations

import os
import sqlite3

import pytest

from rascore import auth
from rascore.pacs import orthanc_local
from tests.orthanc_gate import need_orthanc
from rascore.store import Store
from tests.e2e import harness
from tests.e2e.harness import settle

pytestmark = pytest.mark.e2e

ADMIN, PASSWORD = "pacs-admin", "pacs-admin-password-1"
PACS_USER, PACS_PASSWORD = "rascore", "orthanc-password-1"


@pytest.fixture(scope="module")
def pacs_app(tmp_path_factory):
    """(app server, project folder, Orthanc) with the samples loaded."""
    need_orthanc()
    root = tmp_path_factory.mktemp("pacs-e2e") / "project"
    store = Store(root / "rascore.db")
    auth.add_user(store, ADMIN, "admin", None, PASSWORD, rounds=4)
    store.close()
    saved = {
        k: os.environ.get(k) for k in ("RASCORE_PACS_USER", "RASCORE_PACS_PASSWORD", "RASCORE_PACS_TOKEN")
    }
    os.environ.update(RASCORE_PACS_USER=PACS_USER, RASCORE_PACS_PASSWORD=PACS_PASSWORD)
    os.environ.pop("RASCORE_PACS_TOKEN", None)
    orthanc = orthanc_local.local_orthanc(
        tmp_path_factory.mktemp("pacs-e2e-orthanc"), {PACS_USER: PACS_PASSWORD}
    )
    try:
        with orthanc:
            orthanc_local.load_samples(orthanc, names=("OBXXXX1A_2frame.dcm", "examples_ybr_color.dcm"))
            log = tmp_path_factory.mktemp("pacs-e2e-log") / "streamlit.log"
            with harness.serve(root, log) as server:
                yield server, root, orthanc
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_admin_searches_ticks_and_imports_a_study(pacs_app, page):
    server, root, orthanc = pacs_app
    harness.sign_in(page, server.url, ADMIN, PASSWORD)
    harness.open_page(page, "Admin")
    page.get_by_role("tab", name="PACS").click()
    page.get_by_text("Basic auth as the user in RASCORE_PACS_USER").wait_for(timeout=30_000)
    page.get_by_label("DICOMweb URL").fill(orthanc.url)
    page.get_by_role("button", name="Search").click()
    settle(page)
    grid = page.locator("[data-testid=stMain] [data-testid=stDataFrame]:visible")
    grid.first.wait_for(timeout=30_000)
    body = page.content()
    assert "OB^" not in body and "PLA 204" not in body  # no names or IDs of the samples
    # tick the first row's "import" box (the grid is a canvas: by position, the box centred in
    # the first column, the first row below the header)
    box = grid.first.bounding_box()
    page.mouse.click(box["x"] + 99, box["y"] + 35 + 17)
    settle(page)
    if not page.get_by_role("button", name="Import 1 studies").count():
        page.keyboard.press("Space")  # the click only selected the cell
        settle(page)
    modality = page.locator("[data-testid=stMain] [data-testid=stSelectbox]").filter(
        has=page.get_by_text("Modality", exact=True)
    )
    modality.locator("input").click()
    page.keyboard.type("DGS")
    page.keyboard.press("Enter")
    settle(page)
    page.get_by_role("button", name="Import 1 studies").click()
    page.get_by_text("imported 1, duplicates 0, rejected 0").first.wait_for(timeout=60_000)
    conn = sqlite3.connect(root / "rascore.db", timeout=30)
    try:
        items = conn.execute("SELECT modality, frames FROM items").fetchall()
        pulled = conn.execute("SELECT count(*) FROM pacs_instances").fetchone()[0]
    finally:
        conn.close()
    assert items and pulled == len(items) == 1
