"""The Streamlit side every page shares: the sign-in gate, literal display of user text and the
"Copy link" button.

Lives beside app.py (not in pages/, where Streamlit would list it as a page); the library
(`rascore`) never imports streamlit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

import streamlit as st
from streamlit.errors import StreamlitAPIException

from rascore.services import links, session
from rascore.permissions import PermissionDenied


def gate(check: Callable[[dict], object] | None = None):
    """(project, signed-in user): back to sign-in when nobody is, a message and stop when refused.

    ``check`` is the page's permission test (e.g. ``lambda u: require(u, "grade")``), run here so a
    refusal is a message in the page, never a traceback.
    """
    project = session.shared_project()
    user = session.current_user(project, st.session_state, touch=False)
    if user is None:  # opened without the app's gate (e.g. the first run after a restart)
        remember_address()
        try:
            st.switch_page("app.py")
        except StreamlitAPIException:
            st.warning("Sign in first.")
            st.stop()
    if check is not None:
        try:
            check(user)
        except PermissionDenied as exc:
            st.error(f"Not allowed: {exc}.")
            st.stop()
    return project, user


WANTED_KEY = "web.wanted"


def remember_address() -> None:
    """Keep this run's page and query for the app's gate, which opens them again (see app.py).

    The first run after a server start runs a page file on its own (Streamlit's older routing of
    a ``pages/`` folder, until ``st.navigation`` has run once); going through the gate would
    otherwise lose a link's address."""
    try:
        path = urlsplit(st.context.url or "").path.rstrip("/").rsplit("/", 1)[-1]
        st.session_state[WANTED_KEY] = (path, st.query_params.to_dict())
    except Exception:  # no browser behind this run
        pass


def take_link(*names: str) -> dict[str, str]:
    """The query parameters (of ``names``) a link opened this page with, taken once: they leave
    the address, which then shows the page; the view's "Copy link" gives the link of what is on
    screen. Empty when the page was not opened by such a link."""
    found: dict[str, str] = {}
    for name in names:
        value = st.query_params.get(name)
        if value is not None:
            found[name] = value
            del st.query_params[name]
    return found


def copy_link(path: str, **params: object) -> None:
    """A "Copy link" button: the link to this view (``/path?params``) with a copy button; it
    holds no session (the receiver signs in as themselves)."""
    try:
        current = st.context.url
    except Exception:  # no browser behind this run
        current = None
    with st.popover("Copy link", icon=":material/link:"):
        st.code(links.share_url(current, path, params), language=None)


def plain(text: object) -> str:
    """Text that may carry user input shown literally inside markdown (no formatting, no HTML)."""
    return re.sub(r"([\\`*_{}\[\]<>#|~$])", r"\\\1", str(text))
