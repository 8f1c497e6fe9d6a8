"""Networks of the four modality models: factory, grade heads, local pretrained weights, baseline."""

from __future__ import annotations

from rascore.nets.colour_fraction import ColourFractionRule
from rascore.nets.factory import (
    ARCHS,
    DYNAMIC_ARCHS,
    STATIC_ARCHS,
    ArchSpec,
    GradeNet,
    arch_spec,
    build_model,
    example_input,
)
from rascore.nets.frames import POOLINGS, FrameNet
from rascore.nets.heads import (
    HEADS,
    N_GRADES,
    cumulative_to_grades,
    grade_probabilities,
    head_loss,
    n_outputs,
    ordinal_targets,
)
from rascore.nets.pretrained import hub_weights_file, load_weights, resolve_weights
from rascore.nets.slim import SlimResNet

__all__ = [
    "ARCHS",
    "DYNAMIC_ARCHS",
    "HEADS",
    "N_GRADES",
    "POOLINGS",
    "STATIC_ARCHS",
    "ArchSpec",
    "ColourFractionRule",
    "FrameNet",
    "GradeNet",
    "SlimResNet",
    "arch_spec",
    "build_model",
    "cumulative_to_grades",
    "example_input",
    "grade_probabilities",
    "head_loss",
    "hub_weights_file",
    "load_weights",
    "n_outputs",
    "ordinal_targets",
    "resolve_weights",
]
