"""The model manifest: `models/<name>/model.yaml`, validated at load.

A model folder holds the ONNX file and this manifest, which says what the network
expects (modality, orientation, spacing, intensity normalisation, patch size,
channels, preprocessing steps), what it answers (labels with coded meanings and roles, lesion or
organ; threshold, minimum lesion size), under which licence, how it was trained
and exported, and how well it did.
Errors name the file, the key and the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from daemon.config import ConfigError, format_validation_error, load_yaml_with_lines
from daemon.volume import Code, SegmentLabel

MANIFEST_NAME = "model.yaml"
_AXES = {"L": "LR", "R": "LR", "P": "AP", "A": "AP", "S": "IS", "I": "IS"}


class ModelError(ConfigError):
    """A model folder cannot be used: bad manifest, checksum mismatch, unloadable ONNX file."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodeSpec(_Strict):
    value: str = Field(min_length=1)
    scheme: str = Field(min_length=1)  # e.g. SCT, DCM
    meaning: str = Field(min_length=1)

    def to_code(self) -> Code:
        return Code(value=self.value, scheme=self.scheme, meaning=self.meaning)


class Normalisation(_Strict):
    """Intensity normalisation before the network.

    zscore: (v - mean) / std over the voxels selected by `mask` (nonzero, all, or
    foreground: above `foreground_fraction` of the 99th percentile, which does not
    depend on how much noisy air the field of view holds or on resampling),
    after optional clipping to fixed values (`clip`) or percentiles
    (`clip_percentiles`); with fixed `mean` and `std` (nnU-Net's CT scheme) the
    image's own statistics are not used; window: clip to [low, high] and scale to
    [0, 1] (CT in HU); percentile: clip to the [low, high] percentiles and scale
    to [0, 1]; none: as is.
    """

    method: Literal["zscore", "window", "percentile", "none"]
    mask: Literal["nonzero", "all", "foreground"] = "nonzero"
    foreground_fraction: float = Field(0.1, gt=0.0, lt=1.0)  # foreground: above this x the 99th percentile
    low: float | None = None
    high: float | None = None
    clip_percentiles: tuple[float, float] | None = None
    clip: tuple[float, float] | None = None
    mean: float | None = None
    std: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _bounds(self) -> Normalisation:
        if (self.mean is None) != (self.std is None):
            raise ValueError("a fixed mean needs a fixed std, and the reverse")
        if self.method in ("window", "percentile"):
            if self.low is None or self.high is None or self.low >= self.high:
                raise ValueError(f"method {self.method} needs low < high")
        if self.method == "percentile" and not (0 <= self.low <= self.high <= 100):  # type: ignore[operator]
            raise ValueError("percentiles lie in [0, 100]")
        return self


class N4Step(_Strict):
    """N4 bias-field correction (SimpleITK's N4BiasFieldCorrectionImageFilter, Tustison 2010).

    The field is fitted on the image shrunk by `shrink_factor` (per axis), with
    `iterations` per fitting level (one entry per level, each level halving the
    B-spline spacing), inside an Otsu foreground mask (`mask: otsu`) or everywhere
    (`all`); the full-resolution image is then divided by the fitted field.
    """

    step: Literal["n4"]
    shrink_factor: int = Field(4, ge=1, le=16)
    iterations: tuple[int, ...] = Field((50, 50, 50, 50), min_length=1, max_length=8)
    convergence_threshold: float = Field(0.001, gt=0.0, lt=1.0)
    control_points: int = Field(4, ge=4, le=32)  # per axis at the first level (> spline order 3)
    mask: Literal["otsu", "all"] = "otsu"

    @model_validator(mode="after")
    def _iterations(self) -> N4Step:
        if any(n < 1 for n in self.iterations):
            raise ValueError("iterations are >= 1 at every fitting level")
        return self


class RescaleStep(_Strict):
    """Linear rescaling to a fixed range: the `percentiles` (of the voxels selected by `mask`)
    map to `range`, values beyond them clipped (the seed study's 0-255)."""

    step: Literal["rescale"]
    percentiles: tuple[float, float] = (0.0, 100.0)
    range: tuple[float, float] = (0.0, 255.0)
    mask: Literal["all", "nonzero"] = "all"

    @model_validator(mode="after")
    def _bounds(self) -> RescaleStep:
        lo, hi = self.percentiles
        if not 0.0 <= lo < hi <= 100.0:
            raise ValueError("percentiles are [low, high] with 0 <= low < high <= 100")
        if not self.range[0] < self.range[1]:
            raise ValueError("range is [low, high] with low < high")
        return self


class BackgroundStep(_Strict):
    """Background removal: voxels outside the head (or body) set to `value`.

    The foreground is above a threshold (`threshold: otsu`, or `fraction` x the
    99th percentile), optionally reduced to its largest connected component and
    with its holes filled (so dark structures inside the head are kept).
    """

    step: Literal["background"]
    threshold: Literal["otsu", "fraction"] = "otsu"
    fraction: float = Field(0.1, gt=0.0, lt=1.0)  # threshold: fraction, of the 99th percentile
    largest_component: bool = True
    fill_holes: bool = True
    value: float = 0.0


PreprocessingStep = Annotated[N4Step | RescaleStep | BackgroundStep, Field(discriminator="step")]


class InputSpec(_Strict):
    name: str | None = None  # ONNX input name; default: the model's first input
    orientation: str = Field("LPS", description="patient direction of increasing i, j, k (nibabel 'to' convention)")
    tensor_axes: Literal["zyx", "xyz"] = "zyx"  # spatial axes order in the tensor: (k, j, i) or (i, j, k)
    spacing_mm: tuple[float, float, float]  # along i, j, k (the orientation letters' order)
    patch_size: tuple[int, int, int]  # in tensor axis order
    channels: int = Field(1, ge=1)
    # applied in this order on the model's grid, before the normalisation (daemon.segment.preparation)
    preprocessing: tuple[PreprocessingStep, ...] = ()
    normalisation: Normalisation

    @model_validator(mode="after")
    def _orientation(self) -> InputSpec:
        o = self.orientation.upper()
        if len(o) != 3 or any(c not in _AXES for c in o) or len({_AXES[c] for c in o}) != 3:
            raise ValueError(f"orientation {self.orientation!r} is not three distinct axes such as LPS or RAS")
        if any(s <= 0 for s in self.spacing_mm) or any(p < 1 for p in self.patch_size):
            raise ValueError("spacing and patch size are positive")
        return self


class LabelSpec(_Strict):
    """One label the network answers.

    `role` says what the pipeline does with it: a `lesion` is measured, tracked and
    reported; an `organ` is a reference region (the liver for the Chun features, an
    organ for perfusion), never reported as a lesion. `node: true` marks a lesion
    label whose components are lymph nodes (RECIST measures them by short axis).
    `threshold`, with `decision: threshold`, is this label's own (each output calibrated
    on its own); without it, the output's.
    """

    value: int = Field(ge=1, le=65535)  # the value written in the mask
    channel: int = Field(ge=0)  # the network output channel
    name: str = Field(min_length=1)
    role: Literal["lesion", "organ"]
    node: bool = False
    threshold: float | None = Field(None, ge=0.0, le=1.0)  # decision: threshold; default output.threshold
    category: CodeSpec
    type: CodeSpec

    @model_validator(mode="after")
    def _node_is_a_lesion(self) -> LabelSpec:
        if self.node and self.role != "lesion":
            raise ValueError("node: true is for a lesion label (lymph nodes are measured as lesions)")
        return self

    def to_label(self) -> SegmentLabel:
        return SegmentLabel(
            value=self.value, name=self.name, category=self.category.to_code(), type=self.type.to_code()
        )


class OutputSpec(_Strict):
    name: str | None = None  # ONNX output name; default: the first output
    activation: Literal["sigmoid", "softmax", "none"]
    decision: Literal["threshold", "argmax"]
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    min_lesion_volume_mm3: float = Field(0.0, ge=0.0)
    labels: tuple[LabelSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _labels(self) -> OutputSpec:
        if len({lab.value for lab in self.labels}) != len(self.labels):
            raise ValueError("label values are unique")
        if len({lab.channel for lab in self.labels}) != len(self.labels):
            raise ValueError("label channels are unique")
        if self.decision == "argmax" and any(lab.channel == 0 for lab in self.labels):
            raise ValueError("with argmax, channel 0 is the background and carries no label")
        if self.decision == "argmax" and any(lab.threshold is not None for lab in self.labels):
            raise ValueError("a label's threshold is for decision: threshold")
        organs = [lab.name.lower() for lab in self.labels if lab.role == "organ"]
        if len(set(organs)) != len(organs):
            raise ValueError("organ label names are unique (case aside): the pipeline looks organs up by name")
        return self


class InferenceSpec(_Strict):
    overlap: float = Field(0.25, ge=0.0, lt=1.0)
    batch_size: int = Field(2, ge=1)
    blending: Literal["gaussian", "constant"] = "gaussian"
    sigma_scale: float = Field(0.125, gt=0.0)


class Licence(_Strict):
    name: str = Field(min_length=1)
    url: str | None = None
    notes: str | None = None


class Provenance(_Strict):
    training: str = Field(min_length=1)  # data and procedure, in words
    script: str | None = None  # path relative to the model folder
    framework: str | None = None
    exported_with: str | None = None
    onnx_opset: int | None = None
    onnx_ir_version: int | None = None
    date: str | None = None
    calibration: str | None = None  # how the decision threshold was measured


class Accuracy(_Strict):
    metric: str = Field(min_length=1)  # e.g. dice, lesion_sensitivity
    value: float
    dataset: str = Field(min_length=1)
    cases: int | None = Field(None, ge=1)
    notes: str | None = None


class Manifest(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    version: str = Field(min_length=1)
    description: str = ""
    intended_use: str = Field(min_length=1)  # say plainly when a model is a demo
    clinical_use: bool = False
    file: str = "model.onnx"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    modality: Literal["MR", "CT", "PT"]
    input: InputSpec
    output: OutputSpec
    inference: InferenceSpec = Field(default_factory=InferenceSpec)
    licence: Licence
    provenance: Provenance
    accuracy: tuple[Accuracy, ...] = ()

    def segment_labels(self) -> tuple[SegmentLabel, ...]:
        return tuple(lab.to_label() for lab in self.output.labels)

    @property
    def labels(self) -> tuple[LabelSpec, ...]:
        """The output labels, with their `role` and `node`."""
        return self.output.labels

    def label(self, value: int) -> LabelSpec | None:
        """The label written as `value` in the mask (None: not one of this model's)."""
        return next((lab for lab in self.output.labels if lab.value == value), None)


def load_manifest(folder: Path) -> tuple[Manifest, dict[tuple[str | int, ...], int]]:
    """Read and validate `folder/model.yaml`; errors name file, key and line."""
    path = folder / MANIFEST_NAME
    try:
        data, lines = load_yaml_with_lines(path)
    except ConfigError as exc:
        raise ModelError(str(exc)) from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path}:1: a model manifest is a mapping of keys")
    try:
        return Manifest(**data), lines
    except ValidationError as exc:
        raise ModelError(format_validation_error(path, exc, _with_step_tags(data, lines), key=_key)) from exc


def _step_tags(data: dict[str, object]) -> list[tuple[int, str]]:
    inp = data.get("input")
    steps = inp.get("preprocessing") if isinstance(inp, dict) else None
    if not isinstance(steps, list):
        return []
    return [(n, str(s["step"])) for n, s in enumerate(steps) if isinstance(s, dict) and "step" in s]


def _with_step_tags(data: dict[str, object], lines: dict[tuple[str | int, ...], int]) -> dict[tuple[str | int, ...], int]:
    """The lines also under pydantic's locations of a preprocessing step, which carry the step's
    tag after its index (input.preprocessing.0.n4.shrink_factor)."""
    out = dict(lines)
    for n, tag in _step_tags(data):
        head = ("input", "preprocessing", n)
        for loc, line in lines.items():
            if loc[:3] == head:
                out[(*head, tag, *loc[3:])] = line
    return out


def _key(loc: tuple[str | int, ...]) -> str:
    """A dotted key without the step tag pydantic adds (input.preprocessing.0.shrink_factor)."""
    if len(loc) > 3 and loc[:2] == ("input", "preprocessing") and isinstance(loc[2], int) \
            and loc[3] in ("n4", "rescale", "background"):
        loc = (*loc[:3], *loc[4:])
    return ".".join(str(p) for p in loc) or "(top level)"
