"""One project folder opened: settings, the store, the media store and the pseudonym key."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from rascore.config import Settings, settings as read_settings
from rascore.store import Store


@dataclass
class Project:
    """Everything a command needs about the project named by RASCORE_DB / RASCORE_DATA."""

    settings: Settings = field(default_factory=read_settings)

    @cached_property
    def store(self) -> Store:
        """The SQLite store (migrated on open)."""
        return Store(self.settings.db_path)

    @cached_property
    def media(self):
        """The content-addressed media store and decoded-array cache."""
        from rascore.media import MediaStore

        return MediaStore(self.settings.media_dir, self.settings.cache_dir)

    @cached_property
    def key(self) -> bytes:
        """Secret of the keyed-hash patient pseudonyms (created on first use, mode 0600)."""
        from rascore.media import load_or_create_key

        return load_or_create_key(self.settings.secret_path)


def open_project(settings: Settings | None = None) -> Project:
    """Open the project of the current environment (or of the given settings)."""
    return Project(settings or read_settings())
