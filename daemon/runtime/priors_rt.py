"""A patient's radiotherapy objects from the PACS, for the irradiated field.

C-FIND (Study Root) the patient's studies dated up to this one, then at series level each
study's series, keeping the RT modalities (RTSTRUCT, RTPLAN, RTDOSE); C-GET those series
(their RT storage classes only) and keep the objects of the same patient (and issuer).
A failed query raises `QueryError` (the caller turns it into "could not be looked up", never
into "no RT objects"); finding none is an answer.
"""

from __future__ import annotations

import logging

from pydicom.dataset import Dataset

from daemon.config import Settings
from daemon.imaging.rt_objects import RT_CLASSES, RT_MODALITIES
from daemon.node.query import find, get
from daemon.node.scu import resolve_destination
from daemon.pipelines.priors import Request, patient_key_problem

log = logging.getLogger(__name__)


def _same_patient(req: Request, ds: Dataset) -> bool:
    issuer = str(ds.get("IssuerOfPatientID", "") or "").strip()
    same = str(ds.get("PatientID", "")).strip() == req.patient_id.strip() and (
        not issuer or not req.issuer_of_patient_id or issuer == req.issuer_of_patient_id.strip())
    if not same:
        log.warning("RT objects: the PACS returned %s of another patient for study %s: not used",
                    ds.get("SOPInstanceUID", "?"), req.study_instance_uid)
    return same


def _patient_keys(req: Request) -> dict[str, str]:
    keys = {"PatientID": req.patient_id}
    if req.issuer_of_patient_id:
        keys["IssuerOfPatientID"] = req.issuer_of_patient_id
    if req.study_date is not None:
        keys["StudyDate"] = "-" + req.study_date.strftime("%Y%m%d")
    return keys


def rt_from_pacs(settings: Settings, req: Request) -> tuple[Dataset, ...] | None:
    """The patient's RT objects in the PACS `req.pacs` (None: no PACS to ask)."""
    peer = resolve_destination(req.pacs, settings) if req.pacs else None
    if peer is None:
        return None
    problem = patient_key_problem(req)
    if problem is not None:
        raise ValueError(f"no RT query: {problem}")
    studies = find(peer, settings, "STUDY", _patient_keys(req),
                   ["StudyInstanceUID", "ModalitiesInStudy", "PatientID", "IssuerOfPatientID"])
    out: list[Dataset] = []
    for study in studies:
        uid = study["StudyInstanceUID"]
        if not uid or study["PatientID"].strip() != req.patient_id.strip():
            continue
        said = study["ModalitiesInStudy"].upper()
        if said and not any(m in said for m in RT_MODALITIES):
            continue  # a PACS that lists the study's modalities without an RT one
        series = find(peer, settings, "SERIES", {"StudyInstanceUID": uid, "Modality": ""},
                      ["SeriesInstanceUID", "Modality"])
        for s in series:
            if s["Modality"].strip().upper() not in RT_MODALITIES:
                continue
            keys = {"StudyInstanceUID": uid, "SeriesInstanceUID": s["SeriesInstanceUID"]}
            out.extend(ds for ds in get(peer, settings, keys, "SERIES", RT_CLASSES) if _same_patient(req, ds))
    log.info("RT objects of study %s: %d from the PACS (%s)", req.study_instance_uid, len(out), peer.ae_title)
    return tuple(out)
