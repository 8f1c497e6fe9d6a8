"""Grade one scan with the active model of its modality: probabilities of grades 0-3 and the grade.

Files are decoded exactly as ingest decodes them (rascore.media.decode_file). ``Predictor`` keeps
loaded networks and reloads one only when its modality's active version changes, so a page or a
worker pays the load once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from rascore.nets.colour_fraction import rgb_to_hsv
from rascore.nets.factory import GradeNet
from rascore.scale import modality as lookup_modality
from rascore.train.checkpoint import model_from_checkpoint
from rascore.train.preprocess import Preprocessing
from rascore.train.shift import NOT_TRAINED, ShiftReference, head_input, image_statistics, undefined
from rascore.train.versions import load_version


@dataclass
class LoadedModel:
    """A model version ready to run."""

    modality: str
    version: int
    model_version_id: int
    model: GradeNet
    prep: Preprocessing
    item: str  # the EOSS item its grades are (SH or EOSS)
    shift: ShiftReference | str = NOT_TRAINED  # the training reference, or why there is none


@dataclass
class Prediction:
    """Grade probabilities from one model version for one scan."""

    modality: str
    version: int
    item: str
    grade: int
    probabilities: list[float]  # corrected for class-balanced sampling (rascore.train.prior)
    crop: str = "none"  # "crop", "fallback" (weak joint fit: full frame) or "none" (rascore.train.roi)
    # unlike the training data (rascore.train.shift)? None: not checked, shift_reason says why
    out_of_distribution: bool | None = None
    shift_score: float | None = None  # above shift_threshold (1.0) is flagged
    shift_threshold: float | None = None
    shift_checks: dict | None = None  # per gauge: distance, threshold, flagged
    shift_reason: str | None = NOT_TRAINED
    shift_rule: str | None = None  # how the thresholds were set

    @property
    def crop_note(self) -> str:
        """How the network saw the scan, in words."""
        return {
            "crop": "joint crop",
            "fallback": "full frame: the joint was not found with confidence",
            "none": "full frame",
        }.get(self.crop, self.crop)

    @property
    def shift_note(self) -> str:
        """Whether the scan looks like the training data, in words."""
        if self.out_of_distribution is None:
            return f"shift check: undefined ({self.shift_reason})"
        verdict = (
            "OUT OF DISTRIBUTION: unlike the training data"
            if self.out_of_distribution
            else "like the training data"
        )
        return (
            f"shift check: {verdict} (score {self.shift_score:.2f}, flagged above {self.shift_threshold:.2f})"
        )

    def to_dict(self) -> dict:
        """Plain dict for JSON output."""
        return asdict(self)


def load_model(project, modality: str, version: int | None = None) -> LoadedModel:
    """Load a version (default: the active one) of a modality's model on the CPU."""
    row, checkpoint = load_version(project, modality, version)
    model, prep = model_from_checkpoint(checkpoint)
    return LoadedModel(
        row["modality"],
        int(row["version"]),
        int(row["id"]),
        model,
        prep,
        checkpoint["labels"]["item"],
        ShiftReference.from_checkpoint(checkpoint),
    )


def guess_modality(frames: np.ndarray) -> str:
    """SGS/DGS/SPD/DPD from the pixels: clip if several frames, Doppler if saturated colour shows."""
    frames = np.asarray(frames)
    dynamic = frames.ndim == 4 and frames.shape[0] > 1
    sample = frames[frames.shape[0] // 2] if frames.ndim == 4 else frames
    _, saturation, value = rgb_to_hsv(sample)
    doppler = float(((saturation > 0.4) & (value > 0.2)).mean()) > 0.001
    return {(False, False): "SGS", (True, False): "DGS", (False, True): "SPD", (True, True): "DPD"}[
        (dynamic, doppler)
    ]


def predict_frames(loaded: LoadedModel, frames: np.ndarray, device: str = "cpu") -> Prediction:
    """Probabilities of grades 0-3 for decoded frames (T, H, W, 3) or one (H, W, 3) image, corrected
    for the sampling prior the checkpoint stores, whether the joint crop or the full frame was used,
    and whether the scan looks like the training data (the shift check, from the same forward pass)."""
    x, crop = loaded.prep.array_and_crop(frames)
    reference = loaded.shift if isinstance(loaded.shift, ShiftReference) else None
    stop = head_input(loaded.model) if reference is not None else None
    try:
        with torch.inference_mode():
            probs = loaded.model.probabilities(
                loaded.prep.normalise(loaded.prep.batch(x.unsqueeze(0), device))
            )[0]
    finally:
        features = stop() if stop is not None else None
    values = probs.cpu().tolist()
    if reference is None:
        check = undefined(str(loaded.shift))
    else:
        check = reference.check(image_statistics(frames)[None], features)[0]
    return Prediction(
        loaded.modality,
        loaded.version,
        loaded.item,
        int(np.argmax(values)),
        values,
        crop,
        check.out_of_distribution,
        check.shift_score,
        check.threshold,
        check.checks,
        check.reason,
        reference.describe() if reference is not None else None,
    )


class Predictor:
    """Active models per modality, loaded on first use and reloaded when the active version changes."""

    def __init__(self, project, device: str = "cpu") -> None:
        self.project = project
        self.device = device
        self._loaded: dict[str, LoadedModel] = {}

    def model(self, modality: str) -> LoadedModel:
        """The active model of a modality (LookupError if there is none)."""
        from rascore.store import registry

        code = lookup_modality(modality).code
        active = registry.active_version(self.project.store, code)
        cached = self._loaded.get(code)
        if cached is None or active is None or cached.model_version_id != active["id"]:
            cached = load_model(self.project, code)
            cached.model.to(self.device)
            self._loaded[code] = cached
        return cached

    def predict(self, frames: np.ndarray, modality: str | None = None) -> Prediction:
        """Grade decoded frames with the active model of ``modality`` (guessed from pixels if None)."""
        return predict_frames(self.model(modality or guess_modality(frames)), frames, self.device)


def predict_file(project, path: str | Path, modality: str | None = None, device: str = "cpu") -> Prediction:
    """Decode a file as ingest does and grade it with the active model of its modality."""
    from rascore.media import decode_file

    decoded = decode_file(path)
    return Predictor(project, device).predict(decoded.frames, modality)


def check_items(project, item_ids: Sequence[int], device: str = "cpu") -> dict:
    """The shift check of stored items against the active model of each one's modality (one
    forward pass each, frames from the decode cache): {"checked", "flagged" (item ids),
    "not_checked" (modality -> reason)}. Nothing is stored."""
    predictor = Predictor(project, device)
    out: dict = {"checked": 0, "flagged": [], "not_checked": {}}
    for item_id in item_ids:
        row = project.store.item(int(item_id))
        if row is None or row["modality"] in out["not_checked"]:
            continue
        try:
            loaded = predictor.model(row["modality"])
        except LookupError as exc:
            out["not_checked"][row["modality"]] = str(exc)
            continue
        if not isinstance(loaded.shift, ShiftReference):
            out["not_checked"][row["modality"]] = f"{loaded.modality} v{loaded.version}: {loaded.shift}"
            continue
        prediction = predict_frames(loaded, project.media.load_cache(row["media_sha256"]), device)
        out["checked"] += 1
        if prediction.out_of_distribution:
            out["flagged"].append(int(item_id))
    return out
