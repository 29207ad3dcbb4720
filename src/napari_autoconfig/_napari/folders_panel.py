"""The folders and limits panel: what to fingerprint, the planner (biom3d, nnU-Net v2, MONAI...),
the patch and batch limits, the GPU budget, Fingerprint; *Use the sample*, and napari's sample
opened in the viewer, fill the folders with the sample dataset's.

The one place the form's values are read (:meth:`FoldersPanel.limits`, :meth:`~.folders`,
:meth:`~.gpu_gib`, :meth:`~.precision`) and remembered between napari launches
(:meth:`~.remember`, through :mod:`.settings`). With a GPU memory set, ``max_dims`` is derived
from it (:func:`napari_autoconfig.gpu_budget.plan_for_gpu`) and its fields are greyed out.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from magicgui.widgets import (
    ComboBox,
    FileEdit,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    SpinBox,
    TupleEdit,
)
from napari.qt.threading import create_worker
from qtpy.QtWidgets import QSizePolicy

from ..errors import AutoconfigError
from ..memory import PRECISIONS
from ..planners import biom3d
from ..planning import PLANNER_CHOICES
from ..readers import is_url
from ..sample import sample_folder
from .guard import guarded
from .panel import Panel, row
from .sample_data import SAMPLE_KEY
from .settings import GPU_RANGE, LIMIT_RANGE, load_settings, save_settings
from .state import PlanInputs

logger = logging.getLogger("napari")

# What each of the planner's batch rules means, for the combo box; the rule names themselves
# (and which rules exist) come from the planner.
_RULE_HELP = {
    "fixed": "the max batch as given",
    "preprocessing": "number of images // 20",
}
BATCH_RULES = tuple(
    (f"{rule}: {_RULE_HELP[rule]}" if rule in _RULE_HELP else rule, rule)
    for rule in biom3d.BATCH_RULES
)
DEFAULTS = biom3d.Limits()  # the form starts from the planner's own defaults
#: The fields whose change re-plans at once (from the cached fingerprint) and is remembered.
LIMIT_NAMES = (
    "max_dims",
    "max_batch",
    "min_batch",
    "batch_rule",
    "gpu_memory",
    "gpu_precision",
    "planner",
    "nnunet_planner",
)
#: How the planner box shows a choice (the names are the core's ``planning.PLANNER_CHOICES``).
PLANNER_LABELS = {"nnunet": "nnU-Net v2", "monai": "MONAI SegResNet"}
#: The planner combo box: what the user reads, and the name the state takes.
PLANNERS = tuple((PLANNER_LABELS.get(name, name), name) for name in PLANNER_CHOICES)
#: nnU-Net's planner box: its default or a residual-encoder preset, with the GPU each is made
#: for (the names are ``nnunet_cli.NNUNET_PLANNERS``, the core's presets).
NNUNET_PLANNERS = (
    ("default (nnUNetPlans)", "default"),
    ("ResEnc M (8 GB)", "ResEncM"),
    ("ResEnc L (24 GB)", "ResEncL"),
    ("ResEnc XL (40 GB)", "ResEncXL"),
)
NNUNET_PLANNER_TIP = (
    "nnU-Net's planner: its original default (nnUNetPlans, a plain U-Net for an 8 GB GPU) or one "
    "of the residual-encoder presets nnU-Net recommends since 2024 (nnUNetPlannerResEncM / L / "
    "XL, made for 8 / 24 / 40 GB GPUs; L is nnU-Net's suggested default). With the GPU field "
    "on, nnU-Net plans for that GPU instead, as its -gpu_memory_target does. Train with "
    "nnUNetv2_train ... -p and the plans' name (nnUNetResEncUNetLPlans...)."
)
PLANNER_TIP = (
    "Whose plan to make. biom3d: its own rules (the default). nnU-Net v2: the plan nnU-Net's "
    "planner (the nnU-Net planner box) would make from the same files, to the digit; it needs its "
    "own reading pass of the files (press Fingerprint after choosing it). Both: the two side by "
    "side in the Plan tab, and nnU-Net's patch drawn as a third, green box. MONAI SegResNet: "
    "what MONAI Auto3DSeg's SegResNet template trains with, from MONAI's datastats of the files "
    "(another reading pass), its ROI drawn as an orange box; all: the three side by side. The "
    "limits below are biom3d's; nnU-Net plans for its planner's own GPU, or for the GPU field "
    "when it is on; SegResNet's batch follows the GPU field (16 GB when off)."
)
MAX_DIMS_TIP = (
    "The memory budget of one patch, in voxels (biom3d's max_dims): only the product z x y x x "
    "bounds the patch, whatever the shape."
)
GPU_TIP = (
    "Your GPU's memory in GiB (as nvidia-smi reports it; 'off' = 0). When set, the patch budget "
    "(Max patch) is chosen so that biom3d's plan fits this memory; every other number still "
    "follows biom3d's rules. Precision: fp16 is biom3d's mixed precision (its default), fp32 "
    "needs more memory."
)


SAMPLE_TIP = (
    "Fill Images and Masks with the sample dataset's folders: four anisotropic nuclei volumes "
    "and their masks (generated once into your cache folder when not in a source checkout). "
    "File > Open Sample > napari-autoconfig fills them too."
)


class FoldersPanel(Panel):
    """Folders of images and masks, the limits, Fingerprint / Cancel, progress and status."""

    _sample_worker: Any = None  # the worker finding the sample, while it runs

    def __init__(self, host: Any) -> None:
        saved = load_settings()  # values out of the form's ranges are already dropped there
        spin = {"min": LIMIT_RANGE[0], "max": LIMIT_RANGE[1]}
        rules = [value for _, value in BATCH_RULES]
        batch_tip = "Patches trained together: biom3d's batch is clamped to [min, max]."
        widgets = [
            FileEdit(name="images", label="Images", mode="d"),
            FileEdit(name="masks", label="Masks", mode="d", nullable=True),
            TupleEdit(
                name="max_dims",
                label="Max patch z, y, x",
                value=tuple(int(v) for v in saved.get("max_dims", DEFAULTS.max_dims)),
                options={**spin, "step": 1},
                tooltip=MAX_DIMS_TIP,
            ),
            row(
                SpinBox(name="min_batch", value=saved.get("min_batch", DEFAULTS.min_batch), **spin),
                SpinBox(name="max_batch", value=saved.get("max_batch", DEFAULTS.max_batch), **spin),
                label="Batch min, max",
                tooltip=batch_tip,
            ),
            ComboBox(
                name="planner",
                label="Planner",
                choices=PLANNERS,
                value=saved["planner"] if saved.get("planner") in PLANNER_CHOICES else "biom3d",
                tooltip=PLANNER_TIP,
            ),
            ComboBox(
                name="nnunet_planner",
                label="nnU-Net planner",
                choices=NNUNET_PLANNERS,
                value=saved["nnunet_planner"]
                if saved.get("nnunet_planner") in dict(NNUNET_PLANNERS).values()
                else "default",
                tooltip=NNUNET_PLANNER_TIP,
            ),
            ComboBox(
                name="batch_rule",
                label="Batch rule",
                choices=BATCH_RULES,
                value=saved["batch_rule"]
                if saved.get("batch_rule") in rules
                else DEFAULTS.batch_rule,
            ),
            row(
                FloatSpinBox(
                    name="gpu_memory",
                    value=saved.get("gpu_memory", 0.0),
                    min=GPU_RANGE[0],
                    max=GPU_RANGE[1],
                    step=1.0,
                ),
                ComboBox(
                    name="gpu_precision",
                    choices=PRECISIONS,
                    value=saved["precision"] if saved.get("precision") in PRECISIONS else "fp16",
                ),
                label="GPU memory (GB)",
                tooltip=GPU_TIP,
            ),
            row(
                PushButton(name="use_sample", text="Use the sample"),
                PushButton(name="fingerprint", text="Fingerprint dataset"),
                PushButton(name="cancel", text="Cancel", enabled=False),
            ),
            ProgressBar(name="progress", label="Progress", min=0, max=1, value=0),
            Label(name="status", label="Status", value="Pick the images folder, then Fingerprint."),
        ]
        super().__init__(host, widgets=widgets, labels=True)
        self["fingerprint"].tooltip = "Read every image's header and sample its foreground."
        self["cancel"].tooltip = "Stop the run (within about one file); the last result stays."
        self["use_sample"].tooltip = SAMPLE_TIP
        self["use_sample"].changed.connect(self._fetch_sample)
        # the text as stored: a URL must not go through Path (it would fold the '//')
        self["images"].line_edit.value = saved.get("images") or ""
        self["masks"].line_edit.value = saved.get("masks") or ""
        status = self["status"].native
        status.setWordWrap(True)
        status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        for name in ("images", "masks"):
            # a long path must not widen the dock: the line edit scrolls, the tooltip shows it all
            edit = self[name].line_edit.native
            edit.setMinimumWidth(60)
            edit.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            self[name].choose_btn.text = "Browse…"
            self[name].choose_btn.native.setMaximumWidth(80)
            self[name].changed.connect(self._show_path_tooltip)
        self._show_path_tooltip()
        # plain number fields (no +/- buttons): three of them fit a laptop's dock side by side
        # (napari's style sheet gives every spin box 70 px at least, buttons aside)
        self.native.setStyleSheet("QAbstractSpinBox { min-width: 36px; }")
        for box in [*self["max_dims"], self["min_batch"], self["max_batch"], self["gpu_memory"]]:
            box.native.setButtonSymbols(box.native.ButtonSymbols.NoButtons)
        gpu = self["gpu_memory"].native
        gpu.setDecimals(1)
        gpu.setSpecialValueText("off")  # shown at the minimum, 0
        gpu.setToolTip(GPU_TIP)
        self["gpu_precision"].tooltip = GPU_TIP
        self["gpu_memory"].changed.connect(self._grey_max_dims)
        self._grey_max_dims()
        self["planner"].changed.connect(self._show_nnunet_planner)
        self._show_nnunet_planner()
        rule = self["batch_rule"].native
        rule.setSizeAdjustPolicy(rule.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        rule.setMinimumContentsLength(12)
        self._follow_sample()  # last: the sample opened in the viewer wins over the saved folders

    # -- the sample ----------------------------------------------------------------------------
    def _follow_sample(self) -> None:
        """Take the sample's folders when napari's sample is (or already was) opened here."""
        layers = self.host.viewer.layers
        for layer in layers:
            self._on_layer_inserted(layer)
        layers.events.inserted.connect(self._on_inserted)

    @guarded
    def _on_inserted(self, event: Any) -> None:
        self._on_layer_inserted(event.value)

    def _on_layer_inserted(self, layer: Any) -> None:
        folder = layer.metadata.get(SAMPLE_KEY)
        if folder is not None:
            self.use_folders(Path(folder) / "images", Path(folder) / "masks")

    @guarded
    def _fetch_sample(self, *_: Any) -> None:
        """Find the sample in a worker: its first use in a wheel install writes it (a second)."""
        self["use_sample"].enabled = False
        self.set_status("Preparing the sample …")
        worker = create_worker(sample_folder, _ignore_errors=True, _start_thread=False)
        worker.returned.connect(self._on_sample_ready)
        worker.errored.connect(self._on_sample_failed)
        worker.finished.connect(self._on_sample_finished)
        self._sample_worker = worker  # kept alive until it ends
        worker.start()

    @guarded
    def _on_sample_ready(self, folder: Path) -> None:
        self.use_folders(folder / "images", folder / "masks")

    @guarded
    def _on_sample_failed(self, exc: Exception) -> None:
        if isinstance(exc, AutoconfigError):
            self.host.report_error(str(exc), level="warning")
        else:  # most likely a cache folder that cannot be written
            self.host.report_error(
                f"Could not prepare the sample ({type(exc).__name__}: {exc}). Set XDG_CACHE_HOME "
                "to a folder you can write, then try again.",
                level="warning",
            )

    def _on_sample_finished(self) -> None:
        self._sample_worker = None
        if self.host.__dict__.get("_alive", False):
            self["use_sample"].enabled = self["fingerprint"].enabled

    def use_folders(self, images: Path, masks: Path) -> None:
        """Put the sample's folders in the form, and say what to do next (nothing when the form
        holds them already: the sample opened again after its fingerprint)."""
        if (self["images"].line_edit.value, self["masks"].line_edit.value) == (
            str(images),
            str(masks),
        ):
            return
        self["images"].line_edit.value = str(images)
        self["masks"].line_edit.value = str(masks)
        self._show_path_tooltip()
        self.set_status("The sample's folders are set: click Fingerprint dataset.")

    def closed(self) -> None:
        with contextlib.suppress(TypeError, ValueError):  # already disconnected
            self.host.viewer.layers.events.inserted.disconnect(self._on_inserted)

    def _grey_max_dims(self, *_: Any) -> None:
        # with a GPU budget, max_dims is derived: the typed one is kept but not used
        derived = self.gpu_gib() is not None
        self["max_dims"].enabled = not derived
        self["max_dims"].tooltip = (
            "Derived from the GPU memory (set it to 'off' to type a budget)."
            if derived
            else MAX_DIMS_TIP
        )

    def show_plan(self, plan: biom3d.Plan | None) -> None:
        # the greyed max_dims fields' tooltip says which budget the plan used
        if plan is not None and self.host.gpu_gib is not None:
            d = "x".join(map(str, plan.limits.max_dims))
            self[
                "max_dims"
            ].tooltip = (
                f"Derived from the GPU memory: {d} (set the GPU memory to 'off' to type one)."
            )

    def _show_path_tooltip(self, *_: Any) -> None:
        for name in ("images", "masks"):
            text = (self[name].line_edit.value or "").strip()
            self[name].line_edit.native.setToolTip(text or f"The folder of {name}")

    # -- reading the form ----------------------------------------------------------------------
    def limits(self) -> biom3d.Limits:
        """The limits currently in the form (LimitsError when no plan can come from them)."""
        return biom3d.Limits(
            max_dims=tuple(int(v) for v in self["max_dims"].value),
            min_batch=int(self["min_batch"].value),
            max_batch=int(self["max_batch"].value),
            batch_rule=str(self["batch_rule"].value),
        )

    def gpu_gib(self) -> float | None:
        """The GPU memory in GiB, or None when the field is off (0)."""
        value = float(self["gpu_memory"].value)
        return value if value > 0 else None

    def precision(self) -> str:
        """The training precision of the memory estimate and the GPU budget (fp16 or fp32)."""
        return str(self["gpu_precision"].value)

    def planner(self) -> str:
        """The chosen planner: a name of ``planning.PLANNER_CHOICES`` ("biom3d", "both"...)."""
        return str(self["planner"].value)

    def _show_nnunet_planner(self) -> None:
        """nnU-Net's planner box only where nnU-Net plans."""
        self["nnunet_planner"].visible = "nnunet" in PLANNER_CHOICES[self.planner()]

    def inputs(self) -> PlanInputs:
        """Everything the form sets besides the folders, for the planning state (the limits are
        built, and possibly refused, when the state plans)."""
        return PlanInputs(
            limits=self.limits,
            precision=self.precision(),
            gpu_gib=self.gpu_gib(),
            planner=self.planner(),
            nnunet_planner=str(self["nnunet_planner"].value),
        )

    def folders(self) -> tuple[str | Path, str | Path | None]:
        """The images folder and the masks folder (None when empty).

        A URL (``http(s)://``, ``s3://``...) is passed on as the text typed: a ``Path`` would fold
        its ``//``. An nnU-Net raw dataset folder (``imagesTr/``, ``labelsTr/``,
        ``dataset.json``) goes in the Images field with Masks empty; the core recognises it.
        """
        text = (self["images"].line_edit.value or "").strip()
        if not text:
            raise AutoconfigError("Choose the folder of images first (the Images field).")
        masks_text = (self["masks"].line_edit.value or "").strip()
        return _location(text), (_location(masks_text) if masks_text else None)

    def remember(self) -> None:
        """Store the folders and limits for the next launch (a read-only home is only logged)."""
        masks_text = (self["masks"].line_edit.value or "").strip()
        try:
            save_settings(
                {
                    "images": (self["images"].line_edit.value or "").strip(),
                    "masks": masks_text or None,
                    "max_dims": [int(v) for v in self["max_dims"].value],
                    "max_batch": int(self["max_batch"].value),
                    "min_batch": int(self["min_batch"].value),
                    "batch_rule": str(self["batch_rule"].value),
                    "gpu_memory": float(self["gpu_memory"].value),
                    "precision": self.precision(),
                    "planner": self.planner(),
                    "nnunet_planner": str(self["nnunet_planner"].value),
                }
            )
        except OSError as exc:
            logger.warning("napari-autoconfig: could not save settings: %s", exc)

    # -- showing -------------------------------------------------------------------------------
    def set_status(self, text: str) -> None:
        """Show one line of news under the buttons."""
        self["status"].value = text

    def set_progress(self, done: int, total: int) -> None:
        """Files fingerprinted so far."""
        self["progress"].max = max(total, 1)
        self["progress"].value = done

    def set_running(self, running: bool) -> None:
        for name in ("fingerprint", "images", "masks"):
            self[name].enabled = not running
        self["use_sample"].enabled = not running and self._sample_worker is None
        self["cancel"].enabled = running


def _location(text: str) -> str | Path:
    """A folder field's text as the core takes it: a URL unchanged, a path expanded."""
    return text if is_url(text) else Path(text).expanduser()
