"""One small thread-safe least-recently-used cache, keyed by whatever key the caller computes.

``functools.lru_cache`` keys by a function's arguments and cannot be cleared per key space or
filled ahead of time; ``cachetools`` is not a dependency. This is an ``OrderedDict`` under a lock,
with hit and miss counters so callers (and tests) can observe reuse without reading its state.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple


class CacheInfo(NamedTuple):
    """Counters of one cache, as ``functools`` names them."""

    hits: int
    misses: int
    maxsize: int
    currsize: int


class LRU:
    """At most ``size`` values; the least recently used one goes first. Safe across threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def get(self, key: Hashable) -> Any:
        """The value under ``key`` (now the most recently used), or None when absent."""
        with self._lock:
            if key not in self._data:
                self._misses += 1
                return None
            self._hits += 1
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key: Hashable, value: Any) -> Any:
        """Keep ``value`` under ``key``, dropping the least recently used beyond ``size``; returns it."""
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def get_or_make(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The value under ``key``, made by ``make()`` and kept when absent (made outside the lock)."""
        value = self.get(key)
        return self.put(key, make()) if value is None else value

    def clear(self) -> None:
        """Forget every value and reset the counters."""
        with self._lock:
            self._data.clear()
            self._hits = self._misses = 0

    def info(self) -> CacheInfo:
        """Hits, misses, capacity and current size."""
        with self._lock:
            return CacheInfo(self._hits, self._misses, self.size, len(self._data))
