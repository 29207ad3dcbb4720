"""napari-autoconfig: biom3d's auto-configuration of a 3D U-Net, fast, headless and in napari.

The headless core (no Qt, no napari) lives in :mod:`readers`, :mod:`dataset`, :mod:`fingerprint`,
:mod:`planner`, :mod:`image_table` and :mod:`export`; :mod:`auto_config` is the biom3d-compatible
face over it. The napari GUI lives in the :mod:`_napari` subpackage, the only one that imports Qt
or napari.
"""

__version__ = "0.1.0"
