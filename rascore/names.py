"""The names a request may use: presets, heads, architectures, promotion policies, explanation methods.

One torch-free list of each, so that the command line, the Train and Predict pages, the job queue
and the model registry validate a request without importing torch. The torch side is built from or
checked against these: ``rascore.nets.heads.HEADS`` is ``HEAD_NAMES``;
``rascore.nets.factory.ARCHS`` (each name with its torchvision constructor) and
``rascore.train.config.PRESETS`` (each name with its settings) must hold exactly these names,
which tests/test_nets.py checks.
"""

from __future__ import annotations

PRESET_NAMES: tuple[str, ...] = ("fast", "paper")
# "auto": paper on a GPU, fast on a CPU (rascore.train.config.choose_preset)
PRESET_CHOICES: tuple[str, ...] = ("auto", *PRESET_NAMES)
HEAD_NAMES: tuple[str, ...] = ("softmax", "ordinal")
IMAGE_ARCHS: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "slim_resnet18")
VIDEO_ARCHS: tuple[str, ...] = ("r3d_18", "mc3_18", "r2plus1d_18")
# a 2D image network run over a clip's frames with temporal pooling
FRAME_ARCHS: tuple[str, ...] = tuple(f"frames_{name}" for name in IMAGE_ARCHS)
ARCH_NAMES: tuple[str, ...] = (*IMAGE_ARCHS, *FRAME_ARCHS, *VIDEO_ARCHS)

# What the project's promotion policy may be, with what each means.
POLICY_MEANINGS: dict[str, str] = {
    "if-better": "a new version becomes active only if its validation macro AUC is at least the active one's",
    "always": "a new version always becomes active",
}
PROMOTION_POLICIES: tuple[str, ...] = tuple(POLICY_MEANINGS)
DEFAULT_POLICY = "if-better"
# What one registration may ask for: a policy, or "never" (register without activating).
ACTIVATE_POLICIES: tuple[str, ...] = (*PROMOTION_POLICIES, "never")

# Explanations (rascore.explain): methods, Integrated Gradients baselines, Grad-CAM stages, each
# with the words the Predict page shows.
METHODS: tuple[str, ...] = ("ig", "gradcam", "occlusion")
METHOD_NAMES: dict[str, str] = {
    "ig": "Integrated Gradients",
    "gradcam": "Grad-CAM",
    "occlusion": "Occlusion",
}


IG_BASELINES: tuple[str, ...] = ("blur", "tissue", "black")
IG_BASELINE_NAMES: dict[str, str] = {
    "blur": "blurred picture",
    "tissue": "mean tissue brightness",
    "black": "black picture",
}
GRADCAM_STAGES: tuple[str, ...] = ("fine", "deep")
GRADCAM_STAGE_NAMES: dict[str, str] = {
    "fine": "detailed stage (at least 4 cells across; clips: every frame kept)",
    "deep": "deepest stage (coarse; clips: time upsampled)",
}

# why a prediction has no out-of-distribution flag: its checkpoint holds no shift reference
# (rascore.train.shift; the Dashboard says it without importing torch)
SHIFT_NOT_TRAINED = "model trained before shift checks"
