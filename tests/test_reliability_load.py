"""Many readers grading at once through the library, as the labelling page does: every grade
stored exactly once, edit history complete, and no item served to two readers while leased.

``run_load`` is shared with bench/bench_load.py, which runs it longer and prints latencies.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rascore import auth
from rascore.services import labelling
from rascore.config import Settings
from rascore.project import Project
from rascore.store import Store
from rascore.store import accounts


def build_load_project(root: Path, items: int = 3000, readers: int = 12) -> Project:
    """A project of ``items`` greyscale stills (stand-in media rows) and ``readers`` readers."""
    root = Path(root)
    project = Project(
        Settings(db_path=root / "rascore.db", data_dir=root, models_dir=root / "models", device="cpu")
    )
    store = project.store
    for k in range(readers):
        auth.add_user(store, f"reader-{k:02d}", "reader", "junior")
    admin = accounts.user(store, auth.add_user(store, "load-admin", "admin") and "load-admin")
    with store.transaction():
        for k in range(items):
            sha = f"{k + 1:064x}"
            store.add_media(sha, format="png", kind="image", nbytes=1, frames=1, height=8, width=8, fps=None)
            store.add_item(media_sha256=sha, modality="SGS", cohort="train", frames=1, fps=None)
    labelling.set_max_readers(store, admin, 1)  # exclusive: two readers never race one item
    return project


@dataclass
class LoadResult:
    """What the readers did and how long each write took."""

    submits: list[tuple[str, int, int, int]] = field(default_factory=list)  # reader, item, id, sh
    claim_s: list[float] = field(default_factory=list)
    submit_s: list[float] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def percentiles(self, values: list[float]) -> tuple[float, float, float]:
        """(p50, p95, max) in milliseconds."""
        if not values:
            return (float("nan"),) * 3
        arr = np.asarray(values) * 1000
        return float(np.percentile(arr, 50)), float(np.percentile(arr, 95)), float(arr.max())


def run_load(
    db: Path, readers: list[str], seconds: float, edit_every: int = 4, think_s: float = 0.02
) -> LoadResult:
    """Each reader in its own thread and Store connection: claim, grade, sometimes go back and
    edit the previous grade, for ``seconds``, looking at each item ``think_s`` before grading;
    records every submit and checks leases live."""
    result = LoadResult()
    lock = threading.Lock()
    holders: dict[int, str] = {}  # item -> the reader holding its lease now
    start_gate = threading.Barrier(len(readers))
    deadline = [0.0]

    def reader_loop(name: str) -> None:
        store = Store(db, migrate=False)
        try:
            user = accounts.user(store, name)
            after, previous, n = None, None, 0
            start_gate.wait()
            while time.monotonic() < deadline[0]:
                t0 = time.perf_counter()
                claim = labelling.next_item(store, user, after=after)
                t1 = time.perf_counter()
                if claim is None:
                    break
                with lock:
                    result.claim_s.append(t1 - t0)
                    other = holders.get(claim.item_id)
                    if other is not None and other != name:
                        result.violations.append(f"item {claim.item_id}: {name} while {other}")
                    holders[claim.item_id] = name
                time.sleep(think_s)
                with lock:
                    if holders.get(claim.item_id) != name:
                        result.violations.append(f"item {claim.item_id}: lease of {name} taken")
                sh = 1 + (claim.item_id + n) % 3
                with lock:  # the lease ends inside submit: forget it just before
                    holders.pop(claim.item_id, None)
                t2 = time.perf_counter()
                annotation = labelling.submit(store, user, claim.item_id, sh, seconds=0.5)
                t3 = time.perf_counter()
                with lock:
                    result.submit_s.append(t3 - t2)
                    result.submits.append((name, claim.item_id, annotation, sh))
                n += 1
                if previous is not None and n % edit_every == 0:  # Back, then edit
                    sh2 = (sh + 1) % 4
                    t4 = time.perf_counter()
                    edited = labelling.submit(store, user, previous, sh2, seconds=0.3)
                    t5 = time.perf_counter()
                    with lock:
                        result.submit_s.append(t5 - t4)
                        result.submits.append((name, previous, edited, sh2))
                previous, after = claim.item_id, claim.position
        except Exception as exc:  # collected and asserted on by the caller
            with lock:
                result.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        finally:
            store.close()

    threads = [threading.Thread(target=reader_loop, args=(name,)) for name in readers]
    deadline[0] = time.monotonic() + seconds + 1.0
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    result.seconds = time.monotonic() - began
    return result


def check_store(store: Store, result: LoadResult) -> list[str]:
    """Problems found comparing the store with what the readers submitted (empty: none)."""
    problems: list[str] = []
    rows = {r["id"]: r for r in store.rows("SELECT * FROM annotations")}
    users = {u["id"]: u["name"] for u in accounts.users(store)}
    ids = [a for _, _, a, _ in result.submits]
    if len(ids) != len(set(ids)):
        problems.append("an annotation id was returned twice")
    if set(rows) != set(ids):
        problems.append(f"{len(rows)} rows stored for {len(ids)} submits")
    for name, item, annotation, sh in result.submits:
        row = rows.get(annotation)
        if row is None or users[row["user_id"]] != name or row["item_id"] != item or row["sh"] != sh:
            problems.append(f"submit {annotation} by {name} on {item} stored as {row}")
    chains: dict[tuple[int, int], list[dict]] = {}
    for row in sorted(rows.values(), key=lambda r: r["id"]):
        chains.setdefault((row["item_id"], row["user_id"]), []).append(row)
    for key, chain in chains.items():
        expected = [None] + [r["id"] for r in chain[:-1]]
        if [r["supersedes"] for r in chain] != expected:
            problems.append(f"broken history on {key}: {[(r['id'], r['supersedes']) for r in chain]}")
    per_item = store.rows(
        "SELECT item_id, count(DISTINCT user_id) AS n FROM annotations GROUP BY item_id HAVING n > 1"
    )
    if per_item:
        problems.append(f"items graded by two readers under exclusive assignment: {per_item[:5]}")
    audits = store.one(
        "SELECT count(*) AS n FROM audit_log WHERE action IN ('annotation.add','annotation.edit')"
    )["n"]
    if audits != len(ids):
        problems.append(f"{audits} audit rows for {len(ids)} grades")
    return problems


def test_twelve_readers_at_once(tmp_path):
    project = build_load_project(tmp_path / "load", items=3000, readers=12)
    readers = [f"reader-{k:02d}" for k in range(12)]
    result = run_load(project.settings.db_path, readers, seconds=4.0)
    assert not result.errors, result.errors[:5]
    assert not result.violations, result.violations[:5]
    assert len(result.submits) >= 12 * 5  # every reader got work done
    assert len({name for name, *_ in result.submits}) == 12
    assert any(a != b for (_, _, a, _), (_, _, b, _) in zip(result.submits, result.submits[1:]))
    problems = check_store(project.store, result)
    assert not problems, problems[:5]
    edits = project.store.one("SELECT count(*) AS n FROM annotations WHERE supersedes IS NOT NULL")
    assert edits["n"] > 0  # the history chains were exercised
    p50, p95, worst = result.percentiles(result.submit_s)
    assert worst < 15_000  # never ran into the busy timeout
