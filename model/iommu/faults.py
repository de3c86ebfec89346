"""Fault reasons, the fault value returned by ``translate()``, and primary fault logging.

Fault recording follows VT-d §7.2.1: qualified faults are dropped when any FPD on the lookup
path is set; FRCDs fill round-robin from an internal index; a full slot sets PFO; the fault event
(FECTL.IP + MSI to FEADDR/FEDATA) fires only when no status bit was pending before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from siov_sim.model.iommu.regs import CTL_IM, CTL_IP, FSTS_EVENT_MASK, FSTS_FRI_SHIFT, Fsts, Reg, RegFile

MsiSink = Callable[[int, int], None]
"""Delivers a remapping-hardware interrupt: ``sink(address, data)`` (a DWORD memory write)."""


class FaultReason(IntEnum):
    """Scalable-mode DMA-remapping fault reasons (VT-d Table 30)."""

    IR_29_MALFORMED = 0x29  # untranslated request to the interrupt range that is not a valid MSI
    RTA_1_BAD_TTM = 0x30
    RTA_2_LEGACY_PASID = 0x31
    RTA_3_LEGACY_PRQ = 0x32
    RTA_4_ABORT_MODE = 0x33
    RTA_5_ER = 0x34
    SRT_1_ROOT_READ = 0x38
    SRT_2_ROOT_NOT_PRESENT = 0x39
    SRT_3_ROOT_RESERVED = 0x3A
    SCT_1_CTX_READ = 0x40
    SCT_2_CTX_NOT_PRESENT = 0x41
    SCT_3_CTX_RESERVED = 0x42
    SCT_4_CTX_INVALID = 0x43
    SCT_5_DTE = 0x44
    SCT_6_PASIDE = 0x45
    SCT_7_PDTS = 0x46
    SCT_8_PRE = 0x47
    SCT_9_RID_PASID = 0x48
    SCT_10_EPTR = 0x49
    SPD_1_DIR_READ = 0x50
    SPD_2_DIR_NOT_PRESENT = 0x51
    SPD_3_DIR_RESERVED = 0x52
    SPT_1_PASID_READ = 0x58
    SPT_2_PASID_NOT_PRESENT = 0x59
    SPT_3_PASID_RESERVED = 0x5A
    SPT_4_PASID_INVALID = 0x5B
    SPT_5_ER = 0x5C
    SPT_6_SRE = 0x5D
    SFS_1_READ = 0x70
    SFS_2_NOT_PRESENT = 0x71
    SFS_3_RESERVED = 0x72
    SFS_4_ROOT_READ = 0x73
    SFS_5_NESTED_ADDR = 0x74
    SFS_6_NESTED_ROOT_READ = 0x75
    SFS_7_NESTED_ENTRY_READ = 0x76
    SFS_8_NESTED_AD_WRITE = 0x77
    SSS_1_READ = 0x78
    SSS_2_NOT_PRESENT = 0x79
    SSS_3_RESERVED = 0x7A
    SSS_4_ROOT_READ = 0x7B
    SSS_5_AD_NOSNOOP = 0x7C
    SSS_6_AD_FAILED = 0x7D
    SGN_1_CANONICAL = 0x80
    SGN_2_USER = 0x81
    SGN_4_HAW = 0x83
    SGN_5_SS_INPUT = 0x84
    SGN_6_WRITE = 0x85
    SGN_7_READ = 0x86
    SGN_8_INTR_RANGE = 0x87
    SGN_10_PSS = 0x89
    SFS_9_AD_NOSNOOP = 0x90
    SFS_10_AD_FAILED = 0x91


NON_QUALIFIED = frozenset(
    {
        FaultReason.IR_29_MALFORMED,
        FaultReason.RTA_1_BAD_TTM,
        FaultReason.RTA_2_LEGACY_PASID,
        FaultReason.RTA_3_LEGACY_PRQ,
        FaultReason.RTA_4_ABORT_MODE,
        FaultReason.RTA_5_ER,
        FaultReason.SRT_1_ROOT_READ,
        FaultReason.SRT_2_ROOT_NOT_PRESENT,
        FaultReason.SRT_3_ROOT_RESERVED,
        FaultReason.SCT_1_CTX_READ,
        FaultReason.SPD_1_DIR_READ,
        FaultReason.SPT_1_PASID_READ,
    }
)


@dataclass(frozen=True, slots=True)
class Fault:
    """A blocked request (returned by ``translate()`` instead of a translation)."""

    reason: FaultReason
    sid: int
    pasid: int | None  # the request's PASID (None: request without PASID)
    addr: int
    write: bool
    pmr: bool = False
    er: bool = False
    recorded: bool = False  # written to an FRCD (False: suppressed by FPD, overflow or PFO)


class FaultUnit:
    """FSTS/FRCD/FECTL behaviour: primary fault logging and the fault event interrupt."""

    def __init__(self, regs: RegFile, nfr: int, fro: int, msi: MsiSink, log: logging.Logger) -> None:
        self._regs = regs
        self._nfr = nfr
        self._frcd = fro << 4
        self._msi = msi
        self._log = log
        self.index = 0  # next FRCD to fill
        self.events_sent = 0

    def frcd_offset(self, n: int) -> int:
        return self._frcd + 16 * n

    def _any_f(self) -> int | None:
        for n in range(self._nfr):
            if self._regs.get(self.frcd_offset(n) + 12, 4) >> 31:
                return n
        return None

    def _status_pending(self) -> bool:
        return bool(self._regs.get(Reg.FSTS) & FSTS_EVENT_MASK)

    def record(self, f: Fault, suppressed: bool) -> bool:
        """Primary fault logging; returns whether an FRCD was written."""
        if suppressed and f.reason not in NON_QUALIFIED:
            self._log.debug("fault %s suppressed by FPD", f)
            return False
        fsts = self._regs.get(Reg.FSTS)
        if fsts & Fsts.PFO:
            return False
        off = self.frcd_offset(self.index)
        if self._regs.get(off + 12, 4) >> 31:
            self._regs.set_bits(Reg.FSTS, 4, Fsts.PFO)  # overflow: PPF already 1 -> no new event
            self._log.debug("fault overflow, dropped %s", f)
            return False
        pp = f.pasid is not None
        hi = (f.sid & 0xFFFF) | (int(pp) << 31)
        if pp:
            hi |= int(f.er) << 30 | int(f.pmr) << 29
        hi |= (int(f.reason) & 0xFF) << 32
        hi |= ((f.pasid or 0) & 0xFFFFF) << 40
        hi |= int(not f.write) << 62  # T1: 1 = read (T2 = 0: read/write request)
        hi |= 1 << 63  # F
        lo = f.addr & ~0xFFF & 0xFFFF_FFFF_FFFF_FFFF
        self._regs.put(off, 8, lo)
        self._regs.put(off + 8, 8, hi)
        pending_before = bool(fsts & FSTS_EVENT_MASK)
        if not fsts & Fsts.PPF:
            fsts = (fsts & ~(0xFF << FSTS_FRI_SHIFT)) | self.index << FSTS_FRI_SHIFT | Fsts.PPF
            self._regs.put(Reg.FSTS, 4, fsts)
        self.index = (self.index + 1) % self._nfr
        if not pending_before:
            self.fault_event()
        self._log.info(
            "DMA fault recorded: reason=0x%x sid=%04x pasid=%s addr=0x%x %s",
            f.reason,
            f.sid,
            f.pasid,
            f.addr,
            "write" if f.write else "read",
        )
        return True

    def set_status(self, bit: Fsts) -> None:
        """Set IQE/ICE/ITE; raise the fault event if nothing was pending."""
        pending_before = self._status_pending()
        self._regs.set_bits(Reg.FSTS, 4, bit)
        if not pending_before:
            self.fault_event()

    def fault_event(self) -> None:
        fectl = self._regs.get(Reg.FECTL)
        if fectl & CTL_IM:
            self._regs.put(Reg.FECTL, 4, fectl | CTL_IP)
            return
        self._regs.put(Reg.FECTL, 4, fectl & ~CTL_IP)
        self._send()

    def _send(self) -> None:
        addr = self._regs.get(Reg.FEUADDR) << 32 | self._regs.get(Reg.FEADDR)
        data = self._regs.get(Reg.FEDATA)
        self.events_sent += 1
        self._msi(addr, data)

    def after_status_write(self) -> None:
        """Recompute PPF after FSTS/FRCD W1C writes; clear IP when nothing is pending."""
        first = self._any_f()
        fsts = self._regs.get(Reg.FSTS)
        fsts = fsts | Fsts.PPF if first is not None else fsts & ~Fsts.PPF
        self._regs.put(Reg.FSTS, 4, fsts)
        if not fsts & FSTS_EVENT_MASK:
            self._regs.clear_bits(Reg.FECTL, 4, CTL_IP)

    def after_fectl_write(self) -> None:
        """Clearing IM while IP is set sends the pending message."""
        fectl = self._regs.get(Reg.FECTL)
        if not fectl & CTL_IM and fectl & CTL_IP:
            self._regs.put(Reg.FECTL, 4, fectl & ~CTL_IP)
            self._send()

    def reset_index(self) -> None:
        self.index = 0
