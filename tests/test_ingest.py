"""`rascore ingest`: files, folders and manifests; bad input rejected with nothing stored; de-identification."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import struct
import subprocess
import zlib
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pydicom
from pydicom.data import get_testdata_file

from tests.conftest import BIN, cli_env

REAL_DICOMS = [
    "examples_rgb_color.dcm",
    "examples_ybr_color.dcm",
    "examples_jpeg2k.dcm",
    "examples_palette.dcm",
    "US1_UNCR.dcm",
    "US1_J2KR.dcm",
    "OBXXXX1A_2frame.dcm",
    "OBXXXX1A_rle_2frame.dcm",
    "gdcm-US-ALOKA-16.dcm",
]
TABLES = ("media", "items", "annotations", "reference_labels", "users", "audit_log")


def rascore(data: Path, *args: str):
    return subprocess.run(
        [str(BIN / "rascore"), *args, "--quiet"] if args[0] == "ingest" else [str(BIN / "rascore"), *args],
        capture_output=True,
        text=True,
        env=cli_env(data),
        timeout=300,
    )


def snapshot(data: Path) -> tuple:
    """Row counts of every table and the listing of the media and cache folders."""
    db = data / "rascore.db"
    counts = ()
    if db.exists():
        conn = sqlite3.connect(db)
        counts = tuple(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES)
        conn.close()
    files = tuple(
        sorted(
            str(p.relative_to(data))
            for sub in ("media", "cache")
            for p in (data / sub).rglob("*")
            if p.is_file()
        )
    )
    return counts, files


def grey_png(seed: int = 0, size=(48, 64)) -> bytes:
    rng = np.random.default_rng(seed)
    return iio.imwrite("<bytes>", rng.integers(0, 255, size, dtype=np.uint8), extension=".png")


def clip_mp4(frames: int = 8, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (frames, 64, 80, 3), dtype=np.uint8)
    return iio.imwrite("<bytes>", arr, extension=".mp4", fps=10, macro_block_size=16)


def bomb_png() -> bytes:
    """A tiny PNG whose header declares 100,000 x 100,000 pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 100))
        + chunk(b"IEND", b"")
    )


def dicom_without_pixels(tmp: Path) -> Path:
    ds = pydicom.dcmread(get_testdata_file("US1_UNCR.dcm"))
    del ds.PixelData
    out = tmp / "nopixels.dcm"
    ds.save_as(out)
    return out


def bad_files(folder: Path) -> dict[str, Path]:
    """One file per kind of bad input named in the foundation issue."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "empty": (folder / "empty.png", b""),
        "truncated": (folder / "truncated.png", grey_png()[:200]),
        "html": (folder / "page.png", b"<!DOCTYPE html><html><body>not an image</body></html>"),
        "text_dicom": (folder / "notes.dcm", b"patient notes, not a DICOM file\n" * 20),
        "bomb": (folder / "bomb.png", bomb_png()),
    }
    out = {}
    for key, (path, data) in files.items():
        path.write_bytes(data)
        out[key] = path
    out["no_pixels"] = dicom_without_pixels(folder)
    truncated = pydicom.dcmread(get_testdata_file("US1_UNCR.dcm"))
    raw = io.BytesIO()
    truncated.save_as(raw)
    (folder / "cut.dcm").write_bytes(raw.getvalue()[: len(raw.getvalue()) // 2])
    out["truncated_dicom"] = folder / "cut.dcm"
    return out


def test_images_and_clips_imported_then_duplicates(project_env, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.png").write_bytes(grey_png(1))
    (src / "b.png").write_bytes(grey_png(2))
    done = rascore(project_env, "ingest", str(src), "--modality", "SGS", "--cohort", "test1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imported 2, duplicates 0, rejected 0"
    again = rascore(project_env, "ingest", str(src), "--modality", "SGS")
    assert again.returncode == 0 and again.stdout.strip() == "imported 0, duplicates 2, rejected 0"
    (tmp_path / "c.mp4").write_bytes(clip_mp4())
    clip = rascore(project_env, "ingest", str(tmp_path / "c.mp4"), "--modality", "DGS")
    assert clip.stdout.strip() == "imported 1, duplicates 0, rejected 0", clip.stderr
    conn = sqlite3.connect(project_env / "rascore.db")
    rows = conn.execute("SELECT modality, cohort, dynamic, frames FROM items ORDER BY id").fetchall()
    assert rows[:2] == [("SGS", "test1", 0, 1)] * 2
    assert rows[2][0] == "DGS" and rows[2][2] == 1 and rows[2][3] == 8
    # the decoded-array cache holds each item for training
    from rascore.project import open_project

    project = open_project()
    for (sha,) in conn.execute("SELECT media_sha256 FROM items"):
        frames = project.media.load_cache(sha)
        assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3


def test_each_bad_input_rejected_with_nothing_stored(project_env, tmp_path):
    good = tmp_path / "good.png"
    good.write_bytes(grey_png(3))
    assert rascore(project_env, "ingest", str(good), "--modality", "SGS").returncode == 0
    before = snapshot(project_env)
    files = bad_files(tmp_path / "bad")
    clip = tmp_path / "bad" / "clip.mp4"
    clip.write_bytes(clip_mp4(12))
    done = rascore(project_env, "ingest", *map(str, files.values()), str(clip), "--modality", "SPD")
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.startswith("rejected")]
    assert len(lines) == len(files) + 1, done.stderr
    for path in [*files.values(), clip]:
        assert any(path.name in line for line in lines), (path.name, done.stderr)
    assert done.stdout.strip() == f"imported 0, duplicates 0, rejected {len(files) + 1}"
    assert "static modality" in next(line for line in lines if "clip.mp4" in line)
    assert snapshot(project_env) == before
    too_long = rascore(project_env, "ingest", str(clip), "--modality", "DGS", "--max-frames", "4")
    assert too_long.returncode == 1 and "frames" in too_long.stderr
    assert snapshot(project_env) == before


def write_manifest(folder: Path, rows: list[dict]) -> Path:
    columns = sorted({k for row in rows for k in row}, key=lambda c: (c not in ("path", "modality"), c))
    path = folder / "manifest.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_manifest_rejects_bad_rows_and_imports_the_rest(project_env, tmp_path):
    folder = tmp_path / "study"
    (folder / "scans").mkdir(parents=True)
    for i in range(3):
        (folder / "scans" / f"s{i}.png").write_bytes(grey_png(10 + i))
    outside = tmp_path / "outside.png"
    outside.write_bytes(grey_png(99))
    manifest = write_manifest(
        folder,
        [
            {
                "path": "scans/s0.png",
                "modality": "SPD",
                "cohort": "test2",
                "patient": "hospital-123",
                "joint": "MCP2",
                "side": "R",
                "sh:reader-a": "2",
                "pd:reader-a": "1",
            },
            {"path": "../outside.png", "modality": "SGS", "cohort": "train"},
            {"path": str(outside), "modality": "SGS", "cohort": "train"},
            {"path": "scans/s1.png", "modality": "XYZ", "cohort": "train"},
            {"path": "scans/s1.png", "modality": "SGS", "cohort": "validation"},
            {"path": "scans/s2.png", "modality": "SGS", "cohort": "train", "sh:reader-a": "5"},
            {
                "path": "scans/s2.png",
                "modality": "SPD",
                "cohort": "train",
                "sh:reader-a": "0",
                "pd:reader-a": "2",
            },
        ],
    )
    before = snapshot(project_env)
    done = rascore(project_env, "ingest", "--manifest", str(manifest))
    assert done.returncode == 1
    assert done.stdout.strip() == "imported 1, duplicates 0, rejected 6"
    reasons = "\n".join(line for line in done.stderr.splitlines() if line.startswith("rejected"))
    for expected in (
        "escapes",
        "absolute",
        "unknown modality",
        "unknown cohort",
        "0-3",
        "not a valid EOSS combination",
    ):
        assert expected in reasons, (expected, reasons)
    counts, files = snapshot(project_env)
    assert counts[1] - (before[0][1] if before[0] else 0) == 1  # one item
    conn = sqlite3.connect(project_env / "rascore.db")
    patient, cohort = conn.execute("SELECT patient, cohort FROM items").fetchone()
    assert cohort == "test2" and patient.startswith("pt-") and "123" not in patient


def test_import_then_export_labels_round_trip(project_env, tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    rows = []
    for i in range(4):
        (folder / f"s{i}.png").write_bytes(grey_png(20 + i))
        row = {
            "path": f"s{i}.png",
            "modality": "SPD" if i % 2 else "SGS",
            "cohort": "train",
            "patient": f"p{i // 2}",
            "joint": "MCP3",
            "side": "L",
            "sh:reader-a": str(i % 4),
            "sh:reader-b": str((i + 1) % 4),
        }
        if i % 2:
            row.update({"pd:reader-a": "1", "pd:reader-b": "0", "reference_sh": "2", "reference_pd": "3"})
        rows.append(row)
    manifest = write_manifest(folder, rows)
    assert rascore(project_env, "ingest", "--manifest", str(manifest)).returncode == 0
    out = tmp_path / "labels.csv"
    done = rascore(project_env, "export", "labels", "--out", str(out))
    assert done.returncode == 0, done.stderr
    exported = list(csv.DictReader(open(out)))
    assert len(exported) == 8
    got = {(r["joint"], r["modality"], r["reader"], r["sh"], r["pd"]) for r in exported}
    want = set()
    for row in rows:
        for reader in ("reader-a", "reader-b"):
            want.add(
                (row["joint"], row["modality"], reader, row[f"sh:{reader}"], row.get(f"pd:{reader}", ""))
            )
    assert got == want
    combined = {r["reader"]: r["combined"] for r in exported if r["modality"] == "SPD" and r["sh"] == "1"}
    assert combined == {"reader-a": "1"}  # derived: SH 1, PD 1 -> 1
    patients = {r["patient"] for r in exported}
    assert len(patients) == 2 and all(p.startswith("pt-") for p in patients)
    ref = rascore(project_env, "export", "reference")
    ref_rows = list(csv.DictReader(io.StringIO(ref.stdout)))
    assert [(r["sh"], r["pd"], r["combined"], r["method"]) for r in ref_rows] == [
        ("2", "3", "3", "import")
    ] * 2
    parquet = tmp_path / "labels.parquet"
    assert rascore(project_env, "export", "labels", "--out", str(parquet)).returncode == 0
    import pandas as pd

    assert len(pd.read_parquet(parquet)) == 8


def identifying_values(path: str) -> set[str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    keywords = (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientAddress",
        "InstitutionName",
        "InstitutionAddress",
        "ReferringPhysicianName",
        "PerformingPhysicianName",
        "OperatorsName",
        "AccessionNumber",
        "StudyID",
        "StationName",
        "DeviceSerialNumber",
        "OtherPatientIDs",
        "PatientTelephoneNumbers",
        "InstitutionalDepartmentName",
    )
    values = set()
    for keyword in keywords:
        value = str(getattr(ds, keyword, "") or "").strip()
        for part in {value, *value.replace("^", " ").split()}:
            if len(part) >= 4:
                values.add(part)
    return values


def test_real_ultrasound_dicoms_ingested_without_identity(project_env, tmp_path):
    paths = [get_testdata_file(name) for name in REAL_DICOMS]
    assert all(paths), "pydicom and pydicom-data must provide every test file"
    secrets = set().union(*(identifying_values(p) for p in paths))
    assert secrets, "the test files carry identifying values to check for"
    multi = [
        p
        for p in paths
        if pydicom.dcmread(p, stop_before_pixels=True).get("NumberOfFrames", 1) not in (None, "", 1, "1")
    ]
    single = [p for p in paths if p not in multi]
    done = rascore(project_env, "ingest", *single, "--modality", "SPD", "--cohort", "test1")
    assert done.returncode == 0, done.stderr + done.stdout
    done = rascore(project_env, "ingest", *multi, "--modality", "DPD", "--cohort", "test1")
    assert done.returncode == 0, done.stderr + done.stdout
    import hashlib

    distinct = len({hashlib.sha256(open(p, "rb").read()).hexdigest() for p in paths})
    assert distinct == len(paths) - 1  # examples_jpeg2k.dcm and US1_J2KR.dcm are the same file
    conn = sqlite3.connect(project_env / "rascore.db")
    assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == distinct
    conn.close()
    leaks = []
    for file in project_env.rglob("*"):
        if file.is_file():
            blob = file.read_bytes()
            leaks += [(file.name, s) for s in secrets if leaked(s, blob)]
    assert leaks == []


def leaked(secret: str, blob: bytes) -> bool:
    """Whether a value appears in a file. A number counts only where it stands alone: the keyed-hash
    UIDs (2.25.<39 random digits>, from a random project key) contain any 5-digit string by chance
    about once in a hundred projects, which is not a leak."""
    if secret.isdigit():
        return re.search(rb"(?<![0-9])" + secret.encode() + rb"(?![0-9])", blob) is not None
    return secret.encode() in blob


def test_leak_check_finds_a_standalone_number_but_not_one_inside_a_uid():
    assert leaked("98279", b"PatientID\x0098279\x00")
    assert leaked("13US1", b"..13US1..")
    assert not leaked("98279", b"2.25.1234598279123")
