"""``rascore demo``: generate and import the simulated cohort as a ready project."""

from __future__ import annotations

import argparse
import sys
import time

from rascore.cli import CliError
from rascore.project import open_project


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``demo``."""
    parser = sub.add_parser(
        "demo",
        help="build the simulated demo project",
        description="Generate the simulated cohort (paper size: 1244 training items, test cohort 1 "
        "= 152, test cohort 2 = 354 from another scanner profile, test cohort 3 = 152 from an "
        "unseen scanner profile, over SGS, DGS, SPD and DPD), "
        "import it like real scans, add 2 experts and 12 readers with their grades, the "
        "reference standard, a calibration set with the readers' calibration reads, a finished "
        "reader study of SPD test items (both arms, simulated aid), and demo accounts whose "
        "passwords are printed once.",
    )
    parser.add_argument("--size", choices=("paper", "small"), default="paper")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--variation",
        choices=("wide", "none"),
        default="none",
        help="none (default): every item with its scanner profile's centre settings on a 192 x 256 "
        "frame; wide: each acquisition's settings (frame size, maps, frequency, tilt, annotations, "
        "...) drawn around its profile. The fast preset does not yet learn the wide cohort well "
        "(docs/ROBUSTNESS.md), so the demo's models are trained on the narrow one",
    )
    parser.add_argument("--workers", type=int, default=2, help="rendering processes (default 2)")
    parser.add_argument(
        "--if-absent", action="store_true", help="do nothing (exit 0) when the project already holds the demo"
    )
    parser.add_argument(
        "--no-train",
        action="store_true",
        help="do not queue the four models' training (queued by default; `rascore worker` runs them)",
    )
    parser.add_argument(
        "--no-study",
        action="store_true",
        help="leave out the calibration set and the finished reader study with its simulated aid "
        "(built by default)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rascore.demo import build_demo

    project = open_project()
    if project.store.has_source("demo"):
        if args.if_absent:
            print(f"the demo project is already in {project.settings.db_path}")
            return 0
        raise CliError(
            f"{project.settings.db_path} already holds the demo cohort; "
            "point RASCORE_DATA/RASCORE_DB at an empty folder to build another"
        )
    bar = tqdm(unit="item", disable=args.quiet or None, file=sys.stderr, desc="rendering")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    start = time.perf_counter()
    result = build_demo(
        project,
        size=args.size,
        seed=args.seed,
        variation=args.variation,
        workers=args.workers,
        progress=progress,
        queue_training=not args.no_train,
        study=not args.no_study,
    )
    bar.close()
    took = time.perf_counter() - start
    refs = ", ".join(f"{n} by {m}" for m, n in sorted(result.references.items()))
    print(
        f"demo project ({args.size}, seed {args.seed}, variation {args.variation}) in {project.settings.db_path}: "
        f"{result.items} items, {result.annotations} reader grades, reference {refs}; "
        f"{took:.0f} s"
    )
    if result.study is not None:
        from rascore.services.demo_study import summary

        print(summary(result.study))
    if result.jobs:
        print(
            f"queued training of the four models (jobs {', '.join(map(str, result.jobs))}); "
            "`rascore worker` (started by `make app`) runs them"
        )
    if result.accounts:
        print("Demo accounts (passwords shown once; change them with 'rascore user passwd'):")
        for name, password in result.accounts.items():
            print(f"  {name:<12} {password}")
    return 0
