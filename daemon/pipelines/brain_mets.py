"""Brain metastases on MRI, RANO-BM: the post-contrast 3D T1 -> lesions -> response -> SR, SEG, key images, KOS.

The lesion-follow-up pipeline (daemon.pipelines.lesion_followup, which lists the
steps and the route parameters) configured for the brain: the post-contrast 3D T1
series, the demo brain-metastasis model by default, lesions measured on MR signal
(no intensity statistics: arbitrary units), and RANO-BM (diameters; volumetric
companion) from rules/rano_bm.yaml. A baseline selects the targets (measurable per
rules/rano_bm.yaml, largest first, at most `max_targets`); a follow-up gets its
category against baseline and nadir. When the PACS holds the patient's RT objects, the lesions
inside a treated volume are noted with the treatment date and dose (daemon.pipelines.irradiated_field),
and a treated lesion that grows is flagged as a possible treatment effect (rules/rano_bm.yaml).
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from daemon import __version__
from daemon.imaging.selection import SeriesSpec
from daemon.measure.lesions import MeasureOptions
from daemon.pipelines import lesion_followup
from daemon.pipelines.base import PipelineInput
from daemon.pipelines.brain_mets_response import RanoBmRule
from daemon.pipelines.irradiated_field import mark_treated
from daemon.pipelines.lesion_followup import Anatomy, FollowUpRoute, model_dir
from daemon.pipelines.params import FollowUpParams as Params
from daemon.volume import Code

BRAIN = Code("12738006", "SCT", "Brain")
METASTASIS = Code("14799000", "SCT", "Neoplasm, Metastatic")
DEFAULT_SERIES = SeriesSpec(modality=["MR"], contrast=True, acquisition_3d=True)

ROUTE = FollowUpRoute(
    criterion="RANO-BM",
    anatomy=Anatomy(finding=METASTASIS, finding_site=BRAIN, site="brain"),
    default_model="demo-brain-mets",
    default_series=DEFAULT_SERIES,
    no_series="No post-contrast 3D T1 series suitable for RANO-BM.",
    measure=MeasureOptions(quantity="signal", intensity_statistics=False),
    rule=RanoBmRule,
    irradiated=mark_treated,
)


def parameters(raw: object) -> Params:
    return lesion_followup.parameters("brain_mets", raw)


def run(inp: PipelineInput) -> list[Dataset]:
    return lesion_followup.run(ROUTE, inp, "brain_mets")


__all__ = ["Params", "model_dir", "parameters", "run", "__version__"]
