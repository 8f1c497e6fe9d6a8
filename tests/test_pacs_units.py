"""The PACS parts that need no server: URLs, credentials, the keyed instance hash, QIDO paging, the
private UID map and where it lives. (The server tests are in test_pacs.py.)"""

from __future__ import annotations

import stat

import pytest

from rascore.config import PacsCredentials, pacs_credentials, settings
from rascore.pacs import PacsError, UidMap, instance_key
from rascore.pacs.connection import clean_url, connect
from rascore.pacs.search import _paged

KEY = bytes(range(32))


def test_urls_are_checked_and_never_carry_credentials():
    assert clean_url(" http://pacs.example:8042/dicom-web/ ") == "http://pacs.example:8042/dicom-web"
    for bad, words in (
        ("", "not an http"),
        ("ftp://pacs.example/dicom-web", "not an http"),
        ("pacs.example/dicom-web", "not an http"),
        ("https://user:secret@pacs.example/dicom-web", "no credentials in the URL"),
        ("https://pacs.example/dicom-web?token=secret", "no query"),
    ):
        with pytest.raises(PacsError) as caught:
            clean_url(bad)
        assert words in str(caught.value) and "secret" not in str(caught.value)


def test_credentials_come_from_the_environment_and_are_never_shown(monkeypatch):
    monkeypatch.setenv("RASCORE_PACS_USER", "reader")
    monkeypatch.setenv("RASCORE_PACS_PASSWORD", "pw-123456")
    monkeypatch.delenv("RASCORE_PACS_TOKEN", raising=False)
    found = pacs_credentials()
    assert (found.user, found.password, found.token) == ("reader", "pw-123456", None)
    assert "pw-123456" not in repr(found)
    session = connect("http://127.0.0.1:9/dicom-web", found).client._session
    assert session.auth == ("reader", "pw-123456")
    token = connect("http://127.0.0.1:9/dicom-web", PacsCredentials(token="tok-abc")).client._session
    assert token.headers["Authorization"] == "Bearer tok-abc" and token.auth is None


def test_instance_key_is_keyed_and_reveals_nothing():
    uid = "1.2.840.113619.2.55.3.604688119.971.1234567890.1"
    first = instance_key(uid, KEY)
    assert len(first) == 64 and uid not in first
    assert instance_key(uid, KEY) == first
    assert instance_key(uid, bytes(32)) != first
    assert instance_key(uid + "1", KEY) != first


def _records(n, start=0):
    return [{"0020000D": {"vr": "UI", "Value": [f"1.2.{i}"]}} for i in range(start, start + n)]


def test_qido_paging_reads_every_page_and_stops_when_offset_is_ignored():
    calls = []

    def honest(offset, limit):
        calls.append(offset)
        return _records(max(0, min(limit, 7 - offset)), offset)

    assert len(_paged(honest, "study", page=3)) == 7 and calls == [0, 3, 6]
    calls.clear()

    def ignores_offset(offset, limit):  # Orthanc 1.10 with ModalitiesInStudy
        calls.append(offset)
        return _records(3)

    assert len(_paged(ignores_offset, "study", page=3)) == 3 and calls == [0, 3]
    with pytest.raises(ValueError):
        _paged(lambda offset, limit: {"not": "a list"}, "study")


def test_uid_map_lives_outside_the_data_folder_owner_only(tmp_path, monkeypatch):
    data = tmp_path / "project"
    monkeypatch.setenv("RASCORE_DATA", str(data))
    monkeypatch.delenv("RASCORE_PACS_UID_MAP", raising=False)
    found = settings()
    assert found.pacs_uid_map == tmp_path / "private" / "project" / "pacs_uid_map.json"
    assert not found.pacs_uid_map.is_relative_to(data)
    with pytest.raises(PacsError, match="outside the data folder"):
        UidMap(data / "private" / "map.json", data)
    monkeypatch.setenv("RASCORE_PACS_UID_MAP", str(tmp_path / "elsewhere" / "map.json"))
    assert settings().pacs_uid_map == tmp_path / "elsewhere" / "map.json"

    uid_map = UidMap(found.pacs_uid_map, data)
    uid_map.add({"a" * 64: {"sop": "1.2.3"}, "b" * 64: {"sop": "1.2.4"}})
    assert stat.S_IMODE(found.pacs_uid_map.stat().st_mode) == 0o600
    assert stat.S_IMODE(found.pacs_uid_map.parent.stat().st_mode) == 0o700
    uid_map.add({"c" * 64: {"sop": "1.2.5"}})
    uid_map.keep_only({"a" * 64}, among={"a" * 64, "b" * 64})
    assert set(uid_map.load()) == {"a" * 64, "c" * 64}
    found.pacs_uid_map.write_text("[]")
    with pytest.raises(PacsError, match="not a PACS UID map"):
        uid_map.load()


def test_cli_takes_no_password_and_a_bad_date_is_one_line(project_env, capsys):
    from rascore.cli import main

    with pytest.raises(SystemExit):
        main(
            ["pacs", "pull", "--url", "http://127.0.0.1:9/dicom-web", "--modality", "SGS", "--password", "x"]
        )
    capsys.readouterr()
    code = main(
        ["pacs", "pull", "--url", "http://127.0.0.1:9/x", "--modality", "SGS", "--since", "2024-02-30"]
    )
    assert code == 2
    assert capsys.readouterr().err == "rascore pacs: '2024-02-30' is not a date; expected YYYY-MM-DD\n"
