"""The lesion-follow-up pipeline's first two steps, as a route chooses them.

- What is measured (`StudyImage`): by default the one series the route's series spec
  chooses, loaded as it is (`single_series`); a route may read more of the study instead
  (whole-body FDG: the attenuation-corrected PET in SUL with its CT paired by Frame of
  Reference and time). Either gives the image, or the sentence saying why none fits.
- How lesions are found (`Found`): the model of the manifest (`model_finder`: its lesion
  labels, its organ labels kept as reference regions), or the route's rule (`RuleFinder`,
  e.g. SUV >= 4 components with physiological uptake set aside), which may use the organ
  labels of an organ model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydicom.dataset import Dataset

from daemon.criteria.rules import RulesSource
from daemon.imaging.loader import SeriesFiles
from daemon.imaging.messy import SeriesRefused
from daemon.imaging.selection import SeriesSpec, select_series
from daemon.imaging.series import load_volume
from daemon.measure.lesions import MeasuredLesion
from daemon.pipelines.base import PipelineError
from daemon.pipelines.params import model_dir
from daemon.report.inputs import ModelInfo, Reason
from daemon.segment import ModelError, load_model, segment, split_roles
from daemon.volume import LesionMask, Volume

Providers = Literal["auto", "cpu", "cuda", "tensorrt"]
BoolArray = np.ndarray[Any, np.dtype[np.bool_]]
Organs = Mapping[str, BoolArray]


@dataclass(frozen=True, eq=False)
class StudyImage:
    """The series lesions are measured on, and what else the route read of the study."""

    volume: Volume
    sources: tuple[Dataset, ...]  # the measured series' instances
    series_uid: str
    companions: Mapping[str, Volume] = field(default_factory=dict)  # e.g. {"ct": the attenuation CT}
    companion_sources: tuple[Dataset, ...] = ()  # their instances (evidence of the report)
    notes: Mapping[str, str] = field(default_factory=dict)  # what the report says of the input


@dataclass(frozen=True, eq=False)
class Found:
    """What the finder found: lesion labels, organ masks, which labels are nodes, and who found them."""

    lesions: LesionMask
    organs: Organs
    node_labels: frozenset[int]
    model: ModelInfo
    excluded: tuple[str, ...] = ()  # what was set aside and why, for the report
    # each lesion's site as the finder tells it (e.g. "lung" from the CT); None: from the organ masks
    site_of: Callable[[MeasuredLesion], str] | None = None
    # label -> (tracking id, tracking UID) a lesion carries from where it was first recorded (a brain
    # PET's lesion drawn from the brain MR route's: L1 on both); the pipeline keeps these identities
    identities: Mapping[int, tuple[str, str]] = field(default_factory=dict)
    # what the finder said for the report, coded (brain PET: where the lesion region came from)
    reasons: tuple[Reason, ...] = ()


# the study's series, the route's series spec and the rules -> the image, or why none fits (a `Reason`
# where the route's report words it in another language)
ImageInput = Callable[[Mapping[str, SeriesFiles], SeriesSpec, RulesSource], "StudyImage | Reason | str"]
# the rules, the image and the organ masks of an organ model (none: the rule's own) -> what was found
RuleFinder = Callable[[RulesSource, StudyImage, Organs], Found]


def single_series(series: Mapping[str, SeriesFiles], spec: SeriesSpec, rules: RulesSource) -> StudyImage | str:
    """The series the spec chooses, loaded as it is; else why none fits."""
    selection = select_series(spec, series)
    if selection.chosen is None:
        return selection.explain()
    chosen = series[str(selection.series_instance_uid)]
    try:
        volume = load_volume(chosen).volume
    except SeriesRefused as exc:
        return f"the chosen series cannot be used: {exc}"
    return StudyImage(volume, tuple(i.header for i in chosen.instances), chosen.series_instance_uid)


def _load(name: str, providers: Providers) -> Any:
    try:
        return load_model(model_dir(name), providers=providers)
    except ModelError as exc:
        raise PipelineError(f"model {name!r}: {exc}") from exc


def model_finder(name: str, providers: Providers) -> Callable[[StudyImage], Found]:
    """The manifest's model: its lesion labels, and its organ labels as organ masks."""
    model = _load(name, providers)
    m = model.manifest

    def find(image: StudyImage) -> Found:
        lesions, organs = split_roles(segment(image.volume, model), m)
        nodes = frozenset(label.value for label in m.labels if label.role == "lesion" and label.node)
        return Found(lesions, organs, nodes, ModelInfo(m.name, m.version, m.sha256))

    return find


def organ_masks(name: str | None, providers: Providers, image: StudyImage) -> Organs:
    """The organ labels (role organ) of the model `name` on the image; none without a model."""
    if not name:
        return {}
    model = _load(name, providers)
    _, organs = split_roles(segment(image.volume, model), model.manifest)
    return organs
