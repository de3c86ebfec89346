"""Address spaces of the three kinds of fast-path users, and the DMA-address view of each.

* :class:`UserProcess`: a host process. Its pages are host pages; its virtual addresses are
  either pinned and mapped by VFIO MAP_DMA (DPDK: IOVA = VA) or, with SVA, mapped in a
  first-stage table the IOMMU walks directly (the process's "own page table").
* :class:`GuestVm`: a VM whose RAM is one region of the VMM process; guest-physical address
  (GPA) = offset in that region; VFIO maps all of it (IOVA = GPA) for the guest's DMA.

:class:`DmaSpace` is what a queue driver needs: allocate DMA-able memory, get its DMA address
(the address the device puts on the bus, translated by the ADI's PASID), read and write it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from siov_sim.model.mem import PAGE_SIZE, PageAllocator
from siov_sim.sw.bus import HostBus
from siov_sim.sw.driver.iommu_api import DomainKind, IoDomain, IommuApi
from siov_sim.sw.vfio import uapi as u
from siov_sim.sw.vfio.vfio import VfioContainer

log = logging.getLogger(__name__)


def _round_up(n: int) -> int:
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


class UserProcess:
    """A process address space: ``mmap_anon`` backs VAs with freshly allocated host pages."""

    def __init__(
        self,
        bus: HostBus,
        name: str,
        *,
        va_base: int = 0x7F00_0000_0000,
        va_size: int = 1 << 36,
        rlimit_memlock: int | None = None,
    ) -> None:
        self.bus = bus
        self.name = name
        self._va = PageAllocator(va_base, va_size)
        self._pages: dict[int, int] = {}  # va page -> hpa page
        self._regions: dict[int, list[int]] = {}  # va start -> hpa pages
        self._pins: dict[int, int] = {}  # hpa page -> pin count (VFIO MAP_DMA)
        self._orphans: set[int] = set()  # hpa pages munmapped while pinned: freed at the last unpin
        #: RLIMIT_MEMLOCK in bytes (None = unlimited: CAP_IPC_LOCK, or what libvirt gives QEMU)
        self.rlimit_memlock = rlimit_memlock
        self.locked_vm = 0  # mm->locked_vm in bytes, charged by VFIO type1 for pinned pages
        self.sva: IoDomain | None = None  # first-stage table, when the process uses SVA
        self.log = logging.getLogger(f"{__name__}.{name}")

    def enable_sva(self, iommu: IommuApi) -> IoDomain:
        """Give the process a first-stage page table (its ``mm`` as the IOMMU will walk it)."""
        if self.sva is None:
            self.sva = iommu.alloc_domain(DomainKind.FIRST_STAGE)
            for va, hpa in sorted(self._pages.items()):
                self.sva.map(va, hpa, PAGE_SIZE, write=True, user=True)
        return self.sva

    def mmap_anon(self, size: int) -> int:
        size = _round_up(size)
        va = self._va.alloc(size)
        hpas = []
        for off in range(0, size, PAGE_SIZE):
            hpa = self.bus.alloc.alloc(PAGE_SIZE)
            self.bus.mem.fill(hpa, PAGE_SIZE, 0)
            self._pages[va + off] = hpa
            hpas.append(hpa)
            if self.sva is not None:
                self.sva.map(va + off, hpa, PAGE_SIZE, write=True, user=True)
        self._regions[va] = hpas
        return va

    def region_size(self, va: int) -> int:
        return len(self._regions[va]) * PAGE_SIZE

    def pin_pages(self, vaddr: int, size: int) -> list[int]:
        """``pin_user_pages``: the pages stay allocated while a device may DMA to them, even if
        the process unmaps them meanwhile; returns their host-physical addresses."""
        hpas = []
        for off in range(0, size, PAGE_SIZE):
            hpa = self._pages.get((vaddr + off) & ~(PAGE_SIZE - 1))
            if hpa is None:
                raise MemoryError(f"{self.name}: 0x{vaddr + off:x} not mapped")
            hpas.append(hpa)
        for hpa in hpas:
            self._pins[hpa] = self._pins.get(hpa, 0) + 1
        return hpas

    def unpin_pages(self, hpas: Sequence[int]) -> None:
        for hpa in hpas:
            n = self._pins.get(hpa, 0) - 1
            if n < 0:
                raise ValueError(f"{self.name}: unpin of unpinned page 0x{hpa:x}")
            if n:
                self._pins[hpa] = n
                continue
            del self._pins[hpa]
            if hpa in self._orphans:  # munmapped while pinned: the last pin held it
                self._orphans.discard(hpa)
                self.bus.alloc.free(hpa)

    def pinned_pages(self) -> int:
        return len(self._pins)

    async def munmap(self, va: int) -> None:
        """munmap(2): the VA range goes; a page that VFIO still holds pinned stays allocated
        (the device may still reach it through its IOVA) and is freed when it is unpinned."""
        hpas = self._regions.pop(va)
        if self.sva is not None:
            await self.sva.unmap(va, len(hpas) * PAGE_SIZE)  # IOTLB shot down before reuse
        for i, hpa in enumerate(hpas):
            del self._pages[va + i * PAGE_SIZE]
            if self._pins.get(hpa):
                self._orphans.add(hpa)
            else:
                self.bus.alloc.free(hpa)
        self._va.free(va)

    async def exit(self) -> None:
        """Process exit: every mapping goes, then the SVA page table."""
        for va in list(self._regions):
            await self.munmap(va)
        if self.sva is not None:
            await self.sva.driver.free_domain(self.sva)
            self.sva = None

    def vaddr_to_hpa(self, vaddr: int) -> int | None:
        hpa = self._pages.get(vaddr & ~(PAGE_SIZE - 1))
        return None if hpa is None else hpa | (vaddr & (PAGE_SIZE - 1))

    def _chunks(self, va: int, length: int) -> list[tuple[int, int]]:
        out = []
        while length:
            hpa = self.vaddr_to_hpa(va)
            if hpa is None:
                raise MemoryError(f"{self.name}: segfault at 0x{va:x}")
            n = min(length, PAGE_SIZE - (va & (PAGE_SIZE - 1)))
            out.append((hpa, n))
            va += n
            length -= n
        return out

    def read(self, va: int, length: int) -> bytes:
        return b"".join(self.bus.mem.read(h, n) for h, n in self._chunks(va, length))

    def write(self, va: int, data: bytes) -> None:
        pos = 0
        for h, n in self._chunks(va, len(data)):
            self.bus.mem.write(h, data[pos : pos + n])
            pos += n

    def pages(self) -> int:
        return len(self._pages)

    def orphaned_pages(self) -> int:
        """Pages unmapped by the process but still pinned for DMA."""
        return len(self._orphans)


class GuestVm:
    """A VM: guest RAM of ``ram_size`` bytes at GPA 0, backed by one VMM-process mapping."""

    def __init__(self, bus: HostBus, name: str, ram_size: int = 16 << 20, *, firmware: int = 0x10_0000) -> None:
        if ram_size & (PAGE_SIZE - 1) or ram_size > 0xF000_0000 or not 0 <= firmware < ram_size:
            raise ValueError("guest RAM must be page aligned, below the MSI window and above the firmware area")
        self.name = name
        self.vmm = UserProcess(bus, f"qemu-{name}")
        self.ram_size = ram_size
        self.ram_va = self.vmm.mmap_anon(ram_size)
        # The guest kernel's own page allocator over its RAM (the first ``firmware`` bytes left out).
        self.page_alloc = PageAllocator(firmware, ram_size - firmware)

    def gpa_to_hpa(self, gpa: int) -> int:
        if not 0 <= gpa < self.ram_size:
            raise MemoryError(f"{self.name}: GPA 0x{gpa:x} outside guest RAM")
        hpa = self.vmm.vaddr_to_hpa(self.ram_va + gpa)
        assert hpa is not None
        return hpa

    def read(self, gpa: int, length: int) -> bytes:
        return self.vmm.read(self.ram_va + gpa, length)

    def write(self, gpa: int, data: bytes) -> None:
        self.vmm.write(self.ram_va + gpa, data)

    async def map_ram(self, container: VfioContainer) -> None:
        """What QEMU's VFIO memory listener does: MAP_DMA all guest RAM at IOVA = GPA."""
        flags = u.VFIO_DMA_MAP_FLAG_READ | u.VFIO_DMA_MAP_FLAG_WRITE
        await container.map_dma(self.ram_va, 0, self.ram_size, flags)

    async def destroy(self) -> None:
        await self.vmm.exit()


class DmaSpace(Protocol):
    """DMA-able memory as one driver sees it; addresses are what descriptors carry."""

    async def alloc(self, size: int) -> int: ...
    async def free(self, addr: int) -> None: ...
    def read(self, addr: int, length: int) -> bytes: ...
    def write(self, addr: int, data: bytes) -> None: ...


class GpaSpace:
    """AVF-like guest driver: DMA addresses are guest-physical (the guest's DMA API, no vIOMMU)."""

    def __init__(self, vm: GuestVm) -> None:
        self.vm = vm

    async def alloc(self, size: int) -> int:
        gpa = self.vm.page_alloc.alloc(_round_up(size))
        self.vm.write(gpa, bytes(_round_up(size)))
        return gpa

    async def free(self, addr: int) -> None:
        self.vm.page_alloc.free(addr)

    def read(self, addr: int, length: int) -> bytes:
        return self.vm.read(addr, length)

    def write(self, addr: int, data: bytes) -> None:
        self.vm.write(addr, data)


class GuestTable(Protocol):
    """A first-stage table the guest maps its DMA buffers in (``sw/guest/viommu.py``'s
    ``GuestIoTable`` in guest RAM, or a host-built nested domain)."""

    def map(self, iova: int, pa: int, size: int, *, read: bool = True, write: bool = True, user: bool = True) -> None:
        ...

    async def unmap(self, iova: int, size: int) -> None: ...


class GiovaSpace:
    """Guest driver behind a virtual IOMMU: DMA addresses are guest IOVAs, which the guest maps
    (GIOVA -> GPA) in its first-stage table; the IOMMU nests it on the GPA -> HPA second stage."""

    def __init__(self, vm: GuestVm, guest_table: GuestTable, base: int = 0x40_0000_0000) -> None:
        self.vm = vm
        self.table = guest_table
        self.base = base
        self._gpa: dict[int, tuple[int, int]] = {}

    async def alloc(self, size: int) -> int:
        size = _round_up(size)
        gpa = self.vm.page_alloc.alloc(size)
        self.vm.write(gpa, bytes(size))
        giova = self.base + gpa
        self.table.map(giova, gpa, size, write=True, user=True)
        self._gpa[giova] = (gpa, size)
        return giova

    async def free(self, addr: int) -> None:
        gpa, size = self._gpa.pop(addr)
        await self.table.unmap(addr, size)
        self.vm.page_alloc.free(gpa)

    def _to_gpa(self, addr: int) -> int:
        for giova, (gpa, size) in self._gpa.items():
            if giova <= addr < giova + size:
                return gpa + addr - giova
        raise MemoryError(f"GIOVA 0x{addr:x} not mapped by the guest")

    def read(self, addr: int, length: int) -> bytes:
        return self.vm.read(self._to_gpa(addr), length)

    def write(self, addr: int, data: bytes) -> None:
        self.vm.write(self._to_gpa(addr), data)


class IovaSpace:
    """DPDK-like PMD: memory from the process, MAP_DMA'd with IOVA = VA (``--iova-mode=va``)."""

    def __init__(self, process: UserProcess, container: VfioContainer) -> None:
        self.process = process
        self.container = container

    async def alloc(self, size: int) -> int:
        va = self.process.mmap_anon(size)
        flags = u.VFIO_DMA_MAP_FLAG_READ | u.VFIO_DMA_MAP_FLAG_WRITE
        await self.container.map_dma(va, va, _round_up(size), flags)
        return va

    async def free(self, addr: int) -> None:
        size = self.process.region_size(addr)
        await self.container.unmap_dma(addr, size)  # device access gone before the pages go
        await self.process.munmap(addr)

    def read(self, addr: int, length: int) -> bytes:
        return self.process.read(addr, length)

    def write(self, addr: int, data: bytes) -> None:
        self.process.write(addr, data)


class SvaSpace:
    """SVA user: DMA addresses are plain process virtual addresses (first-stage translated)."""

    def __init__(self, process: UserProcess) -> None:
        if process.sva is None:
            raise ValueError("process has no SVA page table (enable_sva first)")
        self.process = process

    async def alloc(self, size: int) -> int:
        return self.process.mmap_anon(size)

    async def free(self, addr: int) -> None:
        await self.process.munmap(addr)

    def read(self, addr: int, length: int) -> bytes:
        return self.process.read(addr, length)

    def write(self, addr: int, data: bytes) -> None:
        self.process.write(addr, data)
