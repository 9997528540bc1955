"""A patient's earlier timepoints for a route: from the database, else from the PACS.

1. The database (`daemon.store.lesions`): the lesions recorded when the earlier
   studies were processed.
2. When it has none: C-FIND the PACS (Study Root, study level) for the patient's
   studies dated before this one, C-GET our own SR of each (its series number
   identifies it), C-GET the images its callipers lie on (their geometry gives the
   patient coordinates) and read the lesions back (`daemon.report.readback`).
3. Finding none in either: no priors; the study is a baseline and the report says why.

A lookup is made only for a study that names one patient (a non-empty Patient ID
without wildcards; its issuer too when present): an empty or wildcard key would match
other patients. Every study the PACS returns, and every report read back, is checked
for the same Patient ID (and issuer) before use. A lookup that fails (the database,
or the PACS refusing or dropping the query) raises `PriorsUnavailable` while the job
has attempts left, and on its last attempt answers "unavailable" with the reason:
never "no priors" (`daemon.pipelines.priors`).

This is the impure side of a pipeline's priors (database and network): the runtime
hands `NodePriors` to the pipeline as its `PriorsSource` (`daemon.pipelines.priors`).
"""

from __future__ import annotations

import logging
import re
import tempfile
from datetime import date, timedelta
from pathlib import Path

from pydicom.dataset import Dataset
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from daemon.config import Settings
from daemon.findings import Timepoint
from daemon.imaging.messy import SeriesRefused
from daemon.imaging.series import load_folder
from daemon.node.query import QueryError, find, get
from daemon.node.scu import Peer, resolve_destination
from daemon.pipelines.priors import (
    UNAVAILABLE,
    Priors,
    PriorsUnavailable,
    Request,
    RtLookup,
    patient_key_problem,
)
from daemon.report.inputs import InstanceRef, PriorStudy
from daemon.report.readback import NotOurReport, ReadBack, read_report
from daemon.runtime.priors_rt import rt_from_pacs
from daemon.store import lesions as lesion_store
from daemon.store.models import Instance
from daemon.store.spool import Spool
from daemon.volume import Volume

log = logging.getLogger(__name__)

# the image storage classes a prior series may be retrieved as (C-GET roles)
IMAGE_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1", "1.2.840.10008.5.1.4.1.1.4",
    "1.2.840.10008.5.1.4.1.1.4.1", "1.2.840.10008.5.1.4.1.1.128", "1.2.840.10008.5.1.4.1.1.130",
    "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.2.2", "1.2.840.10008.5.1.4.1.1.4.4",
)
SR_CLASSES = ("1.2.840.10008.5.1.4.1.1.88.33", "1.2.840.10008.5.1.4.1.1.88.34", "1.2.840.10008.5.1.4.1.1.88.22")


def from_database(sessions: sessionmaker[Session], req: Request) -> Priors | None:
    with sessions() as session:
        rows = lesion_store.history(session, req.patient_id, req.route, req.study_date,
                                    exclude_study=req.study_instance_uid)
    if not rows:
        return None
    studies = tuple(
        PriorStudy(tp.study_instance_uid, tp.study_date, (
            InstanceRef(tp.study_instance_uid, row.sr_series_instance_uid, SR_CLASSES[0], row.sr_sop_instance_uid),
        ) if row.sr_sop_instance_uid else ())
        for tp, row in rows
    )
    return Priors(tuple(tp for tp, _ in rows), studies, "database",
                  f"{len(rows)} earlier timepoint(s) from Nadir's database",
                  tuple(row.series_instance_uid for _, row in rows))


def _date(text: str) -> date | None:
    t = text.strip()
    if len(t) != 8 or not t.isdigit():
        return None
    return date(int(t[:4]), int(t[4:6]), int(t[6:]))


def _our_sr(peer: Peer, settings: Settings, study_uid: str, sr_series_number: int) -> Dataset | None:
    series = find(peer, settings, "SERIES", {"StudyInstanceUID": study_uid, "Modality": "SR"},
                  ["SeriesInstanceUID", "SeriesNumber"])
    ours = [s for s in series if s["SeriesNumber"].strip() == str(sr_series_number)]
    if not ours:
        return None
    found = get(peer, settings, {"StudyInstanceUID": study_uid, "SeriesInstanceUID": ours[0]["SeriesInstanceUID"]},
                "SERIES", SR_CLASSES)
    if not found:
        return None
    return max(found, key=lambda ds: int(ds.get("InstanceNumber", 0) or 0))  # the latest revision


def _calliper_images(sr: Dataset) -> dict[str, set[str]]:
    """SOP class -> SOP Instance UIDs of the images the callipers lie on."""
    out: dict[str, set[str]] = {}
    for les in read_report(sr).lesions:
        for c in (les.measurements.long_axis, les.measurements.short_axis):
            if c is not None:
                s = c.start_image.slice
                out.setdefault(s.sop_class_uid, set()).add(s.sop_instance_uid)
    return out


def _geometry(peer: Peer, settings: Settings, sr: Dataset) -> tuple[dict[str, Dataset], str]:
    """The images the callipers lie on (SOP Instance UID -> dataset), and the measured
    series (the one holding most of them; "" when the SR does not say)."""
    study = str(sr.StudyInstanceUID)
    series_of = {
        str(inst.ReferencedSOPInstanceUID): str(ser.SeriesInstanceUID)
        for st in sr.get("CurrentRequestedProcedureEvidenceSequence", [])
        for ser in st.get("ReferencedSeriesSequence", [])
        for inst in ser.get("ReferencedSOPSequence", [])
    }
    by_series: dict[str, list[str]] = {}
    classes: set[str] = set()
    for cls, uids in _calliper_images(sr).items():
        classes.add(cls)
        for uid in uids:
            by_series.setdefault(series_of.get(uid, ""), []).append(uid)
    out: dict[str, Dataset] = {}
    for series_uid, wanted in by_series.items():
        if not series_uid:
            continue
        keys = {"StudyInstanceUID": study, "SeriesInstanceUID": series_uid, "SOPInstanceUID": "\\".join(sorted(wanted))}
        for ds in get(peer, settings, keys, "IMAGE", sorted(classes)):
            out[str(ds.SOPInstanceUID)] = ds
    measured = max(((len(v), k) for k, v in by_series.items() if k), default=(0, ""))[1]
    return out, measured


def _read_prior(peer: Peer, settings: Settings, study_uid: str,
                req: Request) -> tuple[ReadBack, InstanceRef, str] | None:
    sr = _our_sr(peer, settings, study_uid, req.sr_series_number)
    if sr is None or not _same_patient(req, str(sr.get("PatientID", "")), str(sr.get("IssuerOfPatientID", "")),
                                       f"report {sr.get('SOPInstanceUID', '?')}"):
        return None
    try:
        geometry, series = _geometry(peer, settings, sr)
        back = read_report(sr, geometry)
    except NotOurReport:
        return None
    ref = InstanceRef(str(sr.StudyInstanceUID), str(sr.SeriesInstanceUID), str(sr.SOPClassUID), str(sr.SOPInstanceUID))
    return back, ref, series


def from_pacs(settings: Settings, req: Request) -> Priors | None:
    peer = resolve_destination(req.pacs, settings) if req.pacs else None
    if peer is None:
        return None
    problem = patient_key_problem(req)
    if problem is not None:  # the callers check first: never a query that matches other patients
        raise ValueError(f"no priors query: {problem}")
    keys = {"PatientID": req.patient_id}
    if req.issuer_of_patient_id:
        keys["IssuerOfPatientID"] = req.issuer_of_patient_id
    if req.study_date is not None:
        keys["StudyDate"] = "-" + (req.study_date - timedelta(days=1)).strftime("%Y%m%d")
    returned = ["StudyInstanceUID", "StudyDate", "ModalitiesInStudy", "PatientID", "IssuerOfPatientID"]
    studies = [s for s in find(peer, settings, "STUDY", keys, returned)
               if _same_patient(req, s["PatientID"], s["IssuerOfPatientID"], f"study {s['StudyInstanceUID']}")
               and _same_kind(req, s["ModalitiesInStudy"])]
    backs: list[tuple[ReadBack, InstanceRef, str]] = []
    for s in sorted(studies, key=lambda m: m["StudyDate"]):
        uid = s["StudyInstanceUID"]
        if not uid or uid == req.study_instance_uid:
            continue
        found = _read_prior(peer, settings, uid, req)
        if found is not None:
            back, ref, series = found
            backs.append((back if back.study_date else _dated(back, _date(s["StudyDate"])), ref, series))
    if not backs:
        return None
    tps = tuple(Timepoint(b.study_instance_uid, b.study_date, b.lesions) for b, _, _ in backs)
    studies_ref = tuple(PriorStudy(b.study_instance_uid, b.study_date, (ref,)) for b, ref, _ in backs)
    return Priors(tps, studies_ref, "pacs",
                  f"{len(tps)} earlier timepoint(s) read back from Nadir's reports in the PACS ({peer.ae_title})",
                  tuple(series for _, _, series in backs))


def _same_patient(req: Request, patient_id: str, issuer: str, what: str) -> bool:
    """True when a study or report from the PACS is of the patient of `req` (the issuer
    compared when both give one); a mismatch is logged and the object not used."""
    same = patient_id.strip() == req.patient_id.strip() and (
        not issuer.strip() or not req.issuer_of_patient_id or issuer.strip() == req.issuer_of_patient_id.strip())
    if not same:
        log.warning("priors: the PACS returned %s of another patient for study %s: not used", what,
                    req.study_instance_uid)
    return same


def _same_kind(req: Request, modalities_in_study: str) -> bool:
    """True when a prior study may belong to this route (a PACS that does not say is trusted)."""
    found = set(re.findall(r"[A-Z]{2,3}", modalities_in_study.upper()))
    return not req.modalities or not found or bool(found & set(req.modalities))


def _dated(back: ReadBack, when: date | None) -> ReadBack:
    return ReadBack(back.study_instance_uid, when, back.sop_instance_uid, back.lesions,
                    back.criterion, back.category, back.comparison_studies)


class NodePriors:
    """The node's `PriorsSource`: its database, then its reports in the PACS."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], last_attempt: bool = True) -> None:
        self._settings = settings
        self._sessions = sessions
        self._last_attempt = last_attempt  # of the job: a failed lookup then answers "unavailable"

    def find(self, req: Request) -> Priors:
        """Database first, then the PACS. Raises PriorsUnavailable when a lookup failed and
        the job has attempts left; on its last attempt answers "unavailable" with why."""
        problem = patient_key_problem(req)
        if problem is not None:
            log.warning("priors of study %s not looked up: %s", req.study_instance_uid, problem)
            return Priors((), (), UNAVAILABLE, f"priors not looked up: {problem}")
        reasons: list[str] = []
        failures: list[str] = []
        try:
            found = from_database(self._sessions, req)
            if found is not None:
                return found
            reasons.append("none in Nadir's database")
        except SQLAlchemyError as exc:
            log.warning("priors: database not readable: %s", exc)
            failures.append(f"Nadir's database not readable ({type(exc).__name__})")
        if req.pacs:
            try:
                found = from_pacs(self._settings, req)
                if found is not None:
                    log.info("priors of study %s: %s", req.study_instance_uid, found.note)
                    return found
                reasons.append(f"none of Nadir's reports found in the PACS ({req.pacs})")
            except (QueryError, ValueError, AttributeError, KeyError) as exc:
                log.warning("priors: PACS query failed: %s", exc)
                failures.append(f"the PACS ({req.pacs}) could not be queried: {exc}")
        if failures:
            why = "; ".join(failures)
            if not self._last_attempt:
                raise PriorsUnavailable(f"priors of study {req.study_instance_uid} could not be looked up: {why}")
            return Priors((), (), UNAVAILABLE, f"earlier studies could not be looked up ({why})")
        return Priors((), (), "none", "no earlier timepoint (" + "; ".join(reasons) + "): treated as a baseline")

    def record(self, req: Request, timepoint: Timepoint, series_uid: str, sr: tuple[str, str]) -> None:
        """Remember this timepoint's lesions for the patient's next study (a failure is logged, not raised)."""
        if not req.patient_id:
            return
        try:
            with self._sessions() as session:
                lesion_store.save_timepoint(session, req.patient_id, req.route, timepoint, series_uid, sr)
                session.commit()
        except SQLAlchemyError as exc:
            log.warning("lesion history of study %s not recorded: %s", req.study_instance_uid, exc)

    def rt_objects(self, req: Request) -> RtLookup:
        """The patient's RT objects in the PACS (`daemon.runtime.priors_rt`). A failed query raises
        PriorsUnavailable while the job has attempts left; on its last attempt it answers
        "unavailable" with why: never "no RT objects"."""
        problem = patient_key_problem(req)
        if problem is not None:
            return RtLookup((), UNAVAILABLE, f"RT objects not looked up: {problem}")
        try:
            found = rt_from_pacs(self._settings, req)
        except (QueryError, ValueError, AttributeError, KeyError) as exc:
            log.warning("RT objects: PACS query failed: %s", exc)
            why = f"the PACS ({req.pacs}) could not be queried: {exc}"
            if not self._last_attempt:
                raise PriorsUnavailable(f"RT objects of study {req.study_instance_uid} could not be looked up: "
                                        f"{why}") from exc
            return RtLookup((), UNAVAILABLE, why)
        if found is None:
            return RtLookup((), "none", "no PACS to query for RT objects")
        if not found:
            return RtLookup((), "none", f"no RT object of the patient in the PACS ({req.pacs})")
        return RtLookup(found, "pacs", f"{len(found)} RT object(s) from the PACS ({req.pacs})")

    def same_study(self, req: Request, wait: bool) -> Timepoint | None:
        """The timepoint route `req.route` recorded for this study; with `wait`, PriorsUnavailable
        while the job has attempts left and none is recorded yet (the other route may still run)."""
        if patient_key_problem(req) is not None:
            return None
        try:
            with self._sessions() as session:
                rows = lesion_store.history(session, req.patient_id, req.route, None)
        except SQLAlchemyError as exc:
            if not self._last_attempt:
                raise PriorsUnavailable(f"Nadir's database not readable ({type(exc).__name__})") from exc
            return None
        found = next((tp for tp, _ in rows if tp.study_instance_uid == req.study_instance_uid), None)
        if found is None and wait and not self._last_attempt:
            raise PriorsUnavailable(f"route {req.route!r} has not recorded study {req.study_instance_uid} yet")
        return found

    def prior_volume(self, req: Request, study_uid: str, series_uid: str) -> Volume | None:
        """A prior series' images for registration: from the spool while retention kept them,
        else C-GET from the PACS (`req.pacs`); None when neither has them (logged)."""
        try:
            return self._from_spool(series_uid) or self._from_pacs(req, study_uid, series_uid)
        except (SQLAlchemyError, OSError, ValueError, KeyError, SeriesRefused, QueryError) as exc:
            log.warning("prior series %s not loadable for registration: %s", series_uid, exc)
            return None

    def _from_spool(self, series_uid: str) -> Volume | None:
        with self._sessions() as session:
            paths = list(session.scalars(select(Instance.path).where(Instance.series_instance_uid == series_uid)))
        spool = Spool(self._settings.store.spool_dir)
        files = [spool.absolute(p) for p in paths if spool.absolute(p).is_file()]
        if len(files) < len(paths) or not files:
            return None  # removed by retention (or never here)
        return load_folder(files, series_uid).volume

    def _from_pacs(self, req: Request, study_uid: str, series_uid: str) -> Volume | None:
        peer = resolve_destination(req.pacs, self._settings) if req.pacs else None
        if peer is None:
            return None
        keys = {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid}
        datasets = get(peer, self._settings, keys, "SERIES", IMAGE_CLASSES)
        if not datasets:
            log.warning("prior series %s: the PACS (%s) returned no image", series_uid, peer.ae_title)
            return None
        with tempfile.TemporaryDirectory(prefix="nadir-prior-") as tmp:
            files = []
            for n, ds in enumerate(datasets):
                path = Path(tmp) / f"{n:05d}.dcm"
                ds.save_as(path, enforce_file_format=True)
                files.append(path)
            volume = load_folder(files, series_uid).volume
        log.info("prior series %s: %d image(s) retrieved from the PACS (%s) for registration",
                 series_uid, len(datasets), peer.ae_title)
        return volume
