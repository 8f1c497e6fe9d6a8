"""Adjudicate: expert disagreements side by side, the reference decided, pairwise agreement live.

``/adjudicate?item=ID`` opens that item's disagreement (resolved ones included); "Copy link"
gives that link."""

from __future__ import annotations


import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from rascore.media import preview
from rascore.services import adjudication, labelling, links
from rascore.services.adjudication import AdjudicationError
from rascore.permissions import require
from rascore.scale import COHORTS, GRADES, MODALITIES, PD_DEFINITIONS, SH_DEFINITIONS

import ui

S = st.session_state
project, user = ui.gate(lambda user: require(user, "adjudicate"))
store = project.store

st.title("Adjudicate")

linked = None
link = ui.take_link("item")
if link:
    try:
        linked = links.item_id(link["item"])
    except links.LinkError as exc:
        st.error(ui.plain(exc))
    else:  # every modality and cohort, resolved items too: the linked one is in the list
        S["adj.modality"] = S["adj.cohort"] = "All"
        S["adj.resolved"] = True

with st.sidebar:
    modality = st.selectbox("Modality", ["All", *MODALITIES], key="adj.modality")
    cohort = st.selectbox("Cohort", ["All", *COHORTS], key="adj.cohort")
    include_resolved = st.toggle("Include resolved items", key="adj.resolved")
modality = None if modality == "All" else modality
cohort = None if cohort == "All" else cohort

queue_tab, agreement_tab = st.tabs(["Disagreements", "Pairwise agreement"])

with queue_tab:
    items = adjudication.disagreements(store, user, modality, cohort, include_resolved)
    if S.get("adj.saved"):
        st.success(S.pop("adj.saved"))
    if linked is not None:
        if any(row["item_id"] == linked for row in items):
            S["adj.item"] = linked
        else:
            st.warning(f"Item #{linked} has no disagreement between experts to settle.")
    if not items:
        st.success("No open disagreements between experts here.")
    else:
        st.caption(
            f"{len(items)} item(s) on which the experts' grades differ. An item is "
            "resolved once an expert or admin sets its reference after the last expert "
            "grade."
        )
        labels = {
            row["item_id"]: f"#{row['item_id']} · {row['modality']} · {row['cohort']} · "
            f"differs on {row['differs_on']}" + (" · resolved" if row["resolved"] else "")
            for row in items
        }
        ids = list(labels)
        if S.get("adj.item") not in ids:
            S["adj.item"] = ids[0]
        item_id = st.selectbox("Item", ids, format_func=labels.get, key="adj.item")
        view = labelling.item_view(store, user, item_id)
        mod = view.modality
        image_col, grade_col = st.columns([3, 2], gap="medium")
        with image_col:
            zoom = 2 if view.width <= 400 else 1
            if view.frames > 1:
                st.image(
                    preview.clip_gif(project.media, view.sha256, view.fps, zoom),
                    caption=f"clip, {view.frames} frames",
                )
            else:
                st.image(
                    preview.frame_png(project.media, view.sha256, 0, zoom),
                    output_format="PNG",
                    caption="still",
                )
        with grade_col:
            st.markdown("**Expert grades**")
            show_all = st.toggle("Show every reader's grade", key="adj.all")
            grades = adjudication.grades(store, user, item_id, experts_only=not show_all)
            columns = ["reader", "role", "sh", "pd", "combined", "not_assessable", "reason"]
            frame = pd.DataFrame(grades, columns=columns)
            if not mod.doppler:
                frame = frame.drop(columns=["pd", "combined"])
            st.dataframe(frame, hide_index=True, width="stretch")
            ui.copy_link("adjudicate", item=item_id)
            reference = adjudication.current_reference(store, user, item_id)
            if reference is not None:
                decided = reference["decided_by_name"] or "no one (simulated or imported)"
                st.text(
                    f"Current reference: SH {reference['sh']}"
                    + (f", PD {reference['pd']}" if reference["pd"] is not None else "")
                    + f", EOSS {reference['combined']} ({reference['method']}, decided by "
                    f"{decided})"
                )
            with st.form(f"adj.form.{item_id}", border=True):
                st.markdown("**Set the reference**")
                default_sh = reference["sh"] if reference else 0
                sh = st.radio(
                    "SH",
                    GRADES,
                    index=GRADES.index(default_sh),
                    horizontal=True,
                    captions=None,
                    key=f"adj.sh.{item_id}",
                    help="\n\n".join(f"{g}: {t}" for g, t in SH_DEFINITIONS.items()),
                )
                pd_grade = None
                if mod.doppler:
                    default_pd = reference["pd"] if reference and reference["pd"] is not None else 0
                    pd_grade = st.radio(
                        "PD",
                        GRADES,
                        index=GRADES.index(default_pd),
                        horizontal=True,
                        key=f"adj.pd.{item_id}",
                        help="\n\n".join(f"{g}: {t}" for g, t in PD_DEFINITIONS.items()),
                    )
                note = st.text_input("Note (optional)", key=f"adj.note.{item_id}", max_chars=300)
                if st.form_submit_button("Set reference", type="primary"):
                    try:
                        adjudication.set_reference(store, user, item_id, sh, pd_grade, note)
                    except AdjudicationError as exc:
                        st.error(ui.plain(exc))
                    else:
                        combined, _ = labelling.preview(mod.code, sh, pd_grade)
                        S["adj.saved"] = (
                            f"Reference of item #{item_id} set: SH {sh}"
                            + (f", PD {pd_grade}" if pd_grade is not None else "")
                            + f" (EOSS {combined})."
                        )
                        st.rerun()


@st.fragment(run_every="15s")
def agreement_panel() -> None:
    """The agreement heatmap, or a message instead of a traceback when something fails."""
    try:
        agreement_heatmap()
    except Exception as exc:  # never a traceback in the browser
        st.error(ui.plain(f"The agreement could not be computed: {type(exc).__name__}: {exc}"))


def agreement_heatmap() -> None:
    """Pairwise weighted kappa between readers on shared items, refreshed as grades arrive."""
    left, middle, right = st.columns(3)
    item = left.selectbox(
        "Grade",
        adjudication.GRADE_ITEMS,
        key="adj.kappa_item",
        format_func={
            "target": "model target (SH grey, EOSS Doppler)",
            "SH": "SH",
            "PD": "PD",
            "EOSS": "combined EOSS",
        }.get,
    )
    weights = middle.selectbox("Weights", ["linear", "quadratic"], key="adj.kappa_weights")
    roles = right.selectbox("Readers", ["everyone", "experts only"], key="adj.kappa_roles")
    agreement = adjudication.pairwise_agreement(
        store,
        user,
        modality,
        cohort,
        item=item,
        weights=weights,
        roles=("expert",) if roles == "experts only" else ("reader", "expert", "admin"),
    )
    if len(agreement.readers) < 2:
        st.info("Fewer than two readers have graded items here.")
        return
    text = np.where(
        np.isnan(agreement.kappa), "", np.vectorize(lambda v: f"{v:.2f}")(np.nan_to_num(agreement.kappa))
    )
    figure = go.Figure(
        go.Heatmap(
            z=agreement.kappa,
            x=agreement.readers,
            y=agreement.readers,
            zmin=0,
            zmax=1,
            colorscale="Viridis",
            text=text,
            texttemplate="%{text}",
            customdata=agreement.shared,
            colorbar=dict(title="kappa"),
            hovertemplate="%{y} vs %{x}<br>kappa %{z:.3f}<br>shared items %{customdata}<extra></extra>",
        )
    )
    size = max(360, 36 * len(agreement.readers) + 140)
    figure.update_layout(height=size, margin=dict(l=10, r=10, t=30, b=10), yaxis=dict(autorange="reversed"))
    st.plotly_chart(figure, width="stretch")
    st.caption(
        f"{agreement.weights.capitalize()}ly weighted kappa on items both readers graded "
        "(blank: fewer than 5 shared items or undefined). Refreshes every 15 s."
    )


with agreement_tab:
    agreement_panel()
