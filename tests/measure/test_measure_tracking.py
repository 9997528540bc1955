"""Tracking on a synthetic phantom patient (3 timepoints, repositioned by up to 10 deg and
20 mm, a new lesion, a vanished one, two that merge), plus split and fallbacks."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from daemon.findings import LesionKind, Timepoint
from daemon.measure.lesions import measure_mask
from daemon.measure.phantom_patient import PatientRun, run_patient, score
from daemon.measure.phantoms import make_volume, voxel_centres, world_position
from daemon.measure.registration import AlignmentMethod, align, identity
from daemon.measure.tracking import Outcome, PriorTimepoint, track, tracking_uid
from daemon.volume import LesionMask


@pytest.fixture(scope="module")
def patient() -> PatientRun:
    return run_patient()


def test_phantom_patient_is_tracked_without_error(patient: PatientRun) -> None:
    result = score(patient)
    assert result.failures == ()
    assert result.correct == result.total == 10


def test_repositioning_is_within_the_stated_range_and_recovered(patient: PatientRun) -> None:
    tps = patient.timepoints
    for n in (1, 2):
        for m, alignment in enumerate(patient.alignments[n]):
            assert alignment.method == AlignmentMethod.REGISTRATION
            for les in tps[m].lesions:
                truth_prior = world_position(tps[m], les.centre)
                at_followup = world_position(tps[n], les.centre)
                err = np.linalg.norm(alignment.to_prior(at_followup) - truth_prior)
                assert err < 3.0, (n, m, les.name, err)
    for tp in tps:
        assert np.linalg.norm(tp.translation_mm) <= 20.0


def test_identities_kinds_and_outcomes(patient: PatientRun) -> None:
    base, t1, t2 = patient.results
    assert all(les.kind == LesionKind.TARGET for les in base.lesions)
    merged = t1.merged_into()
    assert len(merged) == 1 and next(iter(merged.values())) in {les.tracking_id for les in t1.lesions}
    outcomes1 = sorted(e.outcome.value for e in t1.events)
    assert outcomes1 == ["disappeared", "matched", "matched", "matched", "merged", "new"]
    # a new lesion is NEW; targets stay targets; identities and UIDs are kept for life
    kinds = {les.tracking_id: les.kind for les in t1.lesions}
    assert sorted(kinds.values()).count(LesionKind.NEW) == 1
    base_uids = {les.tracking_id: les.tracking_uid for les in base.lesions}
    for les in t2.lesions:
        if les.tracking_id in base_uids:
            assert les.tracking_uid == base_uids[les.tracking_id]
            assert les.kind == LesionKind.TARGET
    new_t1 = next(e for e in t1.events if e.outcome == Outcome.NEW)
    again = next(les for les in t2.lesions if les.tracking_id == new_t1.tracking_id)
    assert again.tracking_uid == new_t1.tracking_uid and again.kind == LesionKind.NEW
    for result in patient.results:
        for e in result.events:
            assert 0.0 <= e.confidence <= 1.0


def test_new_uids_are_deterministic() -> None:
    assert tracking_uid("1.2.3", "L4") == tracking_uid("1.2.3", "L4")
    assert tracking_uid("1.2.3", "L4") != tracking_uid("1.2.3", "L5")
    assert tracking_uid("1.2.3", "L4").startswith("2.25.")


def _spheres(centres: list[tuple[float, float, float]], radii: list[float], uid: str):  # type: ignore[no-untyped-def]
    vol = make_volume((24, 48, 48), (3.0, 2.0, 2.0), uid_prefix=uid,
                      frame_of_reference_uid="1.2.826.0.1.3680043.10.1341.9.777")
    pts = voxel_centres(vol)
    labels = np.zeros(vol.shape, dtype=np.int16)
    for c, r in zip(centres, radii, strict=True):
        labels[np.sum((pts - np.asarray(c)) ** 2, axis=-1) <= r * r] = 1
    return vol, measure_mask(vol, LesionMask(volume=vol, labels=labels, label_info=()))


def test_split_and_frame_of_reference_fallback() -> None:
    vol0, les0 = _spheres([(48.0, 48.0, 36.0)], [16.0], "1.2.826.0.1.3680043.10.1341.9.70")
    base = track(les0, vol0, [], study_uid="1.2.826.0.1.3680043.10.1341.9.70.3",
                 baseline_kinds=[LesionKind.TARGET])
    vol1, les1 = _spheres([(38.0, 48.0, 36.0), (60.0, 48.0, 36.0)], [7.0, 6.0],
                          "1.2.826.0.1.3680043.10.1341.9.71")
    alignment = align(None, vol1, prior_frame_of_reference_uid=vol0.frame_of_reference_uid)
    assert alignment.method == AlignmentMethod.FRAME_OF_REFERENCE
    prior = PriorTimepoint(Timepoint("1.2.826.0.1.3680043.10.1341.9.70.3", date(2024, 1, 1), base.lesions),
                           alignment)
    result = track(les1, vol1, [prior], study_uid="1.2.826.0.1.3680043.10.1341.9.71.3")
    by_outcome = {e.outcome: e for e in result.events}
    assert set(by_outcome) == {Outcome.MATCHED, Outcome.SPLIT}
    assert by_outcome[Outcome.SPLIT].prior_ids == ("L1",)
    assert {les.tracking_id for les in result.lesions} == {"L1", "L2"}
    assert all(les.kind == LesionKind.TARGET for les in result.lesions)
    assert [les.tracking_id for les in result.fragments()["L1"]] == ["L1", "L2"]


def test_no_shared_frame_and_no_image_still_tracks_with_lower_confidence() -> None:
    vol0, les0 = _spheres([(30.0, 30.0, 30.0)], [8.0], "1.2.826.0.1.3680043.10.1341.9.80")
    base = track(les0, vol0, [], study_uid="s0")
    unaligned = align(None, None, prior_frame_of_reference_uid="1.2.3",
                      followup_frame_of_reference_uid="1.2.4")
    assert unaligned.method == AlignmentMethod.NONE
    shared = identity(AlignmentMethod.FRAME_OF_REFERENCE, "test")
    confidences = []
    for alignment in (shared, unaligned):
        prior = PriorTimepoint(Timepoint("s0", date(2024, 1, 1), base.lesions), alignment)
        result = track(les0, vol0, [prior], study_uid="s1")
        (event,) = result.events
        assert event.outcome == Outcome.MATCHED
        confidences.append(event.confidence)
    assert confidences[1] < confidences[0]


def test_a_lesion_seen_again_keeps_its_identity() -> None:
    shared = identity(AlignmentMethod.FRAME_OF_REFERENCE, "test")
    vol0, les0 = _spheres([(30.0, 30.0, 30.0), (70.0, 60.0, 30.0)], [8.0, 6.0], "1.2.826.0.1.3680043.10.1341.9.90")
    t0 = track(les0, vol0, [], study_uid="s0", baseline_kinds=[LesionKind.TARGET, LesionKind.NON_TARGET])
    vol1, les1 = _spheres([(30.0, 30.0, 30.0)], [7.0], "1.2.826.0.1.3680043.10.1341.9.91")
    p0 = PriorTimepoint(Timepoint("s0", date(2024, 1, 1), t0.lesions), shared)
    t1 = track(les1, vol1, [p0], study_uid="s1")
    assert [e.outcome for e in t1.events] == [Outcome.MATCHED, Outcome.DISAPPEARED]
    vol2, les2 = _spheres([(30.0, 30.0, 30.0), (71.0, 60.0, 30.0)], [7.0, 6.0], "1.2.826.0.1.3680043.10.1341.9.92")
    p1 = PriorTimepoint(Timepoint("s1", date(2024, 4, 1), t1.lesions), shared)
    t2 = track(les2, vol2, [p0, p1], study_uid="s2")
    assert [les.tracking_id for les in t2.lesions] == ["L1", "L2"]
    assert [les.kind for les in t2.lesions] == [LesionKind.TARGET, LesionKind.NON_TARGET]
    again = next(e for e in t2.events if e.tracking_id == "L2")
    assert again.outcome == Outcome.MATCHED and again.note == "seen again after being absent"
    assert t2.lesions[1].tracking_uid == t0.lesions[1].tracking_uid
