"""Shared fixtures: every test that touches a project gets its own folder through the env vars."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def env_for(root: Path) -> dict[str, str]:
    """The environment variables that point the app, the CLI and the worker at a project folder."""
    root = Path(root)
    return {
        "RASCORE_DATA": str(root),
        "RASCORE_DB": str(root / "rascore.db"),
        "RASCORE_MODELS": str(root / "models"),
    }


def cli_env(data: Path) -> dict[str, str]:
    """Environment for running a console script or a server against a project folder."""
    return {**os.environ, **env_for(data)}


@pytest.fixture
def project_env(tmp_path, monkeypatch):
    """Point RASCORE_DATA / RASCORE_DB / RASCORE_MODELS at a fresh folder; returns the data folder."""
    data = tmp_path / "project"
    for key, value in env_for(data).items():
        monkeypatch.setenv(key, value)
    return data


@pytest.fixture
def project(project_env):
    """A fresh Project in its own folder."""
    from rascore.project import open_project

    return open_project()
