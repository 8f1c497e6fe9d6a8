"""Reading a calibration set on the Label page: grade the item due with the queue's keys, Enter
saves it, then the feedback (the reference grade, matched or not, the EOSS definitions of the
levels in dispute, atlas examples of the reference level) until Next (Enter again). The reader's
running weighted kappa against the target, and whether they passed, stay on top.
"""

from __future__ import annotations

import math

import streamlit as st

from rascore.media import preview
from rascore.scale import ITEM_NAMES, ITEMS
from rascore.services import calibration, labelling
from rascore.services.calibration import CalibrationError, CalibrationStatus, Feedback
from rascore.store import StoreError

import ui
from views import grading

S = st.session_state
PREFIX = "calib"


def request_save(owner: tuple[int, int]) -> None:
    """Enter (or the button): save this item's read on the next run, after every grade key's callback."""
    S["calib.save"] = owner


def next_item() -> None:
    """Leave the feedback for the next item."""
    S.pop("calib.feedback", None)


def _save(project, user) -> None:
    """Save the read requested, timed from when the item was served; keep its feedback."""
    owner = S.pop("calib.save", None)
    served = grading.served_at(PREFIX, owner)
    if owner is None or served is None:
        return
    chosen = grading.selection(PREFIX, owner)
    set_id, item_id = owner
    try:
        feedback = calibration.record_calibration(
            project.store, user, set_id, item_id, chosen["sh"], chosen["pd"], started_at=served
        )
    except (CalibrationError, StoreError) as exc:
        S["calib.msg"] = str(exc)
        return
    S["calib.served"].pop(owner, None)
    S.pop("calib.sel", None)
    S["calib.feedback"] = feedback


def standing(status: CalibrationStatus) -> str:
    """One line: kappa over the window against the target, reads, passed or not."""
    if math.isnan(status.kappa):
        kappa = f"undefined ({status.reason})" if status.reason else "undefined"
    else:
        kappa = f"{status.kappa:.2f}"
    verdict = (
        "passed"
        if status.passed
        else "set used up without reaching the target"
        if status.used_up
        else "not passed yet"
    )
    return (
        f"Your weighted kappa over the last {status.window_n} reads: **{kappa}** · target "
        f"{status.target_kappa:.2f} · {status.reads} of {status.items} items read · **{verdict}**"
    )


def show(project, user, set_id: int, zoom: str | None) -> None:
    """The item due with its grade buttons, or the feedback on the last read, or the outcome."""
    store = project.store
    _save(project, user)
    row = next((c for c in calibration.calibration_sets(store, user) if c["id"] == set_id), None)
    if row is None:
        raise CalibrationError(f"There is no calibration set {set_id}.")
    status = calibration.calibration_status(store, user, set_id)
    st.markdown(f"#### Calibration {ui.plain(row['name'])} · {row['grade']}")
    st.markdown(standing(status))
    message = S.pop("calib.msg", None)
    if message:
        st.error(ui.plain(message))
    feedback = S.get("calib.feedback")
    if feedback is not None and feedback.status.set_id == set_id:
        show_feedback(project, user, feedback, zoom)
        return
    if status.passed:
        st.success("You passed this calibration set: the studies that require it are open to you.")
        return
    task = calibration.next_calibration_item(store, user, set_id)
    if task is None:
        st.warning("You have read every item of this set without reaching the target; ask an admin.")
        return
    owner = (set_id, task.item_id)
    grading.serve(PREFIX, owner, task.served_at)
    view = labelling.item_view(store, user, task.item_id)
    mod = view.modality
    st.progress(
        (task.number - 1) / task.total, text=f"item {task.number} of {task.total} · {mod.code} ({mod.name})"
    )
    image_col, grade_col = st.columns([3, 2], gap="medium")
    with image_col:
        grading.show_media(project, view, PREFIX, zoom)
    with grade_col:
        grading.grade_form(PREFIX, mod, owner, "Save and see the reference", request_save)
    grading.atlas(project, user, mod, PREFIX, exclude=task.item_id)


def show_feedback(project, user, feedback: Feedback, zoom: str | None) -> None:
    """The reference grade, matched or not, the definitions in dispute and atlas examples; Next."""
    view = labelling.item_view(project.store, user, feedback.item_id)
    grade = feedback.grade
    image_col, text_col = st.columns([3, 2], gap="medium")
    with image_col:
        grading.show_media(project, view, PREFIX, zoom)
    with text_col:
        if feedback.matched:
            st.success(f"Matched: the reference {grade} grade is {feedback.reference}, as you read it.")
        else:
            st.warning(
                f"Not matched: the reference {grade} grade is {feedback.reference}; you read {feedback.read}."
            )
        for diff in feedback.differences:
            st.markdown(
                f"**{ITEM_NAMES[diff.item]}**\n\n"
                f"- reference {diff.reference}: {diff.reference_definition}\n"
                f"- yours {diff.read}: {diff.read_definition}"
            )
        if not feedback.differences:
            st.markdown(f"**{ITEM_NAMES[grade]} {feedback.reference}**: {ITEMS[grade][feedback.reference]}")
        st.button(
            "Next",
            key="calib.next",
            on_click=next_item,
            type="primary",
            shortcut="Enter",
            icon=":material/arrow_forward:",
        )
    st.markdown(f"**Atlas: {grade} {feedback.reference}**")
    if not feedback.examples:
        st.caption(
            f"No reference example of {grade} {feedback.reference} outside the calibration and study "
            "items yet."
        )
    for example, column in zip(feedback.examples, st.columns(max(1, len(feedback.examples)) + 2)):
        column.image(
            preview.thumbnail_png(project.media, example.sha256), caption=grading.example_caption(example)
        )
