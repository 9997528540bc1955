"""Select a series by spec and load it; a refused series falls through to the next suitable one.

The result always carries its explanation: a pipeline that gets `loaded is None`
reports `reason` ("no suitable series: ...") instead of failing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from daemon.imaging.loader import SeriesFiles
from daemon.imaging.messy import MessyPolicy, SeriesRefused, Tolerances
from daemon.imaging.selection import Selection, SeriesSpec, select_series
from daemon.imaging.series import LoadedSeries, load_volume

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Choice:
    selection: Selection
    loaded: LoadedSeries | None
    refused: tuple[tuple[str, str], ...]  # (series UID, why) of suitable series that could not be loaded

    @property
    def reason(self) -> str:
        lines = [self.selection.explain()]
        lines += [f"  series {uid} refused: {why}" for uid, why in self.refused]
        if self.loaded is None and self.selection.chosen is not None:
            lines.insert(0, "no suitable series: every suitable series was refused")
        elif self.loaded is not None and self.refused:
            lines.insert(0, f"loaded series {self.loaded.volume.series_instance_uid} instead")
        return "\n".join(lines)


def choose_volume(
    series: Mapping[str, SeriesFiles],
    spec: SeriesSpec,
    policy: MessyPolicy = MessyPolicy.RESAMPLE,
    tolerances: Tolerances | None = None,
) -> Choice:
    """The best suitable series as a volume, or None with the reason."""
    selection = select_series(spec, series)
    refused: list[tuple[str, str]] = []
    for cand in selection.candidates:
        if not cand.suitable:
            break
        uid = cand.facts.series_instance_uid
        try:
            loaded = load_volume(series[uid], policy, tolerances)
        except SeriesRefused as exc:
            log.info("series %s refused: %s", uid, exc)
            refused.append((uid, str(exc)))
            continue
        return Choice(selection, loaded, tuple(refused))
    return Choice(selection, None, tuple(refused))
