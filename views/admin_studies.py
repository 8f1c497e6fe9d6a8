"""The Admin page's Studies tab (``design_study``): the studies with each reader's progress, open
and close; designing a study; creating a calibration set; each reader's calibration curve.

Every action goes through ``rascore.services.study``, ``study_design`` and ``calibration``, which
check the permission again; a refusal is one line on the page.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from rascore.scale import COHORTS, GRADE_COLUMNS, MODALITIES
from rascore.services import admin, calibration, study, study_design
from rascore.services.calibration import CalibrationError
from rascore.services.study import DESIGNS, EXPERIENCE, STUDY_GRADES, StudyError
from rascore.store import StoreError

BY_COHORT = "Cohorts and modalities"
BY_ID = "Item ids"
NO_SET = 0  # the calibration choice "none"


def item_ids(text: str) -> list[int]:
    """Item ids typed as whole numbers separated by commas or spaces; ValueError with one line."""
    parts = [p for p in re.split(r"[\s,;]+", text or "") if p]
    bad = [p for p in parts if not p.isdigit()]
    if bad:
        raise ValueError(f"Item ids are whole numbers separated by commas or spaces, not {bad[0]!r}.")
    if not parts:
        raise ValueError("List at least one item id.")
    return [int(p) for p in parts]


def show(store, user, report: Callable[[str, str], None]) -> None:
    """The whole tab."""
    sets = calibration.calibration_sets(store, user)
    studies_table(store, user, report)
    st.divider()
    left, right = st.columns(2, gap="large")
    with left:
        design_form(store, user, sets, report)
    with right:
        calibration_form(store, user, report)
    st.divider()
    curves(store, user, sets)


def studies_table(store, user, report) -> None:
    """Every study; the chosen one's readers with their progress, its frozen models, open/close."""
    st.markdown("**Reader studies**")
    rows = study.studies(store, user)
    if not rows:
        st.caption("No study yet: design one below.")
        return
    columns = ["id", "name", "status", "design", "washout_days", "grade", "cases", "readers", "reads", "seed"]
    st.dataframe(pd.DataFrame(rows)[columns], hide_index=True, width="stretch")
    names = {r["id"]: f"#{r['id']} {r['name']} ({r['status']})" for r in rows}
    chosen = st.selectbox("Study", list(names), format_func=names.__getitem__, key="studies.chosen")
    detail = study.study_detail(store, user, chosen)
    progress = pd.DataFrame(study.reader_progress(store, user, chosen))
    st.dataframe(
        progress[["name", "experience", "first_arm", "done", "total"]],
        hide_index=True,
        width="stretch",
        column_config={
            "done": st.column_config.ProgressColumn(
                "reads done", min_value=0, max_value=int(progress["total"].max() or 1), format="%d"
            ),
            "total": st.column_config.NumberColumn("reads owed"),
        },
    )
    if detail["models"]:
        st.caption(
            "Aided arm: " + ", ".join(f"{m} version id {v}" for m, v in sorted(detail["models"].items()))
        )
    with st.container(horizontal=True):
        if detail["status"] == "draft" and st.button("Open study", key="studies.open", type="primary"):
            act(report, lambda: study.open_study(store, user, chosen), f"{detail['name']} is open.")
        if detail["status"] == "open" and st.button("Close study", key="studies.close"):
            act(report, lambda: study.close_study(store, user, chosen), f"{detail['name']} is closed.")


def act(report, action: Callable[[], object], done: str) -> None:
    """Run an action; its refusal or success as the page's message; rerun."""
    try:
        action()
    except (StudyError, CalibrationError, StoreError, ValueError) as exc:
        report("error", str(exc))
    else:
        report("success", done)
    st.rerun()


def design_form(store, user, sets: list[dict], report) -> None:
    """Name, design, washout, grade, cases, readers with experience levels, calibration set."""
    st.markdown("**Design a study**")
    name = st.text_input("Name", key="studies.name", max_chars=120)
    design = st.radio("Design", DESIGNS, horizontal=True, key="studies.design")
    washout = st.number_input(
        "Washout (days between a crossover's sessions)",
        min_value=0,
        max_value=365,
        value=28,
        step=1,
        key="studies.washout",
        disabled=design != "crossover",
    )
    grade = st.selectbox("Grade it scores", STUDY_GRADES, key="studies.grade")
    source = st.radio("Cases", (BY_COHORT, BY_ID), horizontal=True, key="studies.source")
    if source == BY_COHORT:
        cohorts = st.multiselect("Cohorts", COHORTS, key="studies.cohorts")
        modalities = st.multiselect("Modalities (none: all)", list(MODALITIES), key="studies.modalities")
    else:
        ids_text = st.text_input("Item ids (e.g. 5, 9, 12)", key="studies.items")
    accounts = [a for a in admin.users(store, user) if a["active"]]
    levels = {a["name"]: a["level"] for a in accounts}
    readers = st.multiselect("Readers", list(levels), key="studies.readers")
    experience = {}
    for reader in readers:
        default = levels[reader] if levels[reader] in EXPERIENCE else None
        experience[reader] = st.selectbox(
            f"Experience of {reader}",
            EXPERIENCE,
            index=None if default is None else EXPERIENCE.index(default),
            key=f"studies.level.{reader}",
            placeholder="choose a level",
        )
    set_names = {NO_SET: "none", **{c["id"]: f"#{c['id']} {c['name']}" for c in sets}}
    set_id = st.selectbox(
        "Calibration set readers must pass first",
        list(set_names),
        format_func=set_names.__getitem__,
        key="studies.calibration",
    )
    if not st.button("Design study", key="studies.create", type="primary"):
        return

    def create():
        cases = (
            {"cohorts": cohorts, "modalities": modalities or None}
            if source == BY_COHORT
            else {"items": item_ids(ids_text)}
        )
        made = study_design.design_study(
            store,
            user,
            name,
            design=design,
            readers=experience,
            washout_days=int(washout) if design == "crossover" else 0,
            grade=grade,
            calibration_set_id=set_id or None,
            **cases,
        )
        left_out = (
            f"; {made.calibration_left_out} calibration items left out" if made.calibration_left_out else ""
        )
        return f"Study {name.strip()} designed as a draft: {made.cases} cases{left_out}. Open it to start."

    try:
        done = create()
    except (StudyError, CalibrationError, StoreError, ValueError) as exc:
        report("error", str(exc))
    else:
        report("success", done)
    st.rerun()


def calibration_form(store, user, report) -> None:
    """A calibration set: items in reading order, the grade, the target kappa and the window."""
    st.markdown("**Create a calibration set**")
    name = st.text_input("Name", key="calib_set.name", max_chars=120)
    ids_text = st.text_input("Items, in reading order (reference-graded ids)", key="calib_set.items")
    grade = st.selectbox("Grade", list(GRADE_COLUMNS), key="calib_set.grade")
    target = st.number_input(
        "Target weighted kappa",
        min_value=0.05,
        max_value=1.0,
        value=calibration.DEFAULT_TARGET_KAPPA,
        step=0.05,
        key="calib_set.target",
    )
    window = st.number_input(
        "Window: the last N reads the kappa is computed over",
        min_value=2,
        max_value=1000,
        value=calibration.DEFAULT_WINDOW,
        step=1,
        key="calib_set.window",
    )
    if st.button("Create calibration set", key="calib_set.create", type="primary"):
        act(
            report,
            lambda: calibration.create_set(
                store, user, name, item_ids(ids_text), grade=grade, target_kappa=target, window_n=int(window)
            ),
            f"Calibration set {name.strip()} created.",
        )


def curves(store, user, sets: list[dict]) -> None:
    """Each reader's weighted kappa over their reads of a set, with the target line."""
    st.markdown("**Calibration curves**")
    if not sets:
        st.caption("No calibration set yet.")
        return
    names = {c["id"]: f"#{c['id']} {c['name']}" for c in sets}
    set_id = st.selectbox(
        "Calibration set", list(names), format_func=names.__getitem__, key="calib_set.chosen"
    )
    standings = [
        (a["name"], calibration.calibration_status(store, user, set_id, reader=a))
        for a in admin.users(store, user)
    ]
    standings = [(n, s) for n, s in standings if s.reads]
    if not standings:
        st.caption("No reader has read this set yet.")
        return
    target = standings[0][1].target_kappa
    figure = go.Figure()
    for name, status in standings:
        figure.add_trace(
            go.Scatter(
                x=[p.read for p in status.curve],
                y=[None if math.isnan(p.kappa) else p.kappa for p in status.curve],
                mode="lines+markers",
                name=name,
            )
        )
    figure.add_hline(y=target, line_dash="dash", line_color="grey", annotation_text=f"target {target:.2f}")
    figure.update_layout(
        height=320,
        margin=dict(l=10, r=10, t=30, b=10),
        title=f"Weighted kappa over the last {standings[0][1].window_n} reads",
        xaxis_title="read",
        yaxis_title="quadratic weighted kappa",
    )
    st.plotly_chart(figure, width="stretch", key="calib_set.curves")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "reader": name,
                    "reads": s.reads,
                    "kappa": None if math.isnan(s.kappa) else round(s.kappa, 3),
                    "undefined because": s.reason,
                    "passed": s.passed,
                    "used up": s.used_up,
                }
                for name, s in standings
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        "A gap in a line is a read where the kappa is undefined (the table says why for the last one)."
    )
