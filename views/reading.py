"""What the Label page reads: the reader's own queue (the page's own flow), an open study they are
enrolled in (``views.study_read``) or a calibration set (``views.calibration_read``).

The choice is a sidebar select box whose value is ``queue``, ``study:<id>`` or
``calibration:<id>``; it is offered only when there is something besides the queue.
"""

from __future__ import annotations

import logging

import streamlit as st

from rascore.permissions import PermissionDenied, allowed
from rascore.services import calibration, session, study
from rascore.services.calibration import CalibrationError
from rascore.services.study import StudyError
from rascore.store import StoreError

import ui
from views import calibration_read, study_read

S = st.session_state
log = logging.getLogger("rascore.label")
QUEUE = "queue"
KEY = "label.mode"


def modes(project, user) -> dict[str, str]:
    """Value -> label of everything this user may read: the queue, open studies, calibration sets."""
    out = {QUEUE: "My queue"}
    if allowed(user, "read_study"):
        for row in study.my_studies(project.store, user):
            out[f"study:{row['id']}"] = f"Study: {row['name']}"
    if allowed(user, "calibrate"):
        for row in calibration.calibration_sets(project.store, user):
            out[f"calibration:{row['id']}"] = f"Calibration: {row['name']}"
    return out


def choose_mode(project, user) -> str:
    """The sidebar choice of what to read (only shown when there is more than the queue)."""
    options = modes(project, user)
    if S.get(KEY) not in options:  # a study closed, or nothing chosen yet
        S[KEY] = QUEUE
    if len(options) > 1:
        st.selectbox("Read", list(options), format_func=options.__getitem__, key=KEY)
    return S[KEY]


def go_to(mode: str) -> None:
    """A button's callback: read something else (the page follows on its next run)."""
    S[KEY] = mode


@st.fragment
def workspace(project, user, mode: str, zoom: str | None) -> None:
    """A study's or a calibration set's reading view (a fragment: a key press reruns only this)."""
    if session.current_user(project, st.session_state) is None:  # expired or deactivated
        st.rerun()
    if S.get(KEY) != mode:  # a button chose something else to read: the whole page follows
        st.rerun()
    kind, _, ident = mode.partition(":")
    try:
        if kind == "study":
            study_read.show(project, user, int(ident), zoom, go_to)
        else:
            calibration_read.show(project, user, int(ident), zoom)
    except (StudyError, CalibrationError, StoreError, PermissionDenied) as exc:
        st.error(ui.plain(exc))
    except Exception as exc:  # never a traceback in the browser; the log keeps the details
        log.exception("reading view failed")
        st.error(ui.plain(f"Something went wrong: {type(exc).__name__}: {exc}"))
