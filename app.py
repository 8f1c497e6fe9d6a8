"""RAScore web app: the sign-in gate and the navigation between pages (each page is in pages/).

Every page has a stable path (``/label``, ``/train``...; ``rascore.services.links``), whoever
opens it: signed out, each path shows the sign-in form and keeps the address, so the sign-in's
rerun lands where a link pointed; signed in, a page the role may not see is a hidden page that
says "Not allowed" (never the page's content). A sign-in survives a reload and opens in a new
tab through the session cookie (``views/signin.py``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from rascore import permissions
from rascore.permissions import PermissionDenied
from rascore.services import links, session
from ui import WANTED_KEY, plain
from views import signin

ROOT = Path(__file__).resolve().parent
log = logging.getLogger("rascore.app")

st.set_page_config(page_title="RAScore", page_icon=":material/ecg_heart:", layout="wide")


def refusal(spec: permissions.PageSpec, user: dict):
    """A page the user's role may not open: its address answers "Not allowed", nothing else."""

    def refuse() -> None:
        permissions.require_any(user, spec.needs)  # raises: shown by the navigation below

    return refuse


try:
    project = session.shared_project()
    user = session.current_user(project, st.session_state)
    if user is None:
        user = signin.restore(project)
except Exception as exc:  # a message in the page, never a traceback
    log.exception("project could not be opened")
    st.error(plain(f"The project could not be opened: {exc}"))
    st.stop()

if user is None:  # the gate: every path shows the sign-in form (the default's own path unused)
    pages = [
        st.Page(
            signin.sign_in_form,
            title="Sign in",
            icon=":material/login:",
            url_path="sign-in" if spec.default else links.path_of(spec),
            default=spec.default,
        )
        for spec in permissions.PAGES
    ]
    navigation = st.navigation(pages, position="hidden")
else:
    allowed = permissions.pages_for(user, ROOT)
    pages = [
        st.Page(
            str(ROOT / spec.path),
            title=spec.title,
            icon=spec.icon,
            default=spec.default,
            url_path=links.path_of(spec),
        )
        for spec in allowed
    ]
    pages += [
        st.Page(refusal(spec, user), title=spec.title, url_path=links.path_of(spec), visibility="hidden")
        for spec in permissions.PAGES
        if spec not in allowed
    ]
    navigation = st.navigation(pages, position="sidebar")
    with st.sidebar:
        st.text(f"Signed in as {user['name']} ({user['role']})")
        st.button(
            "Sign out", on_click=signin.sign_out, args=(project,), icon=":material/logout:", key="sign_out"
        )
        signin.cookie_script()  # last in the sidebar: the script takes no room in the page

wanted = st.session_state.pop(WANTED_KEY, None)  # a page file ran before the gate: its address
if wanted is not None:
    target = next((p for p in pages if p.url_path == wanted[0] and wanted[0]), None)
    if target is not None:
        st.switch_page(target, query_params=wanted[1])

try:
    navigation.run()
except PermissionDenied as exc:
    st.error(plain(f"Not allowed: {exc}."))
except Exception as exc:  # never a traceback in the browser; the log keeps the details
    log.exception("page failed")
    st.error(plain(f"Something went wrong on this page: {type(exc).__name__}: {exc}"))
