"""The guest's own IOMMU (vIOMMU) in the VM flow: guest first stage nested on the host's second.

Three parties, as with QEMU's ``intel-iommu`` device on iommufd (Linux 6.8+ nesting):

* the **guest kernel** (:class:`GuestIommu`, :class:`GuestIoTable`): builds first-stage page
  tables (GIOVA -> GPA) *in its own RAM* with ordinary stores, programs its vIOMMU's PASID
  entry for the device with the root table's GPA, and after every unmap queues a PASID-based
  IOTLB invalidation descriptor (VT-d format, in the guest's DID/PASID namespace) on its vIOMMU's
  invalidation queue -- unless a buggy driver forgets to;
* the **VMM** (:class:`VmmViommu`): traps those two things. A PASID-entry write becomes
  ``IOMMU_HWPT_ALLOC`` of a nested HWPT whose first stage is the guest's root GPA and whose
  parent is the VFIO container's second stage, then ``VFIO_DEVICE_ATTACH_IOMMUFD_PT`` (an atomic
  replace); an invalidation descriptor becomes ``IOMMU_HWPT_INVALIDATE``
  (:meth:`VfioContainer.invalidate_nested`);
* the **host**: the IOMMU walks the guest's table at GPAs through the second stage (GPA -> HPA,
  all guest RAM mapped by the VMM) and caches the result in its IOTLB, which only the forwarded
  invalidation clears. A guest that skips it keeps seeing its old mapping, as on real hardware.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

from siov_sim.model.mem import PAGE_SIZE
from siov_sim.sw.guest.memory import GuestVm
from siov_sim.sw.iommu import descs
from siov_sim.sw.iommu.pagetable import Mapping, PageTable, PteFormat
from siov_sim.sw.vfio.vfio import VfioContainer, VfioDevice

log = logging.getLogger(__name__)

GUEST_DID = 1  # the guest's own domain id for its device (its vIOMMU's namespace, not the host's)
GUEST_PASID = 0  # the guest binds its table as the device's RID_PASID (DMA API use)


class GuestTableSpace:
    """``TableSpace`` for tables in guest RAM: entries hold GPAs, stores land in the RAM's pages."""

    def __init__(self, vm: GuestVm) -> None:
        self.vm = vm

    def alloc_table(self) -> tuple[int, int]:
        gpa = self.vm.page_alloc.alloc(PAGE_SIZE)
        self.vm.write(gpa, bytes(PAGE_SIZE))
        return gpa, self.vm.gpa_to_hpa(gpa)

    def free_table(self, stored: int) -> None:
        self.vm.page_alloc.free(stored)


@dataclass
class ViommuStats:
    pasid_entry_writes: int = 0
    invalidations_queued: int = 0  # descriptors the guest put on its queue
    invalidations_forwarded: int = 0  # IOMMU_HWPT_INVALIDATE calls the VMM made
    invalidations_skipped: int = 0  # unmaps whose invalidation the guest forgot


class VmmViommu:
    """The VMM's vIOMMU device model for one assigned device (see the module docstring)."""

    def __init__(self, container: VfioContainer, dev: VfioDevice) -> None:
        self.container = container
        self.dev = dev
        self.nested: object | None = None
        self.stats = ViommuStats()

    async def pasid_entry_written(self, fs_root: int | None, levels: int = 4) -> None:
        """The guest (re)programmed the device's PASID entry: first stage at ``fs_root`` (a GPA),
        or translation off (``None``: DMA goes through the second stage only, IOVA = GPA)."""
        self.stats.pasid_entry_writes += 1
        old = self.nested
        if fs_root is None:
            assert self.container.domain is not None
            await self.dev.attach_pt(self.container.domain)
            self.nested = None
        else:
            new = self.container.alloc_nested_domain(fs_root=fs_root, levels=levels)  # IOMMU_HWPT_ALLOC
            await self.dev.attach_pt(new)  # replace: queues keep running
            self.nested = new
        if old is not None:
            await self.container.free_nested_domain(old)  # type: ignore[arg-type]

    async def queue_written(self, batch: list[bytes]) -> None:
        """The guest advanced its invalidation queue tail: forward what concerns the device."""
        for d in batch:
            qw0, qw1 = struct.unpack_from("<QQ", d)
            kind, gran = qw0 & 0xF, qw0 >> 4 & 3
            if kind != 0x6:  # waits complete at once here; other types have nothing nested to do
                continue
            self.stats.invalidations_queued += 1
            if self.nested is None:
                continue
            if gran == 3:  # page-selective within PASID: ADDR + AM
                am = qw1 & 0x3F
                await self.container.invalidate_nested(self.nested, qw1 & ~0xFFF, PAGE_SIZE << am)  # type: ignore[arg-type]
            else:
                await self.container.invalidate_nested(self.nested)  # type: ignore[arg-type]
            self.stats.invalidations_forwarded += 1


class GuestIommu:
    """The guest kernel's driver for its vIOMMU, with one assigned device behind it."""

    def __init__(self, vm: GuestVm, vmm: VmmViommu, *, levels: int = 4) -> None:
        self.vm = vm
        self.vmm = vmm
        self.levels = levels
        self.space = GuestTableSpace(vm)
        self.table: GuestIoTable | None = None

    @property
    def stats(self) -> ViommuStats:
        return self.vmm.stats

    def alloc_table(self) -> GuestIoTable:
        return GuestIoTable(self)

    async def attach(self, table: GuestIoTable) -> None:
        """Point the device's PASID entry at ``table`` (the VMM installs it as the nested first stage)."""
        await self.vmm.pasid_entry_written(table.root, self.levels)
        self.table = table

    async def detach(self) -> None:
        await self.vmm.pasid_entry_written(None)
        self.table = None

    async def invalidate(self, giova: int | None = None, size: int = 0) -> None:
        """Queue a PASID-based IOTLB invalidation (page-selective, or the whole PASID) and wait."""
        if giova is None:
            d = descs.piotlb_pasid(GUEST_DID, GUEST_PASID)
        else:
            addr, am = descs.addr_mask_for(giova, size)
            d = descs.piotlb_page(GUEST_DID, GUEST_PASID, addr, am)
        await self.vmm.queue_written([d, descs.inv_wait(0)])


class GuestIoTable:
    """One first-stage I/O page table of the guest, in guest RAM (GIOVA -> GPA)."""

    def __init__(self, iommu: GuestIommu) -> None:
        self.iommu = iommu
        mem = iommu.vm.vmm.bus.mem  # guest RAM is host memory of the VMM process
        self.pt = PageTable(mem, iommu.space, PteFormat.FIRST_STAGE, iommu.levels)
        self._unflushed: list[int] = []  # tables emptied by an unmap nobody invalidated yet

    @property
    def root(self) -> int:
        """GPA of the root table (what the guest writes into its vIOMMU PASID entry)."""
        return self.pt.root

    def map(self, giova: int, gpa: int, size: int, *, read: bool = True, write: bool = True, user: bool = True) -> None:
        """Not-present -> present: no invalidation needed (and none is sent)."""
        if gpa < 0 or gpa + size > self.iommu.vm.ram_size:
            raise MemoryError(f"GPA 0x{gpa:x}+0x{size:x} outside guest RAM")
        self.pt.map(giova, gpa, size, read=read, write=write, user=user)

    async def unmap(self, giova: int, size: int, *, invalidate: bool = True) -> None:
        """Clear the PTEs, then invalidate through the vIOMMU (``invalidate=False``: the guest
        driver forgets to, and the device may keep using the old translation)."""
        self._unflushed += self.pt.unmap(giova, size)
        if not invalidate:
            self.iommu.stats.invalidations_skipped += 1
            return
        await self.iommu.invalidate(giova, size)
        self.pt.free_tables(self._unflushed)  # only after the invalidation completed
        self._unflushed = []

    def lookup(self, giova: int) -> Mapping | None:
        return self.pt.lookup(giova)
