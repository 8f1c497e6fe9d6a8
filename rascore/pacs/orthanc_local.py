"""Start a throw-away local Orthanc with its DICOMweb plugin: for the tests, the benchmark and a
quick start (docs/PACS.md). Not a service: the process lives as long as the ``LocalOrthanc``.

It listens on 127.0.0.1 only (``RemoteAccessAllowed`` false), on free ports, with its storage and
index in the folder given; ``users`` turns on HTTP basic authentication. ``start`` waits until
``/system`` answers (polling, with a deadline), ``stop`` ends the process and ``restart`` starts
it again on the same folder and ports (what a test of a server that goes away needs).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from rascore.ports import free_port

ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
INSTALL_HINT = "install Debian's orthanc and orthanc-dicomweb (`make orthanc` as root)"


class OrthancMissing(RuntimeError):
    """Orthanc or its DICOMweb plugin is not installed."""


def installed() -> str | None:
    """None when Orthanc and the DICOMweb plugin are there, else what is missing."""
    binary = ORTHANC if Path(ORTHANC).is_file() else shutil.which("Orthanc")
    if not binary:
        return f"{ORTHANC} not found: {INSTALL_HINT}"
    if not Path(DICOMWEB_PLUGIN).exists():
        return f"{DICOMWEB_PLUGIN} not found: {INSTALL_HINT}"
    return None


@dataclass
class LocalOrthanc:
    """A running local Orthanc: ``rest`` is its REST root, ``url`` its DICOMweb root."""

    folder: Path
    http_port: int
    dicom_port: int
    users: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def rest(self) -> str:
        """The REST API's root."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def url(self) -> str:
        """The DICOMweb root."""
        return f"{self.rest}/dicom-web"

    @property
    def auth(self) -> tuple[str, str] | None:
        """The first user's (name, password) for the REST API, or None without authentication."""
        return next(iter(self.users.items()), None)

    def config(self) -> dict:
        """The configuration file's content."""
        return {
            "Name": "rascore-test",
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "index"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": bool(self.users),
            "RegisteredUsers": dict(self.users),
            "Plugins": [DICOMWEB_PLUGIN],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "HttpTimeout": 30,
            "StableAge": 1,
        }

    def start(self, timeout_s: float = 30.0) -> LocalOrthanc:
        """Start the process and wait (polling ``/system``) until it answers."""
        problem = installed()
        if problem:
            raise OrthancMissing(problem)
        import requests

        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "orthanc.json"
        config.write_text(json.dumps(self.config(), indent=1))
        log = open(self.folder / "orthanc.log", "ab")
        binary = ORTHANC if Path(ORTHANC).is_file() else shutil.which("Orthanc")
        self.process = subprocess.Popen([binary, str(config)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout_s
        delay = 0.02
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"Orthanc exited with code {self.process.returncode}; see {self.folder / 'orthanc.log'}"
                )
            try:
                if requests.get(f"{self.rest}/system", auth=self.auth, timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Orthanc did not answer within {timeout_s:.0f} s")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def stop(self) -> None:
        """End the process (terminate, then kill after a few seconds)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        """End the process at once (a server that crashes)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> LocalOrthanc:
        """Start again on the same folder and ports (stopping first if it still runs)."""
        self.stop()
        return self.start()

    def upload(self, data: bytes) -> dict:
        """POST one DICOM file to ``/instances``; the answer (ID, Status)."""
        import requests

        response = requests.post(f"{self.rest}/instances", data=data, auth=self.auth, timeout=30)
        response.raise_for_status()
        return response.json()

    def __enter__(self) -> LocalOrthanc:
        return self if self.process is not None else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def local_orthanc(folder: str | Path, users: dict[str, str] | None = None) -> LocalOrthanc:
    """A LocalOrthanc on free ports in ``folder`` (not started: call ``start`` or use ``with``)."""
    return LocalOrthanc(Path(folder), free_port(), free_port(), dict(users or {}))


#: real ultrasound files of pydicom and pydicom-data (single-frame, multi-frame, RLE, JPEG 2000,
#: JPEG YBR cine), the ones the tests and the benchmark load: name -> frames
SAMPLES: dict[str, int] = {
    "US1_UNCR.dcm": 1,
    "US1_J2KR.dcm": 1,
    "examples_rgb_color.dcm": 1,
    "examples_jpeg2k.dcm": 1,
    "OBXXXX1A_2frame.dcm": 2,
    "OBXXXX1A_rle_2frame.dcm": 2,
    "examples_ybr_color.dcm": 30,
}


@dataclass
class Sample:
    """One instance loaded into a local Orthanc: where it came from and what was sent."""

    name: str
    copy: int
    frames: int
    data: bytes
    study_uid: str
    series_uid: str
    sop_uid: str


def sample_bytes(name: str, copy: int = 0) -> Sample:
    """A pydicom / pydicom-data test file as an instance of its own: copy 0 keeps the original
    Study and Series UIDs, copy n > 0 gets new ones (derived from the originals and n, so one
    original study stays one study per copy), and every copy gets a SOP Instance UID of its own
    (some of the originals share one: the RLE and JPEG 2000 versions of the same image)."""
    import io

    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    path = get_testdata_file(name)
    if path is None:
        raise FileNotFoundError(f"{name} is not in pydicom or pydicom-data (install pydicom-data)")
    ds = pydicom.dcmread(path)
    if copy:
        ds.StudyInstanceUID = generate_uid(entropy_srcs=[str(ds.StudyInstanceUID), str(copy)])
        ds.SeriesInstanceUID = generate_uid(entropy_srcs=[str(ds.SeriesInstanceUID), str(copy)])
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[name, str(copy), "sop"])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return Sample(
        name=name,
        copy=copy,
        frames=SAMPLES.get(name) or int(ds.get("NumberOfFrames") or 1),
        data=buffer.getvalue(),
        study_uid=str(ds.StudyInstanceUID),
        series_uid=str(ds.SeriesInstanceUID),
        sop_uid=str(ds.SOPInstanceUID),
    )


def load_samples(
    server: LocalOrthanc, copies: int = 1, names: tuple[str, ...] = tuple(SAMPLES)
) -> list[Sample]:
    """Upload ``copies`` copies of each sample through ``POST /instances``; what was sent."""
    loaded = []
    for copy in range(copies):
        for name in names:
            sample = sample_bytes(name, copy)
            answer = server.upload(sample.data)
            if answer.get("Status") not in ("Success", "AlreadyStored"):
                raise RuntimeError(f"Orthanc did not store {name}: {answer}")
            loaded.append(sample)
    return loaded
