"""Planners: each framework's rules turning a dataset fingerprint into a training plan.

One module per framework, peers: :mod:`.nnunet` (nnU-Net v2's default experiment planner) with
:mod:`.nnunet_fingerprint` (its dataset fingerprint) and :mod:`.float32_sum` (numpy's float32
sum, replayed, for nnU-Net's mean). biom3d's planner lives in :mod:`napari_autoconfig.planner`
for now.
"""

from __future__ import annotations

from .nnunet import NnUNetConfiguration, NnUNetPlans, plan_nnunet, write_plans
from .nnunet_fingerprint import NnUNetFingerprint, fingerprint_nnunet, open_nnunet_source

__all__ = [
    "NnUNetConfiguration",
    "NnUNetFingerprint",
    "NnUNetPlans",
    "fingerprint_nnunet",
    "open_nnunet_source",
    "plan_nnunet",
    "write_plans",
]
