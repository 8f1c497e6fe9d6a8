"""Many readers grading at once through the real server, shared by tests/e2e/test_server_load.py
and bench/bench_server_load.py.

Each reader is one browser context (its own Streamlit session) in one Chromium. Playwright's sync
API is single-threaded, so the readers are driven round-robin without ever blocking on one of
them: a reader's keys are typed (grade, Shift+grade on Doppler items, Enter), a watcher in the
page times Enter -> next item shown in the page's own clock, and the loop polls each page until
its watcher reports, then lets the reader think before its next item. Every ``edit_every``-th
action a reader presses B and grades the item it just graded again (an edit: a new row).

Afterwards ``check_store`` compares the store with what the readers submitted: every grade shown
as saved is there exactly once with its values, in the order given, a grade the page refused is
not, nothing else was written, the edit history chains are complete and every grade is audited.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from rascore.store import accounts as account_sql
from tests.e2e import harness

LOAD_PASSWORD = "load-reader-password-1"
VIEWPORT = {"width": 1200, "height": 900}
# a page quiet this long on the same item after its keys, with no error, lost some of them
LOST_MS = 5000
GONE_S = 30.0  # a page without the app this long has reloaded or crashed (a starved page can
# go 10-20 s without its app element on a loaded 2-core machine and then carry on)

# Installed before a reader's keys: times the submitting key (Enter, or B) to the next item shown
# (a new heading and its image loaded); or notes a refusal (an error on the same item), keys that
# did not all land (the page quiet on the same item for LOST_MS, no error: the reader types the
# grade again), Streamlit's connection-error dialog (the page is broken), or a time-out.
WATCH = """([prev, timeoutMs, lostMs]) => {
  const w = window.__load = {done: null, keyAt: null, keyEpoch: null, sawRunning: false,
                             idleAt: null};
  const app = document.querySelector('[data-testid=stApp]');
  if (!window.__loadInstalled && app) {
    window.__loadInstalled = true;
    document.addEventListener('keydown', e => {
      const cur = window.__load;
      if (cur && cur.keyAt === null && ['Enter', 'b', 'B'].includes(e.key)) {
        cur.keyAt = performance.now(); cur.keyEpoch = Date.now();
      }
    }, true);
    new MutationObserver(() => {
      const cur = window.__load;
      if (!cur || cur.keyAt === null) return;
      if (app.dataset.testScriptState === 'running') { cur.sawRunning = true; cur.idleAt = null; }
      else if (cur.sawRunning && cur.idleAt === null) cur.idleAt = performance.now();
    }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
  }
  // the app element may be re-mounted (or briefly absent) while the page lives: look it up anew
  const state = () => document.querySelector('[data-testid=stApp]')?.dataset.testScriptState;
  const image = () => document.querySelector('[data-testid=stMain] [data-testid=stImage] img');
  const img0 = image() ? image().src : null;
  const started = performance.now();
  const tick = () => {
    const h = document.querySelector('[data-testid=stMain] h4');
    const text = h ? h.textContent : null;
    const img = image();
    const now = performance.now();
    const since = now - (w.keyAt ?? started);
    if (text !== null && text !== prev && img && img.src !== img0 && img.complete
        && img.naturalWidth > 0) {
      w.done = {ms: since, epoch: w.keyEpoch, heading: text}; return;
    }
    if (text === null
        && document.querySelector('[data-testid=stMain]')?.innerText.includes('Your queue is empty')) {
      w.done = {ms: since, epoch: w.keyEpoch, heading: null, empty: true}; return;
    }
    const dialog = document.querySelector('[role=dialog]');
    if (dialog && /Connection error|ForwardMsg/.test(dialog.innerText)) {  // the page is broken
      w.done = {ms: since, epoch: w.keyEpoch, heading: text, broken: dialog.innerText}; return;
    }
    const error = document.querySelector('[data-testid=stMain] [data-testid=stAlertContentError]');
    const idle = state() === 'notRunning';
    const quiet = !idle ? 0 : w.idleAt !== null ? now - w.idleAt
                : w.keyAt !== null ? now - w.keyAt : 0;
    if (error && idle && text === prev && (w.sawRunning || quiet > lostMs)) {
      w.done = {ms: since, epoch: w.keyEpoch, heading: text, error: error.innerText}; return;
    }
    if (!error && text === prev && quiet > lostMs) {
      // the page ran and went quiet on the same item, no error: the keys did not all land
      const chosen = [...document.querySelectorAll(
        '[data-testid=stMain] [data-testid=stBaseButton-primary]')].map(b => b.innerText.trim());
      const warning = document.querySelector('[data-testid=stMain] [data-testid=stAlertContentWarning]');
      w.done = {ms: since, epoch: w.keyEpoch, heading: text, lost: true,
                chosen: chosen, warning: warning ? warning.innerText : null};
      return;
    }
    if (now - started > timeoutMs) {
      const main = document.querySelector('[data-testid=stMain]');
      w.done = {ms: since, epoch: w.keyEpoch, heading: text, timeout: true,
                state: state() ?? null, sawRunning: w.sawRunning,
                image: img ? {same: img.src === img0, complete: img.complete,
                              width: img.naturalWidth} : null,
                page: main ? main.innerText.slice(0, 400) : null};
      return;
    }
    setTimeout(tick, 8);
  };
  setTimeout(tick, 0);
}"""
POLL = """() => {
  const app = document.querySelector('[data-testid=stApp]');
  if (!app) {  // no app in the document (a reload, a browser error page): say what is there
    return {done: window.__load ? window.__load.done : null, idle: false, gone: true,
            url: location.href, text: (document.body?.innerText ?? '').slice(0, 300)};
  }
  return {done: window.__load ? window.__load.done : null,
          idle: app.dataset.testScriptState === 'notRunning'
                && app.dataset.testConnectionState === 'CONNECTED'};
}"""


@dataclass
class Grade:
    """One grade a reader submitted through the page, and what the page showed afterwards."""

    reader: str
    item_id: int
    sh: int
    pd: int | None
    edit: bool
    ms: float | None = None  # Enter -> next item shown (page clock)
    key_epoch_ms: float | None = None  # Date.now() at Enter
    outcome: str = "pending"  # saved | refused | lost | broken | timeout
    error: str | None = None


@dataclass
class Reader:
    """One reader's browser page and where it is in its work."""

    name: str
    index: int
    page: object
    heading: str = ""
    state: str = "idle"  # idle | busy | settling | done
    ready_at: float = 0.0
    actions: int = 0
    grades: int = 0
    last_graded: int | None = None
    pending: Grade | None = None
    back_ms: list[float] = field(default_factory=list)
    gone_since: float | None = None  # when the page was first seen without the app
    busy_since: float = 0.0  # when its last keys were typed


@dataclass
class LoadRun:
    """Everything submitted in a run, with its timings."""

    grades: list[Grade] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    seconds: float = 0.0
    sign_in_s: float = 0.0

    def saved(self) -> list[Grade]:
        return [g for g in self.grades if g.outcome == "saved"]


# ------------------------------------------------------------------ accounts
def load_readers(
    root: Path, passwords: dict[str, str], n: int, prefix: str = "load-reader"
) -> dict[str, str]:
    """``n`` reader accounts that can sign in: the demo's readers with a password first, then
    new ones made with the library's ``auth.add_user`` (an existing one gets a new password)."""
    from rascore import auth
    from rascore.store import Store

    store = Store(Path(root) / "rascore.db")
    try:
        accounts: dict[str, str] = {}
        for name, password in passwords.items():
            user = account_sql.user(store, name)
            if len(accounts) < n and user is not None and user["role"] == "reader" and user["active"]:
                accounts[name] = password
        k = 0
        while len(accounts) < n:
            k += 1
            name = f"{prefix}-{k:02d}"
            if name in accounts:
                continue
            if account_sql.user(store, name) is None:
                auth.add_user(store, name, "reader", "intermediate", LOAD_PASSWORD, rounds=4)
            else:
                auth.set_password(store, name, LOAD_PASSWORD, rounds=4)
            accounts[name] = LOAD_PASSWORD
        return accounts
    finally:
        store.close()


# ------------------------------------------------------------------ signing in, all at once
def _heading(page) -> str:
    return page.evaluate("() => document.querySelector('[data-testid=stMain] h4')?.textContent ?? ''")


def open_readers(browser, url: str, accounts: dict[str, str], timeout_ms: float = 120_000) -> list[Reader]:
    """A context per reader, all signed in and on the Label page; the steps are interleaved
    (every page starts a step before any is waited on), so the server serves them at once."""
    readers: list[Reader] = []
    for index, name in enumerate(accounts):
        context = browser.new_context(viewport=VIEWPORT)
        context.set_default_timeout(timeout_ms)
        readers.append(Reader(name, index, context.new_page()))
    for r in readers:
        r.page.goto(url, wait_until="commit")
    for r in readers:
        harness.settle(r.page, timeout_ms)
        r.page.get_by_label("User name").fill(r.name)
        r.page.get_by_label("Password", exact=True).fill(accounts[r.name])
        r.page.get_by_role("button", name="Sign in").click()
    for r in readers:  # straight on to Label: no need to wait for the home page to finish
        r.page.get_by_text(f"Signed in as {r.name}").wait_for(timeout=timeout_ms)
        r.page.locator("[data-testid=stSidebarNav]").get_by_role("link", name="Label").click()
    for r in readers:
        r.page.get_by_role("button", name="Submit and next").wait_for(timeout=timeout_ms)
        r.page.locator("[data-testid=stMain] [data-testid=stImage] img").first.wait_for(timeout=timeout_ms)
        harness.settle(r.page, timeout_ms)
        r.heading = _heading(r.page)
    return readers


def close_readers(readers: list[Reader]) -> None:
    for r in readers:
        try:
            r.page.context.close()
        except Exception:  # already gone with the browser
            pass


# ------------------------------------------------------------------ grading round-robin
def _choice(r: Reader, item_id: int, doppler: bool, edit: bool, previous: int | None):
    """Deterministic grades (SH 1-3, so any PD is valid); an edit always changes SH."""
    sh = 1 + (r.index + r.grades) % 3
    if edit and previous is not None and previous == sh:
        sh = 1 + sh % 3
    pd = (r.index * 7 + r.grades) % 4 if doppler else None
    return sh, pd


def _start(r: Reader, run: LoadRun, edit_every: int, timeout_ms: float) -> None:
    """Type the reader's next keys: B (go back to edit), or a grade and Enter."""
    editing = r.heading.startswith("Editing your grade")
    if not editing and edit_every and r.last_graded is not None and r.actions and r.actions % edit_every == 0:
        r.pending = None
        r.page.evaluate(WATCH, [r.heading, timeout_ms, LOST_MS])
        r.page.keyboard.press("b")
    else:
        item_id = harness.item_id_of(r.heading)
        doppler = " SPD " in r.heading or " DPD " in r.heading
        previous = None
        if editing:
            previous = next(
                (
                    g.sh
                    for g in reversed(run.grades)
                    if g.reader == r.name and g.item_id == item_id and g.outcome == "saved"
                ),
                None,
            )
        sh, pd = _choice(r, item_id, doppler, editing, previous)
        r.pending = Grade(r.name, item_id, sh, pd, editing)
        run.grades.append(r.pending)
        r.page.evaluate(WATCH, [r.heading, timeout_ms, LOST_MS])
        # typed at full speed, as a practised reader does: the page must keep the order
        r.page.keyboard.press(str(sh))
        if pd is not None:
            r.page.keyboard.press(f"Shift+{pd}")
        r.page.keyboard.press("Enter")
    r.actions += 1
    r.state = "busy"
    r.busy_since = time.monotonic()


def _give_up(r: Reader, run: LoadRun, problem: str, outcome: str) -> None:
    """Stop driving this reader: the problem is reported, its pending grade marked ``outcome``."""
    run.problems.append(f"{r.name}: {problem}")
    if r.pending:
        r.pending.outcome = outcome
    r.state = "done"


def _finish(r: Reader, done: dict, run: LoadRun) -> None:
    """The page reported: the next item shown, a refusal, the queue empty or a time-out."""
    grade = r.pending
    if done.get("broken"):  # Streamlit's connection-error dialog: the reader must reload
        what = f"grade {grade}" if grade else "Back"
        hint = (
            " [Streamlit's forward-message cache race: the browser dropped a cached element"
            " the server then referred to; a larger global.maxCachedMessageAge avoids it]"
            if "ForwardMsg MISS" in done["broken"]
            else ""
        )
        _give_up(
            r,
            run,
            f"the page broke after {what}: {done['broken']!r} (heading {done.get('heading')!r}){hint}",
            "broken",
        )
        return
    if done.get("timeout"):
        what = f"grade {grade}" if grade else "Back"
        seen = {k: done.get(k) for k in ("heading", "state", "sawRunning", "image", "page")}
        _give_up(r, run, f"the page did not move on after {what}: {seen}", "timeout")
        return
    if grade is None and done.get("lost"):  # B did not land: the reader grades on instead
        run.lost.append(f"{r.name}: B did not land (heading {done.get('heading')!r})")
        r.state = "settling"
        return
    if grade is None:  # Back: now on the item to edit
        r.back_ms.append(done["ms"])
        if done.get("heading") is None or not done["heading"].startswith("Editing your grade"):
            run.problems.append(f"{r.name}: Back showed {done.get('heading')!r}")
            r.state = "done"
            return
    elif done.get("error"):
        grade.outcome, grade.error = "refused", done["error"]
    elif done.get("lost"):  # the reader sees the item still there and types the grade again
        grade.outcome = "lost"
        grade.error = f"selected {done.get('chosen')}, warning {done.get('warning')!r}"
        run.lost.append(f"{r.name}: keys for {grade} did not all land: {grade.error}")
    else:
        grade.outcome, grade.ms, grade.key_epoch_ms = "saved", done["ms"], done["epoch"]
        r.grades += 1
        r.last_graded = grade.item_id
    r.pending = None
    if done.get("empty"):
        r.state = "done"
        return
    r.heading = done["heading"]
    r.state = "settling"


def grade_round_robin(
    readers: list[Reader],
    *,
    seconds: float | None = None,
    grades_each: int | None = None,
    think_s: float = 0.3,
    edit_every: int = 4,
    timeout_s: float = 60.0,
    poll_s: float = 0.02,
) -> LoadRun:
    """Drive every reader until ``seconds`` have passed or each has ``grades_each`` grades saved;
    a reader looks at each item ``think_s`` before its keys (and waits for its page to finish
    the run before the next item). The pages are polled every ``poll_s`` (the timings are
    taken in the pages, so polling adds to the readers' pace, not to their latencies).
    Returns what was submitted."""
    run = LoadRun()
    stuck_s = timeout_s + 30.0
    began = time.monotonic()
    deadline = began + seconds if seconds is not None else float("inf")
    stagger = think_s / max(len(readers), 1)
    for k, r in enumerate(readers):  # not all in the same millisecond
        r.ready_at = began + k * stagger
    while any(r.state != "done" for r in readers):
        now = time.monotonic()
        for r in readers:
            if r.state == "idle" and now >= r.ready_at:
                if now >= deadline or (
                    grades_each is not None
                    and r.grades >= grades_each
                    and not r.heading.startswith("Editing your grade")
                ):
                    r.state = "done"
                else:
                    _start(r, run, edit_every, timeout_s * 1000)
            elif r.state in ("busy", "settling"):
                polled = r.page.evaluate(POLL)
                if polled.get("gone"):
                    r.gone_since = r.gone_since or now
                    if now - r.gone_since > GONE_S:  # not a moment between two documents
                        _give_up(
                            r,
                            run,
                            f"the app left the page for {GONE_S:.0f} s ({polled['url']}: {polled['text']!r})",
                            "broken",
                        )
                    continue
                r.gone_since = None
                if r.state == "busy" and polled["done"] is None and now - r.busy_since > stuck_s:
                    # the page's own watcher is gone (its document was replaced) and never reported
                    _give_up(
                        r,
                        run,
                        f"no report from the page for {stuck_s:.0f} s (heading {_heading(r.page)!r})",
                        "timeout",
                    )
                    continue
                if r.state == "busy" and polled["done"] is not None:
                    _finish(r, polled["done"], run)
                if r.state == "settling" and polled["idle"]:
                    r.state = "idle"
                    r.ready_at = time.monotonic() + think_s
        time.sleep(poll_s)
    run.seconds = time.monotonic() - began
    return run


# ------------------------------------------------------------------ the store afterwards
def store_mark(db: Path) -> dict:
    """Where the store stands before the load: newest annotation and audit row ids."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        return {
            "annotation": conn.execute("SELECT coalesce(max(id), 0) FROM annotations").fetchone()[0],
            "audit": conn.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()[0],
        }


def check_store(db: Path, run: LoadRun, mark: dict, others: dict[str, list[int]] | None = None) -> list[str]:
    """Problems found comparing the store with what was submitted (empty: none).

    ``others``: annotation ids written during the run by other writers (e.g. the bench's probe),
    by reader name; they must be there too, and nothing else."""
    import json

    from rascore.store import Store

    store = Store(db, migrate=False)
    try:
        problems: list[str] = []
        users = {u["name"]: u["id"] for u in account_sql.users(store)}
        names = {v: k for k, v in users.items()}
        new = store.rows("SELECT * FROM annotations WHERE id > ? ORDER BY id", (mark["annotation"],))
        by_reader: dict[str, list[dict]] = {}
        for row in new:
            by_reader.setdefault(names[row["user_id"]], []).append(row)
        readers = sorted({g.reader for g in run.grades})
        for name in readers:
            submitted = [g for g in run.grades if g.reader == name and g.outcome not in ("refused", "lost")]
            rows = by_reader.pop(name, [])
            want = [(g.item_id, g.sh, g.pd) for g in submitted if g.outcome == "saved"]
            got = [(r["item_id"], r["sh"], r["pd"]) for r in rows]
            unknown = [g for g in submitted if g.outcome not in ("saved",)]
            # a refused or lost grade must not be there; one whose page broke or timed out
            # (the reader's last: it stops there) may be
            ok = (
                got == want
                or bool(unknown)
                and got == want + [(unknown[-1].item_id, unknown[-1].sh, unknown[-1].pd)]
            )
            if not ok:
                problems.append(
                    f"{name}: stored {got} for submitted {want}"
                    + (f" (+ unknown {unknown})" if unknown else "")
                )
        for name, ids in (others or {}).items():
            rows = by_reader.pop(name, [])
            if sorted(r["id"] for r in rows) != sorted(ids):
                problems.append(f"{name}: {len(rows)} rows stored for {len(ids)} writes")
        for name, rows in by_reader.items():
            problems.append(
                f"{len(rows)} rows nobody submitted, by {name}: {[(r['id'], r['item_id']) for r in rows[:5]]}"
            )
        # history: every (reader, item) touched is one unbroken chain, each row superseding
        # the previous one; an edit is a new row on top, the first grade supersedes nothing
        pairs = {(users[g.reader], g.item_id) for g in run.grades}
        for user_id, item_id in sorted(pairs):
            chain = store.annotation_history(item_id, user_id)
            if not chain:  # only an unsaved grade on it: the sequence check covers that
                continue
            expected = [None] + [r["id"] for r in chain[:-1]]
            if [r["supersedes"] for r in chain] != expected:
                problems.append(
                    f"broken history of {names[user_id]} on item {item_id}: "
                    f"{[(r['id'], r['supersedes']) for r in chain]}"
                )
        for g in run.saved():
            if g.edit and len(store.annotation_history(g.item_id, users[g.reader])) < 2:
                problems.append(f"{g.reader}: the edit of item {g.item_id} left no history")
        # audit: one row per grade written, naming its annotation
        audits = store.rows(
            "SELECT action, user_id, detail_json FROM audit_log WHERE id > ?"
            " AND action IN ('annotation.add', 'annotation.edit')",
            (mark["audit"],),
        )
        audited = {json.loads(a["detail_json"])["annotation_id"]: a["action"] for a in audits}
        if len(audited) != len(audits) or set(audited) != {r["id"] for r in new}:
            problems.append(f"{len(audits)} audit rows for {len(new)} grades written")
        for row in new:
            action = "annotation.add" if row["supersedes"] is None else "annotation.edit"
            if audited.get(row["id"], action) != action:
                problems.append(f"grade {row['id']} audited as {audited[row['id']]}")
        return problems
    finally:
        store.close()


def unknown_written(db: Path, run: LoadRun, mark: dict) -> tuple[int, int]:
    """(grades whose page broke or timed out, of those found written in the store)."""
    from rascore.store import Store

    unknown = [g for g in run.grades if g.outcome in ("broken", "timeout")]
    store = Store(db, migrate=False)
    try:
        found = 0
        for g in unknown:
            user = account_sql.user(store, g.reader)
            found += bool(
                store.one(
                    "SELECT 1 FROM annotations WHERE id > ? AND user_id = ? AND item_id = ?"
                    " AND sh = ? AND pd IS ? AND id = (SELECT max(id) FROM annotations"
                    " WHERE user_id = ?)",
                    (mark["annotation"], user["id"], g.item_id, g.sh, g.pd, user["id"]),
                )
            )
        return len(unknown), found
    finally:
        store.close()


def stored_at_ms(db: Path, run: LoadRun, mark: dict) -> list[float]:
    """Enter (browser clock) -> the grade's row written (its created_at), in ms, per saved grade
    matched to its row in order; the same machine's clock on both sides."""
    from rascore.store import Store

    store = Store(db, migrate=False)
    try:
        users = {u["name"]: u["id"] for u in account_sql.users(store)}
        out = []
        for name in sorted({g.reader for g in run.grades}):
            rows = store.rows(
                "SELECT created_at FROM annotations WHERE id > ? AND user_id = ? ORDER BY id",
                (mark["annotation"], users[name]),
            )
            saved = [g for g in run.saved() if g.reader == name]
            for g, row in zip(saved, rows):
                at = datetime.fromisoformat(row["created_at"]).timestamp() * 1000
                if g.key_epoch_ms is not None:
                    out.append(at - g.key_epoch_ms)
        return out
    finally:
        store.close()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (nan when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def summary(values: list[float]) -> dict:
    """p50, p95, max and mean of a list of milliseconds."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 1),
        "p95": round(percentile(values, 95), 1),
        "max": round(max(values), 1),
        "mean": round(statistics.mean(values), 1),
    }
