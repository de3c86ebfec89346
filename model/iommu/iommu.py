"""VT-d scalable-mode remapping unit: the facade the root complex and host software talk to.

* ``translate(sid, pasid, addr, write, pmr, er)`` -> :class:`Translation` or :class:`Fault`
  (synchronous; a fault is recorded in the FRCDs unless suppressed, never raised).
* ``mmio_read(offset, size)`` / ``mmio_write(offset, size, value)``: the 4 KiB register window.

Tables are read from the :class:`~siov_sim.model.mem.HostMemory` the unit was built with (no
TLPs: the walk is the IOMMU's own access path). Interrupts (fault event, invalidation completion)
leave through ``msi_sink(addr, data)``.
"""

from __future__ import annotations

import logging

from siov_sim.model.iommu.caches import Caches, IotlbEntry, PasidCacheEntry
from siov_sim.model.iommu.entries import ContextEntry, PasidDirEntry, PasidEntry, Pgtt, RootEntry
from siov_sim.model.iommu.faults import Fault, FaultUnit, MsiSink
from siov_sim.model.iommu.faults import FaultReason as FR
from siov_sim.model.iommu.invq import DevTlbSink, InvQueue
from siov_sim.model.iommu.regs import (
    CTL_IM,
    CTL_IP,
    REG_WINDOW_SIZE,
    TTM_ABORT,
    TTM_LEGACY,
    TTM_SCALABLE,
    Caps,
    Fsts,
    Gcmd,
    Reg,
    RegFile,
    reg_specs,
)
from siov_sim.model.iommu.walk import SsParams, Translation, Walker, overlaps_intr
from siov_sim.model.mem import BusError, HostMemory

_Miss = Translation | tuple[FR, bool]
_tuple_new = tuple.__new__


class VtdIommu:
    """One DMA-remapping unit in scalable mode (see the package docstring for what is modelled)."""

    def __init__(
        self,
        mem: HostMemory,
        caps: Caps | None = None,
        msi_sink: MsiSink | None = None,
        *,
        caching: bool = True,
        devtlb_sink: DevTlbSink | None = None,
        name: str = "dmar0",
    ) -> None:
        self.mem = mem
        self.caps = caps if caps is not None else Caps()
        self.log = logging.getLogger(f"{__name__}.{name}")
        self.msi_sink: MsiSink = msi_sink if msi_sink is not None else self._no_sink
        self.regs = RegFile(reg_specs(self.caps))
        self.caches = Caches(enabled=caching)
        self._iotlb = self.caches.iotlb  # the dict itself: the hit path is one lookup
        self._walker = Walker(mem, self.caps)
        self.faults = FaultUnit(self.regs, self.caps.nfr, self.caps.fro, self._send_msi, self.log)
        self.invq = InvQueue(
            self.regs,
            mem,
            self.caps,
            self.caches,
            self.faults,
            self._send_msi,
            self._get_ttm,
            self.log,
            devtlb_sink,
        )
        self._rta = 0
        self._ttm = TTM_LEGACY
        self._te = False
        self.fault_log: list[Fault] = []  # every blocked request, recorded or not (bounded)
        self.fault_log_max = 4096
        self._install_hooks()

    # ------------------------------------------------------------------ plumbing
    def _no_sink(self, addr: int, data: int) -> None:
        self.log.warning("interrupt 0x%x <- 0x%x with no MSI sink connected", addr, data)

    def _send_msi(self, addr: int, data: int) -> None:
        self.msi_sink(addr, data)

    def _get_ttm(self) -> int:
        return self._ttm

    @property
    def enabled(self) -> bool:
        return self._te

    def reset(self) -> None:
        self.regs.reset()
        self.caches.flush_all()
        self.faults.reset_index()
        self._rta, self._ttm, self._te = 0, TTM_LEGACY, False

    # ------------------------------------------------------------------ MMIO
    def mmio_read(self, offset: int, size: int) -> int:
        if size not in (1, 2, 4, 8) or offset < 0 or offset + size > REG_WINDOW_SIZE:
            self.log.warning("bad register read offset=0x%x size=%d", offset, size)
            return 0
        return self.regs.sw_read(offset, size)

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        if size not in (1, 2, 4, 8) or offset < 0 or offset + size > REG_WINDOW_SIZE:
            self.log.warning("bad register write offset=0x%x size=%d", offset, size)
            return
        self.regs.sw_write(offset, size, value)  # masked store, then the write hooks below

    # ------------------------------------------------------------------ register write hooks
    def _install_hooks(self) -> None:
        regs = self.regs
        regs.on_write(Reg.GCMD, self._on_gcmd)
        regs.on_write(Reg.FSTS, self._on_fsts)
        for n in range(self.caps.nfr):
            regs.on_write(self.faults.frcd_offset(n), self._on_frcd)
        regs.on_write(Reg.FECTL, lambda _v, _m: self.faults.after_fectl_write())
        regs.on_write(Reg.IQT, lambda _v, _m: self.invq.process())
        regs.on_write(Reg.ICS, self._on_ics)
        regs.on_write(Reg.IECTL, self._on_iectl)
        regs.on_write(Reg.CCMD, self._on_ccmd)
        regs.on_write(self.caps.iro * 16 + 8, self._on_iotlb_reg)

    def _on_gcmd(self, value: int, mask: int) -> None:
        if mask == 0xFFFF_FFFF:  # GCMD acts on whole-register writes only
            self._gcmd(value)
        else:
            self.log.warning("partial GCMD write ignored (mask 0x%x)", mask)

    def _on_fsts(self, value: int, _mask: int) -> None:
        self.faults.after_status_write()
        if value & Fsts.IQE and not self.regs.get(Reg.FSTS) & Fsts.IQE:
            self.invq.process()  # software cleared IQE: fetching resumes

    def _on_frcd(self, _value: int, _mask: int) -> None:
        self.faults.after_status_write()

    def _on_ics(self, _value: int, _mask: int) -> None:
        if not self.regs.get(Reg.ICS) & 1:
            self.regs.clear_bits(Reg.IECTL, 4, CTL_IP)

    def _on_iectl(self, _value: int, _mask: int) -> None:
        iectl = self.regs.get(Reg.IECTL)
        if not iectl & CTL_IM and iectl & CTL_IP:
            self.invq.send_event()

    def _on_ccmd(self, _value: int, _mask: int) -> None:
        ccmd = self.regs.get(Reg.CCMD, 8)
        if ccmd >> 63:  # register-based invalidation is ignored in scalable mode: CAIG=00
            self.log.warning("CCMD write ignored (scalable mode): 0x%x", ccmd)
            self.regs.put(Reg.CCMD, 8, ccmd & ~(1 << 63 | 3 << 59))

    def _on_iotlb_reg(self, _value: int, _mask: int) -> None:
        off = self.caps.iro * 16 + 8
        v = self.regs.get(off, 8)
        if v >> 63:  # ignored in scalable mode: IAIG=00
            self.log.warning("IOTLB_REG write ignored (scalable mode): 0x%x", v)
            self.regs.put(off, 8, v & ~(1 << 63 | 3 << 57))

    def _gcmd(self, val: int) -> None:
        regs = self.regs
        sts = regs.get(Reg.GSTS)
        process_q = False
        if val & Gcmd.SRTP:
            rtaddr = regs.get(Reg.RTADDR, 8)
            self._rta = rtaddr & self.caps.haw_mask & ~0xFFF
            self._ttm = rtaddr >> 10 & 3
            if self.caps.esrtps:
                self.caches.flush_all()
            sts |= Gcmd.SRTP  # RTPS: cleared on the write and set when done (synchronously)
            self.log.info("root table 0x%x TTM=%d latched", self._rta, self._ttm)
        te = bool(val & Gcmd.TE)
        if te != bool(sts & Gcmd.TE):
            self._te = te
            if te:
                sts |= Gcmd.TE
            else:
                sts &= ~Gcmd.TE
                self.caches.flush_all()  # SM: disabling translation invalidates all caches
                self.faults.reset_index()  # TES = IRES = 0
            self.log.info("translation %s", "enabled" if te else "disabled")
        qie = bool(val & Gcmd.QIE)
        if qie != bool(sts & Gcmd.QIE):
            if qie:
                sts |= Gcmd.QIE
                process_q = True
            elif self.invq.quiesced():
                sts &= ~Gcmd.QIE
                regs.put(Reg.IQH, 8, 0)
            else:
                self.log.warning("QIE disable refused: queue not quiesced")
        # IRE/SIRTP/CFI/WBF: no interrupt remapping, RWBF=0 -> nothing to do
        regs.put(Reg.GSTS, 4, sts)
        if process_q:
            self.invq.process()

    # ------------------------------------------------------------------ translation
    def translate(
        self, sid: int, pasid: int | None, addr: int, write: bool = False, pmr: bool = False, er: bool = False
    ) -> Translation | Fault:
        """Translate one untranslated request (no 4 KiB crossing); faults are values."""
        e = self._iotlb.get((sid, -1 if pasid is None else pasid, pmr, addr >> 12))
        if e is not None and (e.write_ok if write else e.read_ok) and not er:
            # tuple.__new__ directly: half the cost of calling the NamedTuple constructor
            return _tuple_new(Translation, (e.out_base | (addr & e.off_mask), *e.tail))
        return self._miss(sid, pasid, addr, write, pmr, er)

    def _miss(self, sid: int, pasid: int | None, addr: int, write: bool, pmr: bool, er: bool) -> Translation | Fault:
        if not self._te:
            return Translation(addr, 12, 0, 0, 0)
        r = self._lookup(sid, pasid, addr, write, pmr, er)
        if isinstance(r, Translation):
            return r
        reason, suppressed = r
        f = Fault(reason, sid, pasid, addr, write, pmr and pasid is not None, er)
        recorded = self.faults.record(f, suppressed)
        if recorded:
            f = Fault(reason, sid, pasid, addr, write, f.pmr, er, True)
        if len(self.fault_log) < self.fault_log_max:
            self.fault_log.append(f)
        return f

    def interrupt_range_fault(self, sid: int, addr: int, write: bool) -> Fault:
        """Record 0x29 for a request without PASID to 0xFEEx_xxxx that is not a DWORD write.

        Such requests are neither interrupts nor DMA (VT-d §3.15); the root complex calls this
        instead of ``translate()`` and blocks the request.
        """
        f = Fault(FR.IR_29_MALFORMED, sid, None, addr, write)
        if self.faults.record(f, False):
            f = Fault(FR.IR_29_MALFORMED, sid, None, addr, write, recorded=True)
        if len(self.fault_log) < self.fault_log_max:
            self.fault_log.append(f)
        return f

    def _ss_params(self, pe: PasidEntry) -> SsParams:
        width = self.caps.sagaw_bits(pe.aw) or 48
        return SsParams(pe.ssptptr, pe.aw + 2, min(self.caps.mgaw, width), pe.ssade, pe.pwsnp and self.caps.smpwcs)

    def _context(self, sid: int) -> ContextEntry | tuple[FR, bool]:
        mem, caps = self.mem, self.caps
        bus, devfn = sid >> 8 & 0xFF, sid & 0xFF
        try:
            raw = mem.read(self._rta + bus * 16, 16)
        except BusError:
            return FR.SRT_1_ROOT_READ, False
        present, ctp, rsvd = RootEntry.from_bytes(raw, caps).half(devfn)
        if not present:
            return FR.SRT_2_ROOT_NOT_PRESENT, False
        if rsvd:
            return FR.SRT_3_ROOT_RESERVED, False
        try:
            raw = mem.read(ctp + (devfn & 0x7F) * 32, 32)
        except BusError:
            return FR.SCT_1_CTX_READ, False
        ce = ContextEntry.from_bytes(raw, caps)
        if not ce.p:
            return FR.SCT_2_CTX_NOT_PRESENT, ce.fpd
        if ce.reserved:
            return FR.SCT_3_CTX_RESERVED, ce.fpd
        if ce.invalid():
            return FR.SCT_4_CTX_INVALID, ce.fpd
        self.caches.put_context(sid, ce)
        return ce

    def _pasid_entry(self, ce: ContextEntry, sid: int, pasid: int) -> PasidCacheEntry | tuple[FR, bool]:
        mem, caps = self.mem, self.caps
        try:
            v = mem.read_u64(ce.pasid_dir + (pasid >> 6) * 8)
        except BusError:
            return FR.SPD_1_DIR_READ, False
        de = PasidDirEntry.from_int(v, caps)
        fpd = ce.fpd or de.fpd
        if not de.p:
            return FR.SPD_2_DIR_NOT_PRESENT, fpd
        if de.reserved:
            return FR.SPD_3_DIR_RESERVED, fpd
        try:
            raw = mem.read(de.pasid_table + (pasid & 0x3F) * 64, 64)
        except BusError:
            return FR.SPT_1_PASID_READ, False
        pe = PasidEntry.from_bytes(raw, caps)
        fpd = fpd or pe.fpd
        if not pe.p:
            return FR.SPT_2_PASID_NOT_PRESENT, fpd
        if pe.reserved:
            return FR.SPT_3_PASID_RESERVED, fpd
        if pe.invalid(caps):
            return FR.SPT_4_PASID_INVALID, fpd
        pce = PasidCacheEntry(de.fpd, pe)
        self.caches.put_pasid(sid, pasid, pce)
        return pce

    def _lookup(self, sid: int, pasid: int | None, addr: int, write: bool, pmr: bool, er: bool) -> _Miss:
        caps = self.caps
        ttm = self._ttm
        if ttm != TTM_SCALABLE:
            if ttm == TTM_LEGACY and pasid is not None:
                return FR.RTA_2_LEGACY_PASID, False
            if ttm == TTM_ABORT and caps.adms:
                return FR.RTA_4_ABORT_MODE, False
            return FR.RTA_1_BAD_TTM, False  # 10b reserved, 11b without ADMS, legacy not modelled
        if pasid is not None:
            if pasid >> (caps.pss + 1):
                return FR.SGN_10_PSS, False
            if er and caps.version >= 0x80:
                return FR.RTA_5_ER, False
        caches = self.caches
        ce = caches.context.get(sid)
        if ce is None:
            c = self._context(sid)
            if not isinstance(c, ContextEntry):
                return c
            ce = c
        else:
            caches.stats["ctx_hit"] += 1
        fpd = ce.fpd
        rid_pasid = ce.rid_pasid if caps.rps else 0
        if pasid is not None:
            if not ce.paside:
                return FR.SCT_6_PASIDE, fpd
            if pasid > ce.max_pasid:
                return FR.SCT_7_PDTS, fpd
            if pasid == rid_pasid:
                return FR.SCT_9_RID_PASID, fpd
            eff, priv = pasid, pmr
        else:
            eff, priv, er = rid_pasid, ce.rid_priv and caps.rprivs, False
        pce = caches.pasid.get((sid, eff))
        if pce is None:
            p = self._pasid_entry(ce, sid, eff)
            if not isinstance(p, PasidCacheEntry):
                return p
            pce = p
        else:
            caches.stats["pasid_hit"] += 1
        pe = pce.entry
        fpd = fpd or pce.dir_fpd or pe.fpd
        if er and not caps.ers:
            return FR.SPT_5_ER, fpd
        if priv and not pe.sre:
            return FR.SPT_6_SRE, fpd
        pgtt = pe.pgtt
        walker = self._walker
        snoop = pe.pwsnp and caps.smpwcs
        if pgtt == Pgtt.FIRST_STAGE:
            r = walker.fs_walk(pe.fsptptr, 5 if pe.fspm == 1 else 4, addr, write, not priv, pe.wpe, pe.eafe, snoop)
        elif pgtt == Pgtt.SECOND_STAGE:
            r = walker.ss_translate(self._ss_params(pe), addr, write)
        elif pgtt == Pgtt.NESTED:
            r = walker.fs_walk(
                pe.fsptptr,
                5 if pe.fspm == 1 else 4,
                addr,
                write,
                not priv,
                pe.wpe,
                pe.eafe,
                snoop,
                self._ss_params(pe),
            )
        else:
            r = FR.SGN_4_HAW if addr >> caps.haw else (addr, 12)
        if isinstance(r, FR):
            return r, fpd
        hpa, shift = r
        if overlaps_intr(hpa & ~((1 << shift) - 1), shift):
            return FR.SGN_8_INTR_RANGE, fpd
        t = Translation(hpa, shift, pe.did, eff, pgtt)
        caches.put_iotlb(
            (sid, -1 if pasid is None else pasid, pmr, addr >> 12),
            IotlbEntry(sid, t, addr & ~((1 << shift) - 1), write,
                       not write or pgtt in (Pgtt.FIRST_STAGE, Pgtt.PASS_THROUGH)),
        )
        return t

    # ------------------------------------------------------------------ introspection
    def fault_records(self) -> list[tuple[int, int]]:
        """Raw (lo, hi) qwords of every FRCD (for tests and debug dumps)."""
        out = []
        for n in range(self.caps.nfr):
            off = self.faults.frcd_offset(n)
            out.append((self.regs.get(off, 8), self.regs.get(off + 8, 8)))
        return out
