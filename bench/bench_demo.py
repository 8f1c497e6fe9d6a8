"""Build the paper-size demo project in a temporary folder; print its build time and disk size.

Targets (docs/PERFORMANCE.md): the cohort renders in <= 2 minutes on 2 cores (bench_synth.py times
rendering alone) and the whole demo project, caches included, stays under 1 GB.
Usage: .venv/bin/python bench/bench_demo.py [--size paper|small] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def folder_bytes(path: Path) -> dict[str, int]:
    """Bytes on disk per top-level entry of the project folder."""
    sizes: dict[str, int] = {}
    for entry in path.iterdir():
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        sizes[entry.name] = sum(p.stat().st_size for p in files)
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="paper", choices=("paper", "small"))
    parser.add_argument("--keep", type=Path, help="build here and keep it")
    args = parser.parse_args()
    data = args.keep or Path(tempfile.mkdtemp(prefix="rascore-demo-")) / "project"
    env = dict(os.environ, RASCORE_DATA=str(data), RASCORE_DB=str(data / "rascore.db"))
    rascore = Path(sys.executable).parent / "rascore"
    start = time.perf_counter()
    done = subprocess.run(
        [str(rascore), "demo", "--size", args.size, "--quiet"], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        return 1
    sizes = folder_bytes(data)
    total = sum(sizes.values())
    print(done.stdout.splitlines()[0])
    print(f"demo build ({args.size}): {seconds:.1f} s wall on {os.cpu_count()} cores")
    for name, n in sorted(sizes.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<14} {n / 1e6:8.1f} MB")
    print(f"  {'total':<14} {total / 1e6:8.1f} MB  (target < 1000 MB: ratio {total / 1e9:.2f})")
    if not args.keep:
        shutil.rmtree(data.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
