"""The built-in pipelines' parameters (a route's `parameters:`), typed and light to import.

The routing file is checked against them when it is loaded (`daemon.routing_rules`),
so a misspelt key or a bad series spec is refused with its file and line before any
job runs; the pipeline validates them again when it runs. What else a built-in pipeline
will read is listed here too, so that the load checks it (`daemon.pipelines.preflight`):
its default model and the criteria's rules files.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from daemon import resources
from daemon.imaging.selection import SeriesSpec


class RadiomicsParams(BaseModel):
    """A route's `radiomics:`: PyRadiomics features per tracked lesion, for research (the CSV
    under the settings' `research.folder` and a research SR; never in the clinical SR)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str | None = None  # a profile of rules/radiomics.yaml (default: its default_profile)


class FollowUpParams(BaseModel):
    """The lesion-follow-up pipeline's (daemon.pipelines.lesion_followup lists what each means)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = None
    providers: Literal["auto", "cpu", "cuda", "tensorrt"] = "auto"
    series: SeriesSpec | None = None
    priors_from: str = "pacs"
    register_priors: bool = True
    language: Literal["en", "fr"] | None = None
    # a site folder for this route's criteria: its <criterion>.yaml override the shipped
    # files key by key (default: the node's `criteria.site_dir`)
    rules_dir: Path | None = None
    # how lesions are found: the model (`model`), or the route's rule (whole-body FDG PET: SUV >= 4
    # components, physiological uptake set aside); default: the route's. With the rule, `organ_model`
    # may name a model whose organ labels (role organ) the rule uses instead of its own organ rules
    segmenter: Literal["model", "rule"] | None = None
    organ_model: str | None = None
    # radiomics per tracked lesion and timepoint, with delta-radiomics (needs nadir[radiomics])
    radiomics: RadiomicsParams | None = None


class PerfusionRouteParams(BaseModel):
    """The liver CT perfusion pipeline's (daemon.pipelines.ct_perfusion lists what each means)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = None  # the liver model whose lesions and liver are used (default: the liver route's)
    providers: Literal["auto", "cpu", "cuda", "tensorrt"] = "auto"
    input: Literal["auto", "dynamic", "maps"] = "auto"  # auto: the vendor maps when there are, else the dynamic series
    liver_route: str = "liver-mets-recist"  # whose lesion names are reused ("" = none, do not wait for it)
    portal_series: SeriesSpec | None = None  # the portal-venous series (default: the liver route's spec)
    language: Literal["en", "fr"] | None = None
    rules_dir: Path | None = None


# built-in pipeline -> its parameters (a pipeline not listed checks its own when it runs)
PARAMS: dict[str, type[BaseModel]] = {
    "brain_mets": FollowUpParams,
    "liver_ct": FollowUpParams,
    "ct_perfusion": PerfusionRouteParams,
    "wholebody_fdg": FollowUpParams,
    "brain_pet": FollowUpParams,
}

# built-in pipeline -> the model it runs when the route names none (a folder under models/)
DEFAULT_MODELS: dict[str, str] = {
    "brain_mets": "demo-brain-mets",
    "liver_ct": "demo-liver-mets",
    "ct_perfusion": "demo-liver-mets",
}

# built-in pipeline -> the criteria's rules files it reads (rules/<name>.yaml, site overrides)
CRITERIA_FILES: dict[str, tuple[str, ...]] = {
    "brain_mets": ("rano_bm", "irradiated_field"),  # irradiated_field: treated volumes of RT objects
    "liver_ct": ("recist", "chun"),
    "ct_perfusion": ("perfusion", "perfusion_dynamic", "perfusion_vendor"),
    "brain_pet": ("amino_pet", "percist", "amino_pet_route"),  # percist: its SUV settings
    "wholebody_fdg": ("percist", "wholebody_fdg"),  # wholebody_fdg: the route's finder, sites, body composition
}

# a route's own rules file (not a criterion's) -> the model that validates it ("module:Class",
# imported when checked); a file not listed is checked as a YAML mapping only
RULES_MODELS: dict[str, str] = {
    "wholebody_fdg": "daemon.pipelines.wholebody_rules:WholeBodyRules",
    "perfusion_dynamic": "daemon.measure.perfusion_params:DynamicParams",
    "perfusion_vendor": "daemon.measure.perfusion_vendor:VendorRules",
    "irradiated_field": "daemon.pipelines.irradiated_field:FieldRules",
}


def rules_model(name: str) -> type[BaseModel] | None:
    """The model of the route rules file `name` (RULES_MODELS), None for one not listed."""
    target = RULES_MODELS.get(name)
    if target is None:
        return None
    module, _, attr = target.partition(":")
    model = getattr(importlib.import_module(module), attr)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"RULES_MODELS[{name!r}] = {target}: not a pydantic model")
    return model

# built-in pipeline -> the optional Python packages it imports, each with the pyproject extra that
# installs it (checked at rules load, so a missing one is a check-config error, not a failed job)
REQUIRED_MODULES: dict[str, tuple[tuple[str, str], ...]] = {
    "brain_pet": (("nilearn", "pet"),),  # the MNI152 template and tissue maps (imaging/mni_templates.py)
}


def model_dir(name: str) -> Path:
    """A route's `model`: a folder name under the shipped models/, or a path."""
    p = Path(name)
    return p if p.is_absolute() or len(p.parts) > 1 else resources.MODELS_DIR / name
