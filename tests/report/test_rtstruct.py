"""The RT Structure Set of the tracked lesions (SYNTHETIC phantoms): written, read back with
pydicom, checked by dciodvfy, and read by rt-utils as a planning system would: the contours
give back the mask within one voxel and the volume within 3 %, on an isotropic and on an
anisotropic axial grid."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pydicom
import pytest
from pydicom.uid import RTStructureSetStorage, generate_uid

from daemon.config import DEFAULT_OUTPUTS
from daemon.findings import Lesion, LesionKind, Measurements
from daemon.pipelines import lesion_followup
from daemon.pipelines.base import PipelineInput
from daemon.report.bundle import build_report
from daemon.report.identity import ObjectIdentity
from daemon.report.inputs import ModelInfo
from daemon.report.rtstruct import build_rtstruct
from daemon.report.seg import PALETTE_RGB
from daemon.volume import Code, LesionMask, SegmentLabel, SliceRef, Volume

from . import synthetic
from .phantom import Phantom
from .rtstruct_reader import contour_volumes_ml, rt_utils_masks, within_one_voxel
from .validators import dciodvfy

MODEL = ModelInfo("demo-brain-mets", "0.2.0", "ab" * 32)
IDENT = ObjectIdentity(
    series_instance_uid="2.25.1001", series_number=9005, sop_instance_uid="2.25.1002", instance_number=1,
    series_description="Nadir lesions (RTSTRUCT)", manufacturer="Nadir", software_version="0.1.0",
    device_serial_number="site-7", institution_name="Synthetic Hospital",
)
N = synthetic.ROWS  # 96 x 96 slices


def grid_study(spacing: tuple[float, float, float], slices: int, balls: list[tuple[tuple[float, float, float], float]],
               ) -> tuple[list[pydicom.Dataset], LesionMask, list[Lesion]]:
    """A SYNTHETIC axial series on `spacing` (k, j, i mm) with balls (centre mm from the first voxel, radius mm)."""
    study_uid, series_uid, for_uid = generate_uid(), generate_uid(), generate_uid()
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = (0, 0, spacing[0]), (0, spacing[1], 0), (spacing[2], 0, 0)
    affine[:3, 3] = (-30.5, -41.0, 17.25)
    k, j, i = np.meshgrid(np.arange(slices), np.arange(N), np.arange(N), indexing="ij")
    labels = np.zeros((slices, N, N), dtype=np.uint8)
    for n, (c, r) in enumerate(balls, start=1):
        d2 = sum(((idx * sp) - cc) ** 2 for idx, sp, cc in zip((k, j, i), spacing, c, strict=True))
        labels[d2 <= r * r] = n
    px = np.where(labels > 0, 900, 300).astype(np.uint16)
    datasets = []
    for kk in range(slices):
        ds = synthetic._dataset(study_uid, series_uid, for_uid, kk, date(2026, 5, 4), affine, px[kk])
        ds.PixelSpacing = [spacing[1], spacing[2]]
        ds.SliceThickness = spacing[0]
        datasets.append(ds)
    vol = Volume(array=px, affine=affine,
                 slices=tuple(SliceRef(str(d.SOPInstanceUID), str(d.SOPClassUID)) for d in datasets),
                 frame_of_reference_uid=for_uid, study_instance_uid=study_uid, series_instance_uid=series_uid,
                 modality="MR")
    neoplasm = Code("108369006", "SCT", "Neoplasm")
    info = tuple(SegmentLabel(n, f"lesion {n}", neoplasm, neoplasm) for n in range(1, len(balls) + 1))
    lesions = [lesion(f"L{n}", n) for n in range(1, len(balls) + 1)]
    return datasets, LesionMask(vol, labels, info), lesions


def lesion(tracking_id: str, label: int) -> Lesion:
    return Lesion(tracking_id, f"2.25.{900 + label}", LesionKind.TARGET, Measurements(), segment_number=label)


GRIDS = {
    # 1 mm isotropic: three lesions, one touching the series' first slice
    "isotropic": ((1.0, 1.0, 1.0), 40, [((20.0, 30.0, 30.0), 9.0), ((14.0, 64.0, 60.0), 5.5), ((3.0, 70.0, 20.0), 6.0)]),
    # the brain seed's 0.5 x 0.5 in plane with 2.5 mm slices (anisotropic)
    "anisotropic": ((2.5, 0.5, 0.5), 16, [((20.0, 16.0, 15.0), 8.0), ((17.5, 33.0, 30.0), 6.0)]),
}


@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_contours_read_back_by_rt_utils_give_the_mask_and_its_volume(grid: str, tmp_path: Path) -> None:
    spacing, slices, balls = GRIDS[grid]
    datasets, mask, lesions = grid_study(spacing, slices, balls)
    rt = build_rtstruct(mask, lesions, datasets, IDENT, MODEL)
    assert rt is not None
    series = tmp_path / "series"
    series.mkdir()
    for ds in datasets:
        ds.save_as(series / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
    path = tmp_path / "rtstruct.dcm"
    rt.save_as(path, enforce_file_format=True)
    assert dciodvfy(path).errors == []

    masks = rt_utils_masks(series, path)
    volumes = contour_volumes_ml(path, spacing[0])
    assert sorted(masks) == sorted(volumes) == [les.tracking_id for les in lesions]
    voxel_ml = float(np.prod(spacing)) / 1000.0
    for n, les in enumerate(lesions, start=1):
        truth = mask.labels == n
        read = masks[les.tracking_id]
        assert read.shape == truth.shape
        assert within_one_voxel(read, truth), f"{grid} {les.tracking_id}: contours farther than a voxel from the mask"
        assert np.all(read[truth]), "rt-utils fills every voxel of the mask"
        true_ml = float(truth.sum()) * voxel_ml
        assert volumes[les.tracking_id] == pytest.approx(true_ml, rel=0.03), f"{grid} {les.tracking_id}"
    roi_volumes = {str(r.ROIName): float(r.ROIVolume) for r in pydicom.dcmread(path).StructureSetROISequence}
    assert roi_volumes["L1"] == pytest.approx(float((mask.labels == 1).sum()) * voxel_ml, abs=1e-3)


def test_a_hole_in_a_lesion_is_a_nested_contour_that_readers_leave_empty(tmp_path: Path) -> None:
    """A necrotic core (no voxel of the mask) on the middle slices: even-odd in both readers."""
    datasets, mask, lesions = grid_study((1.0, 1.0, 1.0), 20, [((10.0, 40.0, 40.0), 12.0)])
    k, j, i = np.meshgrid(*(np.arange(n) for n in mask.labels.shape), indexing="ij")
    labels = mask.labels.copy()
    labels[(k - 10) ** 2 + (j - 40) ** 2 + (i - 40) ** 2 <= 25] = 0
    hollow = LesionMask(mask.volume, labels, mask.label_info)
    rt = build_rtstruct(hollow, lesions, datasets, IDENT, MODEL)
    assert rt is not None
    series = tmp_path / "series"
    series.mkdir()
    for ds in datasets:
        ds.save_as(series / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
    path = tmp_path / "rtstruct.dcm"
    rt.save_as(path, enforce_file_format=True)
    truth = labels == 1
    on_middle = [c for c in rt.ROIContourSequence[0].ContourSequence
                 if c.ContourImageSequence[0].ReferencedSOPInstanceUID == datasets[10].SOPInstanceUID]
    assert len(on_middle) == 2  # the outer boundary and the core's
    read = rt_utils_masks(series, path)["L1"]
    assert not read[10, 40, 40] and within_one_voxel(read, truth)
    assert contour_volumes_ml(path, 1.0)["L1"] == pytest.approx(float(truth.sum()) / 1000.0, rel=0.03)


def test_the_structure_set_references_its_series_and_names_the_algorithm(tmp_path: Path) -> None:
    datasets, mask, lesions = grid_study(*GRIDS["isotropic"])
    empty = lesion("L9", 9)  # no voxel: left out
    rt = build_rtstruct(mask, [*lesions, empty], datasets, IDENT, MODEL)
    assert rt is not None
    path = tmp_path / "rt.dcm"
    rt.save_as(path, enforce_file_format=True)
    ds = pydicom.dcmread(path)
    assert (ds.SOPClassUID, ds.Modality, ds.SOPInstanceUID) == (RTStructureSetStorage, "RTSTRUCT", "2.25.1002")
    assert (ds.PatientID, ds.StudyInstanceUID) == (datasets[0].PatientID, datasets[0].StudyInstanceUID)
    assert (ds.Manufacturer, ds.ManufacturerModelName, ds.SoftwareVersions, ds.DeviceSerialNumber) == (
        "Nadir", "Nadir", "0.1.0", "site-7")
    frame = ds.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == datasets[0].FrameOfReferenceUID == ds.FrameOfReferenceUID
    study = frame.RTReferencedStudySequence[0]
    assert study.ReferencedSOPInstanceUID == datasets[0].StudyInstanceUID
    series = study.RTReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == datasets[0].SeriesInstanceUID
    assert [c.ReferencedSOPInstanceUID for c in series.ContourImageSequence] == [d.SOPInstanceUID for d in datasets]

    assert [r.ROIName for r in ds.StructureSetROISequence] == ["L1", "L2", "L3"]
    for roi in ds.StructureSetROISequence:
        assert roi.ROIGenerationAlgorithm == "AUTOMATIC"
        assert roi.ROIGenerationDescription.startswith("demo-brain-mets 0.2.0")
        algo = roi.ROIDerivationAlgorithmIdentificationSequence[0]
        assert (algo.AlgorithmName, algo.AlgorithmVersion) == ("demo-brain-mets", "0.2.0")
    assert {o.RTROIInterpretedType for o in ds.RTROIObservationsSequence} == {"GTV"}
    assert ds.ApprovalStatus == "UNAPPROVED"
    z_of = {str(d.SOPInstanceUID): float(d.ImagePositionPatient[2]) for d in datasets}
    for n, roi in enumerate(ds.ROIContourSequence, start=1):
        assert [int(v) for v in roi.ROIDisplayColor] == list(PALETTE_RGB[n - 1])
        for c in roi.ContourSequence:  # each contour lies on the slice it names
            z = {float(v) for v in c.ContourData[2::3]}
            assert z == {z_of[c.ContourImageSequence[0].ReferencedSOPInstanceUID]}


def test_no_lesion_with_voxels_gives_no_structure_set() -> None:
    datasets, mask, _ = grid_study(*GRIDS["anisotropic"])
    assert build_rtstruct(mask, [lesion("L1", 7)], datasets, IDENT, None) is None


def test_the_report_has_an_rtstruct_only_when_asked_with_the_seg_colours(phantom: Phantom, tmp_path: Path) -> None:
    assert phantom.followup_report.rtstruct is None  # not asked: nothing more than before
    objs = build_report(phantom.followup_request, phantom.settings, rtstruct=True)
    again = build_report(phantom.followup_request, phantom.settings, rtstruct=True)
    assert objs.rtstruct is not None and again.rtstruct is not None
    assert objs.rtstruct.SOPInstanceUID == again.rtstruct.SOPInstanceUID  # deterministic (conformance §6)
    assert objs.rtstruct.SeriesNumber == phantom.settings.rtstruct_series_number
    assert objs.rtstruct.StudyDescription == phantom.followup.datasets[0].StudyDescription
    kinds = [str(ds.Modality) for ds in objs.datasets()]
    assert kinds[:3] == ["SEG", "RTSTRUCT", "SR"]
    seg, rt = objs.seg, objs.rtstruct
    assert seg is not None
    segments = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    rois = {int(r.ROINumber): str(r.ROIName) for r in rt.StructureSetROISequence}
    assert rois == {n: label for n, label in segments.items() if label in rois.values()}
    path = tmp_path / "rt.dcm"
    rt.save_as(path, enforce_file_format=True)
    assert dciodvfy(path).errors == []


def test_the_lesion_route_adds_the_rtstruct_only_when_a_destination_takes_it(phantom: Phantom) -> None:
    study = phantom.followup
    for outputs, expected in ((DEFAULT_OUTPUTS, False), (("sr", "rtstruct"), True)):
        inp = PipelineInput(study.timepoint.study_instance_uid, "brain-mets-rano-bm", (), outputs=frozenset(outputs))
        job = SimpleNamespace(inp=inp, params=SimpleNamespace(language=None))
        modalities = [str(ds.Modality) for ds in lesion_followup._report(job, phantom.followup_request)]  # type: ignore[arg-type]
        assert ("RTSTRUCT" in modalities) is expected, outputs
