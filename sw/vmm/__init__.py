"""The VMM side of live migration: a movable VM and the migration driver (``docs/software.md``).

::

    src, dst = Host("A", bus_a, pf_a, vdcm_a), Host("B", bus_b, pf_b, vdcm_b)
    g = await start_guest(src, "vm0", "siov-4q")        # VDEV + VM + AVF-like driver on it
    stats = await migrate(g, dst)                         # pre-copy, stop-and-copy, resume on B
    stats.rounds, stats.pages_per_round, stats.state_bytes, stats.downtime_ns
"""

from __future__ import annotations

from siov_sim.sw.vmm.guest import EptMapping, GuestRuntime, MigratableVm
from siov_sim.sw.vmm.migrate import (
    Host,
    MigratingGuest,
    MigrationError,
    MigrationStats,
    Placement,
    migrate,
    open_vdev,
    start_guest,
    stop_guest,
)
from siov_sim.sw.vmm.workload import CheckedTraffic, TrafficStats

__all__ = [
    "CheckedTraffic",
    "EptMapping",
    "GuestRuntime",
    "Host",
    "MigratableVm",
    "MigratingGuest",
    "MigrationError",
    "MigrationStats",
    "Placement",
    "TrafficStats",
    "migrate",
    "open_vdev",
    "start_guest",
    "stop_guest",
]
