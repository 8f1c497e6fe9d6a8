"""Home: the project at a glance and where this user's work stands."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from rascore import permissions
from rascore.services import labelling
from rascore.scale import COHORTS, MODALITIES

import ui

project, user = ui.gate()

st.title("RAScore")
st.caption("EULAR-OMERACT synovitis scoring of joint ultrasound")

counts = project.store.counts()
cols = st.columns(4)
cols[0].metric("Items", counts["items_total"])
cols[1].metric("Accounts", sum(counts["users"].values()))
cols[2].metric("Grades", counts["annotations"])
cols[3].metric("Reference labels", counts["reference_labels"])

if permissions.allowed(user, "grade"):
    total, done = labelling.progress(project.store, user)
    st.subheader("Your grading")
    st.progress(done / total if total else 0.0, text=f"{done} of {total} items graded")
    st.page_link("pages/label.py", label="Go to labelling", icon=":material/edit_note:")
    st.caption(
        "Keys on the labelling page: 0-3 SH grade; Shift+0 to Shift+3 PD grade on power "
        "Doppler items; Enter submit and next; B back; S skip; N not assessable."
    )

if counts["items_total"] == 0:
    st.info(
        "This project is empty. Build the demo with `rascore demo`, or import scans on the "
        "Admin page or with `rascore ingest`."
    )
    st.stop()

rows = [
    {"modality": key.split("/")[0], "cohort": key.split("/")[1], "items": n}
    for key, n in counts["items"].items()
]
frame = pd.DataFrame(rows)
table = (
    frame.pivot_table(index="modality", columns="cohort", values="items", fill_value=0)
    .reindex(
        index=[m for m in MODALITIES if m in set(frame.modality)],
        columns=[c for c in COHORTS if c in set(frame.cohort)],
        fill_value=0,
    )
    .astype(int)
)
left, right = st.columns([2, 3])
with left:
    st.subheader("Items per modality and cohort")
    st.dataframe(table, width="stretch")
with right:
    fig = px.bar(
        frame,
        x="modality",
        y="items",
        color="cohort",
        barmode="group",
        category_orders={"modality": list(MODALITIES), "cohort": list(COHORTS)},
    )
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10))
    st.plotly_chart(fig, width="stretch")
