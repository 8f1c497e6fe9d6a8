"""The session check of every page run (and of every key press on the Label page): a session held
by the tab alone (re-reads the user) against one held by a session token (one joined read of the
token and the user), same store, same process, alternated (docs/PERFORMANCE.md).

Usage: python bench/bench_session_check.py [--runs 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rascore.services import session  # noqa: E402
from rascore.store import accounts  # noqa: E402
from tests.fixtures_labelling import build_project  # noqa: E402


def per_run_us(project, state: dict, runs: int) -> float:
    """Microseconds per ``current_user`` call on this tab's state."""
    started = time.perf_counter()
    for _ in range(runs):
        if session.current_user(project, state) is None:
            raise SystemExit("the session ended during the benchmark")
    return 1e6 * (time.perf_counter() - started) / runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5000, help="checks per round (default 5000)")
    parser.add_argument("--rounds", type=int, default=5, help="alternated rounds (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rascore-bench-session-") as folder:
        project = build_project(Path(folder) / "p", per_modality=1)
        user = accounts.user(project.store, "demo-reader")
        tab_only: dict = {}
        with_token: dict = {}
        session.begin(tab_only, user)
        session.start(project, with_token, user)
        old, new = [], []
        for _ in range(args.rounds):
            old.append(per_run_us(project, tab_only, args.runs))
            new.append(per_run_us(project, with_token, args.runs))
        for name, values in (("tab only (user re-read)", old), ("session token (token + user)", new)):
            shown = ", ".join(f"{v:.1f}" for v in values)
            print(f"{name}: median {statistics.median(values):.1f} us per page run ({shown})")
        print(f"difference: {statistics.median(new) - statistics.median(old):+.1f} us per page run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
