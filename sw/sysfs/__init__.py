"""A live, Linux-shaped sysfs of the simulation, served through FUSE.

* :mod:`.tree`: :class:`SysfsTree`, the PCI device + mdev bus tree computed from the PF driver,
  the VDCM and the HostBus (config reads are CfgRd TLPs into the RTL);
* :mod:`.bridge`: :class:`SimBridge`, how FUSE threads hand requests to the simulation thread;
* :mod:`.fuse`: :class:`SysfsServer`, the mfusepy mount.

Real ``lspci``/``setpci -A linux-sysfs -O sysfs.path=ROOT/bus/pci`` and ``mdevctl`` (with ROOT
bind-mounted on ``/sys`` in a private mount namespace) work on it; see docs/software.md.
"""

from __future__ import annotations

from siov_sim.sw.sysfs.bridge import BridgeClosed, SimBridge
from siov_sim.sw.sysfs.fuse import SysfsServer, unavailable
from siov_sim.sw.sysfs.tree import Kind, Stat, SysfsTree

__all__ = ["BridgeClosed", "Kind", "SimBridge", "Stat", "SysfsServer", "SysfsTree", "unavailable"]
