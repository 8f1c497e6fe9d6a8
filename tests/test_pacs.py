"""Pull from and push to a real PACS: a local Orthanc with its DICOMweb plugin, started by this
module (one server for the module, basic auth on, 127.0.0.1 only) and loaded with the ultrasound
files of pydicom and pydicom-data (single-frame, multi-frame, RLE, JPEG 2000, YBR cine).

Orthanc missing: the tests FAIL when run as root (``make test`` installs it: ``make orthanc``),
and are skipped only for a user who could not have installed it.
"""

from __future__ import annotations

import http.server
import io
import json
import sqlite3
import stat
import threading
from pathlib import Path

import pydicom
import pytest
import requests

from rascore.cli import main
from rascore.pacs import orthanc_local
from rascore.ports import free_port
from tests.orthanc_gate import need_orthanc
from rascore.pacs.orthanc_local import SAMPLES, Sample, load_samples, sample_bytes
from tests.fixtures_media import identifying_values

USER, PASSWORD = "rascore-test", "a-test-password"
US1 = ("US1_UNCR.dcm", "US1_J2KR.dcm", "examples_rgb_color.dcm", "examples_jpeg2k.dcm")
MULTI = ("OBXXXX1A_2frame.dcm", "OBXXXX1A_rle_2frame.dcm", "examples_ybr_color.dcm")


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    """A running local Orthanc loaded with the samples (and a study holding a corrupt instance)."""
    need_orthanc()
    server = orthanc_local.local_orthanc(tmp_path_factory.mktemp("orthanc"), {USER: PASSWORD}).start()
    try:
        server.samples = load_samples(server)
        server.bad = _load_bad_study(server)
        yield server
    finally:
        server.stop()


def _load_bad_study(server) -> list[Sample]:
    """A study (1999) with one good instance and one whose pixel data is cut short."""
    out = []
    for index, cut in enumerate((False, True)):
        sample = sample_bytes("US1_UNCR.dcm", copy=100)
        ds = pydicom.dcmread(io.BytesIO(sample.data))
        ds.StudyDate = "19990101"
        ds.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=["corrupt study", str(index)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if cut:
            ds.PixelData = ds.PixelData[: len(ds.PixelData) // 3]
        buffer = io.BytesIO()
        ds.save_as(buffer)
        answer = server.upload(buffer.getvalue())
        assert answer["Status"] == "Success", answer
        out.append(
            Sample(
                "US1_UNCR.dcm",
                100,
                1,
                buffer.getvalue(),
                ds.StudyInstanceUID,
                ds.SeriesInstanceUID,
                ds.SOPInstanceUID,
            )
        )
    return out


@pytest.fixture
def creds(monkeypatch):
    monkeypatch.setenv("RASCORE_PACS_USER", USER)
    monkeypatch.setenv("RASCORE_PACS_PASSWORD", PASSWORD)
    monkeypatch.delenv("RASCORE_PACS_TOKEN", raising=False)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["pacs", *argv, "--quiet", "--retries", "0", "--timeout", "10"])
    out, err = capsys.readouterr()
    return code, out, err


def study_of(samples, names) -> list[str]:
    return sorted({s.study_uid for s in samples if s.name in names})


def studies_args(uids) -> list[str]:
    return [arg for uid in uids for arg in ("--study", uid)]


def items(data: Path) -> list[dict]:
    conn = sqlite3.connect(data / "rascore.db")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM items ORDER BY id")]
    finally:
        conn.close()


# ------------------------------------------------------------------ pull
def test_full_pull_imports_every_instance_without_identity_and_a_second_pull_nothing(
    orthanc, project_env, creds, capsys
):
    samples = orthanc.samples
    code, out, err = run(
        capsys, "pull", "--url", orthanc.url, *studies_args(study_of(samples, US1)), "--modality", "SGS"
    )
    assert code == 0, err
    assert out.strip() == "imported 4, duplicates 0, rejected 0, already imported 0"
    # the multi-frame studies found by date and modality in study (the corrupt study is from 1999)
    code, out, err = run(
        capsys,
        "pull",
        "--url",
        orthanc.url,
        "--since",
        "2000-01-01",
        "--modality-tag",
        "US",
        *studies_args(study_of(samples, MULTI)),
        "--modality",
        "DGS",
        "--cohort",
        "test1",
    )
    assert code == 0, err
    assert out.strip() == "imported 3, duplicates 0, rejected 0, already imported 0"
    rows = items(project_env)
    assert len(rows) == len(SAMPLES)
    assert sorted(r["frames"] for r in rows) == sorted(SAMPLES.values())
    assert {r["modality"] for r in rows if r["frames"] > 1} == {"DGS"}
    assert all(r["patient"] and r["patient"].startswith("pt-") for r in rows)

    # nothing identifying anywhere under the data folder, database included
    secrets: set[str] = set()
    for sample in samples:
        original = project_env.parent / f"original-{sample.name}"
        original.write_bytes(sample.data)
        secrets |= identifying_values(original)
        original.unlink()
    assert {"13US1", "BAPTIST"} <= secrets  # patient ID and institution of the US1 files
    leaks = []
    for file in project_env.rglob("*"):
        if file.is_file():
            body = file.read_bytes()
            leaks += [(file.name, s) for s in secrets if s.encode() in body]
    assert leaks == []

    # the real UIDs are in the private map, outside the data folder, readable by the owner only
    uid_map = project_env.resolve().parent / "private" / project_env.name / "pacs_uid_map.json"
    assert stat.S_IMODE(uid_map.stat().st_mode) == 0o600
    assert stat.S_IMODE(uid_map.parent.stat().st_mode) == 0o700
    mapped = {v["sop"] for v in json.loads(uid_map.read_text())["instances"].values()}
    assert mapped == {s.sop_uid for s in samples}

    # a second pull imports nothing new and downloads nothing
    code, out, err = run(
        capsys, "pull", "--url", orthanc.url, *studies_args(study_of(samples, US1)), "--modality", "SGS"
    )
    assert code == 0, err
    assert out.strip() == "imported 0, duplicates 0, rejected 0, already imported 4"
    assert len(items(project_env)) == len(SAMPLES)


def test_server_stopped_mid_pull_leaves_a_consistent_store_and_the_next_pull_completes(
    orthanc, project, creds
):
    from rascore import pacs
    from rascore.config import pacs_credentials

    def open_studies():
        connection = pacs.connect(orthanc.url, pacs_credentials(), retries=0, timeout=5)
        studies = pacs.search_studies(connection, study_uids=study_of(orthanc.samples, US1))
        return connection, studies

    connection, studies = open_studies()
    seen = []

    def crash_after_two(entry, status, reason, item_id):
        seen.append(status)
        if len(seen) == 2:
            orthanc.kill()

    try:
        first = pacs.pull(project, connection, studies, "SGS", "train", on_result=crash_after_two)
    finally:
        if orthanc.process is None:
            orthanc.restart()
    assert first.stopped and "cannot connect" in first.stopped and orthanc.url in first.stopped
    assert first.report.imported and len(first.report.imported) == 2
    store = project.store
    # consistent: every pulled hash has its item, every item its media file and cache, nothing else
    assert store.value("SELECT count(*) FROM pacs_instances") == 2
    assert (
        store.value(
            "SELECT count(*) FROM pacs_instances p LEFT JOIN items i ON i.id = p.item_id WHERE i.id IS NULL"
        )
        == 0
    )
    media = [r["sha256"] for r in store.rows("SELECT sha256 FROM media")]
    files = sorted(p.name.split(".")[0] for p in project.settings.media_dir.rglob("*") if p.is_file())
    assert files == sorted(media)
    assert all(project.media.has_cache(sha) for sha in media)
    assert not [p for p in project.settings.data_dir.rglob(".*tmp*")]

    connection, studies = open_studies()
    second = pacs.pull(project, connection, studies, "SGS", "train")
    assert second.stopped is None and second.report.ok
    assert (len(second.report.imported), second.skipped) == (2, 2)
    assert store.value("SELECT count(*) FROM items") == 4


def test_answer_cut_half_way_stops_the_pull_and_the_next_completes(orthanc, project_env, creds, capsys):
    us1 = [s for s in orthanc.samples if s.name in US1]
    cut = us1[1]
    handler = type("Cut", (_CutProxy,), {"target": orthanc.rest, "bad_sop": cut.sop_uid})
    proxy = _serve(handler)
    try:
        url = f"http://127.0.0.1:{proxy.server_address[1]}/dicom-web"
        code, out, err = run(
            capsys, "pull", "--url", url, *studies_args(study_of(us1, US1)), "--modality", "SGS"
        )
    finally:
        proxy.shutdown()
    assert code == 1 and "Traceback" not in err
    stopped = [line for line in err.splitlines() if line.startswith("stopped:")]
    assert len(stopped) == 1 and "broke during the answer" in stopped[0] and cut.sop_uid not in stopped[0]
    done = int(out.split("imported ")[1].split(",")[0])
    assert done < len(us1) and len(items(project_env)) == done
    code, out, err = run(
        capsys, "pull", "--url", orthanc.url, *studies_args(study_of(us1, US1)), "--modality", "SGS"
    )
    assert code == 0, err
    assert out.strip() == f"imported {len(us1) - done}, duplicates 0, rejected 0, already imported {done}"


# ------------------------------------------------------------------ errors: one line each
def test_wrong_credentials_one_line(orthanc, project_env, monkeypatch, capsys):
    monkeypatch.setenv("RASCORE_PACS_USER", USER)
    monkeypatch.setenv("RASCORE_PACS_PASSWORD", "not-the-password")
    code, out, err = run(capsys, "pull", "--url", orthanc.url, "--modality", "SGS")
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert orthanc.url in err and "401" in err and "RASCORE_PACS_USER" in err
    assert "not-the-password" not in err


def test_bad_url_one_line(orthanc, project_env, creds, capsys):
    code, out, err = run(capsys, "pull", "--url", orthanc.rest + "/no-dicom-web", "--modality", "SGS")
    assert code == 2 and err.count("\n") == 1
    assert "404" in err and "/no-dicom-web" in err
    closed = f"http://127.0.0.1:{free_port()}/dicom-web"
    code, out, err = run(capsys, "pull", "--url", closed, "--modality", "SGS")
    assert code == 2 and err.count("\n") == 1
    assert closed in err and "cannot connect" in err
    code, out, err = run(capsys, "pull", "--url", "pacs.example/dicom-web", "--modality", "SGS")
    assert code == 2 and "not an http:// or https:// URL" in err
    code, out, err = run(capsys, "pull", "--url", f"http://{USER}:{PASSWORD}@127.0.0.1/", "--modality", "SGS")
    assert code == 2 and PASSWORD not in err and "no credentials in the URL" in err


class _Html(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        body = b"<html><body>Welcome to the hospital intranet</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _Proxy(http.server.BaseHTTPRequestHandler):
    """Forwards to Orthanc, except that one instance is answered with a web page."""

    target = ""
    bad_sop = ""

    def do_GET(self):  # noqa: N802
        if self.bad_sop in self.path and "/instances/" in self.path:
            return _Html.do_GET(self)
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "authorization")}
        answer = requests.get(self.target + self.path, headers=headers, timeout=10)
        self.send_response(answer.status_code)
        self.send_header("Content-Type", answer.headers.get("Content-Type", "application/octet-stream"))
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    def log_message(self, *args):
        pass


class _CutProxy(_Proxy):
    """Forwards to Orthanc, except that the answer for one instance stops half way (a server that
    dies while sending)."""

    def do_GET(self):  # noqa: N802
        if not (self.bad_sop in self.path and "/instances/" in self.path):
            return _Proxy.do_GET(self)
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "authorization")}
        answer = requests.get(self.target + self.path, headers=headers, timeout=10)
        self.send_response(200)
        self.send_header("Content-Type", answer.headers["Content-Type"])
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content[: len(answer.content) // 2])
        self.wfile.flush()
        self.close_connection = True


def _serve(handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_non_dicom_answers_one_line_and_the_batch_goes_on(orthanc, project_env, creds, capsys):
    html = _serve(_Html)
    try:
        url = f"http://127.0.0.1:{html.server_address[1]}/dicom-web"
        code, out, err = run(capsys, "pull", "--url", url, "--modality", "SGS")
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
        assert url in err and "not DICOMweb" in err
    finally:
        html.shutdown()
    bad = next(s for s in orthanc.samples if s.name == "US1_J2KR.dcm")
    handler = type("Proxy", (_Proxy,), {"target": orthanc.rest, "bad_sop": bad.sop_uid})
    proxy = _serve(handler)
    try:
        url = f"http://127.0.0.1:{proxy.server_address[1]}/dicom-web"
        code, out, err = run(
            capsys, "pull", "--url", url, *studies_args(study_of(orthanc.samples, US1)), "--modality", "SGS"
        )
    finally:
        proxy.shutdown()
    assert code == 1, err
    assert out.strip() == "imported 3, duplicates 0, rejected 1, already imported 0"
    rejected = [line for line in err.splitlines() if line.startswith("rejected")]
    assert len(rejected) == 1 and "not a DICOM instance" in rejected[0] and bad.sop_uid not in rejected[0]


def test_instance_that_decodes_badly_one_line_and_the_batch_goes_on(orthanc, project_env, creds, capsys):
    code, out, err = run(
        capsys,
        "pull",
        "--url",
        orthanc.url,
        "--study",
        orthanc.bad[0].study_uid,
        "--modality",
        "SGS",
        "--no-uid-map",
    )
    assert code == 1
    assert out.strip() == "imported 1, duplicates 0, rejected 1, already imported 0"
    rejected = [line for line in err.splitlines() if line.startswith("rejected")]
    assert len(rejected) == 1 and "Traceback" not in err
    assert "pixel data has" in rejected[0] and "(1999-01-01)" in rejected[0]
    from rascore.config import settings

    assert not settings().pacs_uid_map.exists()  # --no-uid-map: no link back to the PACS
    assert len(items(project_env)) == 1
    # the rejected instance is tried again next time (it is not marked as pulled), the good one is not
    code, out, err = run(
        capsys, "pull", "--url", orthanc.url, "--study", orthanc.bad[0].study_uid, "--modality", "SGS"
    )
    assert out.strip() == "imported 0, duplicates 0, rejected 1, already imported 1"


# ------------------------------------------------------------------ the Admin page's service
def test_service_search_shows_no_identity_and_imports_with_the_upload_report(orthanc, project, creds):
    from rascore.permissions import PermissionDenied
    from rascore.services import pacs as service
    from rascore.store import accounts

    accounts.add_user(project.store, "pacs-admin", "admin")
    admin = accounts.user(project.store, "pacs-admin")
    reader = {
        "id": accounts.add_user(project.store, "pacs-reader", "reader"),
        "name": "pacs-reader",
        "role": "reader",
    }
    with pytest.raises(PermissionDenied):
        service.search(reader, orthanc.url)
    studies = service.search(admin, orthanc.url, since="2000-01-01", modality_tag="US")
    rows = service.rows(studies)
    assert sorted(rows, key=lambda r: r["date"]) == [
        {"date": "2004-08-26", "modalities": "US", "instances": 4, "frames": 4},
        {"date": "2011-05-25", "modalities": "US", "instances": 2, "frames": 4},
        {"date": "2016-05-03", "modalities": "US", "instances": 1, "frames": 30},
    ]
    seen = []
    chosen = [s for s in studies if s.date.year > 2010]
    with pytest.raises(PermissionDenied):
        service.import_studies(project, reader, orthanc.url, chosen, "DGS", "test2")
    report = service.import_studies(
        project, admin, orthanc.url, chosen, "DGS", "test2", on_result=lambda d, t, r: seen.append((d, t))
    )
    assert (report.imported, report.duplicates, report.rejected) == (3, 0, 0)
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert report.notes[0] == "Already imported before: 0."
    assert project.store.audit_rows()[0]["action"] == "import.pacs"


# ------------------------------------------------------------------ push
def test_push_stores_an_sr_that_references_the_original(orthanc, project, creds, capsys):
    from rascore.store import registry

    code, out, err = run(
        capsys,
        "pull",
        "--url",
        orthanc.url,
        *studies_args(study_of(orthanc.samples, US1)),
        "--modality",
        "SGS",
    )
    assert code == 0, err
    store = project.store
    ids = [r["id"] for r in store.rows("SELECT id FROM items ORDER BY id")]
    store.set_reference(ids[0], 2, None, "adjudication", modality="SGS")
    version_id, active = registry.register_version(
        store,
        modality="SGS",
        version=1,
        path="models/sgs-v1",
        card_path=None,
        preset=None,
        architecture=None,
        metrics={},
        activate="always",
    )
    assert active
    registry.save_predictions(store, version_id, [(ids[1], 1, [0.1, 0.6, 0.2, 0.1])])

    code, out, err = run(capsys, "push", "--url", orthanc.url, "--modality", "SGS")
    assert code == 0, err
    assert out.strip() == "stored 2 reports, no UID mapping 0, failed 0"
    auth = (USER, PASSWORD)
    found = requests.post(
        f"{orthanc.rest}/tools/find",
        json={"Level": "Instance", "Query": {"Modality": "SR"}},
        auth=auth,
        timeout=10,
    ).json()
    assert len(found) == 2
    mapping = json.loads(project.settings.pacs_uid_map.read_text())["instances"]
    by_sop = {v["sop"]: v for v in mapping.values()}
    reports = {}
    for orthanc_id in found:
        data = requests.get(f"{orthanc.rest}/instances/{orthanc_id}/file", auth=auth, timeout=10).content
        sr = pydicom.dcmread(io.BytesIO(data))
        source = sr.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
        assert source in by_sop and sr.StudyInstanceUID == by_sop[source]["study"]
        reports[source] = sr
    texts = []
    for sr in reports.values():
        for container in sr.ContentSequence[1:]:
            for item in container.ContentSequence:
                name = item.ConceptNameCodeSequence[0].CodeMeaning
                if "MeasuredValueSequence" in item:
                    texts.append((name, float(item.MeasuredValueSequence[0].NumericValue)))
                else:
                    texts.append((name, item.TextValue))
    assert ("Synovial hypertrophy grade (EOSS)", 2.0) in texts  # the reference
    assert ("How the reference was decided", "adjudication") in texts
    assert ("Model version", "SGS v1") in texts
    assert ("Synovial hypertrophy grade (EOSS)", 1.0) in texts  # the model's grade
    assert ("Probability of grade 1", 0.6) in texts
    # the same results pushed again are the same reports: the server still holds two
    code, out, err = run(capsys, "push", "--url", orthanc.url, "--modality", "SGS")
    assert code == 0, err
    again = requests.post(
        f"{orthanc.rest}/tools/find",
        json={"Level": "Instance", "Query": {"Modality": "SR"}},
        auth=auth,
        timeout=10,
    ).json()
    assert sorted(again) == sorted(found)
    # without the private map, nothing can be pushed
    project.settings.pacs_uid_map.unlink()
    code, out, err = run(capsys, "push", "--url", orthanc.url, "--modality", "SGS")
    assert out.strip() == "stored 0 reports, no UID mapping 2, failed 0"


# ------------------------------------------------------------------ the Admin page's PACS tab
def test_admin_page_pacs_tab_shows_studies_without_identity(orthanc, tmp_path, monkeypatch, creds):
    from rascore import auth
    from rascore.services import session
    from tests.apptest import assert_page_ok, texts
    from tests.conftest import env_for
    from tests.test_pages_app import page_as

    for key, value in env_for(tmp_path / "p").items():
        monkeypatch.setenv(key, value)
    project = session.shared_project()
    auth.add_user(project.store, "pacs-admin", "admin", None, "a-long-password", rounds=4)
    at = page_as(project, "pacs-admin", "pages/admin.py")
    assert_page_ok(at)
    assert "Basic auth as the user in RASCORE_PACS_USER" in texts(at) and PASSWORD not in texts(at)
    at.text_input(key="admin.pacs.url").input(orthanc.url)
    at.text_input(key="admin.pacs.tag").input("US")
    next(b for b in at.button if b.label == "Search").click().run()
    assert_page_ok(at)
    table = next(d.value for d in at.dataframe if "frames" in d.value.columns)
    assert list(table.columns) == ["import", "date", "modalities", "instances", "frames"]
    assert sorted(table["date"].tolist()) == ["1999-01-01", "2004-08-26", "2011-05-25", "2016-05-03"]
    page = texts(at) + table.to_csv()
    secrets = {
        "13US1",
        "CompressedSamples",
        "BAPTIST",
        orthanc.samples[0].study_uid,
        orthanc.samples[0].sop_uid,
    }
    assert not [s for s in secrets if s in page]
