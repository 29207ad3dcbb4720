"""The per-label table in the Objects tab: a user fingerprints masks holding three labels, measures
the objects, reads one row per label, selects a row to see that label's largest component outlined
on its image, and saves MONAI's datastats, all through the docked widget on real files.
"""

from __future__ import annotations

import numpy as np
import pytest
from napari.utils.notifications import NotificationSeverity, notification_manager

from datafiles import SPACING_ZYX, write_image
from napari_autoconfig._napari.objects_panel import LABEL_NAME
from napari_autoconfig._napari.objects_tab import ObjectsTab
from napari_autoconfig._napari.preview import is_plugin_layer

SHAPE = (10, 32, 30)
PICK = "napari_autoconfig._napari.objects_panel.ask_datastats_path"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Case a: two cubes of label 1 and a bar of label 2; case b: a cube of label 1 and label 3,
    which only case b has."""
    folder = tmp_path_factory.mktemp("labels")
    a = np.zeros(SHAPE, np.uint8)
    a[1:4, 2:6, 2:6] = 1  # 3 x 4 x 4
    a[5:9, 10:16, 10:15] = 1  # 4 x 6 x 5: label 1's largest, in a
    a[2:3, 20:30, 4:6] = 2
    b = np.zeros(SHAPE, np.uint8)
    b[0:2, 0:2, 0:2] = 1
    b[3:8, 20:24, 20:28] = 3
    rng = np.random.default_rng(5)
    for name, mask in (("a", a), ("b", b)):
        image = rng.integers(10, 60, SHAPE, dtype=np.uint16) + 100 * mask
        write_image(folder / "images" / f"{name}.tif", image)
        write_image(folder / "masks" / f"{name}.tif", mask)
    return folder / "images", folder / "masks"


@pytest.fixture
def measured(make_napari_viewer, dock_widget, run_and_wait, folders, qtbot):
    """The widget docked, the folders fingerprinted, the Objects tab's Measure clicked."""
    viewer = make_napari_viewer(show=True)
    widget = dock_widget(viewer)
    widget["images"].value, widget["masks"].value = folders
    assert run_and_wait(widget) == "done"
    panel = widget.panel(ObjectsTab).objects_panel
    tabs = [p.title for p in widget.panels if p.title]
    widget.tabs.setCurrentIndex(tabs.index("Objects"))
    assert widget["labels_table"].native.isHidden()  # no empty table before a result
    with qtbot.waitSignal(panel.finished, timeout=60_000) as blocker:
        widget["objects"].native.click()
    assert blocker.args == ["done"]
    return viewer, widget, panel


def _outlined(widget, label: str) -> bool:
    """The status says the label is outlined (not that its image is still loading)."""
    return widget["objects_status"].value.startswith(f"'{LABEL_NAME}' outlines {label}'s")


def _cells(view, column: str) -> list[str]:
    titles = [view.horizontalHeaderItem(c).text() for c in range(view.columnCount())]
    c = titles.index(column)
    return [view.item(r, c).text() for r in range(view.rowCount())]


def test_one_row_per_label_and_a_row_outlines_its_largest_component(measured, qtbot):
    viewer, widget, panel = measured
    view = widget["labels_table"].native
    assert view.rowCount() == 3, panel["objects_status"].value
    assert view.isVisible()
    # the value over the masks holding it; sizes in voxels over sizes in the file's unit (the
    # ImageJ headers: 2 µm in z, 0.5 µm in y and x)
    assert _cells(view, "Label\nmasks") == ["1\n2/2", "2\n1/2", "3\n1/2"]
    assert _cells(view, "Objects") == ["3", "1", "1"]
    assert _cells(view, "Largest\nz×y×x\nvoxels\nµm") == [
        "4×6×5\n8×3×2.5",
        "1×10×2\n2×5×1",
        "5×4×8\n10×2×4",
    ]
    assert _cells(view, "Median\nz×y×x\nvoxels\nµm")[0] == "3×4×4\n6×2×2"  # of 3, 4, 2 planes
    voxels = 2 * np.prod(SHAPE)
    assert _cells(view, "Voxels")[2] == f"{100 * 160 / voxels:.3g} %"
    under = panel.label_stats.rows[1]  # label 2: its mean over its 0.5-99.5 % percentiles
    assert _cells(view, "Intensity\nmean\n0.5–99.5%")[1] == (
        f"{under.mean:.4g}\n{under.percentile_00_5:.4g}–{under.percentile_99_5:.4g}"
    )
    colors = [view.item(r, 0).foreground().color().name() for r in range(3)]
    assert colors[1] == colors[2] != colors[0]  # labels 2 and 3 are not in every mask
    assert "appear in only some of the 2 masks" in widget["objects_result"].value
    # every cell is read whole in the dock: no column narrower than its text, nothing elided
    metrics = view.fontMetrics()
    for c in range(view.columnCount()):
        texts = [view.horizontalHeaderItem(c).text()] + [view.item(r, c).text() for r in range(3)]
        widest = max(metrics.horizontalAdvance(line) for t in texts for line in t.split("\n"))
        assert view.columnWidth(c) > widest
    assert view.verticalScrollBar().maximum() == 0  # every row shown, no scrolling

    view.selectRow(2)  # label 3: its only component, in b.tif (opened off the GUI thread)
    qtbot.waitUntil(lambda: _outlined(widget, "label 3"))
    outline = viewer.layers[LABEL_NAME]
    image = next(lyr for lyr in viewer.layers if not is_plugin_layer(lyr))
    assert image.source.path.endswith("b.tif")
    assert outline.data.shape == (5, 4, 8) and outline.bounding_box.visible
    np.testing.assert_allclose(outline.translate, np.multiply((3, 20, 20), SPACING_ZYX))
    assert "label 3" in widget["objects_status"].value

    view.selectRow(0)  # label 1: its largest component is in a.tif, opened for it
    qtbot.waitUntil(lambda: _outlined(widget, "label 1"))
    outlines = [lyr for lyr in viewer.layers if lyr.name.startswith(LABEL_NAME)]
    assert len(outlines) == 1 and outlines[0].data.shape == (4, 6, 5)
    assert any(
        lyr.source.path and lyr.source.path.endswith("a.tif")
        for lyr in viewer.layers
        if not is_plugin_layer(lyr)
    )
    viewer.dims.ndisplay = 3  # the outline is a wireframe box in 3D too
    qtbot.wait(50)
    assert outlines[0].bounding_box.visible


def test_labels_chosen_quickly_while_their_image_loads_only_the_last_is_outlined(measured, qtbot):
    viewer, widget, _panel = measured
    heard = []

    def keep(notification):
        if notification.severity >= NotificationSeverity.WARNING:
            heard.append(notification.message)

    notification_manager.notification_ready.connect(keep)
    try:
        view = widget["labels_table"].native
        view.selectRow(2)  # label 3, in b.tif: not open, it loads off the GUI thread...
        assert LABEL_NAME not in viewer.layers
        assert widget["objects_status"].value.startswith("Opening b.tif")
        view.selectRow(1)  # ...and the user has chosen label 2, in a.tif, before it arrived
        qtbot.waitUntil(lambda: _outlined(widget, "label 2"))
        outlines = [lyr for lyr in viewer.layers if lyr.name.startswith(LABEL_NAME)]
        assert len(outlines) == 1 and outlines[0].data.shape == (1, 10, 2)
        files = [lyr.source.path for lyr in viewer.layers if lyr.source.path]
        assert len(files) == 1 and files[0].endswith("a.tif")  # b.tif never came

        view.selectRow(2)  # b.tif loads again; meanwhile label 1, whose a.tif is open:
        view.selectRow(0)  # outlined at once
        outlines = [lyr for lyr in viewer.layers if lyr.name.startswith(LABEL_NAME)]
        assert len(outlines) == 1 and outlines[0].data.shape == (4, 6, 5)
        assert _outlined(widget, "label 1")
    finally:
        notification_manager.notification_ready.disconnect(keep)
    assert heard == []


def test_save_datastats_writes_monais_two_files(measured, tmp_path, qtbot, monkeypatch):
    from ruamel.yaml import YAML

    from napari_autoconfig.planners.monai import compute_datastats, write_datastats

    _viewer, widget, panel = measured
    target = tmp_path / "out" / "datastats.yaml"
    target.parent.mkdir()
    monkeypatch.setattr(PICK, lambda parent: str(target))  # the file dialog's answer
    assert widget["save_datastats"].enabled
    with qtbot.waitSignal(panel.datastats_finished, timeout=60_000) as blocker:
        widget["save_datastats"].native.click()
    assert blocker.args == ["done"]
    qtbot.waitUntil(lambda: panel.datastats_worker is None)
    assert widget["save_datastats"].enabled  # back once the worker has ended
    by_case = target.with_name("datastats_by_case.yaml")
    assert f"Saved MONAI's datastats: {target} and {by_case}." == widget["objects_status"].value
    summary = YAML(typ="safe").load(target.read_text())
    cases = YAML(typ="safe").load(by_case.read_text())
    assert summary["stats_by_cases"] == [] and len(cases["stats_by_cases"]) == 2
    assert summary["stats_summary"]["label_stats"]["labels"] == [0, 1, 2, 3]
    # byte for byte the files the core writes from the same folders (what --datastats writes)
    (tmp_path / "core").mkdir()
    core = write_datastats(compute_datastats(panel_dataset(panel)), tmp_path / "core" / "d.yaml")
    assert [p.read_bytes() for p in core] == [target.read_bytes(), by_case.read_bytes()]
    assert summary["stats_summary"]["n_cases"] == 2


def panel_dataset(panel):
    """The fingerprinted pairs, opened again from their folders (what a user gives the CLI)."""
    from napari_autoconfig.dataset import open_dataset

    record = panel.fingerprint.records[0]
    return open_dataset(record.image.path.parent, record.mask_path.parent)
