"""Fixtures every test gets (the widget's remembered settings kept out of the user's config
folder), and ``compiled_or_numpy``: a test run once with the compiled loops, once with numpy's.

Test data writers live in ``tests/datafiles.py``; the GUI's fixtures in
``tests/_napari/conftest.py``.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

# The modules that take longest (10 to 20 s each on 2 workers: GUI stories, child processes with
# a napari of their own, the reference fingerprints, the benchmark), longest first.
# pytest-xdist (`--dist loadscope --no-loadscope-reorder`, see scripts/test.sh) hands whole
# modules to its workers in collection order and queues up to three ahead; a long module left at
# the end of that queue keeps one worker busy while the other idles (by default xdist orders
# modules by their number of tests: three one-test child-process stories came last and one
# worker idled 36 s). Starting with these, the run ends on many short modules that even the
# workers out. Other modules keep pytest's order after them.
LONGEST_FIRST = (
    "_napari/test_widget.py",
    "test_one_pass.py",
    "_napari/test_journey.py",
    "_napari/test_drawn_removals.py",  # a child napari
    "test_nnunet_plan.py",
    "_napari/test_gpu_and_datasets.py",
    "_napari/test_intensities_and_objects.py",
    "test_bad_input.py",
    "_napari/test_nothing_escapes.py",
    "test_benchmark_script.py",  # the benchmark script in child processes
    "_napari/test_nnunet_in_the_dock.py",
    "_napari/test_sample_in_the_dock.py",
    "_napari/test_images_table.py",
    "test_memory.py",
    "test_nnunet_export.py",
    "_napari/test_preview.py",
    "_napari/test_boxes.py",
    "_napari/test_fast_clicks.py",  # a child napari
    "test_sample.py",
    "_napari/test_reader.py",
)


def _rank(item: pytest.Item) -> int:
    """Where ``item``'s module stands in LONGEST_FIRST (after all of them when not named)."""
    path = item.path.as_posix()
    for rank, name in enumerate(LONGEST_FIRST):
        if path.endswith("/tests/" + name):
            return rank
    return len(LONGEST_FIRST)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Leave what exists once the tests are collected (napari, Qt, numpy, the test modules: the
    objects every test keeps until the end) out of the garbage collector's full passes.

    napari runs a full ``gc.collect()`` for every layer it removes (every viewer's close removes
    them all) and napari's viewer fixture runs more: each pass walked the 200 000 objects alive
    at collection again (test_widget.py: 30 CPU-s, 24 with them frozen). ``gc.freeze`` only
    moves them out of the passes' way; anything made during the tests is collected as before,
    so napari's leak checks still see what a test leaves behind.
    """
    gc.collect()
    gc.freeze()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the longest modules first (a stable sort: the tests of a module keep their order)."""
    items.sort(key=_rank)


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
