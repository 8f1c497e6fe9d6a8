"""A tiny project for the labelling, adjudication and page tests: a few stills and clips of each
modality imported through the real media layer, accounts of each role, two simulated experts who
disagree on some items, and reference labels for the atlas. Builds in about a second."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from rascore import auth
from rascore.config import Settings
from rascore.media import ingest_bytes
from rascore.project import Project
from rascore.store import accounts

PASSWORDS = {
    "demo-admin": "admin-password-1",
    "demo-expert": "expert-password-1",
    "demo-reader": "reader-password-1",
    "reader-two": "reader-password-2",
}
ROLES = {"demo-admin": "admin", "demo-expert": "expert", "demo-reader": "reader", "reader-two": "reader"}


def _frame(rng: np.random.Generator, doppler: bool, height: int = 48, width: int = 64) -> np.ndarray:
    grey = rng.integers(0, 200, size=(height, width), dtype=np.uint8)
    frame = np.repeat(grey[..., None], 3, axis=2)
    if doppler:
        frame[10:20, 20:40] = (255, 140, 0)
    return frame


def _encode(frames: list[np.ndarray]) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    images = [Image.fromarray(f) for f in frames]
    if len(images) == 1:
        images[0].save(buffer, format="PNG")
        return buffer.getvalue(), "png"
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=66, loop=0)
    return buffer.getvalue(), "gif"


def build_project(root: Path, per_modality: int = 4, seed: int = 0, expert_grades: bool = True) -> Project:
    """Create the tiny project in ``root`` (items in id order SGS, DGS, SPD, DPD per round)."""
    root = Path(root)
    settings = Settings(db_path=root / "rascore.db", data_dir=root, models_dir=root / "models", device="cpu")
    project = Project(settings)
    store = project.store
    rng = np.random.default_rng(seed)
    for name, role in ROLES.items():
        auth.add_user(store, name, role, None, PASSWORDS[name], rounds=4)
    experts = {n: accounts.add_user(store, n, "expert", "expert") for n in ("expert-a", "expert-b")}
    k = 0
    for round_ in range(per_modality):
        for code, dynamic, doppler in (
            ("SGS", False, False),
            ("DGS", True, False),
            ("SPD", False, True),
            ("DPD", True, True),
        ):
            frames = [_frame(rng, doppler) for _ in range(4 if dynamic else 1)]
            data, ext = _encode(frames)
            result = ingest_bytes(data, f"item{k}.{ext}", project.media, project.key)
            with store.transaction():
                store.add_media(
                    result.sha256,
                    format=result.format,
                    kind=result.kind,
                    nbytes=len(data),
                    frames=result.frames,
                    height=result.height,
                    width=result.width,
                    fps=result.fps,
                )
                item_id = store.add_item(
                    media_sha256=result.sha256,
                    modality=code,
                    cohort="train" if round_ < per_modality - 1 else "test1",
                    frames=result.frames,
                    fps=result.fps,
                    joint="MCP2",
                    side="R",
                    source="demo",
                )
                sh = round_ % 4
                pd = min(sh, 1) if doppler else None
                if round_ > 0:
                    store.set_reference(item_id, sh, pd, "agreement")
                if not expert_grades:
                    continue
                store.add_annotation(item_id, experts["expert-a"], sh, pd, seconds=5.0)
                # expert-b disagrees on SH in the first round (items 1-4), agrees otherwise
                other_sh = (sh + 1) % 4 if round_ == 0 else sh
                other_pd = min(other_sh, 1) if doppler else None
                store.add_annotation(item_id, experts["expert-b"], other_sh, other_pd, seconds=6.0)
            k += 1
    return project


def add_predictions(project: Project, modality: str, probs: dict[int, list[float]]) -> int:
    """Register an active model version of ``modality`` with stored predictions (plain SQL, so
    these tests do not depend on the training code); returns the version's row id."""
    import json

    from rascore.store import utcnow

    store = project.store
    with store.transaction() as conn:
        version = conn.execute(
            "SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE modality = ?", (modality,)
        ).fetchone()[0]
        cur = conn.execute(
            "INSERT INTO model_versions (modality, version, path, created_at) VALUES (?,?,?,?)",
            (modality, version, "model.pt", utcnow()),
        )
        version_id = int(cur.lastrowid)
        conn.execute(
            "INSERT INTO active_models (modality, model_version_id, changed_at)"
            " VALUES (?,?,?) ON CONFLICT(modality) DO UPDATE SET"
            " model_version_id = excluded.model_version_id",
            (modality, version_id, utcnow()),
        )
        for item_id, p in probs.items():
            conn.execute(
                "INSERT INTO predictions (item_id, model_version_id, grade, probs_json,"
                " created_at) VALUES (?,?,?,?,?)",
                (item_id, version_id, max(range(4), key=p.__getitem__), json.dumps(p), utcnow()),
            )
    return version_id
