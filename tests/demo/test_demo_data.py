"""`nadir demo-data` writes readable SYNTHETIC series whose truth matches the written masks."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest

from daemon.cli import main
from daemon.demo.peers import dcmtk_env, free_port, stop_process, wait_until
from daemon.demo.truth import truth_dir, truth_file
from daemon.imaging.loader import scan
from daemon.imaging.nifti import nifti_to_array
from daemon.imaging.series import load_volume


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo-data", str(out), "--kinds", "mr-brain", "--timepoints", "t0,t1"]) == 0
    assert main(["demo-data", str(out), "--kinds", "pet-ct,ct-abdomen,pet-brain", "--timepoints", "t2"]) == 0
    return out


def _truth(folder: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(truth_file(folder).read_text())
    return doc


def test_layout_and_headers(demo: Path) -> None:
    studies = ["ct-abdomen-t2", "mr-brain-t0", "mr-brain-t1", "pet-brain-t2", "pet-ct-t2"]
    assert sorted(p.name for p in demo.iterdir()) == sorted(studies + [s + ".truth" for s in studies])
    for study in studies:
        # the study folder holds DICOM files only (storescu +sd +r sends it as written); its
        # truth and masks are beside it
        files = sorted((demo / study).iterdir())
        assert files and all(p.suffix == ".dcm" and _is_dicom(p) for p in files), study
        assert truth_file(demo / study).is_file() and truth_dir(demo / study) == demo / f"{study}.truth"
    ds = pydicom.dcmread(next((demo / "mr-brain-t0").glob("*.dcm")))
    assert "SYNTHETIC" in ds.SeriesDescription and "SYNTHETIC" in ds.StudyDescription
    assert ds.MRAcquisitionType == "3D" and ds.ContrastBolusAgent and ds.PatientName == "DEMO^PHANTOM"
    t0, t1 = _truth(demo / "mr-brain-t0"), _truth(demo / "mr-brain-t1")
    assert t0["synthetic"] is True and t0["study_instance_uid"] == ds.StudyInstanceUID
    assert t0["study_date"] < t1["study_date"]
    assert t1["absent_lesions"] == ["B4"]  # vanished
    ids0 = [les["lesion_id"] for les in t0["series"][0]["lesions"]]
    ids1 = [les["lesion_id"] for les in t1["series"][0]["lesions"]]
    assert "B3" not in ids0 and "B3" in ids1  # appeared
    d0 = {les["lesion_id"]: les["volume_mm3"] for les in t0["series"][0]["lesions"]}
    d1 = {les["lesion_id"]: les["volume_mm3"] for les in t1["series"][0]["lesions"]}
    assert d1["B1"] > d0["B1"] and d1["B2"] < d0["B2"]  # grows, shrinks
    assert t0["series"][0]["pose"] != t1["series"][0]["pose"]  # the patient moved


@pytest.mark.parametrize("study", ["mr-brain-t1", "ct-abdomen-t2", "pet-ct-t2", "pet-brain-t2"])
def test_truth_matches_masks_and_volumes(demo: Path, study: str) -> None:
    folder = demo / study
    truth = _truth(folder)
    found = scan(folder).series
    assert len(found) == len(truth["series"])
    for s in truth["series"]:
        vol = load_volume(found[s["series_instance_uid"]]).volume
        np.testing.assert_allclose(vol.affine, np.array(s["affine_kji_to_lps"]), atol=1e-4)
        labels, aff = nifti_to_array(nib.load(str(truth_dir(folder) / s["mask"])))
        np.testing.assert_allclose(aff, vol.affine, atol=1e-4)
        assert labels.shape == vol.shape
        for les in s["lesions"]:
            mask = labels == les["label"]
            assert int(mask.sum()) == les["voxel_count"] > 0
            centroid = vol.index_to_patient(np.argwhere(mask).astype(float)).mean(axis=0)
            np.testing.assert_allclose(centroid, les["centre"], atol=max(vol.spacing))
        if s["modality"] == "PT":
            assert vol.pet is not None and vol.pet.weight_kg == s["weight_kg"]
            suv = vol.array * np.float32(s["bqml_to_suvbw"])
            for les in s["lesions"]:
                assert float(suv[labels == les["label"]].max()) == pytest.approx(les["stats"]["suv_max"], rel=1e-5)


def _is_dicom(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(132)[128:] == b"DICM"


@pytest.mark.skipif(shutil.which("storescu") is None or shutil.which("storescp") is None,
                    reason="dcmtk's storescu/storescp are not installed")
def test_readme_storescu_sends_a_demo_study_as_written(demo: Path, tmp_path: Path) -> None:
    """The README's `storescu +sd +r STUDY_DIR/` sends every file of a demo study (dcmtk
    stops at the first non-DICOM file: a mask inside the folder stopped it)."""
    study = demo / "pet-ct-t2"  # two series, PET and CT
    received = tmp_path / "received"
    received.mkdir()
    port = free_port()
    scp = subprocess.Popen(["storescp", "-aet", "NADIR", "-od", str(received), "--fork", str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                           env=dcmtk_env())
    try:
        wait_until("storescp to listen",
                   lambda: subprocess.run(["echoscu", "-aec", "NADIR", "127.0.0.1", str(port)],
                                          capture_output=True, timeout=10).returncode == 0, 20)
        run = subprocess.run(["storescu", "-aec", "NADIR", "+sd", "+r", "127.0.0.1", str(port), f"{study}/"],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        sent = len(list(study.iterdir()))
        wait_until("every instance stored", lambda: len(list(received.iterdir())) >= sent, 30)
        assert len(list(received.iterdir())) == sent
    finally:
        stop_process(scp, 5)


def test_same_seed_same_uids(demo: Path, tmp_path: Path) -> None:
    assert main(["demo-data", str(tmp_path), "--kinds", "mr-brain", "--timepoints", "t0"]) == 0
    a = sorted(str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in (demo / "mr-brain-t0").glob("*.dcm"))
    b = sorted(str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in (tmp_path / "mr-brain-t0").glob("*.dcm"))
    assert a == b


def test_bad_arguments(tmp_path: Path) -> None:
    assert main(["demo-data", str(tmp_path), "--kinds", "xray"]) == 2


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools' dciodvfy is not installed")
@pytest.mark.parametrize("pattern", ["mr-brain-t0/MR*", "ct-abdomen-t2/CT*", "pet-ct-t2/PT*", "pet-ct-t2/CT*", "pet-brain-t2/PT*"])
def test_dciodvfy_finds_no_errors(demo: Path, pattern: str) -> None:
    path = sorted(demo.glob(pattern + ".dcm"))[3]
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]
    assert errors == []
