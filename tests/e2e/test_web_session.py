"""In a real browser against a real server: a sign-in survives a reload and opens in a second tab
(the session cookie), sign-out in one tab ends the other, an expired, revoked or tampered token
gives the sign-in form, and links open pages and items (a signed-out link lands after sign-in;
a reader's link to /train is refused). The token never shows in a URL, the server log or the
audit log.

Runs on its own copy of the e2e project and its own server, with accounts of its own, so its
leases and sign-outs touch no other browser test."""

from __future__ import annotations

import sqlite3

import pytest

from rascore import auth
from rascore.services import tokens
from rascore.store import Store
from tests.e2e import harness
from tests.e2e.harness import heading, settle, wait_until

pytestmark = pytest.mark.e2e

READER, EXPERT = "web-reader", "web-expert"
PASSWORD = "web-session-password-1"
SIGNED_OUT = "[data-testid=stTextInput] input[autocomplete=username]"


@pytest.fixture(scope="module")
def web(e2e_project, tmp_path_factory):
    """(server, project folder): a copy of the e2e project with two accounts of its own, served."""
    source, _ = e2e_project
    root = tmp_path_factory.mktemp("web") / "project"
    harness.copy_project(source, root)
    store = Store(root / "rascore.db")
    auth.add_user(store, READER, "reader", None, PASSWORD, rounds=4)
    auth.add_user(store, EXPERT, "expert", None, PASSWORD, rounds=4)
    store.close()
    with harness.serve(root, tmp_path_factory.mktemp("web-log") / "streamlit.log") as server:
        yield server, root


@pytest.fixture
def context(browser):
    """A fresh browser profile (its own cookies); every tab of it shares them."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield ctx
    ctx.close()


def db(root) -> sqlite3.Connection:
    return sqlite3.connect(root / "rascore.db", timeout=30)


def session_cookie(context) -> dict | None:
    return next((c for c in context.cookies() if c["name"] == tokens.COOKIE), None)


def signed_in(page, name: str) -> None:
    page.get_by_text(f"Signed in as {name}").wait_for(timeout=30_000)
    settle(page)


def signed_out(page) -> None:
    page.locator(SIGNED_OUT).wait_for(timeout=30_000)
    settle(page)


def sign_in_here(page, name: str) -> None:
    """Fill the sign-in form on the page as it is (the address is left alone)."""
    signed_out(page)
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    signed_in(page, name)


def test_reload_second_tab_and_sign_out_in_one_tab_ends_the_other(web, context):
    server, root = web
    page = context.new_page()
    harness.sign_in(page, server.url, READER, PASSWORD)
    cookie = wait_until(lambda: session_cookie(context), 30, "the session cookie")
    token = cookie["value"]
    assert tokens.well_formed(token)
    assert (cookie["sameSite"], cookie["path"], cookie["httpOnly"], cookie["secure"]) == (
        "Strict",
        "/",
        False,
        False,
    )
    with db(root) as conn:  # the store holds its hash only
        assert conn.execute(
            "SELECT count(*) FROM session_tokens WHERE token_hash = ?", (tokens.digest(token),)
        ).fetchone() == (1,)

    harness.open_page(page, "Label")
    assert page.url == f"{server.url}/label"  # the address shows the page
    page.get_by_role("button", name="Submit and next").wait_for()
    page.reload()
    signed_in(page, READER)  # still signed in, on the same page
    assert page.url == f"{server.url}/label"
    page.get_by_role("button", name="Submit and next").wait_for()
    assert "Item #" in heading(page)

    second = context.new_page()
    second.goto(server.url)
    signed_in(second, READER)  # a second tab is signed in

    page.get_by_role("button", name="Sign out").click()
    signed_out(page)
    # the other tab's next run finds its token revoked
    second.locator("[data-testid=stSidebarNav]").get_by_role("link", name="Label").click()
    signed_out(second)
    assert second.get_by_text("This session was ended").is_visible()
    wait_until(lambda: session_cookie(context) is None, 30, "the cookie to be cleared")
    second.reload()
    signed_out(second)

    # the token never left the cookie: not in an address, the server log or the audit log
    assert token not in page.url and token not in second.url
    assert token not in server.log.read_text(errors="replace")
    with db(root) as conn:
        audit = "\n".join(str(row) for row in conn.execute("SELECT * FROM audit_log"))
        actions = [r[0] for r in conn.execute("SELECT action FROM audit_log WHERE target = ?", (READER,))]
    assert token not in audit
    assert {"sign_in", "session.restore", "sign_out", "session.revoked"} <= set(actions)


def test_expired_revoked_and_tampered_tokens_give_the_sign_in_form(web, context):
    server, root = web
    page = context.new_page()
    harness.sign_in(page, server.url, EXPERT, PASSWORD)
    token = wait_until(lambda: session_cookie(context), 30, "the session cookie")["value"]
    with db(root) as conn:  # an idle expiry in the past
        conn.execute(
            "UPDATE session_tokens SET expires_at = '2000-01-01T00:00:00.000+00:00' WHERE token_hash = ?",
            (tokens.digest(token),),
        )
    page.reload()
    signed_out(page)
    assert page.get_by_text("signed out after a period of inactivity").is_visible()
    wait_until(lambda: session_cookie(context) is None, 30, "the expired cookie to be cleared")

    sign_in_here(page, EXPERT)
    token = wait_until(lambda: session_cookie(context), 30, "a new session cookie")["value"]
    with db(root) as conn:  # revoked, as an admin's change would
        conn.execute(
            "UPDATE session_tokens SET revoked_at = '2025-01-01T00:00:00.000+00:00', revoked_reason = 'test'"
            " WHERE token_hash = ?",
            (tokens.digest(token),),
        )
    page.reload()
    signed_out(page)

    sign_in_here(page, EXPERT)
    cookie = wait_until(lambda: session_cookie(context), 30, "a new session cookie")
    last = cookie["value"][-1]
    context.add_cookies([{**cookie, "value": cookie["value"][:-1] + ("A" if last != "A" else "B")}])
    tab = context.new_page()
    tab.goto(server.url)
    signed_out(tab)  # a tampered token restores nobody, and is cleared
    wait_until(lambda: session_cookie(context) is None, 30, "the tampered cookie to be cleared")


def test_links_open_items_land_after_sign_in_and_respect_the_role(web, context):
    server, root = web
    with db(root) as conn:
        free = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM items WHERE id NOT IN (SELECT item_id FROM calibration_items)"
                " AND id NOT IN (SELECT item_id FROM study_cases) ORDER BY id DESC LIMIT 1"
            )
        ][0]
        case = conn.execute("SELECT item_id FROM study_cases LIMIT 1").fetchone()
    page = context.new_page()
    # signed out, a link shows the sign-in form and keeps its address; after sign-in it opens
    page.goto(f"{server.url}/label?item={free}")
    signed_out(page)
    assert page.url == f"{server.url}/label?item={free}"
    sign_in_here(page, READER)
    page.get_by_role("button", name="Submit and next").wait_for()
    assert heading(page).startswith(f"Item #{free} ")
    page.wait_for_url(f"{server.url}/label")  # the link's item was taken: the address shows the page
    # Copy link gives the link to the item on screen
    page.get_by_role("button", name="Copy link").click()
    page.get_by_text(f"{server.url}/label?item={free}").wait_for()

    # a study case is not graded from the queue, whoever links to it
    if case is not None:
        page.goto(f"{server.url}/label?item={case[0]}")
        signed_in(page, READER)
        page.get_by_text("belongs to a reader study or a calibration set").wait_for()

    # a reader's link to a page of another role: "Not allowed", never the page
    page.goto(f"{server.url}/train")
    signed_in(page, READER)
    page.get_by_text("Not allowed: web-reader (reader) may not start training.").wait_for()
    assert page.url == f"{server.url}/train"
    assert not page.get_by_role("heading", name="Train").count()
    assert not page.locator("[data-testid=stSidebarNav]").get_by_role("link", name="Train").count()


def test_the_first_run_after_a_server_start_keeps_the_session_and_the_link(web, context, tmp_path):
    """Streamlit runs a page file on its own on a server's very first run (its older routing of
    a pages/ folder): the gate remembers the address, restores the session and opens the link."""
    server, root = web
    page = context.new_page()
    harness.sign_in(page, server.url, EXPERT, PASSWORD)
    wait_until(lambda: session_cookie(context), 30, "the session cookie")
    with harness.serve(root, tmp_path / "restarted.log") as fresh:  # cookies do not depend on the port
        tab = context.new_page()
        tab.goto(f"{fresh.url}/dashboard?modality=SPD&cohort=test2")
        signed_in(tab, EXPERT)
        tab.wait_for_url(f"{fresh.url}/dashboard")  # the link was applied, then left the address
        for label, value in (("Modality", "SPD"), ("Test cohort", "test2")):
            box = tab.locator(f"[data-testid=stMain] [data-testid=stSelectbox] input[aria-label='{label}']")
            box.wait_for(timeout=30_000)  # on the tab the link opened (hidden tabs are not shown)
            assert box.input_value() == value
