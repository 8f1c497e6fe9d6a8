"""In a real browser against a real server: sign in, grade three items from the keyboard only
(keys typed without pauses), each grade in the store the moment it is given."""

from __future__ import annotations

import pytest

from rascore.config import Settings
from rascore.store import Store
from rascore.store import accounts
from tests.e2e.harness import heading, item_id_of, open_page, settle, sign_in

pytestmark = pytest.mark.e2e

# Keeps the text of every toast the page shows in window.__toasts (a toast leaves after seconds).
KEEP_TOASTS = """() => {
  window.__toasts = [];
  new MutationObserver(() => {
    for (const t of document.querySelectorAll('[data-testid=stToast]')) {
      if (!window.__toasts.includes(t.textContent)) window.__toasts.push(t.textContent);
    }
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


def test_grade_three_items_from_the_keyboard(server, e2e_project, page):
    root, passwords = e2e_project
    store = Store(
        Settings(db_path=root / "rascore.db", data_dir=root, models_dir=root / "models", device="cpu").db_path
    )
    reader = accounts.user(store, "demo-reader")
    sign_in(page, server.url, "demo-reader", passwords["demo-reader"])
    open_page(page, "Label")
    page.get_by_role("button", name="Submit and next").wait_for()
    page.evaluate(KEEP_TOASTS)
    graded, kinds = [], set()
    for k in range(3):
        text = heading(page)
        item_id = item_id_of(text)
        doppler = " SPD " in text or " DPD " in text
        sh = (k % 3) + 1
        # typed at full speed, no waiting between keys: the grade must still be exact
        page.keyboard.press(str(sh))
        if doppler:
            page.keyboard.press("Shift+1")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "prev => { const h = document.querySelector('h4'); return h && !h.textContent.includes(prev); }",
            arg=f"#{item_id} ",
            timeout=30_000,
        )
        settle(page)
        rows = store.annotation_history(item_id, reader["id"])
        assert [(r["sh"], r["pd"]) for r in rows] == [(sh, 1 if doppler else None)], text
        assert rows[0]["seconds"] is not None and rows[0]["seconds"] > 0
        graded.append(item_id)
        kinds.add(doppler)
    assert len(set(graded)) == 3
    assert kinds == {True, False}  # both a greyscale and a power Doppler item were graded
    # every grade was confirmed by a toast (toasts vanish after a few seconds: the page kept them)
    page.wait_for_function(
        "ids => ids.every(id => window.__toasts.some(t => t.includes(`Saved item #${id}:`)))",
        arg=graded,
        timeout=30_000,
    )
    store.close()
