"""Reading a study on the Label page: the read due (``rascore.services.study.next_task``), its
progress, the grade buttons with the queue's keys, and Enter saves it.

The time of a read runs from when its task was first served in this session (kept in the session
state under the task: study, case, arm) to the save. The aided arm shows, beside the scan, the
frozen model's grade, its probabilities and an attribution overlay; the unaided arm shows nothing
from the model. Never another reader's grade, and no item id (a crossover's second session must
not name the case read in the first). A crossover's washout shows the date session 2 opens; a
study whose calibration set the reader has not passed says so, with a way to calibration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import plotly.graph_objects as go
import streamlit as st

from rascore.scale import GRADES
from rascore.services import labelling, study
from rascore.services.calibration import CalibrationError, CalibrationRequired
from rascore.services.study import StudyError, Task, WashoutPending
from rascore.store import StoreError

import ui
from views import grading

S = st.session_state
log = logging.getLogger("rascore.label.study")
PREFIX = "study"


def _owner(task: Task) -> tuple[int, int, str]:
    return (task.study_id, task.item_id, task.arm)


def request_save(owner: tuple[int, int, str]) -> None:
    """Enter (or the button): save this task's read on the next run, after every grade key's callback."""
    S["study.save"] = owner


def _save(project, user) -> None:
    """Save the read requested, timed from when its task was served; a message either way."""
    owner = S.pop("study.save", None)
    served = grading.served_at(PREFIX, owner)
    if owner is None or served is None:
        return
    chosen = grading.selection(PREFIX, owner)
    study_id, item_id, arm = owner
    try:
        study.record_read(
            project.store, user, study_id, item_id, arm, chosen["sh"], chosen["pd"], started_at=served
        )
    except (StudyError, CalibrationError, StoreError) as exc:
        S["study.msg"] = str(exc)
        return
    S["study.served"].pop(owner, None)
    S.pop("study.sel", None)
    S["study.saved"] = f"Saved your {arm} read"


def _progress(done: int, total: int, text: str) -> None:
    st.progress(done / total if total else 0.0, text=f"{done} of {total} reads done{text}")


def show(project, user, study_id: int, zoom: str | None, go_to: Callable[[str], None]) -> None:
    """The study's read due now, or why there is none (washout, calibration, finished)."""
    store = project.store
    _save(project, user)
    row = next((s for s in study.my_studies(store, user) if s["id"] == study_id), None)
    if row is None:
        raise StudyError("This study is not open for you any more.")
    if S.get("study.saved"):
        st.toast(S.pop("study.saved"), icon=":material/check:")
    heading = f"#### Study {ui.plain(row['name'])}"
    try:
        task = study.next_task(store, user, study_id)
    except WashoutPending as wait:
        st.markdown(heading)
        mine = study.progress(store, user, study_id)
        _progress(mine["done"], mine["total"], " · session 1 finished")
        st.info(ui.plain(wait))
        return
    except CalibrationRequired as exc:
        st.markdown(heading)
        st.warning(ui.plain(exc))
        st.button(
            "Go to calibration",
            key="study.calibrate",
            on_click=go_to,
            args=(f"calibration:{row['calibration_set_id']}",),
            icon=":material/school:",
        )
        return
    if task is None:
        st.markdown(heading)
        mine = study.progress(store, user, study_id)
        _progress(mine["done"], mine["total"], "")
        st.success("You have read every case of this study. Thank you for taking part.")
        return

    owner = _owner(task)
    grading.serve(PREFIX, owner, task.served_at)
    view = labelling.item_view(store, user, task.item_id)
    mod = view.modality
    aided = task.arm == "aided"
    arm = "aided: the model's reading is shown" if aided else "unaided"
    st.markdown(
        f"{heading} · read {task.number} of {task.total} · {mod.code} ({mod.name}){grading.where(view)}"
    )
    _progress(task.number - 1, task.total, f" · session {task.session} · this read: {arm}")
    message = S.pop("study.msg", None)
    if message:
        st.error(ui.plain(message))

    columns = st.columns([3, 2, 2] if aided else [3, 2], gap="medium")
    with columns[0]:
        # three columns on an aided read: the automatic zoom keeps the scan within its column
        grading.show_media(project, view, PREFIX, zoom, target=440 if aided else 640)
    overlay_slot = None
    if aided:
        with columns[1]:
            overlay_slot = show_aid(store, user, task)
    with columns[-1]:
        grading.grade_form(PREFIX, mod, owner, "Save and next", request_save)
    grading.atlas(project, user, mod, PREFIX, exclude=task.item_id)
    if overlay_slot is not None:  # last: the grade buttons are on screen while it is computed
        with overlay_slot:
            show_overlay(project, user, task)


def show_aid(store, user, task: Task):
    """The frozen model's grade and probabilities for the aided read due; the overlay's place."""
    cache = S.setdefault("study.aid", {})
    owner = _owner(task)
    if owner not in cache:
        cache.clear()  # only the task on screen is kept
        cache[owner] = {"aid": study.model_aid(store, user, task.study_id, task.item_id)}
    aid = cache[owner]["aid"]
    st.markdown("**The model's reading**")
    if aid.grade is None:
        st.info(f"No model output for this case: {ui.plain(aid.reason)}.")
        return None
    st.markdown(f"{ui.plain(aid.model)}: {aid.target} **{aid.grade}**")
    figure = go.Figure(
        go.Bar(
            x=[str(g) for g in GRADES],
            y=list(aid.probabilities),
            marker_color=["#d62728" if g == aid.grade else "#7f7f7f" for g in GRADES],
            text=[f"{p:.2f}" for p in aid.probabilities],
            textposition="outside",
        )
    )
    figure.update_layout(
        height=200,
        margin=dict(l=10, r=10, t=30, b=10),
        title=f"Probability of each {aid.target} grade",
        xaxis_title=f"{aid.target} grade",
        yaxis=dict(range=[0, 1.15], showticklabels=False),
    )
    st.plotly_chart(figure, width="stretch", key="study.aid_chart", config={"displayModeBar": False})
    return st.container()


def show_overlay(project, user, task: Task) -> None:
    """The attribution overlay of the frozen model version for this case, or one line saying why not."""
    entry = (S.get("study.aid") or {}).get(_owner(task))
    if entry is None:
        return
    if "overlay" not in entry:
        entry["overlay"] = _overlay(project, user, task)
    path, text = entry["overlay"]
    if path is None:
        st.caption(text)
    else:
        st.image(path, caption=text)


def _overlay(project, user, task: Task) -> tuple[str | None, str]:
    """(overlay picture, caption), or (None, why there is none). Imports torch on first use."""
    try:
        from rascore.services import explain
        from views.explainer import shared_explainer

        explainer, lock = shared_explainer(project)
        with st.spinner("Computing where the model looked..."), lock:
            e = explain.explain_study_aid(explainer, user, task.study_id, task.item_id)
    except Exception as exc:  # one line, never a traceback: the grade above stays usable
        if not isinstance(exc, (LookupError, StudyError)):
            log.exception("study aid overlay failed")
        return None, f"Attribution overlay unavailable: {exc}"
    return e.paths["overlay"], f"{e.method_name}: where the evidence for grade {e.target} lies"
