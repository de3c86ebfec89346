"""ep_pcie_fe (ep_tlp_rx + ep_tlp_tx + ep_cfg_space): TLP decode, MMIO to the register bus, completions.

Top: tests/rtl/tb_ep_tlp_path.sv = ep_pcie_fe + a 2 x 1024-DW register responder (stands in for
ep_core). Frames go in and out through the project's own stream driver/monitor
(siov_sim.tb.pcie.ep_device.TlpSource/TlpSink).
"""

from __future__ import annotations

import itertools
import logging
import os
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, RisingEdge, with_timeout
from cocotb.utils import get_sim_time
from cocotbext.pcie.core.tlp import Tlp, TlpType
from cocotbext.pcie.core.utils import PcieId

from siov_sim.tb.pcie.ep_device import TlpFrame, TlpSink, TlpSource
from siov_sim.tb.runner import run_rtl

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
OUR_ID = 0x0100  # bus 1, device 0, function 0 (captured from Cfg0 target IDs)
RC_ID = 0x0000
BAR0 = 0x8000_0000  # 32-bit address, 3-DW headers
BAR2 = 0x12_0000_0000  # above 4 GiB, 4-DW headers
SC, UR = 0, 1
PASID_PRFX = 0x9100_0042


@dataclass(frozen=True, slots=True)
class Cpl:
    fmt: int
    typ: int
    length: int
    cid: int
    status: int
    bc: int
    rid: int
    tag: int
    la: int
    data: tuple[int, ...]

    @classmethod
    def of(cls, f: TlpFrame) -> Cpl:
        h = f.hdr
        tag = (h >> 40) & 0xFF | ((h >> 115) & 1) << 8 | ((h >> 119) & 1) << 9
        return cls(
            fmt=h >> 125,
            typ=(h >> 120) & 0x1F,
            length=(h >> 96) & 0x3FF,
            cid=(h >> 80) & 0xFFFF,
            status=(h >> 77) & 7,
            bc=(h >> 64) & 0xFFF or 4096,
            rid=(h >> 48) & 0xFFFF,
            tag=tag,
            la=(h >> 32) & 0x7F,
            data=tuple(f.data),
        )


def hdr_of(tlp: Tlp) -> int:
    return TlpFrame.from_tlp(tlp).hdr


class Tb:
    def __init__(self, dut: Any) -> None:
        self.dut = dut
        self.rng = random.Random(cocotb.RANDOM_SEED)
        self.lanes = len(dut.rx_req_tlp_data) // 32
        Clock(dut.clk, 4, unit="ns").start()
        dut.rx_req_tlp_prfx.value = 0
        dut.rx_cpl_tlp_valid.value = 0
        dut.rx_cpl_tlp_sop.value = 0
        dut.rx_cpl_tlp_hdr.value = 0
        if hasattr(dut, "stall"):  # tb_ep_tlp_path only
            dut.stall.value = 0
            dut.dma_tp.value = 0
        self.src = TlpSource(dut, "rx_req_tlp", dut.clk)
        self.cpls: deque[Cpl] = deque()
        self.got = Event()
        self.sink = TlpSink(dut, "tx_cpl_tlp", dut.clk, self._on_cpl)
        self.tag = 0
        self.mem: dict[tuple[int, int], int] = {}  # (bar, dw index) -> value, model of the responder
        self.msgs: list[tuple[int, int, int]] = []  # (message code, requester ID, fmt/type)
        self.cid = 0  # Bus/Device captured by the RTL from the last CfgWr0 (0 before the first)

    def _on_cpl(self, frame: TlpFrame, _stream: str) -> None:
        if (frame.hdr >> 123) & 0b11 == 0b10:  # Msg (type 10rrr): AER error message
            self.msgs.append(((frame.hdr >> 64) & 0xFF, (frame.hdr >> 80) & 0xFFFF, frame.hdr >> 120))
            return
        self.cpls.append(Cpl.of(frame))
        self.got.set()

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    def next_tag(self) -> int:
        self.tag = (self.tag + 1) & 0xFF
        return self.tag

    async def recv(self, timeout_ns: int = 200_000) -> Cpl:
        while not self.cpls:
            self.got.clear()
            await with_timeout(self.got.wait(), timeout_ns, "ns")
        return self.cpls.popleft()

    async def no_cpl(self, cycles: int = 60) -> None:
        await ClockCycles(self.dut.clk, cycles)
        assert not self.cpls, f"unexpected completion {self.cpls[0]}"

    def send(self, frame: TlpFrame) -> None:
        self.src.send(frame)

    # ---- config ---------------------------------------------------------------------------------
    def cfg_frame(
        self, off: int, write: bool, value: int = 0, be: int = 0xF, kind: int = 0, tid: int = OUR_ID
    ) -> tuple[TlpFrame, int]:
        t = Tlp()
        t.fmt_type = (
            {0: TlpType.CFG_WRITE_0, 1: TlpType.CFG_WRITE_1}
            if write
            else {0: TlpType.CFG_READ_0, 1: TlpType.CFG_READ_1}
        )[kind]
        t.requester_id = PcieId.from_int(RC_ID)
        t.dest_id = PcieId.from_int(tid)
        t.tag = self.next_tag()
        t.address = off
        t.length = 1
        t.first_be = be
        if write:
            t.data = bytearray(value.to_bytes(4, "little"))
        return TlpFrame.from_tlp(t), t.tag

    async def cfg_rd(self, off: int, tid: int = OUR_ID) -> int:
        f, tag = self.cfg_frame(off, False, tid=tid)
        self.send(f)
        c = await self.recv()
        assert (c.fmt, c.typ, c.status, c.tag, c.length, c.bc, c.la) == (2, 0x0A, SC, tag, 1, 4, 0), c
        assert c.cid == self.cid and c.rid == RC_ID, c
        return c.data[0]

    async def cfg_wr(self, off: int, value: int, be: int = 0xF, tid: int = OUR_ID) -> None:
        f, tag = self.cfg_frame(off, True, value, be, tid=tid)
        self.send(f)
        c = await self.recv()
        assert (c.fmt, c.typ, c.status, c.tag, c.length, c.bc, c.la) == (0, 0x0A, SC, tag, 0, 4, 0), c
        self.cid = tid & ~7
        assert c.cid == self.cid, c

    async def enable(self, mps_code: int = 0) -> None:
        await self.cfg_wr(0x10, BAR0 & 0xFFFF_FFFF)
        await self.cfg_wr(0x14, BAR0 >> 32)
        await self.cfg_wr(0x18, BAR2 & 0xFFFF_FFFF)
        await self.cfg_wr(0x1C, BAR2 >> 32)
        await self.cfg_wr(0x48, 0x2810 | mps_code << 5)
        await self.cfg_wr(0x04, 0x0006)  # MSE + BME

    # ---- memory ---------------------------------------------------------------------------------
    def mem_frame(
        self, addr: int, length: int, fbe: int, lbe: int, data: list[int] | None = None, tag: int | None = None
    ) -> TlpFrame:
        t = Tlp()
        is64 = addr >> 32 != 0
        if data is None:
            t.fmt_type = TlpType.MEM_READ_64 if is64 else TlpType.MEM_READ
        else:
            t.fmt_type = TlpType.MEM_WRITE_64 if is64 else TlpType.MEM_WRITE
            t.data = bytearray(b"".join(d.to_bytes(4, "little") for d in data))
        t.requester_id = PcieId.from_int(RC_ID)
        t.tag = self.next_tag() if tag is None else tag
        t.address = addr
        t.length = length & 0x3FF
        t.first_be = fbe
        t.last_be = lbe
        return TlpFrame.from_tlp(t)

    @staticmethod
    def bar_of(addr: int) -> tuple[int, int]:
        if BAR0 <= addr < BAR0 + (1 << 20):
            return 0, addr - BAR0
        return 1, addr - BAR2

    def model_write(self, addr: int, data: list[int], fbe: int, lbe: int) -> None:
        bar, off = self.bar_of(addr)
        for i, d in enumerate(data):
            be = fbe if i == 0 else (lbe if i == len(data) - 1 else 0xF)
            key = (bar, ((off >> 2) + i) & 0x3FF)
            old = self.mem.get(key, 0)
            m = sum(0xFF << (8 * b) for b in range(4) if be >> b & 1)
            self.mem[key] = (old & ~m) | (d & m)

    async def mem_wr(self, addr: int, data: list[int], fbe: int = 0xF, lbe: int | None = None) -> None:
        lbe = (0xF if len(data) > 1 else 0) if lbe is None else lbe
        self.send(self.mem_frame(addr, len(data), fbe, lbe, data))
        self.model_write(addr, data, fbe, lbe)

    async def mem_rd(self, addr: int, length: int, fbe: int = 0xF, lbe: int | None = None, mps: int = 128) -> list[int]:
        """Issue an MRd, collect its CplDs, check every completion field, return the DWs."""
        lbe = (0xF if length > 1 else 0) if lbe is None else lbe
        f = self.mem_frame(addr, length, fbe, lbe)
        tag = (f.hdr >> 72) & 0xFF
        self.send(f)
        first_off = next((b for b in range(4) if fbe >> b & 1), 0)
        if length == 1:
            last = max((b for b in range(4) if fbe >> b & 1), default=0)
            total = 1 if fbe == 0 else last - first_off + 1
        else:
            lbe_pad = next(p for p in range(4) if lbe >> (3 - p) & 1)
            total = length * 4 - first_off - lbe_pad
        out: list[int] = []
        cur = addr
        remaining = total
        while len(out) < length:
            c = await self.recv()
            assert (c.fmt, c.typ, c.status, c.tag, c.rid, c.cid) == (2, 0x0A, SC, tag, RC_ID, OUR_ID), c
            assert c.bc == remaining, f"byte count {c.bc} != {remaining}: {c}"
            off = first_off if cur == addr else 0
            assert c.la == (cur & 0x7C) + off, f"lower address {c.la:#x}: {c}"
            assert c.length == len(c.data) and c.length <= mps // 4, c
            if len(out) + c.length < length:
                assert (cur + 4 * c.length) % 64 == 0, f"split not on RCB: {c}"
            out += c.data
            remaining -= 4 * c.length - off
            cur += 4 * c.length
        assert len(out) == length
        return out

    def expected(self, addr: int, length: int) -> list[int]:
        bar, off = self.bar_of(addr)
        return [self.mem.get((bar, ((off >> 2) + i) & 0x3FF), None) for i in range(length)]  # type: ignore[misc]

    def check_read(self, addr: int, got: list[int]) -> None:
        for i, (g, e) in enumerate(zip(got, self.expected(addr, len(got)), strict=True)):
            if e is not None:
                assert g == e, f"DW {i} of read at {addr:#x}: {g:#010x} != {e:#010x}"

    async def expect_ur(self, tag: int | None = None, typ: int = 0x0A) -> Cpl:
        c = await self.recv()
        assert (c.fmt, c.typ, c.status, c.length, c.cid, c.rid) == (0, typ, UR, 0, OUR_ID, RC_ID), c
        if tag is not None:
            assert c.tag == tag, c
        return c

    async def raw_beats(self, hdr: int, beats: list[tuple[int, int, bool, bool]], prfx: int = 0) -> None:
        """Drive beats (data, strb, sop, eop) directly (the frame source must be idle)."""
        d = self.dut
        for data, strb, sop, eop in beats:
            d.rx_req_tlp_hdr.value = hdr
            d.rx_req_tlp_prfx.value = prfx
            d.rx_req_tlp_data.value = data
            d.rx_req_tlp_strb.value = strb
            d.rx_req_tlp_sop.value = int(sop)
            d.rx_req_tlp_eop.value = int(eop)
            d.rx_req_tlp_valid.value = 1
            while True:
                await RisingEdge(d.clk)
                if d.rx_req_tlp_ready.value:
                    break
        d.rx_req_tlp_valid.value = 0
        d.rx_req_tlp_prfx.value = 0

    def reg_count(self) -> int:
        return int(self.dut.reg_count.value.to_unsigned())


def pause_1_in_3() -> Iterator[int]:
    return itertools.cycle([0, 1, 0])


# ------------------------------------------------------------------------------------------------
@cocotb.test(timeout_time=200, timeout_unit="us")
async def config_requests(dut: Any) -> None:
    """CfgRd0/CfgWr0 completions carry the captured completer ID; Cfg1 -> UR; unimplemented -> 0."""
    tb = Tb(dut)
    await tb.reset()
    assert await tb.cfg_rd(0x00) == 0x5105_1DEA  # completer ID 0 before the first CfgWr0
    assert dut.cfg_requester_id.value.to_unsigned() == 0, "a CfgRd0 must not set the requester ID"
    await tb.cfg_wr(0x0C, 0)
    assert dut.cfg_requester_id.value.to_unsigned() == OUR_ID
    assert await tb.cfg_rd(0x100) == 0x1101_001B
    assert await tb.cfg_rd(0x114) == 0x0180_8086
    assert await tb.cfg_rd(0x200) == 0
    assert await tb.cfg_rd(0xFFC) == 0
    await tb.cfg_wr(0x3C, 0x5A, be=0x1)
    assert await tb.cfg_rd(0x3C) == 0x5A
    await tb.cfg_wr(0x00, 0xFFFF_FFFF)  # RO
    assert await tb.cfg_rd(0x00) == 0x5105_1DEA
    # a CfgRd0 with another bus number changes nothing; the next CfgWr0 is captured
    assert await tb.cfg_rd(0x08, tid=0x0208) == 0x0880_0001
    assert dut.cfg_requester_id.value.to_unsigned() == OUR_ID
    await tb.cfg_wr(0x0C, 0, tid=0x0208)
    assert dut.cfg_requester_id.value.to_unsigned() == 0x0208
    await tb.cfg_wr(0x0C, 0)
    # Cfg1 read and write -> UR, nothing written
    for write in (False, True):
        f, tag = tb.cfg_frame(0x3C, write, 0x77, kind=1)
        tb.send(f)
        await tb.expect_ur(tag)
    assert await tb.cfg_rd(0x3C) == 0x5A
    # UR'd non-posted requests are logged: DevSta UR Detected + Correctable Error Detected
    assert (await tb.cfg_rd(0x48)) >> 16 & 0b1001 == 0b1001
    # system page size through TLPs: BAR2 is sized for 64 KiB pages whatever SPS says
    await tb.cfg_wr(0x18, 0xFFFF_FFFF)
    for sps, shift in ((0x1, 12), (0x10, 16)):
        await tb.cfg_wr(0x120, sps)
        assert dut.cfg_sys_page_shift.value.to_unsigned() == shift
        assert await tb.cfg_rd(0x18) == (~((4 << 16) - 1) & 0xFFFF_FFFF) | 0xC
    await tb.cfg_wr(0x120, 0x3)  # rejected
    assert await tb.cfg_rd(0x120) == 0x10


@cocotb.test(timeout_time=200, timeout_unit="us")
async def config_functions_1_to_7(dut: Any) -> None:
    """Cfg0 to functions 1..7 (single-function device): UR, nothing written or captured, not logged."""
    tb = Tb(dut)
    await tb.reset()
    await tb.cfg_wr(0x3C, 0x5A, be=0x1)
    await tb.cfg_wr(0x48, 0x000F_2810)  # clear DevSta
    for fn in range(1, 8):
        for write in (False, True):
            f, tag = tb.cfg_frame(0x3C, write, 0x77, be=0x1, tid=OUR_ID | fn)
            tb.send(f)
            await tb.expect_ur(tag)
        assert dut.cfg_requester_id.value.to_unsigned() == OUR_ID, f"fn {fn}: ID re-captured"
    assert await tb.cfg_rd(0x3C) == 0x5A
    assert await tb.cfg_rd(0x00) == 0x5105_1DEA
    assert (await tb.cfg_rd(0x48)) >> 16 == 0, "probe of an absent function is not an error"
    # a CfgWr0 from another bus to function 0 is captured; Bus/Device only
    await tb.cfg_wr(0x3C, 0x5A, be=0x1, tid=0x0A10)
    assert dut.cfg_requester_id.value.to_unsigned() == 0x0A10


@cocotb.test(timeout_time=500, timeout_unit="us")
@cocotb.parametrize(stall=[False, True], backpressure=[None, pause_1_in_3])
async def mmio_read_write(dut: Any, stall: bool, backpressure: Any) -> None:
    """MWr/MRd to BAR0 (3-DW) and BAR2 (4-DW): register bus requests, BEs, CplD splitting on MPS."""
    tb = Tb(dut)
    await tb.reset()
    dut.stall.value = int(stall)
    if backpressure:
        tb.sink.set_pause_generator(backpressure())
    await tb.enable()
    # one DW each, both BARs
    await tb.mem_wr(BAR0 + 0x10, [0x1122_3344])
    await tb.mem_wr(BAR2 + 0x2008, [0xCAFE_F00D])
    assert await tb.mem_rd(BAR0 + 0x10, 1) == [0x1122_3344]
    assert (int(dut.last_bar.value), dut.last_addr.value.to_unsigned(), int(dut.last_write.value)) == (0, 0x10, 0)
    assert await tb.mem_rd(BAR2 + 0x2008, 1) == [0xCAFE_F00D]
    assert (int(dut.last_bar.value), dut.last_addr.value.to_unsigned()) == (1, 0x2008)
    # partial byte enables, single DW
    await tb.mem_wr(BAR0 + 0x10, [0xAAAA_AAAA], fbe=0b0110)
    assert await tb.mem_rd(BAR0 + 0x10, 1) == [0x11AA_AA44]
    assert await tb.mem_rd(BAR0 + 0x10, 1, fbe=0b0100) == [0x11AA_AA44]
    assert dut.last_be.value.to_unsigned() == 0b0100
    # multi-DW write with first/last BEs, then a long read split into CplDs (MPS 128 B)
    data = [tb.rng.getrandbits(32) for _ in range(32)]
    await tb.mem_wr(BAR0 + 0x100, data, fbe=0b1110, lbe=0b0111)
    got = await tb.mem_rd(BAR0 + 0x100, 32)
    tb.check_read(BAR0 + 0x100, got)
    n = tb.reg_count()
    # 128-DW read (512 B) from an unaligned start: 5 CplDs on 128-byte boundaries
    for i in range(160):
        tb.model_write(BAR2 + 0x3000 + 4 * i, [0x5000_0000 + i], 0xF, 0)
    for i in range(0, 160, 32):  # MWr payload <= MPS (128 B = 32 DW)
        await tb.mem_wr(BAR2 + 0x3000 + 4 * i, [0x5000_0000 + i + j for j in range(32)])
    got = await tb.mem_rd(BAR2 + 0x3034, 128, fbe=0b1100, lbe=0b0011)
    tb.check_read(BAR2 + 0x3034, got)
    assert tb.reg_count() == n + 160 + 128
    # zero-length read: one DW, byte count 1, no register access
    n = tb.reg_count()
    assert len(await tb.mem_rd(BAR0 + 0x40, 1, fbe=0)) == 1
    assert tb.reg_count() == n


@cocotb.test(timeout_time=2000, timeout_unit="us")
async def mmio_random_vs_model(dut: Any) -> None:
    """Random MWr/MRd (lengths, BEs, both BARs, MPS 128/256/512) checked against a memory model."""
    tb = Tb(dut)
    await tb.reset()
    dut.stall.value = 1
    tb.sink.set_pause_generator(iter(lambda: tb.rng.random() < 0.3, None))  # type: ignore[arg-type]
    await tb.enable(0)
    for bar in (BAR0, BAR2):  # define every DW of the responder (its RAM starts random)
        for off in range(0, 0x1000, 128):
            await tb.mem_wr(bar + off, [tb.rng.getrandbits(32) for _ in range(32)])
    for mps_code in (0, 1, 2):
        await tb.enable(mps_code)
        for _ in range(25):
            bar = tb.rng.choice((BAR0, BAR2))
            length = tb.rng.choice((1, 2, 3, 7, 8, 9, 16, 33, 64, 100, 128))
            off = tb.rng.randrange(0, 0x1000 - 4 * length + 1, 4)
            if length > 32 * (1 << mps_code) and tb.rng.random() < 0.5:
                length = 32 * (1 << mps_code)
            fbe = tb.rng.choice((0xF, 0xE, 0xC, 0x8)) if length > 1 else tb.rng.randrange(1, 16)
            lbe = tb.rng.choice((0xF, 0x7, 0x3, 0x1)) if length > 1 else 0
            if tb.rng.random() < 0.5 and length <= 32 * (1 << mps_code):
                await tb.mem_wr(bar + off, [tb.rng.getrandbits(32) for _ in range(length)], fbe, lbe)
            else:
                got = await tb.mem_rd(bar + off, length, fbe, lbe, mps=128 << mps_code)
                tb.check_read(bar + off, got)


@cocotb.test(timeout_time=3000, timeout_unit="us")
async def pipelined_mixed_stream(dut: Any) -> None:
    """Many requests queued back to back (MWr, MRd, CfgRd, UR, malformed): answers in order, data per model."""
    tb = Tb(dut)
    await tb.reset()
    await tb.enable(1)  # MPS 256 B
    for bar in (BAR0, BAR2):
        for off in range(0, 0x1000, 256):
            await tb.mem_wr(bar + off, [tb.rng.getrandbits(32) for _ in range(64)])
    dut.stall.value = 1
    tb.sink.set_pause_generator(iter(lambda: tb.rng.random() < 0.4, None))  # type: ignore[arg-type]
    expect: list[tuple[str, int, Any]] = []  # (kind, tag, expected DWs / None)
    reads: list[tuple[int, int]] = []  # byte ranges of the reads queued so far (all still pending)
    for _ in range(120):
        kind = tb.rng.choice(("wr", "wr", "rd", "rd", "cfg", "ur", "bad"))
        bar = tb.rng.choice((BAR0, BAR2))
        length = tb.rng.choice((1, 2, 5, 16, 64))
        off = tb.rng.randrange(0, 0x1000 - 4 * length + 1, 4)
        lo, hi = bar + off, bar + off + 4 * length
        if kind == "wr":
            # a posted write may pass a read queued before it (PCIe ordering; the front end lets
            # it while the read waits): one into a pending read's range makes that read's data
            # either value (seed 1796529338, DataWidth 64), so such writes are left out
            if any(lo < r_hi and r_lo < hi for r_lo, r_hi in reads):
                continue
            await tb.mem_wr(bar + off, [tb.rng.getrandbits(32) for _ in range(length)])
        elif kind == "rd":
            f = tb.mem_frame(bar + off, length, 0xF, 0xF if length > 1 else 0)
            expect.append(("rd", (f.hdr >> 72) & 0xFF, tb.expected(bar + off, length)))
            reads.append((lo, hi))
            tb.send(f)
        elif kind == "cfg":
            f, tag = tb.cfg_frame(0x00, False)
            expect.append(("cfg", tag, [0x5105_1DEA]))
            tb.send(f)
        elif kind == "ur":
            f = tb.mem_frame(0x4000_0000 + off, length, 0xF, 0xF if length > 1 else 0)
            expect.append(("ur", (f.hdr >> 72) & 0xFF, None))
            tb.send(f)
        else:  # malformed MWr (payload shorter than the length field): dropped
            f = tb.mem_frame(bar + off, 2, 0xF, 0xF, data=[1, 2])
            f.data = [1]
            tb.send(f)
    for kind, tag, want in expect:
        got: list[int] = []
        while True:
            c = await tb.recv()
            assert c.tag == tag, f"{kind}: completion for tag {c.tag}, expected {tag}: {c}"
            if kind == "ur":
                assert c.status == UR, c
                break
            assert c.status == SC, c
            got += c.data
            if len(got) >= len(want):
                break
        if want is not None:
            assert got == want, f"{kind} tag {tag}: data mismatch"
    await tb.no_cpl(50)


@cocotb.test(timeout_time=200, timeout_unit="us")
async def function_level_reset(dut: Any) -> None:
    """Initiate FLR through a CfgWr: completed normally, config back at defaults at once, the reset of
    the rest of the function (flr_rst) held while Transactions Pending is set, then one pulse."""
    tb = Tb(dut)
    await tb.reset()
    await tb.enable()
    pulses = 0

    async def mon() -> None:
        nonlocal pulses
        while True:
            await RisingEdge(dut.clk)
            pulses += int(dut.flr_rst.value)

    cocotb.start_soon(mon())
    assert (await tb.cfg_rd(0x44)) >> 28 & 1 == 1, "DevCap Function Level Reset Capability"
    dut.dma_tp.value = 1
    assert (await tb.cfg_rd(0x48)) >> 16 & 0x20, "DevSta Transactions Pending"
    await tb.mem_wr(BAR0 + 0x10, [0x77])
    await tb.cfg_wr(0x48, 0x0000_A810)  # Initiate FLR
    await ClockCycles(dut.clk, 50)
    assert pulses == 0, "function reset while transactions are pending"
    assert await tb.cfg_rd(0x04) & 0x7 == 0 and await tb.cfg_rd(0x10) == 0x4, "config not reset"
    assert await tb.cfg_rd(0x48) == 0x0020_2810, "DevCtl defaults, FLR bit reads 0, TP still set"
    dut.dma_tp.value = 0
    await ClockCycles(dut.clk, 5)
    assert pulses == 1
    assert dut.cfg_requester_id.value.to_unsigned() == OUR_ID
    await tb.enable()  # software restores config; MMIO works again
    assert len(await tb.mem_rd(BAR0 + 0x10, 1)) == 1
    assert pulses == 1


@cocotb.test(timeout_time=500, timeout_unit="us")
async def aer_errors_and_messages(dut: Any) -> None:
    """AER through TLPs: header and PASID prefix logged, ERR_* messages on tx_cpl between (never
    inside) multi-beat completions under back-pressure, per DevCtl enables."""
    tb = Tb(dut)
    await tb.reset()
    await tb.enable()
    await tb.cfg_wr(0x48, 0x0000_281F)  # CERE NFERE FERE URRE, MPS 128
    assert await tb.cfg_rd(0x140) == 0x0002_0001 and await tb.cfg_rd(0x110) >> 20 == 0x140
    tb.sink.set_pause_generator(pause_1_in_3())
    for i in range(64):
        tb.model_write(BAR0 + 0x400 + 4 * i, [i * 3], 0xF, 0)
    for i in range(0, 64, 32):
        await tb.mem_wr(BAR0 + 0x400 + 4 * i, [(i + j) * 3 for j in range(32)])
    # a 64-DW read (two CplDs of several beats) and, behind it, a PASID-prefixed MWr while PASID is
    # disabled (posted UR: ERR_NONFATAL) and a malformed MWr (ERR_FATAL)
    rd = tb.mem_frame(BAR0 + 0x400, 64, 0xF, 0xF)
    bad = tb.mem_frame(BAR0 + 0x80, 1, 0xF, 0, data=[1])
    bad.prfx = PASID_PRFX
    mal = tb.mem_frame(BAR0 + 0x80, 2, 0xF, 0xF, data=[1, 2])
    mal.data = [1]
    tb.send(rd)
    tb.send(bad)
    tb.send(mal)
    got: list[int] = []
    while len(got) < 64:
        c = await tb.recv()
        assert c.status == SC, c
        got += c.data
    tb.check_read(BAR0 + 0x400, got)
    await ClockCycles(dut.clk, 50)
    assert [(m[0], m[1]) for m in tb.msgs] == [(0x31, OUR_ID), (0x33, OUR_ID)], tb.msgs
    assert all(m[2] == 0b0011_0000 for m in tb.msgs), "Msg, 4-DW header, routed to Root Complex"
    assert not tb.sink.protocol_errors, tb.sink.protocol_errors
    # AER: UR and Malformed logged; FEP/header/prefix of the first (the PASID-prefixed MWr)
    assert await tb.cfg_rd(0x144) == 1 << 20 | 1 << 18
    assert await tb.cfg_rd(0x158) == 1 << 11 | 20
    assert await tb.cfg_rd(0x15C) == bad.hdr >> 96 and await tb.cfg_rd(0x160) == (bad.hdr >> 64) & 0xFFFF_FFFF
    assert await tb.cfg_rd(0x178) == PASID_PRFX
    # a UR'd MRd (BAR miss): advisory non-fatal; ERR_COR once ANFE is unmasked
    await tb.cfg_wr(0x154, 0)
    tb.send(tb.mem_frame(0x4000_0000, 1, 0xF, 0))
    await tb.expect_ur()
    await ClockCycles(dut.clk, 20)
    assert tb.msgs[-1][0] == 0x30 and len(tb.msgs) == 3
    assert (await tb.cfg_rd(0x150)) >> 13 & 1


@cocotb.test(timeout_time=500, timeout_unit="us")
async def posted_passes_blocked_read(dut: Any) -> None:
    """tx_cpl stalled: MRds run out of completion resources, MWrs behind them still reach the registers."""
    tb = Tb(dut)
    await tb.reset()
    await tb.enable()
    await tb.mem_wr(BAR0 + 0x100, [0x1])
    assert await tb.mem_rd(BAR0 + 0x200, 1) is not None
    tb.sink.set_pause_generator(itertools.repeat(1))  # the link takes no completion
    n = tb.reg_count()
    tags = []
    for _ in range(3):
        f = tb.mem_frame(BAR0 + 0x200, 1, 0xF, 0)
        tags.append((f.hdr >> 72) & 0xFF)
        tb.send(f)
    await tb.mem_wr(BAR0 + 0x100, [0xBEEF])
    await tb.mem_wr(BAR2 + 0x10, [0xF00D])
    for _ in range(400):
        await RisingEdge(dut.clk)
        if int(dut.last_write.value) and dut.last_addr.value.to_unsigned() == 0x10:
            break
    assert int(dut.last_write.value) == 1 and dut.last_addr.value.to_unsigned() == 0x10, (
        "posted writes stuck behind a non-posted request that cannot complete (deadlock rule)"
    )
    assert tb.reg_count() >= n + 2
    assert not tb.cpls
    tb.sink.set_pause_generator(None)
    for tag in tags:  # the reads complete in order once the link takes completions again
        c = await tb.recv()
        assert c.tag == tag and c.status == SC, c
    assert await tb.mem_rd(BAR0 + 0x100, 1) == [0xBEEF]
    assert await tb.mem_rd(BAR2 + 0x10, 1) == [0xF00D]


@cocotb.test(timeout_time=500, timeout_unit="us")
async def doorbell_burst_rate(dut: Any) -> None:
    """Back-to-back single-DW MWrs (doorbells): clocks per write from first sop to last register write."""
    tb = Tb(dut)
    await tb.reset()
    await tb.enable()
    n = tb.reg_count()
    count = 64
    for i in range(count):
        await tb.mem_wr(BAR2 + (i % 4) * 0x100 + 0x8, [i])  # the responder aliases 4 KiB
    while not int(dut.rx_req_tlp_valid.value):
        await RisingEdge(dut.clk)
    start = get_sim_time(unit="ns")
    while tb.reg_count() < n + count:
        await RisingEdge(dut.clk)
    clocks = (get_sim_time(unit="ns") - start) / 4
    per = clocks / count
    dut._log.info("doorbell burst: %d MWr in %d clocks = %.2f clocks per doorbell", count, clocks, per)
    assert per <= 3.5, f"{per:.2f} clocks per posted MMIO write"
    for i in range(4):
        assert await tb.mem_rd(BAR2 + i * 0x100 + 0x8, 1) == [count - 4 + i]


@cocotb.test(timeout_time=500, timeout_unit="us")
async def unsupported_requests(dut: Any) -> None:
    """MSE=0, BAR miss, IO, MRdLk, AtomicOp -> UR completion; posted misses dropped and logged."""
    tb = Tb(dut)
    await tb.reset()
    await tb.enable()
    await tb.cfg_wr(0x04, 0x0004)  # MSE off
    f = tb.mem_frame(BAR0 + 0x20, 1, 0xF, 0)
    tb.send(f)
    c = await tb.expect_ur((f.hdr >> 72) & 0xFF)
    assert c.bc == 4 and c.la == 0x20, c
    n = tb.reg_count()
    await tb.mem_wr(BAR0 + 0x20, [1])
    await tb.no_cpl(30)
    assert tb.reg_count() == n
    await tb.cfg_wr(0x04, 0x0006)
    # outside both BARs: read -> UR (byte count of the request), write -> dropped + UR Detected
    await tb.cfg_wr(0x48, 0x000F_2810)  # clear DevSta
    f = tb.mem_frame(BAR0 + (1 << 20), 4, 0xF, 0xF)
    tb.send(f)
    c = await tb.expect_ur()
    assert c.bc == 16, c
    await tb.cfg_wr(0x48, 0x000F_2810)
    tb.send(tb.mem_frame(0x4000_0000, 1, 0xF, 0, data=[5]))
    await tb.no_cpl(30)
    assert tb.reg_count() == n
    assert (await tb.cfg_rd(0x48)) >> 16 == 0b1010, "posted UR: Non-Fatal + UR Detected"
    # IO read / write, MRdLk (answered with CplLk), FetchAdd (with data): UR, no register access
    for ftype, data, cpl_type in (
        (TlpType.IO_READ, None, 0x0A),
        (TlpType.IO_WRITE, [1], 0x0A),
        (TlpType.MEM_READ_LOCKED, None, 0x0B),
        (TlpType.FETCH_ADD, [1], 0x0A),
    ):
        t = Tlp()
        t.fmt_type = ftype
        t.requester_id = PcieId.from_int(RC_ID)
        t.tag = tb.next_tag()
        t.address = BAR0 + 0x30
        t.length = 1
        t.first_be = 0xF
        if data:
            t.data = bytearray(data[0].to_bytes(4, "little"))
        tb.send(TlpFrame.from_tlp(t))
        await tb.expect_ur(t.tag, typ=cpl_type)
    # messages (Msg, 4-DW, type 10100 = local) are dropped without completion; Vendor-Defined
    # Type 0 (code 0x7E) is an Unsupported Request (logged), Type 1 (0x7F) is silently dropped
    for code, logged in ((0x7F, 0), (0x7E, 0b1010), (0x20, 0)):  # VDM1, VDM0, Assert_INTA
        await tb.cfg_wr(0x48, 0x000F_2810)
        tb.send(TlpFrame(hdr=(0b001 << 125) | (0b10100 << 120) | (code << 64)))
        await tb.no_cpl(30)
        assert (await tb.cfg_rd(0x48)) >> 16 == logged, f"message code {code:#x}"
    assert tb.reg_count() == n
    assert await tb.mem_rd(BAR0 + 0x10, 1) is not None


@cocotb.test(timeout_time=500, timeout_unit="us")
async def malformed_requests(dut: Any) -> None:
    """Malformed TLPs: non-posted -> UR, posted -> dropped + Fatal Error Detected; never a hang."""
    tb = Tb(dut)
    await tb.reset()
    await tb.enable()
    await tb.mem_wr(BAR0 + 0x80, [0x1234_5678])

    async def np_ur(frame: TlpFrame, what: str) -> None:
        await tb.cfg_wr(0x48, 0x000F_2810)
        n = tb.reg_count()
        tb.send(frame)
        c = await tb.recv()
        assert c.status == UR and c.fmt == 0, f"{what}: {c}"
        assert tb.reg_count() == n, f"{what}: reached the register bus"
        assert (await tb.cfg_rd(0x48)) >> 16 & 0b0100, f"{what}: Fatal Error Detected not set"

    async def p_drop(frame: TlpFrame, what: str) -> None:
        await tb.cfg_wr(0x48, 0x000F_2810)
        n = tb.reg_count()
        tb.send(frame)
        await tb.no_cpl(40)
        assert tb.reg_count() == n, f"{what}: reached the register bus"
        assert (await tb.cfg_rd(0x48)) >> 16 & 0b0100, f"{what}: Fatal Error Detected not set"

    await np_ur(tb.mem_frame(BAR0 + 0xFF8, 4, 0xF, 0xF), "MRd crossing 4 KiB")
    await np_ur(tb.mem_frame(BAR0 + 0x80, 1, 0xF, 0x1), "MRd 1 DW with last BE")
    await np_ur(tb.mem_frame(BAR0 + 0x80, 2, 0xF, 0x0), "MRd 2 DW with last BE 0")
    await np_ur(tb.mem_frame(BAR0 + 0x80, 4, 0x5, 0xF), "MRd non-contiguous first BE")
    f, _ = tb.cfg_frame(0x00, False)
    f.hdr = (f.hdr & ~(0x3FF << 96)) | (2 << 96)
    await np_ur(f, "CfgRd length 2")
    f, _ = tb.cfg_frame(0x00, False)
    f.hdr |= 1 << 116  # TC1
    await np_ur(f, "CfgRd TC 1")
    f, _ = tb.cfg_frame(0x00, False)
    f.hdr = f.hdr | 1 << 125  # Fmt 001b: Cfg type with a 4-DW header (reserved combination)
    await np_ur(f, "CfgRd with 4-DW header")
    f, _ = tb.cfg_frame(0x00, False)
    f.prfx = PASID_PRFX
    await np_ur(f, "CfgRd with PASID prefix")
    f = tb.mem_frame(BAR0 + 0x80, 1, 0xF, 0)
    f.prfx = 0x8000_0001  # local prefix: not supported
    await np_ur(f, "MRd with local prefix")
    f = tb.mem_frame(BAR0 + 0x80, 2, 0xF, 0xF, data=[1, 2])
    f.data = [1]  # length 2, one DW of data
    await p_drop(f, "MWr length > data")
    f = tb.mem_frame(BAR0 + 0x80, 1, 0xF, 0, data=[1])
    f.data = [1, 2, 3]
    await p_drop(f, "MWr data > length")
    await p_drop(tb.mem_frame(BAR0 + 0x800, 64, 0xF, 0xF, data=list(range(64))), "MWr > MPS")
    await p_drop(tb.mem_frame(BAR0 + 0xFFC, 2, 0xF, 0xF, data=[1, 2]), "MWr crossing 4 KiB")
    await p_drop(TlpFrame(hdr=(0b000 << 125) | (0b11011 << 120) | (1 << 96)), "undefined type")
    # truncated multi-beat MWr (no eop before the next sop), then a good MRd: the MRd is served
    await tb.cfg_wr(0x48, 0x000F_2810)
    n = tb.reg_count()
    lanes = tb.lanes
    wr = tb.mem_frame(BAR0 + 0x80, 2 * lanes, 0xF, 0xF, data=[7] * (2 * lanes))
    await tb.raw_beats(wr.hdr, [(0x07, (1 << lanes) - 1, True, False)])
    rd = tb.mem_frame(BAR0 + 0x80, 1, 0xF, 0)
    await tb.raw_beats(rd.hdr, [(0, 0, True, True)])
    c = await tb.recv()
    assert c.status == SC and c.data == (0x1234_5678,), c
    assert tb.reg_count() == n + 1
    # a stray beat without sop is ignored
    await tb.raw_beats(0, [(0, 0, False, True)])
    assert await tb.mem_rd(BAR0 + 0x80, 1) == [0x1234_5678]
    # PASID prefix while PASID Enable is clear: read -> UR, write dropped (UR Detected, non-fatal)
    await tb.cfg_wr(0x48, 0x000F_2810)
    n = tb.reg_count()
    f = tb.mem_frame(BAR0 + 0x80, 1, 0xF, 0)
    f.prfx = PASID_PRFX
    tb.send(f)
    await tb.expect_ur((f.hdr >> 72) & 0xFF)
    assert (await tb.cfg_rd(0x48)) >> 16 == 0b1001
    await tb.cfg_wr(0x48, 0x000F_2810)
    f = tb.mem_frame(BAR0 + 0x84, 1, 0xF, 0, data=[0xDEAD])
    f.prfx = PASID_PRFX
    tb.send(f)
    await tb.no_cpl(30)
    assert tb.reg_count() == n, "PASID-prefixed write with PASID disabled reached the register bus"
    assert (await tb.cfg_rd(0x48)) >> 16 == 0b1010
    # with PASID Enable set: PASID on MMIO accepted and ignored; other End-End prefix -> UR
    await tb.cfg_wr(0x104, 0x0001_0000, be=0x4)
    f = tb.mem_frame(BAR0 + 0x80, 1, 0xF, 0)
    f.prfx = PASID_PRFX
    tb.send(f)
    c = await tb.recv()
    assert c.status == SC and c.data == (0x1234_5678,), c
    f = tb.mem_frame(BAR0 + 0x84, 1, 0xF, 0, data=[0xABCD])
    f.prfx = PASID_PRFX | 1 << 23
    tb.send(f)
    assert await tb.mem_rd(BAR0 + 0x84, 1) == [0xABCD]
    await tb.cfg_wr(0x48, 0x000F_2810)
    f = tb.mem_frame(BAR0 + 0x80, 1, 0xF, 0)
    f.prfx = 0x9200_0000  # End-End prefix type 0010 (not supported here)
    tb.send(f)
    await tb.expect_ur()
    assert (await tb.cfg_rd(0x48)) >> 16 == 0b1001


@cocotb.test(timeout_time=500, timeout_unit="us")
async def malformed_framing(dut: Any) -> None:
    """Framing the length field cannot explain: an MRd (no data) streamed over two beats -> UR
    completion with its tag; an MWr streaming far more than its length and than the payload buffer
    (the DW counter saturates, extra beats are not stored) -> dropped; both logged as Malformed
    (Fatal Error Detected), neither reaches the register bus, and the traffic behind them is
    served. A zero-length MWr (1 DW, no byte enabled) is a legal no-op: no access, nothing logged."""
    tb = Tb(dut)
    await tb.reset()
    await tb.enable()
    lanes = tb.lanes
    await tb.mem_wr(BAR0 + 0x80, [0x1234_5678])
    assert await tb.mem_rd(BAR0 + 0x80, 1) == [0x1234_5678]
    # MRd with sop but no eop, then a body beat with eop: malformed, UR, no register read
    await tb.cfg_wr(0x48, 0x000F_2810)
    n = tb.reg_count()
    rd = tb.mem_frame(BAR0 + 0x80, 1, 0xF, 0)
    await tb.raw_beats(rd.hdr, [(0, 0, True, False), (0, 0, False, True)])
    c = await tb.expect_ur((rd.hdr >> 72) & 0xFF)
    assert c.bc == 4, c
    assert tb.reg_count() == n, "multi-beat MRd reached the register bus"
    assert (await tb.cfg_rd(0x48)) >> 16 & 0b0100, "MRd over two beats: Fatal Error Detected not set"
    # MWr of length 4 carrying 2400 DWs (> the 2047 the counter holds, > 128-DW payload buffer)
    await tb.cfg_wr(0x48, 0x000F_2810)
    big = tb.mem_frame(BAR0 + 0x80, 4, 0xF, 0xF, data=[0xBAD0_0000, 1, 2, 3])
    big.data = [0xBAD0_0000 + i for i in range(2400)]
    assert len(big.data) // lanes > 128 // lanes
    tb.send(big)
    assert await tb.mem_rd(BAR0 + 0x80, 1) == [0x1234_5678], "oversized MWr landed"
    assert tb.reg_count() == n + 1  # only the read
    assert (await tb.cfg_rd(0x48)) >> 16 & 0b0100, "oversized MWr: Fatal Error Detected not set"
    # zero-length write: accepted and ignored, not an error
    await tb.cfg_wr(0x48, 0x000F_2810)
    n = tb.reg_count()
    tb.send(tb.mem_frame(BAR0 + 0x80, 1, 0x0, 0, data=[0xFFFF_FFFF]))
    await tb.no_cpl(30)
    assert tb.reg_count() == n, "zero-length MWr reached the register bus"
    assert (await tb.cfg_rd(0x48)) >> 16 == 0, "zero-length MWr logged as an error"
    assert await tb.mem_rd(BAR0 + 0x80, 1) == [0x1234_5678]
    assert not tb.sink.protocol_errors, tb.sink.protocol_errors


@cocotb.test(timeout_time=200, timeout_unit="us")
async def poisoned_and_status_logging(dut: Any) -> None:
    """Poisoned MWr dropped (Detected Parity Error), poisoned CfgWr -> UR; rx_cpl UR/CA logged."""
    tb = Tb(dut)
    await tb.reset()
    await tb.enable()
    await tb.mem_wr(BAR0 + 0x90, [0x11])
    assert await tb.mem_rd(BAR0 + 0x90, 1) == [0x11]  # posted write done
    n = tb.reg_count()
    f = tb.mem_frame(BAR0 + 0x90, 1, 0xF, 0, data=[0x22])
    f.hdr |= 1 << 110
    tb.send(f)
    assert await tb.mem_rd(BAR0 + 0x90, 1) == [0x11]
    assert tb.reg_count() == n + 1
    assert (await tb.cfg_rd(0x04)) >> 31 == 1
    await tb.cfg_wr(0x04, 0x8000_0006)
    assert (await tb.cfg_rd(0x04)) >> 31 == 0
    f, tag = tb.cfg_frame(0x3C, True, 0x33, be=0x1)
    f.hdr |= 1 << 110
    tb.send(f)
    await tb.expect_ur(tag)
    assert await tb.cfg_rd(0x3C) == 0
    # completions for the device's own DMA reads: UR -> Received Master Abort, CA -> Target Abort
    d = tb.dut
    for status in (UR, 4):
        d.rx_cpl_tlp_hdr.value = (0b000 << 125) | (0b01010 << 120) | (status << 77)
        d.rx_cpl_tlp_sop.value = 1
        d.rx_cpl_tlp_valid.value = 1
        await RisingEdge(d.clk)
        d.rx_cpl_tlp_valid.value = 0
    sta = (await tb.cfg_rd(0x04)) >> 16
    assert sta & (1 << 13) and sta & (1 << 12), hex(sta)


@pytest.mark.rtl
@pytest.mark.parametrize("data_width", [256, 64])
def test_ep_tlp_path(data_width: int) -> None:
    run_rtl(
        "tb_ep_tlp_path",
        test_module=__name__,
        parameters={"DataWidth": data_width},
        extra_sources=[HERE / "tb_ep_tlp_path.sv"],
        extra_env={"COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "INFO")},
    )
