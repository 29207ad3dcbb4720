"""Updating a biom3d YAML config in place: only the owned values change, every other byte stays."""

from __future__ import annotations

import os

import pytest
from ruamel.yaml import YAML

from napari_autoconfig.config_update import check_config_target, update_config
from napari_autoconfig.errors import ConfigError

# The shape of the config.yaml biom3d logs for each run: comments, quoting, nested blocks, anchors.
BIOM3D_YAML = """\
# biom3d run configuration
DESC: 'unet_default'   # a model name
IMG_DIR: "data/img"
MSK_DIR: data/msk
NUM_CLASSES: 1
BATCH_SIZE: &batch 7
PATCH_SIZE:
  - 64
  - 64    # y
  - 64
AUG_PATCH_SIZE: [111,
  111, 111]
NUM_POOLS: [4, 4, 4]
MEDIAN_SPACING: []
CLIPPING_BOUNDS: []
TRAIN_DATASET:
  fct: SegPatchFast
  kwargs:
    batch_size: *batch
    patch_size: [64, 64, 64]
NUM_EPOCHS: 1000
LR_START: 0.01
"""

VALUES = {
    "BATCH_SIZE": 2,
    "PATCH_SIZE": [40, 96, 96],
    "AUG_PATCH_SIZE": [142, 142, 142],
    "NUM_POOLS": [3, 4, 4],
    "MEDIAN_SPACING": [0.5, 0.5, 2.0],
    "CLIPPING_BOUNDS": [12.0, 250.5],
    "INTENSITY_MOMENTS": [100.25, 30.5],
}


def _load(path):
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("name", ["config.yaml", "run.yml"])
def test_owned_values_change_and_every_other_byte_stays(tmp_path, newline, name):
    path = tmp_path / name
    original = BIOM3D_YAML.replace("\n", newline).encode()
    path.write_bytes(original)
    result = update_config(path, VALUES)

    data = _load(path)
    for key, value in VALUES.items():
        assert data[key] == value, key
    # the other keys keep their values, the anchor still feeds the nested copy
    assert data["DESC"] == "unet_default" and data["NUM_EPOCHS"] == 1000
    assert data["TRAIN_DATASET"]["kwargs"]["batch_size"] == 2
    # the file is the original with only the owned values' text changed, byte for byte
    expected = (
        BIOM3D_YAML.replace("BATCH_SIZE: &batch 7", "BATCH_SIZE: &batch 2")
        .replace("  - 64\n  - 64    # y\n  - 64\n", "  - 40\n  - 96    # y\n  - 96\n")
        .replace("[111,\n  111, 111]", "[142,\n  142, 142]")
        .replace("NUM_POOLS: [4, 4, 4]", "NUM_POOLS: [3, 4, 4]")
        .replace("MEDIAN_SPACING: []", "MEDIAN_SPACING: [0.5, 0.5, 2.0]")
        # the missing key comes right after the last owned key, before the nested blocks
        .replace(
            "CLIPPING_BOUNDS: []\n",
            "CLIPPING_BOUNDS: [12.0, 250.5]\nINTENSITY_MOMENTS: [100.25, 30.5]\n",
        )
    )
    assert path.read_bytes() == expected.replace("\n", newline).encode()
    assert path.read_bytes().count(b"\n") == path.read_bytes().count(newline.encode())
    assert result.added == ("INTENSITY_MOMENTS",)
    assert [key for key, _, _ in result.changed] == [
        "BATCH_SIZE",
        "PATCH_SIZE",
        "AUG_PATCH_SIZE",
        "NUM_POOLS",
        "MEDIAN_SPACING",
        "CLIPPING_BOUNDS",
    ]
    assert result.backup.read_bytes() == original


def test_equal_values_keep_their_text_and_a_second_update_changes_nothing(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(BIOM3D_YAML)
    update_config(path, VALUES)
    once = path.read_bytes()
    result = update_config(path, VALUES)
    assert path.read_bytes() == once and result.changed == () and result.added == ()


def test_lists_of_another_length_and_keys_without_value(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("PATCH_SIZE:\n    - 64\n    - 64\nNUM_POOLS:\nIS_2D: no\nOTHER: 1\n")
    update_config(path, {"PATCH_SIZE": [1, 96, 96], "NUM_POOLS": [0, 4, 4], "IS_2D": True})
    text = path.read_text()
    assert text == (
        "PATCH_SIZE:\n    - 1\n    - 96\n    - 96\nNUM_POOLS: [0, 4, 4]\nIS_2D: true\nOTHER: 1\n"
    )


def test_keys_are_added_at_the_end_when_none_is_present_and_a_bom_is_kept(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"\xef\xbb\xbf# mine\nNUM_EPOCHS: 10")  # no final newline
    update_config(path, {"BATCH_SIZE": 4})
    assert path.read_bytes() == b"\xef\xbb\xbf# mine\nNUM_EPOCHS: 10\nBATCH_SIZE: 4\n"


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("BATCH_SIZE: [1, 2\nPATCH_SIZE: 3\n", "not valid YAML"),
        ("- 1\n- 2\n", "top level"),
        ("BATCH_SIZE: 2\nPATCH_SIZE: [1]\nBATCH_SIZE: 3\n", "BATCH_SIZE appears twice"),
        ("{BATCH_SIZE: 2}\n", "top level"),
    ],
)
def test_refused_yaml_is_left_untouched(tmp_path, content, needle):
    path = tmp_path / "config.yaml"
    path.write_text(content)
    for call in (check_config_target, lambda p: update_config(p, VALUES)):
        with pytest.raises(ConfigError, match=needle):
            call(path)
    assert path.read_text() == content
    assert os.listdir(tmp_path) == ["config.yaml"]


def test_yaml_is_never_constructed_into_objects(tmp_path):
    # A tag that would build a Python object must not run: only positions are read.
    path = tmp_path / "config.yaml"
    path.write_text("HOOK: !!python/object/apply:os.system ['touch pwned']\nBATCH_SIZE: 3\n")
    update_config(path, {"BATCH_SIZE": 2})
    assert not (tmp_path / "pwned").exists() and not os.path.exists("pwned")
    assert path.read_text().endswith("BATCH_SIZE: 2\n")
