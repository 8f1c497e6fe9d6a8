"""rascore.store.results: the dashboard's polled fingerprint is re-queried only after a commit,
and sees commits from this connection, another connection and another thread."""

from __future__ import annotations

import threading

import pytest

from rascore.store import Store, results


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "p.db")
    yield s
    s.close()


def add_item(store: Store, n: int) -> int:
    store.add_media(f"{n:064x}", format="png", kind="image", nbytes=1, frames=1, height=8, width=8, fps=None)
    return store.add_item(media_sha256=f"{n:064x}", modality="SGS", cohort="test1", frames=1, fps=None)


def counting(monkeypatch) -> list:
    calls: list = []
    real = results.full_fingerprint

    def spy(store, with_readers=False):
        calls.append(with_readers)
        return real(store, with_readers)

    monkeypatch.setattr(results, "full_fingerprint", spy)
    return calls


def test_unchanged_store_is_not_queried_again(store, monkeypatch):
    calls = counting(monkeypatch)
    first = results.fingerprint(store)
    for _ in range(5):
        assert results.fingerprint(store) == first
    assert calls == [False]
    results.fingerprint(store, with_readers=True)
    results.fingerprint(store, with_readers=True)
    assert calls == [False, True]


def test_own_and_other_connections_commits_change_it(store, tmp_path, monkeypatch):
    calls = counting(monkeypatch)
    first = results.fingerprint(store)
    add_item(store, 1)  # this connection
    second = results.fingerprint(store)
    assert second != first and len(calls) == 2
    other = Store(tmp_path / "p.db")  # another connection, as another process would be
    add_item(other, 2)
    other.close()
    third = results.fingerprint(store)
    assert third != second and len(calls) == 3


def test_each_thread_keeps_its_own_memo(store):
    results.fingerprint(store)
    seen = {}

    def other_thread():
        seen["before"] = results.fingerprint(store)
        add_item(store, 3)
        seen["after"] = results.fingerprint(store)

    worker = threading.Thread(target=other_thread)
    worker.start()
    worker.join()
    assert seen["after"] != seen["before"]
    assert results.fingerprint(store) == seen["after"]  # the first thread sees the commit too
