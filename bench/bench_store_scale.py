"""The store at scale (docs/PERFORMANCE.md, Targets): 100,000 items, 1,000,000 annotations.

Builds a store through the real migrations, then bulk-inserts (executemany, one transaction):
items spread over the four modalities and three cohorts, 14 readers (10 readers, 3 experts, an
admin) each item graded by 10 of them (about 2% of grades are later edits), an active model per
modality with a prediction on every item (so the queue's uncertainty phase is exercised),
reference labels on every test item and a fifth of the training items (some re-adjudicated),
and leases (live and expired). Then it times, over ``--rounds`` calls each:

- next item: ``rascore.services.labelling.next_item`` as the Label page calls it (with the position of the
  item just served), for a reader who has graded ~70% of the items;
- annotation write: ``rascore.services.labelling.submit`` (validation, append, lease release, audit);
- the reference lookups the dashboard uses (``results.reference_rows``, ``Store.reference``) and the
  dashboard fingerprints;
- dashboard recomputation: ``rascore.services.dashboard.overview`` cold (cache cleared) vs after one new
  reference label (only the touched section is recomputed).

Every SQL statement these calls run is captured (``set_trace_callback``) and its
``EXPLAIN QUERY PLAN`` printed, so each index used is visible next to the query that uses it.

Usage:
  python bench/bench_store_scale.py                       # 100k items, 1M annotations
  python bench/bench_store_scale.py --items 20000 --grades 10 --rounds 100
Target: next item and annotation write <= 10 ms p95.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODS = ("SGS", "DGS", "SPD", "DPD")
NOW = "2025-01-01T00:00:00.000+00:00"
FUTURE = "2999-01-01T00:00:00.000+00:00"
READERS = (
    [(f"reader{k:02d}", "reader", ("junior", "intermediate", "senior")[k % 3]) for k in range(1, 11)]
    + [(f"expert{k}", "expert", "expert") for k in range(1, 4)]
    + [("admin1", "admin", "expert")]
)


def build(path: Path, items: int = 100_000, grades_per_item: int = 10, seed: int = 0) -> dict:
    """Create a store at ``path`` with ``items`` items and about items x grades_per_item grades."""
    from rascore.store import Store

    rng = random.Random(seed)
    store = Store(path)
    conn = store.conn
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    users = []
    for name, role, level in READERS:
        cur = conn.execute(
            "INSERT INTO users (name, role, level, created_at) VALUES (?,?,?,?)", (name, role, level, NOW)
        )
        users.append(cur.lastrowid)
    shas = [hashlib.sha256(f"scale-{k}".encode()).hexdigest() for k in range(items)]
    conn.executemany(
        "INSERT INTO media VALUES (?,?,?,?,?,?,?,?,?,?)",
        [(s, "png", "image", 1, 1, 192, 256, None, "{}", NOW) for s in shas],
    )
    cohorts = ["train"] * 7 + ["test1"] * 2 + ["test2"]
    rows = []
    for k, sha in enumerate(shas):
        patient = f"P{k // 40:05d}"
        rows.append(
            (
                k + 1,
                sha,
                MODS[k % 4],
                cohorts[(k // 4) % 10],
                patient,
                ("MCP2", "MCP3", "PIP2", "wrist", "MTP2")[(k // 8) % 5],
                "LR"[(k // 4) % 2],
                "import",
                NOW,
            )
        )
    conn.executemany(
        "INSERT INTO items (id, media_sha256, modality, cohort, patient, joint, side,"
        " dynamic, frames, source, created_at) VALUES (?,?,?,?,?,?,?,0,1,?,?)",
        rows,
    )
    modality_of = {r[0]: r[2] for r in rows}
    cohort_of = {r[0]: r[3] for r in rows}
    # Grades: each item by grades_per_item of the 14 readers; ~2% of them edited later.
    ann = []
    for item in range(1, items + 1):
        doppler = modality_of[item] in ("SPD", "DPD")
        for user in rng.sample(users, grades_per_item):
            sh = rng.randrange(4)
            pd = (rng.randrange(sh + 1) if sh else 0) if doppler else None
            ann.append((item, user, sh, pd, max(sh, pd or 0), round(rng.uniform(1, 9), 3), NOW))
    rng.shuffle(ann)  # interleaved in time, as readers work in parallel
    edits = [(a[0], a[1], a[2], a[3], a[4], a[5], NOW) for a in ann[: len(ann) // 50]]
    conn.executemany(
        "INSERT INTO annotations (item_id, user_id, sh, pd, combined, seconds,"
        " created_at) VALUES (?,?,?,?,?,?,?)",
        ann + edits,
    )
    # Models: one active version per modality, predicting every item of its modality.
    versions = {}
    for mod in MODS:
        cur = conn.execute(
            "INSERT INTO model_versions (modality, version, path, preset,"
            " architecture, metrics_json, created_at) VALUES (?,1,?,?,?,?,?)",
            (mod, f"models/{mod}/v1.pt", "fast", "slim_resnet18", "{}", NOW),
        )
        versions[mod] = cur.lastrowid
        conn.execute("INSERT INTO active_models VALUES (?,?,?)", (mod, cur.lastrowid, NOW))
    preds = []
    for item in range(1, items + 1):
        raw = [rng.random() + 0.05 for _ in range(4)]
        probs = [round(p / sum(raw), 4) for p in raw]
        preds.append((item, versions[modality_of[item]], probs.index(max(probs)), json.dumps(probs), NOW))
    conn.executemany(
        "INSERT INTO predictions (item_id, model_version_id, grade, probs_json,"
        " created_at) VALUES (?,?,?,?,?)",
        preds,
    )
    # Reference labels: every test item, a fifth of the training items; 3% re-adjudicated.
    refs = []
    for item in range(1, items + 1):
        if cohort_of[item] != "train" or item % 5 == 0:
            doppler = modality_of[item] in ("SPD", "DPD")
            sh = rng.randrange(4)
            pd = (rng.randrange(sh + 1) if sh else 0) if doppler else None
            refs.append((item, sh, pd, max(sh, pd or 0), "agreement", None, NOW))
    refs += [
        (r[0], r[1], r[2], r[3], "adjudication", users[-1], NOW)
        for r in rng.sample(refs, len(refs) * 3 // 100)
    ]
    conn.executemany(
        "INSERT INTO reference_labels (item_id, sh, pd, combined, method, decided_by,"
        " created_at) VALUES (?,?,?,?,?,?,?)",
        refs,
    )
    # Leases: a live one per reader, and expired ones left behind.
    leases = {(rng.randrange(1, items + 1), rng.choice(users)) for _ in range(items // 20)}
    conn.executemany(
        "INSERT OR IGNORE INTO reservations VALUES (?,?,?,?)", [(i, u, NOW, NOW) for i, u in leases]
    )
    conn.executemany(
        "INSERT OR IGNORE INTO reservations VALUES (?,?,?,?)",
        [(rng.randrange(1, items + 1), u, FUTURE, NOW) for u in users],
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    counts = {
        t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("items", "annotations", "predictions", "reference_labels", "reservations")
    }
    counts["build_s"] = round(time.perf_counter() - started, 1)
    store.close()
    return counts


class Tracer:
    """Collects the SQL statements run on a connection (expanded, as SQLite ran them)."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.statements: list[str] = []

    def __enter__(self) -> "Tracer":
        self.conn.set_trace_callback(self.statements.append)
        return self

    def __exit__(self, *exc) -> None:
        self.conn.set_trace_callback(None)


def plan(conn, sql: str) -> list[str]:
    """EXPLAIN QUERY PLAN lines of one statement (empty for BEGIN/COMMIT/PRAGMA)."""
    head = sql.lstrip().split(None, 1)[0].upper()
    if head not in ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH"):
        return []
    return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall()]


def hot_paths(store, reader: dict, admin: dict) -> dict[str, Callable[[], object]]:
    """The calls whose statements are checked, by name (each runs once when called)."""
    from rascore.services import labelling
    from rascore.store import results

    state: dict = {}

    def next_first():
        state["claim"] = labelling.next_item(store, reader, resume=True)

    def next_after():
        claim = state.get("claim")
        state["claim"] = labelling.next_item(store, reader, after=claim.position if claim else None)

    def write():
        claim = state["claim"]
        doppler = store.item(claim.item_id)["modality"] in ("SPD", "DPD")
        labelling.submit(store, reader, claim.item_id, 1, 1 if doppler else None, seconds=1.0)

    def reference_lookup():
        store.reference(state["claim"].item_id)
        results.reference_rows(store, "SPD", "test1")

    def fingerprints():
        results.full_fingerprint(store)
        ids = [v for v in labelling.sql.active_versions(store, ["SPD"]).values()]
        results.section_fingerprint(store, "SPD", "test1", ids)
        results.predictions(store, ids[0], "test1")

    return {
        "next item (first, resume)": next_first,
        "next item (after position)": next_after,
        "annotation write (submit)": write,
        "reference lookups": reference_lookup,
        "dashboard fingerprints and loads": fingerprints,
    }


def collect_plans(store, reader: dict, admin: dict) -> dict[str, list[tuple[str, list[str]]]]:
    """{path: [(statement, plan lines)]} for each hot path, each statement once."""
    out = {}
    for name, call in hot_paths(store, reader, admin).items():
        with Tracer(store.conn) as tracer:
            call()
        seen, rows = set(), []
        for sql in tracer.statements:
            if sql in seen:
                continue
            seen.add(sql)
            lines = plan(store.conn, sql)
            if lines:
                rows.append((sql, lines))
        out[name] = rows
    return out


def full_scans(
    plans: dict[str, list[tuple[str, list[str]]]],
    tables: tuple[str, ...] = ("annotations", "items", "reference_labels", "predictions", "reservations"),
) -> list[str]:
    """Plan lines that read a whole big table (``SCAN <table>`` without a search bound)."""
    bad = []
    for name, rows in plans.items():
        for sql, lines in rows:
            for line in lines:
                words = line.split()
                if (
                    words[:1] == ["SCAN"]
                    and len(words) > 1
                    and words[1] in tables + tuple(_aliases(sql, tables))
                ):
                    bad.append(f"{name}: {line}  <-  {sql[:160]}")
    return bad


def _aliases(sql: str, tables: tuple[str, ...]) -> list[str]:
    words = sql.replace(",", " ").replace("(", " ").replace(")", " ").split()
    return [
        words[k + 1]
        for k, w in enumerate(words[:-1])
        if w in tables
        and words[k + 1].upper()
        not in {"WHERE", "JOIN", "ON", "ORDER", "GROUP", "LIMIT", "AS", "VALUES", "SET", "LEFT"}
    ]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def timed(values: list[float]) -> str:
    return (
        f"p50 {statistics.median(values):7.2f} ms  p95 {percentile(values, 95):7.2f} ms  "
        f"max {max(values):7.2f} ms  (n={len(values)})"
    )


def run(args: argparse.Namespace) -> int:
    from rascore.services import dashboard, labelling
    from rascore.store import Store, accounts, results

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "rascore.db"
        counts = build(db, args.items, args.grades)
        print("built:", counts)
        store = Store(db)
        reader = accounts.user(store, "reader01")
        admin = accounts.user(store, "admin1")
        graded = store.conn.execute(
            "SELECT count(DISTINCT item_id) FROM annotations WHERE user_id = ?", (reader["id"],)
        ).fetchone()[0]
        print(f"reader01 has graded {graded} of {counts['items']} items")

        print("\n== EXPLAIN QUERY PLAN of every statement on the hot paths ==")
        plans = collect_plans(store, reader, admin)
        for name, rows in plans.items():
            print(f"\n-- {name}")
            for sql, lines in rows:
                print("  " + " ".join(sql.split())[:400])
                for line in lines:
                    print("      " + line)
        scans = full_scans(plans)
        print("\nfull scans of a big table on the hot paths:", scans or "none")

        print(f"\n== timings, {args.rounds} rounds ==")
        claims, writes, firsts, refs, prints = [], [], [], [], []
        claim = None
        for _ in range(args.rounds):
            t = time.perf_counter()
            claim = labelling.next_item(store, reader, after=claim.position if claim else None)
            claims.append(1000 * (time.perf_counter() - t))
            doppler = store.item(claim.item_id)["modality"] in ("SPD", "DPD")
            t = time.perf_counter()
            labelling.submit(store, reader, claim.item_id, 1, 1 if doppler else None, seconds=1.0)
            writes.append(1000 * (time.perf_counter() - t))
            t = time.perf_counter()
            store.reference(claim.item_id)
            refs.append(1000 * (time.perf_counter() - t))
        other = accounts.user(store, "expert2")
        for _ in range(min(args.rounds, 50)):
            t = time.perf_counter()
            labelling.next_item(store, other, resume=True)
            firsts.append(1000 * (time.perf_counter() - t))
            labelling.skip(
                store,
                other,
                store.conn.execute(
                    "SELECT item_id FROM reservations WHERE user_id = ? AND expires_at > ?",
                    (other["id"], NOW),
                ).fetchone()[0],
            )
        for _ in range(min(args.rounds, 50)):
            t = time.perf_counter()
            results.full_fingerprint(store)
            prints.append(1000 * (time.perf_counter() - t))
        polls = []
        results.fingerprint(store)
        for _ in range(min(args.rounds, 200)):
            t = time.perf_counter()
            results.fingerprint(store)
            polls.append(1000 * (time.perf_counter() - t))
        section_refs = []
        for k in range(20):
            t = time.perf_counter()
            results.reference_rows(store, MODS[k % 4], ("test1", "test2")[k % 2])
            section_refs.append(1000 * (time.perf_counter() - t))
        pred_loads = []
        versions = list(labelling.sql.active_versions(store, MODS).values())
        for k in range(16):
            t = time.perf_counter()
            results.predictions(store, versions[k % 4], ("test1", "test2")[k % 2])
            pred_loads.append(1000 * (time.perf_counter() - t))
        print(f"next item (after position, as the Label page): {timed(claims)}")
        print(f"next item (no position: resume/first claim): {timed(firsts)}")
        print(f"annotation write (labelling.submit):          {timed(writes)}")
        print(f"reference lookup (Store.reference, one item): {timed(refs)}")
        print(f"dashboard global fingerprint (full query):    {timed(prints)}")
        print(f"dashboard poll, nothing committed (gated):    {timed(polls)}")
        print(f"dashboard reference rows of one section:      {timed(section_refs)}")
        print(f"dashboard predictions of one section:         {timed(pred_loads)}")

        print("\n== dashboard recomputation (overview: 4 modalities x 2 test cohorts) ==")
        dashboard.clear_cache()
        t = time.perf_counter()
        dashboard.overview(store, admin, n_boot=args.n_boot)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        dashboard.overview(store, admin, n_boot=args.n_boot)
        hit = time.perf_counter() - t
        item = store.conn.execute(
            "SELECT id FROM items WHERE modality = 'SPD' AND cohort = 'test1' LIMIT 1"
        ).fetchone()[0]
        before = dashboard.cache_stats()
        store.set_reference(item, 2, 1, "adjudication", decided_by=admin["id"])
        t = time.perf_counter()
        dashboard.overview(store, admin, n_boot=args.n_boot)
        incremental = time.perf_counter() - t
        after = dashboard.cache_stats()
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        print(f"cold (cache cleared):            {cold * 1000:9.1f} ms")
        print(f"unchanged store (cache hit):     {hit * 1000:9.1f} ms")
        print(f"after one new reference label:   {incremental * 1000:9.1f} ms  cache: {delta}")
        ok = percentile(claims, 95) <= 10 and percentile(writes, 95) <= 10
        print(f"\ntarget next item and write <= 10 ms p95: {'met' if ok else 'NOT met'}")
        store.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--grades", type=int, default=10, help="grades per item (of 14 readers)")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--n-boot", type=int, default=1000)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
