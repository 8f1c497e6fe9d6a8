"""Admin actions: accounts and roles, safe zip uploads with a manifest, export, audit."""

from __future__ import annotations

import io
import stat
import zipfile

import pandas as pd
import pytest

from rascore.services import admin
from rascore.services.admin import AdminError
from rascore.store import accounts
from tests.fixtures_labelling import _encode, _frame, build_project


@pytest.fixture
def project(tmp_path):
    return build_project(tmp_path / "p", per_modality=1)


def _png(seed: int) -> bytes:
    import numpy as np

    return _encode([_frame(np.random.default_rng(seed), False)])[0]


def _zip(members: dict[str, bytes], links: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def test_accounts_add_change_deactivate_with_guards(project):
    store = project.store
    boss = accounts.user(store, "demo-admin")
    admin.add_account(store, boss, "reader-three", "reader", "junior", "a-long-password")
    assert accounts.user(store, "reader-three")["level"] == "junior"
    with pytest.raises(AdminError, match="already exists"):
        admin.add_account(store, boss, "reader-three", "reader", None, "a-long-password")
    with pytest.raises(AdminError, match="at least 10"):
        admin.add_account(store, boss, "reader-four", "reader", None, "short")
    admin.change_role(store, boss, "reader-three", "expert")
    assert accounts.user(store, "reader-three")["role"] == "expert"
    admin.set_active(store, boss, "reader-three", False)
    assert accounts.user(store, "reader-three")["active"] == 0
    with pytest.raises(AdminError, match="your own account"):
        admin.set_active(store, boss, "demo-admin", False)
    with pytest.raises(AdminError, match="last active admin"):
        admin.change_role(store, boss, "demo-admin", "reader")
    actions = [r["action"] for r in store.audit_rows()[:3]]
    assert actions == ["user.deactivate", "user.role", "user.add"]


def test_safe_member_paths():
    assert str(admin.safe_member_path("a/b.png")) == "a/b.png"
    for bad in ("../x.png", "a/../../x.png", "/etc/passwd", "C:\\x.png", "a\\..\\..\\x"):
        with pytest.raises(AdminError):
            admin.safe_member_path(bad)


def test_zip_traversal_links_and_bombs_are_refused(tmp_path):
    for data, reason in (
        (_zip({"../evil.png": b"x"}), "leaves"),
        (_zip({"/abs.png": b"x"}), "absolute"),
        (_zip({"ok.png": b"x"}, links=("link.png",)), "links"),
    ):
        dest = tmp_path / reason
        dest.mkdir()
        with pytest.raises(AdminError, match=reason):
            admin.unpack_zip(data, dest)
        assert not (tmp_path / "evil.png").exists()
        assert [p for p in dest.rglob("*") if p.is_file()] == []
    bomb = _zip({"zeros.bin": b"\0" * 5_000_000})
    assert len(bomb) < 50_000
    dest = tmp_path / "bomb"
    dest.mkdir()
    with pytest.raises(AdminError, match="unpacks to"):
        admin.unpack_zip(bomb, dest, max_bytes=1_000_000)
    assert [p for p in dest.rglob("*") if p.is_file()] == []
    with pytest.raises(AdminError, match="not a valid zip"):
        admin.unpack_zip(b"PK\x03\x04 not really", dest)


def test_zip_with_manifest_imports_and_reports_each_file(project):
    store = project.store
    boss = accounts.user(store, "demo-admin")
    manifest = (
        "path,modality,cohort,patient,joint,side,sh:expert-a,pd:expert-a\n"
        "scans/one.png,SPD,test2,P-1,MCP2,L,2,1\n"
        "scans/two.png,SGS,test2,P-1,MCP3,R,1,\n"
        "scans/missing.png,SGS,train,P-2,MCP2,R,,\n"
        "../outside.png,SGS,train,P-2,MCP2,R,,\n"
        "scans/bad.png,SGS,train,P-3,MCP2,R,,\n"
    )
    data = _zip(
        {
            "study/manifest.csv": manifest.encode(),
            "study/scans/one.png": _png(1),
            "study/scans/two.png": _png(2),
            "study/scans/bad.png": b"<html>no</html>",
        }
    )
    seen = []
    report = admin.import_uploads(
        project, boss, [("study.zip", data)], on_result=lambda done, total, row: seen.append((done, total))
    )
    assert report.imported == 2 and report.rejected == 3
    assert seen[-1] == (5, 5)
    reasons = {r["file"]: r["reason"] for r in report.rows if r["status"] == "rejected"}
    assert any("missing.png" in f for f in reasons)
    assert any("escapes" in (r or "") for r in reasons.values())
    assert any("HTML" in (r or "") or "not an image" in (r or "") for r in reasons.values())
    new = [store.item(r["item_id"]) for r in report.rows if r["status"] == "imported"]
    assert {(i["modality"], i["cohort"], i["source"]) for i in new} == {
        ("SPD", "test2", "upload"),
        ("SGS", "test2", "upload"),
    }  # one patient, one cohort
    assert all(i["patient"].startswith("pt-") for i in new)  # pseudonymised, never "P-1"
    spd = next(i for i in new if i["modality"] == "SPD")
    grade = store.latest_annotations(spd["id"])[0]
    assert (grade["reader"], grade["sh"], grade["pd"]) == ("expert-a", 2, 1)
    assert store.audit_rows()[0]["action"] == "import.upload"
    # the same upload again: duplicates, nothing new
    again = admin.import_uploads(project, boss, [("study.zip", data)])
    assert again.imported == 0 and again.duplicates == 2


def test_loose_files_take_the_chosen_modality(project):
    boss = accounts.user(project.store, "demo-admin")
    report = admin.import_uploads(
        project, boss, [("a.png", _png(5)), ("a.png", _png(6)), ("../../b.png", _png(7))], "SGS", "test1"
    )
    assert report.imported == 3
    assert all(project.store.item(r["item_id"])["cohort"] == "test1" for r in report.rows)
    with pytest.raises(AdminError):
        admin.import_uploads(project, boss, [])


def test_export_csv_and_parquet_are_audited(project):
    store = project.store
    boss = accounts.user(store, "demo-admin")
    labels = admin.export_file(store, boss, "labels", "csv")
    frame = pd.read_csv(io.BytesIO(labels.data))
    assert len(frame) == labels.rows == 8 and set(frame.reader) == {"expert-a", "expert-b"}
    reference = admin.export_file(store, boss, "reference", "parquet")
    assert reference.filename == "rascore-reference.parquet"
    assert len(pd.read_parquet(io.BytesIO(reference.data))) == reference.rows
    assert [r["action"] for r in store.audit_rows()[:2]] == ["export", "export"]
    with pytest.raises(AdminError):
        admin.export_file(store, boss, "labels", "xlsx")
