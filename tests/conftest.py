"""Fixtures every test gets: the widget's remembered settings kept out of the user's config folder.

Test data writers live in ``tests/datafiles.py``; the GUI's fixtures in
``tests/_napari/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_config(tmp_path, monkeypatch) -> Path:
    """Keep the widget's remembered settings out of the user's real config folder."""
    config = tmp_path / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    return config
