"""Patient clusters and the patient bootstrap's count matrices."""

from __future__ import annotations

import numpy as np
import pytest

from rascore.evaluate.clusters import Clusters, cluster_count_chunks, cluster_counts


def test_items_of_one_patient_are_drawn_together():
    clusters = Clusters.of(["a", "a", "b", None, "b", "c"])
    assert clusters.kind == "patient"
    assert clusters.n_clusters == 4  # a, b, c and the item without a patient
    assert clusters.n_without_patient == 1
    counts = cluster_counts(np.random.default_rng(1), clusters, 500)
    assert counts.shape == (6, 500)
    assert np.array_equal(counts[0], counts[1])  # same patient, same count in every resample
    assert np.array_equal(counts[2], counts[4])
    assert not np.array_equal(counts[0], counts[2])
    # each resample draws as many patients as there are
    per_cluster = counts[[0, 2, 3, 5]]
    assert np.all(per_cluster.sum(axis=0) == 4)


def test_no_patients_is_an_item_bootstrap():
    clusters = Clusters.of(None, n_items=5)
    assert clusters.kind == "item" and clusters.n_clusters == 5
    assert "no patient ids" in clusters.describe()
    all_missing = Clusters.of([None, "", float("nan")])
    assert all_missing.kind == "item" and all_missing.n_clusters == 3


def test_chunks_are_reproducible_and_complete():
    clusters = Clusters.of(list("aabbccdd"))
    first = np.hstack(list(cluster_count_chunks(clusters, 50, seed=3, chunk_cols=7)))
    again = np.hstack(list(cluster_count_chunks(clusters, 50, seed=3, chunk_cols=7)))
    assert first.shape == (8, 50) and np.array_equal(first, again)


def test_subset_renumbers_and_rejects_wrong_lengths():
    clusters = Clusters.of(["p", "q", "q", "r"])
    sub = clusters.subset(np.array([1, 2, 3]))
    assert sub.n_clusters == 2 and sub.n_items == 3
    with pytest.raises(ValueError):
        Clusters.of(["a", "b"], n_items=3)
