"""RAScore web app. At this stage: the project overview read from the store."""
from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from rascore.project import open_project
from rascore.scale import COHORTS, MODALITIES

st.set_page_config(page_title="RAScore", layout="wide")


@st.cache_resource
def project():
    """One Project per server process; the store opens a connection per thread."""
    return open_project()


st.title("RAScore")
st.caption("EULAR-OMERACT synovitis scoring of joint ultrasound")

try:
    counts = project().store.counts()
except Exception as exc:  # a message in the page, never a traceback
    st.error(f"The project store could not be read: {exc}")
    st.stop()

cols = st.columns(4)
cols[0].metric("Items", counts["items_total"])
cols[1].metric("Readers", sum(counts["users"].values()))
cols[2].metric("Annotations", counts["annotations"])
cols[3].metric("Reference labels", counts["reference_labels"])

if counts["items_total"] == 0:
    st.info("This project is empty. Build the demo with `rascore demo`, or import scans with "
            "`rascore ingest`.")
    st.stop()

rows = [{"modality": key.split("/")[0], "cohort": key.split("/")[1], "items": n}
        for key, n in counts["items"].items()]
frame = pd.DataFrame(rows)
table = (frame.pivot_table(index="modality", columns="cohort", values="items", fill_value=0)
         .reindex(index=[m for m in MODALITIES if m in set(frame.modality)],
                  columns=[c for c in COHORTS if c in set(frame.cohort)], fill_value=0)
         .astype(int))
left, right = st.columns([2, 3])
with left:
    st.subheader("Items per modality and cohort")
    st.dataframe(table, width="stretch")
    st.subheader("Accounts by role")
    st.dataframe(pd.DataFrame(sorted(counts["users"].items()), columns=["role", "accounts"]),
                 hide_index=True, width="stretch")
with right:
    fig = px.bar(frame, x="modality", y="items", color="cohort", barmode="group",
                 category_orders={"modality": list(MODALITIES), "cohort": list(COHORTS)})
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=30, b=10))
    st.plotly_chart(fig, width="stretch")
