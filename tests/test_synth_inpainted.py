"""The project's own network, shown renders whose joint recess is in-painted, must not find the grade.

Every pixel where a synovium of any grade could show (the recess envelope, its blur and the
tendon a synovium lifts; counterfactual.grade_free_region) is filled from the tissue beside it.
What is left (skin, subcutis, distractors, colour box, furniture, bone shadow) carries no grade,
so the fast preset's network (tiny here) trained on it reaches macro AUC at most 0.6 on held-out
renders. The same run with a small grade-dependent mark outside the region (a planted local cue,
as the colour box once was) must find it: the check can fail.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rascore.synth import example_spec, render_many
from rascore.synth.counterfactual import allowed_change, at_grade, grade_free_region
from rascore.synth.render import render_item
from rascore.synth.shortcuts import inpainted
from rascore.train.config import make_config
from rascore.train.data import Arrays, preprocessing_for
from rascore.train.loop import TrainData, evaluate, fit, validation_metrics

LIMIT = 0.6
# (SH, PD) pairs per combined EOSS grade, cycled so that every grade is equally common
PAIRS = {
    0: [(0, 0)],
    1: [(1, 0), (1, 1)],
    2: [(2, 1), (1, 2), (2, 2), (2, 0)],
    3: [(3, 1), (2, 3), (3, 3), (1, 3), (3, 0), (3, 2)],
}
N_TRAIN, N_VAL, N_TEST = 64, 16, 64


def _specs(n: int, offset: int):
    specs = []
    for i in range(n):
        grade = i % 4
        sh, pd = PAIRS[grade][(i // 4) % len(PAIRS[grade])]
        profile = "scanner-B" if (i // 4) % 2 else "scanner-A"  # both profiles in every grade
        specs.append(example_spec(sh, pd, "SPD", seed=offset + i, profile=profile))
    return specs


def _mark(frames: np.ndarray, grade: int, field: tuple[int, int, int, int]) -> np.ndarray:
    """A planted cue: a small grey patch whose place along the field's bottom edge gives the grade.

    Placed by share of the field (y0, x0, y1, x1), since widened frames differ in size.
    """
    out = frames.copy()
    y0, x0, y1, x1 = field
    h, w = y1 - y0, x1 - x0
    left = x0 + int((0.06 + 0.22 * grade) * w)
    out[:, y1 - int(0.15 * h) : y1, left : left + int(0.18 * w)] = 230
    return out


@pytest.fixture(scope="module")
def renders():
    specs = _specs(N_TRAIN + N_VAL + N_TEST, 500)
    items = list(render_many(specs, workers=2))
    return [(inpainted(it), int(max(it.spec.sh, it.spec.pd)), it.layout.field_box) for it in items]


def _macro_auc(renders, marked: bool) -> float:
    config = make_config(
        "SPD",
        preset="fast",
        device="cpu",
        epochs=24,
        size=(48, 64),
        net_width=8,
        batch_size=16,
        weights="none",
        roi="none",
        patience=24,
        seed=0,
    )
    prep = preprocessing_for(config)

    def arrays(part):
        x = torch.stack([prep.array(_mark(f, g, box) if marked else f) for f, g, box in part])
        return Arrays(x, torch.tensor([g for _, g, _ in part]), list(range(len(part))))

    train, val = arrays(renders[:N_TRAIN]), arrays(renders[N_TRAIN : N_TRAIN + N_VAL])
    test = arrays(renders[N_TRAIN + N_VAL :])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = fit(config, TrainData(train, val, prep, {}))
        probs = evaluate(result.model, test, prep, torch.device("cpu"))
    finally:
        torch.set_num_threads(threads)
    return validation_metrics(test.y.numpy(), probs)["macro_auc"]


def test_the_region_covers_every_pixel_a_grade_changes():
    for sh, pd, profile in ((3, 3, "scanner-A"), (2, 3, "scanner-B"), (1, 2, "scanner-A")):
        spec = example_spec(sh, pd, "DPD", seed=7, profile=profile)
        a, b = render_item(spec), render_item(at_grade(spec, 0, 0))
        for t in range(len(a.frames)):
            assert not (allowed_change(a, b, t) & ~grade_free_region(a, t)).any()
            assert np.array_equal(grade_free_region(a, t), grade_free_region(b, t))


@pytest.mark.slow
def test_the_network_cannot_grade_the_inpainted_renders(renders):
    auc = _macro_auc(renders, marked=False)
    print("in-painted SPD, held-out macro AUC", round(auc, 3))
    assert auc <= LIMIT


@pytest.mark.slow
def test_the_network_finds_a_planted_local_cue(renders):
    auc = _macro_auc(renders, marked=True)
    print("in-painted SPD with a planted cue, held-out macro AUC", round(auc, 3))
    assert auc >= 0.85
