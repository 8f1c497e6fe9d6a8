"""End-to-end fixtures: a small demo project built once per session, a real ``streamlit run``
server on a free port against it, and Debian's headless Chromium driven by Playwright."""

from __future__ import annotations

import pytest

from tests.e2e import harness


@pytest.fixture(scope="session")
def e2e_project(tmp_path_factory):
    """(project folder, demo accounts' passwords), built once for the whole session."""
    root = tmp_path_factory.mktemp("e2e") / "project"
    passwords = harness.build_demo_project(root)
    return root, passwords


@pytest.fixture(scope="session")
def server(e2e_project, tmp_path_factory):
    """The app served against the e2e project; stopped at the end of the session."""
    root, _ = e2e_project
    log = tmp_path_factory.mktemp("e2e-log") / "streamlit.log"
    with harness.serve(root, log) as running:
        yield running


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = harness.launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser tab (its own Streamlit session)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    yield tab
    context.close()
