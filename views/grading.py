"""What every way of reading an item shows: its picture (still, or clip with a frame slider, whole-
pixel zoom), the EOSS grade buttons with their keys (0-3 SH, Shift+0-3 PD), the combined score,
the definitions and the reference atlas.

Used by the Label page's queue, study and calibration reading; each passes its own ``prefix`` so
widget keys (``label.sh2``, ``study.sh2``) and picture containers (``label-image``) stay apart.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import streamlit as st

from rascore.media import preview
from rascore.scale import GRADES, PD_DEFINITIONS, SH_DEFINITIONS, Modality
from rascore.services import labelling

import ui

S = st.session_state
PLAY = "▶ play"
ZOOMS = {"auto": None, "1x": 1, "2x": 2, "3x": 3, "4x": 4}


def pixelated_style(prefixes: tuple[str, ...]) -> None:
    """Whole-pixel enlargement of the item pictures of these prefixes (static style, no user data)."""
    selectors = ", ".join(f".st-key-{p}-image img" for p in prefixes)
    # never wider than its column: a zoom chosen for a wide layout shrinks instead of spilling over
    st.html(f"<style>{selectors} {{ image-rendering: pixelated; max-width: 100%; height: auto; }}</style>")


def new_item(prefix: str) -> None:
    """A new item is on screen: its clip plays from the start."""
    S[f"{prefix}.frame"] = PLAY


def serve(prefix: str, owner: tuple, served_at) -> None:
    """A read is on screen: the first time, remember when it was served (its time starts then)
    and start its clip from the beginning."""
    served = S.setdefault(f"{prefix}.served", {})
    if owner not in served:
        served[owner] = served_at
        new_item(prefix)


def served_at(prefix: str, owner: tuple | None):
    """When the read ``owner`` was first served, or None."""
    return (S.get(f"{prefix}.served") or {}).get(owner)


def grade_form(
    prefix: str, mod: Modality, owner: tuple, save_label: str, on_save: Callable[..., None]
) -> None:
    """One read's grade buttons (keys 0-3, Shift+0-3), its save button (Enter, calling
    ``on_save(owner)``) and the EOSS definitions beside the grades chosen."""
    chosen = selection(prefix, owner)
    combined = grade_buttons(prefix, mod, chosen, choose, (prefix, owner))
    st.button(
        save_label,
        key=f"{prefix}.submit",
        on_click=on_save,
        args=(owner,),
        type="primary",
        shortcut="Enter",
        icon=":material/keyboard_return:",
    )
    definitions(mod, chosen, combined)


def show_media(
    project, view: labelling.ItemView, prefix: str, zoom_choice: str | None, target: int = 640
) -> None:
    """The item's picture: a still, or a clip that plays (or one frame chosen on a slider).

    Native pixels are sent once; the browser enlarges them by whole pixels (no smoothing). The
    automatic zoom keeps the picture within ``target`` pixels wide (less in a narrower layout).
    """
    zoom = preview.zoom_for(view.width, ZOOMS[zoom_choice or "auto"], target)
    width = view.width * zoom
    with st.container(key=f"{prefix}-image"):
        if view.frames > 1:
            frame_choice = st.select_slider(
                "Frame",
                [PLAY, *range(1, view.frames + 1)],
                key=f"{prefix}.frame",
                help="Play the clip, or pick one of its frames",
            )
            if frame_choice == PLAY:
                gif = preview.clip_gif(project.media, view.sha256, view.fps)
                st.image(
                    preview.data_url(gif),
                    width=width,
                    caption=f"clip, {view.frames} frames at {view.fps or 15:g} fps",
                )
            else:
                png = preview.frame_png(project.media, view.sha256, int(frame_choice) - 1)
                st.image(preview.data_url(png), width=width, caption=f"frame {frame_choice} of {view.frames}")
        else:
            st.image(
                preview.data_url(preview.frame_png(project.media, view.sha256, 0)),
                width=width,
                caption=f"still, {view.width}×{view.height} px, shown ×{zoom}",
            )


def grade_buttons(
    prefix: str,
    mod: Modality,
    selection: dict,
    on_choose: Callable[..., None],
    args: tuple = (),
) -> int | None:
    """SH buttons (keys 0-3) and, on a Doppler item, PD buttons (Shift+0-3); below them the
    combined score, or what is missing or wrong. Returns the combined score (None until valid).

    A button calls ``on_choose(*args, "sh" | "pd", grade)``."""
    st.markdown("**Synovial hypertrophy (SH)** · keys 0-3")
    with st.container(horizontal=True, gap="small"):
        for grade in GRADES:
            st.button(
                str(grade),
                key=f"{prefix}.sh{grade}",
                on_click=on_choose,
                args=(*args, "sh", grade),
                shortcut=str(grade),
                help=SH_DEFINITIONS[grade],
                type="primary" if selection.get("sh") == grade else "secondary",
            )
    if mod.doppler:
        st.markdown("**Power Doppler (PD)** · keys Shift+0 to Shift+3")
        with st.container(horizontal=True, gap="small"):
            for grade in GRADES:
                st.button(
                    str(grade),
                    key=f"{prefix}.pd{grade}",
                    on_click=on_choose,
                    args=(*args, "pd", grade),
                    shortcut=f"Shift+{grade}",
                    help=PD_DEFINITIONS[grade],
                    type="primary" if selection.get("pd") == grade else "secondary",
                )
    combined, problem = labelling.preview(mod.code, selection.get("sh"), selection.get("pd"))
    if combined is not None:
        label = "Combined EOSS score" if mod.doppler else "SH grade (this item's score)"
        st.markdown(f"{label}: **{combined}**")
    elif selection.get("sh") is not None or selection.get("pd") is not None:
        st.warning(problem)
    return combined


def definitions(mod: Modality, selection: dict, combined: int | None) -> None:
    """The EOSS definitions of this modality's items, the chosen level of each in bold."""
    with st.expander("EOSS definitions", expanded=True):
        for heading, texts in labelling.definitions(mod.code).items():
            st.markdown(f"**{heading}**")
            chosen = (
                selection.get("pd")
                if heading.startswith("Power")
                else combined
                if heading.startswith("Combined")
                else selection.get("sh")
            )
            st.markdown(
                "\n".join(
                    f"- {'**' if g == chosen else ''}{g}: {text}{'**' if g == chosen else ''}"
                    for g, text in texts.items()
                )
            )


def example_caption(example: labelling.AtlasEntry) -> str:
    """An atlas example's caption: its item and reference grades."""
    return f"#{example.item_id}: SH {example.sh}" + (f", PD {example.pd}" if example.pd is not None else "")


def atlas(project, user, mod: Modality, prefix: str, exclude: int | None) -> None:
    """The reference atlas behind a toggle: reference-labelled examples of each grade.

    The store never offers a study case or a calibration item, and ``exclude`` (the item on
    screen) is never shown."""
    if not st.toggle(
        "Reference atlas",
        key=f"{prefix}.atlas",
        help="Reference-labelled training examples of each grade of this modality",
    ):
        return
    atlas_items = ("EOSS", "SH", "PD") if mod.doppler else ("SH",)
    atlas_item = st.radio("Examples of", atlas_items, horizontal=True, key=f"{prefix}.atlas_item")
    examples = labelling.atlas(project.store, user, mod.code, per_grade=3, item=atlas_item, exclude=exclude)
    for grade, column in zip(GRADES, st.columns(len(GRADES))):
        with column:
            st.markdown(f"**{atlas_item} {grade}**")
            if not examples[grade]:
                st.caption("no reference example yet")
            for example in examples[grade]:
                st.image(
                    preview.thumbnail_png(project.media, example.sha256), caption=example_caption(example)
                )


# ------------------------------------------------------------------ grades of one task
def selection(prefix: str, owner: Hashable) -> dict:
    """The grades chosen so far for ``owner`` (a task), empty when they were for another one."""
    chosen = S.get(f"{prefix}.sel") or {}
    return chosen if chosen.get("owner") == owner else {"owner": owner, "sh": None, "pd": None}


def choose(prefix: str, owner: Hashable, which: str, grade: int) -> None:
    """A grade button (or its key) was pressed for ``owner``."""
    chosen = selection(prefix, owner)
    chosen[which] = grade
    S[f"{prefix}.sel"] = chosen


def where(view: labelling.ItemView) -> str:
    """The item's joint and side, shown literally (may come from an import manifest)."""
    text = " ".join(str(x) for x in (view.joint, view.side) if x)
    return f" · {ui.plain(text)}" if text else ""
