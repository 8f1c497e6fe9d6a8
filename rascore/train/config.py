"""Training presets (``paper`` for a GPU, ``fast`` for a CPU) and the run configuration built from them.

paper: the published set-up - resnet18 at 224x224 for stills and r2plus1d_18 on 16 frames for
clips (at 112x112, r2plus1d_18's native Kinetics size; 224 would quadruple the clip cost). fast: a
narrow ResNet-18 (basic blocks) at 96x128: widths 32-256 for stills, trained 80 epochs with no
early stop (the best validation epoch is kept); clips as the same 2D network (widths 16-128) over
4 frames (one per quarter of the clip, random within it when training) with attention pooling,
20 epochs; batch 16, AdamW 2e-3 - sized to retrain one modality on the paper-size demo (about 250
training items) within 5 minutes on 2 CPU cores (bench/bench_train.py --retrain).

The stills' width and epochs were raised for the widened simulator, whose 246 training stills the
earlier 16-wide, 20-epoch network did not learn; chosen on the validation split (SGS, widened
paper-size plan seed 0, bench/bench_robustness.py --set ...): validation macro AUC 0.773 (width
16, 20 epochs), 0.825 (--epochs 40, early-stopped at 25), 0.880 (80 epochs, no early stop),
0.910 (width 32, 80 epochs), 0.891 (the same at lr 1e-3: lr kept at 2e-3).

The fast preset's joint crop, head and clip epochs were chosen on the validation split only (the
patient-grouped ``val_fraction`` of the train cohort that early stopping uses; no test cohort was
read), by bench/select_on_validation.py on a paper-size demo built with seed 1: one factor at a
time from crop on / softmax / 20 clip epochs, rule declared before any comparison (highest mean
validation macro AUC over the modalities concerned; a lead under 0.01 goes to the cheaper or
simpler option). Validation macro AUC (best epoch, 61-63 items, 27-31 patients per modality):
- joint crop (all four; split seed 0): on 0.967 / 0.990 / 0.950 / 0.930 (SGS / DGS / SPD / DPD),
  off 0.877 / 0.873 / 0.841 / 0.806; mean 0.959 against 0.849 -> on, as RATING crops to the
  region of interest.
- head (all four; split seed 0): softmax 0.967 / 0.990 / 0.950 / 0.930, ordinal 0.967 / 0.987 /
  0.959 / 0.932; mean 0.959 against 0.961, a tie -> softmax (TrainConfig.head).
- clip epochs (DGS, DPD; split seeds 0 and 1): 20 epochs 0.990, 0.982 (DGS) and 0.930, 0.938
  (DPD), 12 epochs 0.976, 0.936 and 0.894, 0.911; mean 0.960 against 0.929 -> 20 (at 12 the best
  epoch was the 10th-12th: still improving).
The paper preset takes the same crop and head; its crop size and 30 epochs are not yet chosen on
validation (that needs a GPU run of the same comparison). Command:
  RASCORE_DATA=DEMO RASCORE_DB=DEMO/rascore.db OMP_NUM_THREADS=1 python bench/select_on_validation.py
  --seeds 0 --out select.jsonl, then --seeds 1 --modalities DGS DPD --factors clip_epochs; the
  rows are in bench/select_on_validation.demo-seed1.jsonl (--table-only prints the table).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import torch

from rascore.nets.factory import arch_spec
from rascore.nets.heads import check_head
from rascore.scale import modality as lookup_modality


@dataclass(frozen=True)
class Preset:
    """Defaults of one training set-up."""

    name: str
    static_arch: str
    dynamic_arch: str
    image_size: tuple[int, int]  # (height, width) of stills
    clip_size: tuple[int, int]  # (height, width) of clip frames
    frames: int  # frames a clip model sees per pass
    cache_frames: int  # frames kept per clip in memory (sampled from when training)
    epochs: int  # for image models
    clip_epochs: int  # for clip models
    batch_size: int
    lr: float
    weight_decay: float
    patience: int
    width: int = 16  # first-stage width of slim_resnet18 (stills)
    clip_width: int | None = None  # the same for clip models (None: ``width``)
    pooling: str = "attention"
    roi: tuple[float, float] | None = None  # joint crop (share of frame height, width), as RATING
    roi_field: tuple[float, float] | None = None  # the same crop placed in the image field: share
    # of frame height and of the field's width (rascore.train.roi, within="field")


PRESETS: dict[str, Preset] = {
    "paper": Preset(
        "paper",
        "resnet18",
        "r2plus1d_18",
        (224, 224),
        (112, 112),
        frames=16,
        cache_frames=16,
        epochs=30,
        clip_epochs=30,
        batch_size=64,
        lr=1e-3,
        weight_decay=0.05,
        patience=8,
        roi=(0.6, 0.7),
        roi_field=(0.6, 0.88),
    ),
    "fast": Preset(
        "fast",
        "slim_resnet18",
        "frames_slim_resnet18",
        (96, 128),
        (96, 128),
        frames=4,
        cache_frames=8,
        epochs=80,
        clip_epochs=20,
        batch_size=16,
        lr=2e-3,
        weight_decay=0.05,
        patience=80,
        width=32,
        clip_width=16,
        pooling="attention",
        roi=(0.55, 0.6),
        roi_field=(0.55, 0.75),
    ),
}


def resolve_device(name: str | None = "auto") -> torch.device:
    """auto -> cuda when available, else cpu; ``cuda`` without a GPU is an error a user can act on."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but torch sees no CUDA GPU")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"unknown device {name!r}; expected auto, cpu or cuda")
    return torch.device(name)


def choose_preset(name: str | None, device: torch.device) -> Preset:
    """The named preset, or by device: paper on a GPU, fast on a CPU."""
    if not name or name == "auto":
        name = "paper" if device.type == "cuda" else "fast"
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
    return PRESETS[name]


# Other modalities whose training-cohort items a model also learns from by default. A still model
# takes a clip's middle frame; both grade synovial hypertrophy, so a DGS clip's reference grade is
# the SGS target of that frame. On the widened simulator (bench/bench_robustness.py --pool DGS,
# seed 0) the SGS validation macro AUC rose from 0.902 to 0.984 with the DGS frames added. Clip
# models do not take stills (a still repeated is no clip), and power Doppler is not pooled: the
# flow a DPD clip is graded on need not show in its middle frame.
POOLED: dict[str, tuple[str, ...]] = {"SGS": ("DGS",)}


def check_pool(modality: str, pool) -> tuple[str, ...]:
    """The modalities to pool with ``modality``'s items: known, other than it, same target."""
    mod = lookup_modality(modality)
    names = [str(m).strip().upper() for m in ((pool,) if isinstance(pool, str) else (pool or ()))]
    if names in ([], ["NONE"]):
        return ()
    chosen = tuple(dict.fromkeys(names))
    for code in chosen:
        other = lookup_modality(code)
        if other.code == mod.code:
            raise ValueError(f"{mod.code} cannot be pooled with itself")
        if other.target != mod.target:
            raise ValueError(
                f"{other.code} items are graded on another target than {mod.code} "
                "(power Doppler against greyscale): they cannot be pooled"
            )
    return chosen


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides one training run (saved as the checkpoint's ``args``)."""

    modality: str
    preset: str
    arch: str
    head: str = "softmax"
    epochs: int = 25
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.05
    height: int = 96
    width: int = 128
    frames: int = 1
    cache_frames: int = 1
    net_width: int = 16
    pooling: str = "attention"
    seed: int = 0
    device: str = "cpu"
    weights: str | None = "auto"  # auto: hub cache file if present; none; MODALITY@VERSION; or a path
    start_from: str | None = None  # the MODALITY@VERSION that ``weights`` was resolved from (train.start)
    val_fraction: float = 0.2
    patience: int = 8
    warmup_epochs: int = 1
    label_smoothing: float = 0.0
    augment: bool = True
    augmentation: str = "wide"  # rascore.train.augment: "wide" or "basic" (before)
    norm: str = "image"  # rascore.train.preprocess.NORMS: "image" (per image) or "dataset" (before)
    roi: tuple[float, float] | None = None  # crop around the joint (share of height, width)
    roi_within: str = "field"  # rascore.train.roi.WITHIN: "field" or "frame" (before)
    pool: tuple[str, ...] = ()  # other modalities of the same target whose training items join (POOLED)
    max_items: int | None = None  # cap per split, for smoke tests and benchmarks

    def to_dict(self) -> dict:
        """Plain types for the checkpoint."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """Inverse of to_dict, ignoring keys this version does not know."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        if values.get("roi"):
            values["roi"] = tuple(values["roi"])
        values.setdefault("augmentation", "basic")  # what older runs used
        values.setdefault("norm", "dataset")
        values.setdefault("roi_within", "frame")
        values["pool"] = tuple(values.get("pool") or ())  # runs before pooling learnt from one modality
        return cls(**values)


def make_config(
    modality: str, preset: str | None = None, device: str | None = "auto", **overrides: object
) -> TrainConfig:
    """A TrainConfig from a preset chosen by name or device, with explicit overrides (None = keep)."""
    mod = lookup_modality(modality)
    dev = resolve_device(device)
    chosen = choose_preset(preset, dev)
    height, width = chosen.clip_size if mod.dynamic else chosen.image_size
    config = TrainConfig(
        modality=mod.code,
        preset=chosen.name,
        arch=chosen.dynamic_arch if mod.dynamic else chosen.static_arch,
        epochs=chosen.clip_epochs if mod.dynamic else chosen.epochs,
        batch_size=chosen.batch_size,
        lr=chosen.lr,
        weight_decay=chosen.weight_decay,
        height=height,
        width=width,
        frames=chosen.frames if mod.dynamic else 1,
        cache_frames=chosen.cache_frames if mod.dynamic else 1,
        net_width=(chosen.clip_width or chosen.width) if mod.dynamic else chosen.width,
        pooling=chosen.pooling,
        patience=chosen.patience,
        roi=chosen.roi_field,
        pool=POOLED.get(mod.code, ()),
        device=str(dev),
    )
    given = {k: v for k, v in overrides.items() if v is not None}
    if "roi" in given:  # "none" / False / () switches the joint crop off
        roi = given["roi"]
        given["roi"] = tuple(roi) if roi and roi != "none" else None
    if "size" in given:
        size = given.pop("size")
        given["height"], given["width"] = (size, size) if isinstance(size, int) else tuple(size)
    if given.get("roi_within") == "frame" and "roi" not in given:
        given["roi"] = chosen.roi  # the preset's crop as a share of the whole frame
    if "pool" in given:
        given["pool"] = check_pool(mod.code, given["pool"])
    config = replace(config, **given)
    if config.frames > config.cache_frames:
        config = replace(config, cache_frames=config.frames)
    spec = arch_spec(config.arch)
    if spec.dynamic != mod.dynamic:
        kind = "clip" if mod.dynamic else "image"
        raise ValueError(f"{mod.code} needs a {kind} architecture; {config.arch} is not one")
    check_head(config.head)
    from rascore.train.augment import AUGMENTATIONS
    from rascore.train.preprocess import NORMS

    if config.augmentation not in AUGMENTATIONS:
        raise ValueError(
            f"unknown augmentation {config.augmentation!r}; expected one of {', '.join(AUGMENTATIONS)}"
        )
    from rascore.train.roi import WITHIN

    if config.roi_within not in WITHIN:
        raise ValueError(f"unknown crop placement {config.roi_within!r}; expected one of {', '.join(WITHIN)}")
    if config.norm not in NORMS:
        raise ValueError(f"unknown normalisation {config.norm!r}; expected one of {', '.join(NORMS)}")
    return config
