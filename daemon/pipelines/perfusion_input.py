"""Which series of a study the perfusion route reads: the dynamic series, vendor maps, and the
portal-venous series whose lesions the liver route measures.

- dynamic: a CT series some slice position of which is acquired more than once (the longest such);
- maps: series a vendor pattern of rules/perfusion_vendor.yaml recognises (one per parameter;
  a colour-rendered map is refused with the reason, said in the report);
- portal-venous: among the others, the one the portal-venous series spec chooses (the liver
  route's by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from daemon.imaging.dynamic import is_dynamic
from daemon.imaging.loader import SeriesFiles
from daemon.imaging.selection import SeriesSpec, select_series
from daemon.imaging.series import load_volume
from daemon.measure.perfusion_vendor import MapRefused, MapSeries, VendorRules, classify
from daemon.volume import Volume

_GRID_MM = 0.5  # maps whose grids differ by more than this are not one set


@dataclass(frozen=True, eq=False)
class PerfusionSeries:
    dynamic: SeriesFiles | None
    maps: dict[str, tuple[SeriesFiles, MapSeries]] = field(default_factory=dict)
    refused: tuple[str, ...] = ()  # why a map series was not used
    portal: SeriesFiles | None = None


def find_series(series: Mapping[str, SeriesFiles], rules: VendorRules, portal_spec: SeriesSpec) -> PerfusionSeries:
    dynamic: list[SeriesFiles] = []
    maps: dict[str, tuple[SeriesFiles, MapSeries]] = {}
    refused: list[str] = []
    others: dict[str, SeriesFiles] = {}
    for uid, s in series.items():
        if str(s.first.get("Modality", "")) not in ("CT", "OT", "SC"):
            continue
        found = classify(s.first, rules)
        if isinstance(found, MapRefused):
            refused.append(found.reason)
        elif isinstance(found, MapSeries):
            if found.parameter in maps:
                refused.append(f"a second {found.parameter} map series ({s.series_instance_uid}) ignored")
            else:
                maps[found.parameter] = (s, found)
        elif str(s.first.get("Modality", "")) == "CT" and is_dynamic(s):
            dynamic.append(s)
        else:
            others[uid] = s
    chosen = select_series(portal_spec, others).series_instance_uid if others else None
    return PerfusionSeries(max(dynamic, key=lambda s: len(s.instances)) if dynamic else None, maps,
                           tuple(refused), others.get(chosen) if chosen else None)


@dataclass(frozen=True, eq=False)
class MapSet:
    volumes: dict[str, Volume]  # parameter -> map, all on the first one's grid
    info: dict[str, MapSeries]

    @property
    def grid(self) -> Volume:
        return next(iter(self.volumes.values()))


def load_maps(found: PerfusionSeries) -> MapSet | str:
    """The maps as volumes on one grid, or why not."""
    volumes: dict[str, Volume] = {}
    for name, (s, _) in found.maps.items():
        try:
            volumes[name] = load_volume(s).volume
        except ValueError as exc:  # SeriesRefused is a ValueError
            return f"the {name} map series cannot be read: {exc}"
    first_name, first = next(iter(volumes.items()))
    corners = np.array([[0, 0, 0], [s - 1 for s in first.shape]], dtype=np.float64)
    for name, v in volumes.items():
        if v.shape != first.shape or float(np.abs(v.index_to_patient(corners) - first.index_to_patient(corners)).max()) > _GRID_MM:
            return f"maps of different geometry: {name} {v.shape} does not lie on the grid of {first_name} {first.shape}"
    return MapSet(volumes, {name: info for name, (_, info) in found.maps.items()})
