"""Host IOMMU driver (Linux intel-iommu style) for the VT-d scalable-mode unit.

See the package docstring for the API. Register access only through ``HostBus.mmio_*`` at
``base``; tables through ``bus.mem``/``bus.alloc``; interrupts through ``bus.alloc_irq``.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from siov_sim.sw.bus import Event, HostBus, MsiMessage, mmio_read32, mmio_read64, mmio_write32, mmio_write64
from siov_sim.sw.iommu import descs
from siov_sim.sw.iommu.pagetable import PAGE, AlreadyMapped, HostTableSpace, Mapping, PageTable, PteFormat

IOMMU_BASE = 0xFED9_0000

# register offsets (VT-d §11.4)
VER, CAP, ECAP, GCMD, GSTS, RTADDR = 0x0, 0x8, 0x10, 0x18, 0x1C, 0x20
FSTS, FECTL, FEDATA, FEADDR, FEUADDR = 0x34, 0x38, 0x3C, 0x40, 0x44
IQH, IQT, IQA, ICS, IQERCD = 0x80, 0x88, 0x90, 0x9C, 0xB0
GCMD_TE, GCMD_SRTP, GCMD_QIE = 1 << 31, 1 << 30, 1 << 26
GSTS_PRESERVE = 0x96FF_FFFF  # one-shot bits stripped when turning status into a command
FSTS_PFO, FSTS_PPF, FSTS_IQE, FSTS_ICE, FSTS_ITE = 1, 2, 1 << 4, 1 << 5, 1 << 6
TTM_SCALABLE = 1 << 10
PASID_MAX = (1 << 20) - 1
FLPT_DEFAULT_DID = 1  # Linux: DID for pass-through entries


class IommuError(Exception):
    """The IOMMU did not respond as expected, reported an error, or an argument is invalid.

    ``errno`` is what Linux's IOMMU API would return for it (``-EEXIST`` for a range that is
    already mapped, ``-EINVAL`` for a bad argument, ``-EIO`` for a unit that misbehaved), so a
    caller such as VFIO can hand it on unchanged.
    """

    def __init__(self, msg: str, err: int = errno.EIO) -> None:
        super().__init__(msg)
        self.errno = err


class DomainKind(Enum):
    FIRST_STAGE = 1
    SECOND_STAGE = 2
    NESTED = 3
    PASS_THROUGH = 4


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """One fault read back from an FRCD register."""

    sid: int
    pasid: int | None
    addr: int
    reason: int
    write: bool
    priv: bool
    exe: bool


@dataclass(frozen=True, slots=True)
class HwCaps:
    """What the driver reads from CAP/ECAP at bring-up."""

    cap: int
    ecap: int

    @property
    def nfr(self) -> int:
        return (self.cap >> 40 & 0xFF) + 1

    @property
    def fro(self) -> int:
        return (self.cap >> 24 & 0x3FF) * 16

    @property
    def mamv(self) -> int:
        return self.cap >> 48 & 0x3F

    @property
    def caching_mode(self) -> bool:
        return bool(self.cap >> 7 & 1)

    @property
    def esrtps(self) -> bool:
        return bool(self.cap >> 63)

    @property
    def sagaw(self) -> int:
        return self.cap >> 8 & 0x1F

    @property
    def fs1gp(self) -> bool:
        return bool(self.cap >> 56 & 1)

    @property
    def fs5lp(self) -> bool:
        return bool(self.cap >> 60 & 1)

    @property
    def sslps(self) -> int:
        return self.cap >> 34 & 0xF

    @property
    def smts(self) -> bool:
        return bool(self.ecap >> 43 & 1)

    @property
    def qi(self) -> bool:
        return bool(self.ecap >> 1 & 1)

    @property
    def dt(self) -> bool:
        return bool(self.ecap >> 2 & 1)

    @property
    def nest(self) -> bool:
        return bool(self.ecap >> 26 & 1)

    @property
    def smpwc(self) -> bool:
        return bool(self.ecap >> 48 & 1)

    @property
    def ssads(self) -> bool:
        """Second-stage Accessed/Dirty support (SSADE may be set in a PASID entry)."""
        return bool(self.ecap >> 45 & 1)


@dataclass
class Domain:
    """An I/O address space with one DID; attached (sid, pasid) pairs are invalidated on unmap."""

    driver: IommuDriver
    did: int
    kind: DomainKind
    pgtable: PageTable | None
    parent: Domain | None = None
    devices: set[tuple[int, int]] = field(default_factory=set)
    children: list[Domain] = field(default_factory=list)
    #: nested domain whose first stage belongs to a guest (iommufd ``IOMMU_HWPT_DATA_VTD_S1``):
    #: the guest-physical address of its root table and its paging levels; the host never writes it
    user_fs_root: int | None = None
    user_fs_levels: int = 4
    #: second stage: SSADE is set in every PASID entry that uses this table (dirty tracking)
    dirty_tracking: bool = False

    @property
    def levels(self) -> int:
        if self.pgtable is not None:
            return self.pgtable.levels
        return self.user_fs_levels if self.user_fs_root is not None else 0

    @property
    def fs_root(self) -> int:
        """What the PASID entry's first-stage pointer holds (a GPA for nested domains)."""
        if self.pgtable is not None:
            return self.pgtable.root
        if self.user_fs_root is None:
            raise IommuError(f"{self.kind.name} domain {self.did} has no first-stage table", errno.EINVAL)
        return self.user_fs_root

    def map(self, iova: int, hpa: int, size: int, *, read: bool = True, write: bool = True, user: bool = True) -> None:
        """Map ``[iova, iova+size)`` -> ``[hpa, ...)`` (not-present -> present: no invalidation)."""
        if self.pgtable is None:
            raise IommuError(f"{self.kind.name} domain {self.did}: no host-managed page table", errno.EINVAL)
        try:
            self.pgtable.map(iova, hpa, size, read=read, write=write, user=user)
        except AlreadyMapped as e:
            raise IommuError(str(e), errno.EEXIST) from e
        except ValueError as e:
            raise IommuError(str(e), errno.EINVAL) from e

    async def unmap(self, iova: int, size: int) -> None:
        """Clear the PTEs, invalidate every attached (sid, pasid) and wait, then free tables."""
        if self.pgtable is None:
            raise IommuError(f"{self.kind.name} domain {self.did}: no host-managed page table", errno.EINVAL)
        try:
            freed = self.pgtable.unmap(iova, size)
        except ValueError as e:
            raise IommuError(str(e), errno.EINVAL) from e
        await self.driver.flush_range(self, iova, size)
        self.pgtable.free_tables(freed)

    def lookup(self, iova: int) -> Mapping | None:
        return self.pgtable.lookup(iova) if self.pgtable is not None else None


class NestedTableSpace:
    """First-stage tables of a nested domain: host pages mapped into the parent at a GPA.

    A freed table keeps its parent mapping and is reused by the next allocation; the pages and
    their parent mappings go away in :meth:`release` (when the nested domain is freed).
    """

    def __init__(self, driver: IommuDriver, parent: Domain, gpa_offset: int) -> None:
        self._drv = driver
        self._parent = parent
        self._offset = gpa_offset
        self._spare: list[int] = []  # GPAs of freed tables
        self._all: list[int] = []

    def alloc_table(self) -> tuple[int, int]:
        mem = self._drv.bus.mem
        if self._spare:
            gpa = self._spare.pop()
            mem.fill(gpa - self._offset, PAGE, 0)
            return gpa, gpa - self._offset
        hpa = self._drv.bus.alloc.alloc(PAGE)
        mem.fill(hpa, PAGE, 0)
        gpa = hpa + self._offset
        self._parent.map(gpa, hpa, PAGE, read=True, write=True)
        self._all.append(gpa)
        return gpa, hpa

    def free_table(self, stored: int) -> None:
        self._spare.append(stored)

    async def release(self) -> None:
        for gpa in self._all:
            await self._parent.unmap(gpa, PAGE)
            self._drv.bus.alloc.free(gpa - self._offset)
        self._all.clear()
        self._spare.clear()


@dataclass
class _Device:
    sid: int
    ctx_addr: int
    pasid_dir: int
    pdts: int
    pasid_tables: dict[int, int] = field(default_factory=dict)  # dir index -> PASID table HPA
    bound: dict[int, Domain] = field(default_factory=dict)  # pasid -> domain


class IommuDriver:
    """Drives one VT-d unit in scalable mode the way Linux does (see package docstring)."""

    def __init__(
        self,
        bus: HostBus,
        base: int = IOMMU_BASE,
        *,
        qs: int = 1,
        pdts: int = 7,
        poll_limit: int = 1000,
        poll_ns: float = 10.0,
        preset_ad: bool = False,
        nested_gpa_offset: int = 1 << 40,
        name: str = "dmar0",
    ) -> None:
        self.bus = bus
        self.base = base
        self.qs = qs
        self.pdts = pdts
        self.poll_limit = poll_limit
        self.poll_ns = poll_ns
        self.preset_ad = preset_ad
        self.nested_gpa_offset = nested_gpa_offset
        self.log = logging.getLogger(f"{__name__}.{name}")
        self.hw: HwCaps | None = None
        self.root = 0
        self._ctx_tables: dict[tuple[int, bool], int] = {}  # (bus, upper) -> context table
        self._devices: dict[int, _Device] = {}
        self._next_did = 2  # 0: reserved (caching mode), 1: pass-through/default
        self._free_dids: list[int] = []
        self._iq = 0
        self._iq_size = 0
        self._iq_tail = 0
        self._status = 0
        self._fault_msg: MsiMessage | None = None
        self.fault_irqs = 0
        self.faults: list[FaultRecord] = []
        self.fault_handlers: list[Callable[[FaultRecord], None]] = []  # called by drain_faults()
        self.fault_pending: Event | None = None  # set by the fault interrupt, cleared by drain_faults()
        self.up = False

    # ------------------------------------------------------------------ registers
    async def _r32(self, off: int) -> int:
        return await mmio_read32(self.bus, self.base + off)

    async def _r64(self, off: int) -> int:
        return await mmio_read64(self.bus, self.base + off)

    async def _w32(self, off: int, v: int) -> None:
        await mmio_write32(self.bus, self.base + off, v)

    async def _w64(self, off: int, v: int) -> None:
        await mmio_write64(self.bus, self.base + off, v)

    async def _gcmd(self, bit: int, on: bool) -> None:
        """GCMD = (GSTS & preserve) | bit (or without it), then poll GSTS until it reflects it."""
        sts = await self._r32(GSTS) & GSTS_PRESERVE
        cmd = sts | bit if on else sts & ~bit
        await self._w32(GCMD, cmd)
        for _ in range(self.poll_limit):
            if bool(await self._r32(GSTS) & bit) == on:
                return
            await self.bus.runtime.sleep(self.poll_ns)
        raise IommuError(f"GSTS bit 0x{bit:x} did not become {int(on)}")

    @property
    def caps(self) -> HwCaps:
        if self.hw is None:
            raise IommuError("bring_up() first")
        return self.hw

    # ------------------------------------------------------------------ bring-up
    async def bring_up(self) -> None:
        """Root table, QI, root pointer, fault interrupt, global invalidation, translation on."""
        self.hw = HwCaps(await self._r64(CAP), await self._r64(ECAP))
        hw = self.hw
        if not (hw.smts and hw.qi):
            raise IommuError("unit does not support scalable mode with queued invalidation")
        self.log.info(
            "VT-d unit at 0x%x: VER=0x%x CAP=0x%x ECAP=0x%x", self.base, await self._r32(VER), hw.cap, hw.ecap
        )
        mem, alloc = self.bus.mem, self.bus.alloc
        self.root = alloc.alloc(PAGE)
        mem.fill(self.root, PAGE, 0)
        self._status = alloc.alloc(PAGE)
        mem.fill(self._status, PAGE, 0)
        await self._enable_qi()
        await self._set_root_entry()
        await self._setup_fault_irq()
        await self._gcmd(GCMD_TE, True)
        self.up = True
        self.log.info("translation enabled")

    async def _enable_qi(self) -> None:
        self._iq_size = PAGE << self.qs
        self._iq = self.bus.alloc.alloc(self._iq_size, align=self._iq_size)
        self.bus.mem.fill(self._iq, self._iq_size, 0)
        self._iq_tail = 0
        await self._w64(IQT, 0)
        await self._w64(IQA, self._iq | 1 << 11 | self.qs)  # DW=1: 256-bit descriptors
        await self._gcmd(GCMD_QIE, True)

    async def _set_root_entry(self) -> None:
        await self._w64(RTADDR, self.root | TTM_SCALABLE)
        sts = await self._r32(GSTS) & GSTS_PRESERVE
        await self._w32(GCMD, sts | GCMD_SRTP)
        for _ in range(self.poll_limit):
            if await self._r32(GSTS) & GCMD_SRTP:
                break
            await self.bus.runtime.sleep(self.poll_ns)
        else:
            raise IommuError("RTPS not set after SRTP")
        if not self.caps.esrtps:
            await self.qi_submit_sync([descs.cc_global(), descs.pc_global(), descs.iotlb_global()])

    async def _setup_fault_irq(self) -> None:
        self.fault_pending = self.bus.runtime.event()
        self._fault_msg = self.bus.alloc_irq(self._fault_irq)
        await self.drain_faults()  # clear anything left from before
        await self._w32(FEDATA, self._fault_msg.data)
        await self._w32(FEADDR, self._fault_msg.addr & 0xFFFF_FFFF)
        await self._w32(FEUADDR, self._fault_msg.addr >> 32)
        await self._w32(FECTL, 0)  # unmask

    def _fault_irq(self, msg: MsiMessage) -> None:
        """Interrupt context: only note it; ``await drain_faults()`` reads the records."""
        self.fault_irqs += 1
        if self.fault_pending is not None:
            self.fault_pending.set()
        self.log.info("fault event interrupt (%d)", self.fault_irqs)

    async def shutdown(self) -> None:
        """Translation off, QI off, every table freed."""
        for sid in list(self._devices):
            await self.detach_device(sid)
        await self._gcmd(GCMD_TE, False)
        await self._gcmd(GCMD_QIE, False)
        await self._w32(FECTL, 1 << 31)
        if self._fault_msg is not None:
            self.bus.free_irq(self._fault_msg)
            self._fault_msg = None
        alloc = self.bus.alloc
        for t in self._ctx_tables.values():
            alloc.free(t)
        self._ctx_tables.clear()
        for a in (self.root, self._iq, self._status):
            if a:
                alloc.free(a)
        self.root = self._iq = self._status = 0
        self.up = False

    # ------------------------------------------------------------------ queued invalidation
    async def qi_submit_sync(self, batch: list[bytes]) -> None:
        """Queue descriptors + an inv-wait (status write), advance IQT, poll the status slot."""
        mem = self.bus.mem
        n = len(batch) + 1
        if n * 32 >= self._iq_size:
            raise IommuError("invalidation batch larger than the queue")
        for _ in range(self.poll_limit):  # room for n descriptors (one slot always kept empty)
            head = await self._r64(IQH)
            used = (self._iq_tail - head) % self._iq_size
            if self._iq_size - used - 32 >= n * 32:
                break
            await self.bus.runtime.sleep(self.poll_ns)
        else:
            raise IommuError("invalidation queue full")
        slot = self._status + (self._iq_tail // 32 % (PAGE // 4)) * 4
        mem.write_u32(slot, descs.QI_IN_USE)
        wait = descs.inv_wait(slot, descs.QI_DONE)
        start = self._iq_tail
        for d in [*batch, wait]:
            mem.write(self._iq + self._iq_tail, d)
            self._iq_tail = (self._iq_tail + 32) % self._iq_size
        await self._w64(IQT, self._iq_tail)
        for _ in range(self.poll_limit):
            if mem.read_u32(slot) == descs.QI_DONE:
                return
            fsts = await self._r32(FSTS)
            if fsts & FSTS_IQE:
                await self._recover_iqe(start, wait)
                raise IommuError(f"invalidation queue error (IQERCD=0x{await self._r64(IQERCD):x})")
            await self.bus.runtime.sleep(self.poll_ns)
        raise IommuError("invalidation wait descriptor did not complete")

    async def _recover_iqe(self, start: int, wait: bytes) -> None:
        """Linux qi_check_fault: overwrite the bad descriptor with the wait, clear IQE."""
        head = await self._r64(IQH)
        self.log.error("IQE at queue offset 0x%x (batch started at 0x%x)", head, start)
        self.bus.mem.write(self._iq + head, wait)
        await self._w32(FSTS, FSTS_IQE)

    async def flush_range(self, domain: Domain, iova: int, size: int) -> None:
        """IOTLB invalidation after an unmap: PSI per DID (SS) or per PASID (FS/nested), then wait."""
        batch: list[bytes] = []
        addr, am = descs.addr_mask_for(iova & ((1 << 64) - 1), size)
        if domain.kind is DomainKind.SECOND_STAGE:
            if am > self.caps.mamv:
                batch.append(descs.iotlb_dsi(domain.did))
            else:
                batch.append(descs.iotlb_psi(domain.did, addr, am))
            for child in domain.children:  # nested users of this SS table share its DID
                for sid, pasid in sorted(child.devices):
                    batch.append(descs.p_devtlb(sid, pasid))
        else:
            for _sid, pasid in sorted(domain.devices):
                batch.append(descs.piotlb_page(domain.did, pasid, addr, am))
        if self.caps.dt:
            for sid, pasid in sorted(domain.devices):
                batch.append(descs.p_devtlb(sid, pasid, addr, 1 << (12 + am)))
        if batch:
            await self.qi_submit_sync(batch)

    # ------------------------------------------------------------------ domains
    def _alloc_did(self) -> int:
        if self._free_dids:
            return self._free_dids.pop()
        did = self._next_did
        self._next_did += 1
        if did >= 1 << 16:
            raise IommuError("out of domain ids")
        return did

    def alloc_domain(
        self,
        kind: DomainKind,
        *,
        levels: int | None = None,
        parent: Domain | None = None,
        user_fs_root: int | None = None,
    ) -> Domain:
        """A new domain: FS ``levels`` 4 (default) or 5; SS 3/4 (default)/5; NESTED needs an SS parent.

        NESTED with ``user_fs_root`` (a GPA): the first stage is a table the guest built in its
        own memory (iommufd's nested HWPT); the host only points the PASID entry at it and
        forwards the guest's invalidations (:meth:`invalidate_user`). Without it the host builds
        the first-stage tables itself at GPAs it maps into the parent (:class:`NestedTableSpace`).
        """
        hw = self.caps
        mem = self.bus.mem
        space = HostTableSpace(mem, self.bus.alloc)
        fs_shifts = (12, 21, 30) if hw.fs1gp else (12, 21)
        ss_shifts = (12,) + ((21,) if hw.sslps & 1 else ()) + ((30,) if hw.sslps & 2 else ())
        if kind is DomainKind.PASS_THROUGH:
            return Domain(self, FLPT_DEFAULT_DID, kind, None)
        if kind is DomainKind.FIRST_STAGE:
            lv = levels or 4
            if lv == 5 and not hw.fs5lp:
                raise IommuError("5-level first-stage paging not supported")
            pt = PageTable(mem, space, PteFormat.FIRST_STAGE, lv, fs_shifts, preset_ad=self.preset_ad)
            return Domain(self, self._alloc_did(), kind, pt)
        if kind is DomainKind.SECOND_STAGE:
            lv = levels or 4
            if not hw.sagaw >> (lv - 2) & 1:
                raise IommuError(f"{lv}-level second-stage paging not supported (SAGAW)")
            pt = PageTable(mem, space, PteFormat.SECOND_STAGE, lv, ss_shifts)
            return Domain(self, self._alloc_did(), kind, pt)
        if parent is None or parent.kind is not DomainKind.SECOND_STAGE:
            raise IommuError("a nested domain needs a second-stage parent")
        if not hw.nest:
            raise IommuError("nested translation not supported")
        lv = levels or 4
        if lv == 5 and not hw.fs5lp:
            raise IommuError("5-level first-stage paging not supported", errno.EINVAL)
        if user_fs_root is not None:
            if user_fs_root & (PAGE - 1) or user_fs_root < 0:
                raise IommuError(f"first-stage root 0x{user_fs_root:x} not page aligned", errno.EINVAL)
            d = Domain(self, parent.did, kind, None, parent=parent, user_fs_root=user_fs_root, user_fs_levels=lv)
            parent.children.append(d)
            return d
        nspace = NestedTableSpace(self, parent, self.nested_gpa_offset)
        pt = PageTable(mem, nspace, PteFormat.FIRST_STAGE, lv, fs_shifts, preset_ad=self.preset_ad)
        d = Domain(self, parent.did, kind, pt, parent=parent)
        parent.children.append(d)
        return d

    async def free_domain(self, domain: Domain) -> None:
        """Free a domain's tables; it must not be attached anywhere."""
        if domain.devices:
            raise IommuError(f"domain {domain.did} still attached to {sorted(domain.devices)}")
        if domain.pgtable is not None:
            domain.pgtable.destroy()
            if isinstance(domain.pgtable.space, NestedTableSpace):
                await domain.pgtable.space.release()
        if domain.kind is DomainKind.NESTED and domain.parent is not None:
            domain.parent.children.remove(domain)
        elif domain.kind in (DomainKind.FIRST_STAGE, DomainKind.SECOND_STAGE):
            self._free_dids.append(domain.did)

    async def invalidate_user(self, domain: Domain, iova: int | None = None, size: int = 0) -> None:
        """Forward a guest's first-stage invalidation (iommufd ``IOMMU_HWPT_INVALIDATE``): PASID-
        based IOTLB invalidation of ``[iova, iova+size)`` (everything when ``iova`` is None) for
        every (sid, PASID) the nested domain is attached to, dev-TLB too, then wait."""
        if domain.kind is not DomainKind.NESTED:
            raise IommuError("only a nested domain's first stage is invalidated for a user", errno.EINVAL)
        batch: list[bytes] = []
        for sid, pasid in sorted(domain.devices):
            if iova is None:
                batch.append(descs.piotlb_pasid(domain.did, pasid))
                if self.caps.dt:
                    batch.append(descs.p_devtlb(sid, pasid))
            else:
                addr, am = descs.addr_mask_for(iova & ((1 << 64) - 1), size)
                batch.append(descs.piotlb_page(domain.did, pasid, addr, am))
                if self.caps.dt:
                    batch.append(descs.p_devtlb(sid, pasid, addr, 1 << (12 + am)))
        if batch:
            await self.qi_submit_sync(batch)

    # ------------------------------------------------------------------ devices and PASIDs
    def _device(self, sid: int) -> _Device:
        dev = self._devices.get(sid)
        if dev is not None:
            return dev
        mem, alloc = self.bus.mem, self.bus.alloc
        bus, devfn = sid >> 8 & 0xFF, sid & 0xFF
        upper = bool(devfn & 0x80)
        key = (bus, upper)
        ctab = self._ctx_tables.get(key)
        if ctab is None:
            ctab = alloc.alloc(PAGE)
            mem.fill(ctab, PAGE, 0)
            self._ctx_tables[key] = ctab
            lo = mem.read_u64(self.root + bus * 16)
            hi = mem.read_u64(self.root + bus * 16 + 8)
            if upper:
                hi = ctab | 1
            else:
                lo = ctab | 1
            mem.write_u64(self.root + bus * 16, lo)
            mem.write_u64(self.root + bus * 16 + 8, hi)
        dir_size = 8 << (self.pdts + 7)
        pdir = alloc.alloc(dir_size)
        mem.fill(pdir, dir_size, 0)
        ctx = ctab + (devfn & 0x7F) * 32
        q0 = pdir | (self.pdts & 7) << 9 | 1 << 3  # PASIDE
        mem.write_u64(ctx + 8, 0)  # RID_PASID = 0, RID_PRIV = 0
        mem.write_u64(ctx + 16, 0)
        mem.write_u64(ctx + 24, 0)
        mem.write_u64(ctx, q0 | 1)  # present last
        dev = _Device(sid, ctx, pdir, self.pdts)
        self._devices[sid] = dev
        return dev

    def _pasid_entry_addr(self, dev: _Device, pasid: int, create: bool) -> int | None:
        di = pasid >> 6
        table = dev.pasid_tables.get(di)
        if table is None:
            if not create:
                return None
            mem, alloc = self.bus.mem, self.bus.alloc
            table = alloc.alloc(PAGE)
            mem.fill(table, PAGE, 0)
            dev.pasid_tables[di] = table
            mem.write_u64(dev.pasid_dir + di * 8, table | 1)
        return table + (pasid & 0x3F) * 64

    def _encode_pasid_entry(self, domain: Domain, supervisor: bool) -> list[int]:
        hw = self.caps
        q = [0] * 8
        pwsnp = int(hw.smpwc) << 23
        kind = domain.kind
        if kind is DomainKind.FIRST_STAGE:
            q[0] = 1 | 2 << 2 | 1 << 6
            q[1] = domain.did | pwsnp
            q[2] = domain.fs_root | int(supervisor) | (1 << 2 if domain.levels == 5 else 0)
        elif kind is DomainKind.SECOND_STAGE:
            assert domain.pgtable is not None
            q[0] = 1 | (domain.levels - 2) << 2 | 2 << 6 | domain.pgtable.root | int(domain.dirty_tracking) << 9
            q[1] = domain.did | pwsnp
        elif kind is DomainKind.NESTED:
            assert domain.parent is not None
            parent = domain.parent
            assert parent.pgtable is not None
            q[0] = 1 | (parent.levels - 2) << 2 | 3 << 6 | parent.pgtable.root | int(parent.dirty_tracking) << 9
            q[1] = domain.did | pwsnp
            q[2] = domain.fs_root | int(supervisor) | (1 << 2 if domain.levels == 5 else 0)
        else:
            q[0] = 1 | 2 << 2 | 4 << 6
            q[1] = domain.did | pwsnp
        return q

    async def attach_device(self, sid: int, domain: Domain) -> None:
        """Requests without PASID from ``sid`` are translated by ``domain`` (RID_PASID = 0)."""
        await self._bind(sid, 0, domain, False)

    async def bind_pasid(self, sid: int, pasid: int, domain: Domain, *, supervisor: bool = False) -> None:
        """Requests of ``sid`` tagged with ``pasid`` are translated by ``domain``."""
        if not 1 <= pasid <= PASID_MAX:
            raise IommuError(f"PASID {pasid} out of range 1..{PASID_MAX}")
        if pasid >= 1 << (self.pdts + 13):
            raise IommuError(f"PASID {pasid} beyond the PASID directory (PDTS={self.pdts})")
        await self._bind(sid, pasid, domain, supervisor)

    async def _bind(self, sid: int, pasid: int, domain: Domain, supervisor: bool) -> None:
        if not self.up:
            raise IommuError("bring_up() first")
        if supervisor and domain.kind not in (DomainKind.FIRST_STAGE, DomainKind.NESTED):
            raise IommuError("supervisor requests need a first-stage or nested domain")
        dev = self._device(sid)
        if pasid in dev.bound:
            raise IommuError(f"sid {sid:04x} PASID {pasid} already bound")
        ea = self._pasid_entry_addr(dev, pasid, create=True)
        assert ea is not None
        mem = self.bus.mem
        q = self._encode_pasid_entry(domain, supervisor)
        for i in range(7, -1, -1):  # present bit (qword 0) last
            mem.write_u64(ea + 8 * i, q[i])
        dev.bound[pasid] = domain
        domain.devices.add((sid, pasid))
        if self.caps.caching_mode:  # not-present -> present needs invalidation only with CM=1
            await self.qi_submit_sync([descs.pc_pasid(domain.did, pasid), descs.iotlb_dsi(domain.did)])
        self.log.info("sid %04x pasid %d -> %s domain did=%d", sid, pasid, domain.kind.name, domain.did)

    async def unbind_pasid(self, sid: int, pasid: int) -> None:
        """Tear down one (sid, PASID): clear P, invalidate PASID cache + IOTLB + dev-TLB, wait."""
        dev = self._devices.get(sid)
        if dev is None or pasid not in dev.bound:
            raise IommuError(f"sid {sid:04x} PASID {pasid} not bound")
        domain = dev.bound[pasid]
        ea = self._pasid_entry_addr(dev, pasid, create=False)
        assert ea is not None
        mem = self.bus.mem
        mem.write_u64(ea, mem.read_u64(ea) & ~1)  # clear present first
        batch = [descs.pc_pasid(domain.did, pasid)]
        if domain.kind in (DomainKind.FIRST_STAGE, DomainKind.PASS_THROUGH):
            batch.append(descs.piotlb_pasid(domain.did, pasid))
        else:
            batch.append(descs.iotlb_dsi(domain.did))
        if self.caps.dt:
            batch.append(descs.p_devtlb(sid, pasid) if pasid else descs.devtlb_global(sid))
        await self.qi_submit_sync(batch)
        mem.fill(ea, 64, 0)
        del dev.bound[pasid]
        domain.devices.discard((sid, pasid))
        self.log.info("sid %04x pasid %d unbound", sid, pasid)

    async def replace_pasid(self, sid: int, pasid: int, domain: Domain, *, supervisor: bool = False) -> None:
        """Switch a bound (sid, PASID) to ``domain`` without a window where it is not present.

        What Linux's ``intel_pasid_replace_*()`` does for ``iommu_replace_device_pasid()`` /
        iommufd's HWPT replace: the whole 512-bit entry is rewritten with P kept set, then the
        PASID cache, the IOTLB of the old and the new DID and the dev-TLB are invalidated and
        waited for. DMA in flight is translated by the old or the new table, never faults on a
        missing entry, so the device's queues keep running.
        """
        dev = self._devices.get(sid)
        if dev is None or pasid not in dev.bound:
            raise IommuError(f"sid {sid:04x} PASID {pasid} not bound", errno.EINVAL)
        if supervisor and domain.kind not in (DomainKind.FIRST_STAGE, DomainKind.NESTED):
            raise IommuError("supervisor requests need a first-stage or nested domain", errno.EINVAL)
        old = dev.bound[pasid]
        if old is domain:
            return
        ea = self._pasid_entry_addr(dev, pasid, create=False)
        assert ea is not None
        mem = self.bus.mem
        q = self._encode_pasid_entry(domain, supervisor)
        for i in range(7, -1, -1):  # qword 0 (P = 1 in both entries) last
            mem.write_u64(ea + 8 * i, q[i])
        batch = []
        for did in sorted({old.did, domain.did}):
            batch.append(descs.pc_pasid(did, pasid))
        for d in (old, domain) if old.did != domain.did else (old,):
            if d.kind in (DomainKind.FIRST_STAGE, DomainKind.PASS_THROUGH):
                batch.append(descs.piotlb_pasid(d.did, pasid))
            else:
                batch.append(descs.iotlb_dsi(d.did))
        if self.caps.dt:
            batch.append(descs.p_devtlb(sid, pasid))
        await self.qi_submit_sync(batch)
        dev.bound[pasid] = domain
        old.devices.discard((sid, pasid))
        domain.devices.add((sid, pasid))
        self.log.info("sid %04x pasid %d replaced: %s did=%d -> %s did=%d", sid, pasid, old.kind.name, old.did,
                      domain.kind.name, domain.did)

    # ------------------------------------------------------------------ dirty tracking
    def _ss_users(self, domain: Domain) -> list[tuple[int, int, Domain]]:
        """(sid, PASID, domain in the entry) of every PASID entry whose second stage is ``domain``."""
        users = [(sid, pasid, domain) for sid, pasid in domain.devices]
        for child in domain.children:
            users += [(sid, pasid, child) for sid, pasid in child.devices]
        return sorted(users, key=lambda t: (t[0], t[1]))

    async def set_dirty_tracking(self, domain: Domain, enable: bool) -> None:
        """Second-stage A/D tracking on or off (iommufd ``IOMMU_HWPT_SET_DIRTY_TRACKING``; Linux
        ``intel_pasid_setup_dirty_tracking``): SSADE is flipped in every PASID entry that walks
        this table, in place with P kept, then the PASID cache and the IOTLB of the DID are
        invalidated and waited for, so no cached entry keeps the old setting. Turning it on
        clears every D flag first: the first report covers writes since then."""
        if domain.kind is not DomainKind.SECOND_STAGE or domain.pgtable is None:
            raise IommuError("dirty tracking needs a second-stage domain", errno.EINVAL)
        if not self.caps.ssads:
            raise IommuError("the IOMMU has no second-stage A/D support (ECAP.SSADS)", errno.EOPNOTSUPP)
        if domain.dirty_tracking == enable:
            return
        if enable:
            domain.pgtable.read_and_clear_dirty(0, 1 << domain.pgtable.input_bits)
        domain.dirty_tracking = enable
        mem = self.bus.mem
        batch: list[bytes] = []
        for sid, pasid, d in self._ss_users(domain):
            ea = self._pasid_entry_addr(self._devices[sid], pasid, create=False)
            assert ea is not None
            q0 = mem.read_u64(ea)
            mem.write_u64(ea, (q0 & ~(1 << 9)) | int(enable) << 9)
            batch.append(descs.pc_pasid(d.did, pasid))
            if self.caps.dt:
                batch.append(descs.p_devtlb(sid, pasid))
        batch.append(descs.iotlb_dsi(domain.did))
        await self.qi_submit_sync(batch)
        self.log.info("did %d: dirty tracking %s", domain.did, "on" if enable else "off")

    async def read_and_clear_dirty(self, domain: Domain, iova: int, size: int) -> list[int]:
        """Pages (4 KiB IOVAs) in ``[iova, iova+size)`` the device wrote since the last call
        (iommufd ``IOMMU_HWPT_GET_DIRTY_BITMAP``): D flags read and cleared in the second-stage
        leaves, then the IOTLB for the range invalidated and waited for, so the next write
        through a cached translation walks again and sets D. A large leaf reports all of its
        pages inside the range."""
        if domain.kind is not DomainKind.SECOND_STAGE or domain.pgtable is None:
            raise IommuError("dirty tracking needs a second-stage domain", errno.EINVAL)
        if not domain.dirty_tracking:
            raise IommuError(f"did {domain.did}: dirty tracking is off", errno.EINVAL)
        leaves = domain.pgtable.read_and_clear_dirty(iova, size)
        pages: list[int] = []
        for va, shift in leaves:
            lo, hi = max(va, iova), min(va + (1 << shift), iova + size)
            pages.extend(range(lo & ~(PAGE - 1), hi, PAGE))
        if leaves:
            await self.flush_range(domain, iova, size)
        return pages

    async def detach_device(self, sid: int) -> None:
        """Unbind every PASID of ``sid``, clear its context entry, invalidate, then free its tables."""
        dev = self._devices.get(sid)
        if dev is None:
            return
        for pasid in sorted(dev.bound):
            await self.unbind_pasid(sid, pasid)
        mem = self.bus.mem
        mem.write_u64(dev.ctx_addr, 0)
        mem.fill(dev.ctx_addr, 32, 0)
        batch = [descs.cc_device(sid), descs.pc_global(), descs.iotlb_global()]
        if self.caps.dt:
            batch.append(descs.devtlb_global(sid))
        await self.qi_submit_sync(batch)
        alloc = self.bus.alloc
        for t in dev.pasid_tables.values():
            alloc.free(t)
        alloc.free(dev.pasid_dir)
        del self._devices[sid]

    def bound(self, sid: int) -> dict[int, Domain]:
        dev = self._devices.get(sid)
        return dict(dev.bound) if dev is not None else {}

    # ------------------------------------------------------------------ faults
    async def drain_faults(self) -> list[FaultRecord]:
        """Read and clear every pending FRCD (Linux ``dmar_fault``), then PFO/PPF in FSTS."""
        hw = self.caps
        out: list[FaultRecord] = []
        fsts = await self._r32(FSTS)
        if fsts & (FSTS_PPF | FSTS_PFO):
            idx = fsts >> 8 & 0xFF
            for _ in range(hw.nfr):
                off = hw.fro + 16 * idx
                d3 = await self._r32(off + 12)
                if not d3 >> 31:
                    break
                lo = await self._r64(off)
                hi = await self._r64(off + 8)
                pp = bool(hi >> 31 & 1)
                rec = FaultRecord(
                    sid=hi & 0xFFFF,
                    pasid=(hi >> 40 & 0xFFFFF) if pp else None,
                    addr=lo & ~0xFFF,
                    reason=hi >> 32 & 0xFF,
                    write=not hi >> 62 & 1,
                    priv=bool(hi >> 29 & 1),
                    exe=bool(hi >> 30 & 1),
                )
                out.append(rec)
                self.log.warning(
                    "DMA fault: reason 0x%02x sid %04x pasid %s addr 0x%x %s",
                    rec.reason,
                    rec.sid,
                    rec.pasid,
                    rec.addr,
                    "write" if rec.write else "read",
                )
                await self._w32(off + 12, 1 << 31)
                idx = (idx + 1) % hw.nfr
        await self._w32(FSTS, FSTS_PFO | FSTS_PPF)
        if self.fault_pending is not None:
            self.fault_pending.clear()
        self.faults.extend(out)
        for rec in out:
            for handler in self.fault_handlers:
                handler(rec)
        return out
