"""Benchmark: fingerprinting a dataset with napari-autoconfig versus the straightforward baseline.

Run from the repository root (any machine, nothing to download)::

    python benchmarks/bench_fingerprint.py            # 24 volumes 96x512x512 uint16, a few minutes
    python benchmarks/bench_fingerprint.py --big-gb 4  # and one 4 GiB volume (about 20 GB of disk)
    python benchmarks/bench_fingerprint.py --images 4 --shape 32 128 128 --repeats 1 --many 0

What it does, in one run:

1. writes a dataset into a temporary folder: smooth structures plus noise (so files compress like
   microscopy), masks with 10-30 % foreground, ImageJ spacing in TIFF and spacing in NIfTI; one copy
   per format (``tif``, ``tif-zlib``, ``nii.gz``);
2. times, alternating and each run in a fresh process with a warm file cache:

   - ``ours``: napari-autoconfig (``compute_median``, ``fingerprint_dataset`` with and without
     masks);
   - ``baseline``: what biom3d does: decode every image whole with the same libraries
     (``tifffile`` / ``SimpleITK``), take ``.shape`` and spacing; with masks ``img[mask > 0]`` then
     ``default_rng(seed).choice(values, num_samples)`` per image, then mean, std, percentiles;
   - ``biom3d``: biom3d's own ``compute_median`` / ``data_fingerprint``, when biom3d is importable;
   - the whole command ``python -m napari_autoconfig IMAGES --masks MASKS --json``;

3. measures the peak resident memory of each variant above the interpreter's (its own process);
4. optionally one big volume (``--big-gb``, written slab by slab so the generator stays lean) and
   many small files (``--many``, to show the cost per file stays flat);
5. prints median seconds, peak MB, the ratio baseline/ours and the targets, and exits with status 1
   if two variants give different numbers (sizes, spacings, mean, std, percentiles, the samples).

Everything it wrote is deleted at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SEED = 42
NUM_SAMPLES = 10000
SPACING_XYZ = (0.5, 0.5, 2.0)  # micrometres; exact in float32 so TIFF and NIfTI agree
FORMATS = ("tif", "tif-zlib", "nii.gz")
SUFFIX = {"tif": ".tif", "tif-zlib": ".tif", "nii.gz": ".nii.gz"}
MB = 2**20

# Targets of issue 4, for the default benchmark on a 2-core machine (ratios are baseline / ours).
SCAN_TARGET = {"tif": 5.0, "nii.gz": 30.0}
MASKED_TARGET = {"tif": 2.5, "nii.gz": 3.0}
CLI_TARGET_S = 4.0
BIG_TARGET_MB = 1024.0
# numbers of the command's --json output compared with the other variants'
CLI_KEYS = ("median_size", "median_spacing", "mean", "std", "perc_005", "perc_995")


# --------------------------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------------------------
def _field(
    shape_zyx: tuple[int, int, int], seed: int, z0: int, z1: int, step: int = 1
) -> np.ndarray:
    """Smooth random structures of the whole volume, planes ``z0:z1`` (every ``step``-th voxel).

    A sum of a few separable cosines with random frequencies: each plane is computed from its
    absolute coordinates, so slabs written one after the other join seamlessly.
    """
    nz, ny, nx = shape_zyx
    prng = np.random.default_rng([seed, 7])
    z = np.arange(z0, z1, step, dtype=np.float32)
    y = np.arange(0, ny, step, dtype=np.float32)
    x = np.arange(0, nx, step, dtype=np.float32)
    out = np.zeros((len(z), len(y), len(x)), np.float32)
    for _ in range(4):
        fz, fy, fx = prng.uniform(1.0, 6.0, 3) * 2 * np.pi / np.array([nz, ny, nx])
        pz, py, px = prng.uniform(0.0, 2 * np.pi, 3)
        zy = (np.cos(fz * z + pz)[:, None] * np.cos(fy * y + py)[None, :]).astype(np.float32)
        out += zy[:, :, None] * np.cos(fx * x + px).astype(np.float32)[None, None, :]
    return out


def _thresholds(shape_zyx: tuple[int, int, int], seed: int) -> tuple[float, float]:
    """Field levels giving this volume's foreground fraction (10-30 %) and a second label inside."""
    fraction = np.random.default_rng([seed, 11]).uniform(0.10, 0.30)
    coarse = _field(shape_zyx, seed, 0, shape_zyx[0], step=4)
    low, high = np.quantile(coarse, [1.0 - fraction, 1.0 - fraction / 4])
    return float(low), float(high)


def synth_slab(
    shape_zyx: tuple[int, int, int],
    dtype: np.dtype,
    seed: int,
    z0: int,
    z1: int,
    thresholds: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Planes ``z0:z1`` of one synthetic image and its mask (labels 0, 1, 2; uint8)."""
    smooth = _field(shape_zyx, seed, z0, z1)
    mask = (smooth > thresholds[0]).astype(np.uint8)
    mask += smooth > thresholds[1]
    dtype = np.dtype(dtype)
    scale = 0.2 if dtype.itemsize == 1 else 1.0  # keep 8-bit images in range
    image = np.where(mask > 0, smooth * 300 + 1000, smooth * 50 + 200).astype(np.float32)
    noise = np.random.default_rng([seed, z0, 3]).standard_normal(image.shape, dtype=np.float32)
    image += noise * 30
    image *= scale
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        np.clip(image, info.min, info.max, out=image)
    return image.astype(dtype), mask


def _nifti_header(shape_zyx: tuple[int, ...], dtype: np.dtype) -> bytes:
    """A single-file NIfTI-1 header (with its 4-byte extension flag) for a (Z, Y, X) array."""
    import nibabel as nib

    header = nib.Nifti1Header()
    header.set_data_dtype(dtype)
    header.set_data_shape(tuple(reversed(shape_zyx)))  # NIfTI is (x, y, z), stored x fastest
    affine = np.diag([*SPACING_XYZ[: len(shape_zyx)], *([1.0] * (4 - len(shape_zyx)))])
    header.set_zooms(SPACING_XYZ[: len(shape_zyx)])
    header.set_qform(affine, code=1)
    header.set_sform(affine, code=1)
    header["vox_offset"] = 352
    return header.binaryblock + b"\0" * 4


class _SlabWriter:
    """Writes one (Z, Y, X) volume plane-slab by plane-slab: uncompressed ImageJ TIFF or .nii.gz.

    Only one slab is ever in memory. The ImageJ TIFF is laid out by ``tifffile.memmap`` (contiguous
    data, truncated ImageJ layout above 4 GB, as ImageJ does), then filled with plain writes; the
    NIfTI goes through gzip level 1, nibabel's default.
    """

    def __init__(self, path: Path, fmt: str, shape_zyx: tuple[int, ...], dtype: np.dtype):
        import tifffile

        if fmt == "tif":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "truncating ImageJ file" above 4 GB: intended
                layout = tifffile.memmap(
                    path, shape=shape_zyx, dtype=dtype, **_imagej_kwargs(len(shape_zyx))
                )
                offset = layout.offset
                del layout
            self._file = open(path, "r+b")  # closed in close()
            self._file.seek(offset)
        elif fmt == "nii.gz":
            self._file = gzip.open(path, "wb", compresslevel=1)
            self._file.write(_nifti_header(shape_zyx, np.dtype(dtype)))
        else:
            raise ValueError(f"no slab writer for {fmt}")

    def write(self, slab: np.ndarray) -> None:
        self._file.write(np.ascontiguousarray(slab).data)

    def close(self) -> None:
        self._file.close()


def _imagej_kwargs(ndim: int) -> dict:
    """ImageJ TIFF metadata for a 2D or 3D array: resolution, spacing entry, axes."""
    return {
        "imagej": True,
        "resolution": (1 / SPACING_XYZ[0], 1 / SPACING_XYZ[1]),
        "metadata": {"spacing": SPACING_XYZ[2], "unit": "micron", "axes": "ZYX"[3 - ndim :]},
    }


def write_case(
    root: Path,
    index: int,
    shape_zyx: tuple[int, int, int],
    dtype: str,
    formats: tuple[str, ...],
    masks: bool,
) -> None:
    """One image (and its mask), in every format, as ``root/FORMAT/{images,masks}/case_NNN.EXT``."""
    import tifffile

    seed = 1000 + index
    image, mask = synth_slab(
        shape_zyx, np.dtype(dtype), seed, 0, shape_zyx[0], _thresholds(shape_zyx, seed)
    )
    if len(shape_zyx) == 3 and shape_zyx[0] == 1:
        image, mask = image[0], mask[0]  # a 2D image
    pairs = [("images", image)] + ([("masks", mask)] if masks else [])
    for fmt in formats:
        for kind, array in pairs:
            path = root / fmt / kind / f"case_{index:04d}{SUFFIX[fmt]}"
            if fmt == "tif-zlib":
                tifffile.imwrite(path, array, compression="zlib", **_imagej_kwargs(array.ndim))
            else:
                writer = _SlabWriter(path, fmt, array.shape, array.dtype)
                writer.write(array)
                writer.close()


def write_dataset(
    root: Path,
    count: int,
    shape_zyx: tuple[int, int, int],
    dtype: str,
    formats: tuple[str, ...],
    masks: bool,
    workers: int,
) -> None:
    for fmt in formats:
        for kind in ("images", "masks") if masks else ("images",):
            (root / fmt / kind).mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(workers) as pool:
        jobs = [
            pool.submit(write_case, root, i, shape_zyx, dtype, formats, masks) for i in range(count)
        ]
        for job in jobs:
            job.result()


def big_shape(gigabytes: float, dtype: np.dtype) -> tuple[int, int, int]:
    """(Z, Y, X) of about ``gigabytes`` GiB: 2048x2048 planes for 4 GiB of uint16 (512 planes)."""
    voxels = int(gigabytes * 2**30 / np.dtype(dtype).itemsize)
    side = max(8, min(2048, int((voxels / 16) ** 0.5)))
    return (max(1, voxels // (side * side)), side, side)


def write_big(
    root: Path, shape_zyx: tuple[int, int, int], dtype: str, formats: tuple[str, ...]
) -> None:
    """One big image and mask per format, generated slab by slab (bounded memory)."""
    seed = 99
    thresholds = _thresholds(shape_zyx, seed)
    writers = []
    for fmt in formats:
        for kind, kind_dtype in (("images", np.dtype(dtype)), ("masks", np.dtype(np.uint8))):
            folder = root / fmt / kind
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"big{SUFFIX[fmt]}"
            writers.append((kind, _SlabWriter(path, fmt, shape_zyx, kind_dtype)))
    planes = max(1, (64 * MB) // (shape_zyx[1] * shape_zyx[2] * 4))
    for z0 in range(0, shape_zyx[0], planes):
        z1 = min(z0 + planes, shape_zyx[0])
        image, mask = synth_slab(shape_zyx, np.dtype(dtype), seed, z0, z1, thresholds)
        for kind, writer in writers:
            writer.write(image if kind == "images" else mask)
    for _, writer in writers:
        writer.close()


def warm(folder: Path) -> None:
    """Read every file once so the timings see a warm file cache."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as f:
                while f.read(16 * MB):
                    pass


# --------------------------------------------------------------------------------------------
# Variants: each runs in its own process (``_child``) and returns comparable numbers
# --------------------------------------------------------------------------------------------
def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _baseline_read(path: Path) -> tuple[np.ndarray, tuple[float, ...] | None]:
    """Decode the whole file, as biom3d does, and return (array, spacing_xyz or None)."""
    name = path.name.lower()
    if name.endswith((".tif", ".tiff")):
        import tifffile

        with tifffile.TiffFile(path) as tif:
            array = tif.asarray()
            ij = tif.imagej_metadata or {}
            spacing = None
            if "spacing" in ij:
                tags = tif.pages.first.tags
                xn, xd = tags["XResolution"].value
                yn, yd = tags["YResolution"].value
                spacing = (1 / (xn / xd), 1 / (yn / yd), float(ij["spacing"]))[: array.ndim]
        return array, spacing
    import SimpleITK as sitk

    image = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(image), tuple(image.GetSpacing())


def _size(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1, *shape) if len(shape) == 2 else tuple(shape)


def _median_size(sizes: list[tuple[int, ...]]) -> list[int]:
    return [int(v) for v in np.median(np.array(sizes), axis=0).astype(int)]


def _median_spacing(spacings: list[tuple[float, ...] | None]) -> list[float] | None:
    known = [s for s in spacings if s]
    return [float(v) for v in np.median(np.array(known), axis=0)] if known else None


def _stats(samples: list[np.ndarray]) -> dict:
    if not samples:
        return {"mean": 0.0, "std": 0.0, "perc_005": 0.0, "perc_995": 0.0, "samples_sha1": None}
    values = np.concatenate(samples)
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "perc_005": float(np.percentile(values, 0.5)),
        "perc_995": float(np.percentile(values, 99.5)),
        "samples_sha1": hashlib.sha1(values.tobytes()).hexdigest(),
    }


def baseline_scan(images: Path, masks: Path | None) -> dict:
    sizes, spacings = [], []
    for path in _files(images):
        array, spacing = _baseline_read(path)
        sizes.append(_size(array.shape))
        spacings.append(spacing)
    return {"median_size": _median_size(sizes), "median_spacing_xyz": _median_spacing(spacings)}


def baseline_masked(images: Path, masks: Path | None) -> dict:
    assert masks is not None
    sizes, spacings, samples = [], [], []
    for image_path, mask_path in zip(_files(images), _files(masks), strict=True):
        image, spacing = _baseline_read(image_path)
        mask, _ = _baseline_read(mask_path)
        sizes.append(_size(image.shape))
        spacings.append(spacing)
        values = image[mask > 0]
        if values.size:
            rng = np.random.default_rng(SEED)
            samples.append(rng.choice(values, NUM_SAMPLES, replace=True))
        del image, mask, values  # as biom3d's loop: one image at a time
    return {
        "median_size": _median_size(sizes),
        "median_spacing_xyz": _median_spacing(spacings),
        **_stats(samples),
    }


def _fingerprint_numbers(fp) -> dict:
    samples = [r.samples for r in fp.records if len(r.samples)]
    numbers = {
        "median_size": [int(v) for v in fp.median_size],
        "median_spacing_xyz": [float(v) for v in fp.median_spacing_xyz]
        if fp.median_spacing_xyz
        else None,
    }
    if fp.has_masks:
        numbers.update(_stats(samples))
        for key in ("mean", "std", "perc_005", "perc_995"):
            numbers[key] = float(getattr(fp, key))
    return numbers


def ours_median(images: Path, masks: Path | None) -> dict:
    from napari_autoconfig.auto_config import compute_median

    median, spacing = compute_median(str(images), return_spacing=True)
    median = [int(v) for v in median]
    spacing = [float(v) for v in spacing] if len(spacing) else None
    return {"median_size": median, "median_spacing_xyz": spacing}


def ours_scan(images: Path, masks: Path | None) -> dict:
    from napari_autoconfig.fingerprint import fingerprint_dataset

    return _fingerprint_numbers(fingerprint_dataset(images, seed=SEED, num_samples=NUM_SAMPLES))


def ours_masked(images: Path, masks: Path | None) -> dict:
    from napari_autoconfig.fingerprint import fingerprint_dataset

    return _fingerprint_numbers(
        fingerprint_dataset(images, masks, seed=SEED, num_samples=NUM_SAMPLES)
    )


def _biom3d_size(median, like: int) -> list[int]:
    median = [int(v) for v in median]
    # biom3d reads a single-channel ImageJ TIFF as (1, Z, Y, X): compare its spatial part
    return median[1:] if len(median) == like + 1 and median[0] == 1 else median


def biom3d_scan(images: Path, masks: Path | None) -> dict:
    from biom3d.auto_config import compute_median

    median, spacing = compute_median(str(images), return_spacing=True)
    spacing = [float(v) for v in np.asarray(spacing).ravel()] if len(spacing) else None
    return {"median_size": _biom3d_size(median, 3), "median_spacing_xyz": spacing}


def biom3d_masked(images: Path, masks: Path | None) -> dict:
    from biom3d.auto_config import data_fingerprint

    size, spacing, mean, std, p05, p995 = data_fingerprint(
        str(images), str(masks), num_samples=NUM_SAMPLES, seed=SEED
    )
    spacing = [float(v) for v in np.asarray(spacing).ravel()] if np.size(spacing) > 1 else None
    return {
        "median_size": _biom3d_size(size, 3),
        "median_spacing_xyz": spacing,
        "mean": float(mean),
        "std": float(std),
        "perc_005": float(p05),
        "perc_995": float(p995),
    }


def _noop(images: Path, masks: Path | None) -> dict:
    return {}


VARIANTS: dict[str, Callable[[Path, Path | None], dict]] = {
    "ours compute_median": ours_median,
    "ours fingerprint": ours_scan,
    "baseline scan": baseline_scan,
    "biom3d compute_median": biom3d_scan,
    "ours fingerprint+masks": ours_masked,
    "baseline +masks": baseline_masked,
    "biom3d data_fingerprint": biom3d_masked,
    "noop": _noop,
}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _child(variant: str, images: str, masks: str) -> None:
    """Run one variant once in this fresh process; print seconds, peak RSS and its numbers."""
    # import everything a variant may need first, so the memory baseline includes the imports
    import SimpleITK  # noqa: F401
    import tifffile  # noqa: F401

    if not variant.startswith("biom3d"):  # the baseline too: same interpreter footprint
        import napari_autoconfig.fingerprint  # noqa: F401

    before = _rss_bytes()
    start = time.perf_counter()
    numbers = VARIANTS[variant](Path(images), Path(masks) if masks != "-" else None)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_above": max(peak - before, 0),
                "peak": peak,
                "numbers": numbers,
            }
        )
    )


# --------------------------------------------------------------------------------------------
# Running and reporting
# --------------------------------------------------------------------------------------------
@dataclass
class Measure:
    section: str
    fmt: str
    variant: str
    seconds: list[float] = field(default_factory=list)
    peaks_above: list[int] = field(default_factory=list)
    peaks: list[int] = field(default_factory=list)
    numbers: dict | None = None
    error: str | None = None

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")

    @property
    def peak_mb(self) -> float:
        return max(self.peaks_above) / MB if self.peaks_above else float("nan")


def _run(cmd: list[str]) -> tuple[float, int, int, str, str]:
    """Run a command; return (wall seconds, peak RSS bytes of that process, exit code, out, err)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (
            seconds,
            usage.ru_maxrss * 1024,
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def run_child(measure: Measure, images: Path, masks: Path | None) -> None:
    cmd = [sys.executable, __file__, "_child", measure.variant, str(images), str(masks or "-")]
    _, _, code, out, err = _run(cmd)
    if code != 0:
        measure.error = (err.strip().splitlines() or [f"exit code {code}"])[-1]
        return
    report = json.loads(out.strip().splitlines()[-1])
    measure.seconds.append(report["seconds"])
    measure.peaks_above.append(report["peak_above"])
    measure.peaks.append(report["peak"])
    measure.numbers = report["numbers"]


def alternate(measures: list[Measure], images: Path, masks: Path | None, repeats: int) -> None:
    """ours, baseline, ours, baseline...: each repeat runs every variant once, each fresh."""
    for _ in range(repeats):
        for measure in measures:
            if measure.error is None:
                run_child(measure, images, masks)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (np.isnan(a) and np.isnan(b))
    return a == b


def disagreements(measures: list[Measure]) -> list[str]:
    """Every number that two variants of one section report differently, and every crash.

    biom3d's own functions may crash on data it mishandles (NIfTI in ``data_fingerprint``):
    that is reported in the table, not counted as a disagreement.
    """
    problems = [
        f"{m.section} {m.fmt}: {m.variant} failed: {m.error}"
        for m in measures
        if m.error is not None and not m.variant.startswith("biom3d")
    ]
    done = [m for m in measures if m.numbers is not None]
    for m in done[1:]:
        ref = done[0]
        for key in sorted(set(ref.numbers) & set(m.numbers)):
            if not _same(ref.numbers[key], m.numbers[key]):
                problems.append(
                    f"{m.section} {m.fmt}: {key} = {m.numbers[key]!r} ({m.variant}) "
                    f"but {ref.numbers[key]!r} ({ref.variant})"
                )
    return problems


def biom3d_available() -> bool:
    try:
        import importlib.util

        return importlib.util.find_spec("biom3d") is not None
    except (ImportError, ValueError):
        return False


@dataclass
class Row:
    section: str
    fmt: str
    variant: str
    seconds: float
    peak_mb: float
    ratio: float | None
    target: str
    met: str


def _row(m: Measure, base: Measure | None, target_ratio: float | None, max_mb: float | None) -> Row:
    ratio = base.median_s / m.median_s if base is not None and m.seconds and base.seconds else None
    checks, met = [], []
    if target_ratio is not None and ratio is not None:
        checks.append(f">= {target_ratio:g}x")
        met.append(ratio >= target_ratio)
    if max_mb is not None and m.peaks_above:
        checks.append(f"<= {max_mb:.0f} MB")
        met.append(m.peak_mb <= max_mb)
    if m.error is not None:
        return Row(
            m.section, m.fmt, m.variant, float("nan"), float("nan"), None, m.error[:60], "FAILED"
        )
    return Row(
        m.section,
        m.fmt,
        m.variant,
        m.median_s,
        m.peak_mb,
        ratio,
        ", ".join(checks) or "-",
        ("met" if all(met) else "NOT MET") if met else "-",
    )


def print_table(rows: list[Row], file=sys.stdout) -> None:
    head = (
        f"{'section':<10} {'format':<8} {'variant':<36} {'median s':>9} {'peak MB':>8} "
        f"{'baseline/ours':>13}  {'target':<20} met"
    )
    print(head, file=file)
    print("-" * len(head), file=file)
    for r in rows:
        ratio = f"{r.ratio:.1f}x" if r.ratio is not None else "-"
        print(
            f"{r.section:<10} {r.fmt:<8} {r.variant:<36} {r.seconds:>9.3f} {r.peak_mb:>8.0f} "
            f"{ratio:>13}  {r.target:<20} {r.met}",
            file=file,
        )


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import platform

    return (
        f"{cpu}, {os.cpu_count()} cores, {ram:.0f} GB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, numpy {np.__version__}"
    )


def bench_dataset(
    root: Path, args: argparse.Namespace, image_bytes: int
) -> tuple[list[Row], list[str]]:
    rows, problems = [], []
    with_biom3d = biom3d_available()
    # The targets are set for the default dataset; on others the table only measures.
    default = (args.images, tuple(args.shape), args.dtype) == (24, (96, 512, 512), "uint16")
    if not default:
        print("[targets] apply to the default dataset only: not judged here", file=sys.stderr)
    for fmt in args.formats:
        images, masks = root / fmt / "images", root / fmt / "masks"
        warm(root / fmt)
        budget = 2 * image_bytes / MB  # peak above the interpreter: at most twice the largest image
        if not default:
            budget = None
        biom3d = ("biom3d compute_median",) if with_biom3d else ()
        scan, found = run_section(
            "scan",
            fmt,
            ("ours compute_median", "baseline scan", "ours fingerprint", *biom3d),
            (images, None),
            args.repeats,
            (SCAN_TARGET.get(fmt) if default else None, budget),
            rows,
        )
        problems += found
        if args.masks:
            biom3d = ("biom3d data_fingerprint",) if with_biom3d else ()
            masked, found = run_section(
                "masked",
                fmt,
                ("ours fingerprint+masks", "baseline +masks", *biom3d),
                (images, masks),
                args.repeats,
                (MASKED_TARGET.get(fmt) if default else None, budget),
                rows,
            )
            problems += found
        if args.cli:
            command = bench_cli(fmt, images, masks if args.masks else None, args.repeats)
            rows.append(_cli_row(command))
            problems += disagreements([masked[0] if args.masks else scan[0], command])
        print(f"[{fmt}] done", file=sys.stderr, flush=True)
    return rows, problems


def run_section(
    section: str,
    fmt: str,
    variants: tuple[str, ...],
    folders: tuple[Path, Path | None],
    repeats: int,
    targets: tuple[float | None, float | None],
    rows: list[Row],
) -> tuple[list[Measure], list[str]]:
    """Time the variants alternately, add their rows; return them and their disagreements.

    ``targets`` = (minimum ratio baseline / ours, maximum MB above the interpreter), for ours.
    """
    measures = [Measure(section, fmt, v) for v in variants]
    alternate(measures, *folders, repeats)
    base = next(m for m in measures if m.variant.startswith("baseline"))
    first_ours = next(m for m in measures if m.variant.startswith("ours"))
    for m in measures:
        ours = m.variant.startswith("ours")
        ratio_target, max_mb = targets if ours else (None, None)
        row = _row(m, None if m is base else base, ratio_target, max_mb)
        if m.variant.startswith("biom3d") and row.ratio is not None and first_ours.seconds:
            # on biom3d's rows the ratio says how many times slower biom3d is than ours
            row.ratio = m.median_s / first_ours.median_s
            row.target = f"biom3d / {first_ours.variant}"
        rows.append(row)
    return measures, disagreements(measures)


def bench_cli(fmt: str, images: Path, masks: Path | None, repeats: int) -> Measure:
    """The whole command, interpreter start-up included; peak RSS of the whole process.

    Its ``--json`` numbers are kept, so they are checked against the in-process variants too.
    """
    cmd = [sys.executable, "-m", "napari_autoconfig", str(images), "--json"]
    if masks is not None:
        cmd[4:4] = ["--masks", str(masks)]
    m = Measure("command", fmt, "python -m napari_autoconfig" + (" --masks" if masks else ""))
    _, interpreter, _, _, _ = _run([sys.executable, "-c", "import napari_autoconfig.cli"])
    for _ in range(repeats):
        seconds, peak, code, out, err = _run(cmd)
        if code != 0:
            m.error = (err.strip().splitlines() or [f"exit code {code}"])[-1]
            break
        m.seconds.append(seconds)
        m.peaks.append(peak)
        m.peaks_above.append(max(peak - interpreter, 0))
        report = json.loads(out)
        m.numbers = {key: report[key] for key in CLI_KEYS}
        m.numbers["median_spacing_xyz"] = m.numbers.pop("median_spacing") or None
    return m


def _cli_row(m: Measure) -> Row:
    row = _row(m, None, None, None)
    if m.seconds:
        row.target = f"< {CLI_TARGET_S:g} s"
        row.met = "met" if m.median_s < CLI_TARGET_S else "NOT MET"
    return row


def bench_big(root: Path, args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    """One big volume: peak memory in all (interpreter included) must stay under 1 GB."""
    formats = tuple(f for f in args.formats if f in ("tif", "nii.gz"))
    shape = big_shape(args.big_gb, np.dtype(args.dtype))
    start = time.perf_counter()
    write_big(root, shape, args.dtype, formats)
    print(
        f"[big] wrote {shape} {args.dtype} in {time.perf_counter() - start:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    rows, problems = [], []
    for fmt in formats:
        warm(root / fmt)
        measures = [Measure("big", fmt, v) for v in ("ours fingerprint+masks", "baseline +masks")]
        alternate(measures, root / fmt / "images", root / fmt / "masks", 1)
        problems += disagreements(measures)
        for m in measures:
            # this row reports the whole process's peak, not the part above the interpreter
            m.peaks_above = m.peaks
            row = _row(
                m,
                measures[1] if m is measures[0] else None,
                None,
                BIG_TARGET_MB if m is measures[0] else None,
            )
            rows.append(row)
        shutil.rmtree(root / fmt)  # free the disk before the next format
    return rows, problems


def bench_many(root: Path, args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    """Scans of N/10 and N small files: the time per file should stay the same."""
    fmt = args.formats[0]
    rows, problems = [], []
    for count in sorted({max(1, args.many // 10), args.many}):
        folder = root / f"many{count}"
        write_dataset(folder, count, (16, 64, 64), args.dtype, (fmt,), False, args.workers)
        warm(folder)
        measures = [Measure(f"many {count}", fmt, v) for v in ("ours fingerprint", "baseline scan")]
        alternate(measures, folder / fmt / "images", None, args.repeats)
        problems += disagreements(measures)
        for m in measures:
            row = _row(m, measures[1] if m is measures[0] else None, None, None)
            row.target = f"{1000 * m.median_s / count:.2f} ms/file"
            rows.append(row)
        shutil.rmtree(folder)
    return rows, problems


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--images", type=int, default=24, help="number of images (default 24)")
    p.add_argument(
        "--shape",
        type=int,
        nargs="+",
        default=[96, 512, 512],
        help="image shape Z Y X, or Y X for 2D (default 96 512 512)",
    )
    p.add_argument("--dtype", default="uint16", help="image dtype (default uint16)")
    p.add_argument(
        "--formats",
        nargs="+",
        choices=FORMATS,
        default=["tif", "nii.gz"],
        help="file formats to test (default: tif nii.gz)",
    )
    p.add_argument("--no-masks", dest="masks", action="store_false", help="images only")
    p.add_argument("--no-cli", dest="cli", action="store_false", help="skip the whole-command run")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per variant (default 3)")
    p.add_argument(
        "--big-gb",
        type=float,
        default=0.0,
        help="also test one volume of this many GiB and its mask (e.g. 4; default off)",
    )
    p.add_argument(
        "--many",
        type=int,
        default=1000,
        help="also scan this many small files, and a tenth of them (0: skip)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes used to write the dataset",
    )
    p.add_argument("--out", type=Path, default=None, help="parent folder of the temporary data")
    p.add_argument("--keep", action="store_true", help="keep the generated files")
    p.add_argument("--json", type=Path, default=None, help="also write the results to this file")
    args = p.parse_args(argv)
    if len(args.shape) not in (2, 3):
        p.error("--shape takes 2 or 3 numbers")
    args.shape = tuple(args.shape) if len(args.shape) == 3 else (1, *args.shape)
    return args


def busy_cores(seconds: float = 1.0) -> float:
    """How many cores the whole machine kept busy over the next ``seconds`` (Linux; else 0)."""

    def sample() -> tuple[int, int]:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(ticks), ticks[3] + ticks[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    return (1 - (idle1 - idle0) / max(total1 - total0, 1)) * (os.cpu_count() or 1)


def _load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def _check_disk(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed * 1.2:
        sys.exit(
            f"not enough disk space in {folder}: about {needed / 2**30:.1f} GiB needed, "
            f"{free / 2**30:.1f} GiB free; pass --out on a larger disk or lower --big-gb"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    dtype = np.dtype(args.dtype)
    image_bytes = int(np.prod(args.shape)) * dtype.itemsize
    parent = args.out or Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    per_case = image_bytes + (int(np.prod(args.shape)) if args.masks else 0)
    big_bytes = int(args.big_gb * 2**30 * (1 + 1 / dtype.itemsize)) * 2
    _check_disk(parent, per_case * args.images * len(args.formats) + big_bytes)
    root = Path(tempfile.mkdtemp(prefix="napari-autoconfig-bench-", dir=parent))
    load_start, busy = _load(), 0.0
    print(f"machine: {machine()}\ndata: {root}", file=sys.stderr, flush=True)
    try:
        start = time.perf_counter()
        write_dataset(
            root / "set",
            args.images,
            args.shape,
            args.dtype,
            tuple(args.formats),
            args.masks,
            args.workers,
        )
        print(
            f"[data] wrote {args.images} x {args.shape} {args.dtype} in "
            f"{time.perf_counter() - start:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        busy = busy_cores()
        if busy > 0.25:
            print(
                f"warning: other processes kept {busy:.1f} cores busy just before the timings: "
                "they share the cores, so timings and parallel speed-ups come out worse",
                file=sys.stderr,
            )
        rows, problems = bench_dataset(root / "set", args, image_bytes)
        if args.big_gb > 0:
            more, found = bench_big(root / "big", args)
            rows, problems = rows + more, problems + found
        if args.many > 0:
            more, found = bench_many(root, args)
            rows, problems = rows + more, problems + found
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\nmachine: {machine()}")
    print(
        f"load average (1, 5, 15 min): {load_start} at the start, {_load()} at the end; "
        f"cores busy with other work just before the timings: {busy:.2f}"
    )
    print(
        f"dataset: {args.images} images {args.shape} {args.dtype}, masks: {args.masks}, "
        f"repeats: {args.repeats}, warm file cache; peak MB = peak resident memory above the "
        "interpreter (big: whole process)\n"
    )
    print_table(rows)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"machine": machine(), "rows": [r.__dict__ for r in rows], "problems": problems},
                indent=1,
            )
        )
    if problems:
        print("\nVARIANTS DISAGREE:\n  " + "\n  ".join(problems))
        return 1
    print("\nall variants agree on every number")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        _child(*sys.argv[2:5])
    else:
        sys.exit(main())
