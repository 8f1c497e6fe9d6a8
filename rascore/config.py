"""Project configuration, read in one place from environment variables with one default each."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATA = "data"


@dataclass(frozen=True)
class Settings:
    """Where the project lives: the SQLite file and the media/cache folder."""

    db_path: Path
    data_dir: Path
    models_dir: Path
    device: str
    pacs_uid_map_path: Path | None = None

    @property
    def pacs_uid_map(self) -> Path:
        """The private map from pulled items back to the PACS's real UIDs (``rascore pacs push``):
        ``$RASCORE_PACS_UID_MAP``, else ``private/<data folder name>/pacs_uid_map.json`` beside the
        data folder, never inside it (backups and exports ship the data folder's contents)."""
        if self.pacs_uid_map_path is not None:
            return self.pacs_uid_map_path
        data = self.data_dir.resolve()
        return data.parent / "private" / data.name / "pacs_uid_map.json"

    @property
    def media_dir(self) -> Path:
        """Content-addressed original files (de-identified), named by sha256."""
        return self.data_dir / "media"

    @property
    def cache_dir(self) -> Path:
        """Decoded-array cache that training reads."""
        return self.data_dir / "cache"

    @property
    def truth_dir(self) -> Path:
        """Ground-truth masks of simulated items."""
        return self.data_dir / "truth"

    @property
    def secret_path(self) -> Path:
        """Key of the keyed-hash patient pseudonyms (never leaves the project folder)."""
        return self.data_dir / "pseudonym.key"


def settings() -> Settings:
    """Read the environment.

    RASCORE_DATA: media store and caches (default ``data/``).
    RASCORE_DB: the SQLite file (default ``$RASCORE_DATA/rascore.db``).
    RASCORE_MODELS: model registry (default ``models/`` for the default project, else
    ``$RASCORE_DATA/models`` so that a project folder is self-contained).
    RASCORE_DEVICE: auto, cpu or cuda (default auto).
    RASCORE_PACS_UID_MAP: the private UID map of PACS pulls (see ``Settings.pacs_uid_map``).
    """
    data_env = os.environ.get("RASCORE_DATA")
    data_dir = Path(data_env or DEFAULT_DATA)
    db_path = Path(os.environ.get("RASCORE_DB") or data_dir / "rascore.db")
    models_default = data_dir / "models" if data_env else Path("models")
    models_dir = Path(os.environ.get("RASCORE_MODELS") or models_default)
    device = os.environ.get("RASCORE_DEVICE", "auto")
    uid_map = os.environ.get("RASCORE_PACS_UID_MAP")
    return Settings(
        db_path=db_path,
        data_dir=data_dir,
        models_dir=models_dir,
        device=device,
        pacs_uid_map_path=Path(uid_map) if uid_map else None,
    )


@dataclass(frozen=True)
class PacsCredentials:
    """How to sign in to a PACS: basic auth (user and password) or a bearer token; never printed."""

    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)


def pacs_credentials() -> PacsCredentials:
    """RASCORE_PACS_USER and RASCORE_PACS_PASSWORD (basic auth), or RASCORE_PACS_TOKEN (a bearer
    token); each unset or empty is None. Never taken from the command line (a process list and a
    shell history show it)."""
    return PacsCredentials(
        user=os.environ.get("RASCORE_PACS_USER") or None,
        password=os.environ.get("RASCORE_PACS_PASSWORD") or None,
        token=os.environ.get("RASCORE_PACS_TOKEN") or None,
    )
