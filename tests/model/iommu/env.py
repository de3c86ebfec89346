"""Test environment for the IOMMU model: host memory, a unit, hand-programmed tables and queue."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from siov_sim.model.iommu import Caps, ContextEntry, PasidEntry, Pgtt, VtdIommu
from siov_sim.model.iommu.regs import Gcmd, Reg
from siov_sim.model.irq import InterruptController, is_msi_address
from siov_sim.model.mem import HostMemory, PageAllocator
from siov_sim.sw.iommu.pagetable import HostTableSpace, PageTable, PteFormat

RAM_SIZE = 1 << 32
IQ_QS = 0


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never really suspends (fake runtime) to completion."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("coroutine suspended under the fake runtime")


class Env:
    """One IOMMU over 4 GiB of sparse RAM; tables are written by hand (entries.encode) or PageTable."""

    def __init__(self, caps: Caps | None = None, caching: bool = True) -> None:
        self.mem = HostMemory(0, RAM_SIZE)
        self.alloc = PageAllocator(0x10_0000, 0x4000_0000)
        self.msis: list[tuple[int, int]] = []
        self.irq = InterruptController()
        self.iommu = VtdIommu(self.mem, caps, msi_sink=self._msi, caching=caching)
        self.caps = self.iommu.caps
        self.root = self.page()
        self.iq = self.alloc.alloc(4096 << IQ_QS)
        self.iq_tail = 0
        self.ctx_tables: dict[tuple[int, bool], int] = {}
        self.pdirs: dict[int, int] = {}
        self.ptables: dict[tuple[int, int], int] = {}
        self.space = HostTableSpace(self.mem, self.alloc)

    def _msi(self, addr: int, data: int) -> None:
        self.msis.append((addr, data))
        if is_msi_address(addr):
            self.irq.deliver(addr, data)

    def page(self, n: int = 1) -> int:
        a = self.alloc.alloc(4096 * n)
        self.mem.fill(a, 4096 * n, 0)
        return a

    # registers
    def r32(self, off: int) -> int:
        return self.iommu.mmio_read(off, 4)

    def r64(self, off: int) -> int:
        return self.iommu.mmio_read(off, 8)

    def w32(self, off: int, v: int) -> None:
        self.iommu.mmio_write(off, 4, v)

    def w64(self, off: int, v: int) -> None:
        self.iommu.mmio_write(off, 8, v)

    def gcmd(self, bit: int, on: bool = True) -> None:
        sts = self.r32(Reg.GSTS) & 0x96FF_FFFF
        self.w32(Reg.GCMD, sts | bit if on else sts & ~bit)

    def enable(self, ttm: int = 1, qi: bool = True, te: bool = True, dw: bool = True) -> None:
        self.w64(Reg.RTADDR, self.root | ttm << 10)
        self.gcmd(Gcmd.SRTP)
        if qi:
            self.w64(Reg.IQT, 0)
            self.w64(Reg.IQA, self.iq | int(dw) << 11 | IQ_QS)
            self.gcmd(Gcmd.QIE)
        if te:
            self.gcmd(Gcmd.TE)

    # structures
    def context(self, sid: int, pdts: int = 7, **kw: Any) -> int:
        """Root entry half + context entry (PASID directory allocated); returns the entry address."""
        bus, devfn = sid >> 8, sid & 0xFF
        upper = bool(devfn & 0x80)
        ct = self.ctx_tables.get((bus, upper))
        if ct is None:
            ct = self.ctx_tables[(bus, upper)] = self.page()
            off = self.root + bus * 16 + (8 if upper else 0)
            self.mem.write_u64(off, ct | 1)
        pdir = self.pdirs.get(sid)
        if pdir is None:
            pdir = self.pdirs[sid] = self.page(32)
        ea = ct + (devfn & 0x7F) * 32
        self.mem.write(ea, ContextEntry.encode(pdir, pdts, **kw))
        return ea

    def pasid_entry_addr(self, sid: int, pasid: int) -> int:
        pdir = self.pdirs[sid]
        key = (sid, pasid >> 6)
        t = self.ptables.get(key)
        if t is None:
            t = self.ptables[key] = self.page()
            self.mem.write_u64(pdir + (pasid >> 6) * 8, t | 1)
        return t + (pasid & 0x3F) * 64

    def pasid_entry(self, sid: int, pasid: int, raw: bytes) -> int:
        ea = self.pasid_entry_addr(sid, pasid)
        self.mem.write(ea, raw)
        return ea

    def fs_table(self, levels: int = 4, preset_ad: bool = False) -> PageTable:
        return PageTable(self.mem, self.space, PteFormat.FIRST_STAGE, levels, preset_ad=preset_ad)

    def ss_table(self, levels: int = 4) -> PageTable:
        return PageTable(self.mem, self.space, PteFormat.SECOND_STAGE, levels)

    def bind_fs(self, sid: int, pasid: int, pt: PageTable, did: int = 5, **kw: Any) -> int:
        fspm = 1 if pt.levels == 5 else 0
        return self.pasid_entry(sid, pasid, PasidEntry.encode(Pgtt.FIRST_STAGE, did, fsptptr=pt.root, fspm=fspm, **kw))

    def bind_ss(self, sid: int, pasid: int, pt: PageTable, did: int = 6, **kw: Any) -> int:
        raw = PasidEntry.encode(Pgtt.SECOND_STAGE, did, ssptptr=pt.root, aw=pt.levels - 2, **kw)
        return self.pasid_entry(sid, pasid, raw)

    def bind_pt(self, sid: int, pasid: int, did: int = 1, **kw: Any) -> int:
        return self.pasid_entry(sid, pasid, PasidEntry.encode(Pgtt.PASS_THROUGH, did, **kw))

    # invalidation queue
    def submit(self, *descs: bytes) -> None:
        size = 4096 << IQ_QS
        for d in descs:
            d = d.ljust(32, b"\0")
            self.mem.write(self.iq + self.iq_tail, d)
            self.iq_tail = (self.iq_tail + 32) % size
        self.w64(Reg.IQT, self.iq_tail)
