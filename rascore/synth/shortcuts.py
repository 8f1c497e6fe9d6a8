"""Shortcut check: can features no radiologist uses predict the grade? (They must not.)

Features: global mean brightness, a 32-bin global grey histogram and the count of coloured
pixels anywhere in the frame (a clip: their mean over its frames), on the frames as rendered and
with the joint's grade-free region in-painted. A cross-validated classifier on them should stay
near chance; the same classifier on the true synovium-restricted colour fraction should do well,
showing the signal is there for a model that looks where a radiologist looks.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits
from sklearn.metrics import roc_auc_score

from rascore import scale
from rascore.synth import grading
from rascore.synth.render import SimItem


def coloured(frame: np.ndarray, min_chroma: int = 40) -> np.ndarray:
    """Pixels whose channels differ (colour Doppler or colour bar), as a bool mask."""
    r, g, b = frame[..., 0], frame[..., 1], frame[..., 2]  # per channel: a reduction over 3 is slow
    return (np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)) >= min_chroma


def shortcut_features(frame: np.ndarray) -> np.ndarray:
    """[mean brightness, 32-bin grey histogram (fractions), coloured-pixel count] of one RGB uint8 frame."""
    total = frame[..., 0].astype(np.uint16) + frame[..., 1] + frame[..., 2]
    grey = total / 3.0
    # grey bins of width 8 over [0, 256): bin floor(grey / 8) = total // 24, counted exactly
    hist = np.bincount((total // 24).ravel(), minlength=32) / grey.size
    return np.concatenate([[grey.mean()], hist, [coloured(frame).sum()]])


def inpainted(item: SimItem) -> np.ndarray:
    """The item's frames with counterfactual.grade_free_region filled from the tissue beside it.

    Each row of the region is a straight blend between the field pixels just left and just right
    of it (one side only where the region reaches the field's edge), so the fill depends on pixels
    outside the region alone and no outline of the synovium is drawn into it.
    """
    from rascore.synth.counterfactual import grade_free_region

    frames = item.frames.copy()
    FIELD_Y0, FIELD_X0, FIELD_H, FIELD_W = (  # noqa: N806
        item.layout.field_y0,
        item.layout.field_x0,
        item.layout.field_h,
        item.layout.field_w,
    )
    for t in range(len(frames)):
        region = grade_free_region(item, t)
        region[:FIELD_Y0] = region[FIELD_Y0 + FIELD_H :] = False
        region[:, :FIELD_X0] = region[:, FIELD_X0 + FIELD_W :] = False
        cols = np.flatnonzero(region.any(axis=0))
        rows = np.flatnonzero(region.any(axis=1))
        if not len(cols):
            continue
        left, right = cols[0] - 1, cols[-1] + 1
        f = frames[t].astype(np.float32)
        a = f[rows, left] if left >= FIELD_X0 else None
        b = f[rows, right] if right < FIELD_X0 + FIELD_W else None
        if a is None and b is None:
            fill = np.broadcast_to(
                f[FIELD_Y0 : FIELD_Y0 + FIELD_H, FIELD_X0 : FIELD_X0 + FIELD_W].mean(axis=(0, 1)),
                (len(rows), len(cols), 3),
            )
        else:
            a = b if a is None else a
            b = a if b is None else b
            s = ((cols - left) / (right - left))[None, :, None]
            fill = a[:, None, :] * (1 - s) + b[:, None, :] * s
        frames[t][np.ix_(rows, cols)] = np.round(fill).astype(np.uint8)
    return frames


def synovial_colour_fraction(item: SimItem, t: int = 0) -> float:
    """Fraction of the synovium shown with Doppler colour in frame t (0 if no synovium)."""
    syn = item.synovium[t]
    area = syn.sum()
    return float((coloured(item.frames[t]) & syn).sum() / area) if area else 0.0


def synovium_features(item: SimItem, t: int = 0) -> np.ndarray:
    """What a radiologist looks at for SH: synovium area (mm2), height above the bone line, convexity."""
    syn, line = item.synovium[t], item.bone_line[t]
    area = syn.sum() * item.mm_per_px**2
    _, has, elevation = grading.surface_profile(syn, line)
    height = float(elevation[has].max()) if has.any() else -10.0
    return np.array([area, height, grading.convexity(syn, line)])


def target(item: SimItem) -> int:
    """The modality's target grade: SH for greyscale, combined EOSS for power Doppler."""
    return scale.target_grade(item.spec.modality, item.spec.sh, item.spec.pd)


def macro_auc(features: np.ndarray, labels: np.ndarray, model: str = "logistic", seed: int = 0) -> float:
    """Mean one-vs-rest AUC over the grades present, from 5-fold cross-validated probabilities."""
    labels = np.asarray(labels)
    if model == "logistic":
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    elif model == "boosting":
        # single-threaded on purpose: fast and steady on a small shared machine
        clf = GradientBoostingClassifier(
            n_estimators=80, max_depth=2, learning_rate=0.1, subsample=0.8, random_state=seed
        )
    else:
        raise ValueError(f"unknown model {model!r}")
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    with threadpool_limits(1):
        proba = cross_val_predict(clf, features, labels, cv=folds, method="predict_proba")
    classes = np.unique(labels)
    aucs = [roc_auc_score(labels == c, proba[:, i]) for i, c in enumerate(classes)]
    return float(np.mean(aucs))


def item_shortcut_features(frames: np.ndarray) -> np.ndarray:
    """shortcut_features of an item: of its one frame, or their mean over a clip's frames."""
    return np.mean([shortcut_features(f) for f in frames], axis=0)


def shortcut_report(items: Iterable[SimItem], seed: int = 0) -> dict[str, float]:
    """Macro per-grade AUCs of shortcut features, and of truth-based features that show the signal.

    shortcut_*: global brightness, histogram, coloured count, averaged over a clip's frames (must
    stay low); they still see the synovium, whose darkness and flow move a global histogram a
    little. inpainted_shortcut_*: the same on frames whose grade-free region (where a synovium of
    any grade could show) is in-painted, so any grade they find is a cue outside the joint.
    synovium_*: the synovium's area, height above the line and convexity. synovial_colour_*: the
    coloured fraction of the synovium (for the combined target, and for PD alone);
    synovium_and_colour: both (first frame).
    """
    items = list(items)
    x = np.stack([item_shortcut_features(it.frames) for it in items])
    x_in = np.stack([item_shortcut_features(inpainted(it)) for it in items])
    y = np.array([target(it) for it in items])
    out = {f"shortcut_{m}": macro_auc(x, y, m, seed) for m in ("logistic", "boosting")}
    out.update({f"inpainted_shortcut_{m}": macro_auc(x_in, y, m, seed) for m in ("logistic", "boosting")})
    syn = np.stack([synovium_features(it) for it in items])
    out["synovium_boosting"] = macro_auc(syn, y, "boosting", seed)
    if items and items[0].spec.doppler:
        frac = np.array([[synovial_colour_fraction(it)] for it in items])
        pd = np.array([it.spec.pd for it in items])
        out["synovial_colour_logistic"] = macro_auc(frac, y, "logistic", seed)
        out["synovial_colour_boosting"] = macro_auc(frac, y, "boosting", seed)
        out["synovial_colour_pd_boosting"] = macro_auc(frac, pd, "boosting", seed)
        out["synovium_and_colour_boosting"] = macro_auc(np.hstack([syn, frac]), y, "boosting", seed)
    return out
