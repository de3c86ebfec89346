"""Fast-path users of VDEVs: AVF-like guest driver (GPAs), DPDK-like PMD (IOVAs), SVA user (VAs).

::

    vm = GuestVm(bus, "vm0"); container, dev = await vmm_attach(vfio, gid, uuid, vm)
    drv = AvfGuestDriver(vm, dev, bus.runtime); await drv.start()
    q = drv.queues[0]; await q.copy(src_gpa, dst_gpa, 4096)

    # with a vIOMMU: the guest's own first-stage table (guest RAM) nested on the host's second stage
    container, dev, giommu = await vmm_attach_viommu(vfio, gid, uuid, vm)
    table = giommu.alloc_table(); await giommu.attach(table)
    drv = AvfGuestDriver(vm, dev, bus.runtime, viommu=table)     # DMA addresses are guest IOVAs
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
    vmm_attach_viommu,
)
from siov_sim.sw.guest.memory import DmaSpace, GiovaSpace, GpaSpace, GuestVm, IovaSpace, SvaSpace, UserProcess
from siov_sim.sw.guest.queue import QueueError, QueueStats, VdevQueue
from siov_sim.sw.guest.viommu import GuestIommu, GuestIoTable, VmmViommu

__all__ = [
    "AvfGuestDriver",
    "DmaSpace",
    "DpdkPmd",
    "GiovaSpace",
    "GpaSpace",
    "GuestIoTable",
    "GuestIommu",
    "GuestVm",
    "IovaSpace",
    "QueueError",
    "QueueStats",
    "SvaSpace",
    "SvaUser",
    "UserProcess",
    "VdevDriver",
    "VdevQueue",
    "VmmViommu",
    "vfio_close",
    "vfio_open",
    "vmm_attach",
    "vmm_attach_viommu",
]
