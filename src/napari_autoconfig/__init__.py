"""napari-autoconfig: biom3d's auto-configuration of a 3D U-Net, fast, headless and in napari.

The headless core (no Qt, no napari): :mod:`readers` open the files, :mod:`dataset` pairs images
with masks, :mod:`fingerprint` reads a folder into the numbers the planners need, :mod:`planners`
holds biom3d's and nnU-Net's planners as peers, :mod:`planning` is the one call the command line
and the widget plan through, :mod:`image_table` describes each image, :mod:`export` and
:mod:`config_update` write the config (every write through :mod:`atomic`), and :mod:`cli` is the
``napari-autoconfig`` command; :mod:`auto_config` is the biom3d-compatible face over it. The
napari GUI lives in the :mod:`_napari` subpackage, the only one that imports Qt or napari.
"""

__version__ = "0.1.0"
