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
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

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


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
