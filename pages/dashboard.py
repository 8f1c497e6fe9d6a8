"""Dashboard: the models on the test cohorts - per-grade AUC with CIs, ROC, confusion, calibration,
paired AUC tests - beside the published figures; refreshed live as labels, models and predictions
change.

``/dashboard?modality=SPD&cohort=test2`` opens the "One modality" tab on that modality and test
cohort; "Copy link" there gives that link."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from rascore.services import dashboard, links
from rascore.permissions import require
from rascore.scale import GRADES, MODALITIES

import ui

log = logging.getLogger("rascore.dashboard_page")
REFRESH_S = 5
S = st.session_state
project, user = ui.gate(lambda user: require(user, "view_results"))
store = project.store


st.title("Dashboard")
st.caption(
    "Each modality's model against the reference standard on the held-out test cohorts "
    "(test2 comes from another scanner; test3 from an unseen one that no training item comes from). AUC is one grade against the rest, with 95% "
    f"percentile-bootstrap CIs ({dashboard.N_BOOT} resamples of patients, each drawn "
    "patient's joints kept together, where the items have patient ids). Refreshed every "
    f"{REFRESH_S} s; only what changed is recomputed."
)


# ------------------------------------------------------------------ figures
def forest(rows: list[dict], published: bool = False) -> go.Figure:
    """AUC and 95% CI, one panel per grade, a row per model, a colour per cohort.

    Undefined AUCs get no point (the table says why); with ``published``, the best published
    AUC of each grade is a dashed line (He et al. 2024, for context).
    """
    models = list(dict.fromkeys(r["model"] for r in rows))
    cohorts = list(dict.fromkeys(r["cohort"] for r in rows))
    fig = make_subplots(
        rows=1,
        cols=4,
        shared_yaxes=True,
        horizontal_spacing=0.02,
        subplot_titles=[f"grade {g} vs rest" for g in GRADES],
    )
    for index, cohort in enumerate(cohorts):
        offset = (index - (len(cohorts) - 1) / 2) * 0.25
        for grade in GRADES:
            part = [r for r in rows if r["cohort"] == cohort and r["grade"] == grade and r["AUC"] is not None]
            fig.add_trace(
                go.Scatter(
                    x=[r["AUC"] for r in part],
                    y=[models.index(r["model"]) + offset for r in part],
                    mode="markers",
                    name=cohort,
                    legendgroup=cohort,
                    showlegend=grade == 0,
                    marker=dict(size=9, color=PALETTE[index % len(PALETTE)]),
                    text=[f"{r['model']} {cohort}: {r['AUC (95% CI)']}" for r in part],
                    hovertemplate="%{text}<extra></extra>",
                    error_x=dict(
                        type="data",
                        symmetric=False,
                        array=[(r["CI high"] or r["AUC"]) - r["AUC"] for r in part],
                        arrayminus=[r["AUC"] - (r["CI low"] or r["AUC"]) for r in part],
                    ),
                ),
                row=1,
                col=grade + 1,
            )
    for grade in GRADES:
        fig.add_vline(x=0.5, line_dash="dot", line_color="grey", row=1, col=grade + 1)
        if published:
            model, auc = dashboard.PUBLISHED_BEST[grade]
            fig.add_vline(
                x=auc,
                line_dash="dash",
                line_color="#888",
                row=1,
                col=grade + 1,
                annotation_text=f"published {auc} ({model})",
                annotation_position="top left",
                annotation_font_size=10,
            )
    fig.update_xaxes(range=[-0.03, 1.03], tickvals=[0, 0.5, 1])
    fig.update_yaxes(tickvals=list(range(len(models))), ticktext=models, autorange="reversed")
    fig.update_layout(
        height=170 + 45 * len(models),
        margin=dict(l=10, r=10, t=40, b=50),
        legend=dict(orientation="h", x=0.5, xanchor="center", y=-0.08, yanchor="top"),
    )
    return fig


def roc_figure(sec: dashboard.Section) -> go.Figure:
    """ROC curve of each grade against the rest, one panel per grade, a line per model."""
    fig = make_subplots(
        rows=1, cols=4, subplot_titles=[f"grade {g} vs rest" for g in GRADES], shared_yaxes=True
    )
    for index, m in enumerate(sec.models):
        for grade in GRADES:
            points = m.roc.get(grade)
            if points is None or points.reason:
                continue
            fig.add_trace(
                go.Scatter(
                    x=points.fpr,
                    y=points.tpr,
                    mode="lines",
                    name=m.model.label,
                    legendgroup=m.model.label,
                    showlegend=grade == 0,
                    line=dict(color=PALETTE[index % len(PALETTE)]),
                ),
                row=1,
                col=grade + 1,
            )
    for grade in GRADES:
        fig.add_trace(
            go.Scatter(
                x=[0, 1], y=[0, 1], mode="lines", showlegend=False, line=dict(dash="dot", color="grey")
            ),
            row=1,
            col=grade + 1,
        )
        undefined = [m.roc[grade].reason for m in sec.models if grade in m.roc and m.roc[grade].reason]
        if undefined or not any(m.n for m in sec.models):
            fig.add_annotation(
                text="undefined:<br>" + (undefined[0] if undefined else "no cases"),
                row=1,
                col=grade + 1,
                x=0.5,
                y=0.5,
                showarrow=False,
                font=dict(size=10),
            )
    fig.update_xaxes(title_text="1 - specificity", range=[0, 1])
    fig.update_yaxes(title_text="sensitivity", range=[0, 1.02], row=1, col=1)
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def confusion_figure(m: dashboard.ModelFigures) -> go.Figure:
    """4x4 counts, rows the reference grade, columns the model's grade."""
    matrix = m.confusion if m.confusion is not None else np.zeros((4, 4), int)
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=[f"{g}" for g in GRADES],
            y=[f"{g}" for g in GRADES],
            colorscale="Blues",
            text=matrix,
            texttemplate="%{text}",
            showscale=False,
        )
    )
    fig.update_xaxes(title_text="model grade", side="top")
    fig.update_yaxes(title_text="reference grade", autorange="reversed")
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=50, b=10))
    return fig


def calibration_figure(sec: dashboard.Section) -> go.Figure:
    """Reliability curve (top-label confidence against accuracy per bin) for each model."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration", line=dict(dash="dot", color="grey")
        )
    )
    for index, m in enumerate(sec.models):
        curve = m.reliability
        if curve is None:
            continue
        used = curve.count > 0
        fig.add_trace(
            go.Scatter(
                x=curve.confidence[used],
                y=curve.accuracy[used],
                mode="lines+markers",
                name=f"{m.model.label} (ECE {dashboard.fmt(m.ece)})",
                marker=dict(
                    size=6 + 14 * curve.count[used] / max(1, curve.count.max()),
                    color=PALETTE[index % len(PALETTE)],
                ),
                hovertext=[f"{c} cases" for c in curve.count[used]],
            )
        )
    fig.update_xaxes(title_text="confidence (highest grade probability)", range=[0, 1])
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02])
    fig.update_layout(
        height=340,
        margin=dict(l=10, r=10, t=50, b=10),
        legend=dict(orientation="h", y=1.02, yanchor="bottom"),
    )
    return fig


PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def table(rows: list[dict], key: str, drop: tuple[str, ...] = ()) -> None:
    """A list of dicts as a dataframe (nothing when empty)."""
    if rows:
        frame = pd.DataFrame(rows).drop(columns=[c for c in drop if c in rows[0]])
        st.dataframe(frame, hide_index=True, width="stretch", key=key)


AUC_COLUMNS = ("AUC", "CI low", "CI high")


# ------------------------------------------------------------------ a link, then the tabs
link = ui.take_link("modality", "cohort")
if link:
    try:
        if "modality" in link:
            S["rascore.dash.modality"] = links.choice(link["modality"], MODALITIES, "modality")
        if "cohort" in link:
            S["rascore.dash.cohort"] = links.choice(link["cohort"], dashboard.TEST_COHORTS, "test cohort")
    except links.LinkError as exc:
        st.error(ui.plain(exc))
    S["rascore.dash.tab"] = "One modality"  # kept: the tabs stay where the link put them
overview_tab, detail_tab, published_tab = st.tabs(
    ["All modalities", "One modality", "Published figures"], default=S.get("rascore.dash.tab")
)


@st.fragment(run_every=REFRESH_S)
def overview_panel() -> None:
    """Every active model on both test cohorts, and the modalities compared on every matched joint."""
    try:
        result = dashboard.overview(store, user)
    except Exception as exc:
        log.exception("dashboard overview failed")
        st.error(ui.plain(f"The dashboard could not be computed: {exc}"))
        return
    if not result.sections:
        st.info(
            "No model is active yet. Train one on the Train page (or `rascore train "
            "--modality SGS`); its test-cohort predictions then appear here."
        )
        return
    if result.missing:
        st.caption(f"No active model yet for {', '.join(result.missing)}.")
    st.subheader("Summary")
    table(dashboard.summary_rows(result.sections), "rascore.dash.summary")
    st.caption(
        "Probabilities are corrected for the class-balanced training sampler before anything "
        'is scored; "ECE before prior correction" is the model card\'s figure without it. '
        '"Crop fell back": items where the joint fit was weak and the model saw the full frame.'
    )
    for sec in result.sections:
        if sec.resampled:
            st.caption(f"{sec.modality} {sec.cohort}: {sec.resampled}.")
    rows = dashboard.auc_rows(result.sections)
    st.subheader("Per-grade AUC (one grade against the rest, 95% CI)")
    table(dashboard.auc_table_rows(result.sections), "rascore.dash.auc")
    st.plotly_chart(forest(rows, published=True), width="stretch", key="rascore.dash.forest")
    st.caption(
        "Dashed lines: the best published AUC per grade (He et al. 2024), for context "
        "only, not computed here. Undefined AUCs have no point (the table says why)."
    )
    with st.expander("Cases behind each AUC"):
        table(rows, "rascore.dash.auc_long", drop=AUC_COLUMNS)
    baseline = dashboard.baseline_rows(result.sections)
    st.subheader("PD-only colour rule beside the Doppler models (PD reference)")
    if baseline:
        table(baseline, "rascore.dash.baseline")
        st.caption(
            "A non-learned reference that grades power Doppler only: the EOSS PD rules "
            "(spot counts, more than half of the synovium for grade 3) applied to the colour "
            "pixels inside an estimated synovium. Both rows are scored against the PD "
            "reference grade of the same items, as stored by `rascore evaluate`; the model "
            "itself predicts the combined EOSS."
        )
    else:
        st.caption(
            "Not computed for the active Doppler models: `rascore evaluate --modality SPD` "
            "(and DPD) scores the PD-only colour rule beside the model."
        )
    st.subheader("Between modalities (every matched joint, one joint-level reference)")
    st.caption(
        "Paired on every joint that both modalities show (same patient, joint and side, or "
        "the same file). Both models are scored against the joint's combined EOSS (from its "
        "Doppler items' reference labels, the higher where a still and a clip differ; "
        "without a Doppler item, an SH of 0 or 3 settles it), so a "
        "greyscale model's SH probabilities predict the combined grade; the reference column "
        "names it. Method: Obuchowski's clustered test per grade where the joints have patient ids, DeLong's otherwise."
    )
    for note in result.cross_notes:
        st.caption(ui.plain(note))
    if result.cross:
        table(dashboard.cross_rows(result.cross), "rascore.dash.cross")


@st.fragment(run_every=REFRESH_S)
def detail_panel() -> None:
    """One modality and cohort: chosen versions, ROC, confusion, calibration, DeLong."""
    cols = st.columns([1, 1, 3, 1], vertical_alignment="bottom")
    modality = cols[0].selectbox("Modality", list(MODALITIES), key="rascore.dash.modality")
    cohort = cols[1].selectbox("Test cohort", dashboard.TEST_COHORTS, key="rascore.dash.cohort")
    with cols[3]:
        ui.copy_link("dashboard", modality=modality, cohort=cohort)
    try:
        choices = dashboard.version_choices(store, user, modality)
    except Exception as exc:
        st.error(ui.plain(f"The model versions could not be read: {exc}"))
        return
    if not choices:
        st.info(f"No {modality} model version yet.")
        return
    labels = {m.id: m.label + (" (active)" if m.active else "") for m in choices}
    default = [m.id for m in choices if m.active][:1] or [choices[0].id]
    chosen = cols[2].multiselect(
        "Versions to compare",
        list(labels),
        default=default,
        format_func=labels.get,
        key=f"rascore.dash.versions.{modality}",
    )
    if not chosen:
        st.caption("Choose at least one version.")
        return
    try:
        sec = dashboard.section(store, user, modality, cohort, chosen)
    except Exception as exc:
        log.exception("dashboard section failed")
        st.error(ui.plain(f"The figures could not be computed: {exc}"))
        return
    st.caption(
        f"{sec.n_reference} reference items of {modality} in {cohort} (grades 0-3: "
        f"{sec.class_counts}); the model predicts the {sec.target} grade."
    )
    if sec.empty:
        st.warning(
            "None of these versions has stored predictions for this cohort's reference "
            f"items. `rascore evaluate --modality {modality}` stores them."
        )
        return
    table(dashboard.summary_rows([sec]), "rascore.dash.d_summary")
    st.caption(f"{sec.resampled}.")
    rows = dashboard.auc_rows([sec])
    table(rows, "rascore.dash.d_auc", drop=AUC_COLUMNS)
    st.plotly_chart(forest(rows), width="stretch", key="rascore.dash.d_forest")
    st.markdown("**ROC curves**")
    st.plotly_chart(roc_figure(sec), width="stretch", key="rascore.dash.roc")
    left, right = st.columns(2)
    with left:
        st.markdown("**Confusion matrix**")
        scored = [m for m in sec.models if m.n]
        which = st.selectbox("Model", [m.model.label for m in scored], key="rascore.dash.conf_model")
        model = next(m for m in scored if m.model.label == which)
        st.plotly_chart(confusion_figure(model), width="stretch", key="rascore.dash.confusion")
    with right:
        st.markdown("**Calibration**")
        st.plotly_chart(calibration_figure(sec), width="stretch", key="rascore.dash.calibration")
        st.caption(
            "Top-label reliability in 10 equal-width bins; marker size is the bin's count. "
            "ECE: count-weighted mean gap between accuracy and confidence."
        )
    if len(sec.models) > 1:
        st.markdown(
            "**Between versions** (paired on the items both scored, per grade and for "
            "the macro AUC: Obuchowski's clustered test where the items have patient ids, "
            "else DeLong)"
        )
        table(dashboard.delong_rows(sec.delong), "rascore.dash.d_delong")
    base = dashboard.baseline_rows([sec])
    if base:
        st.markdown(
            "**PD-only colour rule beside the model, both against the PD reference** "
            "(stored by `rascore evaluate`)"
        )
        table(base, "rascore.dash.d_baseline")


with overview_tab:
    overview_panel()
with detail_tab:
    detail_panel()
with published_tab:
    st.caption(
        f"Published, not ours: {dashboard.PUBLISHED_SOURCE}. Real patients, real scanners; "
        "the figures on the other tabs come from this project's data."
    )
    st.markdown("**Best model per grade (per-grade AUC)**")
    table(dashboard.published_rows(), "rascore.dash.pub_best")
    st.markdown("**Static power Doppler against static greyscale (per-grade AUC)**")
    table(dashboard.published_spd_sgs_rows(), "rascore.dash.pub_spd")
    st.caption(
        "Differences between the best models were not significant in the paper. Against 12 "
        "radiologists (per image) ICC was 0.239-0.756; see the Reader study page for ours."
    )
