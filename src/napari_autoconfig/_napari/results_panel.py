"""The results panel: the dataset summary and the plan as two small tables, the reasons in words,
and the GPU memory of one training step with the plan.

With nnU-Net's or MONAI's planner chosen (and its plan made) the plan table gives way to the
comparison table: biom3d | nnU-Net 3d_fullres | MONAI SegResNet, one row per number (patch in
voxels and in physical units, the spacing the network trains at, poolings, batch, normalisation,
GPU memory, epochs), every size in (z, y, x) and every row's tooltip saying in plain words what it
is on each side (:func:`comparison_rows`); a planner not chosen has its column hidden.

Each plan row's tooltip, and the "Why these numbers?" section, say first in plain words what the
number is for and then the planner's own reasoning with its arithmetic. The plan's last row is the
memory estimate (:func:`napari_autoconfig.memory.estimate_plan_memory`, computed by the dock widget
with each plan, ``host.memory``); the line under the table splits it in its parts.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from magicgui.widgets import Label, PushButton
from qtpy.QtWidgets import QLabel, QSizePolicy
from superqt import QCollapsible

from ..image_table import spacing_text
from ..memory import MemoryEstimate
from ..planners import biom3d
from .panel import Panel
from .tables import fill_table, make_table

if TYPE_CHECKING:
    from napari.layers import Image

    from ..fingerprint import Fingerprint
    from ..planners.monai_segresnet import SegResNetPlan
    from ..planning import TrainingPlan

#: What each number of the plan is for, in words; the planner's reason follows it.
PLAIN_WORDS = {
    "patch": "The block of image the network learns from at a time: the typical (median) image, "
    "shrunk until it fits the memory budget (Max patch), each side a multiple of 2 to the power "
    "of its poolings.",
    "aug_patch": "A larger block cut first, so that rotating or scaling it before the patch is "
    "cut from its middle leaves no empty corners.",
    "pool": "How many times the network halves the patch along each axis. A short axis is halved "
    "fewer times, so that it never gets smaller than the network's smallest map.",
    "batch": "How many patches are learned from together: as many as the budget holds, twice, "
    "kept between the min and max batch.",
}
ROW_TITLES = {"patch": "Patch", "aug_patch": "Aug. patch", "pool": "Poolings", "batch": "Batch"}
MEMORY_WORDS = (
    "The GPU memory one training step of biom3d's default network (UNet3DVGGDeep) needs for this "
    "patch, poolings, batch and channels: an estimate from the network's layout, before any "
    "training. Set your GPU's memory in the form above to have the patch chosen to fit it."
)


def memory_texts(
    memory: MemoryEstimate | str | None, plan: biom3d.Plan, gpu_gib: float | None = None
) -> tuple[str, str, str]:
    """The memory row's title and value, and the line splitting it in parts, for people.

    With ``gpu_gib`` (the GPU budget was on) the line starts with the derived ``max_dims``.
    """
    if memory is None:
        return "GPU memory", "", ""
    if not isinstance(memory, MemoryEstimate):
        return "GPU memory", "not estimated", memory
    parts = (
        f"One training step: activations {memory.activations_gib:.2f} + weights "
        f"{memory.weights_gib:.2f} + workspace {memory.workspace_gib:.2f} + overhead "
        f"{memory.overhead_gib:.2f} GiB."
    )
    if gpu_gib is not None:
        d = "x".join(map(str, plan.limits.max_dims))
        parts = f"Max patch {d}, derived to fit a GPU of {gpu_gib:g} GiB. {parts}"
    return f"GPU memory ({memory.precision})", f"{memory.total_gib:.1f} GiB", parts


#: The comparison table's rows: title, then what the row is, in plain words, on both sides.
COMPARISON_WORDS = {
    "patch": "The block of image the network learns from at a time, in voxels of the spacing it "
    "trains at (z, y, x). biom3d: the median image shrunk to the Max patch budget. nnU-Net: "
    "256^3 voxels shaped like the spacing, capped by the median image, then shrunk until its "
    "network fits its 8 GB reference GPU. MONAI SegResNet (its roi_size): 224 x 224 x 144 (x, y, "
    "z) capped by the median image, grown by 15 % steps back to that many voxels, each side a "
    "multiple of 2 to the power of its downsamplings; smaller above 20 classes.",
    "physical": "The same block as a physical size: its voxels times the spacing the network "
    "trains at. This is how much of your specimen each network sees at once (the green box on "
    "the image is nnU-Net's, the orange one MONAI SegResNet's).",
    "spacing": "The voxel size every image is resampled to before training (z, y, x). biom3d: "
    "the dataset's median spacing, its MEDIAN_SPACING (which biom3d's config writes x, y, z). "
    "nnU-Net: its target spacing, the median too, except along an axis much coarser than the "
    "others, where it takes the 10th percentile. MONAI SegResNet: the median in plane, z no "
    "finer than the in-plane mean nor the 10th percentile; it resamples only when some images' "
    "spacing is under half or over 1.5 times that, otherwise each image trains at its own.",
    "pool": "How many times the network halves the patch along each axis (z, y, x). A short or "
    "coarse axis is halved fewer times. MONAI SegResNet: its network's levels minus one.",
    "batch": "How many patches are learned from together. biom3d: as many as its budget holds, "
    "within the min and max batch. nnU-Net: as many as its reference GPU holds, at least 2 and "
    "at most 5 % of the dataset's voxels. MONAI SegResNet: images per step x crops from each "
    "image, scaled by its segmenter to the GPU (the form's GPU memory, else 16 GB).",
    "norm": "How intensities are scaled before training. biom3d: each image z-scored on its own "
    "(with --ct_norm: clipped to the dataset's foreground percentiles, then z-scored with the "
    "dataset's foreground mean and std). nnU-Net, per channel from its name: z-score per image "
    "(inside the non-zero region when cropping to it removed much), CT: clipped and z-scored "
    "with the dataset's foreground statistics. MONAI SegResNet: clipped to its intensity "
    "bounds (the foreground 0.5 and 99.5 percentiles) and scaled to 0-1 (range, for CT, the "
    "template's assumption when no modality is given), or mean/std (MRI).",
    "memory": "GPU memory. biom3d: an estimate of one training step of its default network at "
    "the form's precision. nnU-Net: nnU-Net's own planning figure, not a measurement: its count "
    "of the network's feature maps at this batch as a share of its reference network, times "
    "the 8 GB that reference stands for (nnU-Net shrinks the patch until this fits 8 GB). MONAI "
    "SegResNet: the GPU its segmenter scaled the batch to.",
    "epochs": "How many passes over the data training makes. MONAI SegResNet: 80000 / cases, "
    "kept within 300-1250, divided by the crops per image (at most 3).",
}
#: The comparison table's column titles (shortened when the three planners are shown).
_COMPARE_TITLES = ("biom3d", "nnU-Net 3d_fullres", "MONAI SegResNet")
_NNUNET_SCHEMES = {
    "ZScoreNormalization": "z-score",
    "CTNormalization": "CT clip + z",
    "NoNormalization": "none",
    "RescaleTo01Normalization": "rescale 0-1",
    "RGBTo01Normalization": "RGB / 255",
}


def unit_text(unit: str | None) -> str:
    """The spacing's unit as people write it ("micron" is µm); "units" when the file says none."""
    if not unit:
        return "units"
    return {"micron": "µm", "um": "µm", "microns": "µm"}.get(unit, unit)


def _sizes(values, digits: str = ".4g", sep: str = " x ") -> str:
    return sep.join(format(float(v), digits) for v in values)


def comparison_rows(
    training: TrainingPlan, fingerprint: Fingerprint, compact: bool = False
) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    """The comparison table: (title, biom3d, nnU-Net 3d_fullres, MONAI SegResNet) rows and each
    row's tooltip.

    Sizes are (z, y, x); physical sizes in the dataset's unit. nnU-Net's column is its
    ``fullres`` configuration (3d_fullres; 2d for 2D images); a planner without a plan has
    empty cells. ``compact`` writes sizes ``32x256x256`` (three columns in a laptop's dock).
    """
    sep = "x" if compact else " x "

    def sizes(values) -> str:
        return _sizes(values, sep=sep)

    plan, plans = training.biom3d, training.nnunet
    full = plans.fullres if plans is not None else None
    unit = unit_text(fingerprint.unit)
    spacing = fingerprint.median_spacing_zyx
    k = len(full.patch_size_zyx) if full is not None else len(plan.patch[-3:])
    if spacing is not None:
        biom3d_spacing = sizes(spacing[-k:]) if len(spacing) >= k else sizes(spacing)
        biom3d_physical = sizes(
            p * s for p, s in zip(plan.patch[-len(spacing) :], spacing, strict=False)
        )
    else:
        biom3d_spacing = biom3d_physical = "no spacing"
    memory = training.memory
    biom3d_memory = (
        f"{memory.total_gib:.1f} GiB ({memory.precision})"
        if memory is not None
        else "not estimated"
    )
    biom3d_cells = [
        sizes(plan.patch),
        biom3d_physical,
        biom3d_spacing,
        ", ".join(map(str, plan.pool)),
        str(plan.batch),
        "z-score",
        biom3d_memory,
        "",
    ]
    nnunet_cells = [""] * len(biom3d_cells)
    if full is not None:
        schemes = ", ".join(
            _NNUNET_SCHEMES.get(name, name) + (" (mask)" if mask else "")
            for name, mask in zip(full.normalization_schemes, full.use_mask_for_norm)
        )
        nnunet_cells = [
            sizes(full.patch_size_zyx),
            sizes(full.patch_physical_zyx),
            sizes(full.spacing_zyx),
            ", ".join(map(str, full.pool_zyx)),
            str(full.batch_size),
            schemes,
            f"{full.gpu_memory_gb:.1f} of {plans.gpu_memory_target_gb:g} GB",
            "",
        ]
    monai = training.monai
    monai_cells = monai_column(monai, sep) if monai is not None else [""] * len(biom3d_cells)
    titles = (
        "Patch (voxels)",
        f"Patch ({unit})",
        f"Trains at ({unit})",
        "Poolings",
        "Batch",
        "Normalisation",
        "GPU memory",
        "Epochs",
    )
    rows = list(zip(titles, biom3d_cells, nnunet_cells, monai_cells, strict=True))
    keys = ("patch", "physical", "spacing", "pool", "batch", "norm", "memory", "epochs")
    tips = [COMPARISON_WORDS[key] for key in keys]
    tips[-2] += f" biom3d: {training.memory_line}"
    if monai is not None:
        low, high = monai.intensity_bounds
        tips[5] += (
            f" MONAI SegResNet here: {monai.normalize_mode} (modality {monai.modality}), intensity "
            f"bounds {low:.6g} to {high:.6g}."
        )
    return rows, tips


def monai_column(plan: SegResNetPlan, sep: str = " x ") -> list[str]:
    """MONAI SegResNet's cells of the comparison table, sizes (z, y, x) joined by ``sep``."""
    # without resampling each image trains at its own spacing: the physical size is about so
    approx = "" if plan.resample else "≈"
    trains_at = _sizes(plan.spacing_zyx, sep=sep) if plan.resample else "own spacing"
    low, high = plan.intensity_bounds
    mode = "range" if sep == " x " else "clip"  # a narrow column (compact): the shorter word
    norm = f"{mode} {low:.4g}–{high:.4g}" if plan.normalize_mode == "range" else "mean/std"
    crops = plan.num_crops_per_image
    return [
        _sizes(plan.roi_size_zyx, sep=sep),
        approx + _sizes(plan.roi_size_mm_zyx, sep=sep),
        trains_at,
        f"{plan.levels - 1} (levels {plan.levels})",
        f"{plan.train_batch_size} x {crops} crop{'s' * (crops != 1)}",
        norm,
        f"for {plan.gpu_memory_gb:g} GB",
        str(plan.train_num_epochs),
    ]


def _summary_rows(fp: Fingerprint) -> list[tuple[str, str]]:
    masks = "with masks" if fp.has_masks else "no masks"
    images = f"{fp.num_images} ({masks})"
    if fp.skipped:
        images += f", {len(fp.skipped)} file(s) skipped"
    z, y, x = fp.median_zyx
    rows = [
        ("Images", images),
        ("Median size z, y, x", f"{y} x {x} (2D)" if fp.is_2d else f"{z} x {y} x {x}"),
        ("Median spacing", spacing_text(fp.median_spacing_zyx, fp.unit)),
    ]
    if fp.channels > 1:
        rows.append(("Channels", str(fp.channels)))
    if fp.has_masks:
        rows.append(("Foreground mean ± std", f"{fp.mean:.4g} ± {fp.std:.4g}"))
        rows.append(("Foreground 0.5–99.5 %", f"{fp.perc_005:.4g} – {fp.perc_995:.4g}"))
    else:
        rows.append(("Foreground intensity", "needs masks"))
    return rows


def plan_reasons(plan: biom3d.Plan) -> dict[str, str]:
    """Each number's plain words, then the planner's reasoning."""
    reasons = list(plan.reasons)
    found = {
        "patch": [r for r in reasons if r.startswith("Patch")],
        "aug_patch": [r for r in reasons if r.startswith("Augmentation")],
        "pool": [r for r in reasons if "pooling" in r.split(" because")[0]],
        "batch": [r for r in reasons if r.startswith("Batch")],
    }
    used = {r for rs in found.values() for r in rs}
    extra = [r for r in reasons if r not in used]
    out = {key: " ".join([PLAIN_WORDS[key], "Details:", *rs]) for key, rs in found.items()}
    if extra:
        out["patch"] += " " + " ".join(extra)
    return out


class ResultsPanel(Panel):
    """Summary and plan tables, the reasons (collapsed), and where the boxes are drawn."""

    title = "Plan"
    tooltip = "The dataset's summary and biom3d's plan"

    def __init__(self, host: Any) -> None:
        widgets = [
            make_table("summary", ["", "dataset"], compact=True),
            make_table("plan_table", ["", "z", "y", "x"], compact=True),
            make_table("compare_table", ["", *_COMPARE_TITLES], compact=True),
            Label(name="memory_split", value=""),
            Label(name="notes", value="Fingerprint a dataset to see its plan."),
            PushButton(
                name="recentre",
                text="Centre boxes on the view",
                enabled=False,
                tooltip="Move the patch boxes to the middle of what you are looking at (pan or "
                "scroll there first). Shift-click on the canvas also moves them there.",
            ),
        ]
        super().__init__(host, widgets=widgets)
        for name in ("notes", "memory_split"):
            self[name].native.setWordWrap(True)
            self[name].native.setSizePolicy(
                QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred
            )
        self["memory_split"].native.setVisible(False)
        self.why = QCollapsible("Why these numbers?")
        self.reasons = QLabel()
        self.reasons.setWordWrap(True)
        self.reasons.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.why.addWidget(self.reasons)
        self.native.layout().addWidget(self.why)
        self.native.layout().addStretch(1)
        self._result: Fingerprint | None = None
        self._plan: biom3d.Plan | None = None
        self._image: Image | None = None
        self["recentre"].changed.connect(lambda *_: host.keeper.recentre())
        for table in (self["summary"], self["plan_table"], self["compare_table"]):
            table.native.setVisible(False)
        # the row titles ("GPU memory (fp16)") whole; z, y, x share the rest
        for name in ("plan_table", "compare_table"):
            header = self[name].native.horizontalHeader()
            header.setSectionResizeMode(0, header.ResizeMode.ResizeToContents)
        compare = self["compare_table"].native
        compare.horizontalHeaderItem(1).setToolTip("biom3d's plan (its own rules)")
        compare.horizontalHeaderItem(2).setToolTip(
            "nnU-Net v2's 3d_fullres configuration, as the chosen nnU-Net planner (its default "
            "nnUNetPlans or a ResEnc preset) makes it from the same files"
        )
        from ..planners.monai_segresnet import TEMPLATE_VERSION

        compare.horizontalHeaderItem(3).setToolTip(
            "What MONAI Auto3DSeg's SegResNet trains with, from MONAI's datastats of the same "
            f"files ({TEMPLATE_VERSION}; its segmenter's batch for the form's GPU, else 16 GB)"
        )

    def show_result(self, fingerprint: Fingerprint | None) -> None:
        self._result = fingerprint
        table = self["summary"]
        table.native.setVisible(fingerprint is not None)
        if fingerprint is not None:
            fill_table(table, _summary_rows(fingerprint), compact=True)
        self._refresh_notes()

    def show_plan(self, plan: biom3d.Plan | None) -> None:
        self._plan = plan
        self["recentre"].enabled = plan is not None
        table = self["plan_table"]
        training = self.host.training
        others = (
            training is not None
            and plan is not None
            and (training.nnunet is not None or training.monai is not None)
        )
        shows_biom3d = self.host.state.inputs.shows_biom3d
        table.native.setVisible(plan is not None and not others)
        self._show_comparison(training if others else None, shows_biom3d)
        self["memory_split"].native.setVisible(plan is not None and shows_biom3d)
        if plan is None:
            self["memory_split"].value = ""
            self.reasons.setText("")
            self._refresh_notes()
            return
        words = plan_reasons(plan)
        rows = [
            ("Patch", *map(str, plan.patch)),
            ("Aug. patch", *map(str, plan.aug_patch)),
            ("Poolings", *map(str, plan.pool)),
            ("Batch", str(plan.batch), "", ""),
        ]
        keys = ("patch", "aug_patch", "pool", "batch")
        tips = [[words[key]] * 4 for key in keys]
        title, total, parts = memory_texts(self.host.memory, plan, self.host.gpu_gib)
        rows.append((title, total, "", ""))
        tips.append([f"{MEMORY_WORDS} {total} {parts}".strip()] * 4)
        fill_table(table, rows, tooltips=tips, compact=True)
        table.native.setSpan(3, 1, 1, 3)
        table.native.setSpan(4, 1, 1, 3)
        self["memory_split"].value = parts
        self["memory_split"].tooltip = MEMORY_WORDS
        self.reasons.setText(
            "".join(f"<p><b>{ROW_TITLES[key]}</b>: {html.escape(words[key])}</p>" for key in keys)
        )
        self._refresh_notes()

    def _show_comparison(self, training: TrainingPlan | None, shows_biom3d: bool) -> None:
        """biom3d | nnU-Net | MONAI in columns (the planners chosen only)."""
        table = self["compare_table"]
        table.native.setVisible(training is not None)
        if training is None or self._result is None:
            return
        # the three planners side by side: shorter sizes and titles (the tooltips say it all)
        three = shows_biom3d and training.nnunet is not None and training.monai is not None
        rows, tips = comparison_rows(training, self._result, compact=three)
        titles = ("biom3d", "nnU-Net", "MONAI") if three else _COMPARE_TITLES
        for column, title in enumerate(titles, start=1):
            table.native.horizontalHeaderItem(column).setText(title)
        # the epochs row only says something with MONAI's column
        if training.monai is None:
            rows, tips = rows[:-1], tips[:-1]
        fill_table(table, rows, tooltips=[[tip] * 4 for tip in tips], compact=True)
        table.native.setColumnHidden(1, not shows_biom3d)
        table.native.setColumnHidden(2, training.nnunet is None)
        table.native.setColumnHidden(3, training.monai is None)

    def show_boxes(self, image: Image | None) -> None:
        self._image = image
        self._refresh_notes()

    def _refresh_notes(self) -> None:
        if self._plan is None:
            text = (
                "These limits give no plan (see the status line)."
                if self._result is not None
                else "Fingerprint a dataset to see its plan."
            )
        elif self._image is None:
            text = "Open an image (Images tab, or File > Open) to see the patch on it."
        else:
            text = self._boxes_text()
        state = self.host.state
        if self._plan is not None and state.missing_passes:
            text += f" {state.missing_passes}: press Fingerprint dataset."
        if self._plan is not None:
            for wanted, error in (
                (state.inputs.wants_nnunet, state.nnunet_error),
                (state.inputs.wants_monai, state.monai_error),
            ):
                if wanted and error:
                    text += f" {error}"  # biom3d's plan above stands
        self["notes"].value = text

    def _boxes_text(self) -> str:
        """Which box is which colour on the opened image, and where a patch outgrows it."""
        others = []
        if self.host.nnunet is not None:
            others.append("nnU-Net 3d_fullres patch green")
        monai = self.host.monai
        if monai is not None:
            others.append("MONAI SegResNet ROI orange")
        name = self._image.name
        shape = image_shape_zyx(self._image)
        if others and not self.host.boxes.biom3d_shown:  # other planners' plans alone
            box = "Box" if len(others) == 1 else "Boxes"
            text = f"{box} on '{name}': {', '.join(others)}."
        else:
            boxes = ["patch yellow", "augmentation patch cyan", *others]
            text = f"Boxes on '{name}': {', '.join(boxes)}."
            text += "".join(f" {s}" for s in biom3d.oversize_axes(self._plan, shape))
        voxels = self.host.boxes.monai_voxels(self._image) if monai is not None else None
        if voxels is not None:  # SegResNet pads an image smaller than its ROI
            axes = "zyx"[-len(voxels) :]
            bigger = [a for a, r, s in zip(axes, voxels, shape[-len(voxels) :]) if r > s]
            if bigger:
                text += f" MONAI's ROI is larger than this image along {', '.join(bigger)}."
        return text


def image_shape_zyx(image: Image) -> tuple[int, int, int]:
    """The image layer's spatial shape as (Z, Y, X), Z = 1 for a 2D layer."""
    shape = tuple(int(s) for s in image.level_shapes[0])
    if image.ndim == 2:
        return (1, *shape[-2:])
    return shape[-3:]
