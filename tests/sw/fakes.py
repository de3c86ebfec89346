"""A host without a simulator: HostBus over the VT-d model, plus a behavioural SIOV endpoint.

:class:`FakeHost` implements :class:`siov_sim.sw.bus.HostBus` (asyncio runtime, host memory,
page allocator, MSI controller, the IOMMU register window at ``IOMMU_BASE``) and routes
config/MMIO to one :class:`FakeSiovDevice`. The device implements the register map of
``docs/datasheet.md`` (BAR0 PF registers, ADI configuration pages, forwarding table; BAR2
portal pages) and the provisional descriptor ABI of ``sw/driver/abi.py``; every DMA it makes
is translated by the IOMMU model with the ADI's PASID, so isolation is real.

Doorbells are processed inline (the descriptor runs during the doorbell write), which keeps
the tests deterministic; ``stall`` keeps an ADI "busy" to exercise drain polling.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from siov_sim.model.iommu import Fault, VtdIommu
from siov_sim.model.irq import InterruptController, is_msi_address
from siov_sim.model.mem import HostMemory, PageAllocator
from siov_sim.sw.bus import IrqHandler, MsiMessage, Runtime
from siov_sim.sw.driver import pci
from siov_sim.sw.driver.abi import (
    CPL_ERROR_BASE,
    CPL_SIZE,
    DESC_SIZE,
    RX_HDR_SIZE,
    AdiError,
    Completion,
    CplStatus,
    DescFlags,
    Descriptor,
    Opcode,
    RxHeader,
)
from siov_sim.sw.iommu.driver import IOMMU_BASE
from siov_sim.sw.regs import ADIS_BASE, ADIS_STRIDE, SWITCH_BASE, SWITCH_STRIDE, AdiPage, Bar0, PortalPage

log = logging.getLogger(__name__)

PF_BDF = 0x0100  # 01:00.0
BAR0_ADDR = 0x1_0000_0000
BAR0_SIZE = 1 << 20
BAR2_ADDR = 0x1_0010_0000
DVSEC_OFF = 0x110
PASID_OFF = 0x100


class Err:
    """Error codes used by the fake device (docs/datasheet.md section 3)."""

    BAD_RING_ALIGN = AdiError.BAD_RING_ALIGN
    DOORBELL_RANGE = AdiError.DOORBELL_RANGE
    DMA_FAULT = AdiError.CPL_UR  # a translation fault answers the read with UR
    BAD_DESC = AdiError.BAD_OPCODE
    SEND_DENIED = AdiError.SEND_DENIED
    NO_PASID = AdiError.NO_PASID


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


@dataclass(slots=True)
class AdiHw:
    regs: dict[int, int] = field(default_factory=dict)
    state: int = 0
    err: int = 0
    head: int = 0
    tail: int = 0
    rx_head: int = 0
    rx_tail: int = 0
    cnt_desc: int = 0
    cnt_bytes: int = 0
    pending: bool = False
    busy: int = 0  # outstanding requests (stall)

    def reg(self, r: int) -> int:
        return self.regs.get(r, 0)

    def addr(self, lo: int) -> int:
        return self.reg(lo) | (self.reg(lo + 4) << 32)


def _fresh_adi() -> AdiHw:
    return AdiHw(regs={AdiPage.IMS_CTRL.offset: 1})  # IMS entry masked at reset


class FakeSiovDevice:
    """The SIOV endpoint's behaviour at register level (see module docstring)."""

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
        self._build_config(page_sizes)
        self.adis = [_fresh_adi() for _ in range(num_adis)]
        self.fwd = [0] * num_adis
        self.pf_ctrl = 0
        self.pf_cause = 0
        self.last_err = 0
        self.last_drain = 0
        self.msix = bytearray(8 * 16)
        for v in range(8):
            self.msix[16 * v + 12] = 1  # masked at reset
        self.faults: list[Fault] = []
        self.stalled: set[int] = set()

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
            await self._write32(addr + i, int.from_bytes(data[i : i + 4], "little"))

    def _status(self, a: AdiHw) -> int:
        return a.state | (a.err << 8) | (int(bool(a.busy)) << 16)

    def _read32(self, addr: int) -> int:
        b0, b2 = self.bar(0), self.bar(2)
        if b2 <= addr < b2 + self.bar2_size:
            n, off = divmod(addr - b2, self.page_size)
            if n >= self.num_adis:
                return 0
            a = self.adis[n]
            if off == PortalPage.STATUS.offset:
                return self._status(a)
            if off == PortalPage.HEAD.offset:
                return a.head
            if off == PortalPage.RX_TAIL.offset:
                return a.rx_tail
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
            a = self.adis[n]
            if r == AdiPage.STATUS.offset:
                return self._status(a)
            if r == AdiPage.HEAD.offset:
                return a.head
            if r == AdiPage.TAIL.offset:
                return a.tail
            if r == AdiPage.CNT_DESC.offset:
                return a.cnt_desc & 0xFFFF_FFFF
            if r == AdiPage.CNT_BYTES.offset:
                return a.cnt_bytes & 0xFFFF_FFFF
            if r == AdiPage.RX_IDX.offset:
                return a.rx_head | (a.rx_tail << 16)
            if r == AdiPage.IMS_CTRL.offset:
                return (a.reg(r) & 1) | (int(a.pending) << 1)
            if r == AdiPage.CMD.offset:
                return 0
            return a.reg(r)
        return 0

    async def _write32(self, addr: int, v: int) -> None:
        b0, b2 = self.bar(0), self.bar(2)
        if b2 <= addr < b2 + self.bar2_size:
            n, off = divmod(addr - b2, self.page_size)
            if n < self.num_adis:
                await self._portal_write(n, off, v)
            return
        off = addr - b0
        if off == Bar0.PF_CTRL.offset:
            self.pf_ctrl = v & 1
        elif off == Bar0.PF_INT_CAUSE.offset:
            self.pf_cause &= ~v
        elif 0x2000 <= off < 0x2000 + len(self.msix):
            self.msix[off - 0x2000 : off - 0x2000 + 4] = v.to_bytes(4, "little")
        elif SWITCH_BASE <= off < SWITCH_BASE + SWITCH_STRIDE * self.num_adis:
            self.fwd[(off - SWITCH_BASE) // SWITCH_STRIDE] = v & 0x8000_FFFF
        elif ADIS_BASE <= off < ADIS_BASE + ADIS_STRIDE * self.num_adis:
            n, r = divmod(off - ADIS_BASE, ADIS_STRIDE)
            a = self.adis[n]
            if r == AdiPage.CMD.offset:
                self._cmd(n, v & 3)
            elif r == AdiPage.PASID.offset:
                if a.state == 0:
                    a.regs[r] = v
            elif r == AdiPage.IMS_CTRL.offset:
                a.regs[r] = v & 1
                if not v & 1 and a.pending:
                    a.pending = False
                    self._send_ims(a)
            elif r not in (AdiPage.STATUS.offset, AdiPage.HEAD.offset, AdiPage.TAIL.offset):
                a.regs[r] = v

    def _cmd(self, n: int, cmd: int) -> None:
        a = self.adis[n]
        if cmd == 1 and a.state == 0:
            if a.addr(AdiPage.RING_BASE_LO.offset) % DESC_SIZE or a.addr(AdiPage.CPL_BASE_LO.offset) % CPL_SIZE:
                self._error(n, a, Err.BAD_RING_ALIGN)
            elif self.pasid_enabled and not a.reg(AdiPage.PASID.offset) >> 31:
                self._error(n, a, Err.NO_PASID)
            else:
                a.state, a.head, a.tail = 1, 0, 0
                a.rx_head = a.rx_tail = 0
        elif cmd == 2:
            if a.state in (1, 3):
                a.state = 3 if a.busy else 0
                if a.state == 0:
                    self._drain_done(n)
        elif cmd == 3 and a.state in (0, 2):
            self.adis[n] = _fresh_adi()

    def release(self, n: int) -> None:
        """Outstanding requests of a stalled ADI complete (test helper)."""
        a = self.adis[n]
        a.busy = 0
        if a.state == 3:
            a.state = 0
            self._drain_done(n)

    def _drain_done(self, n: int) -> None:
        self.last_drain = n
        self._pf_irq(1, 0)

    def _pf_irq(self, vec: int, cause_bit: int) -> None:
        self.pf_cause |= 1 << (1 if vec == 1 else 0)
        ctrl = int.from_bytes(self.cfg[0x72:0x74], "little")
        entry = self.msix[16 * vec : 16 * vec + 16]
        if ctrl & 0x8000 and not ctrl & 0x4000 and not entry[12] & 1:
            self.host.msi_write(int.from_bytes(entry[0:8], "little"), int.from_bytes(entry[8:12], "little"))

    # ---- fast path ----------------------------------------------------------------------------
    async def _portal_write(self, n: int, off: int, v: int) -> None:
        a = self.adis[n]
        if off == PortalPage.RX_DOORBELL.offset:
            a.rx_head = v & 0xFFFF
            return
        if off != PortalPage.DOORBELL.offset or a.state != 1:
            return
        size = 1 << (a.reg(AdiPage.RING_SIZE.offset) & 0xF)
        if v & 0xFFFF >= size:
            a.state, a.err = 2, Err.DOORBELL_RANGE
            self._pf_error(n)
            return
        a.tail = v & 0xFFFF
        if n in self.stalled:
            a.busy = 1
            return
        while a.state == 1 and a.head != a.tail and self.pf_ctrl:
            self._execute(n, a, size)

    def _pasid(self, a: AdiHw) -> tuple[int | None, bool]:
        p = a.reg(AdiPage.PASID.offset)
        if not (p >> 31) or not self.pasid_enabled:
            return None, False
        return p & 0xFFFFF, bool(p >> 30 & 1)

    def _dma(self, a: AdiHw, addr: int, length: int, data: bytes | None) -> bytes | None:
        """Translate page by page with the ADI's PASID; None on a fault."""
        pasid, pmr = self._pasid(a)
        out = bytearray()
        pos = 0
        while pos < length:
            n = min(length - pos, 4096 - ((addr + pos) & 0xFFF))
            t = self.host.iommu.translate(PF_BDF, pasid, addr + pos, data is not None, pmr)
            if isinstance(t, Fault):
                self.faults.append(t)
                return None
            if data is None:
                out += self.host.mem.read(t.hpa, n)
            else:
                self.host.mem.write(t.hpa, data[pos : pos + n])
            pos += n
        return bytes(out)

    def _execute(self, n: int, a: AdiHw, size: int) -> None:
        slot = a.head
        raw = self._dma(a, a.addr(AdiPage.RING_BASE_LO.offset) + slot * DESC_SIZE, DESC_SIZE, None)
        if raw is None:
            return self._error(n, a, Err.DMA_FAULT)
        d = Descriptor.unpack(raw) if raw[0] <= Opcode.SEND else None
        if d is None:
            return self._fail(n, a, slot, raw[0], 0, Err.BAD_DESC)
        if d.opcode is not Opcode.NOP and d.length == 0:
            return self._fail(n, a, slot, d.opcode, d.cookie, AdiError.ZERO_LENGTH)
        if d.length > 1 << 20:
            return self._fail(n, a, slot, d.opcode, d.cookie, AdiError.HUGE_LENGTH)
        status = 1
        if d.opcode is Opcode.COPY:
            data = self._dma(a, d.src, d.length, None)
            if data is None:
                return self._fail(n, a, slot, d.opcode, d.cookie, Err.DMA_FAULT)
            self._dma(a, d.dst, d.length, data)  # posted: a faulting write is dropped
        elif d.opcode is Opcode.FILL:
            pat = d.src.to_bytes(8, "little")
            self._dma(a, d.dst, d.length, (pat * (d.length // 8 + 1))[: d.length])
        elif d.opcode is Opcode.SEND:
            data = self._dma(a, d.src, d.length, None)
            if data is None:
                return self._fail(n, a, slot, d.opcode, d.cookie, Err.DMA_FAULT)
            verdict = self._switch(n, a, d.dst_port, data, d.cookie)
            if verdict is None:
                return self._fail(n, a, slot, d.opcode, d.cookie, Err.SEND_DENIED)
            status = verdict
        rec = Completion(status, d.opcode, slot, d.length if status == 1 else 0, d.cookie)
        self._dma(a, a.addr(AdiPage.CPL_BASE_LO.offset) + slot * CPL_SIZE, CPL_SIZE, rec.pack())
        a.head = (a.head + 1) % size
        a.cnt_desc += 1
        a.cnt_bytes += rec.bytes_done
        if d.flags & DescFlags.INTR:
            self._interrupt(a)
        return None

    def _fail(self, n: int, a: AdiHw, slot: int, op: int, cookie: int, err: int) -> None:
        rec = Completion(CPL_ERROR_BASE + err, op, slot, 0, cookie)
        self._dma(a, a.addr(AdiPage.CPL_BASE_LO.offset) + slot * CPL_SIZE, CPL_SIZE, rec.pack())
        self._error(n, a, err)

    def _switch(self, n: int, a: AdiHw, addr: int, data: bytes, cookie: int) -> int | None:
        """Completion status of a SEND (1 delivered, RX_FULL dropped) or None if denied."""
        port = a.reg(AdiPage.SW_PORT.offset)
        if addr >= self.num_adis or not self.fwd[addr] >> 31 or not port >> 30 & 1:
            return None
        d = self.adis[self.fwd[addr] & 0xFFFF]
        dport = d.reg(AdiPage.SW_PORT.offset)
        if not dport >> 31 or (dport & 0xFFF) != (port & 0xFFF) or d.state != 1:
            return None
        cfg = d.reg(AdiPage.RX_CFG.offset)
        slots, slot_bytes = 1 << (cfg & 0xF), 1 << ((cfg >> 8) & 0x1F)
        if len(data) > slot_bytes - RX_HDR_SIZE:
            return None
        if (d.rx_tail + 1) % slots == d.rx_head:
            return int(CplStatus.RX_FULL)
        base = d.addr(AdiPage.RX_BASE_LO.offset) + d.rx_tail * slot_bytes
        if self._dma(d, base + RX_HDR_SIZE, len(data), data) is None:
            return 1  # the receiver's own mapping is broken: its problem, the write is dropped
        self._dma(d, base, RX_HDR_SIZE, RxHeader(len(data), (port >> 16) & 0xFFF, True, cookie).pack())
        d.rx_tail = (d.rx_tail + 1) % slots
        self._interrupt(d)
        return 1

    def _error(self, n: int, a: AdiHw, err: int) -> None:
        a.state, a.err = 2, err
        self._pf_error(n)
        self._interrupt(a)

    def _pf_error(self, n: int) -> None:
        log.info("ADI %d -> ERROR %d", n, self.adis[n].err)
        self.last_err = n | (self.adis[n].err << 16)
        self._pf_irq(0, 0)

    def _interrupt(self, a: AdiHw) -> None:
        if a.reg(AdiPage.IMS_CTRL.offset) & 1:
            a.pending = True
        else:
            self._send_ims(a)

    def _send_ims(self, a: AdiHw) -> None:
        addr = a.addr(AdiPage.IMS_ADDR_LO.offset)
        data = a.reg(AdiPage.IMS_DATA.offset)
        self.host.msi_write(addr, data)


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
