"""The Admin page's PACS tab (``import``): search a DICOMweb server's studies by date and
modality, tick studies in a table (date, modalities, instances, frames: no names, no IDs) and
import them with a progress bar and the same report as an upload.

Every action goes through ``rascore.services.pacs``, which checks the permission again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd
import streamlit as st

from rascore.scale import COHORTS, MODALITIES
from rascore.services import pacs
from rascore.services.admin import AdminError

KEY = "admin.pacs"


def show(project, user, plain: Callable[[object], str]) -> None:
    """Draw the tab."""
    state = st.session_state
    st.markdown(
        "Import studies from a PACS over DICOMweb (QIDO-RS search, WADO-RS retrieve). Each "
        "instance is imported as an uploaded file would be, and one already imported is skipped. "
        f"Credentials come from the server's environment, never from this page: {pacs.credentials_note()}"
    )
    with st.form(f"{KEY}.search"):
        url = st.text_input(
            "DICOMweb URL", key=f"{KEY}.url", placeholder="http://pacs.example:8042/dicom-web"
        )
        left, middle, right = st.columns(3)
        since = left.date_input("Studies from", value=None, key=f"{KEY}.since")
        until = middle.date_input("to", value=None, key=f"{KEY}.until")
        tag = right.text_input("Modality in study", value="US", key=f"{KEY}.tag", max_chars=8)
        if st.form_submit_button("Search", type="primary"):
            try:
                state[f"{KEY}.studies"] = pacs.search(
                    user,
                    url,
                    since.isoformat() if isinstance(since, dt.date) else None,
                    until.isoformat() if isinstance(until, dt.date) else None,
                    tag,
                )
                state[f"{KEY}.searched_url"] = url
            except AdminError as exc:
                state.pop(f"{KEY}.studies", None)
                st.error(plain(exc))
    studies = state.get(f"{KEY}.studies")
    if studies is None:
        return
    if not studies:
        st.info("No study matches.")
        return
    frame = pd.DataFrame(pacs.rows(studies), columns=["date", "modalities", "instances", "frames"])
    frame.insert(0, "import", False)
    edited = st.data_editor(
        frame,
        hide_index=True,
        width="stretch",
        disabled=["date", "modalities", "instances", "frames"],
        column_config={"import": st.column_config.CheckboxColumn("import")},
        key=f"{KEY}.table",
    )
    chosen = [study for study, tick in zip(studies, edited["import"]) if tick]
    left, right = st.columns(2)
    modality = left.selectbox("Modality", list(MODALITIES), key=f"{KEY}.modality")
    cohort = right.selectbox("Cohort", list(COHORTS), key=f"{KEY}.cohort")
    if st.button(f"Import {len(chosen)} studies", key=f"{KEY}.import", disabled=not chosen):
        bar = st.progress(0.0, text="Importing…")

        def on_result(done: int, total: int, row: dict) -> None:
            bar.progress(min(done / total, 1.0), text=f"{done} of {total}: {row['status']}")

        try:
            result = pacs.import_studies(
                project,
                user,
                state.get(f"{KEY}.searched_url", url),
                chosen,
                modality,
                cohort,
                on_result=on_result,
            )
        except AdminError as exc:
            st.error(plain(exc))
            return
        bar.progress(1.0, text=result.summary())
        (st.warning if result.rejected else st.success)(result.summary())
        for note in result.notes:
            st.info(note)
        if result.rows:
            st.dataframe(
                pd.DataFrame(result.rows, columns=["file", "status", "reason", "item_id"]),
                hide_index=True,
                width="stretch",
            )
        state.pop(f"{KEY}.studies", None)  # the counts changed: search again to see them
