"""One patient, one cohort: every import path refuses rows that would put a patient in a second
cohort (manifest, second batch, DICOM patient IDs, Admin uploads); rows without a patient are kept."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rascore.services import admin
from rascore.ingest import entries_from_manifest, entries_from_paths, ingest
from rascore.patient_cohort import Placement, cohort_conflicts
from rascore.store import accounts
from tests.fixtures_media import dicom_path, grey_png, make_dicom, save_dicom
from tests.test_ingest import rascore, write_manifest


def _cohorts(project) -> dict[str | None, set[str]]:
    """Stored patient pseudonym -> the cohorts its items are in."""
    out: dict[str | None, set[str]] = {}
    for item in project.store.items():
        out.setdefault(item["patient"], set()).add(item["cohort"])
    return out


def _study(folder: Path, rows: list[dict], seed: int = 300) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for offset, row in enumerate(rows):
        (folder / row["path"]).write_bytes(grey_png(seed=seed + offset))
    return write_manifest(folder, rows)


def test_manifest_rows_spanning_cohorts_are_refused_and_named_the_rest_imported(project_env, tmp_path):
    manifest = _study(
        tmp_path / "study",
        [
            {"path": "a.png", "modality": "SGS", "cohort": "train", "patient": "P1"},
            {"path": "b.png", "modality": "SGS", "cohort": "test1", "patient": "P1"},
            {"path": "c.png", "modality": "SGS", "cohort": "train", "patient": "P2"},
            {"path": "d.png", "modality": "SGS", "cohort": "train", "patient": "P2"},
            {"path": "e.png", "modality": "SGS", "cohort": "test2"},
        ],
    )
    done = rascore(project_env, "ingest", "--manifest", str(manifest))
    assert done.returncode == 1, done.stderr
    assert done.stdout.strip() == "imported 3, duplicates 0, rejected 2"
    refused = [line for line in done.stderr.splitlines() if line.startswith("rejected")]
    assert len(refused) == 2, done.stderr
    for line, own in zip(refused, ("manifest.csv:2 a.png", "manifest.csv:3 b.png")):
        assert line.startswith(f"rejected {own}:")
        assert "cohort" in line and "manifest.csv:2 a.png (cohort train)" in line
        assert "manifest.csv:3 b.png (cohort test1)" in line
        assert "P1" not in line.split(":", 2)[2].replace("manifest.csv", "")  # only the pseudonym
    assert "note: 1 item has no patient id" in done.stderr

    from rascore.project import open_project

    cohorts = _cohorts(open_project())
    assert cohorts.pop(None) == {"test2"}
    assert list(cohorts.values()) == [{"train"}]  # P2 only; nothing of P1


def test_second_batch_cannot_move_a_stored_patient_to_another_cohort(project, tmp_path):
    first = _study(
        tmp_path / "one",
        [{"path": "a.png", "modality": "SPD", "cohort": "train", "patient": "P1", "sh:r": "1", "pd:r": "0"}],
    )
    assert ingest(project, entries_from_manifest(first)).summary() == "imported 1, duplicates 0, rejected 0"
    second = _study(
        tmp_path / "two",
        [
            {"path": "b.png", "modality": "SGS", "cohort": "test1", "patient": "P1"},
            {"path": "c.png", "modality": "SGS", "cohort": "train", "patient": "P1"},
            {"path": "d.png", "modality": "SGS", "cohort": "test1", "patient": "P3"},
        ],
        seed=310,
    )
    report = ingest(project, entries_from_manifest(second))
    assert report.summary() == "imported 2, duplicates 0, rejected 1"
    ((display, reason),) = report.rejected
    assert display == "manifest.csv:2 b.png"
    assert "already in cohort train (item 1)" in reason and "cohort test1" in reason
    assert sorted(map(sorted, _cohorts(project).values())) == [["test1"], ["train"]]
    assert project.store.annotation_history(1, accounts.user(project.store, "r")["id"])  # first batch kept


def test_dicom_patients_from_headers_stay_in_one_cohort(project, tmp_path):
    # two real files of one patient (PatientID 13US1) with different bytes
    uncr, j2kr = dicom_path("US1_UNCR.dcm"), dicom_path("US1_J2KR.dcm")
    assert ingest(project, entries_from_paths([uncr], "SPD", "train")).imported == [1]
    report = ingest(project, entries_from_paths([j2kr], "SPD", "test1"))
    assert report.imported == [] and "cohort" in report.rejected[0][1]
    assert report.rejected[0][0] == str(j2kr)
    assert report.summary() == "imported 0, duplicates 0, rejected 1"
    # the same patient in one batch across two cohorts: both files refused, before any is stored
    pixels = np.arange(16 * 20, dtype=np.uint8).reshape(16, 20)
    one = save_dicom(make_dicom(pixels, "MONOCHROME2", PatientID="H-77"), tmp_path / "one.dcm")
    two = save_dicom(make_dicom(pixels[::-1].copy(), "MONOCHROME2", PatientID="H-77"), tmp_path / "two.dcm")
    other = save_dicom(make_dicom(pixels.T.copy(), "MONOCHROME2", PatientID="H-78"), tmp_path / "other.dcm")
    stored = len([p for p in project.media.media_dir.rglob("*") if p.is_file()])
    entries = entries_from_paths([one, other], "SGS", "train") + entries_from_paths([two], "SGS", "test2")
    report = ingest(project, entries)
    assert sorted(d for d, _ in report.rejected) == sorted([str(one), str(two)])
    assert all("span cohorts" in r and str(one) in r and str(two) in r for _, r in report.rejected)
    assert "H-77" not in "".join(r for _, r in report.rejected)
    assert len(report.imported) == 1 and report.without_patient == 0
    assert len([p for p in project.media.media_dir.rglob("*") if p.is_file()]) == stored + 1
    assert all(len(c) == 1 for c in _cohorts(project).values())


def test_items_without_patient_are_kept_and_reported(project, tmp_path):
    folder = tmp_path / "loose"
    folder.mkdir()
    for seed in range(3):
        (folder / f"s{seed}.png").write_bytes(grey_png(seed=400 + seed))
    report = ingest(project, entries_from_paths([folder], "SGS", "train"))
    assert len(report.imported) == 3 and report.ok
    assert report.without_patient == 3
    assert report.notes() == [
        ("3 items have no patient id: each counts as its own patient in clustered statistics")
    ]
    more = ingest(project, entries_from_paths([tmp_path / "loose" / "s0.png"], "SGS", "test1"))
    assert more.duplicates and more.notes() == []  # a duplicate, not a cohort refusal
    (tmp_path / "x.png").write_bytes(grey_png(seed=499))
    assert ingest(project, entries_from_paths([tmp_path / "x.png"], "SGS", "test1")).ok
    assert _cohorts(project) == {None: {"train", "test1"}}


def test_admin_upload_refuses_a_patient_in_two_cohorts(project, tmp_path):
    accounts.add_user(project.store, "boss", "admin")
    boss = accounts.user(project.store, "boss")
    manifest = "path,modality,cohort,patient\na.png,SGS,train,P9\nb.png,SGS,test1,P9\nc.png,SGS,train,\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("manifest.csv", manifest)
        for seed, name in enumerate(("a.png", "b.png", "c.png")):
            archive.writestr(name, grey_png(seed=600 + seed))
    seen = []
    report = admin.import_uploads(
        project,
        boss,
        [("study.zip", buffer.getvalue())],
        on_result=lambda done, total, row: seen.append((done, total)),
    )
    assert report.summary() == "imported 1, duplicates 0, rejected 2"
    assert seen == [(1, 3), (2, 3), (3, 3)]
    refused = [r for r in report.rows if r["status"] == "rejected"]
    assert [r["file"] for r in refused] == ["manifest.csv:2 a.png", "manifest.csv:3 b.png"]
    assert all("cohort" in r["reason"] for r in refused)
    assert report.notes == [
        ("1 item has no patient id: it counts as its own patient in clustered statistics")
    ]


def test_a_patient_already_split_gets_no_more_rows(project):
    store = project.store
    store.add_media("a" * 64, format="png", kind="image", nbytes=1, frames=1, height=1, width=1, fps=None)
    for cohort in ("train", "test1"):
        store.add_item(
            media_sha256="a" * 64,
            modality="SGS" if cohort == "train" else "SPD",
            cohort=cohort,
            frames=1,
            fps=None,
            patient="pt-000000000001",
        )
    rows = [
        Placement("pt-000000000001", "train", "x.png"),
        Placement(None, "test2", "y.png"),
        Placement("pt-000000000002", "test2", "z.png"),
    ]
    refused = cohort_conflicts(store, rows)
    assert list(refused) == [0]
    assert "cohort test1 (item 2) and cohort train (item 1)" in refused[0]


@pytest.mark.parametrize("cohorts", [("train", "train"), ("test1", "test1")])
def test_one_cohort_per_patient_within_a_batch_is_accepted(project, cohorts):
    rows = [Placement("pt-00000000000a", c, f"{i}.png") for i, c in enumerate(cohorts)]
    assert cohort_conflicts(project.store, rows) == {}
