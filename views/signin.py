"""The app's sign-in side: the sign-in form (password, and single sign-on when configured), the
session cookie that lets a sign-in survive a reload or a second tab, and sign-out.

The cookie holds the session token of ``rascore.services.tokens`` and nothing else. Streamlit
reads cookies (``st.context.cookies``, those sent when the tab connected) but has no call that
sets one, so the browser writes it: a one-line script in ``st.html`` (not an iframe: it runs in
the app's own document) sets ``document.cookie`` once, on the run after a sign-in, with
``Path=/``, ``SameSite=Strict``, ``Max-Age`` = the token's absolute lifetime, and ``Secure`` when
the page was served over HTTPS (the browser knows; a proxy's headers need not be trusted). Such
a cookie cannot be HttpOnly: docs/RISKS.md says what that means and what limits it.
"""

from __future__ import annotations

import streamlit as st

from rascore.services import session, tokens
from ui import plain

S = st.session_state
PENDING_KEY = "rascore.web.cookie"  # (token, max-age) to write on the next full run
CLEAR_KEY = "web.cookie_clear"  # True: clear; a token: clear only while the browser holds it
TRIED_KEY = "web.cookie_tried"  # the digest of a cookie already refused in this tab
_CLEAR = f"document.cookie = '{tokens.COOKIE}=; Path=/; Max-Age=0; SameSite=Strict';"


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


def _start(project, user, method: str) -> None:
    """A session for this tab and a token for the browser's cookie (written on the next run)."""
    policy = session.Policy.from_env()
    token = session.start(project, S, user, method, policy=policy)
    S[PENDING_KEY] = (token, int(policy.max_s))
    S.pop(TRIED_KEY, None)


def sign_in_form() -> None:
    """The sign-in page: local account form, and the single sign-on button when configured.

    It stands in for every page while nobody is signed in, so a link keeps its address (path
    and query) and, after the sign-in's rerun, opens what it pointed at."""
    project = session.shared_project()
    st.title("RAScore")
    st.caption("EULAR-OMERACT synovitis scoring of joint ultrasound")
    if session.was_expired(S):
        st.info("You were signed out after a period of inactivity. Sign in again to go on.")
    elif session.was_revoked(S):
        st.info(
            "This session was ended: signed out in another tab, or the account was changed by "
            "an admin. Sign in again to go on."
        )
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
                _start(project, user, "password")
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
                    _start(project, user, "oidc")
                    st.rerun()
            else:
                st.button(
                    "Sign in with single sign-on",
                    on_click=st.login,
                    icon=":material/key:",
                    key="sign_in.oidc",
                )
    cookie_script()  # last: the script takes no room above the form


def _cookie() -> str | None:
    try:
        value = st.context.cookies.get(tokens.COOKIE)
    except Exception:  # no browser behind this run
        return None
    return value if isinstance(value, str) else None  # (AppTest's stand-in is not a str)


def restore(project) -> dict | None:
    """The user of the browser's session cookie (a reload, a second tab), or None.

    A cookie that does not hold (forged, revoked, expired) is cleared in the browser and not
    read again by this tab."""
    token = _cookie()
    if not token:
        return None
    key = tokens.digest(token) if tokens.well_formed(token) else "malformed"
    if S.get(TRIED_KEY) == key:
        return None
    user = session.restore(project, S, token)
    if user is None:
        S[TRIED_KEY] = key
        if S.get(CLEAR_KEY) is not True:  # a sign-out's clear stays unconditional
            S[CLEAR_KEY] = token if tokens.well_formed(token) else True
    return user


def sign_out(project) -> None:
    """End the session and the browser's (and the identity provider's, when signed in with it)."""
    record = S.get(session.STATE_KEY)
    session.end(project, S)
    S[CLEAR_KEY] = True
    if record is not None and record.method == "oidc":
        st.logout()


def cookie_script() -> None:
    """Write or clear the session cookie in the browser when this run has one to write (called
    last in the sidebar, or last on the sign-in form)."""
    pending = S.pop(PENDING_KEY, None)
    clear = S.pop(CLEAR_KEY, None)
    script = ""
    if pending is not None:
        token, max_age = pending
        if tokens.well_formed(token):  # URL-safe characters only: nothing to escape
            script = (
                f"document.cookie = '{tokens.COOKIE}={token}; Path=/; Max-Age={int(max_age)};"
                " SameSite=Strict' + (location.protocol === 'https:' ? '; Secure' : '');"
            )
    elif clear is True:
        script = _CLEAR
    elif isinstance(clear, str) and tokens.well_formed(clear):
        # only while the browser still holds the refused token: another tab may have signed
        # in again since this tab connected, and its cookie must stay
        script = f"if (document.cookie.split('; ').includes('{tokens.COOKIE}={clear}')) {{ {_CLEAR} }}"
    if script:
        st.html(f"<script>{script}</script>", unsafe_allow_javascript=True)
