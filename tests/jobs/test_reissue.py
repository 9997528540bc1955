"""A re-run whose report content changed goes out under new SOP Instance UIDs, so a PACS
that does not overwrite instances still gets it: the SR names the one it supersedes in
Predecessor Documents Sequence with the next Instance Number, references between the
run's objects follow the new UIDs; the same content again keeps its UIDs (a resend stays
idempotent), and going back to an earlier content is a new issue too. Real QA-report
SRs (highdicom) of a synthetic study, the outbox on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, KeyObjectSelectionDocumentStorage
from sqlalchemy import select

from daemon.pipelines.base import PipelineInput, resolve
from daemon.report.reissue import Reissued, content_digest, reissue
from daemon.report.uids import uid_from
from daemon.store import outbox as ob
from daemon.store.db import create_schema, make_engine, make_sessionmaker
from jobs.studies import make_series, write_study

STUDY = "1.2.826.0.1.3680043.10.1442.81"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def run(files: list[Path]) -> list[Dataset]:
    """The QA report of `files`, and an object referencing its SR (as a KOS does)."""
    (sr,) = resolve("qa_report")(PipelineInput(STUDY, "qa", tuple(files)))
    kos = Dataset()
    kos.SOPClassUID, kos.SOPInstanceUID = KeyObjectSelectionDocumentStorage, uid_from("test-kos", STUDY)
    kos.StudyInstanceUID, kos.Modality = STUDY, "KO"
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = sr.SOPClassUID, sr.SOPInstanceUID
    kos.ReferencedSOPSequence = [ref]
    kos.file_meta = FileMetaDataset()
    kos.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    kos.file_meta.MediaStorageSOPClassUID, kos.file_meta.MediaStorageSOPInstanceUID = kos.SOPClassUID, kos.SOPInstanceUID
    return [sr, kos]


def test_changed_content_is_a_new_instance_and_the_same_content_is_not(tmp_path: Path) -> None:
    files = write_study(tmp_path / "study", [make_series(STUDY, positions=[0, 1, 2, 3, 5, 6])])
    data = tmp_path / "data"
    data.mkdir()
    engine = make_engine(f"sqlite:///{data / 'nadir.db'}")
    create_schema(engine)
    sessions = make_sessionmaker(engine)
    clock = [T0]

    def issue(datasets: list[Dataset]) -> Reissued:
        clock[0] += timedelta(minutes=1)
        with sessions() as s:
            issued = reissue(datasets, ob.latest_issues(s, data, [str(d.SOPInstanceUID) for d in datasets]))
            outputs = [ob.Output(str(d.SOPInstanceUID), str(d.SOPClassUID), STUDY, ob.write_output(data, d),
                                 base, issued.content_digest)
                       for d, base in zip(issued.datasets, issued.base_uids, strict=True)]
            ob.add(s, outputs, ["pacs"], None, clock[0])
            s.commit()
        return issued

    first = issue(run(files))
    base_sr, base_kos = first.base_uids
    assert not first.changed and [str(d.SOPInstanceUID) for d in first.datasets] == first.base_uids
    again = issue(run(files))  # a retried job: new timestamps, same content
    assert not again.changed and [str(d.SOPInstanceUID) for d in again.datasets] == first.base_uids

    changed = issue(run(files[:-1]))  # one instance fewer: another report
    assert changed.changed and changed.base_uids == first.base_uids
    sr, kos = changed.datasets
    assert str(sr.SOPInstanceUID) not in (base_sr, base_kos) and str(kos.SOPInstanceUID) != base_kos
    assert sr.file_meta.MediaStorageSOPInstanceUID == sr.SOPInstanceUID
    assert kos.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == sr.SOPInstanceUID
    written = pydicom.dcmread(ob.outputs_root(data) / f"{STUDY}/{sr.SOPInstanceUID}.dcm")
    pred = written.PredecessorDocumentsSequence[-1].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert pred.ReferencedSOPInstanceUID == base_sr
    assert int(written.InstanceNumber) == int(first.datasets[0].InstanceNumber) + 1

    resent = issue(run(files[:-1]))  # the changed content again: its UIDs again
    assert [str(d.SOPInstanceUID) for d in resent.datasets] == [str(d.SOPInstanceUID) for d in changed.datasets]

    back = issue(run(files))  # back to the first content: a new issue after the second
    new_sr = str(back.datasets[0].SOPInstanceUID)
    assert new_sr not in (base_sr, str(sr.SOPInstanceUID))
    assert back.datasets[0].PredecessorDocumentsSequence[-1].ReferencedSeriesSequence[0] \
        .ReferencedSOPSequence[0].ReferencedSOPInstanceUID == sr.SOPInstanceUID

    with sessions() as s:
        rows = s.execute(select(ob.OutboxRow.sop_instance_uid, ob.OutboxRow.issue_of)).all()
    assert {uid for uid, _ in rows} == {base_sr, base_kos, str(sr.SOPInstanceUID), str(kos.SOPInstanceUID),
                                        new_sr, str(back.datasets[1].SOPInstanceUID)}
    assert {of for _, of in rows} == {base_sr, base_kos}
    engine.dispose()


def test_the_digest_ignores_what_changes_at_every_run(tmp_path: Path) -> None:
    files = write_study(tmp_path / "study", [make_series(STUDY, positions=[0, 1, 2])])
    a, b = run(files), run(files)
    b[0].ContentTime = "235959"
    b[0].InstanceCreationTime = "235959"
    assert content_digest(a) == content_digest(b)
    b[0].SeriesDescription = "another"
    assert content_digest(a) != content_digest(b)
