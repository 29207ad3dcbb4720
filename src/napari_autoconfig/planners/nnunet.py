"""nnU-Net v2's default experiment plan (``ExperimentPlanner``, ``nnUNetPlans``), without torch.

nnunetv2 2.8.1's planner is arithmetic on the dataset fingerprint and ``dataset.json``; the one
place it builds a network (its GPU memory estimate) counts the network's feature maps, which is
integer arithmetic over the topology (:func:`feature_map_size`). Every step follows nnU-Net's
own, roundings included (Python's ``round``: halves to even):

- target spacing: the per-axis median, except along a strongly anisotropic axis (spacing more
  than 3x the others *and* fewer than a third of their voxels), where the 10th percentile is
  taken (:func:`fullres_target_spacing`);
- axes transposed so that the coarsest comes first (:func:`transpose_axes`);
- per configuration (:func:`plan_configuration`): an initial patch of 256^3 (2D: 2048^2) voxels
  shaped like the inverse spacing and capped by the median shape, pooling per axis while the
  feature map is at least 8 voxels long and not more than twice as coarse as the finest axis,
  the patch then shrunk along the axis that covers most of the median until the network fits the
  8 GB reference, and a batch size from the reference, capped at 5 % of the dataset's voxels;
- ``3d_fullres`` where the median image has more than one slice, ``3d_lowres`` where a patch
  covers less than a quarter of the median image (and the coarser spacing halves its voxels at
  least), ``2d`` always (:func:`plan_nnunet`).

nnU-Net's residual-encoder presets (``nnUNetPlannerResEncM`` / ``L`` / ``XL``, its recommended
plans since 2024) are :class:`NnUNetPreset` constants over the same planner: their references
and GPU targets, a batch cap of the whole dataset instead of 5 %, and the two rules of
``ResEncUNetPlanner`` that differ: the residual encoder's feature maps in the estimate
(:func:`feature_map_size`) and a shrink loop that compares the estimate itself to the reference.

Axes: nnU-Net works in its reader's axis order, which for the SimpleITK formats is numpy's
(z, y, x); patches and spacings of a configuration are in *transposed* order
(``transpose_forward``). :attr:`NnUNetConfiguration.patch_size_zyx` and ``spacing_zyx`` turn them
back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .nnunet_records import NnUNetFingerprint

# ExperimentPlanner's constants (nnunetv2 2.8.1)
BASE_FEATURES = 32
MAX_FEATURES_3D = 320
MAX_FEATURES_2D = 512
REFERENCE_3D = 560_000_000  # feature-map voxels of the reference network at batch 2, 8 GB
REFERENCE_2D = 85_000_000  # ... at batch 12
REFERENCE_GB = 8
REFERENCE_BATCH_3D = 2
REFERENCE_BATCH_2D = 12
MIN_FEATURE_MAP_EDGE = 4
CONVS_PER_STAGE = 2
MIN_BATCH = 2
MAX_DATASET_COVERED = 0.05
LOWRES_THRESHOLD = 0.25
LOWRES_SPACING_STEP = 1.03
ANISO_THRESHOLD = 3

PLAIN_UNET = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
RESIDUAL_UNET = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"


@dataclass(frozen=True)
class NnUNetPreset:
    """One of nnU-Net's experiment planners: the constants that make it differ from the default.

    Attributes
    ----------
    name : str
        Our name for it (``default``, ``ResEncM``, ``ResEncL``, ``ResEncXL``).
    planner : str
        nnU-Net's class (``nnUNetv2_plan_experiment -pl``), written as ``experiment_planner_used``.
    plans_name : str
        The plans file's name without ``.json`` (``nnUNetv2_train ... -p``).
    target_gb : float
        The default ``gpu_memory_target_in_gb``.
    reference_gb : float
        The GPU memory the references stand for (``UNet_reference_val_corresp_GB``).
    reference_3d, reference_2d : int
        Feature-map voxels of a network that fills ``reference_gb`` at batch 2 (3D) or 12 (2D).
    max_dataset_covered : float
        The batch cap, as a share of the dataset's voxels one batch may cover.
    network_class : str
        The network nnU-Net builds (``PlainConvUNet`` or ``ResidualEncoderUNet``).
    encoder_blocks, decoder_convs : tuple of int
        Convolutions (plain) or residual blocks per encoder stage, convolutions per decoder stage.
    """

    name: str
    planner: str
    plans_name: str
    target_gb: float
    reference_gb: float
    reference_3d: int
    reference_2d: int
    max_dataset_covered: float
    network_class: str
    encoder_blocks: tuple[int, ...]
    decoder_convs: tuple[int, ...]

    @property
    def residual(self) -> bool:
        """Whether ``ResEncUNetPlanner``'s rules apply: residual feature maps in the estimate, the
        shrink loop on the estimate itself, ``n_blocks_per_stage`` in the architecture."""
        return self.network_class == RESIDUAL_UNET

    def reference(self, two_d: bool, target_gb: float) -> float:
        """The feature-map budget at ``target_gb`` (nnU-Net's order of operations, bit for bit)."""
        return (self.reference_2d if two_d else self.reference_3d) * (target_gb / self.reference_gb)

    def too_big(self, estimate: int, two_d: bool, reference: float) -> bool:
        """The shrink loop's test: the default planner scales the estimate to a batch of two
        (so that at least two patches fit), ResEnc compares the estimate itself."""
        if self.residual:
            return estimate > reference
        ref_batch = REFERENCE_BATCH_2D if two_d else REFERENCE_BATCH_3D
        return estimate / ref_batch * 2 > reference

    def data_identifier(self, configuration: str) -> str:
        """The preprocessed data's folder name: ``2d`` and ``3d_fullres`` share the default
        planner's (``nnUNetPlans_2d``), ``3d_lowres`` is the plans' own."""
        if configuration in ("2d", "3d_fullres"):
            return f"nnUNetPlans_{configuration}"
        return f"{self.plans_name}_{configuration}"


def _resenc(size: str, gb: int, reference_3d: int, reference_2d: int) -> NnUNetPreset:
    """nnU-Net's ``nnUNetPlannerResEnc<size>``: its GPU memory (the default target and what its
    references stand for), its references, and what every ResEnc preset shares."""
    return NnUNetPreset(
        name=f"ResEnc{size}",
        planner=f"nnUNetPlannerResEnc{size}",
        plans_name=f"nnUNetResEncUNet{size}Plans",
        target_gb=gb,
        reference_gb=gb,
        reference_3d=reference_3d,
        reference_2d=reference_2d,
        max_dataset_covered=1,  # no 5 % cap on the batch
        network_class=RESIDUAL_UNET,
        encoder_blocks=(1, 3, 4, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6),
        decoder_convs=(1,) * 12,
    )


#: nnunetv2 2.8.1's planners by our name: the default and the three residual-encoder presets.
PRESETS: dict[str, NnUNetPreset] = {
    "default": NnUNetPreset(
        "default",
        "ExperimentPlanner",
        "nnUNetPlans",
        target_gb=REFERENCE_GB,
        reference_gb=REFERENCE_GB,
        reference_3d=REFERENCE_3D,
        reference_2d=REFERENCE_2D,
        max_dataset_covered=MAX_DATASET_COVERED,
        network_class=PLAIN_UNET,
        encoder_blocks=(CONVS_PER_STAGE,) * 14,
        decoder_convs=(CONVS_PER_STAGE,) * 13,
    ),
    "ResEncM": _resenc("M", 8, 680_000_000, 135_000_000),
    "ResEncL": _resenc("L", 24, 2_100_000_000, 380_000_000),
    "ResEncXL": _resenc("XL", 40, 3_600_000_000, 560_000_000),
}
DEFAULT_PRESET = PRESETS["default"]


def nnunet_preset(preset: str | NnUNetPreset) -> NnUNetPreset:
    """The preset of a name: ours (``ResEncL``) or nnU-Net's class (``nnUNetPlannerResEncL``)."""
    if isinstance(preset, NnUNetPreset):
        return preset
    for candidate in PRESETS.values():
        if preset in (candidate.name, candidate.planner):
            return candidate
    raise ValueError(
        f"nnU-Net has no planner preset {preset!r} here: choose one of {', '.join(PRESETS)}."
    )


def preset_advice(gpu_memory_gb: float) -> str:
    """One line: which of nnU-Net's ResEnc presets a GPU of ``gpu_memory_gb`` fits, and what the
    next one expects (nnU-Net's own targets: M 8 GB, L 24, XL 40)."""
    resenc = [p for p in PRESETS.values() if p.residual]
    fitting = [p for p in resenc if p.target_gb <= gpu_memory_gb]
    larger = [p for p in resenc if p.target_gb > gpu_memory_gb]
    nxt = f", {larger[0].name} expects {larger[0].target_gb:g} GB" if larger else ""
    if not fitting:
        return (
            f"{gpu_memory_gb:g} GB: below every ResEnc preset ({larger[0].name} expects "
            f"{larger[0].target_gb:g} GB); the default planner or {larger[0].name} planned for "
            f"{gpu_memory_gb:g} GB"
        )
    best = fitting[-1]
    return f"{gpu_memory_gb:g} GB: {best.name} fits (made for {best.target_gb:g} GB){nxt}"


#: Channel names (compared casefolded) with their own normalisation; anything else is z-scored.
NORMALIZATION_OF_CHANNEL = {
    "ct": "CTNormalization",
    "nonorm": "NoNormalization",
    "zscore": "ZScoreNormalization",
    "rescale_to_0_1": "RescaleTo01Normalization",
    "rgb_to_0_1": "RGBTo01Normalization",
}


@dataclass(frozen=True)
class Topology:
    """The U-Net of a patch: poolings and convolution kernels per stage, and the padded patch.

    Attributes
    ----------
    patch_size : tuple of int
        The patch rounded up to a multiple of ``divisible_by`` along each axis.
    strides : tuple of tuple of int
        One per stage, the first all ones (nnU-Net's ``pool_op_kernel_sizes``).
    kernel_sizes : tuple of tuple of int
        Convolution kernel per stage (3 or 1 per axis).
    divisible_by : tuple of int
        ``2 ** (poolings along the axis)``.
    """

    patch_size: tuple[int, ...]
    strides: tuple[tuple[int, ...], ...]
    kernel_sizes: tuple[tuple[int, ...], ...]
    divisible_by: tuple[int, ...]

    @property
    def n_stages(self) -> int:
        return len(self.strides)


def pool_and_conv_props(spacing: Sequence[float], patch: Sequence[float]) -> Topology:
    """nnU-Net's ``get_pool_and_conv_props`` (feature maps at least 4 voxels at the bottom).

    Each round pools (by 2) the axes whose feature map is at least 8 voxels long and at most
    twice as coarse as the finest of them, unless a single such axis is shorter than 12; an axis
    gets 3-voxel kernels from the first round where its spacing is within twice the finest.
    ``patch`` may hold a median's halves (``22.5``): the padding then truncates as nnU-Net does.
    """
    dim = len(spacing)
    cur_spacing = [float(s) for s in spacing]
    cur_size = list(patch)
    strides: list[tuple[int, ...]] = [(1,) * dim]
    kernels: list[tuple[int, ...]] = []
    pools = [0] * dim
    kernel = [1] * dim
    while True:
        valid = [i for i in range(dim) if cur_size[i] >= 2 * MIN_FEATURE_MAP_EDGE]
        if not valid:
            break
        finest = min(cur_spacing[i] for i in valid)
        valid = [i for i in valid if cur_spacing[i] / finest < 2]
        if len(valid) == 1 and cur_size[valid[0]] < 3 * MIN_FEATURE_MAP_EDGE:
            break
        if not valid:
            break
        for d in range(dim):
            if kernel[d] != 3 and cur_spacing[d] / min(cur_spacing) < 2:
                kernel[d] = 3
        stride = [1] * dim
        for v in valid:
            stride[v] = 2
            pools[v] += 1
            cur_spacing[v] *= 2
            cur_size[v] = math.ceil(cur_size[v] / 2)
        strides.append(tuple(stride))
        kernels.append(tuple(kernel))
    kernels.append((3,) * dim)
    divisible = tuple(2**p for p in pools)
    padded = []
    for size, div in zip(patch, divisible):
        # nnU-Net's pad_shape: up to the next multiple (a multiple stays), then int() truncates
        new = size + div - size % div
        if size % div == 0:
            new -= div
        padded.append(int(new))
    return Topology(tuple(padded), tuple(strides), tuple(kernels), divisible)


def features_per_stage(n_stages: int, two_d: bool) -> tuple[int, ...]:
    """32, 64, 128... features per stage, capped at 320 (3D) or 512 (2D)."""
    cap = MAX_FEATURES_2D if two_d else MAX_FEATURES_3D
    return tuple(min(cap, BASE_FEATURES * 2**k) for k in range(n_stages))


def feature_map_size(
    patch: Sequence[int],
    strides: Sequence[Sequence[int]],
    features: Sequence[int],
    classes: int,
    preset: NnUNetPreset = DEFAULT_PRESET,
) -> int:
    """Voxels in the feature maps of the preset's U-Net on one patch (nnU-Net's VRAM estimate).

    ``compute_conv_feature_map_size`` of dynamic_network_architectures 0.4.4, without deep
    supervision (nnU-Net's estimate builds the network without it): each stage's size is the
    patch floor-divided by every stride so far. PlainConvUNet: ``encoder_blocks`` convolutions
    per encoder stage. ResidualEncoderUNet: a stem convolution at full size, then per stage
    blocks of two convolutions, the first with a projection when it strides or changes the
    features. Both decoders: ``decoder_convs`` convolutions plus a transposed one per stage and
    one segmentation output at full resolution. The input channels do not enter.
    """
    n = len(strides)
    shapes = []
    current = [int(v) for v in patch]
    for stride in strides:
        current = [c // s for c, s in zip(current, stride)]
        shapes.append(tuple(current))
    sizes = [math.prod(s) for s in shapes]
    blocks = preset.encoder_blocks[:n]
    if preset.residual:
        encoder = features[0] * math.prod(int(v) for v in patch)  # the stem, stride 1
        before, channels = tuple(int(v) for v in patch), features[0]
        for k in range(n):
            projection = channels != features[k] or shapes[k] != before
            encoder += (2 * blocks[k] + projection) * features[k] * sizes[k]
            before, channels = shapes[k], features[k]
    else:
        encoder = sum(blocks[k] * features[k] * sizes[k] for k in range(n))
    # decoder stage s (deepest first) works at the size of encoder stage n - 2 - s
    decoder = sum(
        (preset.decoder_convs[s] + 1) * features[n - 2 - s] * sizes[n - 2 - s] for s in range(n - 1)
    )
    return encoder + decoder + classes * sizes[0]


@dataclass(frozen=True)
class NnUNetConfiguration:
    """One configuration of nnU-Net's plans (``2d``, ``3d_fullres``, ``3d_lowres``).

    Sizes and spacings are in nnU-Net's transposed axis order (``transpose_forward`` of the
    plans); the ``_zyx`` properties give them in the images' own (z, y, x) order.
    """

    name: str
    spacing: tuple[float, ...]
    median_image_size_in_voxels: tuple[float, ...]
    patch_size: tuple[int, ...]
    batch_size: int
    strides: tuple[tuple[int, ...], ...]
    kernel_sizes: tuple[tuple[int, ...], ...]
    features_per_stage: tuple[int, ...]
    normalization_schemes: tuple[str, ...]
    use_mask_for_norm: tuple[bool, ...]
    batch_dice: bool
    feature_map_voxels: int
    transpose_backward: tuple[int, ...] = (0, 1, 2)
    next_stage: str | None = None
    preset: NnUNetPreset = DEFAULT_PRESET

    @property
    def n_stages(self) -> int:
        return len(self.strides)

    @property
    def two_d(self) -> bool:
        return len(self.patch_size) == 2

    @property
    def patch_size_zyx(self) -> tuple[int, ...]:
        """The patch in the images' (z, y, x) order; a 2D patch is (y, x) of the transposed
        in-plane axes, returned as is."""
        if self.two_d:
            return self.patch_size
        return tuple(self.patch_size[i] for i in self.transpose_backward)

    @property
    def spacing_zyx(self) -> tuple[float, ...]:
        """The spacing the network trains at, in the images' (z, y, x) order (3D)."""
        if self.two_d:
            return self.spacing
        return tuple(self.spacing[i] for i in self.transpose_backward)

    @property
    def pool_zyx(self) -> tuple[int, ...]:
        """How many times the network halves the patch along each axis, in the images' (z, y, x)
        order (2D: the transposed in-plane axes, as ``patch_size_zyx``)."""
        per_axis = tuple(
            sum(int(s[axis]) == 2 for s in self.strides) for axis in range(len(self.patch_size))
        )
        if self.two_d:
            return per_axis
        return tuple(per_axis[i] for i in self.transpose_backward)

    @property
    def patch_physical_zyx(self) -> tuple[float, ...]:
        """The patch's size in physical units (the images' spacing unit) at the spacing the
        network trains at, in the images' (z, y, x) order (2D: as ``patch_size_zyx``)."""
        return tuple(float(p) * float(s) for p, s in zip(self.patch_size_zyx, self.spacing_zyx))

    @property
    def gpu_memory_gb(self) -> float:
        """nnU-Net's own GPU memory figure for this configuration, in GB: its feature-map
        estimate at this batch as a share of the preset's reference network, times the GPU
        memory that reference stands for (8 GB; ResEnc L 24, XL 40). A planning figure, not a
        measurement."""
        return self.gpu_memory_share * self.preset.reference_gb

    @property
    def gpu_memory_share(self) -> float:
        """The estimate at this batch as a fraction of the preset's reference (default: 8 GB)."""
        reference = self.preset.reference(self.two_d, self.preset.reference_gb)
        ref_batch = REFERENCE_BATCH_2D if self.two_d else REFERENCE_BATCH_3D
        return self.feature_map_voxels * self.batch_size / ref_batch / reference

    def as_json(self) -> dict:
        """The configuration as nnU-Net writes it in ``nnUNetPlans.json``, key for key."""
        dim = len(self.patch_size)
        conv = "Conv2d" if dim == 2 else "Conv3d"
        norm = "InstanceNorm2d" if dim == 2 else "InstanceNorm3d"
        n = self.n_stages
        encoder_key = "n_blocks_per_stage" if self.preset.residual else "n_conv_per_stage"
        data_kwargs = {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None}
        seg_kwargs = {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None}
        prob_kwargs = {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None}
        plan = {
            "data_identifier": self.preset.data_identifier(self.name),
            "preprocessor_name": "DefaultPreprocessor",
            "batch_size": self.batch_size,
            "patch_size": list(self.patch_size),
            "median_image_size_in_voxels": list(self.median_image_size_in_voxels),
            "spacing": list(self.spacing),
            "normalization_schemes": list(self.normalization_schemes),
            "use_mask_for_norm": list(self.use_mask_for_norm),
            "resampling_fn_data": "resample_data_or_seg_to_shape",
            "resampling_fn_seg": "resample_data_or_seg_to_shape",
            "resampling_fn_data_kwargs": data_kwargs,
            "resampling_fn_seg_kwargs": seg_kwargs,
            "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
            "resampling_fn_probabilities_kwargs": prob_kwargs,
            "architecture": {
                "network_class_name": self.preset.network_class,
                "arch_kwargs": {
                    "n_stages": n,
                    "features_per_stage": list(self.features_per_stage),
                    "conv_op": f"torch.nn.modules.conv.{conv}",
                    "kernel_sizes": [list(k) for k in self.kernel_sizes],
                    "strides": [list(s) for s in self.strides],
                    encoder_key: list(self.preset.encoder_blocks[:n]),
                    "n_conv_per_stage_decoder": list(self.preset.decoder_convs[: n - 1]),
                    "conv_bias": True,
                    "norm_op": f"torch.nn.modules.instancenorm.{norm}",
                    "norm_op_kwargs": {"eps": 1e-05, "affine": True},
                    "dropout_op": None,
                    "dropout_op_kwargs": None,
                    "nonlin": "torch.nn.LeakyReLU",
                    "nonlin_kwargs": {"inplace": True},
                },
                "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
            },
            "batch_dice": self.batch_dice,
        }
        if self.next_stage is not None:
            plan["next_stage"] = self.next_stage
        return plan


@dataclass(frozen=True)
class NnUNetPlans:
    """nnU-Net's plans file of a dataset (``nnUNetPlans.json``, ``nnUNetResEncUNetLPlans.json``...)
    as the preset's planner makes it.

    Attributes
    ----------
    configurations : tuple of NnUNetConfiguration
        ``2d``, then ``3d_lowres`` (when made) and ``3d_fullres`` (for 3D images).
    transpose_forward, transpose_backward : tuple of int
        nnU-Net's axis permutation (coarsest spacing first) and its inverse.
    target_spacing_zyx : tuple of float
        The 3d_fullres spacing in the images' (z, y, x) order (nnU-Net's reader order).
    preset : NnUNetPreset
        The planner that made the plans.
    gpu_memory_target_gb : float
        nnU-Net's ``gpu_memory_target_in_gb`` the plans were made for.
    notes : tuple of str
        What nnU-Net would have warned about (a preset planned for another GPU than its own).
    """

    dataset_name: str
    original_median_spacing_after_transp: tuple[float, ...]
    original_median_shape_after_transp: tuple[int, ...]
    image_reader_writer: str
    transpose_forward: tuple[int, ...]
    transpose_backward: tuple[int, ...]
    configurations: tuple[NnUNetConfiguration, ...]
    foreground_intensity_properties_per_channel: dict
    target_spacing_zyx: tuple[float, ...]
    preset: NnUNetPreset = DEFAULT_PRESET
    gpu_memory_target_gb: float = REFERENCE_GB
    notes: tuple[str, ...] = ()

    @property
    def plans_name(self) -> str:
        """The plans file's name without ``.json``, as ``nnUNetv2_train -p`` takes it."""
        return self.preset.plans_name

    def configuration(self, name: str) -> NnUNetConfiguration | None:
        """The configuration called ``name``, or None when nnU-Net makes none of that name."""
        return next((c for c in self.configurations if c.name == name), None)

    @property
    def fullres(self) -> NnUNetConfiguration:
        """``3d_fullres`` for 3D data, else ``2d``: the configuration a user trains first."""
        return self.configuration("3d_fullres") or self.configuration("2d")  # type: ignore[return-value]

    def as_json(self) -> dict:
        """The plans as nnU-Net writes ``nnUNetPlans.json``: its keys, in its order."""
        configs = {c.name: c.as_json() for c in self.configurations}
        ordered = {"2d": configs["2d"]}
        if "3d_lowres" in configs:
            ordered["3d_lowres"] = configs["3d_lowres"]
        if "3d_fullres" in configs:
            ordered["3d_fullres"] = configs["3d_fullres"]
            if "3d_lowres" in configs:
                ordered["3d_cascade_fullres"] = {
                    "inherits_from": "3d_fullres",
                    "previous_stage": "3d_lowres",
                }
        return {
            "dataset_name": self.dataset_name,
            "plans_name": self.plans_name,
            "original_median_spacing_after_transp": list(self.original_median_spacing_after_transp),
            "original_median_shape_after_transp": list(self.original_median_shape_after_transp),
            "image_reader_writer": self.image_reader_writer,
            "transpose_forward": list(self.transpose_forward),
            "transpose_backward": list(self.transpose_backward),
            "configurations": ordered,
            "experiment_planner_used": self.preset.planner,
            "label_manager": "LabelManager",
            "foreground_intensity_properties_per_channel": json.loads(
                json.dumps(self.foreground_intensity_properties_per_channel)
            ),
        }


def write_plans(plans: NnUNetPlans, path: str | Path) -> Path:
    """Write ``plans`` as nnU-Net writes its plans file (its indent of 4, its key order).

    The file replaces ``path`` atomically: an interrupted write leaves the old file whole.
    """
    from ..atomic import write_atomic

    return write_atomic(Path(path), plans_text(plans).encode("utf-8"))


def plans_text(plans: NnUNetPlans) -> str:
    """``plans`` as the text of nnU-Net's ``nnUNetPlans.json`` (its indent of 4, its key order)."""
    return json.dumps(plans.as_json(), indent=4)


def fullres_target_spacing(
    spacings: np.ndarray, shapes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """nnU-Net's 3d_fullres target spacing (reader order) and the per-axis median shape.

    The median spacing, except along the coarsest axis when it is more than 3x coarser than the
    others *and* has fewer than a third of their voxels: there the 10th percentile of that axis'
    spacings, but at least the others' largest spacing (plus 1e-5).
    """
    target = np.percentile(spacings, 50, 0)
    size = np.percentile(shapes, 50, 0)
    worst = int(np.argmax(target))
    others = [i for i in range(len(target)) if i != worst]
    other_spacing = max(target[i] for i in others)
    if target[worst] > ANISO_THRESHOLD * other_spacing and size[worst] * ANISO_THRESHOLD < min(
        size[i] for i in others
    ):
        chosen = np.percentile(spacings[:, worst], 10)
        if chosen < other_spacing:
            chosen = max(other_spacing, chosen) + 1e-5
        target[worst] = chosen
    return target, size


def transpose_axes(target: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``transpose_forward`` (coarsest axis first, then the others in order) and its inverse."""
    coarsest = int(np.argmax(target))
    forward = (coarsest, *(i for i in range(len(target)) if i != coarsest))
    backward = tuple(forward.index(i) for i in range(len(target)))
    return forward, backward


def normalization(channel_names: Sequence[str], relative_size: float) -> tuple[tuple, tuple]:
    """Normalisation scheme per channel, and whether it uses the non-zero mask (z-score only,
    and only when cropping to the non-zero region shrinks the median image below 3/4)."""
    schemes = tuple(
        NORMALIZATION_OF_CHANNEL.get(name.casefold(), "ZScoreNormalization")
        for name in channel_names
    )
    use_mask = tuple(s == "ZScoreNormalization" and relative_size < 0.75 for s in schemes)
    return schemes, use_mask


def plan_configuration(
    name: str,
    spacing: np.ndarray,
    median_shape: Sequence[float],
    dataset_voxels: float,
    classes: int,
    channel_names: Sequence[str],
    relative_size: float,
    gpu_memory_gb: float = REFERENCE_GB,
    preset: NnUNetPreset = DEFAULT_PRESET,
) -> NnUNetConfiguration:
    """One configuration, as nnU-Net's ``get_plans_for_configuration``.

    Parameters
    ----------
    spacing, median_shape
        In transposed order; two entries for 2d.
    dataset_voxels
        nnU-Net's ``approximate_n_voxels_dataset``: the median image's voxels times numTraining.
    classes
        Entries of dataset.json's ``labels`` (the segmentation outputs of the estimate).
    gpu_memory_gb
        nnU-Net's ``gpu_memory_target_in_gb``: scales the preset's reference.
    preset
        The planner's constants and rules (:data:`PRESETS`).
    """
    dim = len(spacing)
    two_d = dim == 2
    inverse = 1 / np.array(spacing, dtype=np.float64)
    edge = 2048**2 if two_d else 256**3
    initial = [round(v) for v in inverse * (edge / np.prod(inverse)) ** (1 / dim)]
    median = list(median_shape)[:dim]
    patch = np.array([min(i, j) for i, j in zip(initial, median)])
    topology = pool_and_conv_props(spacing, patch)
    reference = preset.reference(two_d, gpu_memory_gb)
    ref_batch = REFERENCE_BATCH_2D if two_d else REFERENCE_BATCH_3D

    def estimate(top: Topology) -> int:
        features = features_per_stage(top.n_stages, two_d)
        return feature_map_size(top.patch_size, top.strides, features, classes, preset)

    voxels = estimate(topology)
    while preset.too_big(voxels, two_d, reference):
        ratios = [p / m for p, m in zip(topology.patch_size, median)]
        # numpy's argsort (not stable) puts ties in its own order: take its last, as nnU-Net
        axis = int(np.argsort(ratios)[-1])
        smaller = list(topology.patch_size)
        smaller[axis] -= topology.divisible_by[axis]
        step = pool_and_conv_props(spacing, smaller).divisible_by[axis]
        patch = list(topology.patch_size)
        patch[axis] -= step
        topology = pool_and_conv_props(spacing, patch)
        voxels = estimate(topology)
    batch = round(reference / voxels * ref_batch)
    # the default caps a batch at 5 % of the dataset's voxels, the ResEnc presets at all of them
    cap = round(
        dataset_voxels * preset.max_dataset_covered / np.prod(topology.patch_size, dtype=np.float64)
    )
    batch = max(min(batch, cap), MIN_BATCH)
    schemes, use_mask = normalization(channel_names, relative_size)
    return NnUNetConfiguration(
        name=name,
        spacing=tuple(float(s) for s in spacing),
        median_image_size_in_voxels=tuple(
            float(v) if isinstance(v, (float, np.floating)) else int(v) for v in median
        ),
        patch_size=tuple(int(v) for v in topology.patch_size),
        batch_size=int(batch),
        strides=topology.strides,
        kernel_sizes=topology.kernel_sizes,
        features_per_stage=features_per_stage(topology.n_stages, two_d),
        normalization_schemes=schemes,
        use_mask_for_norm=use_mask,
        batch_dice=True,
        feature_map_voxels=int(voxels),
        preset=preset,
    )


def _new_shape(shape: Sequence[int], spacing: Sequence[float], target: np.ndarray) -> list[int]:
    """nnU-Net's ``compute_new_shape``: the shape after resampling to ``target`` (halves to
    even)."""
    return [round(float(s / t * n)) for s, t, n in zip(spacing, target, shape)]


def plan_nnunet(
    fingerprint: NnUNetFingerprint,
    gpu_memory_gb: float | None = None,
    preset: str | NnUNetPreset = "default",
) -> NnUNetPlans:
    """nnU-Net v2's plans of a fingerprinted dataset, by its default planner or a ResEnc preset.

    Parameters
    ----------
    fingerprint : NnUNetFingerprint
        From :func:`~napari_autoconfig.planners.nnunet_fingerprint.fingerprint_nnunet`, or read
        from nnU-Net's own ``dataset_fingerprint.json`` (``NnUNetFingerprint.from_json``).
    gpu_memory_gb : float, optional
        nnU-Net's ``gpu_memory_target_in_gb`` (``nnUNetv2_plan_experiment -gpu_memory_target``);
        None: the preset's own (8 GB; ResEnc L 24, XL 40). It queries no GPU.
    preset : str or NnUNetPreset
        ``default``, ``ResEncM``, ``ResEncL`` or ``ResEncXL`` (or nnU-Net's class name,
        ``nnUNetPlannerResEncL``): nnU-Net's ``-pl``.

    Returns
    -------
    NnUNetPlans
    """
    preset = nnunet_preset(preset)
    target_gb = preset.target_gb if gpu_memory_gb is None else gpu_memory_gb
    if not target_gb > 0:  # a budget of nothing would shrink the patch forever
        raise ValueError(
            f"nnU-Net plans for a GPU of a positive size, not {target_gb!r} GB: give its memory "
            "in GB, or None for the planner's own target."
        )
    notes = ()
    if preset is not DEFAULT_PRESET and target_gb != preset.target_gb:
        # nnU-Net's presets warn when planned for another GPU than their own
        notes = (
            f"nnU-Net warns: {preset.planner} is made for {preset.target_gb:g} GB of GPU memory; "
            f"these plans target {target_gb:g} GB as asked.",
        )
    spacings = np.vstack([np.asarray(s, dtype=np.float64) for s in fingerprint.spacings])
    bad = [i for i, s in enumerate(spacings) if not np.all(s > 0)]
    if bad:
        name = fingerprint.keys[bad[0]] if fingerprint.keys else f"number {bad[0]}"
        raise DatasetError(
            f"The case {name!r} has the spacing {tuple(spacings[bad[0]])}: nnU-Net plans only "
            "positive spacings. Fix the spacing in the file's header."
        )
    shapes = np.vstack([np.asarray(s) for s in fingerprint.shapes_after_crop])
    target, _ = fullres_target_spacing(spacings, shapes)
    forward, backward = transpose_axes(target)
    fwd = list(forward)
    new_shapes = [
        _new_shape(shape, spacing, target)
        for shape, spacing in zip(fingerprint.shapes_after_crop, fingerprint.spacings)
    ]
    new_median = np.median(new_shapes, 0)[fwd]
    full_spacing = target[fwd]
    dataset_voxels = float(np.prod(new_median, dtype=np.float64) * fingerprint.num_training)
    common = {
        "classes": fingerprint.num_labels,
        "channel_names": fingerprint.channel_names,
        "relative_size": fingerprint.median_relative_size_after_cropping,
        "gpu_memory_gb": target_gb,
        "preset": preset,
    }
    configurations = []
    if new_median[0] != 1:
        fullres = plan_configuration(
            "3d_fullres", full_spacing, new_median, dataset_voxels, **common
        )
        lowres = _plan_lowres(fullres, new_median, fingerprint.num_training, common)
        if lowres is not None:
            configurations.append(_with(lowres, batch_dice=False, next_stage="3d_cascade_fullres"))
            configurations.append(_with(fullres, batch_dice=True))
        else:
            configurations.append(_with(fullres, batch_dice=False))
    two_d = plan_configuration("2d", full_spacing[1:], new_median[1:], dataset_voxels, **common)
    configurations.insert(0, _with(two_d, batch_dice=True))
    configurations = [_with(c, transpose_backward=backward) for c in configurations]
    median_spacing = np.median(spacings, 0)[fwd]
    median_shape = np.median(shapes, 0)[fwd]
    return NnUNetPlans(
        dataset_name=fingerprint.dataset_name,
        original_median_spacing_after_transp=tuple(float(v) for v in median_spacing),
        original_median_shape_after_transp=tuple(round(float(v)) for v in median_shape),
        image_reader_writer=fingerprint.image_reader_writer,
        transpose_forward=forward,
        transpose_backward=backward,
        configurations=tuple(configurations),
        foreground_intensity_properties_per_channel=fingerprint.intensity_properties_json(),
        target_spacing_zyx=tuple(float(v) for v in target),
        preset=preset,
        gpu_memory_target_gb=target_gb,
        notes=notes,
    )


def _with(config: NnUNetConfiguration, **changes) -> NnUNetConfiguration:
    from dataclasses import replace

    return replace(config, **changes)


def _plan_lowres(
    fullres: NnUNetConfiguration, new_median: np.ndarray, num_training: int, common: dict
) -> NnUNetConfiguration | None:
    """nnU-Net's 3d_lowres: coarsen the spacing by 3 % steps (the finer axes first, while one is
    more than 2x finer than the coarsest) until a patch covers a quarter of the median image;
    dropped when the coarser median image is not at least half as small as fullres'."""
    full_spacing = np.array(fullres.spacing, dtype=np.float64)
    median_voxels = np.prod(new_median, dtype=np.float64)
    patch_voxels = np.prod(fullres.patch_size, dtype=np.float64)
    spacing = full_spacing.copy()
    lowres = None
    while patch_voxels / median_voxels < LOWRES_THRESHOLD:
        coarsest = max(spacing)
        finer = (coarsest / spacing) > 2
        if np.any(finer):
            spacing[finer] *= LOWRES_SPACING_STEP
        else:
            spacing *= LOWRES_SPACING_STEP
        median_voxels = np.prod(full_spacing / spacing * new_median, dtype=np.float64)
        shape = tuple(round(v) for v in full_spacing / spacing * new_median)
        lowres = plan_configuration(
            "3d_lowres",
            spacing.copy(),
            shape,
            float(np.prod(median_voxels) * num_training),
            **common,
        )
        patch_voxels = np.prod(lowres.patch_size, dtype=np.int64)
    if np.prod(new_median, dtype=np.float64) / median_voxels < 2:
        return None
    return lowres
