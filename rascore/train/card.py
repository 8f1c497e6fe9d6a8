"""Model cards (Markdown): data, preset, architecture, pretrained or from scratch, validation and test figures."""

from __future__ import annotations

from rascore.train.start import describe_start


def _fmt(value: object, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _auc_cell(entry: dict | None) -> str:
    if not entry or entry.get("auc") is None:
        return "n/a"
    return f"{entry['auc']:.3f} ({_fmt(entry.get('ci_low'))}-{_fmt(entry.get('ci_high'))})"


def _test_rows(name: str, figures: dict) -> str:
    aucs = figures.get("auc", {})
    cells = [_auc_cell(aucs.get(str(g))) for g in range(4)]
    return (
        f"| {name} | " + " | ".join(cells) + f" | {_fmt(figures.get('macro_auc'))} | "
        f"{_fmt(figures.get('accuracy'))} | {_fmt(figures.get('kappa_linear'))} | "
        f"{_fmt(figures.get('kappa_quadratic'))} | {_fmt(figures.get('ece'))} |"
    )


def _notes(figures: dict) -> list[str]:
    """What the intervals resampled, the grades the macro AUC averaged, undefined values' reasons."""
    notes = []
    if figures.get("resampled"):
        notes.append(f"{figures['resampled']}.")
    if figures.get("macro_n_grades") is not None:
        left = figures.get("macro_left_out") or {}
        notes.append(
            f"Macro AUC: mean of {figures['macro_n_grades']} grades"
            + "".join(f"; grade {g} left out ({r})" for g, r in left.items())
            + "."
        )
    notes += [f"{key}: undefined ({reason})." for key, reason in (figures.get("reasons") or {}).items()]
    return ["", *notes] if notes else []


def _processes(fit: dict, args: dict) -> str:
    """How many processes trained (torchrun + DistributedDataParallel), when more than one."""
    world = fit.get("world_size") or 1
    if world <= 1:
        return ""
    return (
        f" x {world} processes (DistributedDataParallel, {fit.get('backend')} backend; "
        f"batch {args.get('batch_size')} per process)"
    )


def _augmentation(args: dict) -> str:
    """Which augmentation set trained the model (rascore.train.augment)."""
    if not args.get("augment"):
        return "off"
    name = args.get("augmentation", "basic")  # older runs saved no name: basic
    return {
        "wide": "wide (zoom, aspect, rotation and shift within the frame; gain, time-gain, contrast, "
        "grey map, speckle noise, blur; hue kept)",
        "basic": "basic (rotation, shift, zoom, gain, contrast)",
    }.get(name, name)


def _training_crops(crops: dict | None) -> list[str]:
    """How many training and validation items the joint crop found, and how many fell back."""
    if not crops or not crops.get("train"):
        return []
    parts = []
    for split in ("train", "validation"):
        c = crops.get(split) or {}
        parts.append(
            f"{split}: {c.get('crop', 0)} cropped, {c.get('fallback', 0)} fell back to the full frame"
            + (f", {c.get('none', 0)} without a crop" if c.get("none") else "")
        )
    return [f"- Joint crop in training ({'; '.join(parts)})."]


def _prior_line(prior: dict | None) -> str:
    """What the card says about the sampling-prior correction."""
    if not prior:
        return (
            "- Not corrected for class-balanced sampling: this checkpoint predates the stored "
            "training prior, so its probabilities lean towards a uniform prior over the grades. "
            "Retrain to correct them."
        )
    shares = ", ".join(f"{p:.2f}" for p in prior.get("training_prior", []))
    sampling = ", ".join(f"{p:.2f}" for p in prior.get("sampling_prior", []))
    return (
        f"- Corrected for class-balanced sampling ({prior.get('method')}): training prior "
        f"{shares} (grades 0-3, counts {prior.get('train_class_counts')}), sampling prior {sampling}. "
        "Every reported and stored probability is the corrected one."
    )


def _shift_line(entry: dict | None) -> str:
    """How predictions of this model are flagged as unlike its training data (rascore.train.shift)."""
    if not entry:
        return "none (model trained before shift checks)."
    if entry.get("reason"):
        return f"none ({entry['reason']})."
    return f"a scan is {entry['rule']}."


def _sources(counts: dict | None) -> str:
    if not counts:
        return "not recorded"
    return ", ".join(f"{source} {n}" for source, n in sorted(counts.items()))


def _pooled_line(pooled: dict | None) -> list[str]:
    """The card's line on items of other modalities in the training half (none before pooling)."""
    if not pooled:
        return []
    parts = ", ".join(f"{count} {code}" for code, count in pooled.items())
    return [
        f"- Of the training items, {parts} came from the same target's other modality "
        "(a still model takes a clip's middle frame), from patients outside validation only."
    ]


def render_card(checkpoint: dict, version: int) -> str:
    """The Markdown card of one model version."""
    args = checkpoint.get("args", {})
    prep = checkpoint.get("preprocessing", {})
    snap = checkpoint.get("snapshot", {})
    metrics = checkpoint.get("metrics", {})
    labels = checkpoint.get("labels", {})
    pretrained = checkpoint.get("pretrained")
    modality = checkpoint["modality"]
    size = f"{prep.get('height')}x{prep.get('width')}"
    inputs = (
        f"clips of {prep.get('frames')} frames (sampled from {prep.get('cache_frames')}) at {size}"
        if prep.get("dynamic")
        else f"stills at {size}"
    )
    if prep.get("roi"):
        roi = prep["roi"]
        basis = "the image field's width" if prep.get("roi_within") == "field" else "the frame's width"
        inputs += (
            f", cropped around the joint first ({roi[0]:.0%} of the frame's height x {roi[1]:.0%} of {basis})"
        )
    inputs += (
        "; each image normalised by its own grey mean and standard deviation"
        if prep.get("norm") == "image"
        else "; normalised by fixed per-channel mean and standard deviation"
    )
    weights = describe_start(pretrained)
    val = metrics.get("validation", {})
    fit = metrics.get("training", {})
    lines = [
        f"# RAScore model card: {modality} v{version}",
        "",
        f"- **Modality**: {modality}; predicts the {labels.get('item')} grade 0-3 (EOSS).",
        f"- **Created**: {checkpoint.get('created_at')}",
        f"- **Preset**: {args.get('preset')}; **architecture**: {checkpoint.get('arch')} "
        f"({checkpoint.get('head')} head); input {inputs}; {'greyscale' if prep.get('channels') == 1 else 'colour'}.",
        f"- **Weights**: {weights}.",
        "",
        "## Data",
        f"- Training cohort items: {len(snap.get('train_item_ids', []))} for training "
        f"({snap.get('train_patients')} patients), {len(snap.get('val_item_ids', []))} for validation "
        f"({snap.get('val_patients')} patients); split by patient, seed {args.get('seed')}.",
        *_pooled_line(snap.get("pooled")),
        f"- Grades 0-3 in training: {snap.get('train_class_counts')}; validation: {snap.get('val_class_counts')}.",
        f"- Item sources (training and validation): {_sources(snap.get('item_sources'))}.",
        f"- Labels: current reference standard; sha256 of (item, grade) pairs `{snap.get('labels_sha256')}`.",
        "",
        "## Training",
        f"- {fit.get('epochs_run')} of {args.get('epochs')} epochs (best {fit.get('best_epoch')}), "
        f"batch {args.get('batch_size')}, AdamW lr {args.get('lr')}, weight decay {args.get('weight_decay')}, "
        f"class-balanced sampling, augmentation {_augmentation(args)}; "
        f"device {args.get('device')}{_processes(fit, args)}; {_fmt(fit.get('seconds'), 1)} s.",
        *_training_crops(fit.get("crops")),
        "",
        "## Probabilities",
        _prior_line(checkpoint.get("prior")),
        "",
        "## Validation (held-out patients of the training cohort)",
        f"- Macro AUC {_fmt(val.get('macro_auc'))}; accuracy {_fmt(val.get('accuracy'))}; n = {val.get('n')}.",
        "- Per-grade AUC: " + ", ".join(f"{g}: {_fmt(v)}" for g, v in (val.get("auc") or {}).items()),
        "",
        "## Test cohorts",
    ]
    cohorts = metrics.get("test", {}).get("cohorts", {})
    if not cohorts:
        lines.append("Not evaluated yet (`rascore evaluate`).")
    for cohort, entry in cohorts.items():
        lines += [
            "",
            f"### {cohort} (n = {entry.get('n')}, grades 0-3: {entry.get('class_counts')})",
            "",
            "| model | AUC 0 | AUC 1 | AUC 2 | AUC 3 | macro AUC | accuracy | kappa lin | kappa quad | ECE |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        target = labels.get("item") or "target"
        if "model" in entry:
            lines.append(_test_rows(f"{modality} v{version} ({target} reference)", entry["model"]))
        if "model_pd_reference" in entry:
            lines.append(_test_rows(f"{modality} v{version} (PD reference)", entry["model_pd_reference"]))
        if "pd_colour_rule" in entry:
            lines.append(_test_rows("PD-only colour rule (PD reference)", entry["pd_colour_rule"]))
        if entry.get("pd_class_counts"):
            lines += ["", f"PD reference grades 0-3: {entry['pd_class_counts']} (same items)."]
        calibration = entry.get("calibration") or {}
        if calibration:
            after = calibration.get("ece_corrected")
            lines += [
                "",
                f"Calibration: ECE {_fmt(calibration.get('ece_uncorrected'))} before the "
                "sampling-prior correction, "
                + (
                    f"{_fmt(after)} after."
                    if after is not None
                    else "not corrected (no stored training prior)."
                ),
            ]
        crops = entry.get("crops") or {}
        if crops:
            lines += [
                "",
                f"Joint crop: {crops.get('crop', 0)} items cropped, {crops.get('fallback', 0)} "
                f"fell back to the full frame (weak joint fit), {crops.get('none', 0)} without a crop.",
            ]
        shift = entry.get("shift") or {}
        if shift.get("n"):
            lines += [
                "",
                f"Unlike the training data (shift check): {shift['flagged']} of {shift['checked']} items flagged."
                if shift.get("checked")
                else f"Shift check: not made ({shift.get('reason')})",
            ]
        lines += _notes(entry.get("model") or {})
    lines += [
        "",
        "AUC: one grade against the rest, 95% percentile bootstrap CI (1000 resamples of patients, "
        "each drawn patient's items kept together, where the items have patient ids). The PD-only "
        "colour rule grades power Doppler alone (EOSS spot and area rules on the colour pixels "
        "inside an estimated synovium), so it is scored against the PD reference; the Doppler "
        "model is shown against the same PD reference beside it.",
        "Kappa: weighted Cohen's kappa against the reference. ECE: top-label, 10 bins.",
        "",
        "## Use and limits",
        "- Decision support for EOSS grading of dorsal longitudinal joint views; not a diagnosis.",
        "- Figures hold for the cohorts above; on the built-in demo these are simulated images.",
        f"- Shift check: {_shift_line(checkpoint.get('shift'))}",
        "",
    ]
    return "\n".join(lines)
