"""Benchmark: the OR MRMC analysis (``rascore.evaluate.mrmc``) of a simulated reader study, 12
readers x 2 arms x 500 cases (target: well under 2 s on CPU).

The study is simulated with correlated scores (a seeded normal model: a case effect shared by
every reading of the case, a reader-by-case effect shared across arms, an arm shift for positives,
and noise), rated on a 1-5 scale like the Van Dyke data. Prints the median time of the whole
analysis from the long table (input checks, vectorised case jackknife, the three analyses) over
``--repeats`` runs, and the part after the checks; then, once, a naive jackknife that recomputes
every leave-one-case-out AUC with scikit-learn's ``roc_auc_score`` (the loop the vectorised
placement values replace), timed on the first ``--naive-cases`` left-out cases and scaled to all,
with the ratio of the two and the largest difference between the two sets of leave-one-out AUCs.

    .venv/bin/python bench/bench_mrmc.py [--readers 12] [--arms 2] [--cases 500] [--repeats 7] [--naive-cases 50]

The load average is printed beside the figures: on a shared machine, measure when it is low.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rascore.evaluate.mrmc import jackknife_aucs, mrmc_analysis  # noqa: E402
from rascore.evaluate.mrmc_input import mrmc_data  # noqa: E402

TARGET_S = 2.0


def simulate(n_readers: int, n_arms: int, n_cases: int, seed: int = 0) -> pd.DataFrame:
    """A fully crossed reading table with scores correlated across readers and arms."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(n_cases, dtype=int)
    truth[: n_cases * 2 // 5] = 1
    rng.shuffle(truth)
    case = rng.normal(0, 0.8, n_cases) + 1.3 * truth
    reader_case = rng.normal(0, 0.5, (n_readers, n_cases))
    frames = []
    for arm in range(n_arms):
        for reader in range(n_readers):
            latent = case + reader_case[reader] + 0.25 * arm * truth + rng.normal(0, 0.6, n_cases)
            frames.append(
                pd.DataFrame(
                    {
                        "reader": f"reader{reader + 1:02d}",
                        "case": [f"case{c:04d}" for c in range(n_cases)],
                        "truth": truth,
                        "arm": f"arm{arm + 1}",
                        "score": np.digitize(latent, [-0.4, 0.3, 0.9, 1.6]) + 1,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def timed(function, *args) -> float:
    """Wall seconds of one call."""
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def naive_jackknife(data, n_left_out: int) -> tuple[float, np.ndarray]:
    """Seconds to recompute, with scikit-learn, the leave-one-out AUCs of every reader and arm for
    the first ``n_left_out`` cases, and those AUCs (t, r, n_left_out)."""
    from sklearn.metrics import roc_auc_score

    t, r, k = data.scores.shape
    start = time.perf_counter()
    jack = np.empty((t, r, n_left_out))
    keep = np.ones(k, dtype=bool)
    for c in range(n_left_out):
        keep[c] = False
        for i in range(t):
            for j in range(r):
                jack[i, j, c] = roc_auc_score(data.truth[keep], data.scores[i, j, keep])
        keep[c] = True
    return time.perf_counter() - start, jack


def main() -> None:
    """Parse arguments, run, print figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=12)
    parser.add_argument("--arms", type=int, default=2)
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--naive-cases",
        type=int,
        default=50,
        metavar="N",
        help="left-out cases the naive loop times (0: skip)",
    )
    args = parser.parse_args()

    table = simulate(args.readers, args.arms, args.cases)
    data = mrmc_data(table)
    result = mrmc_analysis(table)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"OR MRMC analysis: {args.readers} readers x {args.arms} arms x {args.cases} cases "
        f"({data.n_positive} positive), {len(table)} readings"
    )
    print(
        f"  simulated study: AUC {', '.join(f'{a} {v:.3f}' for a, v in result.auc.items())}; "
        f"RRRC F {result.rrrc['F']:.2f}, ddf {result.rrrc['ddf']:.1f}, p {result.rrrc['p']:.3g}"
    )
    whole = [timed(mrmc_analysis, table) for _ in range(args.repeats)]
    core = [timed(mrmc_analysis, data) for _ in range(args.repeats)]
    median = statistics.median(whole)
    print(f"  whole analysis from the table, median of {args.repeats}: {median * 1000:8.1f} ms")
    print(f"  after the input checks (jackknife + analyses):    {statistics.median(core) * 1000:8.1f} ms")
    print(
        f"  target {TARGET_S:.1f} s: ratio median/target = {median / TARGET_S:.4f} "
        f"({'PASS' if median <= TARGET_S else 'FAIL'})"
    )
    if args.naive_cases:
        n = min(args.naive_cases, args.cases)
        seconds, naive = naive_jackknife(data, n)
        t, r, k = data.scores.shape
        _, jack = jackknife_aucs(data.scores.reshape(t * r, k), data.truth)
        gap = float(np.abs(jack.reshape(t, r, k)[:, :, :n] - naive).max())
        scaled = seconds * k / n
        print(
            f"  naive jackknife, scikit-learn AUC per reader, arm and left-out case: {seconds:.2f} s "
            f"for {n} of the {k} left-out cases, so {scaled:.1f} s for all, x{scaled / median:.0f} "
            f"the whole vectorised analysis; largest leave-one-out AUC difference {gap:.1e}"
        )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"  cpu count {os.cpu_count()}, numpy {np.__version__}, pandas {pd.__version__}")


if __name__ == "__main__":
    main()
