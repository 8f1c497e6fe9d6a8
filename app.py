"""RAScore web app: the sign-in gate and the navigation between pages (each page is in pages/)."""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from rascore import permissions
from rascore.services import session
from rascore.permissions import PermissionDenied
from ui import plain

ROOT = Path(__file__).resolve().parent
log = logging.getLogger("rascore.app")

st.set_page_config(page_title="RAScore", page_icon=":material/ecg_heart:", layout="wide")


def oidc_configured() -> bool:
    """True when an [auth] section is in the app's secrets (then single sign-on is offered)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def oidc_claims() -> dict | None:
    """The identity provider's claims when the visitor came back signed in, else None."""
    try:
        return dict(st.user) if st.user.is_logged_in else None
    except Exception:
        return None


def sign_in_form() -> None:
    """The sign-in page: local account form, and the single sign-on button when configured."""
    project = session.shared_project()
    st.title("RAScore")
    st.caption("EULAR-OMERACT synovitis scoring of joint ultrasound")
    if session.was_expired(st.session_state):
        st.info("You were signed out after a period of inactivity. Sign in again to go on.")
    left, _ = st.columns([2, 3])
    with left:
        with st.form("sign_in", enter_to_submit=True):
            st.subheader("Sign in")
            name = st.text_input("User name", key="sign_in.name", autocomplete="username")
            password = st.text_input(
                "Password", type="password", key="sign_in.password", autocomplete="current-password"
            )
            submitted = st.form_submit_button("Sign in", type="primary")
        if submitted:
            try:
                user = session.sign_in(project, name, password)
            except session.SignInError as exc:
                st.error(plain(exc))
            else:
                session.begin(st.session_state, user, "password")
                st.rerun()
        if oidc_configured():
            st.divider()
            claims = oidc_claims()
            if claims:
                try:
                    user = session.oidc_user(project, claims)
                except session.SignInError as exc:
                    st.error(plain(exc))
                    st.button("Sign out of the identity provider", on_click=st.logout)
                else:
                    session.begin(st.session_state, user, "oidc")
                    st.rerun()
            else:
                st.button(
                    "Sign in with single sign-on",
                    on_click=st.login,
                    icon=":material/key:",
                    key="sign_in.oidc",
                )


def sign_out(project) -> None:
    """End the session (and the identity provider's, when signed in through it)."""
    record = st.session_state.get(session.STATE_KEY)
    session.end(project, st.session_state)
    if record is not None and record.method == "oidc":
        st.logout()


try:
    project = session.shared_project()
    user = session.current_user(project, st.session_state)
except Exception as exc:  # a message in the page, never a traceback
    log.exception("project could not be opened")
    st.error(plain(f"The project could not be opened: {exc}"))
    st.stop()

if user is None:  # the gate: a navigation holding only the sign-in page
    navigation = st.navigation(
        [st.Page(sign_in_form, title="Sign in", icon=":material/login:", url_path="sign-in", default=True)],
        position="hidden",
    )
else:
    specs = permissions.pages_for(user, ROOT)
    navigation = st.navigation(
        [
            st.Page(
                str(ROOT / spec.path),
                title=spec.title,
                icon=spec.icon,
                default=spec.default,
                url_path=Path(spec.path).stem,
            )
            for spec in specs
        ],
        position="sidebar",
    )
    with st.sidebar:
        st.text(f"Signed in as {user['name']} ({user['role']})")
        st.button("Sign out", on_click=sign_out, args=(project,), icon=":material/logout:", key="sign_out")

try:
    navigation.run()
except PermissionDenied as exc:
    st.error(plain(f"Not allowed: {exc}."))
except Exception as exc:  # never a traceback in the browser; the log keeps the details
    log.exception("page failed")
    st.error(plain(f"Something went wrong on this page: {type(exc).__name__}: {exc}"))
