"""A host without a simulator: HostBus over the VT-d model, plus the SIOV endpoint's golden model.

:class:`FakeHost` implements :class:`siov_sim.sw.bus.HostBus` (asyncio runtime, host memory,
page allocator, MSI controller, the IOMMU register window at ``IOMMU_BASE``) and routes
config/MMIO to one :class:`FakeSiovDevice`. The device is a register-level shell (config space,
BAR0 PF registers and MSI-X, ADI configuration pages, forwarding table, BAR2 portal pages, all
decoded with the generated ``sw/regs`` map) around the golden model of the ADIs,
:class:`siov_sim.model.adi.AdiDevice`: state machine, descriptor execution, switch, IMS, error
codes and the descriptor / completion record / receive header formats are the model's, i.e.
the RTL's. Every DMA the model makes is translated by the IOMMU model with the ADI's PASID, so
isolation is real; a read that faults completes with UR (``ErrorCode.CPL_UR``), a faulting
posted write is dropped.

Doorbells are processed inline (the descriptors run during the doorbell write), which keeps
the tests deterministic; ``stall`` keeps an ADI "busy" to exercise drain polling.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from siov_sim.model.adi import AdiDevice, AdiState, Cmd, DmaError, ErrorCode
from siov_sim.model.iommu import Fault, VtdIommu
from siov_sim.model.irq import InterruptController, is_msi_address
from siov_sim.model.mem import HostMemory, PageAllocator
from siov_sim.sw.bus import IrqHandler, MsiMessage, Runtime
from siov_sim.sw.driver import pci
from siov_sim.sw.iommu.driver import IOMMU_BASE
from siov_sim.sw.regs import (
    ADIS_BASE,
    ADIS_STRIDE,
    SWITCH_BASE,
    SWITCH_STRIDE,
    AdiPage,
    Bar0,
    PortalPage,
    SwitchFwd,
)

log = logging.getLogger(__name__)

PF_BDF = 0x0100  # 01:00.0
BAR0_ADDR = 0x1_0000_0000
BAR0_SIZE = 1 << 20
BAR2_ADDR = 0x1_0010_0000
DVSEC_OFF = 0x110
PASID_OFF = 0x100


class AsyncioEvent:
    def __init__(self) -> None:
        self._ev = asyncio.Event()

    def set(self) -> None:
        self._ev.set()

    def clear(self) -> None:
        self._ev.clear()

    def is_set(self) -> bool:
        return self._ev.is_set()

    async def wait(self) -> None:
        await asyncio.wait_for(self._ev.wait(), timeout=5.0)


class AsyncioRuntime:
    """The Runtime protocol on asyncio with a virtual clock (sleep advances it, yields once)."""

    def __init__(self) -> None:
        self.t = 0.0

    async def sleep(self, ns: float) -> None:
        self.t += ns
        await asyncio.sleep(0)

    def event(self) -> AsyncioEvent:
        return AsyncioEvent()

    def now_ns(self) -> float:
        return self.t

    async def gather(self, coros: Any) -> list[Any]:
        return list(await asyncio.gather(*coros))

    async def wait_for(self, event: Any, timeout_ns: float) -> bool:
        end = self.t + timeout_ns
        while not event.is_set() and self.t < end:
            await self.sleep(min(200.0, end - self.t))
        return bool(event.is_set())


class IommuSpaces:
    """The model's :class:`~siov_sim.model.adi.AddressSpaces` on the host: every access is
    translated by the VT-d model with the PASID (and PMR) of the requesting ADI."""

    def __init__(self, dev: FakeSiovDevice) -> None:
        self.dev = dev

    def _pmr(self, pasid: int | None) -> bool:
        if pasid is None:
            return False
        return any(a.cfg.pasid_valid and a.cfg.pasid == pasid and a.cfg.pmr for a in self.dev.model.adis)

    def _walk(self, pasid: int | None, addr: int, length: int, write: bool) -> list[tuple[int, int]] | None:
        pmr = self._pmr(pasid)
        out: list[tuple[int, int]] = []
        pos = 0
        while pos < length:
            n = min(length - pos, 4096 - ((addr + pos) & 0xFFF))
            t = self.dev.host.iommu.translate(PF_BDF, pasid, addr + pos, write, pmr)
            if isinstance(t, Fault):
                self.dev.faults.append(t)
                return None
            out.append((t.hpa, n))
            pos += n
        return out

    def read(self, pasid: int | None, addr: int, length: int) -> bytes:
        if not self.dev.bus_master:
            raise DmaError(ErrorCode.NO_BUS_MASTER)
        pages = self._walk(pasid, addr, length, False)
        if pages is None:
            raise DmaError(ErrorCode.CPL_UR)  # the root complex answers a faulting read with UR
        return b"".join(self.dev.host.mem.read(hpa, n) for hpa, n in pages)

    def write(self, pasid: int | None, addr: int, data: bytes) -> None:
        if not self.dev.bus_master:
            return
        pages = self._walk(pasid, addr, len(data), True)
        if pages is None:
            return  # posted: a faulting write is dropped (and recorded by the IOMMU)
        pos = 0
        for hpa, n in pages:
            self.dev.host.mem.write(hpa, data[pos : pos + n])
            pos += n


class AdiView:
    """Test access to one ADI: ``reg(offset)`` reads its BAR0 page, ``state``/``busy``/``err``."""

    def __init__(self, dev: FakeSiovDevice, n: int) -> None:
        self.dev = dev
        self.n = n

    def reg(self, off: int) -> int:
        return self.dev.adi_read(self.n, off)

    @property
    def state(self) -> AdiState:
        return self.dev.model.adis[self.n].dyn.state

    @property
    def err(self) -> int:
        return self.dev.model.adis[self.n].dyn.err

    @property
    def busy(self) -> bool:
        return self.n in self.dev.busy


class FakeSiovDevice:
    """The SIOV endpoint at register level around the ADI golden model (see module docstring)."""

    def __init__(self, host: FakeHost, num_adis: int = 8, page_sizes: int = 0x3) -> None:
        self.host = host
        self.num_adis = num_adis
        bar2 = 4096
        max_page = 4096 << (page_sizes.bit_length() - 1)
        while bar2 < num_adis * max_page:
            bar2 <<= 1
        self.bar2_size = bar2
        self.cfg = bytearray(4096)
        self.wmask = bytearray(4096)
        self.faults: list[Fault] = []
        self.model = AdiDevice(num_adis, IommuSpaces(self), pasid_enabled=False)
        self._build_config(page_sizes)
        self.adis = [AdiView(self, n) for n in range(num_adis)]
        self.pf_ctrl = 0
        self.pf_cause = 0
        self.pf_mask = 0
        self.pf_vec = Bar0.PF_INT_VEC.reset
        self.last_err = 0
        self.last_drain = 0
        self.msix = bytearray(8 * 16)
        for v in range(8):
            self.msix[16 * v + 12] = 1  # masked at reset
        self.stalled: set[int] = set()  # ADIs whose requests never complete (until release)
        self.busy: set[int] = set()  # stalled ADIs with a request "outstanding"
        # ADIs whose descriptor runs "for ever" (a huge COPY): DRAIN waits for it (until release),
        # ABORT cuts it at once (record ABORTED, as the RTL does at its next request boundary)
        self.long: set[int] = set()

    # ---- config space -------------------------------------------------------------------------
    def _put(self, off: int, value: int, size: int, wmask: int = 0) -> None:
        self.cfg[off : off + size] = value.to_bytes(size, "little")
        self.wmask[off : off + size] = wmask.to_bytes(size, "little")

    def _build_config(self, page_sizes: int) -> None:
        self._put(0x00, 0x8086, 2)
        self._put(0x02, 0x0B25, 2)
        self._put(0x04, 0, 2, 0x0406)
        self._put(0x06, pci.PCI_STATUS_CAP_LIST, 2)
        self._put(0x09, 0x088000, 3)
        for i, (addr, size) in enumerate(((BAR0_ADDR, BAR0_SIZE), (BAR2_ADDR, self.bar2_size))):
            off = 0x10 + 8 * i
            mask = ~(size - 1) & ((1 << 64) - 1)
            self._put(off, (addr & 0xFFFF_FFF0) | 0x4, 4, mask & 0xFFFF_FFF0)
            self._put(off + 4, addr >> 32, 4, mask >> 32)
        self._put(0x34, 0x40, 1)
        self._put(0x40, pci.PCI_CAP_ID_EXP | (0x70 << 8) | (0x0002 << 16), 4)
        self._put(0x70, pci.PCI_CAP_ID_MSIX | (7 << 16), 4, 0xC000 << 16)
        self._put(0x74, 0x2000, 4)
        self._put(0x78, 0x3000, 4)
        # PASID ext cap -> DVSEC
        self._put(PASID_OFF, pci.PCI_EXT_CAP_ID_PASID | (1 << 16) | (DVSEC_OFF << 20), 4)
        self._put(PASID_OFF + 4, (20 << 8) | pci.PCI_PASID_CAP_PRIV, 2)
        self._put(PASID_OFF + 6, 0, 2, 0x7)
        self._put(DVSEC_OFF, pci.PCI_EXT_CAP_ID_DVSEC | (1 << 16), 4)
        self._put(DVSEC_OFF + 4, 0x8086 | (0x018 << 20), 4)
        self._put(DVSEC_OFF + 8, 0x0005, 2)
        self._put(DVSEC_OFF + 0x0A, 0, 1)
        self._put(DVSEC_OFF + 0x0B, 1, 1)
        self._put(DVSEC_OFF + 0x0C, page_sizes, 4)
        self._put(DVSEC_OFF + 0x10, 1, 4, page_sizes)
        self._put(DVSEC_OFF + 0x14, 1, 4)

    def cfg_read(self, off: int, length: int) -> bytes:
        return bytes(self.cfg[off : off + length])

    def cfg_write(self, off: int, data: bytes) -> None:
        for i, b in enumerate(data):
            m = self.wmask[off + i]
            self.cfg[off + i] = (self.cfg[off + i] & ~m) | (b & m)
        if off <= DVSEC_OFF + 0x10 < off + len(data):  # system page size: exactly one bit
            v = int.from_bytes(self.cfg[DVSEC_OFF + 0x10 : DVSEC_OFF + 0x14], "little")
            if v & (v - 1) or not v:
                self.cfg[DVSEC_OFF + 0x10 : DVSEC_OFF + 0x14] = (1).to_bytes(4, "little")
        self.model.pasid_enabled = self.pasid_enabled
        self._pump()  # Bus Master Enable may have come back

    @property
    def page_size(self) -> int:
        v = int.from_bytes(self.cfg[DVSEC_OFF + 0x10 : DVSEC_OFF + 0x14], "little")
        return 4096 << (v.bit_length() - 1)

    @property
    def pasid_enabled(self) -> bool:
        return bool(self.cfg[PASID_OFF + 6] & 1)

    @property
    def bus_master(self) -> bool:
        return bool(self.cfg[4] & pci.PCI_COMMAND_MASTER)

    def bar(self, i: int) -> int:
        off = 0x10 + 4 * i
        return int.from_bytes(self.cfg[off : off + 8], "little") & ~0xF

    # ---- MMIO -----------------------------------------------------------------------------------
    def claims(self, addr: int) -> bool:
        b0, b2 = self.bar(0), self.bar(2)
        return b0 <= addr < b0 + BAR0_SIZE or b2 <= addr < b2 + self.bar2_size

    async def mmio_read(self, addr: int, length: int) -> bytes:
        out = b""
        for a in range(addr, addr + length, 4):
            out += self._read32(a).to_bytes(4, "little")
        return out[:length]

    async def mmio_write(self, addr: int, data: bytes) -> None:
        for i in range(0, len(data), 4):
            self._write32(addr + i, int.from_bytes(data[i : i + 4], "little"))

    @property
    def fwd(self) -> list[int]:
        """Forwarding entries as the registers read them."""
        return [SwitchFwd.FWD.pack(valid=int(v), adi=d) for v, d in self.model.fwd]

    def _status(self, n: int) -> int:
        d = self.model.adis[n].dyn
        return AdiPage.STATUS.pack(state=int(d.state), err=d.err, busy=int(n in self.busy))

    def adi_read(self, n: int, r: int) -> int:
        """One register of ADI ``n``'s BAR0 page (offset ``r``), from the model's state."""
        a = self.model.adis[n]
        c, d = a.cfg, a.dyn
        lo, hi = 0xFFFF_FFFF, 32
        values = {
            AdiPage.RING_BASE_LO.offset: c.ring_base & lo,
            AdiPage.RING_BASE_HI.offset: c.ring_base >> hi,
            AdiPage.RING_SIZE.offset: c.log2_entries,
            AdiPage.CPL_BASE_LO.offset: c.cpl_base & lo,
            AdiPage.CPL_BASE_HI.offset: c.cpl_base >> hi,
            AdiPage.RX_BASE_LO.offset: c.rx_base & lo,
            AdiPage.RX_BASE_HI.offset: c.rx_base >> hi,
            AdiPage.RX_CFG.offset: AdiPage.RX_CFG.pack(
                log2_slots=c.rx_log2_slots, log2_slot_bytes=c.rx_log2_slot_bytes
            ),
            AdiPage.PASID.offset: AdiPage.PASID.pack(pasid=c.pasid, pmr=int(c.pmr), valid=int(c.pasid_valid)),
            AdiPage.IMS_ADDR_LO.offset: c.ims_addr & lo,
            AdiPage.IMS_ADDR_HI.offset: c.ims_addr >> hi,
            AdiPage.IMS_DATA.offset: c.ims_data,
            AdiPage.IMS_CTRL.offset: AdiPage.IMS_CTRL.pack(mask=int(c.ims_mask), pending=int(d.ims_pending)),
            AdiPage.SW_PORT.offset: AdiPage.SW_PORT.pack(
                group=c.group, addr=c.port_addr, send_en=int(c.send_en), recv_en=int(c.recv_en)
            ),
            AdiPage.STATUS.offset: self._status(n),
            AdiPage.HEAD.offset: d.head,
            AdiPage.TAIL.offset: d.tail,
            AdiPage.RX_IDX.offset: AdiPage.RX_IDX.pack(rx_head=d.rx_head, rx_tail=d.rx_tail),
            AdiPage.CNT_DESC.offset: d.cnt_desc,
            AdiPage.CNT_BYTES.offset: d.cnt_bytes,
            AdiPage.ERR_INFO.offset: d.err_info,
        }
        return values.get(r, 0)

    _RESTORE = {
        AdiPage.HEAD.offset: "head",
        AdiPage.TAIL.offset: "tail",
        AdiPage.CNT_DESC.offset: "cnt_desc",
        AdiPage.CNT_BYTES.offset: "cnt_bytes",
        AdiPage.ERR_INFO.offset: "err_info",
    }

    def _adi_write(self, n: int, r: int, v: int) -> None:
        c = self.model.adis[n].cfg
        busy = int(n in self.busy)

        def lo(old: int) -> int:
            return (old & ~0xFFFF_FFFF) | v

        def hi(old: int) -> int:
            return (old & 0xFFFF_FFFF) | (v << 32)

        if r == AdiPage.RING_BASE_LO.offset:
            c.ring_base = lo(c.ring_base)
        elif r == AdiPage.RING_BASE_HI.offset:
            c.ring_base = hi(c.ring_base)
        elif r == AdiPage.RING_SIZE.offset:
            c.log2_entries = AdiPage.RING_SIZE.field("log2_entries").get(v)
        elif r == AdiPage.CPL_BASE_LO.offset:
            c.cpl_base = lo(c.cpl_base)
        elif r == AdiPage.CPL_BASE_HI.offset:
            c.cpl_base = hi(c.cpl_base)
        elif r == AdiPage.RX_BASE_LO.offset:
            c.rx_base = lo(c.rx_base)
        elif r == AdiPage.RX_BASE_HI.offset:
            c.rx_base = hi(c.rx_base)
        elif r == AdiPage.RX_CFG.offset:
            f = AdiPage.RX_CFG.unpack(v)
            c.rx_log2_slots, c.rx_log2_slot_bytes = f["log2_slots"], f["log2_slot_bytes"]
        elif r == AdiPage.PASID.offset:
            f = AdiPage.PASID.unpack(v)
            self.model.set_pasid(n, f["pasid"], valid=bool(f["valid"]), pmr=bool(f["pmr"]))
        elif r == AdiPage.IMS_ADDR_LO.offset:
            c.ims_addr = lo(c.ims_addr)
        elif r == AdiPage.IMS_ADDR_HI.offset:
            c.ims_addr = hi(c.ims_addr)
        elif r == AdiPage.IMS_DATA.offset:
            c.ims_data = v
        elif r == AdiPage.IMS_CTRL.offset:
            if AdiPage.IMS_CTRL.field("pending").get(v):
                self.model.restore(n, "ims_pending", 1, outstanding=busy)
            self.model.set_ims_mask(n, bool(AdiPage.IMS_CTRL.field("mask").get(v)))
        elif r == AdiPage.SW_PORT.offset:
            f = AdiPage.SW_PORT.unpack(v)
            c.group, c.port_addr = f["group"], f["addr"]
            c.send_en, c.recv_en = bool(f["send_en"]), bool(f["recv_en"])
        elif r == AdiPage.CMD.offset:
            cmd = AdiPage.CMD.field("cmd").get(v)
            if cmd == Cmd.ABORT and n in self.busy and n in self.long and n not in self.stalled:
                self.busy.discard(n)
                self.long.discard(n)
                self.model.step(n, abort_at=0)  # cut before its first data request
            elif cmd in iter(Cmd):
                self.model.command(n, Cmd(cmd), outstanding=busy)
        elif r == AdiPage.STATUS.offset:
            self.model.restore(n, "status", v & 0xFF03, outstanding=busy)
        elif r == AdiPage.RX_IDX.offset:
            f = AdiPage.RX_IDX.unpack(v)
            if self.model.restore(n, "rx_head", f["rx_head"], outstanding=busy):
                self.model.restore(n, "rx_tail", f["rx_tail"])
        elif r in self._RESTORE:
            self.model.restore(n, self._RESTORE[r], v, outstanding=busy)
        # other registers ignore writes

    def _read32(self, addr: int) -> int:
        b0, b2 = self.bar(0), self.bar(2)
        if b2 <= addr < b2 + self.bar2_size:
            n, off = divmod(addr - b2, self.page_size)
            if n >= self.num_adis:
                return 0
            d = self.model.adis[n].dyn
            if off == PortalPage.STATUS.offset:
                return self._status(n)
            if off == PortalPage.HEAD.offset:
                return d.head
            if off == PortalPage.RX_TAIL.offset:
                return d.rx_tail
            return 0
        off = addr - b0
        if off == Bar0.DEV_ID.offset:
            return 0x53494F56
        if off == Bar0.NUM_ADI.offset:
            return self.num_adis
        if off == Bar0.PF_STATUS.offset:
            return 1
        if off == Bar0.PF_CTRL.offset:
            return self.pf_ctrl
        if off == Bar0.PF_INT_CAUSE.offset:
            return self.pf_cause
        if off == Bar0.PF_INT_MASK.offset:
            return self.pf_mask
        if off == Bar0.PF_INT_VEC.offset:
            return self.pf_vec
        if off == Bar0.LAST_ERR.offset:
            return self.last_err
        if off == Bar0.LAST_DRAIN.offset:
            return self.last_drain
        if 0x2000 <= off < 0x2000 + len(self.msix):
            return int.from_bytes(self.msix[off - 0x2000 : off - 0x2000 + 4], "little")
        if SWITCH_BASE <= off < SWITCH_BASE + SWITCH_STRIDE * self.num_adis:
            return self.fwd[(off - SWITCH_BASE) // SWITCH_STRIDE]
        if ADIS_BASE <= off < ADIS_BASE + ADIS_STRIDE * self.num_adis:
            n, r = divmod(off - ADIS_BASE, ADIS_STRIDE)
            return self.adi_read(n, r)
        return 0

    def _write32(self, addr: int, v: int) -> None:
        b0, b2 = self.bar(0), self.bar(2)
        if b2 <= addr < b2 + self.bar2_size:
            n, off = divmod(addr - b2, self.page_size)
            if n < self.num_adis:
                self._portal_write(n, off, v)
        else:
            off = addr - b0
            if off == Bar0.PF_CTRL.offset:
                self.pf_ctrl = v & 1
            elif off == Bar0.PF_INT_CAUSE.offset:
                self.pf_cause &= ~v
            elif off == Bar0.PF_INT_MASK.offset:
                self.pf_mask = v & 3
            elif off == Bar0.PF_INT_VEC.offset:
                self.pf_vec = v & 0x707
            elif 0x2000 <= off < 0x2000 + len(self.msix):
                self.msix[off - 0x2000 : off - 0x2000 + 4] = v.to_bytes(4, "little")
            elif SWITCH_BASE <= off < SWITCH_BASE + SWITCH_STRIDE * self.num_adis:
                f = SwitchFwd.FWD.unpack(v)
                self.model.set_forwarding((off - SWITCH_BASE) // SWITCH_STRIDE, f["adi"], bool(f["valid"]))
            elif ADIS_BASE <= off < ADIS_BASE + ADIS_STRIDE * self.num_adis:
                n, r = divmod(off - ADIS_BASE, ADIS_STRIDE)
                self._adi_write(n, r, v)
        self._pump()

    def _portal_write(self, n: int, off: int, v: int) -> None:
        # the whole 32-bit value: like the RTL, bits 31:16 set are out of range too
        if off == PortalPage.DOORBELL.offset:
            self.model.doorbell(n, v)
        elif off == PortalPage.RX_DOORBELL.offset:
            self.model.rx_doorbell(n, v)

    # ---- the engine -----------------------------------------------------------------------------
    def _pump(self) -> None:
        """Run descriptors (round-robin, one per ADI per pass) while the engine is enabled, then
        deliver what the model raised: IMS messages and PF interrupt causes."""
        while self.pf_ctrl & 1:
            ran = False
            for n, a in enumerate(self.model.adis):
                d = a.dyn
                if d.state != AdiState.ENABLED or d.head == d.tail:
                    continue
                if n in self.stalled or n in self.long:
                    self.busy.add(n)  # its first request never completes / it never ends
                    continue
                self.model.step(n)
                ran = True
            if not ran:
                break
        ims, self.model.ims[:] = list(self.model.ims), []
        for m in ims:
            self.host.msi_write(m.addr, m.data)
        events, self.model.pf_events[:] = list(self.model.pf_events), []
        for ev in events:
            if ev.kind == "adi_error":
                log.info("ADI %d -> ERROR %s", ev.adi, ErrorCode(ev.code).name)
                self.last_err = Bar0.LAST_ERR.pack(adi=ev.adi, err=ev.code)
                self._pf_irq(0)
            else:
                self.last_drain = ev.adi
                self._pf_irq(1)

    def release(self, n: int) -> None:
        """Outstanding requests of a stalled ADI complete (test helper). The model has no
        "last outstanding request done" input, so DRAINING -> DISABLED + drain_done is done here."""
        self.stalled.discard(n)
        self.long.discard(n)
        if n in self.busy:
            self.busy.discard(n)
            self.model.outstanding_done(n)
        self._pump()

    def _pf_irq(self, cause: int) -> None:
        """Set ``pf_int_cause`` bit ``cause`` (0 adi_error, 1 drain_done); send its MSI-X vector."""
        self.pf_cause |= 1 << cause
        if self.pf_mask >> cause & 1:
            return
        vec = (self.pf_vec >> (8 * cause)) & 7
        ctrl = int.from_bytes(self.cfg[0x72:0x74], "little")
        entry = self.msix[16 * vec : 16 * vec + 16]
        if ctrl & 0x8000 and not ctrl & 0x4000 and not entry[12] & 1:
            self.host.msi_write(int.from_bytes(entry[0:8], "little"), int.from_bytes(entry[8:12], "little"))


class FakeHost:
    """HostBus of a host with one IOMMU and one SIOV endpoint at 01:00.0."""

    def __init__(self, num_adis: int = 8, *, page_sizes: int = 0x3) -> None:
        self.mem = HostMemory(0, 1 << 40)
        self.alloc = PageAllocator(0x10_0000, 0x4000_0000)
        self.irq = InterruptController()
        self.runtime: Runtime = AsyncioRuntime()
        self.iommu = VtdIommu(self.mem, msi_sink=self.msi_write)
        self.dev = FakeSiovDevice(self, num_adis, page_sizes)

    def msi_write(self, addr: int, data: int) -> None:
        if is_msi_address(addr):
            self.irq.deliver(addr, data)
        else:
            self.mem.write_u32(addr, data)

    def _iommu_off(self, addr: int, length: int) -> int | None:
        off = addr - IOMMU_BASE
        return off if off >= 0 and off + length <= 0x1000 else None

    async def mmio_read(self, addr: int, length: int) -> bytes:
        off = self._iommu_off(addr, length)
        if off is not None:
            return self.iommu.mmio_read(off, length).to_bytes(length, "little")
        if self.dev.claims(addr):
            return await self.dev.mmio_read(addr, length)
        return b"\xff" * length  # master abort

    async def mmio_write(self, addr: int, data: bytes) -> None:
        off = self._iommu_off(addr, len(data))
        if off is not None:
            self.iommu.mmio_write(off, len(data), int.from_bytes(data, "little"))
        elif self.dev.claims(addr):
            await self.dev.mmio_write(addr, data)

    async def cfg_read(self, bdf: int, offset: int, length: int) -> bytes:
        if bdf != PF_BDF:
            return b"\xff" * length
        return self.dev.cfg_read(offset, length)

    async def cfg_write(self, bdf: int, offset: int, data: bytes) -> None:
        if bdf == PF_BDF:
            self.dev.cfg_write(offset, data)

    def alloc_irq(self, handler: IrqHandler) -> MsiMessage:
        def wrap(addr: int, data: int) -> None:
            handler(MsiMessage(addr, data))

        addr, data = self.irq.alloc(wrap)
        return MsiMessage(addr, data)

    def free_irq(self, msg: MsiMessage) -> None:
        self.irq.free(msg.addr, msg.data)
