"""Train: labels per modality, the active model and its figures, retraining jobs live, versions."""

from __future__ import annotations

import logging

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from rascore import names, permissions
from rascore.services import training
from rascore.permissions import PermissionDenied, require
from rascore.scale import GRADES, MODALITIES
from rascore.services.training import TrainingError

import ui
from views import label_efficiency

S = st.session_state
log = logging.getLogger("rascore.train_page")
project, user = ui.gate(lambda user: require(user, "train"))
store = project.store


def flash(kind: str, text: str) -> None:
    S["rascore.train.msg"] = (kind, text)


def act(action, *args) -> None:
    """Run a library action from a button; its refusal becomes a message, never a traceback."""
    try:
        outcome = action(store, user, *args)
    except (TrainingError, PermissionDenied) as exc:
        flash("error", str(exc))
        return
    except Exception as exc:
        log.exception("train page action failed")
        flash("error", f"That did not work: {exc}")
        return
    if action is training.submit:
        flash(
            "success",
            f"Queued job #{outcome}. A worker process picks it up and trains; progress appears below.",
        )
    elif action is training.cancel:
        flash("info", f"Job #{args[0]}: {outcome}.")
    elif action is training.set_policy:
        flash("success", f"Promotion policy set to {args[0]}.")
    elif action in (training.promote, training.rollback):
        flash(
            "success",
            f"{outcome['modality']}: v{outcome['to']} is now the active model (was v{outcome['from']}).",
        )


st.title("Train")
st.caption(
    "Retrain a modality model on the current reference labels. Training runs in a separate "
    "`rascore worker` process; this page only queues jobs and follows them."
)
with st.sidebar:
    modality = st.selectbox(
        "Modality",
        list(MODALITIES),
        key="rascore.train.modality",
        format_func=lambda c: f"{c} ({MODALITIES[c].name})",
    )

if S.get("rascore.train.msg"):
    kind, text = S.pop("rascore.train.msg")
    getattr(st, kind)(ui.plain(text))


def progress_figure(view: training.JobView) -> go.Figure | None:
    """Loss over steps and validation AUC per grade over epochs, side by side."""
    if not view.loss_curve and not view.history:
        return None
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("Training loss (running mean)", "Validation AUC per grade")
    )
    if view.loss_curve:
        xs, ys = zip(*view.loss_curve)
        fig.add_trace(
            go.Scatter(x=xs, y=ys, mode="lines+markers", name="loss", showlegend=False), row=1, col=1
        )
    epochs = [h["epoch"] for h in view.history]
    for grade in GRADES:
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=[h["val_auc"].get(grade) for h in view.history],
                mode="lines+markers",
                name=f"grade {grade}",
            ),
            row=1,
            col=2,
        )
    fig.add_trace(
        go.Scatter(
            x=epochs,
            y=[h.get("val_macro_auc") for h in view.history],
            mode="lines+markers",
            name="macro",
            line=dict(dash="dash", width=3),
        ),
        row=1,
        col=2,
    )
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=40, b=10))
    return fig


@st.fragment(run_every=2)
def live() -> None:
    """The watched job of this modality, refreshed every 2 s from its row."""
    try:
        state = training.worker_state(store)
        if state.message:
            st.warning(ui.plain(state.message))
        job = training.latest_job(store, user, modality)
        if job is None:
            st.info(f"No {modality} training job yet. Start one below.")
            return
        view = training.job_view(store, user, job["id"])
        seen = S.get("rascore.train.seen", {})
        before = seen.get(view.id)
        seen[view.id] = view.status
        S["rascore.train.seen"] = seen
        if before is not None and before != view.status and view.finished:
            st.rerun()  # the active model or its figures may have changed: refresh the page
        shown = "stale" if view.stale_s is not None else view.status
        box = {"succeeded": st.success, "failed": st.error, "cancelled": st.warning, "stale": st.warning}
        box.get(shown, st.info)(ui.plain(view.status_text()))
        if view.status in ("queued", "running"):
            st.progress(view.fraction, text=f"{view.fraction:.0%}")
            cols = st.columns(4)
            cols[0].metric("Epoch", f"{view.epoch or 0}/{view.epochs or '?'}")
            cols[1].metric("Loss", training.fmt(view.loss))
            cols[2].metric("ETA", training.duration(view.eta_s) if view.eta_s is not None else "-")
            cols[3].metric(
                "Heartbeat", f"{view.heartbeat_age_s:.0f} s ago" if view.heartbeat_age_s is not None else "-"
            )
            st.button(
                "Cancel this job",
                key="rascore.train.cancel",
                icon=":material/cancel:",
                on_click=act,
                args=(training.cancel, view.id),
                disabled=view.cancel_requested,
            )
        fig = progress_figure(view)
        if fig is not None:
            st.plotly_chart(fig, width="stretch", key="rascore.train.curves")
            st.caption(
                "Validation AUC per epoch as this page saw it in the job row (an epoch "
                "shorter than the refresh interval may be missing); a grade absent from "
                "the validation split has no AUC and no point."
            )
        if view.log_tail:
            with st.expander("Log", expanded=view.status == "failed"):
                st.code(view.log_tail, language=None)
        jobs = training.job_rows(store, user, limit=10)
        if jobs:
            with st.expander("Recent jobs (all modalities)"):
                st.dataframe(pd.DataFrame(jobs), hide_index=True, width="stretch")
    except Exception as exc:  # a message in the page, never a traceback
        log.exception("train page live panel failed")
        st.error(ui.plain(f"The job status could not be read: {exc}"))


left, right = st.columns([3, 2])
with left:
    st.subheader("Training job")
    live()
with right:
    st.subheader("Reference labels available")
    labels = training.label_counts(store, user, modality)
    table = pd.DataFrame(labels["cohorts"], index=[f"grade {g}" for g in GRADES]).T
    table["total"] = table.sum(axis=1)
    st.dataframe(table, width="stretch", key="rascore.train.labels")
    st.caption(
        f"Current reference labels of {modality} items; the model learns the "
        f"{labels['target']} grade. Training uses the train cohort (split by patient into "
        "training and validation); test1, test2 and test3 are held out for the dashboard."
    )
    for code, n in labels["pooled"].items():
        if not n:
            continue
        st.caption(
            f"{modality} training also learns from the {n} {code} items with a reference label "
            f"in the train cohort (a clip's middle frame, graded on the same {labels['target']}), "
            f"from patients outside validation only: validation stays on {modality} items."
        )
    for cohort, missing in labels["missing_grades"].items():
        if missing and labels["total"][cohort]:
            st.caption(
                f"{cohort}: no label of grade {', '.join(map(str, missing))}: its AUC "
                "will be undefined there."
            )

    st.subheader("Start a retraining")
    starts = training.start_choices(store, user, modality)
    with st.form("rascore.train.form"):
        start_from = st.selectbox(
            "Start from",
            [c["value"] for c in starts],
            key="rascore.train.start",
            format_func={c["value"]: c["label"] for c in starts}.get,
            help="The simulator model is this modality's newest version trained on the "
            "demo's simulated items alone; fine-tuning from it needs fewer labelled scans. "
            "Choose the preset it was trained with.",
        )
        preset = st.selectbox(
            "Preset",
            names.PRESET_CHOICES,
            key="rascore.train.preset",
            help="fast: a slim network sized for CPUs; paper: the published "
            "set-up (GPU); auto: paper on a GPU, fast on a CPU",
        )
        by_preset = training.preset_epochs(modality)
        epochs = st.number_input(
            "Epochs",
            min_value=1,
            max_value=training.MAX_EPOCHS,
            value=None,
            step=1,
            key="rascore.train.epochs",
            placeholder="the preset's",
            help="Blank: the preset's ("
            + ", ".join(f"{name} {n}" for name, n in by_preset.items())
            + f" for {modality}), as `rascore train` runs it",
        )
        head = st.selectbox(
            "Head",
            names.HEAD_NAMES,
            key="rascore.train.head",
            help="softmax over 4 grades, or ordinal (0|123, 01|23, 012|3)",
        )
        nproc = st.number_input(
            "Processes",
            min_value=1,
            max_value=training.MAX_NPROC,
            value=1,
            step=1,
            key="rascore.train.nproc",
            help="More than 1: the worker trains under torchrun with "
            "DistributedDataParallel, one GPU per process on CUDA",
        )
        if st.form_submit_button(f"Queue {modality} retraining", type="primary"):
            chosen = None if epochs is None else int(epochs)
            act(training.submit, modality, preset, chosen, head, int(nproc), start_from)
            st.rerun()

st.subheader("Active model")
active = training.active_version(store, user, modality)
if active is None:
    st.info(f"No {modality} model is active yet.")
else:
    st.markdown(
        f"**{modality} v{active['version']}** · {ui.plain(active['architecture'])} · preset "
        f"{ui.plain(active['preset'])} · registered {ui.plain(active['created_at'][:19])} UTC"
    )
    if active["rows"]:
        st.dataframe(
            pd.DataFrame(active["rows"]), hide_index=True, width="stretch", key="rascore.train.active"
        )
        st.caption(
            "AUC of each grade against the rest, with 95% bootstrap CIs on the test cohorts; "
            "'undefined' where the cohort has no case of that grade (reason beside it)."
        )

st.subheader("Version history")
history = training.version_history(store, user, modality)
if not history:
    st.caption("No versions yet.")
else:
    frame = pd.DataFrame(history)
    st.dataframe(frame.drop(columns=["id"]), hide_index=True, width="stretch", key="rascore.train.history")
    cols = st.columns([2, 1, 1])
    choices = [h["version"] for h in history if not h["active"]]
    if choices:
        chosen = cols[0].selectbox(
            "Version", choices, key="rascore.train.promote_version", format_func=lambda v: f"v{v}"
        )
        cols[1].button(
            "Make active",
            key="rascore.train.promote",
            icon=":material/upgrade:",
            on_click=act,
            args=(training.promote, modality, chosen),
        )
    cols[2].button(
        "Roll back",
        key="rascore.train.rollback",
        icon=":material/undo:",
        on_click=act,
        args=(training.rollback, modality),
        help="Make the version before the active one active again",
    )

st.subheader("Promotion policy")
current_policy = training.policy(store)
explain = names.POLICY_MEANINGS
if permissions.allowed(user, "settings"):
    chosen_policy = st.radio(
        "When a retraining succeeds",
        list(explain),
        key="rascore.train.policy",
        index=list(explain).index(current_policy),
        format_func=lambda p: f"{p}: {explain[p]}",
    )
    if chosen_policy != current_policy:
        st.button(
            "Save policy",
            key="rascore.train.save_policy",
            on_click=act,
            args=(training.set_policy, chosen_policy),
        )
else:
    st.caption(f"{current_policy}: {explain[current_policy]}. An admin sets the policy.")

try:
    label_efficiency.show(
        training.label_efficiency(user, modality), training.label_efficiency_command(modality), modality
    )
except TrainingError as exc:
    st.error(ui.plain(str(exc)))
