"""Model versions on disk and in the store: ``models_dir/<MODALITY>/v<N>/`` with model.pt and card.md.

A new version is written into a hidden temporary folder, each file atomically, then the folder is
renamed to ``v<N>`` (a rename never half happens) and registered, activated in the same
transaction when the policy says so. Any failure removes what was written: the previous version
stays active and no partial file is visible.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rascore.scale import modality as lookup_modality
from rascore.store import registry
from rascore.train.checkpoint import load_checkpoint, save_checkpoint, write_text_atomic

_VERSION_DIR = re.compile(r"^v(\d+)$")
STALE_TMP_SECONDS = 6 * 3600


@dataclass(frozen=True)
class Published:
    """A registered model version."""

    modality: str
    version: int
    model_version_id: int
    path: Path
    card_path: Path
    activated: bool


def modality_dir(models_dir: Path, modality: str) -> Path:
    """Folder of one modality's versions."""
    return Path(models_dir) / lookup_modality(modality).code


def _highest_dir(root: Path) -> int:
    numbers = [int(m.group(1)) for p in root.iterdir() if (m := _VERSION_DIR.match(p.name))]
    return max(numbers, default=0)


def _clean_stale(root: Path) -> None:
    """Remove temporary folders left by a killed process long ago."""
    for path in root.glob(".tmp-*"):
        try:
            if time.time() - path.stat().st_mtime > STALE_TMP_SECONDS:
                shutil.rmtree(path, ignore_errors=True)
        except FileNotFoundError:
            pass


def publish(
    project,
    checkpoint: dict,
    render_card: Callable[[int], str],
    *,
    activate: str = "if-better",
    job_id: int | None = None,
    user_id: int | None = None,
) -> Published:
    """Write a checkpoint and its card as the next version, register it, maybe activate it."""
    code = lookup_modality(checkpoint["modality"]).code
    models_dir = Path(project.settings.models_dir)
    root = modality_dir(models_dir, code)
    root.mkdir(parents=True, exist_ok=True)
    _clean_stale(root)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    final: Path | None = None
    try:
        save_checkpoint(checkpoint, tmp / "model.pt")
        for _ in range(100):
            version = max(registry.max_version(project.store, code), _highest_dir(root)) + 1
            write_text_atomic(tmp / "card.md", render_card(version))
            try:
                os.rename(tmp, root / f"v{version}")
            except OSError:
                if (root / f"v{version}").exists():
                    continue  # another process took this number first
                raise
            final = root / f"v{version}"
            break
        else:
            raise RuntimeError(f"could not allocate a version folder under {root}")
        rel = final.relative_to(models_dir).as_posix()
        model_version_id, activated = registry.register_version(
            project.store,
            modality=code,
            version=version,
            path=f"{rel}/model.pt",
            card_path=f"{rel}/card.md",
            preset=checkpoint.get("args", {}).get("preset"),
            architecture=checkpoint.get("arch"),
            metrics=checkpoint.get("metrics", {}),
            job_id=job_id,
            activate=activate,
            user_id=user_id,
        )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if final is not None:
            shutil.rmtree(final, ignore_errors=True)
        raise
    return Published(code, version, model_version_id, final / "model.pt", final / "card.md", activated)


def version_files(project, row: dict) -> tuple[Path, Path | None]:
    """Absolute checkpoint and card paths of a registry row."""
    models_dir = Path(project.settings.models_dir)
    card = models_dir / row["card_path"] if row.get("card_path") else None
    return models_dir / row["path"], card


def find_version(project, modality: str, version: int | None = None) -> dict:
    """A registry row: the given version, or the active one; ValueError a user can act on if none."""
    code = lookup_modality(modality).code
    row = (
        registry.get_version(project.store, code, version)
        if version is not None
        else registry.active_version(project.store, code)
    )
    if row is None:
        what = f"version {version}" if version is not None else "active model"
        raise LookupError(f"no {code} {what}; train one with `rascore train --modality {code}`")
    return row


def load_version(project, modality: str, version: int | None = None) -> tuple[dict, dict]:
    """(registry row, checkpoint dict) of a version or of the active one."""
    row = find_version(project, modality, version)
    path, _ = version_files(project, row)
    if not path.is_file():
        raise LookupError(f"checkpoint of {row['modality']} v{row['version']} is missing: {path}")
    return row, load_checkpoint(path)
