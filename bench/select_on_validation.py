"""Choose the fast preset's clip epochs, joint crop and head on the validation split only.

Test cohorts are for reporting, not for choosing. This script trains the candidate settings per
modality with the fast preset on the project in RASCORE_DATA / RASCORE_DB and records only the
figures of the validation split (the patient-grouped held-out part of the *train* cohort that
``rascore train`` uses for early stopping, ``val_fraction`` of rascore.train.config): macro AUC
(mean of the per-grade one-against-the-rest AUCs) and log loss of the best epoch. It calls
rascore.train.loop.load_data and fit directly, never run_training (which evaluates test1/test2
and registers the model): nothing is tested and nothing is registered. The project is opened
through ``TrainOnly``, which refuses to read the reference labels of any cohort but ``train``,
and a demo project built with the reserved seed (RESERVED_SEED, kept for the final reported
figures) is refused outright.

Candidates, one factor at a time from BASE (the preset as it stood: crop on, softmax, 20 clip
epochs), each seed giving every candidate the same validation split (patient_split is seeded):
  clip epochs 12 or 20 (DGS, DPD); joint crop on (the preset's roi) or off (all four);
  head softmax or ordinal (all four).

Decision rule, fixed before any comparison (``decide``): for each factor, among the runs whose
other factors are at BASE, the option with the highest validation macro AUC averaged over the
modalities the factor applies to and the seeds its variant ran on (BASE runs of other seeds are
left out, so that every comparison is paired). A lead of less than TIE (0.01) is a tie, and a
tie goes to the cheaper or simpler option (``SIMPLER``: 12 clip epochs, no crop, softmax). Log
loss is shown, not used. A factor lacking a run for one of its modalities and seeds is left
undecided.

Run (single-threaded; results append to --out, and a rerun skips the runs already there):
  RASCORE_DATA=DEMO RASCORE_DB=DEMO/rascore.db OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
    python bench/select_on_validation.py --seeds 0 1 --out select.jsonl
  python bench/select_on_validation.py --out select.jsonl --table-only
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESERVED_SEED = 7  # the demo seed of the final reported figures: no choice may see it
SELECTION_COHORT = "train"  # validation is a patient-grouped part of it
TIE = 0.01
CLIPS = ("DGS", "DPD")
ALL = ("SGS", "DGS", "SPD", "DPD")


@dataclass(frozen=True)
class Factor:
    """One choice: its options, the modalities it applies to and its cheaper/simpler option."""

    name: str
    options: tuple
    modalities: tuple[str, ...]
    simpler: object


FACTORS: tuple[Factor, ...] = (
    Factor("clip_epochs", (12, 20), CLIPS, 12),
    Factor("roi", ("preset", "off"), ALL, "off"),
    Factor("head", ("softmax", "ordinal"), ALL, "softmax"),
)
SIMPLER = {f.name: f.simpler for f in FACTORS}
BASE = {"clip_epochs": 20, "roi": "preset", "head": "softmax"}


@dataclass(frozen=True)
class Run:
    """One cell of the grid."""

    modality: str
    roi: str
    head: str
    clip_epochs: int | None  # None for stills (their epochs are the preset's)
    seed: int

    def key(self) -> tuple:
        """Identity of the run in the results file."""
        return (self.modality, self.roi, self.head, self.clip_epochs, self.seed)


def grid(
    modalities: Sequence[str], seeds: Sequence[int], only: Sequence[str] = ("head", "clip_epochs", "roi")
) -> list[Run]:
    """BASE and its single-factor variants (of the factors in ``only``), per modality and seed."""
    factors = {f.name: f for f in FACTORS}
    runs = []
    for seed in seeds:
        for modality in modalities:
            for name in (None, "head", "clip_epochs", "roi"):
                if name and (name not in only or modality not in factors[name].modalities):
                    continue
                if name is None and not any(modality in factors[n].modalities for n in only):
                    continue
                setting = dict(BASE)
                if name:
                    setting[name] = next(o for o in factors[name].options if o != BASE[name])
                runs.append(
                    Run(
                        modality,
                        setting["roi"],
                        setting["head"],
                        setting["clip_epochs"] if modality in CLIPS else None,
                        seed,
                    )
                )
    return runs


# --------------------------------------------------------------------------- the decision rule
def _mean(values: Iterable[float]) -> float:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return sum(values) / len(values) if values else float("nan")


def comparable(rows: Sequence[dict], factor: Factor) -> list[dict]:
    """Rows of the factor's modalities whose other factors are at BASE, of the seeds on which the
    factor's variant ran (so that every comparison is paired)."""

    def at_base(row: dict) -> bool:
        return all(
            row.get(k) == v
            for k, v in BASE.items()
            if k != factor.name and not (k == "clip_epochs" and row["modality"] not in CLIPS)
        )

    rows = [r for r in rows if r["modality"] in factor.modalities and at_base(r)]
    seeds = {r["seed"] for r in rows if r.get(factor.name) != BASE[factor.name]}
    return [r for r in rows if r["seed"] in seeds]


def decide(rows: Sequence[dict], factors: Sequence[Factor] = FACTORS, tie: float = TIE) -> dict:
    """The declared rule applied to result rows (each with modality, roi, head, clip_epochs, seed,
    val_macro_auc): per factor, among the runs with the other factors at BASE, the option with the
    highest mean validation macro AUC over its modalities and seeds; a lead under ``tie`` goes to
    the simpler option. Pure: no training, no I/O."""
    out = {}
    for factor in factors:
        relevant = comparable(rows, factor)
        seeds = {r["seed"] for r in relevant}
        by_option = {o: [r for r in relevant if r.get(factor.name) == o] for o in factor.options}
        counts = {o: len(v) for o, v in by_option.items()}
        means = {o: _mean(r["val_macro_auc"] for r in v) for o, v in by_option.items()}
        needed = {(m, seed) for m in factor.modalities for seed in seeds}
        complete = all({(r["modality"], r["seed"]) for r in v} == needed for v in by_option.values())
        if not relevant or not complete or any(math.isnan(m) for m in means.values()):
            out[factor.name] = {
                "choice": None,
                "means": means,
                "n_runs": counts,
                "reason": "undecided: a modality or seed lacks a run",
            }
            continue
        ranked = sorted(factor.options, key=lambda o: means[o], reverse=True)
        best, lead = ranked[0], means[ranked[0]] - means[ranked[1]]
        if lead < tie and best != factor.simpler:
            choice, reason = factor.simpler, f"tie (lead {lead:.3f} < {tie}): the simpler option"
        elif lead < tie:
            choice, reason = best, f"highest, and the simpler option (lead {lead:.3f})"
        else:
            choice, reason = best, f"highest by {lead:.3f}"
        out[factor.name] = {"choice": choice, "means": means, "n_runs": counts, "reason": reason}
    return out


# --------------------------------------------------------------------------- guards
class TrainOnlyStore:
    """The project's store as the selection may see it: reference labels of the train cohort only."""

    def __init__(self, store) -> None:
        self._store = store

    def references(self, modality: str | None = None, cohort: str | None = None) -> list[dict]:
        """Reference labels of ``modality`` in the train cohort; any other cohort is refused."""
        if cohort != SELECTION_COHORT:
            raise PermissionError(
                f"model selection may not read cohort {cohort!r}: "
                "test cohorts are for reporting, not for choosing"
            )
        rows = self._store.references(modality, cohort)
        stray = {r.get("cohort") for r in rows} - {SELECTION_COHORT}
        if stray:
            raise PermissionError(f"the store returned rows of {sorted(stray)}; refusing them")
        return rows

    def __getattr__(self, name: str):
        raise PermissionError(f"model selection reads reference labels only, not store.{name}")


class TrainOnly:
    """A project wrapper for load_data: train-cohort labels and the media cache, nothing else."""

    def __init__(self, project) -> None:
        self.store = TrainOnlyStore(project.store)
        self.media = project.media


def demo_seeds(store) -> list[int]:
    """Seeds of the demo builds recorded in the project's audit log (empty for a real project)."""
    rows = store.conn.execute("SELECT detail_json FROM audit_log WHERE action = 'demo.build'")
    return [int(json.loads(r[0] or "{}").get("seed", -1)) for r in rows]


def check_not_reserved(seeds: Sequence[int]) -> None:
    """Refuse a project built with the seed kept for the final reported figures."""
    if RESERVED_SEED in seeds:
        raise SystemExit(
            f"this project is a demo built with seed {RESERVED_SEED}, reserved for "
            "the final reported figures: no choice may see it"
        )


# --------------------------------------------------------------------------- training
def config_for(run: Run):
    """The fast-preset TrainConfig of one run (CPU, no pretrained weights)."""
    from rascore.train import make_config

    overrides = {"head": run.head, "seed": run.seed, "weights": "none"}
    if run.roi == "off":
        overrides["roi"] = "none"
    if run.clip_epochs is not None:
        overrides["epochs"] = run.clip_epochs
    return make_config(run.modality, "fast", "cpu", **overrides)


def train_one(project: TrainOnly, run: Run, cache: dict) -> dict:
    """Train one run and return its validation figures (data preloaded once per crop and seed)."""
    from rascore.train.loop import fit, load_data

    config = config_for(run)
    key = (run.modality, run.roi, run.seed)
    if key not in cache:
        cache.clear()  # one modality's arrays at a time
        cache[key] = load_data(project, config)
    data = cache[key]
    assert data.snapshot["cohort"] == SELECTION_COHORT
    started = time.perf_counter()
    result = fit(config, data)
    val = result.validation
    return {
        "modality": run.modality,
        "roi": run.roi,
        "head": run.head,
        "clip_epochs": run.clip_epochs,
        "seed": run.seed,
        "val_macro_auc": val.get("macro_auc"),
        "val_log_loss": val.get("log_loss"),
        "val_n": val.get("n"),
        "val_patients": data.snapshot["val_patients"],
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "epochs": config.epochs,
        "seconds": round(time.perf_counter() - started, 1),
    }


def read_rows(path: Path) -> list[dict]:
    """Result rows already in the JSONL file."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def print_table(rows: Sequence[dict]) -> None:
    """Every run's validation figures, then per-factor means and the decisions."""
    print(
        f"{'modality':8} {'roi':7} {'head':8} {'clip ep':>7} {'seed':>4} {'val n':>5} "
        f"{'macro AUC':>9} {'log loss':>8} {'best ep':>7} {'s':>6}"
    )
    for r in sorted(
        rows, key=lambda r: (ALL.index(r["modality"]), r["seed"], r["roi"], r["head"], r["clip_epochs"] or 0)
    ):
        print(
            f"{r['modality']:8} {r['roi']:7} {r['head']:8} {str(r['clip_epochs'] or '-'):>7} "
            f"{r['seed']:>4} {r['val_n']:>5} {r['val_macro_auc']:>9.3f} {r['val_log_loss']:>8.3f} "
            f"{r['best_epoch']:>7} {r['seconds']:>6.0f}"
        )
    print()
    for factor in FACTORS:
        print(f"{factor.name} (other factors at BASE): validation macro AUC / log loss, mean over seeds")
        for modality in factor.modalities:
            cells = []
            for option in factor.options:
                sel = [
                    r
                    for r in comparable(rows, factor)
                    if r["modality"] == modality and r.get(factor.name) == option
                ]
                cells.append(
                    f"{option}: {_mean(r['val_macro_auc'] for r in sel):.3f} / "
                    f"{_mean(r['val_log_loss'] for r in sel):.3f} (n={len(sel)})"
                )
            print(f"  {modality}: " + "; ".join(cells))
    print()
    for name, d in decide(rows).items():
        means = ", ".join(f"{o}: {m:.3f}" for o, m in d["means"].items())
        print(f"DECISION {name} = {d['choice']}  ({means}; runs {d['n_runs']}; {d['reason']})")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the missing grid cells, append them to --out, print the table and the decisions."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modalities", nargs="+", default=list(ALL))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument(
        "--factors",
        nargs="+",
        default=[f.name for f in FACTORS],
        choices=[f.name for f in FACTORS],
        help="vary only these (BASE is always run)",
    )
    parser.add_argument("--out", type=Path, default=Path("select_on_validation.jsonl"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--table-only", action="store_true", help="print the table of --out, train nothing")
    args = parser.parse_args(argv)
    rows = read_rows(args.out)
    if not args.table_only:
        import torch

        from rascore.project import open_project

        torch.set_num_threads(args.threads)
        project = open_project()
        check_not_reserved(demo_seeds(project.store))
        guarded, cache = TrainOnly(project), {}
        done = {(r["modality"], r["roi"], r["head"], r["clip_epochs"], r["seed"]) for r in rows}
        for run in grid([m.upper() for m in args.modalities], args.seeds, args.factors):
            if run.key() in done:
                continue
            row = train_one(guarded, run, cache)
            rows.append(row)
            with args.out.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    print_table(rows)


if __name__ == "__main__":
    main()
