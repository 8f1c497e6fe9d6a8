"""How many scans the shift check flags: the demo's test cohorts against a foreign cohort.

On the project in RASCORE_DATA (a demo built with ``rascore demo --size paper --no-train
--no-study``), train one modality at the fast preset (registered, never activated), which keeps
its shift reference (rascore.train.shift) and stores each test prediction's flag; then print the
share of items flagged out of distribution in every test cohort the project holds (test1 and
test2, and test3 where the simulator writes one) and in two foreign sets graded by the same model:
the stills of tests/foreign_cohort.py (another generator) and the ultrasound DICOMs shipped with
pydicom's test data (real scanners; US1_* are one image in several encodings). test1 is in
distribution, so its flagged share should be near the expected false-flag rate the reference
states; test2 is another scanner profile of the same simulator.

Run (one modality, about five minutes on two cores):
  RASCORE_DATA=DEMO RASCORE_DB=DEMO/rascore.db RASCORE_MODELS=DEMO/models OMP_NUM_THREADS=1 \\
      .venv/bin/python bench/bench_shift.py --modality SGS --foreign 240
``--version N`` scores an already trained version instead of training one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rascore import scale  # noqa: E402
from rascore.project import open_project  # noqa: E402


def share(predictions: list) -> dict:
    """Flagged share of checked items, and how many each gauge alone flagged."""
    checked = [p for p in predictions if p.out_of_distribution is not None]
    flagged = sum(bool(p.out_of_distribution) for p in checked)
    out = {
        "n": len(predictions),
        "checked": len(checked),
        "flagged": flagged,
        "share": flagged / len(checked) if checked else None,
    }
    for p in checked:
        for name, check in p.shift_checks.items():
            out.setdefault(f"by {name}", 0)
            out[f"by {name}"] += int(check["flagged"])
    return out


def pydicom_ultrasound() -> list[tuple[str, np.ndarray]]:
    """(name, frames) of the ultrasound DICOMs in pydicom's test data, decoded as ingest decodes."""
    from pydicom.data import get_testdata_file

    from rascore.media import decode_file

    out = []
    for name in ("US1_UNCR.dcm", "US1_UNCI.dcm", "US1_J2KR.dcm", "US1_J2KI.dcm", "gdcm-US-ALOKA-16.dcm"):
        path = get_testdata_file(name)
        if path:
            out.append((name, decode_file(path).frames))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--modality", default="SGS", type=str.upper, choices=("SGS", "SPD"))
    parser.add_argument("--version", type=int, help="score this version instead of training one")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--foreign", type=int, default=240, help="stills from tests/foreign_cohort.py")
    parser.add_argument("--foreign-seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from rascore.predict import load_model, predict_frames
    from rascore.store import registry, results
    from rascore.train import make_config, run_training

    project = open_project()
    cohorts = tuple(
        c for c in scale.COHORTS if c != "train" and project.store.items(modality=args.modality, cohort=c)
    )
    started = time.perf_counter()
    if args.version is None:
        config = make_config(args.modality, "fast", "cpu", seed=args.seed)
        outcome = run_training(project, config, activate="never", test_cohorts=cohorts, n_boot=200)
        version, version_id = outcome.published.version, outcome.published.model_version_id
    else:
        row = registry.get_version(project.store, args.modality, args.version)
        if row is None:
            raise SystemExit(f"no {args.modality} v{args.version}")
        version, version_id = args.version, row["id"]
    trained_s = time.perf_counter() - started
    loaded = load_model(project, args.modality, version)
    report: dict = {
        "modality": args.modality,
        "version": version,
        "train_seconds": round(trained_s, 1) if args.version is None else None,
        "rule": loaded.shift if isinstance(loaded.shift, str) else loaded.shift.describe(),
        "expected_false_flag_rate": None if isinstance(loaded.shift, str) else loaded.shift.false_flag_rate,
        "cohorts": {},
    }
    for cohort in cohorts:
        # graded again item by item (the prediction path) for each gauge's count; the flags must
        # equal those training stored with the test predictions
        rows = project.store.items(modality=args.modality, cohort=cohort)
        again = [predict_frames(loaded, project.media.load_cache(r["media_sha256"])) for r in rows]
        entry = share(again)
        stored = results.shift_counts(project.store, version_id, cohort)
        entry["stored"] = {"n": stored[0], "checked": stored[1], "flagged": stored[2]}
        if stored[2] != entry["flagged"] and stored[1] == entry["checked"]:
            print(f"warning: {cohort}: {stored[2]} stored flags, {entry['flagged']} on grading again")
        report["cohorts"][cohort] = entry
    if args.foreign:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.foreign_cohort import make_foreign

        foreign = [
            predict_frames(loaded, frames)
            for frames, *_ in make_foreign(args.foreign, args.foreign_seed, args.modality)
        ]
        report["cohorts"]["foreign (tests/foreign_cohort.py)"] = share(foreign)
    dicoms = [(name, predict_frames(loaded, frames)) for name, frames in pydicom_ultrasound()]
    report["cohorts"]["pydicom ultrasound DICOMs"] = share([p for _, p in dicoms])
    report["pydicom_scores"] = {
        name: round(p.shift_score, 2) if p.shift_score else None for name, p in dicoms
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{args.modality} v{version} (fast preset); {report['rule']}")
    for cohort, entry in report["cohorts"].items():
        value = "undefined" if entry["share"] is None else f"{entry['share']:.1%}"
        gauges = ", ".join(f"{k} {v}" for k, v in entry.items() if k.startswith("by "))
        print(
            f"  {cohort:36s} flagged {entry['flagged']:4d} of {entry['checked']:4d}  {value:>7s}  ({gauges})"
        )
    print(f"  pydicom shift scores: {report['pydicom_scores']}")
    if report["train_seconds"] is not None:
        print(f"  trained in {report['train_seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
