"""napari-autoconfig: biom3d's auto-configuration of a 3D U-Net, fast, headless and in napari.

The headless core (no Qt, no napari) lives in :mod:`readers`, :mod:`dataset`, :mod:`fingerprint`,
:mod:`planner` and :mod:`export`; :mod:`auto_config` is the biom3d-compatible face over it. Modules
with a leading underscore hold the napari GUI and are the only ones that import Qt or napari.
"""

__version__ = "0.1.0"
