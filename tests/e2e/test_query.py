"""C-FIND and C-GET as an SCU (daemon/node/query.py) against a real Orthanc, with pydicom's MR test file."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from daemon.config import Settings
from daemon.demo.peers import ORTHANC, Orthanc, free_port, storescu
from daemon.node.query import QueryError, find, get
from daemon.node.scu import Peer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
MR = "1.2.840.10008.5.1.4.1.1.4"


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Orthanc, Path]]:
    if not Path(ORTHANC).exists() or shutil.which("storescu") is None:
        pytest.skip("Orthanc and dcmtk are needed (make apt)")
    pacs = Orthanc(tmp_path_factory.mktemp("query"))
    try:
        pacs.start()
        mr = Path(str(get_testdata_file("MR_small.dcm")))
        storescu([mr], pacs.dicom_port, pacs.ae_title)
        yield pacs, mr
    finally:
        pacs.stop()


def test_find_then_get(pacs: tuple[Orthanc, Path]) -> None:
    import pydicom

    orthanc, path = pacs
    src = pydicom.dcmread(path)
    peer = Peer("pacs", orthanc.ae_title, "127.0.0.1", orthanc.dicom_port)
    settings = Settings()
    studies = find(peer, settings, "STUDY", {"PatientID": str(src.PatientID)}, ["StudyInstanceUID", "StudyDate"])
    assert [m["StudyInstanceUID"] for m in studies] == [str(src.StudyInstanceUID)]
    assert find(peer, settings, "STUDY", {"PatientID": "nobody"}, ["StudyInstanceUID"]) == []
    series = find(peer, settings, "SERIES", {"StudyInstanceUID": str(src.StudyInstanceUID), "Modality": "MR"},
                  ["SeriesInstanceUID", "SeriesNumber"])
    assert [m["SeriesInstanceUID"] for m in series] == [str(src.SeriesInstanceUID)]
    got = get(peer, settings, {"StudyInstanceUID": str(src.StudyInstanceUID),
                               "SeriesInstanceUID": str(src.SeriesInstanceUID)}, "SERIES", [MR])
    assert [str(ds.SOPInstanceUID) for ds in got] == [str(src.SOPInstanceUID)]
    assert got[0].PixelData == src.PixelData


def test_unreachable_pacs_raises_query_error() -> None:
    peer = Peer("pacs", "NOBODY", "127.0.0.1", free_port())
    with pytest.raises(QueryError):
        find(peer, Settings(), "STUDY", {"PatientID": "x"}, ["StudyInstanceUID"])
