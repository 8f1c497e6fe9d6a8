"""Many readers grading at once through the real server: integrity and latency under load.

Serves the app with ``streamlit run`` (tests/e2e/harness.py) against a demo project, opens one
browser context per reader in one headless Chromium (12 by default; reader accounts are made
with ``auth.add_user`` when the project has fewer that can sign in), signs them all in and lets
them grade from the keyboard for ``--minutes``: grade key, Shift+grade on Doppler items, Enter,
a pause of ``--think-ms`` on each item, and every ``--edit-every``-th action B and a new grade
for the item just graded (an edit). The pages are driven round-robin without blocking on any one
(tests/e2e/load.py); each page times Enter -> next item shown in its own clock.

Afterwards it checks the store: every grade a page showed as saved is there exactly once with
its values and in order, a grade the page refused is not, nothing else was written, every
(reader, item) history is one unbroken chain, every grade audited once. Exit status 1 when
anything is missing, duplicated or extra in the store; 2 when the store is right but a page got
stuck or broke (that reader stops; its last grade may or may not have been written).

Latencies reported:
- Enter -> next item shown: the browser's clock (performance.now), per grade;
- Enter -> grade row written: the row's created_at minus Date.now() at the keydown (one
  machine, one clock; the store keeps milliseconds), i.e. the server's path up to the commit;
- library write under load: a probe thread in this process, its own reader account, times
  ``labelling.next_item`` and ``labelling.submit`` on the same database every ``--probe-s``
  while the readers grade (the server itself is not instrumented).

Usage:
  python bench/bench_server_load.py                        # small demo, 12 readers, 3 min
  python bench/bench_server_load.py --minutes 2 --think-ms 300
  python bench/bench_server_load.py --project data         # a copy of an existing project
Everything stays on this machine (a temporary folder unless --keep; no network).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e import harness, load  # noqa: E402
from rascore.store import accounts  # noqa: E402

PROBE = "load-probe"


def probe(db: Path, stop: threading.Event, every_s: float, out: dict) -> None:
    """Claim and grade through the library every ``every_s`` until ``stop``; times both."""
    from rascore.services import labelling
    from rascore.store import Store

    store = Store(db, migrate=False)
    try:
        user = accounts.user(store, PROBE)
        claim = None
        while not stop.wait(every_s):
            t0 = time.perf_counter()
            claim = labelling.next_item(store, user, after=claim.position if claim else None)
            t1 = time.perf_counter()
            if claim is None:
                break
            doppler = store.item(claim.item_id)["modality"] in ("SPD", "DPD")
            t2 = time.perf_counter()
            annotation = labelling.submit(store, user, claim.item_id, 1, 1 if doppler else None, seconds=1.0)
            t3 = time.perf_counter()
            out["claim_ms"].append(1000 * (t1 - t0))
            out["write_ms"].append(1000 * (t3 - t2))
            out["ids"].append(annotation)
    except Exception as exc:  # reported, and fails the run
        out["errors"].append(f"{type(exc).__name__}: {exc}")
    finally:
        store.close()


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def fmt(s: dict) -> str:
    if not s.get("n"):
        return "n/a"
    return f"p50 {s['p50']:8.1f} ms  p95 {s['p95']:8.1f} ms  max {s['max']:8.1f} ms  (n={s['n']})"


def run(args: argparse.Namespace) -> int:
    from playwright.sync_api import sync_playwright

    from rascore import auth

    work = Path(tempfile.mkdtemp(prefix="rascore-bench-server-load-"))
    try:
        root = work / "project"
        passwords: dict[str, str] = {}
        t0 = time.perf_counter()
        if args.project:
            harness.copy_project(Path(args.project), root)
            what = f"a copy of {args.project}"
        else:
            print(f"building the {args.size} demo project ...", flush=True)
            passwords = harness.build_demo_project(root, args.size)
            what = f"the {args.size} demo"
        print(f"project: {what} ({time.perf_counter() - t0:.0f} s)", flush=True)
        db = root / "rascore.db"
        accounts = load.load_readers(root, passwords, args.readers)
        from rascore.store import Store

        store = Store(db)
        if args.probe_s > 0 and accounts.user(store, PROBE) is None:
            auth.add_user(store, PROBE, "reader", "intermediate")
        items = store.counts()["items_total"]
        store.close()
        print(f"{items} items; readers: {', '.join(accounts)}", flush=True)
        load_start = loadavg()
        with harness.serve(root, work / "streamlit.log") as server, sync_playwright() as pw:
            browser = harness.launch(pw)
            t0 = time.perf_counter()
            readers = load.open_readers(browser, server.url, accounts)
            sign_in_s = time.perf_counter() - t0
            print(
                f"{len(readers)} readers signed in and on the Label page in {sign_in_s:.0f} s;"
                f" grading for {args.minutes:g} min ...",
                flush=True,
            )
            mark = load.store_mark(db)
            stop = threading.Event()
            probed: dict = {"claim_ms": [], "write_ms": [], "ids": [], "errors": []}
            prober = None
            if args.probe_s > 0:
                prober = threading.Thread(target=probe, args=(db, stop, args.probe_s, probed))
                prober.start()
            try:
                result = load.grade_round_robin(
                    readers,
                    seconds=60 * args.minutes,
                    think_s=args.think_ms / 1000,
                    edit_every=args.edit_every,
                    timeout_s=args.timeout_s,
                )
            finally:
                stop.set()
                if prober:
                    prober.join(60)
                load_end = loadavg()
                load.close_readers(readers)
                browser.close()
        result.sign_in_s = sign_in_s
        pages = list(result.problems) + [f"probe: {e}" for e in probed["errors"]]
        problems = load.check_store(db, result, mark, {PROBE: probed["ids"]} if prober else None)
        saved = result.saved()
        figures = {
            "bench": "server_load",
            "readers": len(readers),
            "minutes": args.minutes,
            "think_ms": args.think_ms,
            "edit_every": args.edit_every,
            "seconds": round(result.seconds, 1),
            "items": items,
            "grades_saved": len(saved),
            "grades_new": sum(not g.edit for g in saved),
            "grades_edits": sum(g.edit for g in saved),
            "grades_refused": sum(g.outcome == "refused" for g in result.grades),
            "keys_lost": len(result.lost),
            "grades_page_broke": sum(g.outcome == "broken" for g in result.grades),
            "grades_timed_out": sum(g.outcome == "timeout" for g in result.grades),
            "grades_unknown_written": load.unknown_written(db, result, mark)[1],
            "grades_per_min": round(60 * len(saved) / result.seconds, 1) if result.seconds else 0,
            "per_reader": {name: sum(g.reader == name for g in saved) for name in accounts},
            "enter_to_next_ms": load.summary([g.ms for g in saved if g.ms is not None]),
            "back_to_edit_ms": load.summary([ms for r in readers for ms in r.back_ms]),
            "enter_to_row_ms": load.summary(load.stored_at_ms(db, result, mark)),
            "probe_write_ms": load.summary(probed["write_ms"]),
            "probe_claim_ms": load.summary(probed["claim_ms"]),
            "probe_grades": len(probed["ids"]),
            "sign_in_s": round(sign_in_s, 1),
            "loadavg_start": load_start,
            "loadavg_end": load_end,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "integrity": "ok" if not problems else "FAILED",
            "problems": problems[:20],
            "pages": "ok" if not pages else "FAILED",
            "page_problems": pages[:20],
            "lost": result.lost[:20],
        }
        counts = figures["per_reader"].values()
        print()
        print(f"readers (browser contexts)     {figures['readers']}, one Chromium, one server")
        print(
            f"grading time                   {figures['seconds']} s "
            f"(think {args.think_ms} ms per item, edit every {args.edit_every})"
        )
        print(
            f"grades saved                   {figures['grades_saved']} "
            f"({figures['grades_new']} new, {figures['grades_edits']} edits), "
            f"{figures['grades_per_min']}/min; refused {figures['grades_refused']}; "
            f"page broke {figures['grades_page_broke']}, timed out "
            f"{figures['grades_timed_out']} (of these, written: "
            f"{figures['grades_unknown_written']})"
        )
        print(
            f"keys that did not all land     {figures['keys_lost']} (page quiet "
            f"{load.LOST_MS / 1000:g} s on the same item, no message; typed again)"
        )
        for line in result.lost[:10]:
            print(f"  {line}")
        print(
            f"per reader                     min {min(counts)}, max {max(counts)}: "
            + ", ".join(f"{n.split('-')[-1]}={c}" for n, c in figures["per_reader"].items())
        )
        print(f"Enter -> next item shown       {fmt(figures['enter_to_next_ms'])}  [browser]")
        print(f"B -> item to edit shown        {fmt(figures['back_to_edit_ms'])}  [browser]")
        print(f"Enter -> grade row written     {fmt(figures['enter_to_row_ms'])}  [created_at - keydown]")
        print(f"library write under load       {fmt(figures['probe_write_ms'])}  [probe: labelling.submit]")
        print(
            f"library claim under load       {fmt(figures['probe_claim_ms'])}  [probe: labelling.next_item]"
        )
        print(f"sign-in of all readers         {figures['sign_in_s']} s")
        print(f"load average (1/5/15 min)      start {load_start}; end {load_end}; {figures['cpus']} CPUs")
        print(
            "store integrity                "
            + (
                "ok: each grade stored once, in order, with its values; no extra rows; "
                "history chains and audit complete"
                if not problems
                else "FAILED"
            )
        )
        for line in problems[:20]:
            print(f"  {line}")
        print(
            "pages                          "
            + (
                "ok: every page moved on after every key"
                if not pages
                else f"FAILED ({len(pages)} readers stopped)"
            )
        )
        for line in pages[:20]:
            print(f"  {line}")
        print(json.dumps(figures, sort_keys=True))
        return 1 if problems else 2 if pages else 0
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", help="project folder to copy (default: build a demo)")
    parser.add_argument(
        "--size", default="small", help="demo cohort size to build when no --project (default small)"
    )
    parser.add_argument("--readers", type=int, default=12)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument(
        "--think-ms",
        type=float,
        default=500.0,
        help="time a reader looks at an item before its keys (default 500)",
    )
    parser.add_argument(
        "--edit-every",
        type=int,
        default=5,
        help="every n-th action is Back and an edit (0: never; default 5)",
    )
    parser.add_argument(
        "--timeout-s", type=float, default=60.0, help="a page that does not move on in this time is a failure"
    )
    parser.add_argument(
        "--probe-s", type=float, default=1.0, help="library write probe interval (0: no probe; default 1 s)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
