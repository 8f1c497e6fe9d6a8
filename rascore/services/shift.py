"""The shift check for the Predict & explain page: does this scan look like the active model's
training data? (rascore.train.shift; docs/SHIFT.md)

The active model of the modality grades the frames again (one forward pass, with the head's input
recorded) and its checkpoint's reference scores them. Loaded models are kept per checkpoint, so a
page pays the load once per version.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rascore import scale
from rascore.lru import LRU
from rascore.permissions import require

_MODELS = LRU(4)


@dataclass(frozen=True)
class ShiftNote:
    """What the page shows: ``flagged`` True (a warning), False (a caption) or None (undefined)."""

    flagged: bool | None
    headline: str
    detail: str


def _loaded(project, modality: str):
    """The active model, loaded once per checkpoint (keyed as the Explainer keys it: registry row
    and the file's size and modification time, so a replaced checkpoint is loaded again)."""
    from rascore.explain.service import registered_model
    from rascore.predict import load_model

    ref = registered_model(project, scale.modality(modality).code)
    key = (str(project.settings.db_path), ref.key)
    return _MODELS.get_or_make(key, lambda: load_model(project, ref.modality, ref.version))


def check(project, user, frames: np.ndarray, modality: str) -> ShiftNote:
    """The shift check of decoded frames against the active ``modality`` model's training data."""
    from rascore.predict import predict_frames

    require(user, "view_models")
    prediction = predict_frames(_loaded(project, modality), np.asarray(frames))
    return note(prediction)


def note(prediction) -> ShiftNote:
    """A ``rascore.predict.Prediction``'s shift check in words."""
    p = prediction
    if p.out_of_distribution is None:
        return ShiftNote(
            None,
            "Shift check not made",
            f"Whether this scan looks like the training data is undefined: {p.shift_reason}.",
        )
    how = (
        f"Shift score {p.shift_score:.2f} (flagged above {p.shift_threshold:.2f}). "
        + "; ".join(
            f"{name}: distance {c['distance']:.1f}, threshold {c['threshold']:.1f}"
            for name, c in (p.shift_checks or {}).items()
        )
        + f". How the thresholds were set: {p.shift_rule}."
    )
    if p.out_of_distribution:
        return ShiftNote(
            True,
            "This scan does not look like the model's training data",
            "The grade was made outside what validation measured: treat it with caution and check "
            "the scan (another scanner, setting, joint or file type?). " + how,
        )
    return ShiftNote(False, "This scan looks like the model's training data", how)
