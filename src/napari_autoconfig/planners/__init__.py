"""Planners: each framework's rules turning a dataset fingerprint into a training plan.

One module per framework, peers: :mod:`.biom3d` (biom3d 0.1.2's auto-configuration rules: patch,
poolings, batch, augmentation patch) and :mod:`.nnunet` (nnU-Net v2's default experiment planner
and its residual-encoder presets), with nnU-Net's own dataset fingerprint, which it needs beside
the shared one, split as nnU-Net splits it: :mod:`.nnunet_fingerprint` (the cases, scheduled and
merged), :mod:`.nnunet_case` (one case), :mod:`.nnunet_io` (the reader nnU-Net picks, the
geometry it sees), :mod:`.nnunet_statistics` (the draws' statistics), :mod:`.nnunet_records` (the
records and their JSON) and :mod:`.float32_sum` (numpy's float32 sum, replayed, for nnU-Net's
mean). MONAI Auto3DSeg's dataset statistics (its DataAnalyzer's ``datastats.yaml``) are
:mod:`.monai`, on :mod:`.monai_case` (one case), :mod:`.monai_summary` (the reducers),
:mod:`.monai_stats` (the operations), :mod:`.monai_ras` (MONAI's RAS axes) and :mod:`.monai_yaml`
(its files); :mod:`.monai_segresnet` derives from them what Auto3DSeg's SegResNet template trains
with. A further framework's planner is one more module here;
:func:`napari_autoconfig.planning.plan_training` is where the command line and the widget call
them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

#: Where each name of the package lives. Imported on first use, so that planning from a median
#: alone (``napari-autoconfig --median ...``: biom3d's rules) loads no file readers, which
#: nnU-Net's fingerprint needs.
_HOMES = {
    "Limits": "biom3d",
    "Plan": "biom3d",
    "make_plan": "biom3d",
    "NnUNetConfiguration": "nnunet",
    "NnUNetPlans": "nnunet",
    "plan_nnunet": "nnunet",
    "write_plans": "nnunet",
    "NnUNetFingerprint": "nnunet_records",
    "fingerprint_nnunet": "nnunet_fingerprint",
    "open_nnunet_source": "nnunet_fingerprint",
    "Datastats": "monai",
    "compute_datastats": "monai",
    "write_datastats": "monai",
    "SegResNetPlan": "monai_segresnet",
    "plan_segresnet": "monai_segresnet",
}

__all__ = [  # the names of _HOMES, written out for the tools that read __all__ without running it
    "Datastats",
    "Limits",
    "NnUNetConfiguration",
    "NnUNetFingerprint",
    "NnUNetPlans",
    "Plan",
    "SegResNetPlan",
    "compute_datastats",
    "fingerprint_nnunet",
    "make_plan",
    "open_nnunet_source",
    "plan_nnunet",
    "plan_segresnet",
    "write_datastats",
    "write_plans",
]

if TYPE_CHECKING:
    from .biom3d import Limits, Plan, make_plan
    from .monai import Datastats, compute_datastats, write_datastats
    from .monai_segresnet import SegResNetPlan, plan_segresnet
    from .nnunet import NnUNetConfiguration, NnUNetPlans, plan_nnunet, write_plans
    from .nnunet_fingerprint import fingerprint_nnunet, open_nnunet_source
    from .nnunet_records import NnUNetFingerprint


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # found once; later look-ups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
