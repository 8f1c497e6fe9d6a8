"""Explanations of the grade models: Captum attributions for stills and clips, overlays, cache, faithfulness checks.

``Explainer(project).item(item_id, "gradcam")`` or ``.file(path, "ig")`` gives an ``Explanation``:
the predicted grade, the explained target grade, a heat map at image resolution (per frame for
clips), an overlay PNG, and for clips a per-frame importance curve and an animated overlay, all
cached per (model version, scan, method, target) under ``$RASCORE_DATA/explain``.
"""

from __future__ import annotations

from rascore.explain.attribution import (
    Attribution,
    ExplainOptions,
    GradeProbabilities,
    GradeScores,
    attribute,
    check_method,
    compute_maps,
    frame_importance,
    grade_scores,
    ig_baseline,
    input_attributions,
    input_box,
    layer_for,
    model_input,
    occlusion_geometry,
    to_image_size,
)
from rascore.explain.cache import ExplainCache
from rascore.explain.layers import gradcam_layer
from rascore.names import (
    GRADCAM_STAGE_NAMES,
    GRADCAM_STAGES,
    IG_BASELINE_NAMES,
    IG_BASELINES,
    METHOD_NAMES,
    METHODS,
)
from rascore.explain.service import (
    Explainer,
    Explanation,
    ModelRef,
    checkpoint_model,
    export,
    file_sha256,
    registered_model,
)

__all__ = [
    "GRADCAM_STAGES",
    "GRADCAM_STAGE_NAMES",
    "IG_BASELINES",
    "IG_BASELINE_NAMES",
    "GradeScores",
    "grade_scores",
    "ig_baseline",
    "layer_for",
    "METHODS",
    "METHOD_NAMES",
    "Attribution",
    "ExplainCache",
    "ExplainOptions",
    "Explainer",
    "Explanation",
    "GradeProbabilities",
    "ModelRef",
    "attribute",
    "check_method",
    "checkpoint_model",
    "compute_maps",
    "export",
    "file_sha256",
    "frame_importance",
    "gradcam_layer",
    "input_attributions",
    "input_box",
    "model_input",
    "occlusion_geometry",
    "registered_model",
    "to_image_size",
]
