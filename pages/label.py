"""Label: grade the reader's queue from the keyboard (0-3 SH, Shift+0-3 PD, Enter next, B back),
or read a study or a calibration set (chosen in the sidebar; their views are in ``views/``).

``/label?item=ID`` opens that item in the queue's view when the reader may grade it (the
labelling service's ``open_item`` applies the queue's rules); "Copy link" gives that link."""

from __future__ import annotations

import logging
import time

import streamlit as st

from rascore.services import labelling, links, session
from rascore.services.labelling import LabelError
from rascore.permissions import PermissionDenied, require
from rascore.scale import COHORTS, MODALITIES
from rascore.store import StoreError

import ui
from views import grading, reading

S = st.session_state
log = logging.getLogger("rascore.label")

project, user = ui.gate(lambda user: require(user, "grade"))
store = project.store


def filters() -> tuple[str | None, str | None]:
    """The queue's modality and cohort as chosen in the sidebar."""
    modality = S.get("label.modality", "All")
    cohort = S.get("label.cohort", "All")
    return (None if modality == "All" else modality), (None if cohort == "All" else cohort)


def current_item() -> int | None:
    """The item on screen: the one being edited (Back), else the claimed queue item."""
    if S.get("label.trail_pos") is not None:
        return S["label.trail"][S["label.trail_pos"]]
    claim = S.get("label.claim")
    return claim.item_id if claim else None


def flash(kind: str, text: str) -> None:
    S["label.msg"] = (kind, text)


def guarded(callback):
    """A button callback whose failure becomes a message on the page, never a traceback."""

    def run(*args):
        try:
            callback(*args)
        except Exception as exc:
            log.exception("labelling action failed")
            flash("error", f"That did not work: {exc}")

    return run


@guarded
def choose(item: str, grade: int) -> None:
    """A grade button (or its key) was pressed."""
    item_id = current_item()
    if item_id is None:
        return
    selection = S.get("label.sel") or {}
    if selection.get("item") != item_id:
        selection = {"item": item_id, "sh": None, "pd": None}
    selection[item] = grade
    S["label.sel"] = selection


@guarded
def submit(not_assessable: bool = False) -> None:
    """Write the grade now, then move on (a new row when it edits an earlier grade)."""
    item_id = current_item()
    if item_id is None:
        return
    selection = S.get("label.sel") or {}
    if selection.get("item") != item_id:
        selection = {"sh": None, "pd": None}
    shown = S.get("label.shown") or (None, time.monotonic())
    seconds = time.monotonic() - shown[1] if shown[0] == item_id else None
    reason = None
    if not_assessable:
        reason = S.get("label.na_reason")
        if reason == "other":
            reason = (S.get("label.na_text") or "").strip() or None
    try:
        labelling.submit(
            store,
            user,
            item_id,
            selection.get("sh"),
            selection.get("pd"),
            not_assessable=not_assessable,
            reason=reason,
            seconds=seconds,
        )
    except (LabelError, StoreError) as exc:
        flash("error", str(exc))
        return
    except Exception as exc:  # a message, never a traceback
        flash("error", f"The grade could not be saved: {exc}")
        return
    what = "not assessable" if not_assessable else _describe(selection)
    S["label.saved"] = f"Saved item #{item_id}: {what}"
    S["label.na_open"] = False
    S.pop("label.sel", None)
    trail = S.setdefault("label.trail", [])
    position = S.get("label.trail_pos")
    if position is not None:  # an edit: walk forward, back to the queue after the last one
        S["label.trail_pos"] = position + 1 if position + 1 < len(trail) else None
    else:
        claim = S.pop("label.claim", None)
        if claim is not None:
            S["label.after"] = claim.position
        if item_id in trail:
            trail.remove(item_id)
        trail.append(item_id)
        S["label.done"] = S.get("label.done", 0) + 1


def _describe(selection: dict) -> str:
    text = f"SH {selection.get('sh')}"
    if selection.get("pd") is not None:
        text += f", PD {selection['pd']}"
    return text


@guarded
def back() -> None:
    trail = S.get("label.trail") or []
    if not trail:
        flash("info", "Nothing graded yet to go back to.")
        return
    position = S.get("label.trail_pos")
    S["label.trail_pos"] = len(trail) - 1 if position is None else max(0, position - 1)
    S.pop("label.sel", None)


@guarded
def forward() -> None:
    position = S.get("label.trail_pos")
    if position is None:
        return
    trail = S.get("label.trail") or []
    S["label.trail_pos"] = position + 1 if position + 1 < len(trail) else None
    S.pop("label.sel", None)


@guarded
def skip() -> None:
    if S.get("label.trail_pos") is not None:
        forward()
        return
    claim = S.pop("label.claim", None)
    if claim is not None:
        labelling.skip(store, user, claim.item_id)
        S["label.after"] = claim.position
    S.pop("label.sel", None)


def link_item() -> int | None:
    """The item a link named (``?item=ID``), taken once: the address then shows the page alone,
    since the queue moves on from it. The queue's own view, unfiltered, opens it."""
    link = ui.take_link("item")
    if not link:
        return None
    try:
        item_id = links.item_id(link["item"])
    except links.LinkError as exc:
        flash("error", str(exc))
        return None
    S[reading.KEY] = reading.QUEUE
    S["label.modality"] = S["label.cohort"] = "All"
    return item_id


def open_linked(item_id: int) -> None:
    """Show a linked item: leased like a queue item, or as an edit of the reader's own grade."""
    try:
        opened = labelling.open_item(store, user, item_id)
    except (LabelError, StoreError) as exc:
        flash("error", str(exc))
        return
    S.pop("label.sel", None)
    S.pop("label.resume", None)
    if opened.claim is None:  # graded already: the reader's own grade, to edit (as Back does)
        trail = S.setdefault("label.trail", [])
        if item_id in trail:
            trail.remove(item_id)
        trail.append(item_id)
        S["label.trail_pos"] = len(trail) - 1
    else:
        S["label.claim"] = opened.claim
        S["label.trail_pos"] = None


@guarded
def toggle_not_assessable() -> None:
    S["label.na_open"] = not S.get("label.na_open", False)


ACTIONS = {"submit": submit, "back": back, "forward": forward, "skip": skip}


def request(action: str, *args) -> None:
    """Queue a move (submit, back, forward, skip) for the page run itself.

    Keys pressed in quick succession reach the server in one run, and Streamlit calls their
    callbacks in widget order, not key order; queuing the moves and doing them after every
    grade key's callback means "1, Shift+2, Enter" always submits SH 1 and PD 2.
    """
    S.setdefault("label.actions", []).append((action, args))


def run_requests() -> None:
    """Do the queued moves, in the order their keys' callbacks ran."""
    for action, args in S.pop("label.actions", None) or []:
        ACTIONS[action](*args)


grading.pixelated_style(("label", "study", "calib"))
linked = link_item()

# ------------------------------------------------------------------ sidebar: what to read, view
with st.sidebar:
    mode = reading.choose_mode(project, user)
    if mode == reading.QUEUE:
        st.selectbox("Modality", ["All", *MODALITIES], key="label.modality")
        st.selectbox("Cohort", ["All", *COHORTS], key="label.cohort")
    st.select_slider(
        "Zoom",
        list(grading.ZOOMS),
        key="label.zoom",
        help="Whole-pixel enlargement of the image; auto: up to about 640 px wide",
    )
    st.caption(
        "Keys: **0-3** SH · **Shift+0-3** PD (Doppler items) · **Enter** submit and next · "
        "**B** back · **F** forward · **S** skip · **N** not assessable"
        if mode == reading.QUEUE
        else "Keys: **0-3** SH · **Shift+0-3** PD (Doppler items) · **Enter** save (and Next)"
    )


modality, cohort = filters()


def open_queue() -> None:
    """Start the queue from its beginning when its modality or cohort changed."""
    if S.get("label.scope") != (modality, cohort):  # a new queue: start from its beginning
        if S.get("label.claim") is not None:
            labelling.skip(store, user, S["label.claim"].item_id)
        S["label.scope"] = (modality, cohort)
        S.pop("label.claim", None)
        S.pop("label.after", None)
        S.pop("label.progress", None)
    if "label.trail" not in S:
        S["label.trail"] = labelling.recent_items(store, user)
        S["label.resume"] = True


def leave_queue() -> None:
    """Reading something else: give the queue item back; the queue starts afresh on return."""
    if S.get("label.claim") is not None:
        labelling.skip(store, user, S["label.claim"].item_id)
    for key in ("label.claim", "label.scope", "label.trail_pos", "label.sel"):
        S.pop(key, None)


# ------------------------------------------------------------------ the item (a fragment: a
# key press reruns only this part of the page, not the app's navigation and sidebar)
@st.fragment
def workspace() -> None:
    """The current item, or a message instead of a traceback when something fails."""
    if session.current_user(project, st.session_state) is None:  # expired or deactivated
        st.rerun()
    try:
        item_workspace()
    except (LabelError, StoreError, PermissionDenied) as exc:
        st.error(str(exc))
    except Exception as exc:  # never a traceback in the browser; the log keeps the details
        log.exception("labelling page failed")
        st.error(f"Something went wrong: {type(exc).__name__}: {exc}")


def item_workspace() -> None:
    """The current item, its grade buttons, the definitions and the atlas."""
    run_requests()
    editing = S.get("label.trail_pos") is not None
    if not editing and S.get("label.claim") is None:
        S["label.claim"] = labelling.next_item(
            store,
            user,
            modality=modality,
            cohort=cohort,
            after=S.get("label.after"),
            resume=S.pop("label.resume", False),
        )
    claim = S.get("label.claim")
    item_id = current_item()

    progress_key = (modality, cohort, S.get("label.done", 0))
    if S.get("label.progress", (None,))[0] != progress_key:
        S["label.progress"] = (progress_key, labelling.progress(store, user, modality, cohort))
    total, done = S["label.progress"][1]

    if S.get("label.saved"):
        st.toast(S.pop("label.saved"), icon=":material/check:")

    if item_id is None:
        st.title("Label")
        st.success(
            "Your queue is empty: every item in it has your grade. Choose another modality "
            "or cohort in the sidebar, or go back to edit a grade."
        )
        st.button("Back (B)", on_click=request, args=("back",), shortcut="B", key="label.back")
        return

    view = labelling.item_view(store, user, item_id)
    mod = view.modality
    if S.get("label.shown", (None,))[0] != item_id:  # first time this item is on screen
        S["label.shown"] = (item_id, time.monotonic())
        grading.new_item("label")
        S["label.na_open"] = False
        if editing:
            previous = labelling.my_grade(store, user, item_id)
            S["label.sel"] = {
                "item": item_id,
                "sh": previous["sh"] if previous else None,
                "pd": previous["pd"] if previous else None,
            }
        if claim is not None and not editing:
            labelling.warm_next(project, user, claim, modality=modality, cohort=cohort)
    if claim is not None:  # keep the queue item leased, also while editing an earlier one
        S["label.claim"] = labelling.keep_alive(store, user, claim)

    selection = S.get("label.sel") or {}
    if selection.get("item") != item_id:
        selection = {"item": item_id, "sh": None, "pd": None}

    # ------------------------------------------------------------------ layout
    where = " ".join(str(x) for x in (view.joint, view.side) if x)
    title = f"Item #{item_id} · {mod.code} ({mod.name})" + (f" · {ui.plain(where)}" if where else "")
    st.markdown(f"#### {'Editing your grade: ' if editing else ''}{title}")
    st.progress(done / total if total else 0.0, text=f"{done} of {total} graded in this queue")

    message = S.pop("label.msg", None)
    if message:
        getattr(st, message[0])(message[1])

    image_col, grade_col = st.columns([3, 2], gap="medium")
    with image_col:
        grading.show_media(project, view, "label", S.get("label.zoom"))

    with grade_col:
        combined = grading.grade_buttons("label", mod, selection, choose)
        with st.container(horizontal=True, gap="small"):
            st.button(
                "Submit and next",
                key="label.submit",
                on_click=request,
                args=("submit",),
                type="primary",
                shortcut="Enter",
                icon=":material/keyboard_return:",
            )
            st.button("Back", key="label.back", on_click=request, args=("back",), shortcut="B")
            if editing:
                st.button("Forward", key="label.forward", on_click=request, args=("forward",), shortcut="F")
            else:
                st.button("Skip", key="label.skip", on_click=request, args=("skip",), shortcut="S")
            st.button("Not assessable", key="label.na", on_click=toggle_not_assessable, shortcut="N")
            ui.copy_link("label", item=item_id)
        if S.get("label.na_open"):
            with st.container(border=True):
                st.selectbox(
                    "Why is it not assessable?", labelling.NOT_ASSESSABLE_REASONS, key="label.na_reason"
                )
                if S.get("label.na_reason") == "other":
                    st.text_input("Reason", key="label.na_text", max_chars=300)
                st.button(
                    "Save as not assessable", key="label.na_submit", on_click=request, args=("submit", True)
                )
        hint = labelling.suggestion(store, user, item_id)
        if hint is not None:
            st.info(
                f"Pre-annotation ({hint['model']}): {hint['item']} {hint['grade']} "
                f"(probability {max(hint['probabilities']):.2f})"
            )
        grading.definitions(mod, selection, combined)

    grading.atlas(project, user, mod, "label", exclude=item_id)


if mode == reading.QUEUE:
    open_queue()
    if linked is not None:
        open_linked(linked)
    workspace()
else:
    leave_queue()
    reading.workspace(project, user, mode, S.get("label.zoom"))
