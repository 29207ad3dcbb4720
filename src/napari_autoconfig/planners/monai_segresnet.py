"""What MONAI Auto3DSeg's SegResNet algorithm template trains with, from a datastats summary.

Auto3DSeg's ``DataAnalyzer`` writes ``datastats.yaml``; its SegResNet template turns that file's
``stats_summary`` into the values of ``configs/hyper_parameters.yaml`` (``fill_template_config``),
and its segmenter adjusts the ROI and the batch once more for the GPU when training starts. This
module reproduces both steps without torch or monai, on MONAI's own key names.

Rules followed: Project-MONAI/research-contributions at commit ``21ed8e5`` (2025-05-09), the files
``auto3dseg/algorithm_templates/segresnet/scripts/algo.py`` (``SegresnetAlgo.
fill_template_config``), ``scripts/utils.py`` (``auto_adjust_network_settings``,
``roi_size_default``), ``scripts/segmenter.py`` (the training-time adjustment and
``num_crops_per_image``) and ``configs/hyper_parameters.yaml`` (``auto_scale_allowed: true``,
``auto_scale_batch: true``). That commit is the templates tarball monai 1.6.1 downloads:
``monai.utils.misc.MONAIEnvVars.algo_hash()`` defaults to ``"21ed8e5"`` and ``bundle_gen`` fetches
``releases/download/algo_templates/21ed8e5.tar.gz``.

Axis order: MONAI's datastats come from images reoriented to RAS, so every spacing and size in
``stats_summary`` is ``(x, y, z)``; fields ending ``_xyz`` keep that order, and the ``*_zyx``
properties give the numpy order used to draw boxes. The template's ``spacing[2]`` is z.

What is left out (the user's ``input.yaml`` can set them; this module takes the template's
defaults): ``class_names``/``class_index``/``sigmoid`` (overlapping classes), explicit
``roi_size``/``batch_size``/``image_size`` overrides, the ``auto_scale_*`` switches of the input
config (off by default at fill time), and ``num_steps_per_image``, which depends on the cache rate
(host memory) at training time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import DatasetError, LimitsError

#: research-contributions commit of the templates monai 1.6.1 downloads (its ``MONAI_ALGO_HASH``).
TEMPLATE_COMMIT = "21ed8e5"
#: How plans say where their rules come from.
TEMPLATE_VERSION = (
    f"Auto3DSeg segresnet template, research-contributions@{TEMPLATE_COMMIT} (monai 1.6.1)"
)
#: ``scripts/utils.py``'s ``roi_size_default``, (x, y, z).
ROI_SIZE_DEFAULT_XYZ = (224, 224, 144)
#: ``fill_template_config``'s ``resample_mode`` values.
RESAMPLE_MODES = ("auto", "median", "median10", "ones")
#: The modalities the template accepts, and the normalization each gives.
NORMALIZE_MODES = {"ct": "range", "mri": "meanstd"}


@dataclass(frozen=True)
class NetworkSettings:
    """What ``auto_adjust_network_settings`` returns.

    Attributes
    ----------
    roi_size_xyz : tuple of int
        The training crop, (x, y, z) voxels at the resample spacing.
    levels : int
        Network levels (downsamplings + 1).
    init_filters : int
        Filters of the first level.
    batch_size : int
        Crops per step.
    """

    roi_size_xyz: tuple[int, int, int]
    levels: int
    init_filters: int
    batch_size: int


def auto_adjust_network_settings(
    image_size_mm_xyz: Sequence[float],
    spacing_xyz: Sequence[float],
    *,
    output_classes: int | None = None,
    anisotropic_scales: bool = False,
    gpu_memory_gb: float = 16.0,
    auto_scale_roi: bool = False,
    auto_scale_batch: bool = False,
    auto_scale_filters: bool = False,
    levels: int | None = None,
    levels_limit: int = 5,
) -> NetworkSettings:
    """The template's ROI, levels, filters and batch for an image size and a spacing.

    The same arithmetic as ``scripts/utils.py::auto_adjust_network_settings`` (numpy float64 steps
    included, so that rounding lands where the template's does).

    Parameters
    ----------
    image_size_mm_xyz : sequence of float
        Image size in mm, (x, y, z): the template passes ``sizemm#median``.
    spacing_xyz : sequence of float
        The resample spacing, (x, y, z).
    output_classes : int, optional
        Number of classes; above 20 the ROI budget shrinks.
    anisotropic_scales : bool
        Whether extra levels are allowed along the coarse axes.
    gpu_memory_gb : float
        GPU memory in GiB; only used when an ``auto_scale_*`` switch is on (the template then
        reads it from torch), otherwise the template takes 16.
    auto_scale_roi, auto_scale_batch, auto_scale_filters : bool
        The template's switches.
    levels : int, optional
        Fixed number of levels (the segmenter passes ``len(blocks_down)``); None computes them.
    levels_limit : int
        Most levels computed.
    """
    roi_size = np.array(ROI_SIZE_DEFAULT_XYZ)
    base_numel = roi_size.prod()
    gpu_mem = float(gpu_memory_gb)
    if auto_scale_batch or auto_scale_roi or auto_scale_filters:
        gpu_factor_init = gpu_factor = max(1, gpu_mem / 16)
        if anisotropic_scales:
            gpu_factor = max(1, 0.8 * gpu_factor)
    else:  # without a switch the template plans for a 16 GB card whatever the card
        gpu_mem = 16
        gpu_factor = gpu_factor_init = 1

    if output_classes is not None and output_classes > 20:
        # more classes, larger logits: the budget shrinks with the class count
        base_adjust = gpu_mem / (output_classes * 0.2 + 11.5)
        if gpu_mem < 17:
            base_adjust /= 2
        if base_adjust < 0.95:  # a cube of a multiple of 16 within the reduced budget
            base_numel *= base_adjust
            r = int(base_numel ** (1 / 3) / 2**4)
            roi_size = np.array([max(1, r) * 2**4] * 3)
            gpu_factor = gpu_factor_init = 1
            auto_scale_roi = False
        else:
            gpu_factor_init = gpu_factor = base_adjust

    image_size = np.floor(
        np.array(image_size_mm_xyz, dtype=float) / np.array(spacing_xyz, dtype=float)
    )
    roi_size = np.minimum(roi_size, image_size)

    # grow by 15 % steps towards the budget, never past the median image
    max_numel = base_numel * gpu_factor if auto_scale_roi else base_numel
    while roi_size.prod() < max_numel:
        old_numel = roi_size.prod()
        roi_size = np.minimum(roi_size * 1.15, image_size)
        if roi_size.prod() == old_numel:
            break

    if not anisotropic_scales:
        if levels is None:
            levels = min(min(np.floor(np.log2(roi_size))), levels_limit)
        factor = 2 ** (levels - 1)
        roi_size = factor * np.maximum(2, np.floor(roi_size / factor))
    else:
        # a coarse axis needs fewer downsamplings: it counts extra levels on the others' behalf
        extra_levels = np.floor(np.log2(np.max(spacing_xyz) / np.array(spacing_xyz, dtype=float)))
        extra_levels = max(extra_levels) - extra_levels
        if levels is None:
            levels = min(min(np.floor(np.log2(roi_size)) + extra_levels), levels_limit)
        factor = 2 ** (np.maximum(1, levels - extra_levels) - 1)
        roi_size = factor * np.maximum(2, np.floor(roi_size / factor))

    init_filters = 32
    if auto_scale_filters and roi_size.prod() < base_numel * gpu_factor:
        init_filters = int(max(32, np.floor(4 * (base_numel / roi_size.prod())) * 8))
        gpu_factor_init *= init_filters / 32
    batch_size = 1
    if auto_scale_batch and roi_size.prod() < base_numel * gpu_factor_init:
        batch_size = int(1.1 * gpu_factor_init)
    x, y, z = (int(v) for v in roi_size.astype(int))
    return NetworkSettings((x, y, z), int(levels), init_filters, batch_size)


def blocks_down_for(levels: int) -> tuple[int, ...]:
    """The template's ``network#blocks_down`` for a number of levels (the 5-level default below 1,
    as the template, whose ``if`` chain has no branch there)."""
    return {4: (1, 2, 2, 4), 3: (1, 2, 4), 2: (1, 3), 1: (2,)}.get(levels, (1, 2, 2, 4, 4))


@dataclass(frozen=True)
class SegResNetPlan:
    """The values Auto3DSeg's SegResNet template trains with on a dataset.

    Attributes
    ----------
    template : str
        Which template rules (``TEMPLATE_VERSION``).
    modality, normalize_mode : str
        ``"ct"`` gives ``"range"`` (clip to ``intensity_bounds``, scale to [0, 1]); ``"mri"`` gives
        ``"meanstd"``.
    input_channels, output_classes : int
        ``channels#max`` (+ extra modalities), and the number of label values (background
        included).
    intensity_bounds : tuple of float
        Foreground intensity percentiles 0.5 and 99.5 (means over cases, as MONAI summarises).
    resample_mode : str
        How ``spacing_xyz`` was chosen (``"auto"`` by default, or ``"given"``).
    spacing_xyz : tuple of float
        ``resample_resolution``, (x, y, z) mm.
    anisotropic_scales : bool
        True unless the in-plane mean spacing is within [0.75, 1.25] times z.
    resample : bool
        Whether images are resampled: some case's spacing (percentile 0.5 or 99.5 over cases) is
        under half or over 1.5 times ``spacing_xyz``.
    spacing_median_xyz, spacing_lower_xyz, spacing_upper_xyz : tuple of float
        Median and percentiles 0.5 / 99.5 of the spacings over cases.
    image_size_mm_median_xyz, image_size_mm_90_xyz : tuple of float
        Median and 90th percentile of the image sizes in mm.
    image_size_xyz : tuple of int
        ``image_size``: the 90th percentile size at ``spacing_xyz`` (voxels, truncated).
    roi_size_xyz : tuple of int
        ``roi_size`` written in ``hyper_parameters.yaml`` (x, y, z voxels at ``spacing_xyz``).
    levels : int
        Network levels; ``blocks_down`` follows from it.
    blocks_down : tuple of int
        ``network#blocks_down``.
    init_filters : int
        ``network#init_filters``.
    batch_size : int
        ``batch_size`` written in ``hyper_parameters.yaml``.
    crop_mode : str
        ``"ratio"`` (class-balanced crops) when the ROI is under 0.8 of the image along some axis,
        otherwise ``"rand"``.
    num_epochs : int
        ``clip(ceil(80000 / n_cases), 300, 1250)``.
    n_cases : int
        Cases the datastats summarise.
    gpu_memory_gb : float
        The GPU the training-time values are for.
    train_roi_size_xyz : tuple of int
        The ROI the segmenter trains with after its own adjustment (``auto_scale_batch: true`` in
        the template's ``hyper_parameters.yaml``): the same as ``roi_size_xyz`` except with more
        than 20 classes, where the GPU's memory sets the budget.
    train_batch_size : int
        Images per step at training time (1 in ``"ratio"`` crop mode, whose crops go to
        ``num_crops_per_image`` instead).
    num_crops_per_image : int
        Crops taken from each image per step.
    train_num_epochs : int
        Epochs actually run: ``num_epochs // min(3, num_crops_per_image)``.
    """

    template: str
    modality: str
    normalize_mode: str
    input_channels: int
    output_classes: int
    intensity_bounds: tuple[float, float]
    resample_mode: str
    spacing_xyz: tuple[float, float, float]
    anisotropic_scales: bool
    resample: bool
    spacing_median_xyz: tuple[float, float, float]
    spacing_lower_xyz: tuple[float, float, float]
    spacing_upper_xyz: tuple[float, float, float]
    image_size_mm_median_xyz: tuple[float, float, float]
    image_size_mm_90_xyz: tuple[float, float, float]
    image_size_xyz: tuple[int, int, int]
    roi_size_xyz: tuple[int, int, int]
    levels: int
    blocks_down: tuple[int, ...]
    init_filters: int
    batch_size: int
    crop_mode: str
    num_epochs: int
    n_cases: int
    gpu_memory_gb: float
    train_roi_size_xyz: tuple[int, int, int]
    train_batch_size: int
    num_crops_per_image: int
    train_num_epochs: int

    @property
    def spacing_zyx(self) -> tuple[float, float, float]:
        """The resample spacing in numpy order (z, y, x)."""
        return _zyx(self.spacing_xyz)

    @property
    def roi_size_zyx(self) -> tuple[int, int, int]:
        """The ROI it trains with (``train_roi_size_xyz``), in numpy order (z, y, x) voxels at
        ``spacing_zyx``."""
        return _zyx(self.train_roi_size_xyz)

    @property
    def roi_size_mm_zyx(self) -> tuple[float, float, float]:
        """The ROI it trains with in mm (or the dataset's unit), (z, y, x), at ``spacing_zyx``:
        the box to draw when ``resample`` (otherwise each image trains at its own spacing and the
        ROI is ``roi_size_zyx`` of its voxels)."""
        return tuple(r * s for r, s in zip(self.roi_size_zyx, self.spacing_zyx))

    @property
    def image_size_zyx(self) -> tuple[int, int, int]:
        """``image_size`` in numpy order (z, y, x)."""
        return _zyx(self.image_size_xyz)

    def to_json(self) -> dict[str, object]:
        """The plan as JSON-ready values, MONAI's config names where it has one (``(x, y, z)``
        order, as in ``hyper_parameters.yaml``), plus ``roi_size_zyx`` for numpy readers."""
        return {
            "template": self.template,
            "modality": self.modality,
            "normalize_mode": self.normalize_mode,
            "input_channels": self.input_channels,
            "output_classes": self.output_classes,
            "intensity_bounds": list(self.intensity_bounds),
            "resample_mode": self.resample_mode,
            "resample_resolution": list(self.spacing_xyz),
            "resample": self.resample,
            "anisotropic_scales": self.anisotropic_scales,
            "spacing_median": list(self.spacing_median_xyz),
            "spacing_lower": list(self.spacing_lower_xyz),
            "spacing_upper": list(self.spacing_upper_xyz),
            "image_size_mm_median": list(self.image_size_mm_median_xyz),
            "image_size_mm_90": list(self.image_size_mm_90_xyz),
            "image_size": list(self.image_size_xyz),
            "roi_size": list(self.roi_size_xyz),
            "levels": self.levels,
            "network#blocks_down": list(self.blocks_down),
            "network#init_filters": self.init_filters,
            "batch_size": self.batch_size,
            "crop_mode": self.crop_mode,
            "num_epochs": self.num_epochs,
            "n_cases": self.n_cases,
            "training": {
                "gpu_memory_gb": self.gpu_memory_gb,
                "roi_size": list(self.train_roi_size_xyz),
                "roi_size_zyx": list(self.roi_size_zyx),
                "batch_size": self.train_batch_size,
                "num_crops_per_image": self.num_crops_per_image,
                "num_epochs": self.train_num_epochs,
            },
        }


def plan_segresnet(
    stats_summary: Mapping[str, object],
    *,
    gpu_memory_gb: float = 16.0,
    modality: str = "ct",
    resample_mode: str = "auto",
    resample_resolution_xyz: Sequence[float] | None = None,
    extra_modalities: int = 0,
) -> SegResNetPlan:
    """The SegResNet template's training values from a DataAnalyzer ``stats_summary``.

    Parameters
    ----------
    stats_summary : mapping
        ``datastats.yaml``'s ``stats_summary`` (MONAI's key names; the whole file's dict, with
        its ``stats_summary`` key, is accepted too).
    gpu_memory_gb : float
        Memory of the training GPU in GiB (the smallest, with several): the segmenter scales the
        batch (and, above 20 classes, the ROI) to it when training starts.
    modality : str
        ``"ct"`` (the template's assumption when ``input.yaml`` names none) or ``"mri"``.
    resample_mode : str
        One of ``RESAMPLE_MODES``; ignored when ``resample_resolution_xyz`` is given.
    resample_resolution_xyz : sequence of float, optional
        A spacing chosen by the user, (x, y, z).
    extra_modalities : int
        Number of ``extra_modalities`` in ``input.yaml`` (each adds an input channel).

    Raises
    ------
    LimitsError
        An unknown modality or resample mode, a GPU memory that is not positive.
    DatasetError
        A summary without the keys the template reads, or of no case.
    """
    summary = stats_summary.get("stats_summary", stats_summary)
    modality = str(modality).lower().strip()
    if modality not in NORMALIZE_MODES:
        raise LimitsError(f"SegResNet's modality must be 'ct' or 'mri'; got {modality!r}.")
    if resample_resolution_xyz is None and resample_mode not in RESAMPLE_MODES:
        raise LimitsError(
            f"Unknown resample_mode {resample_mode!r}: use one of {', '.join(RESAMPLE_MODES)}."
        )
    if not gpu_memory_gb > 0:
        raise LimitsError(f"gpu_memory_gb must be positive; got {gpu_memory_gb!r}.")

    n_cases = int(_get(summary, "n_cases"))
    if n_cases < 1:
        raise DatasetError(
            "MONAI's datastats hold no case (MONAI skipped every one, e.g. an image without a "
            "voxel above 0): SegResNet's plan needs at least one analysed image with its label."
        )
    input_channels = int(_get(summary, "image_stats", "channels", "max")) + int(extra_modalities)
    output_classes = len(_get(summary, "label_stats", "labels"))
    fg = _get(summary, "image_foreground_stats", "intensity")
    bounds = (float(_get(fg, "percentile_00_5")), float(_get(fg, "percentile_99_5")))

    median = _triple(_get(summary, "image_stats", "spacing", "median"))
    p10 = _triple(_get(summary, "image_stats", "spacing", "percentile_10_0"))
    if resample_resolution_xyz is not None:
        spacing = _triple(resample_resolution_xyz)
        resample_mode = "given"
    elif resample_mode == "median":
        spacing = median
    elif resample_mode == "median10":
        spacing = (median[0], median[1], p10[2])
    elif resample_mode == "ones":
        spacing = (1.0, 1.0, 1.0)
    else:  # "auto": median in plane, z no finer than the in-plane mean nor the 10th percentile
        spacing = (median[0], median[1], max(0.5 * (median[0] + median[1]), p10[2]))
    anisotropic = not (0.75 <= (0.5 * (spacing[0] + spacing[1]) / spacing[2]) <= 1.25)

    lower = _triple(_get(summary, "image_stats", "spacing", "percentile_00_5"))
    upper = _triple(_get(summary, "image_stats", "spacing", "percentile_99_5"))
    target = np.array(spacing)
    resample = bool(
        np.any(np.array(lower) / target < 0.5) or np.any(np.array(upper) / target > 1.5)
    )

    size_mm_90 = _triple(_get(summary, "image_stats", "sizemm", "percentile_90_0"))
    size_mm_median = _triple(_get(summary, "image_stats", "sizemm", "median"))
    image_size = tuple(int(v) for v in (np.array(size_mm_90) / target).astype(np.int32))
    num_epochs = int(np.clip(np.ceil(80000.0 / n_cases), a_min=300, a_max=1250))

    net = auto_adjust_network_settings(
        size_mm_median,
        spacing,
        output_classes=output_classes,
        anisotropic_scales=anisotropic,
    )
    blocks_down = blocks_down_for(net.levels)
    # "ratio" samples crops around each class: chosen where the ROI misses much of the image
    ratio = any(r < 0.8 * i for r, i in zip(net.roi_size_xyz, image_size))
    crop_mode = "ratio" if ratio else "rand"

    # When training starts the segmenter adjusts once more, on the real GPU, with the template's
    # hyper_parameters.yaml switches (auto_scale_allowed and auto_scale_batch true).
    train = auto_adjust_network_settings(
        size_mm_median,
        spacing,
        output_classes=output_classes,
        anisotropic_scales=anisotropic,
        gpu_memory_gb=gpu_memory_gb,
        auto_scale_batch=True,
        levels=len(blocks_down),
    )
    crops = train.batch_size if crop_mode == "ratio" else 1
    train_batch = 1 if crop_mode == "ratio" else train.batch_size

    return SegResNetPlan(
        template=TEMPLATE_VERSION,
        modality=modality,
        normalize_mode=NORMALIZE_MODES[modality],
        input_channels=input_channels,
        output_classes=output_classes,
        intensity_bounds=bounds,
        resample_mode=resample_mode,
        spacing_xyz=spacing,
        anisotropic_scales=anisotropic,
        resample=resample,
        spacing_median_xyz=median,
        spacing_lower_xyz=lower,
        spacing_upper_xyz=upper,
        image_size_mm_median_xyz=size_mm_median,
        image_size_mm_90_xyz=size_mm_90,
        image_size_xyz=image_size,
        roi_size_xyz=net.roi_size_xyz,
        levels=net.levels,
        blocks_down=blocks_down,
        init_filters=net.init_filters,
        batch_size=net.batch_size,
        crop_mode=crop_mode,
        num_epochs=num_epochs,
        n_cases=n_cases,
        gpu_memory_gb=float(gpu_memory_gb),
        train_roi_size_xyz=train.roi_size_xyz,
        train_batch_size=train_batch,
        num_crops_per_image=crops,
        train_num_epochs=max(1, num_epochs // min(3, crops)),
    )


def _get(node: object, *keys: str) -> object:
    """``node[k1][k2]...``, or a DatasetError naming the ``#``-joined key MONAI's parser uses."""
    for i, key in enumerate(keys):
        if not isinstance(node, Mapping) or key not in node:
            path = "#".join(keys[: i + 1])
            raise DatasetError(
                f"The datastats summary has no '{path}': SegResNet's plan needs the "
                "stats_summary of monai's DataAnalyzer (datastats.yaml) with labels."
            )
        node = node[key]
    return node


def _triple(values: object) -> tuple[float, float, float]:
    """Three floats, (x, y, z), from a datastats list; a DatasetError if it is not three numbers."""
    try:
        x, y, z = (float(v) for v in values)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise DatasetError(
            f"Expected three spatial values (x, y, z) in the datastats; got {values!r}. "
            "SegResNet plans 3D images only."
        ) from None
    if not all(math.isfinite(v) and v > 0 for v in (x, y, z)):
        raise DatasetError(f"Spacings and sizes must be positive numbers; got {values!r}.")
    return (x, y, z)


def _zyx(xyz: tuple) -> tuple:
    """(x, y, z) reversed into numpy's (z, y, x)."""
    return (xyz[2], xyz[1], xyz[0])
