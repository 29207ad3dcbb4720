"""Planners: each framework's rules turning a dataset fingerprint into a training plan.

One module per framework, peers: :mod:`.biom3d` (biom3d 0.1.2's auto-configuration rules: patch,
poolings, batch, augmentation patch) and :mod:`.nnunet` (nnU-Net v2's default experiment planner),
with :mod:`.nnunet_fingerprint` (nnU-Net's own dataset fingerprint, which it needs beside the shared
one) and :mod:`.float32_sum` (numpy's float32 sum, replayed, for nnU-Net's mean). A further
framework's planner is one more module here; :func:`napari_autoconfig.planning.plan_training` is
where the command line and the widget call them.
"""

from __future__ import annotations

from .biom3d import Limits, Plan, make_plan
from .nnunet import NnUNetConfiguration, NnUNetPlans, plan_nnunet, write_plans
from .nnunet_fingerprint import NnUNetFingerprint, fingerprint_nnunet, open_nnunet_source

__all__ = [
    "Limits",
    "NnUNetConfiguration",
    "NnUNetFingerprint",
    "NnUNetPlans",
    "Plan",
    "fingerprint_nnunet",
    "make_plan",
    "open_nnunet_source",
    "plan_nnunet",
    "write_plans",
]
