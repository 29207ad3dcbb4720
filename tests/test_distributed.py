"""A dask.distributed cluster runs the per-file fingerprint unchanged, with the local run's numbers.

The per-file work is a pure function of (path, mask path, seed, number of samples) that returns a
small picklable record, so ``Client.get_executor()`` is just another ``concurrent.futures``
executor. Worker processes (not threads) prove the records survive pickling.
"""

from __future__ import annotations

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from datafiles import write_image  # noqa: E402
from napari_autoconfig.fingerprint import fingerprint_dataset  # noqa: E402

SHAPES = ((12, 40, 36), (16, 32, 40), (14, 44, 30), (10, 36, 38), (18, 40, 40), (12, 30, 30))


def _write_dataset(root):
    """Six image/mask pairs, ImageJ TIFF and .nii.gz, distinct spacings, labels 0-3."""
    rng = np.random.default_rng(7)
    images, masks = root / "images", root / "masks"
    images.mkdir()
    masks.mkdir()
    for i, shape in enumerate(SHAPES):
        image = rng.normal(800 + 50 * i, 150, shape).clip(0, 65535).astype(np.uint16)
        mask = ((rng.random(shape) < 0.1 + 0.05 * i) * rng.integers(1, 4, shape)).astype(np.uint8)
        if i == 3:
            mask[:] = 0  # an empty mask contributes no samples
        spacing_xyz = (0.5 + 0.125 * i, 0.5, 2.0 + 0.25 * i)
        suffix = ".nii.gz" if i % 2 else ".tif"
        for folder, array in ((images, image), (masks, mask)):
            write_image(folder / f"case_{i}{suffix}", array, spacing_xyz[::-1])
    return images, masks


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def test_dask_cluster_gives_the_local_numbers(tmp_path, client):
    images, masks = _write_dataset(tmp_path)
    local = fingerprint_dataset(images, masks, seed=3, num_samples=500)
    remote = fingerprint_dataset(
        images, masks, seed=3, num_samples=500, executor=client.get_executor()
    )

    # the work did happen on the cluster's two worker processes
    assert len(client.scheduler_info()["workers"]) == 2
    assert remote.num_images == local.num_images == len(SHAPES)
    assert remote.median_size == local.median_size == (13, 38, 37)
    assert remote.median_spacing_xyz == local.median_spacing_xyz
    assert local.median_spacing_xyz == pytest.approx((0.5 + 0.125 * 2.5, 0.5, 2.0 + 0.25 * 2.5))
    for key in ("mean", "std", "perc_005", "perc_995"):
        assert getattr(remote, key) == getattr(local, key), key
    assert 700 < local.mean < 1100
    for mine, theirs in zip(local.records, remote.records, strict=True):
        assert theirs.image == mine.image
        assert theirs.mask_path == mine.mask_path
        assert theirs.foreground == mine.foreground
        assert theirs.samples.dtype == mine.samples.dtype == np.uint16
        np.testing.assert_array_equal(theirs.samples, mine.samples)
    assert local.records[3].foreground == 0 and local.records[3].samples.size == 0
    assert all(r.samples.size == 500 for i, r in enumerate(local.records) if i != 3)
