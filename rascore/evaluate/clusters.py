"""Patients as clusters of items: the unit that a bootstrap resamples and a variance counts.

A patient contributes several joints (items), and the grades of one patient's joints are
correlated, so treating items as independent makes every interval and p-value too narrow. Here a
cluster bootstrap draws *patients* with replacement and keeps all of each drawn patient's items:
resample r is a vector of item counts, each item's count being how often its patient was drawn.
Such an (n_items, B) count matrix plugs into everything that takes case-bootstrap counts
(``rascore.evaluate.bootstrap.WeightedAUC``, the kappa bootstrap), with rows in item order.

An item without a patient id is its own cluster (it is resampled alone); ``Clusters.kind`` says
whether any patient id was given at all ("patient") or every item stands alone ("item").
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from rascore.evaluate.bootstrap import COUNT_DTYPE, DEFAULT_CHUNK_CELLS


def _missing(value: object) -> bool:
    """True for a patient id that is absent (None, NaN, empty text)."""
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


@dataclass(frozen=True)
class Clusters:
    """Which cluster (patient) each item belongs to, as codes 0..n_clusters-1 in item order."""

    codes: np.ndarray
    n_clusters: int
    kind: str  # "patient" when at least one item has a patient id, else "item"
    n_without_patient: int = 0

    @property
    def n_items(self) -> int:
        """How many items the clusters cover."""
        return int(self.codes.size)

    @classmethod
    def of(cls, patients: Sequence[object] | Clusters | None, n_items: int | None = None) -> Clusters:
        """Clusters from one patient id per item; ``None`` (or all ids missing) means every item
        is its own cluster; a ``Clusters`` is returned as it is (checked against ``n_items``).
        ``n_items`` is needed only when ``patients`` is None."""
        if isinstance(patients, Clusters):
            if n_items is not None and patients.n_items != n_items:
                raise ValueError(f"clusters cover {patients.n_items} items, not {n_items}")
            return patients
        if patients is None:
            if n_items is None:
                raise ValueError("Clusters.of(None) needs n_items")
            return cls(np.arange(n_items, dtype=np.int64), int(n_items), "item", int(n_items))
        ids = list(patients)
        if n_items is not None and len(ids) != n_items:
            raise ValueError(f"{len(ids)} patient ids for {n_items} items")
        codes = np.empty(len(ids), dtype=np.int64)
        seen: dict[str, int] = {}
        missing = 0
        for i, patient in enumerate(ids):
            if _missing(patient):
                codes[i] = -1
                missing += 1
                continue
            codes[i] = seen.setdefault(str(patient), len(seen))
        lone = np.flatnonzero(codes < 0)
        codes[lone] = len(seen) + np.arange(lone.size)
        kind = "patient" if seen else "item"
        return cls(codes, len(seen) + int(lone.size), kind, missing)

    def subset(self, index: np.ndarray) -> "Clusters":
        """The clusters of a subset of the items (codes renumbered densely)."""
        sub = self.codes[np.asarray(index)]
        uniq, codes = np.unique(sub, return_inverse=True)
        n_lone = int(np.count_nonzero(sub >= self.n_clusters - self.n_without_patient))
        return Clusters(codes.astype(np.int64), int(uniq.size), self.kind, n_lone)

    def describe(self) -> str:
        """One line for a table or a page: what the bootstrap resamples."""
        if self.kind == "item":
            return f"items resampled ({self.n_items} items, no patient ids)"
        text = f"patients resampled ({self.n_clusters} clusters, {self.n_items} items)"
        if self.n_without_patient:
            text += f"; {self.n_without_patient} items without a patient id count as their own cluster"
        return text


def cluster_counts(rng: np.random.Generator, clusters: Clusters, n_resamples: int) -> np.ndarray:
    """(n_items, n_resamples) int32 counts of a patient bootstrap: patients drawn with replacement,
    each item counted as often as its patient was drawn (rows in item order)."""
    return per_cluster_counts(rng, clusters, n_resamples)[clusters.codes]


def per_cluster_counts(rng: np.random.Generator, clusters: Clusters, n_resamples: int) -> np.ndarray:
    """(n_clusters, n_resamples) int32: how often each patient was drawn in each resample."""
    k = clusters.n_clusters
    draws = rng.integers(0, k, size=(n_resamples, k), dtype=np.int64)
    draws += (np.arange(n_resamples, dtype=np.int64) * k)[:, None]
    per_cluster = np.bincount(draws.ravel(), minlength=k * n_resamples).reshape(n_resamples, k)
    return np.ascontiguousarray(per_cluster.T, dtype=COUNT_DTYPE)  # (k, B)


def cluster_count_chunks(
    clusters: Clusters, n_boot: int, seed: int | np.random.Generator | None, chunk_cols: int | None = None
) -> Iterator[np.ndarray]:
    """Yield the n_boot patient resamples as (n_items, chunk) count matrices, from ``seed``."""
    for per_cluster in per_cluster_count_chunks(clusters, n_boot, seed, chunk_cols):
        yield per_cluster[clusters.codes]


def per_cluster_count_chunks(
    clusters: Clusters, n_boot: int, seed: int | np.random.Generator | None, chunk_cols: int | None = None
) -> Iterator[np.ndarray]:
    """The resamples of ``cluster_count_chunks`` (same seed, same draws) as per-patient
    (n_clusters, chunk) counts: item i's count is row ``clusters.codes[i]``."""
    rng = np.random.default_rng(seed)
    if chunk_cols is None:
        chunk_cols = max(1, DEFAULT_CHUNK_CELLS // max(clusters.n_items, 1))
    done = 0
    while done < n_boot:
        cols = min(chunk_cols, n_boot - done)
        yield per_cluster_counts(rng, clusters, cols)
        done += cols
