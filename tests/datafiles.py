"""Test data written to disk as users have it: the one module every test takes its writers from.

Every writer puts real files on disk (ImageJ TIFF, NIfTI/MetaImage/NRRD through SimpleITK, ``.npy``)
so the tests go through the real readers. Numpy order everywhere, (z, y, x); a name ending in
``_xyz`` is in SimpleITK's (x, y, z) order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

import biom3d_reference

# The shared anisotropic dataset of the widget tests: three ImageJ volumes whose per-axis median is
# (22, 66, 62), spacing z 2 µm, y/x 0.5 µm, each with a cuboid of foreground in its mask.
SHAPES_ZYX = ((20, 64, 60), (24, 70, 66), (22, 66, 62))
MEDIAN_ZYX = (22, 66, 62)
SPACING_ZYX = (2.0, 0.5, 0.5)


def write_imagej(path: Path, data: np.ndarray, spacing_zyx=SPACING_ZYX) -> Path:
    """Write a (Z, Y, X) or (Y, X) ImageJ TIFF with its voxel spacing in microns."""
    z, y, x = spacing_zyx
    metadata = {"unit": "micron", "axes": "ZYX"[-data.ndim :]}
    if data.ndim == 3:
        metadata["spacing"] = z
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / x, 1 / y), metadata=metadata)
    return Path(path)


def write_itk(
    path: Path, array: np.ndarray, spacing_xyz, vector: bool = False, compress: bool = False
) -> Path:
    """Write ``array`` (numpy order) with SimpleITK at the given (x, y, ...) spacing."""
    import SimpleITK as sitk  # only the tests that write ITK formats pay for it

    image = sitk.GetImageFromArray(array, isVector=vector)
    image.SetSpacing(tuple(float(s) for s in spacing_xyz))
    sitk.WriteImage(image, str(path), compress)
    return Path(path)


def read_itk(path: Path) -> np.ndarray:
    """Read a file whole with SimpleITK, as biom3d does (numpy order)."""
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def write_npy(path: Path, array: np.ndarray) -> Path:
    """Save ``array`` as ``.npy``, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array)
    return path


def write_image(path: Path, array: np.ndarray, spacing_zyx=SPACING_ZYX) -> Path:
    """Write ``array`` in the format its suffix names (.npy, .tif as ImageJ, else SimpleITK)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npy":
        return write_npy(path, array)
    if path.suffix in (".tif", ".tiff"):
        return write_imagej(path, array, spacing_zyx)
    return write_itk(path, array, spacing_zyx[::-1], compress=path.name.endswith(".gz"))


def read_whole(path: Path) -> np.ndarray:
    """Decode a whole file (the baseline the sampled readers are checked against)."""
    path = Path(path)
    if path.suffix == ".npy":
        return np.load(path)
    if path.suffix in (".tif", ".tiff"):
        return tifffile.imread(path)
    return read_itk(path)


def random_volume(shape, dtype=np.uint16, seed: int = 0, high: int = 200) -> np.ndarray:
    """Uniform random integers in [0, high) of ``dtype``."""
    return np.random.default_rng(seed).integers(0, high, size=shape).astype(dtype)


def write_dataset(folder: Path, shapes=SHAPES_ZYX, seed: int = 0) -> tuple[Path, Path]:
    """Write images/ and masks/ (ImageJ TIFFs, one foreground cuboid each); return both folders."""
    rng = np.random.default_rng(seed)
    images, masks = folder / "images", folder / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    for number, shape in enumerate(shapes, start=1):
        image = rng.integers(50, 150, size=shape, dtype=np.uint16)
        mask = np.zeros(shape, dtype=np.uint8)
        z, y, x = (s // 4 for s in shape)
        mask[z : 3 * z, y : 3 * y, x : 3 * x] = 1
        image[mask > 0] += 100
        write_imagej(images / f"case_{number:02d}.tif", image)
        write_imagej(masks / f"case_{number:02d}.tif", mask)
    return images, masks


def write_case(
    images: Path,
    masks: Path,
    name: str,
    shape,
    mask_value: int = 1,
    empty: bool = False,
    dtype=np.uint8,
    spacing_zyx=SPACING_ZYX,
):
    """One ImageJ image and its mask (a cuboid of ``mask_value``, or none); return both arrays.

    ``shape`` is (z, y, x), or (y, x) for a 2D image (its mask a rectangle)."""
    rng = np.random.default_rng(len(name) + shape[0])
    image = rng.integers(10, 60, shape, dtype=np.uint16).astype(dtype)
    mask = np.zeros(shape, np.uint8)
    if not empty:
        corner = [max(1, s // 4) for s in shape]
        mask[tuple(slice(c, 3 * c) for c in corner)] = mask_value
        image[mask > 0] += 100
    write_imagej(images / name, image, spacing_zyx)
    write_imagej(masks / name, mask, spacing_zyx)
    return image, mask


#: The odd dataset: three ordinary volumes, one thinner than the patch, one with an empty mask.
ODD_SHAPES_ZYX = {
    "a.tif": (24, 64, 64),
    "b.tif": (26, 70, 66),
    "c.tif": (24, 66, 64),
    "empty.tif": (24, 64, 64),
    "thin.tif": (4, 64, 64),
}


def write_odd_dataset(folder: Path) -> tuple[Path, Path, dict]:
    """Write the odd dataset's images/ and masks/; return both folders and {name: (image, mask)}."""
    images, masks = folder / "images", folder / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    kept = {
        name: write_case(images, masks, name, shape, empty=name == "empty.tif")
        for name, shape in ODD_SHAPES_ZYX.items()
    }
    return images, masks, kept


def biom3d_statistics(
    images: list[Path], masks: list[Path], num_samples: int = 10000, seed: int = 42
) -> tuple[float, float, float, float]:
    """biom3d's way (the benchmark's reference): decode whole, img[mask > 0], a fresh rng per
    image, choice with replacement; mean, std, 0.5 and 99.5 percentiles."""
    found = biom3d_reference.fingerprint(images, masks, seed, num_samples)
    return (found["mean"], found["std"], found["perc_005"], found["perc_995"])


def rename_masks(masks: Path, rename) -> Path:
    """Rename every mask file in ``masks`` with ``rename(stem) -> new stem``; return the folder."""
    for path in sorted(Path(masks).iterdir()):
        stem = path.name[: -len(path.suffix)]
        path.rename(path.with_name(rename(stem) + path.suffix))
    return Path(masks)


def write_ome_tiff(path: Path, data: np.ndarray, spacing_zyx=SPACING_ZYX, unit: str = "µm") -> Path:
    """Write a (Z, Y, X) or (Y, X) OME-TIFF with its PhysicalSize (which biom3d does not read)."""
    axes = "ZYX"[-data.ndim :]
    metadata = {"axes": axes}
    for letter, size in zip(axes, spacing_zyx[-data.ndim :]):
        metadata[f"PhysicalSize{letter}"] = size
        metadata[f"PhysicalSize{letter}Unit"] = unit
    tifffile.imwrite(path, data, ome=True, metadata=metadata)
    return Path(path)


def nnunet_cells(channels: int = 2, seed: int = 0) -> dict:
    """Cases for :func:`write_nnunet`: one per shape of ``SHAPES_ZYX``, named ``cell_000``...,
    ``channels`` uint16 channels of noise (0-199) and a label whose foreground is the volume less
    a border of 2 planes along z and 4 voxels along y and x."""
    rng = np.random.default_rng(seed)
    cases = {}
    for number, shape in enumerate(SHAPES_ZYX):
        label = np.zeros(shape, np.uint8)
        label[2:-2, 4:-4, 4:-4] = 1
        images = [rng.integers(0, 200, shape).astype(np.uint16) for _ in range(channels)]
        cases[f"cell_{number:03d}"] = (images, label)
    return cases


def write_nnunet(
    root: Path,
    cases: dict,
    ending: str = ".nii.gz",
    channel_names=("DAPI",),
    spacing_zyx=SPACING_ZYX,
) -> Path:
    """Write an nnU-Net v2 raw dataset: imagesTr/CASE_000c{ending}, labelsTr/CASE{ending}, json.

    ``cases`` maps a case id to ``(channels, label)``: a list of (Z, Y, X) arrays, one per channel,
    and the (Z, Y, X) label.
    """
    import json

    root = Path(root)
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for case, (channels, label) in cases.items():
        for c, array in enumerate(channels):
            write_image(root / "imagesTr" / f"{case}_{c:04d}{ending}", array, spacing_zyx)
        write_image(root / "labelsTr" / f"{case}{ending}", label, spacing_zyx)
    meta = {
        "channel_names": {str(i): name for i, name in enumerate(channel_names)},
        "labels": {"background": 0, "cell": 1},
        "numTraining": len(cases),
        "file_ending": ending,
    }
    (root / "dataset.json").write_text(json.dumps(meta, indent=2))
    return root


def write_ome_zarr(
    path: Path,
    data: np.ndarray,
    spacing_zyx=SPACING_ZYX,
    version: str = "0.4",
    chunks=None,
    axes: str | None = None,
) -> Path:
    """Write an OME-Zarr image: NGFF 0.4 (zarr v2) or 0.5 (zarr v3), full resolution plus one
    level downsampled by 2 in y and x (so a reader must pick the first level).

    ``data`` is in ``axes`` order (default "zyx", "czyx" for 4D, "yx" for 2D); its spacing is
    ``spacing_zyx`` in micrometres.
    """
    needs_zarr()
    import zarr

    axes = axes or "czyx"[-data.ndim :]
    spacing = dict(zip("zyx", spacing_zyx[-3:]))
    group = zarr.open_group(str(path), mode="w", zarr_format=2 if version == "0.4" else 3)
    datasets = []
    for level in (0, 1):
        factor = [2**level if a in "yx" else 1 for a in axes]
        array = data[tuple(slice(None, None, f) for f in factor)]
        chunk = chunks or tuple(max(1, n // 2) for n in array.shape)
        stored = group.create_array(str(level), shape=array.shape, chunks=chunk, dtype=array.dtype)
        stored[...] = array
        scale = [spacing.get(a, 1.0) * f for a, f in zip(axes, factor)]
        datasets.append(
            {"path": str(level), "coordinateTransformations": [{"type": "scale", "scale": scale}]}
        )
    kinds = {"c": "channel", "t": "time"}
    multiscale = {
        "axes": [
            {"name": a, "type": kinds.get(a, "space")}
            | ({"unit": "micrometer"} if a in "zyx" else {})
            for a in axes
        ],
        "datasets": datasets,
        "name": Path(path).name,
    }
    if version == "0.4":
        group.attrs["multiscales"] = [{"version": "0.4", **multiscale}]
    else:
        group.attrs["ome"] = {"version": "0.5", "multiscales": [multiscale]}
    return Path(path)


def needs_zarr() -> None:
    """Skip the calling test where the ``zarr`` extra is not installed (zarr 3 needs Python 3.11+,
    so a Python 3.10 install has no OME-Zarr and no URLs)."""
    for module in ("zarr", "fsspec", "aiohttp"):
        pytest.importorskip(module, reason=f"OME-Zarr and URLs need the zarr extra ({module})")


class serve_folder:
    """Serve a folder over HTTP on 127.0.0.1 (a free port) in a thread; ``with`` gives its URL."""

    def __init__(self, folder: Path):
        needs_zarr()  # only OME-Zarr is read from a URL
        self.folder = Path(folder)

    def __enter__(self) -> str:
        import functools
        import http.server
        import threading

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

        handler = functools.partial(Quiet, directory=str(self.folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class serve_hostile:
    """A server on 127.0.0.1 (threaded, a free port) that misbehaves the way ``mode`` says; ``with``
    gives its URL and the server stops itself on leaving (every wait it makes is bounded).

    - ``"silent"``: accepts every connection, reads the request and never answers;
    - ``"garbage"``: answers every GET with a short HTML page;
    - ``"endless"``: serves ``folder``'s metadata files as they are, and for any other key (a
      chunk) an endless body without a Content-Length (at most ``most`` bytes);
    - ``"oversized"``: the same, with a Content-Length of ``most`` bytes declared and sent.

    ``sent`` counts the body bytes the server managed to send (what the client did not refuse).
    """

    METADATA = ("zarr.json", ".zattrs", ".zarray", ".zgroup", ".zmetadata")

    def __init__(self, mode: str, folder: Path | None = None, most: int = 256 * 2**20):
        needs_zarr()  # only OME-Zarr is read from a URL
        self.mode, self.folder, self.most = mode, folder, most
        self.sent = 0
        self.requests = 0

    def __enter__(self) -> str:
        import http.server
        import threading

        outer = self
        self.stop = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests += 1
                if outer.mode == "silent":
                    outer.stop.wait(120)  # never answers; ends with the server
                    return
                if outer.mode == "garbage":
                    return self._answer(b"<html><body>not what you asked for</body></html>")
                name = self.path.rstrip("/").rsplit("/", 1)[-1]
                local = outer.folder / self.path.lstrip("/")
                if name in outer.METADATA:
                    if not local.is_file():
                        return self.send_error(404)
                    return self._answer(local.read_bytes())
                self.send_response(200)
                if outer.mode == "oversized":
                    self.send_header("Content-Length", str(outer.most))
                self.end_headers()
                block = b"\x07" * 2**16
                try:
                    while outer.sent < outer.most and not outer.stop.is_set():
                        self.wfile.write(block)
                        outer.sent += len(block)
                except OSError:  # the client hung up: what we want
                    pass

            def _answer(self, body: bytes):
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=30)


def write_cuboid_pair(
    folder: Path,
    name: str,
    shape_zyx,
    cuboids,
    spacing_zyx=SPACING_ZYX,
    suffix: str = ".tif",
) -> tuple[Path, Path]:
    """Write images/<name><suffix> and masks/<name><suffix>: a mask of known cuboids (label 1).

    ``cuboids`` is a list of ((z0, y0, x0), (z1, y1, x1)) boxes, stop exclusive; the image is
    random noise plus 100 inside the cuboids.
    """
    images, masks = Path(folder) / "images", Path(folder) / "masks"
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    mask = np.zeros(shape_zyx, dtype=np.uint8)
    for start, stop in cuboids:
        mask[tuple(slice(a, b) for a, b in zip(start, stop))] = 1
    image = random_volume(shape_zyx, seed=len(cuboids)) + 100 * mask.astype(np.uint16)
    return (
        write_image(images / f"{name}{suffix}", image, spacing_zyx),
        write_image(masks / f"{name}{suffix}", mask, spacing_zyx),
    )
