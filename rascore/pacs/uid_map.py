"""The private map from pulled instances back to the PACS's real UIDs, kept outside the store.

The de-identified store holds only ``HMAC(project key, SOP Instance UID)`` per pulled instance
(``rascore.store.pacs``). ``rascore pacs push`` must name the original instance in the report it
sends back, so the real Study, Series and SOP Instance UIDs (and the SOP Class) of each pulled
instance are kept here, keyed by that hash, in one JSON file:

- where ``Settings.pacs_uid_map`` says (``$RASCORE_PACS_UID_MAP``, else
  ``private/<data folder>/pacs_uid_map.json`` beside the data folder); a path inside the data
  folder is refused, so a backup, an export or a copy of the data folder never carries it;
- the file is mode 0600 and its folder 0700 (created so): only the account that runs rascore
  (and root) can read it; the admin decides who else, by file permissions, as for the key;
- written atomically (``rascore.atomic``) under an exclusive lock, so two pulls never lose each
  other's entries; entries of instances that did not end up in the store are pruned after a pull.

Deleting the file removes the link back to the hospital's records: pulls still work (and write
new entries), pushes of the instances it named are no longer possible.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from rascore.atomic import write_atomic

from .connection import PacsError

VERSION = 1


class UidMap:
    """The map file at ``path``; ``data_dir`` is the project's data folder it must stay out of."""

    def __init__(self, path: Path, data_dir: Path | None = None) -> None:
        self.path = Path(path).expanduser().resolve()
        if data_dir is not None:
            data = Path(data_dir).resolve()
            if self.path.is_relative_to(data):
                raise PacsError(
                    f"{self.path}: the PACS UID map must live outside the data folder {data} "
                    "(set RASCORE_PACS_UID_MAP to a private path)"
                )

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(self.path.parent, 0o700)
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _read(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise PacsError(f"{self.path}: the PACS UID map cannot be read ({exc})") from None
        instances = data.get("instances") if isinstance(data, dict) else None
        if not isinstance(instances, dict):
            raise PacsError(f"{self.path}: not a PACS UID map")
        return instances

    def _write(self, instances: Mapping[str, dict]) -> None:
        body = json.dumps({"version": VERSION, "instances": dict(sorted(instances.items()))}, indent=1)
        write_atomic(self.path, body.encode("utf-8"))  # mkstemp: mode 0600
        os.chmod(self.path, 0o600)

    def load(self) -> dict[str, dict]:
        """hash -> {"study", "series", "sop", "sop_class"}."""
        return self._read()

    def add(self, entries: Mapping[str, dict]) -> None:
        """Add (or refresh) entries, keeping the rest."""
        if not entries:
            return
        with self._locked():
            current = self._read()
            current.update(entries)
            self._write(current)

    def keep_only(self, hashes: set[str], among: set[str]) -> None:
        """Drop the entries of ``among`` that are not in ``hashes`` (instances that never made it
        into the store); entries outside ``among`` are left alone."""
        with self._locked():
            current = self._read()
            drop = [h for h in among if h in current and h not in hashes]
            if drop:
                for h in drop:
                    del current[h]
                self._write(current)
