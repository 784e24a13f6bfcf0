"""CPU package energy from Linux RAPL (powercap sysfs), where readable.

The kernel's `energy_uj` counter wraps at `max_energy_range_uj`; `RaplReader` accumulates across wraps,
so `deeplocal_cpu_energy_joules_total` only ever grows while the process lives. Since 2020 most kernels
make `energy_uj` readable by root only: then the collector reports `deeplocal_cpu_energy_available 0`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

_PACKAGE_ZONE = re.compile(r"^intel-rapl:\d+$")    # top-level zones are packages; subzones are core/dram


@dataclass
class _Zone:
    path: Path
    name: str
    max_uj: int
    last_uj: int
    total_uj: int = 0


class RaplReader:
    """Accumulating reader of the package zones under `root` (normally /sys/class/powercap)."""

    def __init__(self, root: Path = Path("/sys/class/powercap")):
        self._root = Path(root)
        self._zones: list[_Zone] | None = None
        self._lock = threading.Lock()

    def _discover(self) -> list[_Zone]:
        zones = []
        if not self._root.is_dir():
            return zones
        for path in sorted(self._root.iterdir()):
            if not _PACKAGE_ZONE.match(path.name):
                continue
            try:
                name = (path / "name").read_text().strip()
                max_uj = int((path / "max_energy_range_uj").read_text())
                now = int((path / "energy_uj").read_text())
            except (OSError, ValueError):
                continue                               # unreadable (permissions) or not a RAPL zone
            label = f"{name}:{path.name.split(':')[1]}"
            zones.append(_Zone(path=path, name=label, max_uj=max_uj, last_uj=now))
        return zones

    def read_joules(self) -> dict[str, float]:
        """Joules consumed per package since this reader first looked (empty where RAPL is unreadable)."""
        with self._lock:
            if self._zones is None:
                self._zones = self._discover()
            out = {}
            for zone in self._zones:
                try:
                    now = int((zone.path / "energy_uj").read_text())
                except (OSError, ValueError):
                    continue
                delta = now - zone.last_uj
                if delta < 0:                          # the counter wrapped
                    delta += zone.max_uj + 1
                zone.total_uj += delta
                zone.last_uj = now
                out[zone.name] = zone.total_uj / 1e6
            return out


class RaplCollector(Collector):
    def __init__(self, reader: RaplReader):
        self._reader = reader

    def collect(self) -> Iterator[Metric]:
        joules = self._reader.read_joules()
        yield GaugeMetricFamily("deeplocal_cpu_energy_available", "1 if RAPL package energy is readable.",
                                value=1.0 if joules else 0.0)
        if joules:
            family = CounterMetricFamily("deeplocal_cpu_energy_joules",
                                         "CPU package energy since the collector started (RAPL).",
                                         labels=["package"])
            for package, value in sorted(joules.items()):
                family.add_metric([package], value)
            yield family
