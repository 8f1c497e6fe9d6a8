"""Predict & explain: a stored item or an uploaded file, the active model's grade probabilities,
an attribution overlay beside the original, and for clips the frames one by one with their importance.

``/predict?item=ID&method=occlusion`` opens that item with that method; "Copy link" gives it."""

from __future__ import annotations

import logging

import plotly.graph_objects as go
import streamlit as st

from rascore.explain import (
    GRADCAM_STAGE_NAMES,
    GRADCAM_STAGES,
    IG_BASELINE_NAMES,
    IG_BASELINES,
    METHOD_NAMES,
    METHODS,
)
from rascore.services import explain as view
from rascore.services import links
from rascore.services import shift as view_shift
from rascore.media import MediaError
from rascore.permissions import require
from rascore.scale import COHORTS, GRADES, MODALITIES

import ui
from views.explainer import shared_explainer

log = logging.getLogger("rascore.predict_page")
project, user = ui.gate(lambda user: require(user, "view_models"))
GUESS = "guess"


@st.cache_data(max_entries=2, show_spinner=False)
def decoded_upload(data: bytes, name: str) -> view.Upload:
    """An upload decoded once, not again on every rerun (a slider move)."""
    return view.read_upload(data, name)


def no_model(modality: str) -> None:
    st.info(f"No active model for {modality} yet; train one on the Train page.")
    st.stop()


explainer, lock = shared_explainer(project)
S = st.session_state

link = ui.take_link("item", "method")
if link:
    try:
        if "method" in link:
            S["rascore.predict.method"] = links.choice(link["method"], METHODS, "attribution method")
        if "item" in link:
            found = view.linked_item(project, user, links.item_id(link["item"]))
            S["rascore.predict.source"] = "A project item"
            S["rascore.predict.modality"] = found["modality"]
            S["rascore.predict.cohort"] = "all"
            S["rascore.predict.item"] = found["id"]
    except (links.LinkError, LookupError) as exc:
        st.error(ui.plain(str(exc).rstrip(".") + "."))

st.title("Predict & explain")
st.caption(
    "The active model of a modality grades a scan (EOSS 0-3), and an attribution method shows "
    "which pixels pushed it towards a grade: painted where the evidence for that grade is "
    "strongest, the scan unchanged elsewhere."
)
source = st.radio(
    "Scan", ["A project item", "An uploaded file"], horizontal=True, key="rascore.predict.source"
)
top, cols = st.columns(2), st.columns(3)
method = top[0].selectbox(
    "Attribution method",
    METHODS,
    index=METHODS.index("occlusion"),
    format_func=METHOD_NAMES.get,
    key="rascore.predict.method",
)
baseline = stage = None
if method == "ig":
    baseline = top[1].selectbox(
        "Baseline",
        IG_BASELINES,
        format_func=IG_BASELINE_NAMES.get,
        key="rascore.predict.baseline",
        help="What the picture is compared with. From a black picture, dark (hypoechoic) synovium "
        "differs by almost nothing and cannot be credited; a blurred picture keeps the brightness "
        "around it.",
    )
elif method == "gradcam":
    stage = top[1].selectbox(
        "Layer",
        GRADCAM_STAGES,
        format_func=GRADCAM_STAGE_NAMES.get,
        key="rascore.predict.stage",
        help="Grad-CAM of the grade's logit at a stage of the network: a finer one points more "
        "precisely; the deepest is the most abstract (coarse in time for clip models).",
    )
options = view.options_for(explainer, baseline, stage)
target = cols[0].selectbox(
    "Explain the evidence for",
    [None, *GRADES],
    format_func=lambda g: "the predicted grade" if g is None else f"grade {g}",
    key="rascore.predict.target",
)
reference = None
try:
    if source == "A project item":
        modality = cols[1].selectbox(
            "Modality",
            list(MODALITIES),
            key="rascore.predict.modality",
            format_func=lambda c: f"{c} ({MODALITIES[c].name})",
        )
        cohort = cols[2].selectbox("Cohort", ["all", *COHORTS], key="rascore.predict.cohort")
        if view.active_model(project, user, modality) is None:
            no_model(modality)
        choices = view.item_choices(project, user, modality, None if cohort == "all" else cohort)
        if not choices:
            st.info(f"No {modality} items{'' if cohort == 'all' else ' in ' + cohort} yet.")
            st.stop()
        labels = {c["id"]: c["label"] for c in choices}
        item_id = st.selectbox("Item", list(labels), format_func=labels.get, key="rascore.predict.item")
        with st.spinner(f"Explaining item #{item_id} with {METHOD_NAMES[method]}..."), lock:
            explanation = view.explain_item(explainer, user, item_id, method, target, options)
            frames = view.item_frames(project, item_id)
        reference = view.reference_target(project, user, item_id)
    else:
        modality = cols[1].selectbox(
            "Modality",
            [GUESS, *MODALITIES],
            key="rascore.predict.up_modality",
            format_func=lambda c: "guess from the pixels" if c == GUESS else c,
        )
        upload = st.file_uploader("Image, clip or DICOM file", key="rascore.predict.upload")
        if upload is None:
            st.caption(
                "Nothing is stored: the file is decoded as an import would decode it, and only "
                "its explanation is cached."
            )
            st.stop()
        busy = f"Decoding {ui.plain(upload.name)} and explaining it with {METHOD_NAMES[method]}..."
        with st.spinner(busy):
            try:
                scan = decoded_upload(upload.getvalue(), upload.name)
            except MediaError as exc:
                st.error(ui.plain(f"This file cannot be used: {exc}"))
                st.stop()
            with lock:
                explanation = view.explain_upload(
                    explainer, user, scan, method, None if modality == GUESS else modality, target, options
                )
        frames = scan.frames
except view.NoActiveModel as exc:
    no_model(exc.modality)
except (LookupError, MediaError) as exc:  # a missing checkpoint or item file
    st.error(ui.plain(f"No prediction: {exc}."))
    st.stop()

e = explanation
what = MODALITIES[e.modality]
st.subheader(f"{e.modality} v{e.version}: grade {e.predicted}")
try:
    shift = view_shift.check(project, user, frames, e.modality)
except (LookupError, ValueError) as exc:
    shift = view_shift.ShiftNote(None, "Shift check not made", f"The shift check failed: {exc}.")
if shift.flagged:
    st.warning(f"**{shift.headline}.** {ui.plain(shift.detail)}", icon="⚠️")
else:
    with st.expander(shift.headline):
        st.caption(ui.plain(shift.detail))
if source == "A project item":
    ui.copy_link("predict", item=item_id, method=method)
left, right = st.columns([1, 2])
with left:
    st.metric(
        f"Predicted {what.target} grade",
        e.predicted,
        help="The grade of highest probability under the active model.",
    )
    if reference is not None:
        st.caption(f"Reference standard: grade {reference}.")
    colours = ["#1f4e9c" if g == e.predicted else "#9bb3d9" for g in GRADES]
    bars = go.Figure(
        go.Bar(
            x=[f"grade {g}" for g in GRADES],
            y=e.probabilities,
            marker_color=colours,
            text=[f"{p:.1%}" for p in e.probabilities],
            textposition="outside",
        )
    )
    bars.update_layout(
        height=280,
        margin=dict(l=10, r=10, t=30, b=10),
        title="Probability per grade",
        yaxis=dict(range=[0, 1.1], tickformat=".0%"),
    )
    st.plotly_chart(bars, width="stretch", key="rascore.predict.probabilities")
    setting = e.options.get("setting")
    st.caption(
        f"{e.method_name} of grade {e.target} (p = {e.probabilities[e.target]:.2f}"
        + (f"; {setting}" if setting else "")
        + "); "
        + ("from the cache" if e.cached else f"computed in {e.compute_seconds:.1f} s")
        + "."
    )

with right:
    position = 0
    if len(e.frame_index) > 1:
        position = st.select_slider(
            "Frame",
            options=list(range(len(e.frame_index))),
            key=f"rascore.predict.frame.{e.subject}",
            format_func=lambda k: f"{e.frame_index[k]}",
            help=f"The {len(e.frame_index)} frames of {e.n_frames} the model saw.",
        )
    original, overlay = view.frame_pair(e, frames, position)
    height, width = original.shape[:2]
    pictures = st.columns(2)
    frame_text = f"frame {e.frame_index[position]}, " if e.n_frames > 1 else ""
    pictures[0].image(original, caption=f"Original ({frame_text}{width} x {height} px)")
    pictures[1].image(overlay, caption=f"{e.method_name}: evidence for grade {e.target}")

if e.importance is not None:
    curve = go.Figure(
        go.Scatter(x=e.frame_index, y=e.importance, mode="lines+markers", name="share of attribution")
    )
    curve.add_vline(x=e.frame_index[position], line_dash="dot", line_color="grey")
    curve.update_layout(
        height=260,
        margin=dict(l=10, r=10, t=30, b=10),
        title="Share of the positive attribution per frame",
        xaxis_title="frame of the clip",
        yaxis=dict(tickformat=".1%"),
    )
    pair = st.columns([3, 2])
    pair[0].plotly_chart(curve, width="stretch", key="rascore.predict.importance")
    pair[1].image(e.paths["animation"], caption="The frames the model saw, animated")

with st.expander("Overlay with its colour scale"):
    st.image(e.paths["overlay"])
    st.caption(
        f"The top of the colour bar is an attribution of {e.scale:.2g}; the same scale for "
        "every frame of a clip. A dashed box marks the model's crop when it had one."
    )
