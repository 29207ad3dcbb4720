"""When nnU-Net fails and biom3d does not, the dock says it is nnU-Net's and keeps biom3d's plan.

A user asks for both plans on MetaImage volumes; one file's header gives a z spacing of 0 (a
converter that lost it). biom3d plans from the median spacing and is fine; nnU-Net's planner
refuses a case without a positive spacing. The dock shows biom3d's plan and fingerprint, and says
"nnU-Net's plan failed: ..." naming the case, instead of calling the limits unusable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def write_metaimage(path: Path, array: np.ndarray, spacing_xyz: str) -> Path:
    """A raw MetaImage (.mha) with the header written by hand, so any spacing can be given."""
    kind = {np.dtype(np.uint8): "MET_UCHAR", np.dtype(np.uint16): "MET_USHORT"}[array.dtype]
    z, y, x = array.shape
    header = (
        "ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
        f"ElementSpacing = {spacing_xyz}\nDimSize = {x} {y} {z}\nElementType = {kind}\n"
        "ElementDataFile = LOCAL\n"
    )
    path.write_bytes(header.encode() + array.astype(array.dtype.newbyteorder("<")).tobytes())
    return path


@pytest.fixture
def folders(tmp_path) -> tuple[Path, Path]:
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    for number in range(3):
        image = rng.integers(0, 100, (8, 32, 32)).astype(np.uint16)
        mask = np.zeros(image.shape, np.uint8)
        mask[2:6, 8:24, 8:24] = 1
        spacing = "0.5 0.5 0" if number == 1 else "0.5 0.5 2"  # case 1 lost its z step
        write_metaimage(images / f"case_{number}.mha", image, spacing)
        write_metaimage(masks / f"case_{number}.mha", mask, spacing)
    return images, masks


def test_nnunets_planner_failing_keeps_biom3ds_plan_and_says_whose_failure_it_is(
    make_napari_viewer, dock_widget, run_and_wait, folders
):
    viewer = make_napari_viewer(show=True)
    widget = dock_widget(viewer)
    widget["images"].value, widget["masks"].value = folders
    widget["planner"].value = "both"

    assert run_and_wait(widget) == "done"

    assert widget.result is not None and widget.result.num_images == 3  # biom3d's fingerprint
    assert widget.plan is not None and widget.snippet  # and its plan, exportable
    assert widget.training.nnunet is None
    status = widget["status"].value
    assert status.startswith("nnU-Net's plan failed: The case 'case_1'"), status
    assert "biom3d's plan stands" in status
    assert "These limits cannot be used" not in status
    assert "nnU-Net's plan failed: The case 'case_1'" in widget["notes"].value
    assert widget["plan_table"].native.isVisible()  # biom3d's own table, not the comparison

    # a limit changed: biom3d plans again, nnU-Net's failure still said, never the limits'
    widget["max_batch"].value = 4
    assert widget.plan is not None and widget.plan.batch <= 4
    assert "nnU-Net's plan failed" in widget["notes"].value
