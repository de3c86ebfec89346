"""Queued invalidation: descriptor fetch, validation (IQE) and dispatch by descriptor type.

Processing is synchronous: a write to IQT (or enabling QI, or clearing FSTS.IQE) runs every
descriptor between head and tail before the MMIO write returns, which satisfies the ordering
rules of VT-d §6.5.2.12 trivially. On an error the head stays on the bad descriptor, FSTS.IQE and
IQERCD.IQEI are set and nothing is fetched until software clears IQE.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType

from siov_sim.model.iommu.caches import Caches
from siov_sim.model.iommu.faults import FaultUnit, MsiSink
from siov_sim.model.iommu.regs import CTL_IM, CTL_IP, TTM_SCALABLE, Caps, Fsts, Gcmd, Reg, RegFile
from siov_sim.model.mem import BusError, HostMemory


class Iqei(IntEnum):
    """IQERCD.IQEI: why the queue stopped."""

    NONE = 0
    TAIL = 1
    FETCH = 2
    TYPE = 3
    RESERVED = 4
    DW = 5
    TAIL_ALIGN = 6
    TTM = 7


class DescType(IntEnum):
    CC = 0x1
    IOTLB = 0x2
    DEV_TLB = 0x3
    IEC = 0x4
    WAIT = 0x5
    P_IOTLB = 0x6
    PC = 0x7
    P_DEV_TLB = 0x8
    PGRP_RESP = 0x9
    HPT = 0xA


@dataclass(frozen=True, slots=True)
class DevTlbInvalidation:
    """A device-TLB invalidation forwarded to the device model (ATS is not modelled by default)."""

    sid: int
    pasid: int | None  # None: dev_tlb_inv_dsc (requests without PASID)
    addr: int
    size: int  # bytes covered (decoded from the S bit + trailing ones)
    global_pasid: bool = False


DevTlbSink = Callable[[DevTlbInvalidation], None]

# Reserved-bit masks (qw0, qw1) per type; 256-bit types also need qw2 = qw3 = 0, 128-bit types too
# (they are zero-padded in a 256-bit queue).
_RSVD: Mapping[int, tuple[int, int]] = MappingProxyType(
    {
        DescType.CC: (0xFFFC_0000_0000_F1C0, 0xFFFF_FFFF_FFFF_FFFF),
        DescType.IOTLB: (0xFFFF_FFFF_0000_F100, 0xF80),
        DescType.DEV_TLB: (0xFFFF_0000_FFE0_F1F0, 0xFFE),
        DescType.IEC: (0xFFFF_0000_07FF_F1E0, 0xFFFF_FFFF_FFFF_FFFF),
        DescType.WAIT: (0xFFFF_F100, 0x3),
        DescType.P_IOTLB: (0xFFF0_0000_0000_F1C0, 0xF80),
        DescType.PC: (0xFFF0_0000_0000_F1C0, 0xFFFF_FFFF_FFFF_FFFF),
        DescType.P_DEV_TLB: (0xFFF0_0000_0000_F000, 0x7FE),
    }
)
_VALID_TYPES = frozenset(int(t) for t in DescType)
_TYPES_256 = frozenset({DescType.P_IOTLB, DescType.PC, DescType.P_DEV_TLB, DescType.PGRP_RESP, DescType.HPT})


def dev_tlb_size(addr_field: int, s: bool) -> tuple[int, int]:
    """(base, size) of a device-TLB invalidation range: S=0 -> 4 KiB; S=1 -> trailing ones."""
    if not s:
        return addr_field & ~0xFFF, 1 << 12
    pfn = addr_field >> 12
    k = 0
    while pfn & 1 and k < 52:
        pfn >>= 1
        k += 1
    size = 1 << (12 + k + 1)
    return addr_field & ~(size - 1) & ~0xFFF, size


class InvQueue:
    """The invalidation-queue engine of one unit."""

    def __init__(
        self,
        regs: RegFile,
        mem: HostMemory,
        caps: Caps,
        caches: Caches,
        faults: FaultUnit,
        msi: MsiSink,
        ttm: Callable[[], int],
        log: logging.Logger,
        devtlb_sink: DevTlbSink | None = None,
    ) -> None:
        self._regs = regs
        self._mem = mem
        self._caps = caps
        self._caches = caches
        self._faults = faults
        self._msi = msi
        self._ttm = ttm
        self._log = log
        self.devtlb_sink = devtlb_sink
        self.last_was_wait = True
        self.completed = 0
        self.events_sent = 0

    # ------------------------------------------------------------------ queue mechanics
    def quiesced(self) -> bool:
        return self._regs.get(Reg.IQH, 8) == self._regs.get(Reg.IQT, 8) and self.last_was_wait

    def _error(self, iqei: Iqei) -> None:
        self._log.warning("invalidation queue error IQEI=%d at head 0x%x", iqei, self._regs.get(Reg.IQH, 8))
        ercd = self._regs.get(Reg.IQERCD, 8) & ~0xF
        self._regs.put(Reg.IQERCD, 8, ercd | int(iqei))
        self._faults.set_status(Fsts.IQE)

    def process(self) -> None:
        """Run descriptors from head to tail (called after IQT writes, QIE enable, IQE clear)."""
        regs = self._regs
        if not regs.get(Reg.GSTS) & Gcmd.QIE or regs.get(Reg.FSTS) & (Fsts.IQE | Fsts.ITE):
            return
        iqa = regs.get(Reg.IQA, 8)
        dw = bool(iqa >> 11 & 1)
        base = iqa & self._caps.haw_mask & ~0xFFF
        qsize = 4096 << (iqa & 7)
        dsz = 32 if dw else 16
        tail = regs.get(Reg.IQT, 8) & 0x7FFF0
        head = regs.get(Reg.IQH, 8)
        if head == tail:
            return
        ttm = self._ttm()
        if ttm not in (0, TTM_SCALABLE):
            self._error(Iqei.TTM)
            return
        if dw and tail & 0x10:
            self._error(Iqei.TAIL_ALIGN)
            return
        if tail >= qsize:
            self._error(Iqei.TAIL)
            return
        if (dw and not (self._caps.smts or self._caps.adms)) or (not dw and ttm == TTM_SCALABLE):
            self._error(Iqei.DW)
            return
        while head != tail:
            try:
                raw = self._mem.read(base + head, dsz)
            except BusError:
                self._error(Iqei.FETCH)
                return
            err = self._execute(raw, dw)
            if err is not Iqei.NONE:
                self._error(err)
                return
            head = (head + dsz) % qsize
            regs.put(Reg.IQH, 8, head)
            self.completed += 1

    # ------------------------------------------------------------------ descriptors
    def _execute(self, raw: bytes, dw: bool) -> Iqei:
        qw0 = int.from_bytes(raw[0:8], "little")
        qw1 = int.from_bytes(raw[8:16], "little")
        upper = int.from_bytes(raw[16:32], "little") if dw else 0
        if qw0 >> 9 & 7:
            return Iqei.TYPE
        t = qw0 & 0xF
        caps = self._caps
        if t not in _VALID_TYPES:
            return Iqei.TYPE
        dt = DescType(t)
        if dt in _TYPES_256 and not dw:
            return Iqei.TYPE
        if dt in (DescType.DEV_TLB, DescType.P_DEV_TLB) and not caps.dt:
            return Iqei.TYPE
        if dt in (DescType.PGRP_RESP, DescType.HPT):
            return Iqei.TYPE  # PRS=0, HPTS=0 on this unit
        m0, m1 = _RSVD[dt]
        if dt == DescType.WAIT and not caps.pds:
            m0 |= 1 << 7
        if qw0 & m0 or qw1 & m1 or upper:
            return Iqei.RESERVED
        self.last_was_wait = dt == DescType.WAIT
        return self._dispatch(dt, qw0, qw1)

    def _dispatch(self, dt: DescType, qw0: int, qw1: int) -> Iqei:
        c = self._caches
        g = qw0 >> 4 & 3
        did = qw0 >> 16 & 0xFFFF
        if dt == DescType.CC:
            if g == 0:
                return Iqei.RESERVED
            if g in (1, 2):  # domain-selective behaves as global in scalable mode
                n = c.inv_context_all()
            else:
                n = c.inv_context_device(qw0 >> 32 & 0xFFFF, qw0 >> 48 & 3)
            self._log.debug("cc_inv g=%d dropped %d", g, n)
        elif dt == DescType.PC:
            pasid = qw0 >> 32 & 0xFFFFF
            if g == 0:
                n = c.inv_pasid_did(did)
            elif g == 1:
                n = c.inv_pasid_did_pasid(did, pasid)
            elif g == 3:
                n = c.inv_pasid_all()
            else:
                return Iqei.RESERVED
            self._log.debug("pc_inv g=%d did=%d pasid=%d dropped %d", g, did, pasid, n)
        elif dt == DescType.IOTLB:
            am = qw1 & 0x3F
            if g == 0:
                return Iqei.RESERVED
            if g == 1:
                n = c.inv_iotlb_all()
            elif g == 2:
                n = c.inv_iotlb_did(did)
            else:
                if not self._caps.psi or am > self._caps.mamv:
                    return Iqei.RESERVED
                n = c.inv_iotlb_psi(did, qw1 & ~0xFFF, am)
            self._log.debug("iotlb_inv g=%d did=%d dropped %d", g, did, n)
        elif dt == DescType.P_IOTLB:
            pasid = qw0 >> 32 & 0xFFFFF
            if g == 2:
                n = c.inv_iotlb_did_pasid(did, pasid)
            elif g == 3:
                n = c.inv_iotlb_pasid_page(did, pasid, qw1 & ~0xFFF, qw1 & 0x3F)
            else:
                return Iqei.RESERVED
            self._log.debug("p_iotlb_inv g=%d did=%d pasid=%d dropped %d", g, did, pasid, n)
        elif dt == DescType.DEV_TLB:
            base, size = dev_tlb_size(qw1 & ~0xFFF, bool(qw1 & 1))
            self._devtlb(DevTlbInvalidation(qw0 >> 32 & 0xFFFF, None, base, size))
        elif dt == DescType.P_DEV_TLB:
            base, size = dev_tlb_size(qw1 & ~0xFFF, bool(qw1 >> 11 & 1))
            self._devtlb(DevTlbInvalidation(qw0 >> 16 & 0xFFFF, qw0 >> 32 & 0xFFFFF, base, size, bool(qw1 & 1)))
        elif dt == DescType.IEC:
            pass  # no interrupt remapping on this unit: nothing cached
        elif dt == DescType.WAIT:
            self._wait(qw0, qw1)
        return Iqei.NONE

    def _devtlb(self, inv: DevTlbInvalidation) -> None:
        self._log.debug("device-TLB invalidation %s", inv)
        if self.devtlb_sink is not None:
            self.devtlb_sink(inv)

    def _wait(self, qw0: int, qw1: int) -> None:
        if qw0 >> 5 & 1:  # SW: status write
            addr = qw1 & self._caps.haw_mask & ~0x3
            try:
                self._mem.write_u32(addr, qw0 >> 32)
            except BusError:
                self._log.warning("inv_wait status write to 0x%x outside host memory dropped", addr)
        if qw0 >> 4 & 1:  # IF: completion interrupt
            regs = self._regs
            if regs.get(Reg.ICS) & 1:
                return
            regs.set_bits(Reg.ICS, 4, 1)
            iectl = regs.get(Reg.IECTL)
            if iectl & CTL_IM:
                regs.put(Reg.IECTL, 4, iectl | CTL_IP)
                return
            self.send_event()

    def send_event(self) -> None:
        regs = self._regs
        regs.clear_bits(Reg.IECTL, 4, CTL_IP)
        addr = regs.get(Reg.IEUADDR) << 32 | regs.get(Reg.IEADDR)
        self.events_sent += 1
        self._msi(addr, regs.get(Reg.IEDATA))
