"""Reader study: a reading study with and without the model's help (MRMC), readers and models
against the reference on the test cohorts by experience level, and patient-level GLOESS."""

from __future__ import annotations

import logging

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from rascore.services import dashboard
from rascore.permissions import require
from rascore.scale import MODALITIES

from views import study_analysis as study_view
import ui

log = logging.getLogger("rascore.readers_page")
REFRESH_S = 10
project, user = ui.gate(lambda user: require(user, "view_results"))
store = project.store


st.title("Reader study")
with st.sidebar:
    modality = st.selectbox("Modality", ["All", *MODALITIES], key="rascore.readers.modality")
    cohorts = st.multiselect(
        "Test cohorts",
        dashboard.TEST_COHORTS,
        default=list(dashboard.TEST_COHORTS),
        key="rascore.readers.cohorts",
    )
    include = st.toggle(
        "Include experts and admins",
        key="rascore.readers.experts",
        help="Their grades make the reference standard, so they are scored "
        "against themselves; left out by default.",
    )


def strip_plot(rows: list[dict]) -> go.Figure:
    """Each reader's quadratic kappa by experience level; each model as a dashed line."""
    fig = go.Figure()
    readers = [r for r in rows if r["kind"] == "reader" and r["kappa quadratic value"] is not None]
    levels = [lvl for lvl in dashboard.LEVEL_ORDER if any(r["level"] == lvl for r in readers)]
    for level in levels:
        part = [r for r in readers if r["level"] == level]
        fig.add_trace(
            go.Scatter(
                x=[level] * len(part),
                y=[r["kappa quadratic value"] for r in part],
                mode="markers",
                name=level,
                marker=dict(size=12, opacity=0.8),
                text=[r["who"] for r in part],
                showlegend=False,
                hovertemplate="%{text}: %{y:.3f}<extra></extra>",
            )
        )
    models = [r for r in rows if r["kind"] == "model" and r["kappa quadratic value"] is not None]
    for index, r in enumerate(models):
        fig.add_trace(
            go.Scatter(
                x=levels or ["(no readers)"],
                y=[r["kappa quadratic value"]] * max(1, len(levels)),
                mode="lines+markers",
                marker=dict(symbol="line-ew-open", size=40),
                name=f"{r['who']} (kappa {r['kappa quadratic value']:.2f})",
                line=dict(
                    dash="dash", width=2, color=("#d62728", "#2ca02c", "#9467bd", "#ff7f0e")[index % 4]
                ),
            )
        )
    fig.update_xaxes(categoryorder="array", categoryarray=levels, title_text="experience level")
    lowest = min([r["kappa quadratic value"] for r in readers + models] + [0.0])
    fig.update_yaxes(
        title_text="quadratic weighted kappa vs reference", range=[min(-0.2, lowest - 0.05), 1.05]
    )
    fig.update_layout(
        height=420,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", y=-0.25, title_text="models"),
    )
    return fig


def frame(rows: list[dict], key: str, drop: tuple[str, ...] = ()) -> None:
    """A list of dicts as a dataframe (nothing when empty)."""
    if rows:
        data = pd.DataFrame(rows).drop(columns=[c for c in drop if c in rows[0]])
        st.dataframe(data, hide_index=True, width="stretch", key=key)


@st.fragment(run_every=REFRESH_S)
def study_panel() -> None:
    """The reader study, recomputed only when grades, labels, models or predictions changed."""
    if not cohorts:
        st.info("Choose at least one test cohort.")
        return
    try:
        results = dashboard.reader_results(
            store,
            user,
            None if modality == "All" else modality,
            tuple(cohorts),
            include_reference_readers=include,
        )
    except Exception as exc:
        log.exception("reader study failed")
        st.error(ui.plain(f"The reader study could not be computed: {exc}"))
        return
    study = results.study
    if results.n_reference == 0:
        st.info("No reference labels on these test items yet.")
        return
    if not study["raters"] and not results.models:
        left_out = (
            f" ({', '.join(results.excluded_readers)} left out: their grades make the reference)"
            if results.excluded_readers
            else ""
        )
        st.info(
            ui.plain(
                f"No reader has graded these {results.n_reference} test items yet{left_out}, "
                "and no model is active: nothing to compare yet."
            )
        )
        return
    if not study["raters"]:
        st.info("No reader has graded these test items yet: models only.")
    note = f"{results.n_reference} reference items; {len(study['raters'])} readers"
    if results.excluded_readers:
        note += f"; left out (their grades make the reference): {', '.join(results.excluded_readers)}"
    st.caption(
        ui.plain(note) + f". ICC form: {study['icc_form']} (two-way random, absolute "
        "agreement, single rater), each rater against the reference on the items it graded."
    )
    if not results.models:
        st.info("No active model for these items yet: readers only. Train one on the Train page.")
    rows = dashboard.reader_rows(results)
    left, right = st.columns([3, 2])
    with left:
        st.subheader("Readers and models against the reference")
        frame(rows, "rascore.readers.table", drop=("kappa quadratic value",))
    with right:
        st.subheader("Where the models stand")
        st.plotly_chart(strip_plot(rows), width="stretch", key="rascore.readers.strip")
        st.caption(
            "Dots: readers' quadratic weighted kappa, by level. Dashed lines: models. "
            "A model is scored only on its own modality's items."
        )
    st.subheader("By experience level")
    st.caption("Mean (min-max) over the readers of each level.")
    frame(dashboard.level_rows(results), "rascore.readers.levels")
    if results.models:
        st.subheader("Models against each reader")
        for line in dashboard.verdict_lines(results):
            st.markdown(ui.plain(line))
        st.caption(ui.plain(dashboard.resampling_line(results)))
        st.caption(
            "Difference of quadratic kappa against the reference (model minus reader) on the "
            "items both graded, with a paired bootstrap. A model beats a reader (or a reader "
            "the model) only when the interval excludes 0 after Holm's adjustment over the "
            "readers that model is compared with; otherwise: no difference shown. The "
            "interval is drawn at the level the Holm-adjusted decision uses (95% or wider)."
        )
        frame(dashboard.versus_rows(results), "rascore.readers.versus")
    st.subheader("Sensitivity and specificity per grade")
    st.caption("That grade against the rest; 'undefined' where no reference item has the grade.")
    frame(dashboard.sens_spec_rows(results), "rascore.readers.sens")


study_tab, readers_tab, gloess_tab = st.tabs(
    ["Reading study with AI aid", "Readers and models", "Patient GLOESS"]
)
with study_tab:
    study_view.study_section(store, user)
with readers_tab:
    st.caption(
        "Each reader's latest grades and each active model's predictions against the reference "
        "standard, per item, on the test cohorts (as He et al. 2024 compared their models with "
        "12 radiologists). Target grade: SH on greyscale items, combined EOSS on power Doppler. "
        "The sidebar chooses the modality and cohorts."
    )
    study_panel()
with gloess_tab:
    study_view.gloess_section(store, user, cohorts, include)
