"""Fixtures every test gets (the widget's remembered settings kept out of the user's config
folder), and ``compiled_or_numpy``: a test run once with the compiled loops, once with numpy's.

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


@pytest.fixture(params=["compiled", "numpy"])
def compiled_or_numpy(request, monkeypatch) -> str:
    """Run the test with the compiled loops (mask pass, draw, gather), then again with numpy's
    (the fallback where the package was installed without a C compiler): both must give
    biom3d's numbers."""
    from napari_autoconfig import _compiled

    if request.param == "compiled" and _compiled.loops is None:
        pytest.skip("the compiled loops were not built (no C compiler at install)")
    if request.param == "numpy":
        monkeypatch.setattr(_compiled, "loops", None)
    return request.param
