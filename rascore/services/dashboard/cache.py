"""The dashboard's cache: a page polling every few seconds costs almost nothing.

Two levels. (1) A cheap global fingerprint of the store (max ids and counts of reference labels,
predictions, model versions, active models, items; annotations and users for the reader study):
while it is unchanged the last result is returned as is (``cached``). (2) When it changed, a
fingerprint per section (modality x cohort x model versions: its reference rows, each version's
predictions in that cohort and stored metrics) decides which sections are reloaded and
recomputed (``reuse_section``); the others are reused. Pairs of sections compared across
modalities are kept by both sections' fingerprints (``remembered``). ``cache_stats`` counts
all of it, for tests and benchmarks.

The fingerprints are read-only queries in ``rascore.store.results``; the global one is gated by
SQLite's ``data_version``, so an unchanged store costs a poll two pragmas, not a count of every
table.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from rascore.lru import LRU
from rascore.store import Store, results


_RESULTS = LRU(64)  # (db, what, args) -> (global fingerprint, result)
_SECTIONS = LRU(256)  # (db, modality, cohort, versions, n_boot, seed) -> (fingerprint, Section)
_STATS: Counter = Counter()
_STATS_LOCK = threading.Lock()


def count(name: str) -> None:
    """Count one event of ``name`` (e.g. 'section_reused') for ``cache_stats``."""
    with _STATS_LOCK:
        _STATS[name] += 1


def cache_stats() -> dict[str, int]:
    """How often results were served unchanged, and sections reused or recomputed."""
    with _STATS_LOCK:
        return dict(_STATS)


def clear_cache() -> None:
    """Forget every cached result (tests, or after the project folder changed)."""
    _RESULTS.clear()
    _SECTIONS.clear()
    with _STATS_LOCK:
        _STATS.clear()


def cached(store: Store, what: str, args: tuple, compute: Callable[[], object], with_readers: bool = False):
    """The result of ``compute`` while the store's global fingerprint stays the same."""
    key = (str(store.path), what, args)
    fingerprint = results.fingerprint(store, with_readers)
    hit = _RESULTS.get(key)
    if hit is not None and hit[0] == fingerprint:
        count(f"{what}_unchanged")
        return hit[1]
    value = compute()
    _RESULTS.put(key, (fingerprint, value))
    return value


def reuse_section(key: tuple, fingerprint: tuple, build: Callable[[], object]) -> tuple[object, bool]:
    """(the section kept under ``key``, True) while its fingerprint is unchanged, else
    (``build()``, False), kept under it."""
    hit = _SECTIONS.get(key)
    if hit is not None and hit[0] == fingerprint:
        count("section_reused")
        return hit[1], True
    count("section_computed")
    value = build()
    _SECTIONS.put(key, (fingerprint, value))
    return value, False


def remembered(key: tuple, compute: Callable[[], object], name: str):
    """The value kept under ``key`` (a key naming everything it depends on), else ``compute()``
    kept there and counted as ``name``."""
    hit = _RESULTS.get(key)
    if hit is None:
        count(name)
        hit = compute()
        _RESULTS.put(key, hit)
    return hit
