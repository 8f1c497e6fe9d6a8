"""Project configuration, read in one place from environment variables with one default each."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA = "data"


@dataclass(frozen=True)
class Settings:
    """Where the project lives: the SQLite file and the media/cache folder."""

    db_path: Path
    data_dir: Path
    models_dir: Path
    device: str

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
    """
    data_env = os.environ.get("RASCORE_DATA")
    data_dir = Path(data_env or DEFAULT_DATA)
    db_path = Path(os.environ.get("RASCORE_DB") or data_dir / "rascore.db")
    models_default = data_dir / "models" if data_env else Path("models")
    models_dir = Path(os.environ.get("RASCORE_MODELS") or models_default)
    device = os.environ.get("RASCORE_DEVICE", "auto")
    return Settings(db_path=db_path, data_dir=data_dir, models_dir=models_dir, device=device)
