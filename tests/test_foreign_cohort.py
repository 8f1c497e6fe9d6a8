"""The foreign cohort (tests/foreign_cohort.py): grades from its truth masks obey the EOSS rules,
it is deterministic, of another kind than the demo, and mean brightness does not give SH.

The foreign cohort is what the label-efficiency benchmark fine-tunes and tests on
(bench/bench_label_efficiency.py); a cohort whose grade a global statistic gives would make
that benchmark meaningless.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from rascore import scale
from tests import foreign_cohort as fc


@functools.cache
def _items(modality: str, n: int = 24, seed: int = 3):
    return fc.make_items(n, seed, modality)


@pytest.mark.parametrize("modality", ["SGS", "SPD"])
def test_grades_from_masks_are_the_planned_grades(modality):
    items = _items(modality)
    for item, _ in items:
        assert fc.grade_masks(item) == (item.sh, item.pd)
        assert scale.is_valid_pair(item.sh, item.pd)
        assert item.frame.dtype == np.uint8 and item.frame.shape[2] == 3
    targets = [fc.target(modality, item.sh, item.pd) for item, _ in items]
    assert np.bincount(targets, minlength=4).min() >= len(items) // 4 - 1  # balanced-ish
    if modality == "SGS":
        assert all(item.pd == 0 and not item.doppler.any() for item, _ in items)


def test_sh_rule_on_hand_drawn_masks():
    line = ((10.0, 20.0), (50.0, 20.0))
    mask = np.zeros((40, 60), bool)
    assert fc.sh_from_truth(mask, line) == 0
    mask[22:30, 15:45] = True  # below the line
    assert fc.sh_from_truth(mask, line) == 1
    mask[16:30, 12:48] = True  # beyond it, flat top
    assert fc.sh_from_truth(mask, line) == 2
    cols = np.arange(60)
    dome = 16 - 8 * (1 - ((cols - 30) / 20.0) ** 2).clip(0)
    convex = (np.arange(40)[:, None] >= dome[None, :]) & (np.arange(40)[:, None] < 30)
    convex[:, :8] = convex[:, 52:] = False
    assert fc.sh_from_truth(convex, line) == 3


def test_pd_rule_counts_spots_inside_the_synovium():
    syn = np.zeros((60, 60), bool)
    syn[10:50, 10:50] = True
    flow = np.zeros_like(syn)
    mm = 0.04  # single spot: up to 62 px
    assert fc.pd_from_truth(flow, syn, mm) == 0
    flow[12:16, 12:16] = flow[30:34, 30:34] = True
    flow[0:8, 0:8] = True  # outside the synovium: ignored
    assert fc.pd_from_truth(flow, syn, mm) == 1
    for r in (20, 40):
        flow[r : r + 3, 44:47] = True
    assert fc.pd_from_truth(flow, syn, mm) == 2  # four single spots
    flow[10:40, 10:50] = True
    assert fc.pd_from_truth(flow, syn, mm) == 3


def test_deterministic_and_of_another_kind():
    a, b = fc.make_foreign(6, 11, "SPD"), fc.make_foreign(6, 11, "SPD")
    assert all(np.array_equal(x[0], y[0]) and x[1:] == y[1:] for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0][0], fc.make_foreign(6, 12, "SPD")[0][0])
    shapes = {x[0].shape for x in a}
    assert len(shapes) > 1 and all(s[0] == 1 and s[1:3] != (192, 256) for s in shapes)
    tree = ast.parse(Path(fc.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(name and name.startswith("rascore.synth") for name in imported)


def test_grades_can_be_asked_for():
    out = fc.make_foreign(3, 0, "SPD", grades=[(1, 3), (2, 0), (0, 0)])
    assert [(sh, pd) for _, sh, pd, _ in out] == [(1, 3), (2, 0), (0, 0)]
    with pytest.raises(ValueError, match="SGS or SPD"):
        fc.make_foreign(1, 0, "DGS")


def test_mean_brightness_does_not_give_sh():
    """Cross-validated logistic regression on global mean brightness: macro one-vs-rest AUC <= 0.65."""
    items = fc.make_items(80, 5, "SGS")
    x = np.array([[item.frame.mean()] for item, _ in items])
    y = np.array([item.sh for item, _ in items])
    probs = cross_val_predict(
        LogisticRegression(max_iter=1000),
        x,
        y,
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
        method="predict_proba",
    )
    auc = roc_auc_score(y, probs, multi_class="ovr", average="macro")
    assert auc <= 0.65, auc
