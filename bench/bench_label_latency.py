"""Labelling latency in a real browser: keypress to next item shown (docs/PERFORMANCE.md, Targets).

Serves the app with ``streamlit run`` against a copy of a demo project, signs in as demo-reader
in headless Chromium, and grades ``--items`` items from the keyboard. For each item it times, in
the page's own clock (performance.now):

- grade key -> the chosen grade button shown selected;
- Enter -> the next item's heading and image in the page, the image loaded, and a frame painted
  (two animation frames later), the same end point as the Label Studio figure in docs/PERFORMANCE.md.

Usage:
  python bench/bench_label_latency.py                  # builds the small demo in a temp folder
  python bench/bench_label_latency.py --data data      # a copy of an existing demo project
  python bench/bench_label_latency.py --pad-items 100000 --pad-grades 10
                                                       # plus 100,000 items and 1,000,000 grades
Target: median <= 300 ms (and below Label Studio's 355 ms on the same kind of machine).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e import harness  # noqa: E402
from rascore.store import accounts  # noqa: E402

WAIT_NEXT = """prev => new Promise(resolve => {
  const tick = () => {
    const h = document.querySelector('h4');
    const img = document.querySelector('[data-testid=stMain] [data-testid=stImage] img');
    if (h && !h.textContent.includes(prev) && img && img.src !== window.__prevSrc
        && img.complete && img.naturalWidth > 0) {
      window.__prevSrc = img.src;
      requestAnimationFrame(() => requestAnimationFrame(
        () => resolve(performance.now() - window.__keyAt)));
    } else requestAnimationFrame(tick);
  };
  tick();
})"""
WAIT_SELECTED = """key => new Promise(resolve => {
  const tick = () => {
    const b = [...document.querySelectorAll('[data-testid=stMain] button')]
      .find(e => e.innerText.trim().split(/\\s/)[0] === key);
    if (b && b.getAttribute('data-testid') === 'stBaseButton-primary') {
      requestAnimationFrame(() => resolve(performance.now() - window.__keyAt));
    } else requestAnimationFrame(tick);
  };
  tick();
})"""
INSTALL = """() => {
  if (!window.__benchInstalled) {
    document.addEventListener('keydown', () => { window.__keyAt = performance.now(); }, true);
    window.__benchInstalled = true;
  }
  const img = document.querySelector('[data-testid=stMain] [data-testid=stImage] img');
  window.__prevSrc = img ? img.src : null;
}"""


def pad(db: Path, items: int, grades_per_item: int) -> None:
    """Add ``items`` extra items (ids after the real ones) and simulated grades on each."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = WAL")
    readers = [r[0] for r in conn.execute("SELECT id FROM users WHERE password_hash IS NULL ORDER BY id")][
        :grades_per_item
    ]
    now = "2025-01-01T00:00:00.000+00:00"
    mods = ("SGS", "DGS", "SPD", "DPD")
    with conn:
        for start in range(0, items, 10_000):
            batch = range(start, min(items, start + 10_000))
            media = [
                (
                    hashlib.sha256(f"pad-{k}".encode()).hexdigest(),
                    "png",
                    "image",
                    1,
                    1,
                    192,
                    256,
                    None,
                    "{}",
                    now,
                )
                for k in batch
            ]
            conn.executemany("INSERT INTO media VALUES (?,?,?,?,?,?,?,?,?,?)", media)
            cur = conn.execute("SELECT coalesce(max(id), 0) FROM items").fetchone()[0]
            conn.executemany(
                "INSERT INTO items (media_sha256, modality, cohort, dynamic, frames, source,"
                " created_at) VALUES (?,?,?,?,?,?,?)",
                [(m[0], mods[k % 4], "train", 0, 1, "import", now) for k, m in zip(batch, media)],
            )
            ids = range(cur + 1, cur + 1 + len(media))
            rows = [
                (i, r, 1, 1 if mods[(i - cur - 1 + start) % 4] in ("SPD", "DPD") else None, 1, now)
                for i in ids
                for r in readers
            ]
            conn.executemany(
                "INSERT INTO annotations (item_id, user_id, sh, pd, combined,"
                " created_at) VALUES (?,?,?,?,?,?)",
                rows,
            )
    conn.execute("ANALYZE")
    conn.close()


def store_timings(project, rounds: int = 200) -> None:
    """Next-item claim and grade write in the library alone (the store target of docs/PERFORMANCE.md)."""
    from rascore.services import labelling

    store = project.store
    reader = accounts.user(store, "demo-reader")
    claims, writes = [], []
    claim = None
    for _ in range(rounds):
        started = time.perf_counter()
        claim = labelling.next_item(store, reader, after=claim.position if claim else None)
        claims.append(1000 * (time.perf_counter() - started))
        if claim is None:
            break
        doppler = store.item(claim.item_id)["modality"] in ("SPD", "DPD")
        started = time.perf_counter()
        labelling.submit(store, reader, claim.item_id, 1, 1 if doppler else None, seconds=1.0)
        writes.append(1000 * (time.perf_counter() - started))
    print(
        f"store, {len(claims)} rounds: next item p50 {statistics.median(claims):.2f} ms, "
        f"p95 {percentile(claims, 95):.2f} ms; grade write p50 {statistics.median(writes):.2f} ms,"
        f" p95 {percentile(writes, 95):.2f} ms"
    )
    busy = store.conn.execute(
        "SELECT u.id FROM users u JOIN annotations a ON a.user_id = u.id"
        " GROUP BY u.id ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()
    if busy is not None:
        heavy = accounts.user_by_id(store, busy[0])
        started = time.perf_counter()
        labelling.next_item(store, heavy)
        print(
            f"store: first claim (no position yet) of {heavy['name']}, the reader with the "
            f"most grades: {1000 * (time.perf_counter() - started):.1f} ms"
        )


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def run(args: argparse.Namespace) -> int:
    from playwright.sync_api import sync_playwright

    from rascore import auth
    from rascore.config import Settings
    from rascore.project import Project

    work = Path(tempfile.mkdtemp(prefix="rascore-bench-label-"))
    try:
        root = work / "project"
        if args.data:
            harness.copy_project(Path(args.data), root)
        else:
            print("building the small demo project ...", flush=True)
            harness.build_demo_project(root, "small")
        if args.pad_items:
            started = time.perf_counter()
            pad(root / "rascore.db", args.pad_items, args.pad_grades)
            print(
                f"padded with {args.pad_items} items and {args.pad_items * args.pad_grades} "
                f"grades in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
        project = Project(
            Settings(db_path=root / "rascore.db", data_dir=root, models_dir=root / "models", device="cpu")
        )
        password = "bench-password-1"
        auth.set_password(project.store, "demo-reader", password, rounds=4)
        counts = project.store.counts()
        print(f"store: {counts['items_total']} items, {counts['annotations']} grades", flush=True)
        if args.store_rounds:
            scratch = work / "scratch"
            scratch.mkdir()
            with sqlite3.connect(root / "rascore.db") as src, sqlite3.connect(scratch / "rascore.db") as dst:
                src.backup(dst)
            store_timings(
                Project(
                    Settings(
                        db_path=scratch / "rascore.db",
                        data_dir=root,
                        models_dir=root / "models",
                        device="cpu",
                    )
                ),
                args.store_rounds,
            )
        project.store.close()
        enter_ms: list[float] = []
        key_ms: list[float] = []
        with harness.serve(root, work / "streamlit.log") as server, sync_playwright() as pw:
            browser = harness.launch(pw)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            harness.sign_in(page, server.url, "demo-reader", password)
            harness.open_page(page, "Label")
            page.get_by_role("button", name="Submit and next").wait_for()
            for k in range(args.items + args.warmup):
                text = harness.heading(page)
                item_id = harness.item_id_of(text)
                doppler = " SPD " in text or " DPD " in text
                grade = str(1 + k % 3)
                page.evaluate(INSTALL)
                page.evaluate(f"() => {{ window.__sel = ({WAIT_SELECTED})({grade!r}); }}")
                page.keyboard.press(grade)
                selected = page.evaluate("() => window.__sel")
                harness.settle(page)
                if doppler:
                    page.keyboard.press("Shift+1")
                    harness.settle(page)
                page.evaluate(INSTALL)
                page.evaluate(f"() => {{ window.__next = ({WAIT_NEXT})({f'#{item_id} '!r}); }}")
                page.keyboard.press("Enter")
                shown = page.evaluate("() => window.__next")
                harness.settle(page)
                if k >= args.warmup:
                    enter_ms.append(shown)
                    key_ms.append(selected)
            browser.close()
        print(
            f"Enter -> next item shown, {len(enter_ms)} items: median "
            f"{statistics.median(enter_ms):.0f} ms, p95 {percentile(enter_ms, 95):.0f} ms, "
            f"mean {statistics.mean(enter_ms):.0f} ms, max {max(enter_ms):.0f} ms"
        )
        print(
            f"grade key -> selection shown: median {statistics.median(key_ms):.0f} ms, "
            f"p95 {percentile(key_ms, 95):.0f} ms"
        )
        verdict = "meets" if statistics.median(enter_ms) <= 300 else "misses"
        print(f"target median <= 300 ms: {verdict}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="demo project folder to copy (default: build the small demo)")
    parser.add_argument("--items", type=int, default=30, help="items timed (default 30)")
    parser.add_argument("--warmup", type=int, default=2, help="items graded before timing")
    parser.add_argument(
        "--pad-items", type=int, default=0, help="extra items added to the copy (e.g. 100000)"
    )
    parser.add_argument(
        "--pad-grades", type=int, default=10, help="simulated grades per padded item (default 10)"
    )
    parser.add_argument(
        "--store-rounds",
        type=int,
        default=100,
        help="library-only next-item/grade rounds on a scratch copy (0: none)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
