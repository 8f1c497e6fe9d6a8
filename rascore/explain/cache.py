"""On-disk cache of explanations: one folder per (model, scan, method and its settings, target grade).

Layout under ``$RASCORE_DATA/explain``::

    <model key>/<subject key>/<method>-<settings>/t<grade>/   meta.json, heatmap.npz, overlay.png, ...
    <model key>/<subject key>/<method>-<settings>/predicted.json   {"target": <predicted grade>}

The model key names one checkpoint (a registered version's id plus a fingerprint of its file, or
the sha256 of an unregistered checkpoint), so a new model version never reads an old entry: the old
entries are stale and ``prune`` removes them. An entry is written into a temporary folder and
renamed into place (a rename never half happens); when two processes race, the first rename wins.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

META = "meta.json"
ALIAS = "predicted.json"
STALE_TMP_SECONDS = 3600
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """A path component made of letters, digits, dot, dash and underscore only."""
    cleaned = _UNSAFE.sub("_", str(text)).strip("._") or "x"
    return cleaned[:120]


class ExplainCache:
    """Explanation folders under ``root`` (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def method_dir(self, model_key: str, subject_key: str, method: str, settings_key: str) -> Path:
        """Folder of one method's entries for one model and scan."""
        return (
            self.root / safe_name(model_key) / safe_name(subject_key) / safe_name(f"{method}-{settings_key}")
        )

    def entry_dir(
        self, model_key: str, subject_key: str, method: str, settings_key: str, target: int
    ) -> Path:
        """Folder of one entry (target grade given)."""
        return self.method_dir(model_key, subject_key, method, settings_key) / f"t{int(target)}"

    def lookup(
        self, model_key: str, subject_key: str, method: str, settings_key: str, target: int | None
    ) -> tuple[Path, dict] | None:
        """(entry folder, meta) of a complete entry, or None. ``target`` None: the predicted grade's entry."""
        method_dir = self.method_dir(model_key, subject_key, method, settings_key)
        if target is None:
            try:
                target = int(json.loads((method_dir / ALIAS).read_text())["target"])
            except (FileNotFoundError, ValueError, KeyError, TypeError):
                return None
        entry = method_dir / f"t{int(target)}"
        try:
            meta = json.loads((entry / META).read_text())
        except (FileNotFoundError, ValueError):
            return None
        if not all((entry / name).is_file() for name in meta.get("files", {}).values()):
            return None
        return entry, meta

    def store(
        self,
        model_key: str,
        subject_key: str,
        method: str,
        settings_key: str,
        target: int,
        meta: dict,
        write_files: Callable[[Path], dict[str, str]],
        predicted: int | None = None,
    ) -> tuple[Path, dict]:
        """Write an entry atomically; ``write_files(folder)`` writes its files and returns {role: name}.

        ``meta`` gets ``files`` added and is written last inside the temporary folder, then the
        folder is renamed into place. ``predicted`` also records this target as the predicted
        grade's entry. If another process stored the same entry first, that one is kept and returned.
        """
        method_dir = self.method_dir(model_key, subject_key, method, settings_key)
        method_dir.mkdir(parents=True, exist_ok=True)
        self._clean_stale(method_dir)
        final = method_dir / f"t{int(target)}"
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=method_dir))
        try:
            files = write_files(tmp)
            meta = {**meta, "files": files}
            (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True))
            try:
                if final.exists():
                    shutil.rmtree(final, ignore_errors=True)  # incomplete or being replaced
                os.rename(tmp, final)
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
                existing = self.lookup(model_key, subject_key, method, settings_key, target)
                if existing is None:
                    raise
                final, meta = existing
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if predicted is not None:
            self._write_alias(method_dir, int(predicted))
        return final, meta

    def _write_alias(self, method_dir: Path, target: int) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=method_dir)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump({"target": target}, handle)
            os.replace(tmp, method_dir / ALIAS)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @staticmethod
    def _clean_stale(folder: Path) -> None:
        """Remove temporary folders a killed process left long ago."""
        for path in folder.glob(".tmp-*"):
            try:
                if time.time() - path.stat().st_mtime > STALE_TMP_SECONDS:
                    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
            except FileNotFoundError:
                pass

    def model_keys(self) -> list[str]:
        """Model keys that have entries."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def prune(self, keep: Iterable[str]) -> list[str]:
        """Delete the entries of every model key not in ``keep`` (stale versions); returns those removed."""
        keep_names = {safe_name(k) for k in keep}
        removed = []
        for name in self.model_keys():
            if name not in keep_names:
                shutil.rmtree(self.root / name, ignore_errors=True)
                removed.append(name)
        return removed
