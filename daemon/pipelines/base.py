"""The pipeline interface: a study's files and parameters in, output datasets out.

A pipeline is a callable `(PipelineInput) -> list[Dataset]`. It reads only the files
it is given and returns DICOM datasets (SR, SEG, SC...) for the outbox; it never
touches the database or the network: what it needs of them (a patient's priors)
comes through the interface in `PipelineInput.priors`, which the runtime provides.
So it runs the same in a local worker process, on a Celery worker, or in a test.

Pipelines are found by name: the built-in ones below, or `package.module:function`
for a site's (or a test's) own pipeline importable on the worker.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from daemon import __version__, resources
from daemon.config import DEFAULT_OUTPUTS, OutputKind, ReportSettings
from daemon.pipelines.priors import NO_PRIORS, PriorsSource
from daemon.report.uids import uid_from

RULES_DIR = resources.RULES_DIR


class PipelineError(Exception):
    """The pipeline cannot produce a result for this study (the job fails with this message)."""


class UnknownPipelineError(LookupError):
    pass


@dataclass(frozen=True)
class PipelineInput:
    study_instance_uid: str
    route: str
    files: tuple[Path, ...]
    parameters: Mapping[str, Any] = field(default_factory=dict)
    revision: int = 1
    software_version: str = __version__
    # provided by the runtime: the patient's earlier timepoints (none in a pure run),
    # the node's report settings, the folder of the shipped criteria's rules files, and
    # the site folder whose files override them key by key (`criteria.site_dir`)
    priors: PriorsSource = NO_PRIORS
    report: ReportSettings = field(default_factory=ReportSettings)
    rules_dir: Path = RULES_DIR
    site_rules_dir: Path | None = None
    # the kinds of output the job's destinations take together (settings
    # `destinations.<name>.outputs`): an object no destination takes need not be built
    outputs: frozenset[OutputKind] = frozenset(DEFAULT_OUTPUTS)

    def uid(self, *parts: str) -> str:
        """A UID determined by the study, the route, the software version and `parts`.

        A re-run or a resend therefore produces the same UIDs, and the PACS stores the
        same instance again instead of a duplicate. Same scheme as daemon/report/uids.py
        (conformance.md section 6); pass the revision among `parts` for an instance whose
        content changes with the study's revision.
        """
        return uid_from("pipeline", self.study_instance_uid, self.route, self.software_version, *parts)


Pipeline = Callable[[PipelineInput], list[Dataset]]

BUILTIN: dict[str, str] = {
    "qa_report": "daemon.pipelines.qa_report:run",
    "brain_mets": "daemon.pipelines.brain_mets:run",
    "liver_ct": "daemon.pipelines.liver_ct:run",
    "wholebody_fdg": "daemon.pipelines.wholebody_fdg:run",
    "brain_pet": "daemon.pipelines.brain_pet:run",
    "ct_perfusion": "daemon.pipelines.ct_perfusion:run",
}


def names() -> list[str]:
    return sorted(BUILTIN)


def check(name: str) -> None:
    """Raise UnknownPipelineError unless `name` names a pipeline; a built-in one is not imported."""
    if name not in BUILTIN:
        resolve(name)


def resolve(name: str) -> Pipeline:
    """The pipeline called `name` (built-in, or `module:function`)."""
    target = BUILTIN.get(name, name)
    if ":" not in target:
        raise UnknownPipelineError(
            f"unknown pipeline {name!r} (built in: {', '.join(names())}; or module:function)"
        )
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownPipelineError(f"pipeline {name!r}: cannot import {module_name}: {exc}") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise UnknownPipelineError(f"pipeline {name!r}: {module_name} has no function {attr!r}")
    pipeline: Pipeline = fn
    return pipeline
