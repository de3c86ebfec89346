"""VFIO core: container (``/dev/vfio/vfio``), groups (``/dev/vfio/<n>``) and device fds.

Two equivalent ways in:

* Python verbs: ``container.map_dma(vaddr, iova, size, flags)``, ``device.get_region_info(i)`` ...
* ``ioctl(request, buf)`` with the request numbers and struct layouts of ``<linux/vfio.h>``
  (:mod:`.uapi`); ``buf`` is a ``bytearray`` read and written in place as the kernel does, and
  the return value is the ioctl's (a negative errno is raised as :class:`VfioError` instead).

The type1 backend builds second-stage tables through the host IOMMU driver: MAP_DMA pins the
process pages (``vaddr -> hpa``) and maps them in the container's domain; UNMAP_DMA unmaps,
which invalidates the IOTLB and waits before returning, so the pages may then be reused.
"""

from __future__ import annotations

import errno
import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import count
from typing import Protocol

from siov_sim.sw.driver.iommu_api import DomainKind, IoDomain, IommuApi, IommuError
from siov_sim.sw.vfio import uapi as u
from siov_sim.sw.vfio.device_ops import (
    IrqCallback,
    IrqInfo,
    MmioMapping,
    RegionInfo,
    VfioDeviceOps,
    VfioError,
)
from siov_sim.sw.vfio.migration import FileTable, MigrationFile, VfioMigrationOps, mig_get_next_state

log = logging.getLogger(__name__)

PAGE = 4096
#: Interrupt address window (x86): never IOVA space, reported as a hole by the IOVA-range cap.
MSI_WINDOW = (0xFEE0_0000, 0xFEEF_FFFF)
IOVA_LIMIT = (1 << 48) - 1  # 4-level second-stage tables
DMA_ENTRY_LIMIT = 65535  # type1's dma_entry_limit module parameter default


class ProcessMemory(Protocol):
    """The calling process's address space, as MAP_DMA's ``pin_user_pages`` sees it.

    ``rlimit_memlock`` is RLIMIT_MEMLOCK in bytes (``None``: unlimited, a process with
    CAP_IPC_LOCK or ``ulimit -l unlimited`` as libvirt gives QEMU); ``locked_vm`` is
    ``mm->locked_vm`` in bytes, which type1 charges for every page it pins.
    """

    rlimit_memlock: int | None
    locked_vm: int

    def vaddr_to_hpa(self, vaddr: int) -> int | None: ...
    def pin_pages(self, vaddr: int, size: int) -> list[int]:
        """Pin every page of the range; returns their host-physical addresses."""
        ...

    def unpin_pages(self, hpas: Sequence[int]) -> None:
        """Drop one pin of each page (a page whose VA was unmapped meanwhile is freed now)."""
        ...

    def write(self, vaddr: int, data: bytes) -> None:
        """copy_to_user (the dirty bitmap of VFIO_IOMMU_DIRTY_PAGES)."""
        ...


@dataclass(frozen=True, slots=True)
class DmaMapping:
    iova: int
    size: int
    vaddr: int
    flags: int
    hpas: tuple[int, ...] = ()  # the pinned pages, unpinned by UNMAP_DMA even after munmap


class EventFds:
    """eventfd(2) stand-in: ``eventfd(callback)`` returns an fd number for SET_IRQS payloads."""

    def __init__(self) -> None:
        self._fds: dict[int, IrqCallback] = {}
        self._next = 100

    def eventfd(self, callback: IrqCallback) -> int:
        fd = self._next
        self._next += 1
        self._fds[fd] = callback
        return fd

    def close(self, fd: int) -> None:
        if self._fds.pop(fd, None) is None:
            raise VfioError(errno.EBADF, f"fd {fd} is not an eventfd")

    def get(self, fd: int) -> IrqCallback:
        cb = self._fds.get(fd)
        if cb is None:
            raise VfioError(errno.EBADF, f"fd {fd} is not an eventfd")
        return cb


class Vfio:
    """The VFIO subsystem of one host: group registry and the container device."""

    def __init__(self, iommu: IommuApi) -> None:
        self.iommu = iommu
        self.eventfds = EventFds()
        self.files = FileTable()  # migration data fds handed out by VFIO_DEVICE_FEATURE
        self._groups: dict[int, _GroupState] = {}
        self._group_ids = count(0)

    def register_group(self, devices: Sequence[VfioDeviceOps]) -> int:
        """``vfio_register_group_dev`` (mdevs: one singleton group each); returns the group id."""
        gid = next(self._group_ids)
        self._groups[gid] = _GroupState(gid, {d.name: d for d in devices})
        log.debug("group %d registered: %s", gid, [d.name for d in devices])
        return gid

    def unregister_group(self, gid: int) -> None:
        st = self._groups.get(gid)
        if st is None:
            raise VfioError(errno.ENOENT, f"no group {gid}")
        if st.in_use():
            raise VfioError(errno.EBUSY, f"group {gid} still in use")
        del self._groups[gid]

    def group_in_use(self, gid: int) -> bool:
        """A group fd is open, a device fd is open, or the group sits in a container."""
        st = self._groups.get(gid)
        return st is not None and st.in_use()

    def claim_group(self, gid: int, owner: str) -> None:
        """Another driver took the devices (SVA use of a VDEV): VFIO opens fail with EBUSY until
        :meth:`release_group`, as a device bound to another driver cannot be opened by VFIO."""
        st = self._groups.get(gid)
        if st is None:
            raise VfioError(errno.ENOENT, f"no group {gid}")
        if st.in_use() or st.claimed_by is not None:
            raise VfioError(errno.EBUSY, f"group {gid} is in use ({st.claimed_by or 'VFIO'})")
        st.claimed_by = owner

    def release_group(self, gid: int) -> None:
        st = self._groups.get(gid)
        if st is not None:
            st.claimed_by = None

    def open_container(self, process: ProcessMemory) -> VfioContainer:
        """``open("/dev/vfio/vfio")`` by ``process`` (whose pages MAP_DMA will pin)."""
        return VfioContainer(self, process)

    def open_group(self, gid: int) -> VfioGroup:
        """``open("/dev/vfio/<gid>")``: exclusive, a second open fails with EBUSY (vfio_group_fops_open)."""
        st = self._groups.get(gid)
        if st is None:
            raise VfioError(errno.ENOENT, f"/dev/vfio/{gid}: no such group")
        if st.claimed_by is not None:
            raise VfioError(errno.EBUSY, f"/dev/vfio/{gid}: device in use by {st.claimed_by}")
        if st.opened:
            raise VfioError(errno.EBUSY, f"/dev/vfio/{gid}: group already open")
        st.fd_open = True
        return VfioGroup(self, st)


@dataclass(slots=True)
class _GroupState:
    gid: int
    devices: dict[str, VfioDeviceOps]
    container: VfioContainer | None = None
    open_devices: dict[str, int] = field(default_factory=dict)  # device name -> open fds
    fd_open: bool = False  # the group fd itself
    claimed_by: str | None = None

    @property
    def opened(self) -> bool:
        """The group is open: its fd, or device fds that hold it after the fd was closed."""
        return self.fd_open or bool(self.open_devices)

    def in_use(self) -> bool:
        return self.opened or self.container is not None


class VfioContainer:
    def __init__(self, vfio: Vfio, process: ProcessMemory) -> None:
        self.vfio = vfio
        self.process = process
        self.iommu_type: int | None = None
        self.domain: IoDomain | None = None
        self._groups: list[_GroupState] = []
        self._maps: list[DmaMapping] = []
        self._nested: list[IoDomain] = []

    # ---- python verbs -----------------------------------------------------------------------
    def get_api_version(self) -> int:
        return u.VFIO_API_VERSION

    def check_extension(self, ext: int) -> int:
        if ext in (u.VFIO_TYPE1_IOMMU, u.VFIO_TYPE1v2_IOMMU, u.VFIO_TYPE1_NESTING_IOMMU):
            return 1
        if ext in (u.VFIO_DMA_CC_IOMMU, u.VFIO_UNMAP_ALL):
            return 1
        return 0

    async def set_iommu(self, iommu_type: int) -> None:
        """VFIO_SET_IOMMU: a second-stage domain, every device of every group attached to it.

        All or nothing (``__vfio_container_attach_groups``): if one device cannot attach, those
        attached are detached again, the domain is freed and the container has no IOMMU model.
        """
        if not self._groups:
            raise VfioError(errno.EINVAL, "SET_IOMMU needs a group in the container first")
        if self.iommu_type is not None:
            raise VfioError(errno.EBUSY, "IOMMU model already set")
        if iommu_type not in (u.VFIO_TYPE1_IOMMU, u.VFIO_TYPE1v2_IOMMU, u.VFIO_TYPE1_NESTING_IOMMU):
            raise VfioError(errno.ENODEV, f"IOMMU type {iommu_type} not supported")
        # Second-stage domain in every case: nesting adds the guest's first stage on top later.
        try:
            domain = self.vfio.iommu.alloc_domain(DomainKind.SECOND_STAGE)
        except IommuError as exc:
            raise VfioError(exc.errno, f"SET_IOMMU: {exc}") from exc
        done: list[VfioDeviceOps] = []
        try:
            for g in self._groups:
                for dev in g.devices.values():
                    await _attach(dev, domain)
                    done.append(dev)
        except BaseException:
            for dev in reversed(done):
                await dev.detach_domain()
            await self.vfio.iommu.free_domain(domain)
            raise
        self.domain = domain
        self.iommu_type = iommu_type
        log.info("container: IOMMU type %d, %d group(s) attached", iommu_type, len(self._groups))

    @property
    def v2(self) -> bool:
        """type1v2 unmap rules (TYPE1v2 and NESTING); TYPE1 (v1) keeps the old, lax ones."""
        return self.iommu_type in (u.VFIO_TYPE1v2_IOMMU, u.VFIO_TYPE1_NESTING_IOMMU)

    def _require_iommu(self) -> IoDomain:
        if self.domain is None:
            raise VfioError(errno.EINVAL, "no IOMMU model set (VFIO_SET_IOMMU)")
        return self.domain

    def get_info(self) -> tuple[int, list[tuple[int, int]], int]:
        """(iova_pgsizes, usable IOVA ranges [start, end], DMA mappings still available)."""
        self._require_iommu()
        ranges = [(0, MSI_WINDOW[0] - 1), (MSI_WINDOW[1] + 1, IOVA_LIMIT)]
        return PAGE | (1 << 21) | (1 << 30), ranges, DMA_ENTRY_LIMIT - len(self._maps)

    def alloc_nested_domain(self, fs_root: int | None = None, levels: int = 4) -> IoDomain:
        """A first-stage table nested on the container's second stage (vIOMMU guests).

        The iommufd analogue is ``IOMMU_HWPT_ALLOC`` with the container's HWPT as parent. With
        ``fs_root`` (a GPA) the first stage is the guest's own table in guest memory
        (``IOMMU_HWPT_DATA_VTD_S1``: the VMM passes the root the guest programmed into its vIOMMU
        PASID entry); the guest edits it, the VMM forwards its invalidations with
        :meth:`invalidate_nested`. Without it the host builds the table (test helper). A device
        is switched to it with :meth:`VfioDevice.attach_pt`.
        """
        dom = self._require_iommu()
        if self.iommu_type != u.VFIO_TYPE1_NESTING_IOMMU:
            raise VfioError(errno.EINVAL, "nested domains need VFIO_TYPE1_NESTING_IOMMU")
        try:
            nested = self.vfio.iommu.alloc_domain(DomainKind.NESTED, parent=dom, user_fs_root=fs_root, levels=levels)
        except IommuError as exc:
            raise VfioError(exc.errno, f"nested domain: {exc}") from exc
        self._nested.append(nested)
        return nested

    async def invalidate_nested(self, domain: IoDomain, iova: int | None = None, size: int = 0) -> None:
        """iommufd ``IOMMU_HWPT_INVALIDATE``: the guest invalidated (part of) its first stage."""
        if not any(d is domain for d in self._nested):
            raise VfioError(errno.EINVAL, "not a nested domain of this container")
        try:
            await self.vfio.iommu.invalidate_user(domain, iova, size)
        except IommuError as exc:
            raise VfioError(exc.errno, f"invalidate: {exc}") from exc

    async def free_nested_domain(self, domain: IoDomain) -> None:
        """``IOMMU_DESTROY`` of a nested HWPT (EBUSY while a device is attached to it)."""
        if not any(d is domain for d in self._nested):
            raise VfioError(errno.EINVAL, "not a nested domain of this container")
        if domain.devices:
            raise VfioError(errno.EBUSY, "nested domain still attached")
        self._nested.remove(domain)
        await self.vfio.iommu.free_domain(domain)

    def owns_domain(self, domain: IoDomain) -> bool:
        return domain is self.domain or any(d is domain for d in self._nested)

    def mappings(self) -> list[DmaMapping]:
        return list(self._maps)

    async def map_dma(self, vaddr: int, iova: int, size: int, flags: int) -> None:
        """VFIO_IOMMU_MAP_DMA (``vfio_dma_do_map``): pin, charge RLIMIT_MEMLOCK, map.

        Nothing is left behind on failure: pages pinned so far are unpinned, runs already
        mapped are unmapped again, and an IOMMU error comes back as :class:`VfioError` with the
        IOMMU API's errno (EEXIST for a range that is mapped already).
        """
        dom = self._require_iommu()
        if flags & ~(u.VFIO_DMA_MAP_FLAG_READ | u.VFIO_DMA_MAP_FLAG_WRITE):
            raise VfioError(errno.EINVAL, f"unsupported MAP_DMA flags 0x{flags:x}")
        if not flags:  # type1: "if (!prot) return -EINVAL"; READ, WRITE or both
            raise VfioError(errno.EINVAL, "MAP_DMA needs READ and/or WRITE")
        if vaddr < 0 or iova < 0 or size <= 0 or (vaddr | iova | size) & (PAGE - 1):
            raise VfioError(errno.EINVAL, "vaddr, iova and size must be page aligned, size > 0, none negative")
        end = iova + size - 1
        if end > IOVA_LIMIT or not (end < MSI_WINDOW[0] or iova > MSI_WINDOW[1]):
            raise VfioError(errno.EINVAL, f"IOVA range 0x{iova:x}..0x{end:x} outside the usable ranges")
        for m in self._maps:
            if iova <= m.iova + m.size - 1 and m.iova <= end:
                raise VfioError(errno.EEXIST, f"IOVA 0x{iova:x}+0x{size:x} overlaps a mapping")
        if len(self._maps) >= DMA_ENTRY_LIMIT:
            raise VfioError(errno.ENOSPC, "dma_entry_limit reached")
        # get_user_pages: every page must be present in the process.
        for off in range(0, size, PAGE):
            if self.process.vaddr_to_hpa(vaddr + off) is None:
                raise VfioError(errno.EFAULT, f"vaddr 0x{vaddr + off:x} not mapped in the process")
        proc = self.process
        if proc.rlimit_memlock is not None and proc.locked_vm + size > proc.rlimit_memlock:
            raise VfioError(
                errno.ENOMEM,
                f"locked memory {proc.locked_vm + size} B would exceed RLIMIT_MEMLOCK {proc.rlimit_memlock} B",
            )
        hpas = proc.pin_pages(vaddr, size)
        proc.locked_vm += size
        read, write = bool(flags & u.VFIO_DMA_MAP_FLAG_READ), bool(flags & u.VFIO_DMA_MAP_FLAG_WRITE)
        # Map physically contiguous runs in one call (lets the IOMMU driver use large pages).
        mapped: list[tuple[int, int]] = []
        try:
            run_start = 0
            for i in range(1, len(hpas) + 1):
                if i == len(hpas) or hpas[i] != hpas[i - 1] + PAGE:
                    run = (iova + run_start * PAGE, (i - run_start) * PAGE)
                    dom.map(run[0], hpas[run_start], run[1], read=read, write=write, user=True)
                    mapped.append(run)
                    run_start = i
        except IommuError as exc:
            for r_iova, r_size in mapped:
                await dom.unmap(r_iova, r_size)
            proc.unpin_pages(hpas)
            proc.locked_vm -= size
            raise VfioError(exc.errno, f"MAP_DMA iova=0x{iova:x} size=0x{size:x}: {exc}") from exc
        self._maps.append(DmaMapping(iova, size, vaddr, flags, tuple(hpas)))
        log.debug("MAP_DMA iova=0x%x size=0x%x vaddr=0x%x", iova, size, vaddr)

    async def unmap_dma(self, iova: int, size: int, flags: int = 0) -> int:
        """VFIO_IOMMU_UNMAP_DMA; returns the bytes unmapped.

        type1v2: every mapping inside ``[iova, iova+size)`` goes; a range that would split one
        is EINVAL. type1 (v1, ``vfio_dma_do_unmap``'s compatibility rules): a mapping whose
        first IOVA is in the range goes whole, even past the range's end; a mapping that
        starts before ``iova`` stays, and the call still succeeds with the size actually
        unmapped (which may be 0).
        """
        dom = self._require_iommu()
        if flags & ~u.VFIO_DMA_UNMAP_FLAG_ALL:
            raise VfioError(errno.EINVAL, f"unsupported UNMAP_DMA flags 0x{flags:x}")
        if flags & u.VFIO_DMA_UNMAP_FLAG_ALL:
            if iova or size:
                raise VfioError(errno.EINVAL, "UNMAP_ALL needs iova = size = 0")
            victims = list(self._maps)
        else:
            if iova < 0 or size <= 0 or (iova | size) & (PAGE - 1):
                raise VfioError(errno.EINVAL, "iova and size must be page aligned and size > 0")
            end = iova + size - 1
            victims = []
            for m in self._maps:
                m_end = m.iova + m.size - 1
                if m.iova > end or m_end < iova:
                    continue
                if self.v2:
                    if m.iova < iova or m_end > end:  # type1v2: no bisecting a mapping
                        raise VfioError(errno.EINVAL, f"range would split the mapping at 0x{m.iova:x}")
                elif m.iova < iova:  # v1: a mapping starting before the range is left alone
                    continue
                victims.append(m)
        done = 0
        for m in victims:
            await dom.unmap(m.iova, m.size)  # clears PTEs, invalidates IOTLB, waits
            self._maps.remove(m)
            self.process.unpin_pages(m.hpas)  # only now may the pages go
            self.process.locked_vm -= m.size
            done += m.size
        log.debug("UNMAP_DMA iova=0x%x size=0x%x -> %d bytes", iova, size, done)
        return done

    # ---- dirty page tracking (VFIO_IOMMU_DIRTY_PAGES) ----------------------------------------------
    @property
    def dirty_tracking(self) -> bool:
        return self.domain is not None and self.domain.dirty_tracking

    async def dirty_pages_start(self) -> None:
        """VFIO_IOMMU_DIRTY_PAGES_FLAG_START: from now on the device's DMA writes are logged.

        Kernel type1 only pins pages and reports every pinned page dirty; here (as iommufd's
        ``IOMMU_HWPT_SET_DIRTY_TRACKING`` does on VT-d) the IOMMU logs them: SSADE in the PASID
        entry, D flags in the second-stage leaves (``IommuDriver.set_dirty_tracking``)."""
        dom = self._require_iommu()
        if not self.v2:
            raise VfioError(errno.EACCES, "dirty page tracking needs a type1v2 container")
        try:
            await self.vfio.iommu.set_dirty_tracking(dom, True)
        except IommuError as exc:
            raise VfioError(exc.errno, f"dirty tracking: {exc}") from exc

    async def dirty_pages_stop(self) -> None:
        dom = self._require_iommu()
        if not self.v2:
            raise VfioError(errno.EACCES, "dirty page tracking needs a type1v2 container")
        try:
            await self.vfio.iommu.set_dirty_tracking(dom, False)
        except IommuError as exc:
            raise VfioError(exc.errno, f"dirty tracking: {exc}") from exc

    async def dirty_pages_get(self, iova: int, size: int, pgsize: int = PAGE) -> list[int]:
        """VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP as a list: IOVAs of the pages of
        ``[iova, iova+size)`` written by DMA since the last call (each reported once).

        type1's rules: tracking started, ``pgsize`` the smallest IOMMU page, the range page
        aligned and made of whole mappings (a range that splits a mapping is EINVAL)."""
        dom = self._require_iommu()
        if not self.dirty_tracking:
            raise VfioError(errno.EINVAL, "dirty page tracking is not started")
        if pgsize != PAGE:
            raise VfioError(errno.EINVAL, f"bitmap page size {pgsize}: only {PAGE} is supported")
        if iova < 0 or size <= 0 or (iova | size) & (PAGE - 1) or iova + size - 1 > IOVA_LIMIT:
            raise VfioError(errno.EINVAL, "iova and size must be page aligned, size > 0")
        end = iova + size
        for m in self._maps:
            if m.iova < iova < m.iova + m.size or m.iova < end < m.iova + m.size:
                raise VfioError(errno.EINVAL, f"range 0x{iova:x}+0x{size:x} splits the mapping at 0x{m.iova:x}")
        try:
            return await self.vfio.iommu.read_and_clear_dirty(dom, iova, size)
        except IommuError as exc:
            raise VfioError(exc.errno, f"dirty bitmap: {exc}") from exc

    async def _ioctl_dirty_pages(self, arg: bytearray) -> int:
        hdr = u.VfioIommuType1DirtyBitmap.unpack(_argsz_check(arg, u.VfioIommuType1DirtyBitmap.sizeof()))
        one = (
            u.VFIO_IOMMU_DIRTY_PAGES_FLAG_START
            | u.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP
            | u.VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP
        )
        if hdr.flags & ~one or bin(hdr.flags).count("1") != 1:
            raise VfioError(errno.EINVAL, f"DIRTY_PAGES needs exactly one flag, got 0x{hdr.flags:x}")
        if hdr.flags == u.VFIO_IOMMU_DIRTY_PAGES_FLAG_START:
            await self.dirty_pages_start()
            return 0
        if hdr.flags == u.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP:
            await self.dirty_pages_stop()
            return 0
        base = u.VfioIommuType1DirtyBitmap.sizeof()
        size = u.VfioIommuType1DirtyBitmapGet.sizeof()
        if hdr.argsz < base + size or len(arg) < base + size:
            raise VfioError(errno.EINVAL, "GET_BITMAP needs a struct vfio_iommu_type1_dirty_bitmap_get")
        rng = u.VfioIommuType1DirtyBitmapGet.unpack(arg, base)
        npages = rng.size // PAGE if rng.bitmap_pgsize == PAGE else 0
        need = (npages + 63) // 64 * 8  # DIRTY_BITMAP_BYTES: whole u64 words
        if rng.bitmap_size < need:
            raise VfioError(errno.EINVAL, f"bitmap of {rng.bitmap_size} B, {need} B needed")
        pages = await self.dirty_pages_get(rng.iova, rng.size, rng.bitmap_pgsize)
        bitmap = bytearray(need)
        for va in pages:
            bit = (va - rng.iova) // PAGE
            bitmap[bit // 8] |= 1 << (bit % 8)
        self.process.write(rng.bitmap_data, bytes(bitmap))
        return 0

    async def close(self) -> None:
        """Release: unmap everything and detach the groups (the IOMMU domain goes with them)."""
        if self.domain is not None:
            await self.unmap_dma(0, 0, u.VFIO_DMA_UNMAP_FLAG_ALL)
        for g in list(self._groups):
            await self._detach_group(g)

    # ---- group plumbing -----------------------------------------------------------------------
    async def _attach_group(self, g: _GroupState) -> None:
        """Attach first, then join: a group whose device cannot attach never enters the container."""
        done: list[VfioDeviceOps] = []
        if self.domain is not None:
            try:
                for dev in g.devices.values():
                    await _attach(dev, self.domain)
                    done.append(dev)
            except BaseException:
                for dev in reversed(done):
                    await dev.detach_domain()
                raise
        self._groups.append(g)
        g.container = self

    async def _detach_group(self, g: _GroupState) -> None:
        if g.open_devices:
            raise VfioError(errno.EBUSY, f"group {g.gid} has open device fds")
        if self.domain is not None:
            for dev in g.devices.values():
                await dev.detach_domain()
        self._groups.remove(g)
        g.container = None
        if not self._groups and self.domain is not None:  # last group gone: release the IOMMU model
            for nested in self._nested:
                await self.vfio.iommu.free_domain(nested)
            self._nested.clear()
            if self._maps:
                await self.unmap_dma(0, 0, u.VFIO_DMA_UNMAP_FLAG_ALL)
            await self.vfio.iommu.free_domain(self.domain)
            self.domain = None
            self.iommu_type = None

    # ---- ioctl --------------------------------------------------------------------------------
    async def ioctl(self, request: int, arg: int | bytearray = 0) -> int:
        if request == u.VFIO_GET_API_VERSION:
            return self.get_api_version()
        if request == u.VFIO_CHECK_EXTENSION:
            assert isinstance(arg, int)
            return self.check_extension(arg)
        if request == u.VFIO_SET_IOMMU:
            assert isinstance(arg, int)
            await self.set_iommu(arg)
            return 0
        buf_ioctls = (u.VFIO_IOMMU_MAP_DMA, u.VFIO_IOMMU_UNMAP_DMA, u.VFIO_IOMMU_GET_INFO, u.VFIO_IOMMU_DIRTY_PAGES)
        if request not in buf_ioctls:
            raise VfioError(errno.ENOTTY, f"container ioctl 0x{request:x} not supported")
        if not isinstance(arg, bytearray):
            raise VfioError(errno.EFAULT, "this ioctl takes a struct buffer")
        if request == u.VFIO_IOMMU_DIRTY_PAGES:
            return await self._ioctl_dirty_pages(arg)
        if request == u.VFIO_IOMMU_MAP_DMA:
            m = u.VfioIommuType1DmaMap.unpack(_argsz_check(arg, u.VfioIommuType1DmaMap.sizeof()))
            await self.map_dma(m.vaddr, m.iova, m.size, m.flags)
            return 0
        if request == u.VFIO_IOMMU_UNMAP_DMA:
            um = u.VfioIommuType1DmaUnmap.unpack(_argsz_check(arg, u.VfioIommuType1DmaUnmap.sizeof()))
            um.size = await self.unmap_dma(um.iova, um.size, um.flags)
            arg[: u.VfioIommuType1DmaUnmap.sizeof()] = um.pack()
            return 0
        if request == u.VFIO_IOMMU_GET_INFO:
            minsz = 16  # offsetofend(struct vfio_iommu_type1_info, iova_pgsizes)
            info = u.VfioIommuType1Info.unpack(bytes(_argsz_check(arg, minsz)) + bytes(8))
            pgsizes, ranges, avail = self.get_info()
            cap1 = u.VfioIommuType1InfoCapIovaRange([u.VfioIovaRange(s, e) for s, e in ranges])
            base = u.VfioIommuType1Info.sizeof()
            cap1_len = len(cap1.pack())
            cap1.next = base + cap1_len
            cap2 = u.VfioIommuType1InfoDmaAvail(avail).pack()
            caps = cap1.pack() + cap2
            need = base + len(caps)
            info.flags = u.VFIO_IOMMU_INFO_PGSIZES | u.VFIO_IOMMU_INFO_CAPS
            info.iova_pgsizes = pgsizes
            if info.argsz >= need:
                info.cap_offset = base
                arg[base:need] = caps
            else:
                info.cap_offset = 0
                info.argsz = need
            out = info.pack()
            arg[: min(len(arg), len(out))] = out[: len(arg)]
            return 0
        raise VfioError(errno.ENOTTY, f"container ioctl 0x{request:x} not supported")


def _argsz_check(buf: bytearray, minsz: int) -> bytes:
    if len(buf) < minsz:
        raise VfioError(errno.EFAULT, f"buffer of {len(buf)} B shorter than {minsz} B")
    argsz = struct.unpack_from("<I", buf)[0]
    if argsz < minsz:
        raise VfioError(errno.EINVAL, f"argsz {argsz} < {minsz}")
    return bytes(buf)


def _check_feature(flags: int, argsz: int, supported: int, minsz: int) -> bool:
    """``vfio_check_feature``: EINVAL for an unsupported GET/SET or a short payload; False for
    a PROBE that succeeded (nothing more to do), True when the GET/SET should run."""
    if flags & (u.VFIO_DEVICE_FEATURE_GET | u.VFIO_DEVICE_FEATURE_SET) & ~supported:
        raise VfioError(errno.EINVAL, "feature does not support this GET/SET")
    if flags & u.VFIO_DEVICE_FEATURE_PROBE:
        return False
    if not flags & (u.VFIO_DEVICE_FEATURE_GET | u.VFIO_DEVICE_FEATURE_SET):
        raise VfioError(errno.EINVAL, "one of GET or SET is needed without PROBE")
    if argsz < minsz:
        raise VfioError(errno.EINVAL, f"feature payload of {argsz} B shorter than {minsz} B")
    return True


def _need(buf: bytearray, size: int) -> None:
    if len(buf) < size:
        raise VfioError(errno.EFAULT, f"buffer of {len(buf)} B shorter than {size} B")


async def _attach(dev: VfioDeviceOps, domain: IoDomain) -> None:
    """Attach a device's DMA to ``domain``; IOMMU errors come back as VfioError with their errno."""
    try:
        await dev.attach_domain(domain)
    except IommuError as exc:
        raise VfioError(exc.errno, f"{dev.name}: attach failed: {exc}") from exc


class VfioGroup:
    """An open group fd (``/dev/vfio/<gid>``); only one may exist per group at a time."""

    def __init__(self, vfio: Vfio, state: _GroupState) -> None:
        self.vfio = vfio
        self._st = state
        self._closed = False

    @property
    def gid(self) -> int:
        return self._st.gid

    def _live(self) -> _GroupState:
        if self._closed:
            raise VfioError(errno.EBADF, f"group {self.gid} fd closed")
        return self._st

    def get_status(self) -> int:
        flags = u.VFIO_GROUP_FLAGS_VIABLE
        if self._live().container is not None:
            flags |= u.VFIO_GROUP_FLAGS_CONTAINER_SET
        return flags

    async def set_container(self, container: VfioContainer) -> None:
        st = self._live()
        if st.container is not None:
            raise VfioError(errno.EBUSY, f"group {self.gid} already in a container")
        if container.iommu_type is not None and container.domain is None:
            raise VfioError(errno.EINVAL, "container in an inconsistent state")
        await container._attach_group(st)

    async def unset_container(self) -> None:
        st = self._live()
        if st.container is None:
            raise VfioError(errno.EINVAL, f"group {self.gid} is not in a container")
        await st.container._detach_group(st)

    def get_device_fd(self, name: str) -> VfioDevice:
        st = self._live()
        c = st.container
        if c is None or c.domain is None:
            raise VfioError(errno.EINVAL, "group not in a container with an IOMMU model set")
        dev = st.devices.get(name)
        if dev is None:
            raise VfioError(errno.ENODEV, f"no device {name!r} in group {self.gid}")
        st.open_devices[name] = st.open_devices.get(name, 0) + 1
        return VfioDevice(dev, st, self.vfio.eventfds, self.vfio.files)

    async def close(self) -> None:
        """close(2) of the group fd. Device fds hold the group: its release (leaving the
        container, as ``vfio_group_fops_release`` does) happens when the last of them closes."""
        if self._closed:
            return
        self._closed = True
        self._st.fd_open = False
        if not self._st.open_devices:
            await _release_group(self._st)

    async def ioctl(self, request: int, arg: int | bytearray | VfioContainer | str = 0) -> int | VfioDevice:
        if request == u.VFIO_GROUP_GET_STATUS:
            assert isinstance(arg, bytearray)
            st = u.VfioGroupStatus.unpack(_argsz_check(arg, u.VfioGroupStatus.sizeof()))
            st.flags = self.get_status()
            arg[: u.VfioGroupStatus.sizeof()] = st.pack()
            return 0
        if request == u.VFIO_GROUP_SET_CONTAINER:
            assert isinstance(arg, VfioContainer)
            await self.set_container(arg)
            return 0
        if request == u.VFIO_GROUP_UNSET_CONTAINER:
            await self.unset_container()
            return 0
        if request == u.VFIO_GROUP_GET_DEVICE_FD:
            assert isinstance(arg, str)
            return self.get_device_fd(arg)
        raise VfioError(errno.ENOTTY, f"group ioctl 0x{request:x} not supported")


async def _release_group(st: _GroupState) -> None:
    """Group fd and every device fd closed: leave the container (its devices detach)."""
    if st.container is not None:
        await st.container._detach_group(st)


class VfioDevice:
    """An open device fd."""

    def __init__(
        self,
        ops: VfioDeviceOps,
        group: _GroupState | None = None,
        eventfds: EventFds | None = None,
        files: FileTable | None = None,
    ) -> None:
        self.ops = ops
        self._group = group
        self._eventfds = eventfds
        self._files = files if files is not None else FileTable()
        self._closed = False

    @property
    def name(self) -> str:
        return self.ops.name

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """close(2) of the device fd; the last close does what vfio-pci's ``close_device`` does:
        interrupts disabled (every trigger de-assigned, host vectors freed), the device reset,
        the user's mmaps of it revoked. Then a group fd already closed is released."""
        if self._closed:
            return
        self._closed = True
        g = self._group
        last = True
        if g is not None:
            n = g.open_devices.get(self.name, 0) - 1
            if n > 0:
                g.open_devices[self.name] = n
                last = False
            else:
                g.open_devices.pop(self.name, None)
        if last:
            await self.ops.close_device()
        if g is not None and not g.opened:
            await _release_group(g)

    def _live(self) -> VfioDeviceOps:
        if self._closed:
            raise VfioError(errno.EBADF, "device fd closed")
        return self.ops

    # ---- python verbs -----------------------------------------------------------------------
    def get_info(self) -> tuple[int, int, int]:
        """(flags, num_regions, num_irqs)."""
        ops = self._live()
        return u.VFIO_DEVICE_FLAGS_PCI | u.VFIO_DEVICE_FLAGS_RESET, ops.num_regions, ops.num_irqs

    def get_region_info(self, index: int) -> RegionInfo:
        ops = self._live()
        if not 0 <= index < ops.num_regions:
            raise VfioError(errno.EINVAL, f"region index {index} out of range")
        return ops.region_info(index)

    def get_irq_info(self, index: int) -> IrqInfo:
        ops = self._live()
        if not 0 <= index < ops.num_irqs:
            raise VfioError(errno.EINVAL, f"irq index {index} out of range")
        return ops.irq_info(index)

    async def set_irqs(
        self,
        index: int,
        flags: int,
        start: int,
        count: int,
        data: Sequence[IrqCallback | None] | Sequence[bool] | None = None,
    ) -> None:
        """VFIO_DEVICE_SET_IRQS; DATA_EVENTFD carries callbacks (None = de-assign, as fd -1)."""
        ops = self._live()
        info = self.get_irq_info(index)
        dtype = flags & u.VFIO_IRQ_SET_DATA_TYPE_MASK
        action = flags & u.VFIO_IRQ_SET_ACTION_TYPE_MASK
        if bin(dtype).count("1") != 1 or bin(action).count("1") != 1:
            raise VfioError(errno.EINVAL, "exactly one DATA_ and one ACTION_ flag")
        if flags & ~(u.VFIO_IRQ_SET_DATA_TYPE_MASK | u.VFIO_IRQ_SET_ACTION_TYPE_MASK):
            raise VfioError(errno.EINVAL, f"unknown SET_IRQS flags 0x{flags:x}")
        if info.count == 0:
            raise VfioError(errno.EINVAL, f"irq index {index} has no vectors")
        # vfio_set_irqs_validate_and_prepare: start must name a vector, the range must fit
        if start < 0 or count < 0 or start >= info.count or start + count > info.count:
            raise VfioError(errno.EINVAL, f"vectors {start}+{count} not within the index's {info.count}")
        if count == 0 and dtype != u.VFIO_IRQ_SET_DATA_NONE:
            raise VfioError(errno.EINVAL, "count 0 only with DATA_NONE")
        if dtype != u.VFIO_IRQ_SET_DATA_NONE and (data is None or len(data) != count):
            raise VfioError(errno.EINVAL, "data must have one element per vector")
        if action == u.VFIO_IRQ_SET_ACTION_TRIGGER:
            if dtype == u.VFIO_IRQ_SET_DATA_EVENTFD:
                assert data is not None
                cbs: list[IrqCallback | None] = []
                for d in data:
                    if d is not None and not callable(d):
                        raise VfioError(errno.EINVAL, "DATA_EVENTFD needs callables (or None)")
                    cbs.append(d if callable(d) else None)
                await ops.set_irq_callbacks(index, start, cbs)
            elif dtype == u.VFIO_IRQ_SET_DATA_NONE:
                if count == 0:  # disable the whole index
                    await ops.set_irq_callbacks(index, 0, [])
                else:
                    ops.trigger_irqs(index, start, count)
            else:  # DATA_BOOL: trigger where True
                assert data is not None
                for i, d in enumerate(data):
                    if d is True:
                        ops.trigger_irqs(index, start + i, 1)
        else:
            if not info.flags & u.VFIO_IRQ_INFO_MASKABLE:
                raise VfioError(errno.EINVAL, f"irq index {index} is not maskable")
            mask = action == u.VFIO_IRQ_SET_ACTION_MASK
            if dtype == u.VFIO_IRQ_SET_DATA_BOOL:
                assert data is not None
                for i, d in enumerate(data):
                    if d is True:
                        ops.mask_irqs(index, start + i, 1, mask)
            elif dtype == u.VFIO_IRQ_SET_DATA_NONE:
                ops.mask_irqs(index, start, count, mask)
            else:
                raise VfioError(errno.EINVAL, "mask/unmask by eventfd (irqfd) not supported")

    async def reset(self) -> None:
        await self._live().reset()

    # ---- migration v2 (VFIO_DEVICE_FEATURE) -----------------------------------------------------
    def _mig_ops(self) -> VfioMigrationOps:
        ops = self._live()
        if not isinstance(ops, VfioMigrationOps) or not ops.migration_flags:
            raise VfioError(errno.ENOTTY, f"{self.name}: no migration support")
        return ops

    def migration_flags(self) -> int:
        """GET of VFIO_DEVICE_FEATURE_MIGRATION: VFIO_MIGRATION_* flags (ENOTTY: not migratable)."""
        return self._mig_ops().migration_flags

    def get_mig_state(self) -> int:
        """GET of VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE."""
        return self._mig_ops().migration_state

    async def set_mig_state(self, new: int) -> MigrationFile | None:
        """SET of VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE: walk the arcs to ``new`` one at a time
        (``vfio_mig_get_next_state``); returns the data fd the last arc opened, if any. On
        failure the device is in a state along the path (or ERROR) and the error is raised."""
        ops = self._mig_ops()
        got: MigrationFile | None = None
        while ops.migration_state != new:
            nxt = mig_get_next_state(ops.migration_flags, ops.migration_state, new)
            f = await ops.migration_arc(nxt)
            if f is not None:
                got = f
        if got is not None and got.disabled:  # a later arc of the path ended the session
            got = None
        return got

    async def _ioctl_feature(self, arg: bytearray) -> int:
        """``vfio_ioctl_device_feature``: flag checks, then the feature's GET/SET/PROBE."""
        hdr = u.VfioDeviceFeature.unpack(_argsz_check(arg, u.VfioDeviceFeature.sizeof()))
        known = u.VFIO_DEVICE_FEATURE_MASK | u.VFIO_DEVICE_FEATURE_GET | u.VFIO_DEVICE_FEATURE_SET
        known |= u.VFIO_DEVICE_FEATURE_PROBE
        if hdr.flags & ~known:
            raise VfioError(errno.EINVAL, f"unknown VFIO_DEVICE_FEATURE flags 0x{hdr.flags:x}")
        get, set_ = bool(hdr.flags & u.VFIO_DEVICE_FEATURE_GET), bool(hdr.flags & u.VFIO_DEVICE_FEATURE_SET)
        probe = bool(hdr.flags & u.VFIO_DEVICE_FEATURE_PROBE)
        if get and set_ and not probe:
            raise VfioError(errno.EINVAL, "GET and SET together only with PROBE")
        feature = hdr.flags & u.VFIO_DEVICE_FEATURE_MASK
        base = u.VfioDeviceFeature.sizeof()
        data_len = hdr.argsz - base
        if feature == u.VFIO_DEVICE_FEATURE_MIGRATION:
            self._mig_ops()
            if not _check_feature(
                hdr.flags, data_len, u.VFIO_DEVICE_FEATURE_GET, u.VfioDeviceFeatureMigration.sizeof()
            ):
                return 0
            out = u.VfioDeviceFeatureMigration(self.migration_flags()).pack()
            _need(arg, base + len(out))
            arg[base : base + len(out)] = out
            return 0
        if feature == u.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
            self._mig_ops()
            both = u.VFIO_DEVICE_FEATURE_GET | u.VFIO_DEVICE_FEATURE_SET
            size = u.VfioDeviceFeatureMigState.sizeof()
            if not _check_feature(hdr.flags, data_len, both, size):
                return 0
            _need(arg, base + size)
            mig = u.VfioDeviceFeatureMigState.unpack(arg, base)
            if get:
                mig = u.VfioDeviceFeatureMigState(self.get_mig_state(), -1)
            else:
                f = await self.set_mig_state(mig.device_state)
                mig = u.VfioDeviceFeatureMigState(mig.device_state, -1 if f is None else self._files.install(f))
            arg[base : base + size] = mig.pack()
            return 0
        raise VfioError(errno.EINVAL, f"device feature {feature} not supported")

    async def attach_pt(self, domain: IoDomain) -> None:
        """Switch the device's DMA to another page table of its container (``VFIO_DEVICE_ATTACH_
        IOMMUFD_PT`` on a device that is attached already = iommufd's HWPT *replace*): the PASID
        entry is replaced in place and the caches invalidated; queues the guest runs keep
        running, their next DMA is translated by the new table."""
        ops = self._live()
        c = self._group.container if self._group is not None else None
        if c is None or not c.owns_domain(domain):
            raise VfioError(errno.EINVAL, "page table does not belong to this device's container")
        try:
            await ops.replace_domain(domain)
        except IommuError as exc:
            raise VfioError(exc.errno, f"ATTACH_PT: {exc}") from exc

    async def pread(self, offset: int, length: int) -> bytes:
        index, off = u.VFIO_PCI_OFFSET_TO_INDEX(offset), offset & u.VFIO_PCI_OFFSET_MASK
        info = self.get_region_info(index)
        if not info.flags & u.VFIO_REGION_INFO_FLAG_READ or off + length > info.size or length <= 0:
            raise VfioError(errno.EINVAL, f"read region {index} 0x{off:x}+{length} not allowed")
        return await self._live().region_read(index, off, length)

    async def pwrite(self, offset: int, data: bytes) -> int:
        index, off = u.VFIO_PCI_OFFSET_TO_INDEX(offset), offset & u.VFIO_PCI_OFFSET_MASK
        info = self.get_region_info(index)
        if not info.flags & u.VFIO_REGION_INFO_FLAG_WRITE or off + len(data) > info.size or not data:
            raise VfioError(errno.EINVAL, f"write region {index} 0x{off:x}+{len(data)} not allowed")
        await self._live().region_write(index, off, data)
        return len(data)

    def mmap(self, offset: int, size: int) -> MmioMapping:
        index, off = u.VFIO_PCI_OFFSET_TO_INDEX(offset), offset & u.VFIO_PCI_OFFSET_MASK
        info = self.get_region_info(index)
        if not info.flags & u.VFIO_REGION_INFO_FLAG_MMAP:
            raise VfioError(errno.EINVAL, f"region {index} is not mmap-able")
        if size <= 0 or (off | size) & (PAGE - 1):
            raise VfioError(errno.EINVAL, "mmap offset and size must be page aligned")
        if info.sparse_mmap and not any(o <= off and off + size <= o + s for o, s in info.sparse_mmap):
            raise VfioError(errno.EINVAL, f"0x{off:x}+0x{size:x} is not inside a sparse-mmap area")
        return self._live().region_mmap(index, off, size)

    # read/write helpers for regions (what QEMU/DPDK wrap around pread/pwrite)
    async def region_read32(self, index: int, off: int) -> int:
        return int.from_bytes(await self.pread(u.VFIO_PCI_INDEX_TO_OFFSET(index) + off, 4), "little")

    async def region_write32(self, index: int, off: int, value: int) -> None:
        await self.pwrite(u.VFIO_PCI_INDEX_TO_OFFSET(index) + off, (value & 0xFFFF_FFFF).to_bytes(4, "little"))

    async def region_write64(self, index: int, off: int, value: int) -> None:
        await self.pwrite(u.VFIO_PCI_INDEX_TO_OFFSET(index) + off, value.to_bytes(8, "little"))

    async def _ioctl_set_irqs(self, arg: bytearray) -> None:
        hdr = u.VfioIrqSet.unpack(_argsz_check(arg, u.VfioIrqSet.sizeof()))
        base = u.VfioIrqSet.sizeof()
        dtype = hdr.flags & u.VFIO_IRQ_SET_DATA_TYPE_MASK
        data: list[IrqCallback | None] | list[bool] | None = None
        if dtype == u.VFIO_IRQ_SET_DATA_EVENTFD:
            if hdr.argsz < base + 4 * hdr.count or len(arg) < base + 4 * hdr.count:
                raise VfioError(errno.EINVAL, "argsz too small for the eventfd array")
            if self._eventfds is None:
                raise VfioError(errno.EINVAL, "no eventfd table for this device")
            fds = struct.unpack_from(f"<{hdr.count}i", arg, base)
            data = [None if fd < 0 else self._eventfds.get(fd) for fd in fds]
        elif dtype == u.VFIO_IRQ_SET_DATA_BOOL:
            if hdr.argsz < base + hdr.count or len(arg) < base + hdr.count:
                raise VfioError(errno.EINVAL, "argsz too small for the bool array")
            data = [bool(b) for b in arg[base : base + hdr.count]]
        await self.set_irqs(hdr.index, hdr.flags, hdr.start, hdr.count, data)

    # ---- ioctl --------------------------------------------------------------------------------
    async def ioctl(self, request: int, arg: bytearray | None = None) -> int:
        if request == u.VFIO_DEVICE_RESET:
            await self.reset()
            return 0
        if request == u.VFIO_DEVICE_FEATURE:
            if arg is None:
                raise VfioError(errno.EFAULT, "VFIO_DEVICE_FEATURE takes a struct buffer")
            return await self._ioctl_feature(arg)
        if request not in (
            u.VFIO_DEVICE_GET_INFO,
            u.VFIO_DEVICE_GET_REGION_INFO,
            u.VFIO_DEVICE_GET_IRQ_INFO,
            u.VFIO_DEVICE_SET_IRQS,
        ):
            raise VfioError(errno.ENOTTY, f"device ioctl 0x{request:x} not supported")
        if arg is None:
            raise VfioError(errno.EFAULT, "this ioctl takes a struct buffer")
        if request == u.VFIO_DEVICE_SET_IRQS:
            await self._ioctl_set_irqs(arg)
            return 0
        if request == u.VFIO_DEVICE_GET_INFO:
            minsz = 16  # offsetofend(struct vfio_device_info, num_irqs)
            d = u.VfioDeviceInfo.unpack(_argsz_check(arg, minsz) + bytes(4))
            d.flags, d.num_regions, d.num_irqs = self.get_info()
            out = d.pack()[: min(len(arg), u.VfioDeviceInfo.sizeof())]
            arg[: len(out)] = out
            return 0
        if request == u.VFIO_DEVICE_GET_REGION_INFO:
            r = u.VfioRegionInfo.unpack(_argsz_check(arg, u.VfioRegionInfo.sizeof()))
            info = self.get_region_info(r.index)
            r.flags, r.size, r.cap_offset = info.flags, info.size, 0
            r.offset = u.VFIO_PCI_INDEX_TO_OFFSET(r.index)
            if info.sparse_mmap:
                cap = u.VfioRegionInfoCapSparseMmap(
                    [u.VfioRegionSparseMmapArea(o, s) for o, s in info.sparse_mmap]
                ).pack()
                base = u.VfioRegionInfo.sizeof()
                r.flags |= u.VFIO_REGION_INFO_FLAG_CAPS
                if r.argsz >= base + len(cap) and len(arg) >= base + len(cap):
                    r.cap_offset = base
                    arg[base : base + len(cap)] = cap
                else:  # tell the caller how much to allocate, as the kernel does
                    r.argsz = base + len(cap)
            arg[: u.VfioRegionInfo.sizeof()] = r.pack()
            return 0
        if request == u.VFIO_DEVICE_GET_IRQ_INFO:
            q = u.VfioIrqInfo.unpack(_argsz_check(arg, u.VfioIrqInfo.sizeof()))
            ii = self.get_irq_info(q.index)
            q.flags, q.count = ii.flags, ii.count
            arg[: u.VfioIrqInfo.sizeof()] = q.pack()
            return 0
        raise VfioError(errno.ENOTTY, f"device ioctl 0x{request:x} not supported")
