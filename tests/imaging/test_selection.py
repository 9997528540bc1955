"""Series selection: the right series is chosen, and the choice (or its absence) is explained."""

from __future__ import annotations

from pathlib import Path

import pytest
from imaging_helpers import make_datasets

from daemon.config import ConfigError
from daemon.demo.dicom import write_datasets
from daemon.demo.phantom import Grid
from daemon.imaging.loader import scan
from daemon.imaging.selection import SeriesSpec, select_series
from daemon.routing_rules import load_rules

BRAIN = SeriesSpec(
    modality=["MR"], image_type_absent=["LOCALIZER", "DERIVED"], description_regex="t1|mprage",
    contrast=True, acquisition_3d=True, slice_thickness_mm=(0.4, 2.5), min_slices=8,
)


def _study(tmp: Path) -> Path:
    folder = tmp / "study"
    axial = Grid((10, 8, 8), (1.0, 1.0, 1.0))
    write_datasets(make_datasets(axial, description="T1 MPRAGE 3D post-Gd", number=5,
                                 contrast_agent="Gadoterate"), folder / "a")
    write_datasets(make_datasets(axial, description="T1 MPRAGE 3D pre", number=3), folder / "b")
    flair = Grid((12, 8, 8), (5.0, 1.0, 1.0))
    write_datasets(make_datasets(flair, description="FLAIR ax", number=4, extra={"MRAcquisitionType": "2D"}), folder / "c")
    loc = Grid((3, 8, 8), (10.0, 1.0, 1.0), row_direction=(0, 1, 0), column_direction=(0, 0, -1))
    write_datasets(make_datasets(loc, description="localizer", number=1,
                                 image_type=("ORIGINAL", "PRIMARY", "LOCALIZER")), folder / "d")
    (folder / "notes.txt").write_text("not DICOM")
    return folder


def test_chooses_post_contrast_3d_t1_and_explains(tmp_path: Path) -> None:
    found = scan(_study(tmp_path))
    assert len(found.series) == 4 and len(found.skipped) == 1
    sel = select_series(BRAIN, found.series)
    assert sel.chosen is not None and sel.chosen.facts.description.startswith("T1 MPRAGE 3D post-Gd")
    text = sel.explain()
    assert text.startswith("chose series 5")
    assert "contrast: wanted with contrast, found no contrast" in text  # the pre-contrast T1
    assert "acquisition: wanted 3D, found 2D" in text  # the FLAIR
    assert "image type: wanted no LOCALIZER" in text  # the scout
    assert "slice thickness: wanted 0.4-2.5 mm, found 5 mm" in text


def test_no_suitable_series_is_a_result(tmp_path: Path) -> None:
    ct = SeriesSpec(modality=["CT"], contrast=True, orientation="axial", min_slices=20)
    sel = select_series(ct, scan(_study(tmp_path)).series)
    assert sel.chosen is None and sel.series_instance_uid is None
    text = sel.explain()
    assert text.startswith("no suitable series")
    assert text.count("modality: wanted CT, found MR") == 4
    assert select_series(ct, {}).explain() == "no suitable series: the study has no image series"


def test_orientation_and_preference(tmp_path: Path) -> None:
    found = scan(_study(tmp_path)).series
    sag = select_series(SeriesSpec(modality=["MR"], orientation="sagittal", image_type_absent=[]), found)
    assert sag.chosen is not None and sag.chosen.facts.description.startswith("localizer")
    pref = select_series(SeriesSpec(modality=["MR"], prefer_description_regex="flair"), found)
    assert pref.chosen is not None and pref.chosen.facts.description.startswith("FLAIR")


def test_a_route_series_spec_is_checked_with_file_and_line_when_the_rules_load(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("version: 1\nroutes:\n  - name: brain\n    pipeline: brain_mets\n    parameters:\n"
                    "      series:\n        modality: [mr]\n        contrast: true\n"
                    "        slice_thickness_mm: [0.4, 1.6]\n")
    spec = SeriesSpec.model_validate(load_rules(good, []).routes[0].parameters["series"])
    assert spec.modality == ["MR"] and spec.slice_thickness_mm == (0.4, 1.6)
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nroutes:\n  - name: brain\n    pipeline: brain_mets\n    parameters:\n"
                   "      series:\n        modality: [MR]\n        description_regex: '(unclosed'\n"
                   "        colour: red\n")
    with pytest.raises(ConfigError) as err:
        load_rules(bad, [])
    msg = str(err.value)
    assert f"{bad}:8:" in msg and "regular expression" in msg
    assert f"{bad}:9:" in msg and "unknown key" in msg


@pytest.mark.parametrize(("description", "contrast"), [
    ("T1 MPRAGE post-Gd", True), ("T1 3D +C", True), ("Abdomen PV 70s", True),
    ("T1 pre-contrast", False), ("T1 native", False), ("FLAIR ax", False), ("CT sans contraste", False),
])
def test_contrast_from_description(description: str, contrast: bool) -> None:
    from daemon.imaging.selection import _says_contrast

    assert _says_contrast(description) is contrast


def test_shipped_rules_load_and_pick_the_demo_series(repo_root: Path, tmp_path: Path) -> None:
    from daemon.demo.patient import write_brain_mr

    # each route's spec lives in its `series:` parameter of the routing file, and only there
    rules = load_rules(repo_root / "rules" / "routing.yaml", ["pacs"])
    specs = {r.pipeline: SeriesSpec.model_validate(r.parameters["series"]) for r in rules.routes if "series" in r.parameters}
    assert {"brain_mets", "liver_ct"} <= set(specs)
    assert not (repo_root / "rules" / "series_selection.yaml").exists()
    study = write_brain_mr(tmp_path, 0, "small", seed=1)
    sel = select_series(specs["brain_mets"], scan(study.folder).series)
    assert sel.chosen is not None and "T1 MPRAGE 3D post-Gd" in sel.chosen.facts.description
    strict = specs["brain_mets"].model_copy(update={"slice_thickness_mm": (0.4, 1.2)})
    sel = select_series(strict, scan(study.folder).series)
    assert sel.chosen is None and "slice thickness: wanted 0.4-1.2 mm, found 1.5 mm" in sel.explain()
