"""Concurrent readers grading through the library: write latency and integrity under load.

12 reader threads (each its own Store connection, as Streamlit's session threads have) claim
items with ``labelling.next_item`` and grade them with ``labelling.submit`` for a bounded time,
going back to edit every fourth grade; exclusive assignment (``labelling.max_readers`` = 1).
Afterwards it checks that every grade is stored exactly once, every edit chain is complete and
no item was served to two readers while leased, and prints claim and submit latency p50/p95/max.
Also a backup (``rascore backup``) taken in the middle of the load, to time it under writers.

Usage:
  python bench/bench_load.py                       # 12 readers, 30 s
  python bench/bench_load.py --readers 24 --seconds 60 --think 0.05 --no-backup
Everything stays on this machine (a temporary project folder; no network).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_reliability_load import build_load_project, check_store, run_load  # noqa: E402


def main() -> int:
    """Run the load and print the figures; exit 1 when an integrity check fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument(
        "--think",
        type=float,
        default=0.02,
        help="seconds a reader looks at an item before grading (default 0.02)",
    )
    parser.add_argument("--no-backup", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rascore-load-") as folder:
        t0 = time.perf_counter()
        project = build_load_project(Path(folder) / "project", items=args.items, readers=args.readers)
        print(
            f"project: {args.items} items, {args.readers} readers ({time.perf_counter() - t0:.1f} s to build)"
        )
        backup_line: list[str] = []

        def take_backup() -> None:
            from rascore import backup

            time.sleep(args.seconds / 2)
            b0 = time.perf_counter()
            report = backup.backup(project.settings, Path(folder) / "backup")
            backup_line.append(
                f"backup mid-load: {time.perf_counter() - b0:.2f} s, "
                f"{report.db_steps} steps, {report.db_restarts} restarts, "
                f"database integrity {report.integrity}, "
                f"{len(report.missing)} media files missing (the load items are "
                "stand-in rows without files)"
            )

        extra = None if args.no_backup else threading.Thread(target=take_backup)
        if extra:
            extra.start()
        readers = [f"reader-{k:02d}" for k in range(args.readers)]
        result = run_load(project.settings.db_path, readers, args.seconds, think_s=args.think)
        if extra:
            extra.join()
        problems = check_store(project.store, result)
        n = len(result.submits)
        print(
            f"{n} grades in {result.seconds:.1f} s ({n / result.seconds:.0f}/s), "
            f"{len({(r, i) for r, i, _, _ in result.submits})} reader-item pairs"
        )
        for what, values in (("claim (next_item)", result.claim_s), ("submit (write)", result.submit_s)):
            p50, p95, worst = result.percentiles(values)
            print(f"{what:<18} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   max {worst:7.1f} ms")
        for line in backup_line:
            print(line)
        failures = result.errors + result.violations + problems
        print(
            "integrity: "
            + ("ok (each grade once, history complete, no double lease)" if not failures else "FAILED")
        )
        for line in failures[:20]:
            print(f"  {line}")
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
