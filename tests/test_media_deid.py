"""De-identification of stored DICOM, deterministic keyed UIDs and pseudonyms, the project key."""

from __future__ import annotations

import os
import re
import stat

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import UID_dictionary

from rascore.media import MediaStore, decode_file, ingest_file, load_or_create_key, pseudonym
from rascore.media.deid_profile import EMPTY, REMOVE
from tests.fixtures_media import (
    KEY,
    REAL_DICOMS,
    dicom_path,
    identifying_values,
    make_dicom,
    save_dicom,
    store,  # noqa: F401
)


def test_no_identifying_value_survives_anywhere(store):
    paths = [dicom_path(name) for name in REAL_DICOMS]
    secrets = set().union(*(identifying_values(p) for p in paths))
    assert {"13US1", "BAPTIST MED CTR", "CompressedSamples^US1", "mvme22", "4121885"} <= secrets
    results = [ingest_file(p, store, KEY) for p in paths]
    files = [p for p in (store.media_dir.parent).rglob("*") if p.is_file()]
    assert len(files) == 2 * len({r.sha256 for r in results})  # media + cache for each
    leaks = [(f.name, s) for f in files for s in secrets if s.encode() in f.read_bytes()]
    assert leaks == []
    text_of_results = repr([r.meta for r in results])
    assert [s for s in secrets if s in text_of_results] == []


@pytest.mark.parametrize(
    "name", ["US1_UNCR.dcm", "examples_ybr_color.dcm", "gdcm-US-ALOKA-16.dcm", "OBXXXX1A_rle_2frame.dcm"]
)
def test_stored_dicom_is_valid_deidentified_and_decodes_the_same(store, name):
    result = ingest_file(dicom_path(name), store, KEY)
    stored = store.media_path(result.sha256)
    assert stored.suffix == ".dcm"
    ds = pydicom.dcmread(stored)
    assert ds.PatientIdentityRemoved == "YES" and ds.DeidentificationMethod
    assert ds.PatientID == ds.PatientName == result.pseudonym
    assert re.fullmatch(r"pt-[0-9a-f]{12}", result.pseudonym)
    assert ds.preamble == b"\0" * 128
    private, uids = [], []
    ds.walk(
        lambda d, e: (
            private.append(e.tag)
            if e.tag.is_private
            else uids.append(str(e.value))
            if e.VR == "UI" and e.value and e.VM == 1
            else None
        )
    )
    assert private == []
    for uid in uids:
        assert uid in UID_dictionary or uid.startswith("2.25."), uid
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    for keyword in ("InstitutionName", "StationName", "DeviceSerialNumber", "OtherPatientIDs"):
        assert keyword not in ds
    assert not ds.get("StudyDate") and not ds.get("PatientBirthDate")
    assert np.array_equal(decode_file(stored).frames, decode_file(dicom_path(name)).frames)
    assert np.array_equal(store.load_cache(result.sha256), decode_file(stored).frames)


def test_same_file_twice_is_a_duplicate_and_stores_are_reproducible(tmp_path, store):
    first = ingest_file(dicom_path("US1_UNCR.dcm"), store, KEY)
    again = ingest_file(dicom_path("US1_UNCR.dcm"), store, KEY)
    assert (first.is_new, again.is_new) == (True, False)
    assert first.sha256 == again.sha256
    assert len([p for p in store.media_dir.rglob("*") if p.is_file()]) == 1
    other = MediaStore(tmp_path / "m2", tmp_path / "c2")
    assert ingest_file(dicom_path("US1_UNCR.dcm"), other, KEY).sha256 == first.sha256  # byte-identical
    rekeyed = ingest_file(dicom_path("US1_UNCR.dcm"), MediaStore(tmp_path / "m3", tmp_path / "c3"), b"x" * 32)
    assert rekeyed.sha256 != first.sha256 and rekeyed.pseudonym != first.pseudonym


def test_a_stored_file_taken_back_in_is_a_duplicate(tmp_path, store):
    first = ingest_file(dicom_path("examples_ybr_color.dcm"), store, KEY)
    exported = tmp_path / "exported.dcm"
    exported.write_bytes(store.media_path(first.sha256).read_bytes())
    again = ingest_file(exported, store, KEY)
    assert (again.sha256, again.is_new, again.pseudonym) == (first.sha256, False, first.pseudonym)


def test_pseudonyms_follow_the_patient_and_the_key(store):
    same_patient = [
        ingest_file(dicom_path(n), store, KEY)
        for n in ("US1_UNCR.dcm", "US1_J2KR.dcm", "examples_rgb_color.dcm")
    ]
    assert len({r.pseudonym for r in same_patient}) == 1
    assert len({r.sha256 for r in same_patient}) == 3
    other = ingest_file(dicom_path("examples_palette.dcm"), store, KEY)
    assert other.pseudonym != same_patient[0].pseudonym
    assert same_patient[0].pseudonym == pseudonym("13US1", KEY)
    assert pseudonym("13US1", b"another key 32 bytes long.......") != pseudonym("13US1", KEY)
    # the same study keeps one replacement StudyInstanceUID across its files
    a, b = (pydicom.dcmread(store.media_path(r.sha256)) for r in same_patient[:2])
    assert a.StudyInstanceUID == b.StudyInstanceUID and a.SOPInstanceUID != b.SOPInstanceUID


def test_pseudonym_falls_back_to_name_and_birth_date(tmp_path, store):
    pixels = np.zeros((8, 8), np.uint8)
    ds = make_dicom(pixels, "MONOCHROME2", PatientID="", PatientName="Doe^Jane", PatientBirthDate="19610203")
    result = ingest_file(save_dicom(ds, tmp_path / "a.dcm"), store, KEY)
    assert result.pseudonym == pseudonym("DOE^JANE|19610203", KEY)
    nobody = make_dicom(pixels + 1, "MONOCHROME2", PatientID="", PatientName="")
    assert ingest_file(save_dicom(nobody, tmp_path / "b.dcm"), store, KEY).pseudonym is None


def test_nested_private_free_text_and_age_rules(tmp_path, store):
    ds = make_dicom(
        np.full((8, 8), 3, np.uint8),
        "MONOCHROME2",
        PatientID="MRN-778812",
        PatientAge="095Y",
        PatientSex="F",
        OtherPatientIDs="X-99812",
        ProcessingFunction="MSK scan for MRN-778812",
        BodyPartExamined="HAND",
        InstitutionName="Riverside Clinic",
        Manufacturer="Riverside Imaging Ltd",
        ManufacturerModelName="Model-7",
        ImageLaterality="R",
    )
    ds.add_new(0x00091001, "LO", "private vendor note")
    item = Dataset()  # a kept sequence: its person name is emptied, its instance UID replaced
    item.CodeValue = "T-15000"
    item.CodingSchemeDesignator = "SRT"
    item.ContentCreatorName = "Smith^Alex"
    item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    item.ReferencedSOPClassUID = ds.SOPClassUID
    ds.AnatomicRegionSequence = [item]
    region = Dataset()
    region.RegionSpatialFormat = 1
    region.PhysicalDeltaX = 0.01
    ds.SequenceOfUltrasoundRegions = [region]
    result = ingest_file(save_dicom(ds, tmp_path / "x.dcm"), store, KEY)
    out = pydicom.dcmread(store.media_path(result.sha256))
    blob = store.media_path(result.sha256).read_bytes()
    for secret in (b"MRN-778812", b"X-99812", b"Smith", b"Riverside", b"private vendor note"):
        assert secret not in blob
    assert out.PatientAge == "090Y" and out.PatientSex == "F"
    assert out.BodyPartExamined == "HAND" and out.ImageLaterality == "R"
    assert out.ManufacturerModelName == "Model-7" and "Manufacturer" not in out  # named like the site
    assert out.SequenceOfUltrasoundRegions[0].PhysicalDeltaX == 0.01
    kept = out.AnatomicRegionSequence[0]
    assert kept.CodeValue == "T-15000" and not kept.ContentCreatorName
    assert kept.ReferencedSOPInstanceUID == out.SOPInstanceUID != ds.SOPInstanceUID
    assert kept.ReferencedSOPClassUID == ds.SOPClassUID
    assert 0x00091001 not in out
    assert result.meta["manufacturer"] is None and result.meta["manufacturer_model"] == "Model-7"
    assert (result.meta["body_part"], result.meta["image_laterality"]) == ("HAND", "R")


def test_profile_keyword_lists_are_real_dicom_keywords():
    from pydicom.datadict import tag_for_keyword

    assert [k for k in sorted(REMOVE | EMPTY) if tag_for_keyword(k) is None] == []
    assert {
        "InstitutionName",
        "StationName",
        "DeviceSerialNumber",
        "OtherPatientIDs",
        "PatientAddress",
        "OperatorsName",
        "PerformingPhysicianName",
    } <= REMOVE


def test_key_is_created_once_with_private_mode(tmp_path):
    path = tmp_path / "project" / "pseudonym.key"
    key = load_or_create_key(path)
    assert len(key) == 32 and path.read_bytes() == key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_key(path) == key
    assert load_or_create_key(tmp_path / "other.key") != key
    assert [p.name for p in path.parent.iterdir()] == ["pseudonym.key"]  # no temp file left
