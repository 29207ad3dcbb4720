"""The napari manifest: one real file in the package (what napari reads through the entry point),
and the copy at the top of the repository kept byte for byte the same.

The package's file used to be a symbolic link to the top-level one: a checkout without link
support (Windows) turned it into a text file holding a path, and napari could not read it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import napari_autoconfig

PACKAGE_MANIFEST = Path(napari_autoconfig.__file__).parent / "napari.yaml"
TOP_MANIFEST = Path(__file__).resolve().parents[1] / "napari.yaml"


def test_the_package_manifest_is_a_real_file():
    assert PACKAGE_MANIFEST.is_file() and not PACKAGE_MANIFEST.is_symlink()


@pytest.mark.skipif(not TOP_MANIFEST.is_file(), reason="not a checkout of the repository")
def test_the_top_level_manifest_is_the_same_bytes():
    assert TOP_MANIFEST.read_bytes() == PACKAGE_MANIFEST.read_bytes(), (
        "napari.yaml and src/napari_autoconfig/napari.yaml differ: edit the package's file "
        "and copy it to the top level"
    )


def test_npe2_reads_the_package_manifest():
    npe2 = pytest.importorskip("npe2")
    manifest = npe2.PluginManifest.from_file(PACKAGE_MANIFEST)
    assert manifest.name == "napari-autoconfig"
    assert manifest.contributions.widgets
