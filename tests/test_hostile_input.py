"""Hostile input through the upload functions, the command line and every text field: refused
with a reason or stored verbatim as text, never executed, never served as anything but an image."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rascore import auth
from rascore.services import adjudication, admin, labelling, session
from rascore.cli import main as cli_main
from rascore.media import MediaError, ingest_bytes, preview
from rascore.media.errors import Limits
from rascore.store import accounts
from tests.fixtures_media import grey_png, make_dicom
from tests.fixtures_labelling import build_project

ROOT = Path(__file__).resolve().parents[1]
SQL_TEXTS = (
    "x'; DROP TABLE annotations; --",
    '"); DELETE FROM users; --',
    "1 OR 1=1",
    "%' UNION SELECT password_hash FROM users --",
    "Robert'); --",
)
HTML_TEXTS = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "</div><iframe src=javascript:alert(1)>",
)


@pytest.fixture
def project(tmp_path):
    return build_project(tmp_path / "project", per_modality=2)


def _tables(project) -> list[tuple[str, str]]:
    return project.store.conn.execute("SELECT type, name FROM sqlite_master ORDER BY type, name").fetchall()


def _intact(project, tables_before) -> None:
    conn = project.store.conn
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert [tuple(r) for r in _tables(project)] == [tuple(r) for r in tables_before]
    assert conn.execute("SELECT count(*) FROM users").fetchone()[0] >= 6


def _zip(members: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def _admin(project):
    return accounts.user(project.store, "demo-admin")


# ------------------------------------------------------------------ zips
def test_zip_bomb_is_refused_and_leaves_nothing(project, tmp_path):
    bomb = _zip({"a.png": b"\0" * 30_000_000})
    assert len(bomb) < 100_000
    dest = tmp_path / "unpack"
    dest.mkdir()
    with pytest.raises(admin.AdminError, match="unpacks to"):
        admin.unpack_zip(bomb, dest, max_bytes=1_000_000)
    assert not any(dest.rglob("*"))
    many = _zip({f"f{k}.png": b"" for k in range(30)})
    with pytest.raises(admin.AdminError, match="entries"):
        admin.unpack_zip(many, dest, max_members=10)
    items = len(project.store.items())
    report = admin.import_uploads(
        project, _admin(project), [("bomb.zip", bomb)], modality="SGS", max_bytes=1_000_000
    )
    assert report.rejected == 1 and "unpacks to" in report.rows[0]["reason"]
    assert len(project.store.items()) == items


def test_zip_bomb_with_lying_headers_is_stopped_while_unpacking(tmp_path):
    # headers declaring a small size: the streamed count (or zip's own CRC check) stops it
    data = bytearray(_zip({"a.png": b"\0" * 5_000_000}))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(signature)
        data[at + offset : at + offset + 4] = (100).to_bytes(4, "little")
    dest = tmp_path / "unpack"
    dest.mkdir()
    with pytest.raises(admin.AdminError):
        admin.unpack_zip(bytes(data), dest, max_bytes=1_000_000)
    assert not [p for p in dest.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    "member", ["../evil.png", "a/../../evil.png", "/tmp/evil.png", "C:/evil.png", "..\\evil.png"]
)
def test_zip_member_escaping_the_folder_is_refused(project, tmp_path, member):
    dest = tmp_path / "inner" / "unpack"
    dest.mkdir(parents=True)
    data = _zip({"ok.png": grey_png(), member: grey_png(seed=1)})
    with pytest.raises(admin.AdminError, match="absolute|leaves"):
        admin.unpack_zip(data, dest)
    assert not [p for p in (tmp_path / "inner").rglob("*") if p.is_file()]
    assert not (tmp_path / "evil.png").exists() and not Path("/tmp/evil.png").exists()
    report = admin.import_uploads(project, _admin(project), [("up.zip", data)], modality="SGS")
    assert report.rejected == 1 and report.imported == 0


def test_zip_with_a_link_member_is_refused(tmp_path):
    dest = tmp_path / "unpack"
    dest.mkdir()
    with pytest.raises(admin.AdminError, match="links"):
        admin.unpack_zip(_zip({"ok.png": grey_png()}, symlink="passwd.png"), dest)
    assert not [p for p in dest.rglob("*") if p.is_file() or p.is_symlink()]


def test_manifest_path_escaping_its_folder_is_refused_through_the_cli(project, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "scans"
    folder.mkdir()
    (tmp_path / "outside.png").write_bytes(grey_png(seed=3))
    manifest = folder / "manifest.csv"
    with open(manifest, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "modality", "patient", "joint"])
        writer.writerow(["../outside.png", "SGS", "p1", "MCP2"])
        writer.writerow([str(tmp_path / "outside.png"), "SGS", "p1", "MCP2"])
    for key, value in (
        ("RASCORE_DATA", project.settings.data_dir),
        ("RASCORE_DB", project.settings.db_path),
        ("RASCORE_MODELS", project.settings.models_dir),
    ):
        monkeypatch.setenv(key, str(value))
    items = len(project.store.items())
    code = cli_main(["ingest", "--manifest", str(manifest), "--quiet"])
    out = capsys.readouterr()
    assert code != 0
    assert "absolute paths are not allowed" in out.out + out.err
    assert "escapes the manifest's folder" in out.out + out.err
    assert len(project.store.items()) == items


# ------------------------------------------------------------------ sizes and polyglots
def test_upload_over_the_size_limit_is_refused_before_decoding(project):
    big = grey_png(shape=(256, 256))
    with pytest.raises(MediaError, match="limit|large|bytes"):
        ingest_bytes(big, "big.png", project.media, project.key, Limits(max_bytes=1000))
    assert not [p for p in project.settings.media_dir.rglob("*.png") if p.read_bytes() == big]
    zipped = _zip({"big.png": big})
    report = admin.import_uploads(
        project, _admin(project), [("big.zip", zipped)], modality="SGS", max_bytes=1000
    )
    assert report.rejected == 1 and report.imported == 0


def test_png_html_zip_polyglot_is_only_ever_an_image(project):
    tail = b"<html><script>alert(document.cookie)</script></html>"
    inner = _zip({"x.html": tail})
    polyglot = grey_png(seed=7) + tail + inner
    report = admin.import_uploads(
        project, _admin(project), [("page.html", polyglot)], modality="SGS", cohort="train"
    )
    assert report.imported == 1, report.rows
    item = project.store.item(report.rows[0]["item_id"])
    assert item["format"] == "png"  # what the magic bytes say, whatever the name
    stored = project.media.media_path(item["media_sha256"])
    assert stored.suffix == ".png"
    png = preview.frame_png(project.media, item["media_sha256"])
    assert png.startswith(b"\x89PNG") and b"<script" not in png and b"PK\x03\x04" not in png
    assert preview.data_url(png).startswith("data:image/png;base64,")


def test_gif_javascript_polyglot_and_html_named_png_are_refused_or_images(project):
    gif_js = b"GIF89a/*\x00\x00\x00\x00*/=1;alert(1);//" + b"\x00" * 64
    html = b"<!doctype html><html><script>alert(1)</script></html>"
    report = admin.import_uploads(
        project, _admin(project), [("evil.gif", gif_js), ("evil.png", html)], modality="SGS"
    )
    assert report.imported == 0 and report.rejected == 2, report.rows
    for row in report.rows:
        assert row["reason"]
    # a real GIF with script after its trailer is re-encoded from pixels when shown
    from PIL import Image

    buffer = io.BytesIO()
    frames = [Image.fromarray(np.full((24, 32, 3), v, np.uint8)) for v in (40, 200)]
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    polyglot = buffer.getvalue() + b"<script>alert(1)</script>"
    report = admin.import_uploads(project, _admin(project), [("clip.gif", polyglot)], modality="DGS")
    if report.imported:
        sha = project.store.item(report.rows[0]["item_id"])["media_sha256"]
        gif = preview.clip_gif(project.media, sha)
        assert gif.startswith(b"GIF8") and b"<script" not in gif
        assert preview.data_url(gif).startswith("data:image/gif;base64,")
    else:
        assert report.rows[0]["reason"]


def test_dicom_declaring_huge_dimensions_is_refused_without_allocating(project):
    ds = make_dicom(np.zeros((8, 8), np.uint8), "MONOCHROME2")
    ds.Rows, ds.Columns = 65535, 65535
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with pytest.raises(MediaError, match="decompression bomb|pixel|size|length|data"):
        ingest_bytes(buffer.getvalue(), "huge.dcm", project.media, project.key)
    assert not [p for p in project.settings.media_dir.rglob("*.dcm")]


# ------------------------------------------------------------------ text fields
@pytest.mark.parametrize("name", [*HTML_TEXTS, *SQL_TEXTS, "a b", "ålice", "x" * 65, ""])
def test_user_names_with_markup_or_sql_are_refused(project, name):
    tables = _tables(project)
    with pytest.raises(auth.AuthError):
        auth.add_user(project.store, name, "reader", None, "long-enough-password", rounds=4)
    with pytest.raises(admin.AdminError):
        admin.add_account(project.store, _admin(project), name, "reader", None, None)
    assert accounts.user(project.store, name) is None
    _intact(project, tables)


def test_cli_refuses_a_markup_user_name(project, monkeypatch, capsys):
    monkeypatch.setenv("RASCORE_DATA", str(project.settings.data_dir))
    monkeypatch.setenv("RASCORE_DB", str(project.settings.db_path))
    monkeypatch.setattr("sys.stdin", io.StringIO("long-enough-password\n"))
    assert cli_main(["user", "add", "<script>alert(1)</script>", "--role", "admin", "--password-stdin"]) == 2
    assert "user name" in capsys.readouterr().err
    assert accounts.user(project.store, "<script>alert(1)</script>") is None


def test_sql_and_markup_in_every_free_text_field_are_stored_verbatim(project):
    store = project.store
    tables = _tables(project)
    reader, expert = accounts.user(store, "demo-reader"), accounts.user(store, "demo-expert")
    texts = [*SQL_TEXTS, *HTML_TEXTS]
    items = [i["id"] for i in store.items(modality="SGS")]
    for k, text in enumerate(texts[: len(items)]):  # not-assessable reasons
        labelling.submit(store, reader, items[k], None, not_assessable=True, reason=text)
        assert labelling.my_grade(store, reader, items[k])["reason"] == text
    note = texts[-1]
    adjudication.set_reference(store, expert, items[0], 2, None, note=note)
    row = store.conn.execute(
        "SELECT detail_json FROM audit_log WHERE action = 'reference.adjudicate' ORDER BY id DESC"
    ).fetchone()[0]
    assert note in __import__("json").loads(row)["note"]
    # sign-in and search-like look-ups take the text as a value
    for text in texts:
        with pytest.raises(session.SignInError):
            session.sign_in(project, text[:60], "whatever-password")
        assert accounts.user(store, text) is None
    assert store.conn.execute("SELECT count(*) FROM sign_in_attempts").fetchone()[0] >= 1
    _intact(project, tables)
    assert store.conn.execute("SELECT count(*) FROM annotations").fetchone()[0] > 0


def test_manifest_text_fields_are_checked_or_stored_as_values(project, tmp_path):
    folder = tmp_path / "up"
    folder.mkdir()
    rows = [["path", "modality", "cohort", "patient", "joint", "side"]]
    for k, text in enumerate(SQL_TEXTS):
        (folder / f"s{k}.png").write_bytes(grey_png(seed=20 + k))
        rows.append([f"s{k}.png", "SGS", "train", text, "MCP2", "R"])
    (folder / "j.png").write_bytes(grey_png(seed=40))
    rows.append(["j.png", "SGS", "train", "p", "<script>alert(1)</script>", "L"])
    (folder / "m.png").write_bytes(grey_png(seed=41))
    rows.append(["m.png", "SGS'; DROP TABLE items; --", "train", "p", "MCP2", "L"])
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    uploads = [("manifest.csv", buffer.getvalue().encode())]
    uploads += [(p.name, p.read_bytes()) for p in sorted(folder.glob("*.png"))]
    tables = _tables(project)
    report = admin.import_uploads(project, _admin(project), uploads)
    assert report.imported == len(SQL_TEXTS), report.rows
    reasons = " ".join(r["reason"] or "" for r in report.rows if r["status"] == "rejected")
    assert "joint" in reasons and report.rejected == 2
    patients = {i["patient"] for i in project.store.items() if i["source"] == "upload"}
    assert len(patients) == len(SQL_TEXTS)  # pseudonymised: stored as keyed hashes, not the text
    assert not any(t in (p or "") for p in patients for t in SQL_TEXTS)
    _intact(project, tables)


def test_pages_never_render_user_data_as_html():
    sources = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]
    assert len(sources) > 3
    offenders = []
    for path in sources:
        text = path.read_text()
        for match in re.finditer(r"unsafe_allow_html\s*=\s*True", text):
            # allowed only for a literal constant: the call's first argument is a plain string
            start = text.rfind("st.", 0, match.start())
            call = text[start : match.end()]
            if re.search(r"\{|\+|%|format\(|\bf[\"']", call) or not re.search(r"\([\"']", call):
                offenders.append(f"{path.name}: {call[:80]}")
    assert not offenders, offenders
    # and no raw components.html / st.html fed with anything but constants
    for path in sources:
        for line in path.read_text().splitlines():
            if "components.html(" in line or "st.html(" in line:
                assert re.search(r"(components\.html|st\.html)\(\s*[\"']", line), line


def test_audit_log_text_is_never_executed(project):
    tables = _tables(project)
    store = project.store
    for text in SQL_TEXTS:
        store.audit(text, user_id=None, target=text, detail={"q": text})
    rows = store.audit_rows(len(SQL_TEXTS))
    assert {r["action"] for r in rows} == set(SQL_TEXTS)
    _intact(project, tables)
    with pytest.raises(sqlite3.DatabaseError):
        store.conn.execute("DELETE FROM audit_log")
