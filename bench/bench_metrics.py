"""Benchmark: dashboard maths - per-grade AUC with 1000 bootstrap resamples for 4 models x 2
cohorts x 10,000 cases (target <= 1 s on CPU, docs/PERFORMANCE.md), resampling items and, as a second
case, resampling patients (2,500 patients of 4 items each, all of a drawn patient's items kept).

Prints the time of the whole job (first run and best of ``--repeats``), its ratio to the 1 s
target, and, side by side in the same run, a naive bootstrap (resample indices, scikit-learn
``roc_auc_score`` per resample) timed on a few resamples and scaled up, so the speed-up is a
ratio on this machine rather than an absolute time.

    .venv/bin/python bench/bench_metrics.py [--cases 10000] [--patients 2500] [--models 4]

The load average is printed beside the figures: on a shared machine, measure when it is low.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rascore.evaluate import per_grade_auc_models  # noqa: E402

TARGET_S = 1.0


def make_cohort(n: int, n_models: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Reference grades and softmax probabilities of ``n_models`` models of differing quality."""
    rng = np.random.default_rng(seed)
    y = rng.choice(4, size=n, p=[0.3, 0.3, 0.25, 0.15])
    probs = {}
    for k in range(n_models):
        logits = rng.normal(0, 1.0 + 0.3 * k, (n, 4))
        logits[np.arange(n), y] += 1.5
        p = np.exp(logits)
        probs[f"model-{k}"] = p / p.sum(axis=1, keepdims=True)
    return y, probs


def make_patients(n: int, n_patients: int, seed: int) -> list[str]:
    """One patient id per case: ``n_patients`` patients with (about) equally many items each."""
    rng = np.random.default_rng(seed)
    ids = np.arange(n) % n_patients
    rng.shuffle(ids)
    return [f"P{i:05d}" for i in ids]


def run_job(cohorts: list, n_boot: int, patients: list | None = None) -> tuple[float, float]:
    """Wall and CPU seconds of this process for per-grade AUC + CIs of every model on every
    cohort (patient bootstrap when ``patients`` gives each cohort's patient ids). On a shared
    machine the CPU seconds are the better guide to the time on a quiet one."""
    start, cpu = time.perf_counter(), time.process_time()
    for index, (y, probs) in enumerate(cohorts):
        per_grade_auc_models(
            y, probs, n_boot=n_boot, seed=0, patients=None if patients is None else patients[index]
        )
    return time.perf_counter() - start, time.process_time() - cpu


def naive_seconds(y: np.ndarray, probs: dict, n_boot: int, n_aucs: int, sample: int = 20) -> float:
    """Time ``sample`` resamples of a per-resample sklearn loop for one AUC, scaled to the job."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    scores = next(iter(probs.values()))[:, 0]
    positive = y == 0
    start = time.perf_counter()
    for _ in range(sample):
        idx = rng.integers(0, y.size, y.size)
        roc_auc_score(positive[idx], scores[idx])
    per_resample = (time.perf_counter() - start) / sample
    return per_resample * n_boot * n_aucs


def main() -> None:
    """Parse arguments, run, print figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--cohorts", type=int, default=2)
    parser.add_argument("--patients", type=int, default=2_500)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    cohorts = [make_cohort(args.cases, args.models, seed) for seed in range(args.cohorts)]
    patients = [make_patients(args.cases, args.patients, 100 + seed) for seed in range(args.cohorts)]
    n_aucs = args.cohorts * args.models * 4
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for label, ids in (
        ("items resampled", None),
        (f"patients resampled ({args.patients} patients)", patients),
    ):
        runs = [run_job(cohorts, args.n_boot, ids) for _ in range(args.repeats)]
        first = runs[0][0]
        best = min(wall for wall, _ in runs)
        best_cpu = min(cpu for _, cpu in runs)
        print(
            f"per-grade AUC + {args.n_boot}-resample percentile CIs, {label}: {args.models} "
            f"models x {args.cohorts} cohorts x {args.cases} cases = {n_aucs} AUCs"
        )
        print(f"  first run            {first:8.3f} s")
        print(
            f"  best of {args.repeats:<3}          {best:8.3f} s   (CPU time of this process: "
            f"best {best_cpu:.3f} s)"
        )
        print(
            f"  target               {TARGET_S:8.3f} s   ratio best/target = {best / TARGET_S:.2f} "
            f"({'meets' if best <= TARGET_S else 'misses'} the target)"
        )
    naive = naive_seconds(*cohorts[0], args.n_boot, n_aucs)
    print(
        f"  naive sklearn loop   {naive:8.1f} s (estimated from 20 resamples)   "
        f"speed-up x{naive / best:.0f} over the patient bootstrap"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"  cpu count {os.cpu_count()}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
