"""The npe2 sample: one volume of the bundled nuclei dataset and its mask, at their real spacing.

File > Open Sample > napari-autoconfig opens them as an Image and a Labels layer whose ``scale`` is
the file's voxel spacing (z, y, x), so the anisotropy is visible and the patch boxes sit on the
volume in micrometres. The image layer names the sample's folder in its metadata
(:data:`SAMPLE_KEY`): the dock's folders panel, open now or later in that viewer, fills its
*Images* and *Masks* with the sample's ``images/`` and ``masks/``
(:func:`napari_autoconfig.sample.sample_folder`), so the whole sample dataset is one click
(*Fingerprint dataset*) away, whatever the install.
"""

from __future__ import annotations

from ..readers import image_suffix, read_header
from ..sample import sample_folder
from .reader import LayerData, layer_data
from .warmup import settled

#: Metadata key of the sample's image layer: the folder holding the sample's images/ and masks/.
SAMPLE_KEY = "napari_autoconfig_sample"


def make_sample_data() -> list[LayerData]:
    """Return the sample volume and its mask as napari layer data tuples.

    Each file is handed over exactly as the plugin's reader would (name, scale, metadata), except
    that the mask is named after its image and opened as a half-transparent Labels layer: the
    reader guesses Labels from a file name only, and the mask's file is named like its image.
    """
    folder = sample_folder()
    image_path = next(
        p for p in sorted((folder / "images").iterdir()) if image_suffix(p) is not None
    )
    image, image_kwargs, _kind = layer_data(read_header(image_path))
    image_kwargs["metadata"] = {**image_kwargs["metadata"], SAMPLE_KEY: str(folder)}
    mask, mask_kwargs, _kind = layer_data(read_header(folder / "masks" / image_path.name))
    mask_kwargs = {**mask_kwargs, "name": f"{image_kwargs['name']} mask", "opacity": 0.4}
    settled()  # napari adds the layers next, on this thread: never during the dock's warm-up
    return [(image, image_kwargs, "image"), (mask, mask_kwargs, "labels")]
