"""The widget and the command line show the same plan for the same files and limits.

A user fingerprints a folder in the docked widget, tries limits (a smaller patch budget, a GPU's
memory, fp32), and runs ``napari-autoconfig`` on the same folder with the same options, or with
``--median`` alone: the patch, the poolings, the batch, the GPU memory (or the sentence saying why
there is none), the note above the config and the config values are the same everywhere, and
where no plan can be made both say so in the same words. Each side is read as its user reads it:
the widget's tables, labels, config text and status line; the command's text and ``--json``.
"""

from __future__ import annotations

import json
import re

from datafiles import nnunet_cells, write_dataset, write_nnunet
from napari_autoconfig.cli import main

#: Limits as typed on the command line, and the same typed into the widget's form.
SETTINGS = (
    ((), {}),
    (("--max-dims", "32", "32", "32"), {"max_dims": (32, 32, 32)}),
    (("--gpu-memory", "2"), {"gpu_memory": 2}),
    (("--gpu-memory", "12", "--precision", "fp32"), {"gpu_precision": "fp32", "gpu_memory": 12}),
    (("--gpu-memory", "0.5"), {"gpu_memory": 0.5}),  # below the CUDA context alone: no plan
)
FORM_DEFAULTS = {"gpu_memory": 0, "gpu_precision": "fp16", "max_dims": (128, 128, 128)}


def _datasets(root):
    """Folders as users have them: (name, command-line folders, widget folders, --median)."""
    tiny = write_dataset(root / "tiny", shapes=[(4, 4, 4)] * 3)  # no pooling fits
    cubes = write_dataset(root / "cubes", shapes=[(32, 32, 32)] * 3)
    cells = write_dataset(root / "cells")  # anisotropic, the patch pads some images
    two = write_nnunet(root / "Dataset001_Two", nnunet_cells(2), ".tif", ("DAPI", "GFP"))
    return (
        ("tiny", [str(tiny[0]), "--masks", str(tiny[1])], tiny, ("4", "4", "4")),
        ("cubes", [str(cubes[0]), "--masks", str(cubes[1])], cubes, ("32", "32", "32")),
        ("cells", [str(cells[0]), "--masks", str(cells[1])], cells, ("22", "66", "62")),
        ("two channels", [str(two)], (two, None), ("2", "22", "66", "62")),
    )


def _run(capsys, *args):
    status = main([*args, "--quiet"])
    out, err = capsys.readouterr()
    return status, out, err


def _python_values(text: str) -> dict:
    """The assignments of a Python config snippet, as a dict."""
    values: dict = {}
    exec(text, {}, values)  # the snippet is plain Python literals
    return values


def on_the_command_line(capsys, *argv) -> dict:
    """What the command line shows, in the widget's words (see :func:`in_the_widget`)."""
    status, out, err = _run(capsys, *argv, "--json")
    if status != 0:
        assert err.startswith("napari-autoconfig: error: ")
        return {"refused": err.removeprefix("napari-autoconfig: error: ").rstrip("\n")}
    record = json.loads(out)
    status, text, _ = _run(capsys, *argv)
    assert status == 0
    (memory,) = [line for line in text.splitlines() if line.startswith("# GPU memory")]
    if record["gpu_memory"] is None:  # no estimate: null in --json, with the reason beside it
        assert "GiB" not in memory
        assert memory == f"# {record['gpu_memory_reason']}"
        shown = ("GPU memory", "not estimated", record["gpu_memory_reason"])
    else:
        assert record["gpu_memory_reason"] is None
        total = re.search(r"about ([\d.]+) GiB", memory).group(1)
        shown = (f"GPU memory ({record['gpu_memory']['precision']})", f"{total} GiB", None)
    return {
        "patch": record["patch"],
        "aug_patch": record["aug_patch"],
        "pool": record["pool"],
        "batch": record["batch"],
        "memory": shown,
        "comment": [line for line in text.splitlines() if line.startswith("# max_dims")],
        "config": record["config"],
    }


def in_the_widget(widget) -> dict:
    """What the widget shows: its plan table, the memory line under it, its config text."""
    if widget.plan is None:
        status = widget["status"].value
        assert status.startswith("Error: These limits cannot be used: ")
        assert not widget["plan_table"].native.isVisible() and widget["config"].value == ""
        return {"refused": status.removeprefix("Error: These limits cannot be used: ")}
    view = widget["plan_table"].native
    rows = {
        view.item(r, 0).text(): [view.item(r, c).text() for c in range(1, 4)]
        for r in range(view.rowCount())
    }
    (memory_title,) = [title for title in rows if title.startswith("GPU memory")]
    value = rows[memory_title][0]
    why = widget["memory_split"].value if value == "not estimated" else None
    config = widget["config"].value
    return {
        "patch": [int(v) for v in rows["Patch"]],
        "aug_patch": [int(v) for v in rows["Aug. patch"]],
        "pool": [int(v) for v in rows["Poolings"]],
        "batch": int(rows["Batch"][0]),
        "memory": (memory_title, value, why),
        "comment": [line for line in config.splitlines() if line.startswith("# max_dims")],
        "config": _python_values(config),
    }


def _type_into_the_form(widget, values: dict) -> None:
    for name, value in values.items():  # each change re-plans at once
        widget[name].value = value


def test_the_widget_and_the_command_line_agree_on_every_plan(
    make_napari_viewer, dock_widget, run_and_wait, capsys, tmp_path
):
    viewer = make_napari_viewer(show=True)
    widget = dock_widget(viewer)
    seen = []
    for name, argv, (images, masks), median in _datasets(tmp_path):
        widget["images"].value, widget["masks"].value = images, masks
        assert run_and_wait(widget) == "done", name
        for args, form in SETTINGS:
            _type_into_the_form(widget, {**FORM_DEFAULTS, **form})
            in_widget = in_the_widget(widget)
            assert in_widget == on_the_command_line(capsys, *argv, *args), (name, args)
            # --median alone plans the same, with the same memory (or the same refusal)
            from_median = on_the_command_line(capsys, "--median", *median, *args)
            if "refused" in in_widget:
                assert from_median == in_widget, (name, args)
            else:
                for key in ("patch", "aug_patch", "pool", "batch", "memory", "comment"):
                    assert from_median[key] == in_widget[key], (name, args, key)
            seen.append((name, args, in_widget))

    # The story covered what it claims: plans without a memory figure for both reasons, real
    # estimates, GPU budgets with their note, refusals, and two channels in the config.
    reasons = [shown["memory"][2] for _, _, shown in seen if "memory" in shown]
    assert any(r and "with no pooling" in r for r in reasons)
    assert any(r and "single voxel" in r for r in reasons)
    assert any(r is None for r in reasons)
    (tiny,) = [shown for name, args, shown in seen if name == "tiny" and args == ()]
    assert tiny["patch"] == [4, 4, 4] and tiny["memory"][1] == "not estimated"
    assert any(shown.get("comment") for _, _, shown in seen)
    assert any("refused" in shown for _, _, shown in seen)
    assert any(
        shown.get("config", {}).get("NUM_CHANNELS") == 2 and shown["memory"][2] is None
        for _, _, shown in seen
    )
