"""ep_dma end to end (through tests/rtl/ep_dma_tb.sv: ep_dma + an ep_ram_sdp local buffer).

A Python client runs COPY jobs the way the ADI core does (read source into the buffer, on the read
status write the buffer to the destination, then an interrupt message), against a Python host
that answers MRd with split, interleaved completions and applies MWr to its memory. Every
interrupt is checked to arrive after its copy's data; the 4 KiB copy benchmark reports the
copy bandwidth as a fraction of the datapath limit (DataWidth x clock).
"""

from __future__ import annotations

import logging
import random
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from siov_sim.tb.runner import run_rtl

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)  # the measured numbers are reported at INFO

RAM_ADDR_WIDTH = 16
SLOT = 4096  # local buffer bytes per copy slot (16 slots)
HOST_BASE = 0x1_2340_0000  # above 4 GiB: 4-DW headers
HOST_SIZE = 1 << 20
MSI_BASE = 0xFEE0_0000
DMA_OK, DMA_ERR_BME = 0, 6


@dataclass
class Copy:
    idx: int
    src: int
    dst: int
    length: int
    ram: int
    pasid: int
    state: str = "wait"  # wait -> rd -> wr -> msi -> done


class DmaBench:
    def __init__(self, dut, rng: random.Random) -> None:
        self.dut = dut
        self.rng = rng
        self.width = len(dut.rx_cpl_tlp_data)
        self.lanes = self.width // 32
        self.mem = bytearray(rng.getrandbits(8) for _ in range(HOST_SIZE // 2)) + bytearray(HOST_SIZE // 2)
        self.cycle = 0
        self.mps = self.mrrs = 512
        self.rcb = 64
        self.lat = (40, 60)
        self.p_ready = 1.0
        self.p_cpl = 1.0
        self.pending: deque[tuple[int, list[tuple[int, int, bool, bool, int]]]] = deque()
        self.cur: deque[tuple[int, int, bool, bool, int]] = deque()
        self.wr_tlp: tuple[int, int, list[int]] | None = None
        self.rd_q: deque[Copy] = deque()
        self.wr_q: deque[Copy] = deque()
        self.msi_q: deque[Copy] = deque()
        self.copies: list[Copy] = []
        self.msis = 0
        self.first: int | None = None
        self.last = 0
        self.bme_off = False  # BME was cleared: DMA_ERR_BME statuses and message drops allowed
        self.sops = 0  # request TLPs started on the link (MRds + first beats of MWrs)
        self.presented = 0  # this cycle: request TLPs on the link not yet started (valid && sop)
        self.rd_sts: dict[int, int] = {}
        self.wr_sts: dict[int, int] = {}
        self.msi_reqs = 0
        self.msi_drops = 0

    async def reset(self) -> None:
        dut = self.dut
        Clock(dut.clk, 4, unit="ns").start()
        dut.rst.value = 1
        dut.cfg_requester_id.value = 0x0300
        dut.cfg_bus_master_en.value = 1
        dut.cfg_max_payload.value = (self.mps // 128).bit_length() - 1
        dut.cfg_max_read_req.value = (self.mrrs // 128).bit_length() - 1
        dut.cfg_ext_tag_en.value = 1
        dut.cfg_pasid_en.value = 1
        dut.cfg_pasid_priv_en.value = 0
        for s in (
            "s_rd_req_valid",
            "s_wr_req_valid",
            "s_msi_req_valid",
            "rx_cpl_tlp_valid",
            "tx_wr_req_tlp_ready",
            "tx_rd_req_tlp_ready",
            "s_wr_req_imm_en",
        ):
            getattr(dut, s).value = 0
        for _ in range(3):
            await RisingEdge(dut.clk)
        dut.rst.value = 0

    def host(self, addr: int, n: int) -> bytes:
        return bytes(self.mem[addr - HOST_BASE : addr - HOST_BASE + n])

    def completions(self, hdr: int) -> list[tuple[int, int, bool, bool, int]]:
        dw0, dw1, dw2, dw3 = (
            (hdr >> 96) & 0xFFFF_FFFF,
            (hdr >> 64) & 0xFFFF_FFFF,
            (hdr >> 32) & 0xFFFF_FFFF,
            hdr & 0xFFFF_FFFF,
        )
        addr = (dw2 << 32 | dw3) if dw0 >> 29 == 1 else dw2
        ndw = dw0 & 0x3FF or 1024
        fbe, lbe = dw1 & 0xF, (dw1 >> 4) & 0xF
        start = addr + (fbe & -fbe).bit_length() - 1  # lowest enabled byte
        last_be = lbe if ndw > 1 else fbe
        end = addr + 4 * (ndw - 1) + last_be.bit_length()
        tag = (dw1 >> 8) & 0xFF
        beats: list[tuple[int, int, bool, bool, int]] = []
        pos = start
        while pos < end:
            stop = min(end, (pos // self.rcb + self.rng.randint(1, 4)) * self.rcb)
            base = pos & ~3
            data = self.host(base, ((stop + 3) & ~3) - base)
            dws = [int.from_bytes(data[i : i + 4], "little") for i in range(0, len(data), 4)]
            h = (
                ((0b010 << 29 | 0b01010 << 24 | len(dws) % 1024) << 96)
                | ((end - pos) % 4096) << 64
                | (0x0300 << 16 | tag << 8 | (pos & 0x7F)) << 32
            )
            chunks = [dws[i : i + self.lanes] for i in range(0, len(dws), self.lanes)]
            for i, ch in enumerate(chunks):
                beats.append(
                    (h, sum(d << (32 * j) for j, d in enumerate(ch)), i == 0, i == len(chunks) - 1, (1 << len(ch)) - 1)
                )
            pos = stop
        return beats

    def on_mwr(self, hdr: int, prfx: int, dws: list[int]) -> None:
        dw0, dw1, dw2, dw3 = (
            (hdr >> 96) & 0xFFFF_FFFF,
            (hdr >> 64) & 0xFFFF_FFFF,
            (hdr >> 32) & 0xFFFF_FFFF,
            hdr & 0xFFFF_FFFF,
        )
        addr = (dw2 << 32 | dw3) if dw0 >> 29 == 0b011 else dw2
        if MSI_BASE <= addr < MSI_BASE + 0x1000:
            assert prfx == 0 and len(dws) == 1, "interrupt message with prefix or payload != 1 DW"
            c = self.copies[dws[0]]
            assert addr == MSI_BASE + 4 * c.idx
            assert c.state == "msi", f"interrupt of copy {c.idx} in state {c.state}"
            got, exp = self.host(c.dst, c.length), self.host(c.src, c.length)
            assert got == exp, f"copy {c.idx}: interrupt before its data (or data wrong)"
            c.state = "done"
            self.msis += 1
            self.last = self.cycle
            return
        fbe, lbe = dw1 & 0xF, (dw1 >> 4) & 0xF
        for i, d in enumerate(dws):
            be = fbe if i == 0 else lbe if i == len(dws) - 1 else 0xF
            for b in range(4):
                if be >> b & 1:
                    self.mem[addr - HOST_BASE + 4 * i + b] = d >> (8 * b) & 0xFF

    async def step(self) -> None:
        dut, rng = self.dut, self.rng
        rd = self.rd_q[0] if self.rd_q else None
        dut.s_rd_req_valid.value = int(rd is not None)
        if rd is not None:
            dut.s_rd_req_addr.value = rd.src
            dut.s_rd_req_len.value = rd.length
            dut.s_rd_req_ram_addr.value = rd.ram
            dut.s_rd_req_pasid_valid.value = 1
            dut.s_rd_req_pasid.value = rd.pasid
            dut.s_rd_req_tag.value = rd.idx
        wr = self.wr_q[0] if self.wr_q else None
        dut.s_wr_req_valid.value = int(wr is not None)
        if wr is not None:
            dut.s_wr_req_addr.value = wr.dst
            dut.s_wr_req_len.value = wr.length
            dut.s_wr_req_ram_addr.value = wr.ram
            dut.s_wr_req_pasid_valid.value = 1
            dut.s_wr_req_pasid.value = wr.pasid
            dut.s_wr_req_tag.value = wr.idx
        msi = self.msi_q[0] if self.msi_q else None
        dut.s_msi_req_valid.value = int(msi is not None)
        if msi is not None:
            dut.s_msi_req_addr.value = MSI_BASE + 4 * msi.idx
            dut.s_msi_req_data.value = msi.idx
        rd_ready = rng.random() < self.p_ready
        wr_ready = rng.random() < self.p_ready
        dut.tx_rd_req_tlp_ready.value = int(rd_ready)
        dut.tx_wr_req_tlp_ready.value = int(wr_ready)
        if not self.cur and any(p[0] <= self.cycle for p in self.pending):
            # interleave: take one of the first few ready MRds' completions
            ready = [i for i, p in enumerate(self.pending) if p[0] <= self.cycle][:3]
            k = rng.choice(ready)
            beats = self.pending[k][1]
            del self.pending[k]
            self.cur.extend(beats)
        drive = bool(self.cur) and rng.random() < self.p_cpl
        dut.rx_cpl_tlp_valid.value = int(drive)
        if drive:
            h, d, sop, eop, strb = self.cur[0]
            dut.rx_cpl_tlp_hdr.value = h
            dut.rx_cpl_tlp_data.value = d
            dut.rx_cpl_tlp_sop.value = int(sop)
            dut.rx_cpl_tlp_eop.value = int(eop)
            dut.rx_cpl_tlp_strb.value = strb
        await ReadOnly()
        if rd is not None and dut.s_rd_req_ready.value:
            self.rd_q.popleft()
            rd.state = "rd"
        if wr is not None and dut.s_wr_req_ready.value:
            self.wr_q.popleft()
            wr.state = "wr"
            self.msi_q.append(wr)  # the interrupt is requested after the write was accepted
        if msi is not None and dut.s_msi_req_ready.value:
            self.msi_q.popleft()
            msi.state = "msi"
            self.msi_reqs += 1
        self.presented = int(dut.tx_rd_req_tlp_valid.value) + int(
            bool(dut.tx_wr_req_tlp_valid.value and dut.tx_wr_req_tlp_sop.value)
        )
        if rd_ready and dut.tx_rd_req_tlp_valid.value:
            self.sops += 1
            if self.first is None:
                self.first = self.cycle
            beats = self.completions(dut.tx_rd_req_tlp_hdr.value.to_unsigned())
            self.pending.append((self.cycle + rng.randint(*self.lat), beats))
        if drive and dut.rx_cpl_tlp_ready.value:
            self.cur.popleft()
        if wr_ready and dut.tx_wr_req_tlp_valid.value:
            if dut.tx_wr_req_tlp_sop.value:
                self.sops += 1
                self.wr_tlp = (
                    dut.tx_wr_req_tlp_hdr.value.to_unsigned(),
                    dut.tx_wr_req_tlp_prfx.value.to_unsigned(),
                    [],
                )
            assert self.wr_tlp is not None
            data, strb = dut.tx_wr_req_tlp_data.value.to_unsigned(), dut.tx_wr_req_tlp_strb.value.to_unsigned()
            self.wr_tlp[2].extend(data >> (32 * i) & 0xFFFF_FFFF for i in range(self.lanes) if strb >> i & 1)
            if dut.tx_wr_req_tlp_eop.value:
                self.on_mwr(*self.wr_tlp)
                self.wr_tlp = None
        if dut.m_rd_sts_valid.value:
            c = self.copies[dut.m_rd_sts_tag.value.to_unsigned()]
            err = dut.m_rd_sts_error.value.to_unsigned()
            self.rd_sts[c.idx] = err
            if err == DMA_OK:
                self.wr_q.append(c)
            else:
                assert self.bme_off and err == DMA_ERR_BME, f"read status {err} of copy {c.idx}"
                c.state = "failed"
        if dut.m_wr_sts_valid.value:
            err = dut.m_wr_sts_error.value.to_unsigned()
            self.wr_sts[dut.m_wr_sts_tag.value.to_unsigned()] = err
            assert err == DMA_OK or (self.bme_off and err == DMA_ERR_BME), f"write status {err}"
        if dut.m_stat_msi_drop.value:
            assert self.bme_off, "interrupt message dropped with BME set"
            self.msi_drops += 1
        await RisingEdge(dut.clk)
        self.cycle += 1

    async def run(self, copies: list[Copy], slots: int, max_cycles: int) -> None:
        self.copies = copies
        waiting = deque(copies)
        busy: dict[int, Copy] = {}
        while self.msis < len(copies):
            assert self.cycle < max_cycles, f"only {self.msis} of {len(copies)} copies finished"
            for s, c in list(busy.items()):
                if c.state == "done":
                    del busy[s]
            while waiting and len(busy) < slots:
                free = next(s for s in range(slots) if s not in busy)
                c = waiting.popleft()
                c.ram = free * SLOT + c.ram
                busy[free] = c
                self.rd_q.append(c)
            await self.step()
        for c in copies:
            assert self.host(c.dst, c.length) == self.host(c.src, c.length)


@cocotb.test(timeout_time=5, timeout_unit="ms")
@cocotb.parametrize(backpressure=[False, True])
async def random_copies(dut, backpressure: bool) -> None:
    """COPY jobs at random alignments and lengths; interrupt after data; prefixes per job."""
    rng = random.Random(cocotb.RANDOM_SEED)
    tb = DmaBench(dut, rng)
    tb.mps, tb.mrrs = rng.choice([128, 256, 512]), rng.choice([128, 512, 4096])
    tb.rcb = rng.choice([64, 128])
    await tb.reset()
    if backpressure:
        tb.p_ready, tb.p_cpl = 0.6, 0.7
    copies = []
    for i in range(40):
        n = rng.randint(1, SLOT - 64)
        off = rng.randint(0, SLOT - n)
        src = HOST_BASE + rng.randrange(0, HOST_SIZE // 2 - n)
        dst = HOST_BASE + HOST_SIZE // 2 + i * (SLOT + 256) + rng.randrange(0, 256)  # disjoint
        copies.append(Copy(i, src, dst, n, off, rng.getrandbits(20)))
    await tb.run(copies, 16, 100000)


@cocotb.test(timeout_time=5, timeout_unit="ms")
@cocotb.parametrize(backpressure=[False, True])
async def bus_master_cleared_mid_copy(dut, backpressure: bool) -> None:
    """16 COPYs in flight (queued reads, multi-TLP writes, interrupt messages) when BME drops: no
    request TLP that was not already presented starts afterwards; every request still gets its
    status (DMA_OK or DMA_ERR_BME), dropped messages are counted, the engine goes idle; with BME
    set again, COPYs work normally."""
    rng = random.Random(cocotb.RANDOM_SEED)
    tb = DmaBench(dut, rng)
    tb.mps, tb.mrrs = 128, 256
    await tb.reset()
    if backpressure:
        tb.p_ready, tb.p_cpl = 0.6, 0.7
    copies = []
    for i in range(16):
        n = rng.randint(1, SLOT)
        src = HOST_BASE + rng.randrange(0, HOST_SIZE // 2 - n)
        dst = HOST_BASE + HOST_SIZE // 2 + i * (SLOT + 256) + rng.randrange(0, 256)
        copies.append(Copy(i, src, dst, n, i * SLOT + rng.randint(0, SLOT - n), rng.getrandbits(20)))
    tb.copies = copies
    tb.rd_q.extend(copies)
    for _ in range(rng.randint(60, 600)):
        await tb.step()
    sops = tb.sops
    tb.bme_off = True
    dut.cfg_bus_master_en.value = 0  # for the cycle now starting
    await tb.step()
    presented = tb.presented
    for _ in range(20000):
        await tb.step()
        idle = not (tb.rd_q or tb.wr_q or tb.msi_q or tb.pending or tb.cur)
        if idle and not int(dut.m_rd_busy.value) and not int(dut.m_wr_busy.value):
            break
    assert not int(dut.m_rd_busy.value) and not int(dut.m_wr_busy.value), "engine not idle"
    late = tb.sops - sops
    assert late <= presented, f"{late} request TLPs started after BME was cleared ({presented} presented)"
    assert sorted(tb.rd_sts) == list(range(16)), "read without status"
    assert len(tb.wr_sts) == sum(1 for c in copies if c.state in ("wr", "msi", "done"))
    assert tb.msis + tb.msi_drops == tb.msi_reqs
    n_bme = sum(e == DMA_ERR_BME for e in [*tb.rd_sts.values(), *tb.wr_sts.values()]) + tb.msi_drops
    assert n_bme, "BME cleared too late to cut anything"
    log.info(
        "BME cleared after %d request TLPs (%d later): %d copies done, %d BME statuses, %d messages dropped",
        sops, late, tb.msis, n_bme - tb.msi_drops, tb.msi_drops,
    )
    # BME set again
    dut.cfg_bus_master_en.value = 1
    tb.bme_off = False
    tb.msis = 0
    again = [
        Copy(i, HOST_BASE + rng.randrange(0, HOST_SIZE // 4), HOST_BASE + HOST_SIZE // 2 + i * (SLOT + 256), 2000, 0, i)
        for i in range(8)
    ]
    await tb.run(again, 8, 40000)


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def copy_4k_bandwidth(dut) -> None:
    """64 x 4 KiB COPY, 16 in flight, MPS/MRRS 512: copied bytes per clock / (DataWidth/8)."""
    rng = random.Random(cocotb.RANDOM_SEED)
    tb = DmaBench(dut, rng)
    await tb.reset()
    copies = [
        Copy(i, HOST_BASE + (i % 64) * 4096, HOST_BASE + HOST_SIZE // 2 + (i % 64) * 4096, 4096, 0, i)
        for i in range(64)
    ]
    await tb.run(copies, 16, 40000)
    cycles = tb.last - (tb.first or 0)
    eff = 64 * 4096 / (cycles * tb.width // 8)
    log.info("COPY 64 x 4 KiB (16 in flight): %d cycles, %.3f of DataWidth x clock", cycles, eff)
    assert eff >= 0.85


@pytest.mark.rtl
@pytest.mark.parametrize("data_width", [256, 128])
def test_ep_dma(data_width: int) -> None:
    run_rtl(
        "ep_dma_tb",
        test_module=__name__,
        extra_sources=[Path(__file__).with_name("ep_dma_tb.sv")],
        parameters={"DataWidth": data_width, "RamAddrWidth": RAM_ADDR_WIDTH},
    )
