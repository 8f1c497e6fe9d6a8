"""MRMC analysis of the demo's reader study: aided minus unaided AUC with its random-readers,
random-cases (RRRC) 95% CI, overall and by experience level, at two truth thresholds.

Builds a demo project in a temporary folder (``rascore demo --size paper --no-train``, timed), or
reads an existing project folder (``--project DIR``: the folder RASCORE_DATA names, holding
rascore.db). The reads come from ``rascore.services.study_results.reads_table`` (truth: the
reference combined EOSS >= the threshold; score: the reader's combined grade 0-3) and the analysis
from ``rascore.evaluate.mrmc`` (Obuchowski-Rockette, Hillis ddf), as a reader-study page would.
The aid is the demo's simulated suggestion (not a model): its own AUC, from its probability of a
grade >= the threshold (``aid_table``), is printed beside the readers'.

Usage: .venv/bin/python bench/demo_study.py [--project DIR | --size paper|small --seed N --keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

LEVELS = ("all", "senior", "intermediate", "junior")


def build(size: str, seed: int, keep: Path | None) -> Path:
    """Build a demo project (timed) and return its folder."""
    data = keep or Path(tempfile.mkdtemp(prefix="rascore-demo-study-")) / "project"
    env = dict(os.environ, RASCORE_DATA=str(data), RASCORE_DB=str(data / "rascore.db"))
    rascore = Path(sys.executable).parent / "rascore"
    start = time.perf_counter()
    done = subprocess.run(
        [str(rascore), "demo", "--size", size, "--seed", str(seed), "--quiet", "--no-train"],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    lines = done.stdout.splitlines()
    print(lines[0])
    print(next((line for line in lines if line.startswith("reader study")), "no reader study"))
    print(
        f"demo build ({size}, seed {seed}): {time.perf_counter() - start:.1f} s wall on {os.cpu_count()} cores"
    )
    return data


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:+.{digits}f}"


def report(data: Path) -> None:
    """Print the MRMC figures of the demo study in the project folder ``data``."""
    from rascore.evaluate.agreement import weighted_kappa
    from rascore.evaluate.mrmc import jackknife_aucs, mrmc_analysis
    from rascore.services import study_results
    from rascore.services.demo_study import STUDY_NAME
    from rascore.store import Store, accounts

    store = Store(data / "rascore.db")
    admin = accounts.user(store, "demo-admin")
    row = store.one("SELECT id FROM studies WHERE name = ?", (STUDY_NAME,))
    if row is None:
        raise SystemExit(f"{data} holds no {STUDY_NAME!r} (built with --no-study?)")
    for threshold in (1, 2):
        table = study_results.reads_table(store, admin, row["id"], positive_from=threshold)
        table = table.dropna(subset=["truth"]).sort_values(["arm", "reader", "case"])  # aided first
        aid = study_results.aid_table(store, admin, row["id"], threshold=threshold)
        truth = table.drop_duplicates("case").set_index("case")["truth"].astype(int)
        aid_auc = float(
            jackknife_aucs(aid.set_index("case")["prob"].loc[truth.index].to_numpy(), truth.to_numpy())[0][0]
        )
        print(
            f"\ntruth: reference combined EOSS >= {threshold} ({int(truth.sum())} positive, "
            f"{int((truth == 0).sum())} negative of {len(truth)} cases); score: the reader's combined grade"
        )
        print(
            f"  the aid (source: {aid.attrs['source']}): AUC {aid_auc:.3f} from its P(grade >= {threshold})"
        )
        print(
            f"  {'readers':<18}{'unaided':>9}{'aided':>9}{'aided-unaided':>15}  {'RRRC 95% CI':<19}{'p':>8}"
            f"{'kappa u->a':>16}"
        )
        for level in LEVELS:
            part = table if level == "all" else table[table["experience"] == level]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = mrmc_analysis(part[["reader", "case", "truth", "arm", "score"]])
            auc, rrrc = result.auc, result.rrrc
            kappas = {
                arm: np.mean(
                    [
                        weighted_kappa(g["reference"].astype(int), g["score"].astype(int), "quadratic")
                        for _, g in part[part["arm"] == arm].groupby("reader")
                    ]
                )
                for arm in ("unaided", "aided")
            }
            name = f"{level} ({len(result.readers)})"
            ci = f"{_fmt(rrrc['ci_low'])} to {_fmt(rrrc['ci_high'])}"
            print(
                f"  {name:<18}{auc['unaided']:>9.3f}{auc['aided']:>9.3f}{_fmt(rrrc['diff']):>15}  {ci:<19}"
                f"{rrrc['p']:>8.3f}{kappas['unaided']:>8.3f}->{kappas['aided']:.3f}"
            )
    times = study_results.read_times(study_results.reads_table(store, admin, row["id"]))
    medians = times.groupby(["experience", "arm"])["median_s"].median().unstack()
    print("\nmedian seconds per read (median over readers):")
    print(medians.round(1).to_string())
    store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, help="an existing demo project folder (skips the build)")
    parser.add_argument("--size", default="paper", choices=("paper", "small"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="build here and keep it")
    args = parser.parse_args()
    data = args.project or build(args.size, args.seed, args.keep)
    try:
        report(data)
    finally:
        if not args.project and not args.keep:
            shutil.rmtree(data.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
