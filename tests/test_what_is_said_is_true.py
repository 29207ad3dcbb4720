"""Small things the package says about itself, held to be true: a plan from a known median reads
no file, so it reports no intensities; the package's docstring names modules that exist."""

from __future__ import annotations

import importlib
import json
import re

import napari_autoconfig
from napari_autoconfig.cli import main


def test_a_plan_from_the_median_alone_reports_no_intensities(capsys):
    assert main(["--median", "96", "512", "512", "--json", "--quiet"]) == 0
    record = json.loads(capsys.readouterr().out)
    # no file was read: nothing is known, as the config's empty lists say
    for key in ("mean", "std", "perc_005", "perc_995"):
        assert record[key] is None, key
    assert record["config"]["INTENSITY_MOMENTS"] == []
    assert record["config"]["CLIPPING_BOUNDS"] == []

    assert main(["--median", "96", "512", "512", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Foreground intensity" not in out  # the summary's line when files were read
    assert "INTENSITY_MOMENTS = []" in out and "CLIPPING_BOUNDS = []" in out


def test_every_module_the_package_docstring_names_exists():
    named = re.findall(r":mod:`([\w.]+)`", napari_autoconfig.__doc__)
    assert "planners" in named and "cli" in named
    for name in named:
        importlib.import_module(f"napari_autoconfig.{name}")
