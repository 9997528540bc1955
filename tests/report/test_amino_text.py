"""The brain PET's reasons in French come from their codes (ReportRequest.reasons), never from the
English sentences: a reworded English sentence leaves the French as it was."""

from __future__ import annotations

from datetime import date

from daemon.config import DEFAULT_TEMPLATES_DIR
from daemon.findings import Timepoint
from daemon.report.amino_text import amino_context
from daemon.report.inputs import Outcome, Reason, ReportRequest
from daemon.report.text import render_impression

NO_SERIES = Reason("no_series", "No brain PET (FDOPA, FET or FDG) suitable for the amino-acid PET ratios.")


def _req(outcome: Outcome, *reasons: Reason) -> ReportRequest:
    return ReportRequest(route="brain-pet-amino", source_images=(), timepoint=Timepoint("1.2.3", date(2026, 3, 1), ()),
                         outcome=outcome, reason=" ".join(r.text for r in reasons), reasons=reasons)


def test_reworded_english_reason_leaves_the_french_as_it_was() -> None:
    said = Reason("tracer", "The radiopharmaceutical (MET) is none of FDOPA, FET, FDG.", {"name": "MET"})
    reworded = Reason("tracer", "Tracer MET: not an amino-acid or FDG PET.", {"name": "MET"})
    fr = [render_impression(_req(Outcome.NO_SUITABLE_SERIES, NO_SERIES, r), "fr", DEFAULT_TEMPLATES_DIR)
          for r in (said, reworded)]
    assert fr[0].line == fr[1].line == (
        "Aucune série exploitable pour brain-pet-amino : non évalué. Aucune TEP cérébrale (FDOPA, FET ou FDG) "
        "exploitable pour les rapports de la TEP aux acides aminés. Le radiopharmaceutique (MET) n'est ni la FDOPA, "
        "ni la FET, ni le FDG.")
    assert fr[0].reasons == fr[1].reasons
    # the English report keeps the producer's sentence
    en = render_impression(_req(Outcome.NO_SUITABLE_SERIES, NO_SERIES, reworded), "en", DEFAULT_TEMPLATES_DIR)
    assert "Tracer MET: not an amino-acid or FDG PET." in en.line


def test_lesion_origin_from_its_code() -> None:
    why = Reason("no_mr", "reworded: nothing of route brain-mets-rano-bm in 90 days",
                 {"route": "brain-mets-rano-bm", "days": "90"})
    fr = render_impression(_req(Outcome.MEASURED, why), "fr", DEFAULT_TEMPLATES_DIR)
    assert ("Lésion non reprise d'une IRM cérébrale : aucune IRM cérébrale du patient traitée par la route "
            "brain-mets-rano-bm dans les 90 jours précédant la TEP.") in fr.reasons
    from_mr = amino_context(_req(Outcome.MEASURED, Reason("from_mr", "Lesion region L1 from ...", {"date": "2026-02-01"})))
    assert from_mr is not None and from_mr["origin"] == {"code": "from_mr", "date": "2026-02-01",
                                                          "text": "Lesion region L1 from ..."}
    silent = render_impression(_req(Outcome.MEASURED), "fr", DEFAULT_TEMPLATES_DIR)
    assert not any("Lésion non reprise" in r for r in silent.reasons), silent.reasons


def test_unknown_code_falls_back_to_the_english() -> None:
    odd = Reason("", "The PET series cannot be used: no pixel data")
    fr = render_impression(_req(Outcome.NO_SUITABLE_SERIES, NO_SERIES, odd), "fr", DEFAULT_TEMPLATES_DIR)
    assert fr.line.endswith("(No brain PET (FDOPA, FET or FDG) suitable for the amino-acid PET ratios. "
                            "The PET series cannot be used: no pixel data).")
    assert fr.reasons == ()  # no French line made of a part of the reasons
    for code in ("new_code", ""):
        other = render_impression(_req(Outcome.MEASURED, Reason(code, "a new reason")), "fr", DEFAULT_TEMPLATES_DIR)
        assert "Lésion non reprise d'une IRM cérébrale : motif non traduit : « a new reason »." in other.reasons
