"""VFIO model: container / group / device fds with the shapes and names of ``<linux/vfio.h>``.

::

    vfio = Vfio(iommu)                          # the subsystem; the VDCM registers mdev groups
    container = vfio.open_container(process)    # open("/dev/vfio/vfio")
    group = vfio.open_group(gid)                # open("/dev/vfio/<gid>"): exclusive, EBUSY if open
    await group.set_container(container)        # VFIO_GROUP_SET_CONTAINER
    await container.set_iommu(VFIO_TYPE1v2_IOMMU)
    await container.map_dma(vaddr, iova, size, VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)
    dev = group.get_device_fd(uuid)             # VFIO_GROUP_GET_DEVICE_FD
    info = dev.get_region_info(VFIO_PCI_BAR2_REGION_INDEX)   # .sparse_mmap areas
    portal = dev.mmap(VFIO_PCI_INDEX_TO_OFFSET(2) + off, 4096)
    await dev.set_irqs(VFIO_PCI_MSIX_IRQ_INDEX, DATA_EVENTFD | ACTION_TRIGGER, 0, n, callbacks)
    await dev.close()                           # irqs off, device reset, mmaps revoked
    await group.close()                         # (with the last device fd) leaves the container

    # migration v2 (sw/vfio/migration.py) and dirty tracking
    f = await dev.set_mig_state(VFIO_DEVICE_STATE_STOP_COPY)   # data fd: f.read(n) .. b""
    await container.dirty_pages_start(); pages = await container.dirty_pages_get(0, ram_size)

Every call also exists as ``await obj.ioctl(VFIO_..., bytearray(struct))`` with the kernel's
numbers and layouts (eventfds come from ``vfio.eventfds.eventfd(callback)``; GET_DEVICE_FD takes the name).
"""

from __future__ import annotations

from siov_sim.sw.vfio.device_ops import (
    IrqCallback,
    IrqInfo,
    MmioMapping,
    RegionInfo,
    VfioDeviceOps,
    VfioError,
)
from siov_sim.sw.vfio.migration import FileTable, MigrationFile, VfioMigrationOps, mig_get_next_state
from siov_sim.sw.vfio.vfio import (
    DmaMapping,
    EventFds,
    ProcessMemory,
    Vfio,
    VfioContainer,
    VfioDevice,
    VfioGroup,
)

__all__ = [
    "DmaMapping",
    "EventFds",
    "FileTable",
    "IrqCallback",
    "IrqInfo",
    "MigrationFile",
    "MmioMapping",
    "ProcessMemory",
    "RegionInfo",
    "Vfio",
    "VfioContainer",
    "VfioDevice",
    "VfioDeviceOps",
    "VfioError",
    "VfioGroup",
    "VfioMigrationOps",
    "mig_get_next_state",
]
