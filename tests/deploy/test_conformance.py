"""deploy/CONFORMANCE.md says what the code does: SOP classes, transfer syntaxes, statuses, series numbers."""

from __future__ import annotations

import re
from pathlib import Path

from daemon.config import NodeSettings, ReportSettings
from daemon.node import scp

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "deploy" / "CONFORMANCE.md").read_text(encoding="utf-8")


def _section(name: str) -> str:
    m = re.search(rf"<!-- {name}:start -->(.*?)<!-- {name}:end -->", DOC, re.S)
    assert m, f"section {name} missing"
    return m.group(1)


def _uids(text: str) -> list[str]:
    return re.findall(r"`(1\.2\.840\.10008[0-9.]+)`", text)


def test_scp_sop_classes_are_what_the_node_accepts() -> None:
    ae = scp.make_ae(NodeSettings())
    accepted = {str(cx.abstract_syntax) for cx in ae.supported_contexts}
    listed = _uids(_section("scp-sop-classes"))
    assert len(listed) == len(set(listed))
    assert set(listed) == accepted


def test_transfer_syntaxes_in_the_order_the_node_prefers() -> None:
    assert _uids(_section("transfer-syntaxes")) == scp.accepted_transfer_syntaxes()
    ae = scp.make_ae(NodeSettings())
    storage = [cx for cx in ae.supported_contexts if str(cx.abstract_syntax) != "1.2.840.10008.1.1"]
    assert all(list(cx.transfer_syntax) == scp.accepted_transfer_syntaxes() for cx in storage)


def test_statuses_and_series_numbers() -> None:
    for code in (scp.SUCCESS, scp.OUT_OF_RESOURCES, scp.OUT_OF_RESOURCES_DATABASE, scp.CANNOT_PARSE,
                 scp.MISSING_UID, scp.UID_MISMATCH):
        assert f"`0x{code:04X}`" in DOC
    r = ReportSettings()
    for number in (r.sr_series_number, r.seg_series_number, r.sc_series_number, r.ko_series_number):
        assert f"| {number} (" in DOC
    n = NodeSettings()
    assert f"default {n.max_associations})" in DOC and "4 194 304" in DOC and n.max_pdu_length == 4_194_304


def test_readme_lists_the_series_that_arrive() -> None:
    """README's "What a radiologist sees" names every series a study gets back, with the
    number and description the objects carry (the QA report's too), and counts them."""
    from daemon.pipelines import qa_report

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## What a radiologist sees", 1)[1].split("\n## ", 1)[0]
    listed = dict(re.findall(r"^- \*\*(\d+) ([^*]+)\*\*", section, re.M))
    r = ReportSettings()
    arrive = {r.sr_series_number: r.sr_series_description, r.seg_series_number: r.seg_series_description,
              r.sc_series_number: r.sc_series_description, r.ko_series_number: r.ko_series_description,
              qa_report.SERIES_NUMBER: "Nadir study QA report"}
    assert {str(n): d for n, d in arrive.items()}.items() <= listed.items(), listed
    words = {4: "four", 5: "five", 6: "six", 7: "seven"}
    assert f"{words[len(listed)]} new series" in section
    source = (REPO / "daemon" / "pipelines" / "qa_report.py").read_text(encoding="utf-8")
    assert 'series_description="Nadir study QA report"' in source
