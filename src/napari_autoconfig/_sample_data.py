"""The npe2 sample: one volume of the bundled nuclei dataset and its mask, at their real spacing.

File > Open Sample > napari-autoconfig opens them as an Image and a Labels layer whose ``scale`` is
the file's voxel spacing (z, y, x), so the anisotropy is visible and the patch boxes sit on the
volume in micrometres. Point the widget's folders at :func:`napari_autoconfig.sample.sample_folder`
(its ``images/`` and ``masks/``) to fingerprint the whole sample dataset.
"""

from __future__ import annotations

from pathlib import Path

from .readers import image_suffix, read_array, read_header
from .sample import sample_folder


def make_sample_data() -> list[tuple]:
    """Return the sample volume and its mask as napari layer data tuples."""
    folder = sample_folder()
    image_path = next(
        p for p in sorted((folder / "images").iterdir()) if image_suffix(p) is not None
    )
    mask_path = folder / "masks" / image_path.name
    layers = []
    for path, kind in ((image_path, "image"), (mask_path, "labels")):
        header = read_header(path)
        meta = {
            "name": image_path.stem + (" mask" if kind == "labels" else ""),
            "metadata": {"path": str(Path(path)), "unit": header.unit},
        }
        if header.spacing_zyx is not None:
            meta["scale"] = tuple(float(v) for v in header.spacing_zyx)
        if kind == "labels":
            meta["opacity"] = 0.4
        layers.append((read_array(header), meta, kind))
    return layers
