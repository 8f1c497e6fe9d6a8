"""The Reader study page's study and GLOESS sections: widgets, tables and plotly figures.

Lives in views/ (not in pages/, where Streamlit would list it as a page). Everything it shows
is computed by ``rascore.services.study_analysis`` and ``rascore.services.dashboard.gloess``;
this module only lays it out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from rascore.permissions import PermissionDenied, allowed
from rascore.services import study_analysis, study_rows
from rascore.services.dashboard import gloess
from rascore.services.study import EXPERIENCE, StudyError
from rascore.store import Store

import ui

log = logging.getLogger("rascore.readers_page")
NO_STUDY_ADMIN = (
    "No reader study yet. Design one as an admin (Admin page, reader studies): a case set, "
    "readers with their experience levels, and a sequential or crossover design. Once readers "
    "have read every case without and with the model's help, its analysis appears here."
)
NO_STUDY_VIEWER = (
    "No closed reader study yet: a study's results appear here once an admin closes it "
    "(readers stay blind while it is open)."
)
LEVEL_COLOURS = {"junior": "#1f77b4", "intermediate": "#ff7f0e", "senior": "#2ca02c"}


def table(rows: Sequence[Mapping], key: str) -> None:
    """Rows as a dataframe (nothing when empty)."""
    if rows:
        st.dataframe(pd.DataFrame(list(rows)), hide_index=True, width="stretch", key=key)


def auc_scatter(per_reader: pd.DataFrame) -> go.Figure:
    """Each analysed reader's AUC unaided (x) against aided (y), coloured by experience, with
    the identity line: a point above it read better with the model's help."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="no change", line=dict(dash="dash", color="#888"))
    )
    shown = per_reader.dropna(subset=["AUC unaided", "AUC aided"])
    for level in EXPERIENCE:
        part = shown[shown["experience"] == level]
        if part.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=part["AUC unaided"],
                y=part["AUC aided"],
                mode="markers",
                name=level,
                text=part["reader"],
                marker=dict(size=12, color=LEVEL_COLOURS.get(level)),
                hovertemplate="%{text}: unaided %{x:.3f}, aided %{y:.3f}<extra></extra>",
            )
        )
    low = min([0.5, *shown["AUC unaided"], *shown["AUC aided"]]) - 0.02
    fig.update_xaxes(title_text="AUC unaided", range=[low, 1.01])
    fig.update_yaxes(title_text="AUC aided", range=[low, 1.01])
    fig.update_layout(
        height=460, width=560, margin=dict(l=10, r=10, t=30, b=10), legend_title_text="experience"
    )
    return fig


def bland_altman_figure(agreement) -> go.Figure:
    """Bland-Altman plot of one rater's patient GLOESS against the reference's: the mean of the
    two (x) against rater - reference (y), with the mean difference and 95% limits."""
    pairs, ba = agreement.pairs, agreement.bland_altman
    fig = go.Figure(
        go.Scatter(
            x=pairs["mean"],
            y=pairs["diff"],
            mode="markers",
            text=pairs["patient"].astype(str),
            marker=dict(size=10, opacity=0.7),
            name="patients",
            hovertemplate="%{text}: mean %{x:.1f}, difference %{y:+.0f}<extra></extra>",
        )
    )
    for value, label, dash in (
        (ba.mean_diff, "mean difference", "solid"),
        (ba.loa_low, "lower 95% limit", "dash"),
        (ba.loa_high, "upper 95% limit", "dash"),
    ):
        if value == value:  # defined
            fig.add_hline(y=value, line_dash=dash, annotation_text=f"{label} {value:+.2f}")
    fig.update_xaxes(title_text="mean of rater and reference GLOESS")
    fig.update_yaxes(title_text="rater - reference GLOESS")
    fig.update_layout(height=400, margin=dict(l=10, r=10, t=30, b=10), showlegend=False)
    return fig


def joints_figure(rows: Sequence[Mapping]) -> go.Figure:
    """Bars: patients by the number of joints their reference GLOESS sums, per modality."""
    frame = pd.DataFrame(list(rows))
    fig = go.Figure()
    for label, part in frame.groupby("GLOESS", sort=False):
        fig.add_trace(go.Bar(x=part["joints per patient"], y=part["patients"], name=str(label)))
    fig.update_xaxes(title_text="joints per patient", dtick=1)
    fig.update_yaxes(title_text="patients")
    fig.update_layout(height=320, barmode="group", margin=dict(l=10, r=10, t=30, b=10))
    return fig


def _analysis(store: Store, user: Mapping) -> study_analysis.StudyAnalysis | None:
    """The chosen study's analysis, or None after a message saying why there is none."""
    studies = study_analysis.analysable_studies(store, user)
    if not studies:
        st.info(NO_STUDY_ADMIN if allowed(user, "design_study") else NO_STUDY_VIEWER)
        return None
    labels = {
        s[
            "id"
        ]: f"{s['name']} ({s['status']}; {s['readers']} readers, {s['cases']} cases, {s['reads']} reads)"
        for s in studies
    }
    chosen = st.selectbox(
        "Study", list(labels), format_func=labels.get, index=len(labels) - 1, key="rascore.readers.study"
    )
    return study_analysis.analyse(store, user, chosen)


def study_section(store: Store, user: Mapping) -> None:
    """The chosen study analysed: MRMC aided - unaided, levels, the model beside the readers,
    per-grade AUC, kappa, per-reader figures."""
    try:
        a = _analysis(store, user)
    except (StudyError, PermissionDenied) as exc:
        st.error(ui.plain(exc))
        return
    except Exception as exc:
        log.exception("study analysis failed")
        st.error(ui.plain(f"The study analysis could not be computed: {exc}"))
        return
    if a is None:
        return
    for note in a.notes:
        st.caption(ui.plain(note))
    if a.reason:
        st.info(ui.plain(a.reason))
        table(study_rows.reader_rows(a), "rascore.readers.study.readers")
        return
    st.subheader("Aided against unaided reading")
    st.markdown(ui.plain(study_rows.summary_line(a)))
    table(study_rows.level_rows(a), "rascore.readers.study.levels")
    st.caption(
        "Figure of merit: each reader's empirical AUC with their grade as the rating; arms' means "
        "over readers. Interval and p: Obuchowski-Rockette, random readers and random cases, "
        "Hillis's degrees of freedom. A level with one reader gives its difference only."
    )
    if a.mrmc is not None:
        st.download_button(
            "MRMC analysis (JSON)",
            a.mrmc.to_json(),
            file_name=f"study-{a.study['id']}-mrmc.json",
            mime="application/json",
            key="rascore.readers.study.json",
        )
    st.subheader("The model alone beside the readers")
    table(study_rows.model_rows(a), "rascore.readers.study.model")
    st.caption(
        "The model's AUC from its probability of the threshold grade or more, with DeLong's "
        "interval; its kappa from its predicted grade. Same cases and reference as the readers."
    )
    st.subheader("Each reader, unaided and aided")
    st.plotly_chart(auc_scatter(a.per_reader), width="content", key="rascore.readers.study.scatter")
    st.subheader("Per-grade AUC")
    st.caption("Grade g or higher against lower (g = 1, 2, 3), the reader's grade as an ordinal rating.")
    table(study_rows.per_grade_rows(a), "rascore.readers.study.grades")
    st.subheader("Weighted kappa against the reference")
    st.caption(ui.plain(study_rows.resampling_line(a)))
    table(study_rows.kappa_rows(a), "rascore.readers.study.kappa")
    st.subheader("Readers")
    table(study_rows.reader_rows(a), "rascore.readers.study.readers")


def gloess_section(store: Store, user: Mapping, cohorts: Sequence[str], include: bool) -> None:
    """Patient GLOESS of each reader and active model against the reference: ICC, Bland-Altman,
    joints per patient."""
    if not cohorts:
        st.info("Choose at least one test cohort.")
        return
    try:
        found = gloess.gloess_agreement(store, user, tuple(cohorts), include_reference_readers=include)
    except Exception as exc:
        log.exception("GLOESS agreement failed")
        st.error(ui.plain(f"The GLOESS agreement could not be computed: {exc}"))
        return
    for note in found.notes:
        st.caption(ui.plain(note))
    if not found.agreements:
        st.info(
            "No patient GLOESS to compare yet: it needs power Doppler items with patient ids and "
            "joint names, their reference grades, and readers' grades or an active model's "
            "predictions on the chosen test cohorts."
        )
        return
    st.caption(
        "GLOESS: the sum of the combined EOSS over a patient's joints, static from SPD items and "
        "dynamic from DPD items. A patient counts for a rater when the rater graded exactly the "
        "reference's joints. ICC(2,1): two-way random, absolute agreement, single rater."
        + (
            ui.plain(f" Left out (their grades make the reference): {', '.join(found.excluded_readers)}.")
            if found.excluded_readers
            else ""
        )
    )
    table(gloess.agreement_rows(found), "rascore.readers.gloess.icc")
    choices = [(a.modality, a.rater) for a in found.agreements]
    pick = st.selectbox(
        "Bland-Altman plot of",
        choices,
        format_func=lambda c: f"{c[1]}, {gloess.modality_label(c[0])}",
        key="rascore.readers.gloess.rater",
    )
    chosen = gloess.bland_altman_points(found, *pick)
    if chosen is not None and chosen.n_patients:
        st.plotly_chart(bland_altman_figure(chosen), width="stretch", key="rascore.readers.gloess.ba")
        if chosen.bland_altman.reason:
            st.caption(ui.plain(chosen.bland_altman.reason))
    else:
        st.info("No patient where this rater graded exactly the reference's joints.")
    st.subheader("Joints per patient")
    joints = gloess.joint_count_rows(found)
    if joints:
        st.plotly_chart(joints_figure(joints), width="stretch", key="rascore.readers.gloess.joints")
        table(joints, "rascore.readers.gloess.joints_table")
