"""Delta-radiomics: the change of each lesion's features between consecutive timepoints.

Pure. A lesion's features (PyRadiomics names, `Measurements.radiomics`) carry their
provenance in `Measurements.notes["radiomics"]`: the profile, the hash of its settings and
the PyRadiomics version (`Provenance`), recorded with the timepoint so that the next study
can compare with it. The delta of a feature is current minus prior (the absolute net
change; the relative change is derivable from the two timepoints' exports), computed only
between features of the same profile settings (same hash): anything else is "not
computable", with the reason, never zeros.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from daemon.findings import Lesion, Timepoint

NOTE_KEY = "radiomics"  # Measurements.notes key holding the provenance of Measurements.radiomics
COMPUTED = "computed"


@dataclass(frozen=True)
class Provenance:
    profile: str
    profile_hash: str
    version: str  # PyRadiomics

    def note(self) -> str:
        return f"{self.profile} {self.profile_hash} {self.version}"

    @classmethod
    def from_note(cls, note: str) -> Provenance | None:
        parts = note.split()
        return cls(parts[0], parts[1], parts[2]) if len(parts) == 3 else None


@dataclass(frozen=True)
class LesionDelta:
    """A lesion's delta-radiomics against the latest prior timepoint, or why there is none."""

    status: str  # COMPUTED, or "not computable: <why>"
    values: Mapping[str, float] = field(default_factory=dict)  # feature -> current - prior
    prior_study_instance_uid: str = ""
    prior_study_date: date | None = None

    @property
    def computable(self) -> bool:
        return self.status == COMPUTED


def _not(why: str, prior: Timepoint | None = None) -> LesionDelta:
    return LesionDelta(f"not computable: {why}", {}, prior.study_instance_uid if prior else "",
                       prior.study_date if prior else None)


def lesion_delta(lesion: Lesion, prior: Timepoint | None) -> LesionDelta:
    """`lesion`'s features minus those of the same lesion (tracking UID) at `prior`."""
    now = Provenance.from_note(lesion.measurements.notes.get(NOTE_KEY, ""))
    if now is None or not lesion.measurements.radiomics:
        return _not("no features at this timepoint", prior)
    if prior is None:
        return _not("no prior timepoint (baseline)")
    before = next((les for les in prior.lesions if les.tracking_uid == lesion.tracking_uid), None)
    if before is None:
        return _not(f"lesion {lesion.tracking_id} not present at the prior timepoint", prior)
    then = Provenance.from_note(before.measurements.notes.get(NOTE_KEY, ""))
    if then is None or not before.measurements.radiomics:
        return _not("the prior timepoint has no radiomics features for this lesion "
                    "(radiomics off for that study, or its lesions read back from an SR)", prior)
    if then.profile_hash != now.profile_hash:
        return _not(f"prior features from profile {then.profile} ({then.profile_hash}), "
                    f"now {now.profile} ({now.profile_hash})", prior)
    shared = sorted(set(lesion.measurements.radiomics) & set(before.measurements.radiomics))
    values = {n: lesion.measurements.radiomics[n] - before.measurements.radiomics[n] for n in shared}
    # same settings: computed even across PyRadiomics versions (each export records its own)
    return LesionDelta(COMPUTED, values, prior.study_instance_uid, prior.study_date)


def deltas(lesions: Sequence[Lesion], history: Sequence[Timepoint]) -> dict[str, LesionDelta]:
    """Tracking UID -> delta against the latest prior timepoint (consecutive timepoints)."""
    prior = history[-1] if history else None
    return {les.tracking_uid: lesion_delta(les, prior) for les in lesions}
