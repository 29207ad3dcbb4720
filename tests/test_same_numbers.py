"""One dataset, every way users store it: the same numbers whatever the names, layout or format."""

from __future__ import annotations

import numpy as np
import tifffile

from datafiles import serve_folder, write_dataset, write_image, write_nnunet, write_ome_zarr
from napari_autoconfig import auto_config as ac


def test_names_layouts_and_formats_all_give_the_same_numbers(tmp_path):
    images, masks = write_dataset(tmp_path / "tiff")
    arrays = {
        p.stem: (tifffile.imread(p), tifffile.imread(masks / p.name))
        for p in sorted(images.iterdir())
    }
    expected = ac.data_fingerprint(images, masks)
    # NIfTI, masks named by convention; NIfTI, masks named only by position
    for name, mask_name in (("conv", "{}_seg"), ("pos", "label{}")):
        for stem, (image, mask) in arrays.items():
            write_image(tmp_path / name / "img" / f"{stem}.nii.gz", image)
            write_image(tmp_path / name / "msk" / f"{mask_name.format(stem)}.nii.gz", mask)
    # an nnU-Net raw dataset
    write_nnunet(tmp_path / "nnunet", {k: ([v[0]], v[1]) for k, v in arrays.items()}, ".nii.gz")
    # OME-Zarr
    for stem, (image, mask) in arrays.items():
        write_ome_zarr(tmp_path / "zarr" / "img" / f"{stem}.ome.zarr", image, version="0.5")
        write_ome_zarr(tmp_path / "zarr" / "msk" / f"{stem}_mask.ome.zarr", mask)

    results = {
        "nifti, masks by convention": ac.data_fingerprint(
            tmp_path / "conv" / "img", tmp_path / "conv" / "msk"
        ),
        "nifti, masks by position": ac.data_fingerprint(
            tmp_path / "pos" / "img", tmp_path / "pos" / "msk"
        ),
        "nnU-Net": ac.data_fingerprint(tmp_path / "nnunet"),
        "OME-Zarr on disk": ac.data_fingerprint(
            tmp_path / "zarr" / "img", tmp_path / "zarr" / "msk"
        ),
    }
    with serve_folder(tmp_path / "zarr") as url:
        results["OME-Zarr over http"] = ac.data_fingerprint(f"{url}/img/", f"{url}/msk/")
    for how, result in results.items():
        assert result[0].tolist() == expected[0].tolist(), how
        assert np.array_equal(result[1], expected[1]), how
        assert result[2:] == expected[2:], how
