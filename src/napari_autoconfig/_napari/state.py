"""The dock widget's planning state, without Qt: folders -> fingerprint -> plan -> re-plan.

:class:`PlanningState` holds what the widget knows (the fingerprint and the folders it came from,
nnU-Net's fingerprint and MONAI's datastats when their planners are chosen, the limits, the
planner choice, the training plan and its config snippet) and says when it changes through psygnal
signals, as napari's ``HistogramModel`` and napari-animation's ``Animation`` do. It imports no Qt,
napari or magicgui: the planning story runs, and is tested, without a viewer
(``tests/_napari/test_state.py``).

The dock widget (:mod:`.widget`) feeds it the form's values and the worker's results, listens to
:attr:`PlanningState.planned` and :attr:`PlanningState.result_changed`, and tells the panels.
Every number comes from :func:`napari_autoconfig.planning.plan_training`, as on the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from psygnal import Signal

from .. import export
from ..errors import AutoconfigError
from ..planners.biom3d import Limits
from ..planning import PLANNER_CHOICES, TrainingPlan, plan_training

if TYPE_CHECKING:
    from ..fingerprint import Fingerprint
    from ..memory import MemoryEstimate
    from ..planners.biom3d import Plan
    from ..planners.monai import Datastats
    from ..planners.monai_segresnet import SegResNetPlan
    from ..planners.nnunet import NnUNetPlans
    from ..planners.nnunet_records import NnUNetFingerprint


def values_first(python_text: str) -> str:
    """The snippet with its assignments first and its explanatory comments after them."""
    lines = python_text.splitlines()
    values = [line for line in lines if line and not line.startswith("#")]
    comments = [line for line in lines if line.startswith("#")]
    return "\n".join([*values, "", *comments]) + "\n" if comments else "\n".join(values) + "\n"


@dataclass(frozen=True)
class PlanInputs:
    """What the user set besides the folders: biom3d's limits, precision, GPU budget, planner.

    ``limits`` is a callable so that limits the planner refuses when built (a ``LimitsError``)
    are refused where every other refusal is, by :meth:`PlanningState.replan`.
    """

    limits: Callable[[], Limits] = Limits
    precision: str = "fp16"
    gpu_gib: float | None = None
    planner: str = "biom3d"
    #: nnU-Net's planner: its default or a residual-encoder preset (``planners.nnunet.PRESETS``)
    nnunet_planner: str = "default"

    @property
    def wants_nnunet(self) -> bool:
        """Whether nnU-Net's plan is asked for (its own reading pass is then needed)."""
        return "nnunet" in PLANNER_CHOICES[self.planner]

    @property
    def wants_monai(self) -> bool:
        """Whether MONAI's SegResNet plan is asked for (MONAI's datastats are then needed)."""
        return "monai" in PLANNER_CHOICES[self.planner]

    @property
    def shows_biom3d(self) -> bool:
        """Whether biom3d's plan is shown (with nnU-Net's alone it is made, but hidden)."""
        return "biom3d" in PLANNER_CHOICES[self.planner]


class PlanningState:
    """The fingerprint, the inputs and the plan made from them; signals when they change.

    Signals
    -------
    result_changed(Fingerprint | None)
        A new fingerprint (a run finished).
    planned(TrainingPlan | None)
        A new plan, or None when the inputs gave none (:attr:`refusal` says why).
    """

    result_changed = Signal(object)
    planned = Signal(object)

    def __init__(self, inputs: PlanInputs | None = None) -> None:
        self.inputs = inputs if inputs is not None else PlanInputs()
        self.result: Fingerprint | None = None
        self.result_folders: tuple[str | Path | None, str | Path | None] = (None, None)
        #: nnU-Net's fingerprint of the same folders (None: its planner was not chosen at the run)
        self.nnunet_fingerprint: NnUNetFingerprint | None = None
        #: why nnU-Net's reading pass failed at the last run ("" when it did not)
        self.nnunet_error: str = ""
        #: MONAI's datastats of the same folders (None: its planner was not chosen at the run)
        self.monai_datastats: Datastats | None = None
        #: why MONAI's datastats or SegResNet's plan failed ("" when they did not)
        self.monai_error: str = ""
        #: everything planned from the result and the inputs (None: no result, or refused inputs)
        self.training: TrainingPlan | None = None
        #: why the inputs gave no plan ("" when they did)
        self.refusal: str = ""
        self.snippet: str = ""

    # -- what the panels read --------------------------------------------------------------------
    @property
    def plan(self) -> Plan | None:
        """biom3d's plan (``training.biom3d``)."""
        return self.training.biom3d if self.training is not None else None

    @property
    def nnunet(self) -> NnUNetPlans | None:
        """nnU-Net's plans, when its planner is chosen and its fingerprint was made."""
        return self.training.nnunet if self.training is not None else None

    @property
    def monai(self) -> SegResNetPlan | None:
        """MONAI's SegResNet plan, when its planner is chosen and the datastats were made."""
        return self.training.monai if self.training is not None else None

    @property
    def memory(self) -> MemoryEstimate | str | None:
        """biom3d's plan's GPU memory, or the sentence saying why there is none."""
        if self.training is None:
            return None
        memory = self.training.memory
        return memory if memory is not None else self.training.memory_reason

    @property
    def gpu_gib(self) -> float | None:
        """The GPU memory biom3d's plan was fitted to (None: no GPU budget)."""
        return self.training.gpu_gib if self.training is not None else None

    @property
    def config_note(self) -> str:
        """The comment line above every exported config ("" without a GPU budget)."""
        return self.training.config_comment if self.training is not None else ""

    @property
    def nnunet_missing(self) -> bool:
        """nnU-Net's plan is asked for but its reading pass has not been made for this result."""
        return (
            self.result is not None
            and self.inputs.wants_nnunet
            and self.nnunet_fingerprint is None
            and not self.nnunet_error  # it was made, and failed: a new run would fail again
        )

    @property
    def monai_missing(self) -> bool:
        """MONAI's plan is asked for but its datastats have not been made for this result."""
        return (
            self.result is not None
            and self.inputs.wants_monai
            and self.monai_datastats is None
            and not self.monai_error
        )

    @property
    def missing_passes(self) -> str:
        """What the chosen planners still need a run for, in words ("" when nothing)."""
        needs = [
            words
            for words, missing in (
                ("nnU-Net's plan needs its own reading pass of the files", self.nnunet_missing),
                ("MONAI's SegResNet plan needs MONAI's datastats of the files", self.monai_missing),
            )
            if missing
        ]
        return "; ".join(needs)

    # -- changes -------------------------------------------------------------------------------
    def set_result(
        self,
        fingerprint: Fingerprint,
        folders: tuple[str | Path | None, str | Path | None],
        nnunet_fingerprint: NnUNetFingerprint | None = None,
        nnunet_error: str = "",
        monai_datastats: Datastats | None = None,
        monai_error: str = "",
    ) -> TrainingPlan | None:
        """A run finished: keep its fingerprints, say so, and plan from them."""
        self.result = fingerprint
        self.result_folders = folders
        self.nnunet_fingerprint = nnunet_fingerprint
        self.nnunet_error = nnunet_error
        self.monai_datastats = monai_datastats
        self.monai_error = monai_error
        self.result_changed.emit(fingerprint)
        return self.replan()

    def set_inputs(self, inputs: PlanInputs) -> TrainingPlan | None:
        """The user changed a limit or the planner: plan again from the kept fingerprint."""
        self.inputs = inputs
        return self.replan()

    def replan(self) -> TrainingPlan | None:
        """Plan from the kept fingerprint(s) and the inputs; emit :attr:`planned`.

        The planners are the choice's (:data:`~napari_autoconfig.planning.PLANNER_CHOICES`),
        biom3d's always included: the boxes, the tables and the export read its plan (hidden
        with nnU-Net's alone). nnU-Net's plan is made when its fingerprint is there; without it
        biom3d's plan is still made (:attr:`nnunet_missing` says a run is needed); the same for
        MONAI's SegResNet plan and its datastats (:attr:`monai_missing`). When only nnU-Net's
        (MONAI's) planner fails, biom3d's plan stands and :attr:`nnunet_error`
        (:attr:`monai_error`) says why ("nnU-Net's plan failed: ..."). Refused limits leave no
        plan (nothing stale stays exportable) and :attr:`refusal` says why.
        """
        if self.result is None:
            return None
        inputs = self.inputs
        others = []
        if inputs.wants_nnunet and self.nnunet_fingerprint is not None:
            others.append("nnunet")
        if inputs.wants_monai and self.monai_datastats is not None:
            others.append("monai")
        try:
            try:
                training = self._plan(("biom3d", *others))
                for name in others:
                    self._set_error(name, "")
            except Exception:
                if not others:
                    raise
                # biom3d's plan alone first: when it stands, the failure was another planner's
                training = self._plan(("biom3d",))
                kept = []
                for name in others:
                    try:
                        self._plan(("biom3d", name))
                    except Exception as exc:
                        self._set_error(name, _FAILURES[name](exc))
                    else:
                        kept.append(name)
                        self._set_error(name, "")
                if kept:
                    training = self._plan(("biom3d", *kept))
        except _REFUSALS as exc:
            self.training, self.snippet, self.refusal = None, "", str(exc)
            self.planned.emit(None)
            return None
        self.training, self.refusal = training, ""
        self.snippet = training.config_comment + values_first(
            export.render_python(training.config_values)
        )
        self.planned.emit(training)
        return training

    def _plan(self, planners: tuple[str, ...]) -> TrainingPlan:
        """:func:`plan_training` with the inputs; a biom3d refusal (limits) raises."""
        inputs = self.inputs
        # Limits may refuse themselves when built, or the rules when planning; a GPU too
        # small for any plan is a LimitsError too.
        return plan_training(
            self.result,
            inputs.limits(),
            precision=inputs.precision,
            gpu_memory_gib=inputs.gpu_gib,
            planners=planners,
            nnunet_fingerprint=self.nnunet_fingerprint if "nnunet" in planners else None,
            nnunet_preset=inputs.nnunet_planner,
            monai_datastats=self.monai_datastats if "monai" in planners else None,
        )

    def _set_error(self, planner: str, error: str) -> None:
        if planner == "nnunet":
            self.nnunet_error = error
        else:
            self.monai_error = error


#: What biom3d's side may raise on limits it refuses (shown as "These limits cannot be used").
_REFUSALS = (AutoconfigError, AssertionError, ValueError)


def nnunet_failure(error: BaseException) -> str:
    """The one line saying nnU-Net's side failed, in the same words wherever it failed (its
    reading pass, its planner)."""
    return _failure("nnU-Net's plan", error)


def monai_failure(error: BaseException) -> str:
    """The one line saying MONAI's side failed (its datastats pass, SegResNet's planner)."""
    return _failure("MONAI's SegResNet plan", error)


def _failure(what: str, error: BaseException) -> str:
    detail = str(error)
    if not isinstance(error, AutoconfigError):  # not one of ours: its kind tells what went wrong
        detail = f"{type(error).__name__}: {detail}"
    return f"{what} failed: {detail}"


#: Each optional planner's failure line.
_FAILURES = {"nnunet": nnunet_failure, "monai": monai_failure}
