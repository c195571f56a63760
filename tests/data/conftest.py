"""Fixtures for the data tests: every test gets its own INFOMAX_HOME, never the real home folder."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def infomax_home(tmp_path, monkeypatch) -> Path:
    """A fresh cache and download folder per test."""
    home = tmp_path / "infomax-home"
    monkeypatch.setenv("INFOMAX_HOME", str(home))
    monkeypatch.delenv("INFOMAX_WORKERS", raising=False)
    return home


@pytest.fixture
def shared_data() -> Path:
    """The real data sets beside the repository (../shared/data), or skip."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not present at {SHARED_DATA}")
    return SHARED_DATA
