"""The Streamlit side every page shares: the sign-in gate and literal display of user text.

Lives beside app.py (not in pages/, where Streamlit would list it as a page); the library
(`rascore`) never imports streamlit.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import streamlit as st
from streamlit.errors import StreamlitAPIException

from rascore.services import session
from rascore.permissions import PermissionDenied


def gate(check: Callable[[dict], object] | None = None):
    """(project, signed-in user): back to sign-in when nobody is, a message and stop when refused.

    ``check`` is the page's permission test (e.g. ``lambda u: require(u, "grade")``), run here so a
    refusal is a message in the page, never a traceback.
    """
    project = session.shared_project()
    user = session.current_user(project, st.session_state, touch=False)
    if user is None:  # opened without the app's gate (e.g. the first run after a restart)
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


def plain(text: object) -> str:
    """Text that may carry user input shown literally inside markdown (no formatting, no HTML)."""
    return re.sub(r"([\\`*_{}\[\]<>#|~$])", r"\\\1", str(text))
