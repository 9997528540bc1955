"""The built-in pipelines' parameters (a route's `parameters:`), typed and light to import.

The routing file is checked against them when it is loaded (`daemon.routing_rules`),
so a misspelt key or a bad series spec is refused with its file and line before any
job runs; the pipeline validates them again when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from daemon.imaging.selection import SeriesSpec


class FollowUpParams(BaseModel):
    """The lesion-follow-up pipeline's (daemon.pipelines.lesion_followup lists what each means)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = None
    providers: Literal["auto", "cpu", "cuda", "tensorrt"] = "auto"
    series: SeriesSpec | None = None
    priors_from: str = "pacs"
    register_priors: bool = True
    language: Literal["en", "fr"] | None = None
    rules_dir: Path | None = None


# built-in pipeline -> its parameters (a pipeline not listed checks its own when it runs)
PARAMS: dict[str, type[BaseModel]] = {
    "brain_mets": FollowUpParams,
    "liver_ct": FollowUpParams,
}
