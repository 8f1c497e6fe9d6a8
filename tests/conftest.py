"""Shared fixtures: every test that touches a project gets its own folder through the env vars."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture
def project_env(tmp_path, monkeypatch):
    """Point RASCORE_DATA / RASCORE_DB at a fresh folder; returns the data folder."""
    data = tmp_path / "project"
    monkeypatch.setenv("RASCORE_DATA", str(data))
    monkeypatch.setenv("RASCORE_DB", str(data / "rascore.db"))
    monkeypatch.delenv("RASCORE_MODELS", raising=False)
    return data


@pytest.fixture
def project(project_env):
    """A fresh Project in its own folder."""
    from rascore.project import open_project

    return open_project()


def cli_env(data: Path) -> dict[str, str]:
    """Environment for running the console script against a project folder."""
    env = dict(os.environ)
    env["RASCORE_DATA"] = str(data)
    env["RASCORE_DB"] = str(data / "rascore.db")
    return env
