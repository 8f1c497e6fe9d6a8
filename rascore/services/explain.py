"""What a viewer of predictions and explanations needs: items to pick, the active model, uploads, pictures.

The Predict & explain page is a script over these functions; each one that shows model output
checks ``view_models`` itself. Uploads are decoded exactly as ingest decodes them
(``rascore.media.decode_bytes``) and are never stored: only their explanation is cached, under
the same key ``Explainer.file`` gives the same bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np

from rascore import scale
from rascore.explain.attribution import ExplainOptions
from rascore.explain.render import blend, normalise_heat, outline_box
from rascore.explain.service import Explainer, Explanation, ModelRef, registered_model
from rascore.permissions import require


class NoActiveModel(LookupError):
    """A modality has no active model version yet (train one first)."""

    def __init__(self, modality: str) -> None:
        self.modality = modality
        super().__init__(f"no active {modality} model yet")


@dataclass
class Upload:
    """A decoded upload: frames (T, H, W, 3) uint8, the explanation cache subject, the file's name."""

    frames: np.ndarray
    subject: str
    name: str
    kind: str
    fps: float | None = None


def device_for(project) -> str:
    """The project's device setting resolved (auto -> cuda when present); cpu when it is unusable."""
    from rascore.train.config import resolve_device

    try:
        return str(resolve_device(project.settings.device))
    except ValueError:
        return "cpu"


def active_model(project, user, modality: str) -> dict | None:
    """The active registry row of a modality's model, or None."""
    from rascore.store import registry

    require(user, "view_models")
    return registry.active_version(project.store, modality)


def model_for(project, modality: str) -> ModelRef:
    """The active model of a modality; NoActiveModel when there is none (LookupError if its file is gone)."""
    from rascore.store import registry

    code = scale.modality(modality).code
    if registry.active_version(project.store, code) is None:
        raise NoActiveModel(code)
    return registered_model(project, code)


def linked_item(project, user, item_id: int) -> dict:
    """The id, modality and cohort of an item a link names; LookupError when there is none."""
    require(user, "view_models")
    row = project.store.item(int(item_id))
    if row is None:
        raise LookupError(f"There is no item #{item_id}")
    return {"id": int(row["id"]), "modality": row["modality"], "cohort": row["cohort"]}


def item_label(row: dict) -> str:
    """Short name of an item for a picker: ``#12 · test1 · MCP2 R · 16 frames``."""
    parts = [f"#{row['id']}", row["cohort"]]
    place = " ".join(str(v) for v in (row.get("joint"), row.get("side")) if v)
    if place:
        parts.append(place)
    frames = int(row.get("frames") or 1)
    parts.append(f"{frames} frames" if frames > 1 else "still")
    return " · ".join(parts)


def item_choices(project, user, modality: str, cohort: str | None = None) -> list[dict]:
    """Items of a modality (optionally one cohort), id order, each with a ``label`` for a picker."""
    require(user, "view_models")
    rows = project.store.items(modality=modality, cohort=cohort or None)
    return [
        {
            "id": int(r["id"]),
            "modality": r["modality"],
            "cohort": r["cohort"],
            "joint": r.get("joint"),
            "side": r.get("side"),
            "frames": int(r["frames"] or 1),
            "label": item_label(r),
        }
        for r in rows
    ]


def reference_target(project, user, item_id: int) -> int | None:
    """The grade the item's model is judged against (SH, or combined EOSS for Doppler), if referenced."""
    require(user, "view_models")
    row = project.store.item(int(item_id))
    reference = project.store.reference(int(item_id))
    if row is None or reference is None:
        return None
    try:
        return scale.target_grade(row["modality"], reference["sh"], reference["pd"])
    except scale.InvalidGrade:
        return None


def options_for(
    explainer: Explainer, baseline: str | None = None, stage: str | None = None
) -> ExplainOptions:
    """The Explainer's settings with the page's choices: Integrated Gradients baseline, Grad-CAM stage."""
    changes = {}
    if baseline is not None:
        changes["ig_baseline"] = baseline
    if stage is not None:
        changes["gradcam_stage"] = stage
    return replace(explainer.options, **changes)


def explain_item(
    explainer: Explainer,
    user,
    item_id: int,
    method: str,
    target: int | None = None,
    options: ExplainOptions | None = None,
) -> Explanation:
    """The explanation of a stored item by its modality's active model (NoActiveModel when none)."""
    require(user, "view_models")
    row = explainer.project.store.item(int(item_id))
    if row is None:
        raise LookupError(f"no item {item_id}")
    model_for(explainer.project, row["modality"])
    return explainer.item(int(item_id), method, target=target, options=options)


# the aided arm's overlay: the Predict page's default method, the most faithful one in the README's
# faithfulness table (most attribution inside the synovium on three of the four modalities)
STUDY_AID_METHOD = "occlusion"


def explain_study_aid(explainer: Explainer, user, study_id: int, item_id: int) -> Explanation:
    """The attribution overlay of the model version a study froze, for the reader's aided read due now.

    Refused (StudyError) unless that read is due, as ``study.model_aid`` refuses; LookupError with
    the reason when the study has no model output for the case (no model frozen, no prediction,
    or the checkpoint is gone). Explains the grade the aid shows."""
    from rascore.services import study
    from rascore.store import registry
    from rascore.store import studies as studies_sql

    store = explainer.project.store
    aid = study.model_aid(store, user, study_id, item_id)
    if aid.grade is None:
        raise LookupError(aid.reason)
    modality = store.item(int(item_id))["modality"]
    version_id = studies_sql.models(store, study_id).get(modality)
    if version_id is None:
        raise LookupError(f"no {modality} model was frozen when the study opened")
    version = registry.get_version_by_id(store, version_id)
    return explainer.item(
        int(item_id), STUDY_AID_METHOD, modality=modality, version=int(version["version"]), target=aid.grade
    )


def item_frames(project, item_id: int) -> np.ndarray:
    """Decoded (T, H, W, 3) frames of a stored item: the decoded cache, else its file decoded again."""
    from rascore.media import preview

    row = project.store.item(int(item_id))
    if row is None:
        raise LookupError(f"no item {item_id}")
    sha = row["media_sha256"]
    try:
        return preview.frames(project.media, sha)
    except FileNotFoundError:
        from rascore.media import decode_bytes

        return decode_bytes(project.media.read_bytes(sha), f"item {item_id}").frames


def read_upload(data: bytes, name: str) -> Upload:
    """Decode uploaded bytes as ingest does; MediaError (file name and reason) when they are bad."""
    from rascore.media import decode_bytes

    decoded = decode_bytes(data, name)
    subject = f"file-{hashlib.sha256(data).hexdigest()[:16]}"  # as Explainer.file keys the same bytes
    return Upload(decoded.frames, subject, name, decoded.kind, decoded.fps)


def guess_modality(frames: np.ndarray) -> str:
    """SGS/DGS/SPD/DPD from the pixels (clip or still, Doppler colour or not)."""
    from rascore.predict import guess_modality as guess

    return guess(frames)


def explain_upload(
    explainer: Explainer,
    user,
    upload: Upload,
    method: str,
    modality: str | None = None,
    target: int | None = None,
    options: ExplainOptions | None = None,
) -> Explanation:
    """The explanation of an upload by the active model of its modality (guessed when not given)."""
    require(user, "view_models")
    model = model_for(explainer.project, modality or guess_modality(upload.frames))
    return explainer.explain(upload.frames, upload.subject, model, method, target, options=options)


def shown_frame(explanation: Explanation, frames: np.ndarray, position: int) -> np.ndarray:
    """The original frame (H, W, 3) behind position ``position`` of the explanation's frames."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    return frames[explanation.frame_index[position]]


def frame_pair(
    explanation: Explanation, frames: np.ndarray, position: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(original, overlay) of one frame the model saw, both at the picture's native resolution.

    The overlay paints positive attribution on the frame with the explanation's colour scale
    (one scale for all frames of a clip); the model's crop is outlined when it is not the whole picture.
    """
    original = shown_frame(explanation, frames, position)
    heat = normalise_heat(explanation.heatmap[position], explanation.scale)
    overlay = blend(original, heat)
    if tuple(explanation.box) != (0, 0, original.shape[0], original.shape[1]):
        overlay = outline_box(overlay, explanation.box)
    return original, overlay
