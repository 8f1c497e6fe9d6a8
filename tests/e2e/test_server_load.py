"""Readers grading at once through the real server, each in its own browser context: every grade
the pages saved is in the store exactly once with its values, edits included, and nothing else
was written (a short run of bench/bench_server_load.py; shared code in load.py).

Six readers: on the 2-core machine CI runs on, twelve browsers plus the server starve the pages
for tens of seconds (the app element absent past the harness's limit, at the starting commit of
this change as much as after it); twelve readers for minutes is the bench's job
(``python bench/bench_server_load.py --minutes 2``)."""

from __future__ import annotations

import pytest

from tests.e2e import load

pytestmark = pytest.mark.e2e

READERS = 6
GRADES_EACH = 3  # two new items, then Back and an edit of the second


def test_readers_grade_at_once_through_the_server(server, e2e_project, browser):
    root, passwords = e2e_project
    db = root / "rascore.db"
    accounts = load.load_readers(root, passwords, READERS)
    assert len(accounts) == READERS
    mark = load.store_mark(db)
    readers = load.open_readers(browser, server.url, accounts)
    try:
        run = load.grade_round_robin(
            readers, grades_each=GRADES_EACH, think_s=0.1, edit_every=2, timeout_s=60
        )
    finally:
        load.close_readers(readers)
    assert not run.problems, run.problems
    problems = load.check_store(db, run, mark)
    assert not problems, problems[:5]
    saved = run.saved()
    # keys that did not all land (rare, under load) are typed again, like a reader would; a
    # refused grade (an error on the page) would be a failure here
    assert [g for g in run.grades if g.outcome not in ("saved", "lost")] == []
    per_reader = {name: sum(g.reader == name for g in saved) for name in accounts}
    assert per_reader == {name: GRADES_EACH for name in accounts}, per_reader
    assert sum(g.edit for g in saved) == READERS  # every reader went back and edited once
    assert all(g.ms is not None and g.ms > 0 for g in saved)
