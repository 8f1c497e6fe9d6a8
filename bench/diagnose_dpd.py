"""Does a clip carry more PD grade information than a still? Non-learned oracles on the simulated cohort.

Every joint of the test cohorts is rendered twice from the same joint seed (same anatomy,
synovium and flow): as an SPD still and as a DPD clip, each with its own acquisition, exactly as
the cohort plan would draw that joint in either modality. Against the joint's true combined EOSS
grade (rascore.scale.combined of the planned SH and PD) the script scores:

- mask oracles (ground truth masks, true SH; what a perfect reader of the frames would grade):
  the still's shown Doppler; the clip's frame of maximum Doppler (how readers grade a clip); the
  clip's first frame (a still taken from the same acquisition); the frames the fast DPD model
  sees at evaluation (best of them).
- pixel oracles: the EOSS spot rules on the Doppler pixels (the colour test of the rule below)
  inside the true synovium, still vs the clip's best frame, after the demo's export (PNG still,
  H.264 MP4 clip, decoded as ingest does). On the rendered frames they equal the mask oracles.
- colour-fraction oracles (rascore.nets.ColourFractionRule, pixels only, no truth, no learning,
  on the exported files as `rascore evaluate` sees them): the rule on the still; on the clip as `rascore evaluate` runs it (max over the 16 frames); the
  mean over frames. "CF/true-syn" counts the rule's Doppler pixels inside the true synovium
  instead of its estimate (still; the clip's best frame).
- with --models, the project's SPD model on the exported stills and DPD model on the exported
  clips (with --all-frames also fed all 16 frames), and the paired difference of their macro AUCs on the same joints.

Per cohort: one-vs-rest AUC per grade and macro AUC of the combined grade; "PD-driven" columns
score grades 2 and 3 where PD decides (SH >= 1 and PD > SH) against every item of another grade;
"true PD >= k" is the cut-off free AUC of a monotone score (the oracle's PD grade or colour
fraction, a model's P(grade >= k)) for the joint's true PD; "under" is the share of joints with
PD > 0 whose PD the oracle grades below the truth.

Run: .venv/bin/python bench/diagnose_dpd.py [--size paper] [--seed 0] [--workers 2] [--json out.json]
     RASCORE_DATA=/tmp/demo .venv/bin/python bench/diagnose_dpd.py --models [SPD DPD:3 ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rascore import scale  # noqa: E402
from rascore.nets.colour_fraction import ColourFractionRule  # noqa: E402
from rascore.synth import grading, plan_cohort, render_many  # noqa: E402
from rascore.synth.cohort import MODALITY_ORDER, ItemSpec  # noqa: E402

COHORTS = ("test1", "test2")
MASK_ORACLES = (
    "mask still",
    "mask clip max",
    "mask clip frame0",
    "mask clip model-view",
    "pixels still (PNG)",
    "pixels clip max (H.264)",
)
CF_ORACLES = ("CF still", "CF clip max", "CF clip mean", "CF/true-syn still", "CF/true-syn clip max")


def paired_specs(
    specs: list[ItemSpec], cohorts: tuple[str, ...] = COHORTS
) -> list[tuple[ItemSpec, ItemSpec]]:
    """One (SPD still, DPD clip) pair per joint of the cohorts, both from the joint's own seed."""
    seen: dict[int, ItemSpec] = {}
    for spec in specs:
        if spec.cohort in cohorts:
            seen.setdefault(spec.joint_seed, spec)
    pairs = []
    for jseed, spec in seen.items():
        pair = tuple(
            replace(
                spec,
                modality=m,
                seed=jseed * 8 + MODALITY_ORDER.index(m),
                key=f"{spec.key.rsplit('-', 1)[0]}-{m}",
            )
            for m in ("SPD", "DPD")
        )
        pairs.append(pair)
    return pairs


def model_view_frames(count: int) -> np.ndarray:
    """Indices of the clip frames the fast preset's DPD model sees at evaluation."""
    from rascore.train import make_config
    from rascore.train.data import preprocessing_for

    prep = preprocessing_for(make_config("DPD", "fast", "cpu", weights="none"))
    return prep.source_index(count)[prep.frame_index(False).numpy()]


def frame_fractions(rule: ColourFractionRule, frames: np.ndarray) -> np.ndarray:
    """Colour fraction of each frame inside the synovium estimated once (middle frame), as rule.fraction."""
    synovium = rule.synovium_mask(frames[len(frames) // 2])
    area = int(synovium.sum())
    if area == 0:
        return np.zeros(len(frames))
    return np.array([(rule.doppler_mask(f) & synovium).sum() / area for f in frames], dtype=float)


def true_synovium_fractions(rule: ColourFractionRule, item, frames: np.ndarray) -> np.ndarray:
    """Colour fraction of each frame inside the true synovium (pixels detected as the rule does)."""
    out = []
    for frame, synovium in zip(frames, item.synovium):
        area = int(synovium.sum())
        out.append((rule.doppler_mask(frame) & synovium).sum() / area if area else 0.0)
    return np.array(out, dtype=float)


def mask_pd(item, t: int) -> int:
    """PD grade frame ``t`` of a rendered item shows, by the EOSS rules on its truth masks."""
    if item.spec.sh == 0:
        return 0
    return grading.pd_from_mask(item.doppler[t], item.synovium[t], item.mm_per_px)


def pixel_pd(rule: ColourFractionRule, item, frames: np.ndarray) -> int:
    """Best PD grade over frames by the EOSS spot rules on the Doppler pixels (the rule's colour
    test) inside the true synovium: what the pixels show, read by someone who knows the synovium."""
    if item.spec.sh == 0:
        return 0
    return max(
        grading.pd_from_mask(rule.doppler_mask(f), s, item.mm_per_px) for f, s in zip(frames, item.synovium)
    )


def decoded(item) -> np.ndarray:
    """The item's frames after the demo's export (PNG still, H.264 MP4 clip) and ingest decoding."""
    from rascore.demo import encode
    from rascore.media import decode_bytes

    data, ext = encode(item)
    return decode_bytes(data, f"{item.spec.key}.{ext}").frames


def measure(
    pairs, workers: int = 2, rule: ColourFractionRule | None = None, inputs: dict | None = None
) -> dict:
    """Per joint: truth and every oracle's PD grade (masks, pixels) or colour fraction (CF).

    ``inputs`` maps a name to (``"still"`` or ``"clip"``, Preprocessing): each item's decoded
    frames are turned into that model input, kept under ``arrays[name]`` for scoring models later.
    """
    import torch

    rule = rule or ColourFractionRule()
    inputs = inputs or {}
    arrays: dict[str, list] = {name: [] for name in inputs}
    flat = [s for pair in pairs for s in pair]
    rows = []
    items = render_many(flat, workers=workers)
    view = None
    for still in items:
        clip = next(items)
        if view is None:
            view = model_view_frames(len(clip.frames))
        frames = {"still": decoded(still), "clip": decoded(clip)}
        for name, (kind, prep) in inputs.items():
            arrays[name].append(prep.array(frames[kind]))
        spec = still.spec
        clip_pd = np.array([mask_pd(clip, t) for t in range(len(clip.frames))])
        clip_cf = frame_fractions(rule, frames["clip"])
        rows.append(
            {
                "cohort": spec.cohort,
                "sh": spec.sh,
                "pd": spec.pd,
                "mask still": mask_pd(still, 0),
                "mask clip max": int(clip_pd.max()),
                "mask clip frame0": int(clip_pd[0]),
                "mask clip model-view": int(clip_pd[view].max()),
                "pixels still (PNG)": pixel_pd(rule, still, frames["still"]),
                "pixels clip max (H.264)": pixel_pd(rule, clip, frames["clip"]),
                "CF still": float(frame_fractions(rule, frames["still"])[0]),
                "CF clip max": float(clip_cf.max()),
                "CF clip mean": float(clip_cf.mean()),
                "CF/true-syn still": float(true_synovium_fractions(rule, still, frames["still"])[0]),
                "CF/true-syn clip max": float(true_synovium_fractions(rule, clip, frames["clip"]).max()),
            }
        )
    return {
        "rows": rows,
        "model_view": [int(v) for v in view] if view is not None else [],
        "arrays": {name: torch.stack(a) for name, a in arrays.items() if a},
    }


def _auc(positive: np.ndarray, negative: np.ndarray, score: np.ndarray) -> float | None:
    keep = positive | negative
    if positive.sum() == 0 or negative.sum() == 0:
        return None
    return float(roc_auc_score(positive[keep], score[keep]))


def oracle_scores(
    rows: list[dict], name: str, rule: ColourFractionRule
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One oracle's (N, 4) grade scores, (N,) PD grades and (N, 3) monotone scores for PD >= 1, 2, 3.

    Mask oracles: the combined grade from the true SH and the PD the frames show. Colour-fraction
    oracles: the rule's soft grades (Schmidt cut-offs) and, cut-off free, the fraction itself.
    """
    sh = np.array([r["sh"] for r in rows])
    if name.startswith(("mask", "pixels")):
        pd = np.array([r[name] for r in rows])
        combined = np.where(sh > 0, np.maximum(sh, pd), 0)
        return np.eye(4)[combined], pd, np.repeat(pd[:, None], 3, axis=1).astype(float)
    fractions = np.array([r[name] for r in rows])
    return (
        schmidt_probabilities(fractions),
        np.array([scale.pd_grade_from_fraction(f, SCHMIDT) for f in fractions]),
        np.repeat(fractions[:, None], 3, axis=1),
    )


SCHMIDT = (0.002, 0.06, 0.12)  # Schmidt 2015 colour-fraction cut-offs (a noise floor, 6%, 12%)


def schmidt_probabilities(fractions: np.ndarray) -> np.ndarray:
    """(N,) colour fractions -> (N, 4) soft grades around the Schmidt 2015 cut-offs (an oracle here,
    not the app's baseline, which applies the EOSS spot rules: rascore.nets.ColourFractionRule)."""
    import torch

    from rascore.nets.heads import cumulative_to_grades

    f = torch.as_tensor(np.asarray(fractions, dtype=np.float64)).reshape(-1, 1)
    cuts = torch.tensor(SCHMIDT, dtype=torch.float64)
    soft = torch.tensor((0.001, 0.01, 0.015), dtype=torch.float64)
    return cumulative_to_grades(torch.sigmoid((f - cuts) / soft)).numpy()


def model_scores(probs: np.ndarray) -> tuple[np.ndarray, None, np.ndarray]:
    """A model's (N, 4) probabilities, no PD grade, and P(combined >= k) as its monotone scores."""
    probs = np.asarray(probs, dtype=float)
    return probs, None, np.stack([probs[:, k:].sum(axis=1) for k in (1, 2, 3)], axis=1)


def _figures(
    y: np.ndarray,
    pd: np.ndarray,
    pd_driven: np.ndarray,
    scores: np.ndarray,
    pd_hat: np.ndarray | None,
    monotone: np.ndarray,
) -> dict:
    aucs = {str(g): _auc(y == g, y != g, scores[:, g]) for g in range(4)}
    defined = [a for a in aucs.values() if a is not None]
    under = None
    if pd_hat is not None and (pd > 0).any():
        under = float((pd_hat[pd > 0] < pd[pd > 0]).mean())
    return {
        "auc": aucs,
        "macro": float(np.mean(defined)) if defined else None,
        "pd_driven_auc": {str(g): _auc(pd_driven & (y == g), y != g, scores[:, g]) for g in (2, 3)},
        "pd_at_least": {str(k): _auc(pd >= k, pd < k, monotone[:, k - 1]) for k in (1, 2, 3)},
        "understated": under,
    }


def _truth(rows: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sh = np.array([r["sh"] for r in rows])
    pd = np.array([r["pd"] for r in rows])
    y = np.array([scale.combined(a, b) for a, b in zip(sh, pd)])
    return y, pd, (sh >= 1) & (pd > sh)


def table(
    rows: list[dict], rule: ColourFractionRule | None = None, models: dict[str, np.ndarray] | None = None
) -> dict:
    """Per cohort and oracle (or model, from its (N, 4) probabilities over ``rows``): per-grade AUC
    and macro AUC of the combined grade, PD-driven AUC (grades 2, 3), cut-off free AUC of the true
    PD >= 1, 2, 3 and, for oracles, the share of PD-positive joints graded below their PD."""
    rule = rule or ColourFractionRule()
    scored = {name: oracle_scores(rows, name, rule) for name in MASK_ORACLES + CF_ORACLES}
    scored.update({name: model_scores(p) for name, p in (models or {}).items()})
    cohort_of = np.array([r["cohort"] for r in rows])
    out: dict = {}
    for cohort in COHORTS:
        keep = cohort_of == cohort
        if not keep.any():
            continue
        y, pd, pd_driven = _truth([r for r, k in zip(rows, keep) if k])
        entry = {
            "n": int(keep.sum()),
            "class_counts": np.bincount(y, minlength=4).tolist(),
            "pd_counts": np.bincount(pd, minlength=4).tolist(),
            "pd_driven": {str(g): int((pd_driven & (y == g)).sum()) for g in (2, 3)},
            "oracles": {},
        }
        for name, (scores, pd_hat, monotone) in scored.items():
            entry["oracles"][name] = _figures(
                y, pd, pd_driven, scores[keep], None if pd_hat is None else pd_hat[keep], monotone[keep]
            )
        out[cohort] = entry
    return out


def paired_difference(
    rows: list[dict], a: np.ndarray, b: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> dict:
    """Macro AUC of b minus a on the same joints, per cohort, with a 95% percentile bootstrap CI
    (joints resampled, both models together)."""
    rng = np.random.default_rng(seed)
    cohort_of = np.array([r["cohort"] for r in rows])
    out = {}
    for cohort in COHORTS:
        keep = np.flatnonzero(cohort_of == cohort)
        if not keep.size:
            continue
        y, _, _ = _truth([rows[i] for i in keep])

        def macro(p: np.ndarray, idx: np.ndarray, y: np.ndarray = y) -> float:
            values = [_auc(y[idx] == g, y[idx] != g, p[idx, g]) for g in range(4)]
            return float(np.mean([v for v in values if v is not None]))

        pa, pb = np.asarray(a)[keep], np.asarray(b)[keep]
        whole = np.arange(keep.size)
        diffs = []
        for _ in range(n_boot):
            idx = rng.integers(0, keep.size, keep.size)
            if len(np.unique(y[idx])) == 4:
                diffs.append(macro(pb, idx) - macro(pa, idx))
        low, high = np.percentile(diffs, [2.5, 97.5]) if diffs else (np.nan, np.nan)
        out[cohort] = {
            "difference": macro(pb, whole) - macro(pa, whole),
            "ci_low": float(low),
            "ci_high": float(high),
            "n_boot_used": len(diffs),
        }
    return out


def load_models(wanted: list[str], all_frames: bool = False) -> dict[str, tuple]:
    """{name: (model, Preprocessing)} for ``MOD[:VERSION]`` entries of the project in RASCORE_DATA
    (no version = the active one); with ``all_frames`` a clip model is also scored on all 16 frames."""
    from rascore.project import open_project
    from rascore.train.checkpoint import model_from_checkpoint
    from rascore.train.versions import load_version

    project = open_project()
    out = {}
    for entry in wanted:
        modality, _, version = entry.upper().partition(":")
        row, checkpoint = load_version(project, modality, int(version) if version else None)
        model, prep = model_from_checkpoint(checkpoint)
        label = f"model {row['modality']} v{row['version']}"
        if prep.dynamic:
            pooling = getattr(model.backbone, "pooling", "")
            out[f"{label} ({prep.frames} fr {pooling})"] = (model, prep)
            if all_frames and prep.frames < 16:
                out[f"{label} (16 fr {pooling})"] = (model, replace(prep, frames=16, cache_frames=16))
        else:
            out[label] = (model, prep)
    return out


def score_models(models: dict[str, tuple], arrays: dict, device: str = "cpu") -> dict[str, np.ndarray]:
    """(N, 4) probabilities of each model on its paired inputs."""
    import torch

    from rascore.train.data import Arrays
    from rascore.train.loop import evaluate

    out = {}
    for name, (model, prep) in models.items():
        x = arrays[name]
        data = Arrays(x, torch.zeros(len(x), dtype=torch.long), list(range(len(x))))
        out[name] = evaluate(model, data, prep, torch.device(device))
    return out


def _f(v: float | None) -> str:
    return "  n/a" if v is None else f"{v:5.3f}"


def print_table(result: dict, model_view: list[int]) -> None:
    for cohort, entry in result.items():
        print(
            f"\n{cohort}: {entry['n']} joints, combined grades 0-3 {entry['class_counts']}, "
            f"true PD 0-3 {entry['pd_counts']}, PD-driven grade 2/3: "
            f"{entry['pd_driven']['2']}/{entry['pd_driven']['3']}"
        )
        print(f"  {'':<30} {'combined grade, one vs rest':^34} | {'PD-driven':^13} | {'true PD >= k':^20} |")
        print(
            f"  {'oracle / model':<30} {'AUC 0':>6} {'AUC 1':>6} {'AUC 2':>6} {'AUC 3':>6} {'macro':>6}"
            f" | {'2':>6} {'3':>6} | {'>=1':>6} {'>=2':>6} {'>=3':>6} | {'under':>6}"
        )
        for name, o in entry["oracles"].items():
            a, p, m = o["auc"], o["pd_driven_auc"], o["pd_at_least"]
            print(
                f"  {name:<30} " + " ".join(f"{_f(a[g]):>6}" for g in "0123") + f" {_f(o['macro']):>6}"
                f" | {_f(p['2']):>6} {_f(p['3']):>6} | "
                + " ".join(f"{_f(m[k]):>6}" for k in "123")
                + f" | {_f(o['understated']):>6}"
            )
    print(f"\nmodel-view = the clip frames the fast DPD model sees at evaluation: {model_view}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="paper")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures (and per-joint rows) here")
    parser.add_argument(
        "--models",
        nargs="*",
        metavar="MOD[:VERSION]",
        help="also score models of the project in RASCORE_DATA on the same joints (SPD on "
        "the stills, DPD on the clips, after PNG/H.264 export); no value: the active "
        "SPD and DPD",
    )
    parser.add_argument(
        "--all-frames",
        action="store_true",
        help="also feed each clip model all 16 frames of a clip (not only its own sampling)",
    )
    args = parser.parse_args()
    start = time.perf_counter()
    pairs = paired_specs(plan_cohort(args.size, args.seed))
    wanted = (args.models or ["SPD", "DPD"]) if args.models is not None else []
    models = load_models(wanted, args.all_frames)
    inputs = {name: ("clip" if prep.dynamic else "still", prep) for name, (_, prep) in models.items()}
    measured = measure(pairs, args.workers, inputs=inputs)
    probs = score_models(models, measured.pop("arrays"))
    rows = measured["rows"]
    for name, p in probs.items():
        for row, q in zip(rows, p):
            row[name] = [round(float(v), 5) for v in q]
    result = table(rows, models=probs)
    print(
        f"still vs clip oracles, cohort {args.size} seed {args.seed}: {len(pairs)} test joints, "
        f"each rendered as an SPD still and a DPD clip ({time.perf_counter() - start:.0f} s)"
    )
    print_table(result, measured["model_view"])
    statics = [n for n in probs if not models[n][1].dynamic]
    dynamics = [n for n in probs if models[n][1].dynamic]
    differences = {}
    for a in statics:
        for b in dynamics:
            differences[f"{b} - {a}"] = diff = paired_difference(rows, probs[a], probs[b])
            print(
                f"\nmacro AUC {b} minus {a}, same joints, 95% bootstrap CI: "
                + "; ".join(
                    f"{c} {d['difference']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"
                    for c, d in diff.items()
                )
            )
    if args.json:
        args.json.write_text(json.dumps({"table": result, "differences": differences, **measured}, indent=1))


if __name__ == "__main__":
    main()
