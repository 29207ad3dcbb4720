"""The core never imports the GUI: everything outside ``napari_autoconfig._napari`` runs headless.

Each core module is imported in a fresh interpreter; a GUI package found in ``sys.modules``
afterwards fails the test and names the module that pulled it in.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import napari_autoconfig

GUI_PACKAGES = ("napari", "qtpy", "magicgui", "superqt", "vispy", "PyQt5", "PyQt6", "PySide6")


def core_modules() -> list[str]:
    """Every module of the package outside the napari subpackage."""
    root = Path(napari_autoconfig.__file__).parent
    names = ["napari_autoconfig"]
    for info in pkgutil.walk_packages([str(root)], prefix="napari_autoconfig."):
        # __main__ runs the command line when imported; cli.py, which it calls, is checked
        if not info.name.startswith("napari_autoconfig._napari") and info.name[-8:] != "__main__":
            names.append(info.name)
    return names


def test_there_are_core_modules_and_a_gui_subpackage():
    names = core_modules()
    for expected in ("napari_autoconfig.fingerprint", "napari_autoconfig.image_table"):
        assert expected in names
    assert not any("_napari" in name for name in names)
    assert (Path(napari_autoconfig.__file__).parent / "_napari" / "widget.py").is_file()


def test_no_core_module_imports_the_gui():
    code = (
        "import importlib, sys\n"
        f"gui = {GUI_PACKAGES!r}\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        "    loaded = sorted({m.split('.')[0] for m in sys.modules} & set(gui))\n"
        "    if loaded:\n"
        "        print('GUI', name, loaded)\n"
        "        break\n"
        "else:\n"
        "    print('HEADLESS')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *core_modules()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "HEADLESS", result.stdout
