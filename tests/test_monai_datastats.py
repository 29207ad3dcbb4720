"""MONAI Auto3DSeg's datastats without torch: on the datasets of ``benchmarks/monai_reference.py``,
whose two YAML files monai 1.6.1's own ``DataAnalyzer(device="cpu")`` wrote
(``tests/monai_recorded.json``), ``compute_datastats`` and ``--datastats`` give every key, in
MONAI's order, and every value within float32 rounding (torch adds a mean's float32 voxels in
float32: about 1e-6 apart at most)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML

import monai_reference as reference
from napari_autoconfig.cli import main
from napari_autoconfig.dataset import open_datalist
from napari_autoconfig.planners.monai import compute_datastats

RECORDED = json.loads((Path(__file__).parent / "monai_recorded.json").read_text())
RUNS = {
    f"{r['dataset']}-ccp{int(r['run']['do_ccp'])}-h{r['run']['hist_bins']}": r
    for r in RECORDED["runs"]
}
SPECS = {spec["name"]: spec for spec in RECORDED["datasets"]}


def assert_same(ours, monais) -> None:
    """Same keys in the same order, same types, numbers within float32 rounding."""
    found = reference.differences(ours, monais)
    assert not found, "\n".join(found[:10])


def relative(document: dict, folder: Path) -> dict:
    for case in document["stats_by_cases"]:
        for key in ("image_filepath", "label_filepath"):
            case[key] = str(Path(case[key]).relative_to(folder))
    return document


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """Every recorded dataset, written again from its seed."""
    root = tmp_path_factory.mktemp("monai")
    return {name: reference.write_dataset(spec, root) for name, spec in SPECS.items()}


@pytest.mark.parametrize("name", list(RUNS))
def test_datastats_equal_monais_own_on_every_recorded_run(folders, name):
    run = RUNS[name]
    folder = folders[run["dataset"]]
    datastats = compute_datastats(
        open_datalist(folder / "datalist.json"),
        do_ccp=run["run"]["do_ccp"],
        hist_bins=run["run"]["hist_bins"],
    )

    summary_file, by_case_file = datastats.documents()
    # through JSON, as recorded: one list shared by two entries (MONAI's histogram) is compared
    # by value
    assert_same(json.loads(json.dumps(summary_file)), run["datastats"])
    assert_same(relative(json.loads(json.dumps(by_case_file)), folder), run["datastats_by_case"])


@pytest.mark.parametrize("name", [n for n, r in RUNS.items() if r["run"]["do_ccp"]])
def test_components_counted_in_thin_slabs_keep_monais_order(folders, name, monkeypatch):
    """Components are labelled slab by slab (bounded memory); in slabs of one plane each blob
    spans several slabs, joined again, in MONAI's raster order."""
    from napari_autoconfig import objects

    monkeypatch.setattr(objects, "SLAB_BYTES", 256)
    run = RUNS[name]
    folder = folders[run["dataset"]]
    datastats = compute_datastats(open_datalist(folder / "datalist.json"), do_ccp=True)

    _, by_case_file = datastats.documents()
    assert_same(relative(json.loads(json.dumps(by_case_file)), folder), run["datastats_by_case"])


def load_yaml(path: Path) -> dict:
    return YAML(typ="safe", pure=True).load(path.read_text())


def test_the_command_line_writes_monais_two_files_from_a_datalist(folders, tmp_path, capsys):
    run = RUNS["uint16_labels-ccp1-h0"]
    folder = folders["uint16_labels"]
    out = tmp_path / "datastats.yaml"

    code = main(
        [
            str(folder / "datalist.json"),
            "--dataroot",
            str(folder),
            "--datastats",
            str(out),
            "--datastats-ccp",
            "--quiet",
        ]
    )

    assert code == 0
    summary_text = out.read_text()
    assert summary_text.startswith("# Written by napari-autoconfig")
    assert "monai 1.6.1" in summary_text and "do_ccp=True" in summary_text
    assert_same(load_yaml(out), run["datastats"])
    assert load_yaml(out)["stats_by_cases"] == []
    by_case = load_yaml(tmp_path / "datastats_by_case.yaml")
    assert_same(relative(by_case, folder), run["datastats_by_case"])
    assert "datastats_by_case.yaml" in capsys.readouterr().err


def test_a_case_monai_skips_is_left_out_and_said_in_one_line(folders, tmp_path, capsys):
    run = RUNS["two_channels-ccp0-h0"]
    folder = folders["two_channels"]

    code = main(
        [
            str(folder / "datalist.json"),
            "--datastats",
            str(tmp_path / "d.yaml"),
            "--json",
            "--quiet",
        ]
    )

    assert code == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)["monai"]
    assert_same(record["stats_summary"], run["datastats"]["stats_summary"])
    assert [Path(s["path"]).name for s in record["skipped"]] == ["case_001.nii.gz"]
    said = [line for line in captured.err.splitlines() if "would skip" in line]
    assert len(said) == 1 and "case_001.nii.gz" in said[0] and "no voxel > 0" in said[0]


def test_image_and_mask_folders_give_the_same_datastats_in_the_json(folders, tmp_path, capsys):
    run = RUNS["oblique_axes-ccp1-h0"]
    folder = folders["oblique_axes"]
    out = tmp_path / "stats.yaml"

    code = main(
        [
            str(folder / "images"),
            "--masks",
            str(folder / "labels"),
            "--datastats",
            str(out),
            "--datastats-ccp",
            "--json",
            "--quiet",
        ]
    )

    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert "patch" in record  # biom3d's plan is still there
    assert_same(record["monai"]["stats_summary"], run["datastats"]["stats_summary"])
    assert record["monai"]["datastats_files"] == [str(out), str(tmp_path / "stats_by_case.yaml")]


def test_the_numpy_loops_give_the_same_datastats(folders, compiled_or_numpy):
    """Where the package was built without a C compiler, numpy counts the (label, value) pairs
    and finds the crop box: MONAI's numbers still."""
    run = RUNS["uint16_labels-ccp0-h0"]
    folder = folders["uint16_labels"]
    datastats = compute_datastats(open_datalist(folder / "datalist.json"))

    _, by_case_file = datastats.documents()
    assert_same(relative(json.loads(json.dumps(by_case_file)), folder), run["datastats_by_case"])


def test_an_nnunet_raw_dataset_gives_monais_datastats_of_its_cases(folders, tmp_path, capsys):
    """The same files laid out as an nnU-Net raw dataset (imagesTr/, labelsTr/, dataset.json)."""
    run = RUNS["uint16_labels-ccp0-h0"]
    folder = folders["uint16_labels"]
    raw = tmp_path / "Dataset042_Cells"
    (raw / "imagesTr").mkdir(parents=True)
    (raw / "labelsTr").mkdir()
    for image in sorted((folder / "images").iterdir()):
        case = image.name.removesuffix(".nii.gz")
        (raw / "imagesTr" / f"{case}_0000.nii.gz").hardlink_to(image)
        (raw / "labelsTr" / image.name).hardlink_to(folder / "labels" / image.name)
    meta = {"channel_names": {"0": "MRI"}, "labels": {"background": 0, "a": 1, "b": 3}}
    (raw / "dataset.json").write_text(
        json.dumps({**meta, "numTraining": 4, "file_ending": ".nii.gz"})
    )

    assert main([str(raw), "--datastats", str(tmp_path / "d.yaml"), "--json", "--quiet"]) == 0

    record = json.loads(capsys.readouterr().out)["monai"]
    assert_same(record["stats_summary"], run["datastats"]["stats_summary"])


def test_progress_is_told_per_case_and_a_cancel_stops_the_run(folders):
    from napari_autoconfig.errors import Cancelled

    dataset = open_datalist(folders["uint16_labels"] / "datalist.json")
    told = []
    datastats = compute_datastats(dataset, progress=lambda done, total: told.append((done, total)))
    assert told == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert datastats.summary["n_cases"] == 4

    with pytest.raises(Cancelled, match="0 of 4"):
        compute_datastats(dataset, cancel=lambda: True)


def test_monais_summary_indexes_labels_by_value_as_monai_does(folders):
    """Labels 0 / 1 / 3, one case without label 1: MONAI's summary of "label 1" reads that
    case's label 3, and "label 3" (index 3 of three entries) finds nothing."""
    datastats = compute_datastats(open_datalist(folders["uint16_labels"] / "datalist.json"))

    lacking = datastats.by_case[2]["label_stats"]
    assert lacking["labels"] == [0, 3]
    label1 = datastats.summary["label_stats"]["label"][1]["foreground_percentage"]
    assert label1["max"] >= lacking["label"][1]["foreground_percentage"]
    label3 = datastats.summary["label_stats"]["label"][2]["foreground_percentage"]
    assert label3["max"] == 0 and label3["mean"] == 0.0


def test_an_existing_datastats_file_is_kept_as_a_backup(folders, tmp_path):
    out = tmp_path / "datastats.yaml"
    out.write_text("mine\n")
    datalist = str(folders["uint16_labels"] / "datalist.json")

    assert main([datalist, "--datastats", str(out), "--quiet"]) == 0

    assert (tmp_path / "datastats.yaml.bak").read_text() == "mine\n"
    assert load_yaml(out)["stats_summary"]["n_cases"] == 4


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ('{"validation": []}', '"training"'),
        ('{"training": [{"label": "a.nii.gz"}]}', '"image"'),
        ("not json", "cannot be read"),
    ],
)
def test_a_bad_datalist_is_refused_in_one_line(tmp_path, capsys, content, said):
    datalist = tmp_path / "datalist.json"
    datalist.write_text(content)

    assert main([str(datalist), "--datastats", str(tmp_path / "d.yaml"), "--quiet"]) == 2

    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and said in error and "datalist" in error
    assert not (tmp_path / "d.yaml").exists()


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--datastats-ccp"], "goes with --datastats"),
        (["--datastats", "{tmp}/d.yaml", "--export-nnunet", "{tmp}/out"], "two runs"),
        (["--datastats", "{tmp}/no/such/folder/d.yaml"], "does not exist"),
        (["--dataroot", "{tmp}"], "for a MONAI datalist"),
    ],
)
def test_options_that_cannot_work_are_refused_before_any_file_is_read(
    folders, tmp_path, capsys, options, said
):
    images = str(folders["uint16_labels"] / "images")
    argv = [images, *(o.replace("{tmp}", str(tmp_path)) for o in options), "--quiet"]

    assert main(argv) == 2

    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and said in error
    assert list(tmp_path.iterdir()) == []


def test_a_datalist_gives_the_datastats_only(folders, tmp_path, capsys):
    datalist = str(folders["uint16_labels"] / "datalist.json")
    argv = [datalist, "--datastats", str(tmp_path / "d.yaml"), "--planner", "nnunet", "--quiet"]

    assert main(argv) == 2

    error = capsys.readouterr().err.strip()
    assert (
        len(error.splitlines()) == 1 and "MONAI's datastats only" in error and "--planner" in error
    )
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_image_in_the_datalist_is_named_in_one_line(folders, tmp_path, capsys):
    folder = folders["uint16_labels"]
    damaged = tmp_path / "damaged.nii.gz"
    damaged.write_bytes((folder / "images" / "case_001.nii.gz").read_bytes()[:2000])
    label = folder / "labels" / "case_001.nii.gz"
    datalist = tmp_path / "datalist.json"
    datalist.write_text(json.dumps({"training": [{"image": str(damaged), "label": str(label)}]}))

    assert main([str(datalist), "--datastats", str(tmp_path / "d.yaml"), "--quiet"]) == 2

    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "damaged.nii.gz" in error
    assert not (tmp_path / "d.yaml").exists()
