"""Fast-path users of VDEVs: AVF-like guest driver (GPAs), DPDK-like PMD (IOVAs), SVA user (VAs).

::

    vm = GuestVm(bus, "vm0"); container, dev = await vmm_attach(vfio, gid, uuid, vm)
    drv = AvfGuestDriver(vm, dev, bus.runtime); await drv.start()
    q = drv.queues[0]; await q.copy(src_gpa, dst_gpa, 4096)
"""

from __future__ import annotations

from siov_sim.sw.guest.drivers import (
    AvfGuestDriver,
    DpdkPmd,
    SvaUser,
    VdevDriver,
    vfio_close,
    vfio_open,
    vmm_attach,
)
from siov_sim.sw.guest.memory import DmaSpace, GiovaSpace, GpaSpace, GuestVm, IovaSpace, SvaSpace, UserProcess
from siov_sim.sw.guest.queue import QueueError, QueueStats, VdevQueue

__all__ = [
    "AvfGuestDriver",
    "DmaSpace",
    "DpdkPmd",
    "GiovaSpace",
    "GpaSpace",
    "GuestVm",
    "IovaSpace",
    "QueueError",
    "QueueStats",
    "SvaSpace",
    "SvaUser",
    "UserProcess",
    "VdevDriver",
    "VdevQueue",
    "vfio_close",
    "vfio_open",
    "vmm_attach",
]
