"""A server restart during a reader's session loses no submitted grade (real server, real browser)."""

from __future__ import annotations

import pytest

from rascore.store import accounts
from tests.fixtures_labelling import build_project


@pytest.mark.e2e
def test_server_restart_during_a_session_keeps_the_grade(tmp_path, browser):
    from rascore.store import Store
    from tests.e2e.harness import heading, item_id_of, open_page, serve, settle, sign_in
    from tests.fixtures_labelling import PASSWORDS

    root = tmp_path / "project"
    build_project(root, per_modality=2)
    store = Store(root / "rascore.db")
    reader = accounts.user(store, "demo-reader")
    # the session's browser: one sync Playwright per process (tests/e2e/conftest.py)
    try:
        with serve(root, tmp_path / "first.log") as server:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            sign_in(page, server.url, "demo-reader", PASSWORDS["demo-reader"])
            open_page(page, "Label")
            page.get_by_role("button", name="Submit and next").wait_for()
            text = heading(page)
            item_id = item_id_of(text)
            doppler = " SPD " in text or " DPD " in text
            page.keyboard.press("2")
            if doppler:
                page.keyboard.press("Shift+1")
            page.keyboard.press("Enter")
            page.wait_for_function(
                "prev => { const h = document.querySelector('h4'); "
                "return h && !h.textContent.includes(prev); }",
                arg=f"#{item_id} ",
                timeout=30_000,
            )
            settle(page)
        # the server is stopped here; a new one starts on the same project
        with serve(root, tmp_path / "second.log") as server:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            sign_in(page, server.url, "demo-reader", PASSWORDS["demo-reader"])
            open_page(page, "Label")
            page.get_by_role("button", name="Submit and next").wait_for()
            assert item_id_of(heading(page)) != item_id  # not served again: it is graded
    finally:
        for context in browser.contexts:
            context.close()
    rows = store.annotation_history(item_id, reader["id"])
    assert [(r["sh"], r["pd"]) for r in rows] == [(2, 1 if doppler else None)]
    store.close()
