"""The Train page's label-efficiency section: macro AUC on a foreign cohort against labelled items.

The figure (``figure``) is also what bench/bench_label_efficiency.py saves as
docs/label-efficiency.png, so the page and the README show the same plot.
"""

from __future__ import annotations

from collections.abc import Mapping

import plotly.graph_objects as go

ARM_NAMES = {
    "scratch": "from scratch",
    "simulator": "from the simulator model",
    "simulator+queue": "simulator model + labelling queue",
}


def figure(result: Mapping) -> go.Figure:
    """Mean macro AUC per arm against labelled items, with the seeds' min-max as error bars."""
    fig = go.Figure()
    for arm, name in ARM_NAMES.items():
        rows = sorted((r for r in result["summary"] if r["arm"] == arm), key=lambda r: r["size"])
        if not rows:
            continue
        fig.add_trace(
            go.Scatter(
                x=[r["size"] for r in rows],
                y=[r["macro_auc_mean"] for r in rows],
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=[r["macro_auc_max"] - r["macro_auc_mean"] for r in rows],
                    arrayminus=[r["macro_auc_mean"] - r["macro_auc_min"] for r in rows],
                ),
                mode="lines+markers",
                name=name,
            )
        )
    counts = sorted({r["seeds"] for r in result["summary"]})
    seeds = (
        f"{counts[0]} seeds"
        if len(counts) == 1
        else f"{counts[0]}-{counts[-1]} seeds per point, see the table"
    )
    fig.update_xaxes(
        title_text="labelled training items of the foreign cohort",
        type="log",
        tickvals=sorted({r["size"] for r in result["summary"]}),
    )
    low = min([0.5] + [r["macro_auc_min"] - 0.05 for r in result["summary"]])
    fig.update_yaxes(title_text=f"macro AUC on {result.get('test_items')} held-out items", range=[low, 1.0])
    zero = ((result.get("simulator_model") or {}).get("foreign_test_without_fine_tuning") or {}).get(
        "macro_auc"
    )
    if zero is not None:
        fig.add_hline(
            y=zero,
            line_dash="dot",
            annotation_text=f"simulator model, no fine-tuning: {zero:.2f}",
            annotation_position="bottom right",
        )
    fig.update_layout(
        title=f"{result.get('modality', 'SGS')} label efficiency (mean, min-max over {seeds})",
        height=420,
        width=860,
        margin=dict(l=10, r=10, t=50, b=10),
        legend=dict(orientation="h", y=-0.25),
    )
    return fig


def show(result: Mapping | None, command: str, modality: str) -> None:
    """The section: the figure and its table, or how to produce them."""
    import pandas as pd
    import streamlit as st

    st.subheader("Label efficiency: fine-tuning the simulator model")
    if modality not in ("SGS", "SPD"):
        st.caption("Measured for SGS and SPD stills only (the foreign cohort has no clips).")
        return
    if result is None:
        st.info(
            f"No label-efficiency results yet. Run `{command}`: it writes the results this section plots."
        )
        return
    st.plotly_chart(figure(result), width="stretch", key="rascore.train.label_efficiency")
    table = pd.DataFrame(result["summary"])
    table["arm"] = table["arm"].map(lambda a: ARM_NAMES.get(a, a))
    st.dataframe(
        table[["arm", "size", "seeds", "macro_auc_mean", "macro_auc_min", "macro_auc_max", "accuracy_mean"]],
        hide_index=True,
        width="stretch",
        key="rascore.train.label_efficiency_table",
    )
    sim = result.get("simulator_model") or {}
    ran = result.get("command") or command
    st.caption(
        f"Macro one-vs-rest AUC of {result.get('target', 'SH')} on held-out stills of a cohort the demo simulator did not make "
        "(tests/foreign_cohort.py: another image size, depth, speckle, grey map and anatomy), after "
        "training on 25-200 labelled items of it: from scratch, fine-tuned from the simulator model "
        f"({sim.get('source', 'see the JSON')}), and fine-tuned with the labelling queue's least-confident-"
        "first order choosing the items after a random first set. "
        + (
            f"Joined from {ran.count(' ; ') + 1} partial runs (their commands are in the JSON's command "
            f"field); the full bench is `{command}`"
            if " ; " in ran
            else f"Produced by `{ran}`"
        )
        + f" on {str(result.get('created') or '')[:10]}."
    )
