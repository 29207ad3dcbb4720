"""How the mask values of a plain folder become nnU-Net classes: the one rule, shared.

nnU-Net wants its labels numbered 0 (background), 1, 2 ... K without gaps, and counts K + 1
output classes, which enter its GPU memory model. A plain folder of masks rarely looks like that:
Fiji and most thresholding tools save 0/255, some masks number their classes 0/1/3, and instance
masks number every object (1 ... N, per image). The planner (for a plain folder, the number of
classes it plans for) and the nnU-Net export (the labels it writes) both ask :func:`plan_labels`,
so a folder is planned exactly as its export is.

The rule:

- The distinct values over all masks, sorted, map to 0 ... K: 0 stays background, the smallest
  non-zero value becomes 1, the next 2 ... (``255 -> 1`` for a 0/255 folder). Values already
  0 ... K map to themselves.
- Masks that look like instance labels (one of them holds more than
  :data:`INSTANCE_MIN_VALUES` distinct non-zero values: objects numbered one by one, not
  classes) are planned as foreground / background: every non-zero value -> 1. ``mode="classes"``
  keeps one class per value anyway, ``mode="foreground"`` asks for foreground / background
  whatever the masks hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

#: More distinct non-zero values than this in one mask reads as instance labels (objects
#: numbered 1 ... N), not classes: semantic masks of biology hold a handful of classes.
INSTANCE_MIN_VALUES = 20
#: What ``mode`` takes: decide from the values, one class per value, foreground / background.
LABEL_MODES = ("auto", "classes", "foreground")
#: How a user changes the choice, named in the notes (the command line's option).
MODE_OPTION = "--nnunet-labels"


@dataclass(frozen=True)
class LabelPlan:
    """The nnU-Net classes of a folder's mask values.

    Attributes
    ----------
    values : tuple of int
        Every distinct value over all masks, ascending.
    classes : dict of int to int
        Value -> nnU-Net class (0 -> 0).
    instances : bool
        True when every non-zero value is one foreground class because the masks were taken
        for instance labels (or ``mode="foreground"`` asked for it).
    most_in_one_mask : int
        The largest number of distinct non-zero values found in one mask.
    mode : str
        The ``mode`` the plan was made with (one of :data:`LABEL_MODES`).
    """

    values: tuple[int, ...]
    classes: dict[int, int]
    instances: bool
    most_in_one_mask: int
    mode: str = "auto"

    @property
    def num_classes(self) -> int:
        """nnU-Net's number of labels, background included (at least 2, as it plans)."""
        return max(max(self.classes.values(), default=0) + 1, 2)

    @property
    def identity(self) -> bool:
        """True when every value is its own class: the labels are written as they are."""
        return all(value == cls for value, cls in self.classes.items())

    def dataset_json_labels(self) -> dict[str, int]:
        """``labels`` of nnU-Net's dataset.json for these classes."""
        if self.instances:
            return {"background": 0, "foreground": 1}
        labels = {"background": 0}
        for value, cls in self.classes.items():
            if cls:
                labels[f"label_{value}"] = cls
        if len(labels) == 1:  # no foreground anywhere: nnU-Net still plans two classes
            labels["foreground"] = 1
        return labels

    def notes(self) -> tuple[str, ...]:
        """What a user should know, one line each: the mapping when it changes a value, the
        instance reading and how to change it."""
        nonzero = [v for v in self.values if v != 0]
        if self.instances:
            why = (
                f"one mask holds {self.most_in_one_mask} distinct values, which look like "
                "objects numbered one by one (instance labels)"
                if self.mode == "auto"
                else f"{MODE_OPTION} foreground asked for it"
            )
            return (
                f"nnU-Net classes: {len(nonzero)} mask values planned as foreground/background "
                f"(every non-zero value -> 1): {why}; {MODE_OPTION} classes keeps one class per "
                "value.",
            )
        if self.identity:
            return ()
        changed = [f"{v} -> {self.classes[v]}" for v in nonzero if self.classes[v] != v]
        shown = ", ".join(changed[:8]) + (
            f", ... ({len(changed)} in all)" if len(changed) > 8 else ""
        )
        return (
            f"nnU-Net classes: mask values renumbered {shown} (nnU-Net needs labels 0, 1, 2 ... "
            "without gaps); the nnU-Net export writes them so.",
        )

    def lookup(self) -> np.ndarray:
        """The sorted values and their classes as two arrays, for :func:`remap_labels`."""
        values = np.fromiter(self.classes, dtype=np.int64, count=len(self.classes))
        classes = np.fromiter(self.classes.values(), dtype=np.int64, count=len(self.classes))
        return np.stack([values, classes])


def plan_labels(
    values_per_mask: Iterable[Sequence[int] | np.ndarray], mode: str = "auto"
) -> LabelPlan:
    """nnU-Net's classes for a plain folder's masks, from the distinct values of each mask.

    Parameters
    ----------
    values_per_mask : iterable of sequences of int
        The distinct values found in each mask (any order; 0 may be there or not).
    mode : {"auto", "classes", "foreground"}
        ``"auto"``: one class per value unless the masks look like instance labels (more than
        :data:`INSTANCE_MIN_VALUES` distinct non-zero values in a mask), then foreground /
        background; ``"classes"``: one class per value; ``"foreground"``: every non-zero value
        is class 1.

    Returns
    -------
    LabelPlan
    """
    if mode not in LABEL_MODES:
        raise ValueError(f"mode must be one of {', '.join(LABEL_MODES)}, not {mode!r}")
    every: set[int] = {0}
    most = 0
    for values in values_per_mask:
        distinct = {int(v) for v in np.asarray(values).ravel().tolist()}
        most = max(most, len(distinct - {0}))
        every |= distinct
    ordered = tuple(sorted(every))
    instances = mode == "foreground" or (mode == "auto" and most > INSTANCE_MIN_VALUES)
    if instances:
        classes = {v: int(v != 0) for v in ordered}
    else:
        nonzero = [v for v in ordered if v != 0]
        classes = {0: 0, **{v: i + 1 for i, v in enumerate(nonzero)}}
        classes = {v: classes[v] for v in ordered}  # in value order, negatives included
    return LabelPlan(ordered, classes, instances, most, mode)


def remap_labels(
    chunk: np.ndarray, plan: LabelPlan, dtype: np.dtype | str = np.uint8
) -> np.ndarray:
    """A piece of a mask with its values replaced by their nnU-Net classes.

    Values the plan does not know (a mask that changed since it was planned) raise
    ``ValueError`` rather than being written as a wrong class.
    """
    table = plan.lookup()
    values, classes = table[0], table[1]
    flat = np.asarray(chunk).ravel()
    at = np.searchsorted(values, flat)
    at_clipped = np.minimum(at, values.size - 1)
    known = values[at_clipped] == flat
    if not known.all():
        unknown = np.unique(flat[~known])[:5].tolist()
        raise ValueError(f"mask values {unknown} were not among the planned ones")
    return classes[at_clipped].astype(dtype, copy=False).reshape(np.shape(chunk))
