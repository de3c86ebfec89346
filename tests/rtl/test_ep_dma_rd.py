"""ep_dma_rd against a Python host: MRd fields and split rules, completions split at random RCB
boundaries and interleaved across tags, UR/CA/poisoned/dropped completions, unexpected tags and
requester IDs, and completion-credit accounting: the host model counts the completion headers and
16-byte data credits it owes (MRds accepted minus completions the DUT has taken) and fails the test
the moment they exceed the limits the DUT was built with - the hard IP's completion buffer would
have overflowed.

One coroutine drives the whole bench per clock (requests, MRd sink, completion source, local
buffer RAM, status monitor), so each cycle costs one Python wake-up.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from dataclasses import dataclass, field

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from siov_sim.tb.runner import run_rtl

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)  # the measured numbers are reported at INFO

RAM_ADDR_WIDTH = 17
REGION = 8192  # local buffer bytes per request slot
CPL_TIMEOUT = 20000  # > 64 tags x 4 KiB at 16 bytes per clock: the host model is link-bound
CPLH_LIMIT = 80  # completion buffer of the DUT build: 80 headers ...
CPLD_LIMIT = 384  # ... and 384 x 16 bytes = 6 KiB of completion data
DMA_OK, DMA_ERR_UR, DMA_ERR_CA, DMA_ERR_TIMEOUT, DMA_ERR_POISONED, DMA_ERR_MALFORMED, DMA_ERR_BME = 0, 1, 2, 3, 4, 5, 6
CPL_SC, CPL_UR, CPL_CA = 0, 1, 4
SENTINEL = 0xA5


def host_byte(addr: int) -> int:
    return ((addr * 0x9E3779B1) >> 13) & 0xFF


def host_bytes(addr: int, n: int) -> bytes:
    return bytes(host_byte(addr + i) for i in range(n))


@dataclass
class RdReq:
    addr: int
    length: int
    ram_addr: int
    tag: int
    pasid: int | None = None
    pmr: bool = False
    inject: str | None = None  # "ur", "ca", "poison", "drop", "bigbc" (malformed CplD)
    chunks: list[tuple[int, int]] = field(default_factory=list)  # expected MRds (addr, len)
    next_chunk: int = 0
    injected: bool = False


@dataclass
class Cpl:
    hdr: int
    dws: list[int]
    release: int | None = None  # PCIe tag that is free again once this completion was sent
    owed: bool = False  # answers an MRd: holds completion-buffer credits until the DUT takes it
    # an error completion ends its request at its first beat: the DUT retires the tag there and
    # may reuse it while the rest of the TLP is still being dropped (a completion of the new MRd
    # can only arrive after that rest), so the host model frees the tag at the first beat
    early_release: bool = False


class RdBench:
    def __init__(self, dut, rng: random.Random) -> None:
        self.dut = dut
        self.rng = rng
        self.width = len(dut.rx_cpl_tlp_data)
        self.lanes = self.width // 32
        self.bpw = self.width // 8
        self.ram = bytearray([SENTINEL]) * (1 << RAM_ADDR_WIDTH)
        self.allowed = bytearray(1 << RAM_ADDR_WIDTH)  # bytes some request may write
        self.todo: deque[RdReq] = deque()
        self.reqs: list[RdReq] = []  # accepted, in order
        self.mrd_ptr = 0
        self.done: dict[int, int] = {}
        self.outstanding: dict[int, RdReq] = {}  # PCIe tag -> request
        self.pending: dict[int, deque[tuple[int, Cpl]]] = {}  # PCIe tag -> (due cycle, completion)
        self.extra: deque[tuple[int, Cpl]] = deque()  # unexpected completions to send
        self.cur_beats: deque[tuple[int, int, bool, bool, int, int | None, tuple[int, int] | None]] = deque()
        self.dropped: dict[int, list[int]] = {}  # request tag -> PCIe tags never completed
        self.cycle = 0
        self.mrrs = 512
        self.ext_tag = 1
        self.rid = 0x0200
        self.pasid_en = 1
        self.priv_en = 1
        self.rcb = 64
        self.p_req_ready = 1.0
        self.p_cpl_valid = 1.0
        self.p_ram_ready = 1.0
        self.lat = (20, 80)
        self.cpl_max = 512
        self.unexp_seen = 0
        self.cpl_beats = 0
        self.first_mrd: int | None = None
        self.last_sts = 0
        self.presented_mrd = False  # this cycle: an MRd is on the link (valid)
        self.fc_h = 0  # completion headers owed and not yet taken by the DUT
        self.fc_d = 0  # completion data credits (16 bytes) owed and not yet taken
        self.fc_h_max = 0
        self.fc_d_max = 0
        self.timeout = CPL_TIMEOUT

    async def reset(self, mrrs_code: int, bme: int = 1) -> None:
        dut = self.dut
        Clock(dut.clk, 4, unit="ns").start()
        self.mrrs = 128 << min(mrrs_code, 5)
        dut.rst.value = 1
        dut.cfg_requester_id.value = self.rid
        dut.cfg_bus_master_en.value = bme
        dut.cfg_max_read_req.value = mrrs_code
        dut.cfg_ext_tag_en.value = self.ext_tag
        dut.cfg_pasid_en.value = self.pasid_en
        dut.cfg_pasid_priv_en.value = self.priv_en
        dut.cfg_cpl_timeout.value = self.timeout
        for sig in ("s_rd_req_valid", "rx_cpl_tlp_valid", "tx_rd_req_tlp_ready", "m_ram_wr_ready"):
            getattr(dut, sig).value = 0
        for _ in range(3):
            await RisingEdge(dut.clk)
        dut.rst.value = 0

    # ---- stimulus ---------------------------------------------------------------------------
    def add(self, req: RdReq) -> None:
        a, rem = req.addr, req.length
        while rem:
            n = min(rem, self.mrrs - a % self.mrrs)
            req.chunks.append((a, n))
            a, rem = a + n, rem - n
        self.todo.append(req)

    def completions(self, req: RdReq, tag: int, a: int, n: int) -> list[Cpl]:
        def hdr(status: int, bc: int, la: int, ndw: int, data: bool, ep: bool = False) -> int:
            dw0 = ((0b010 if data else 0b000) << 29) | (0b01010 << 24) | (int(ep) << 14) | (ndw % 1024)
            dw1 = (0x0100 << 16) | (status << 13) | (bc % 4096)
            dw2 = (self.rid << 16) | (tag << 8) | (la & 0x7F)
            return (dw0 << 96) | (dw1 << 64) | (dw2 << 32)

        if req.inject in ("ur", "ca") and not req.injected:
            req.injected = True
            return [Cpl(hdr(CPL_UR if req.inject == "ur" else CPL_CA, n, a, 0, False), [])]
        if req.inject == "bigbc" and not req.injected:  # CplD whose byte count exceeds the MRd
            req.injected = True
            base = a & ~3
            ndw = (a + n - base + 3) // 4
            data = host_bytes(base, 4 * ndw)
            dws = [int.from_bytes(data[i : i + 4], "little") for i in range(0, len(data), 4)]
            return [Cpl(hdr(CPL_SC, n + 64, a, ndw, True), dws, early_release=True)]
        if req.inject == "drop" and not req.injected:
            req.injected = True
            self.dropped.setdefault(req.tag, []).append(tag)
            return []
        poison = req.inject == "poison" and not req.injected
        req.injected = req.injected or poison
        out = []
        pos, end = a, a + n
        while pos < end:
            k = self.rng.randint(1, self.cpl_max // self.rcb)
            stop = min(end, (pos // self.rcb + k) * self.rcb)
            base = pos & ~3
            data = host_bytes(base, ((stop + 3) & ~3) - base)
            dws = [int.from_bytes(data[i : i + 4], "little") for i in range(0, len(data), 4)]
            out.append(Cpl(hdr(CPL_SC, end - pos, pos, len(dws), True, poison), dws))
            pos = stop
        return out

    def beats_of(self, c: Cpl) -> list[tuple[int, int, bool, bool, int, int | None, tuple[int, int] | None]]:
        chunks = [c.dws[i : i + self.lanes] for i in range(0, max(len(c.dws), 1), self.lanes)] or [[]]
        beats = []
        for i, ch in enumerate(chunks):
            data = sum(d << (32 * j) for j, d in enumerate(ch))
            eop = i == len(chunks) - 1
            credits = (1, (len(c.dws) + 3) // 4) if eop and c.owed else None
            rel = c.release if (i == 0 if c.early_release else eop) else None
            beats.append((c.hdr, data, i == 0, eop, (1 << len(ch)) - 1, rel, credits))
        return beats

    # ---- one clock --------------------------------------------------------------------------
    async def step(self) -> None:
        dut, rng = self.dut, self.rng
        req = self.todo[0] if self.todo else None
        dut.s_rd_req_valid.value = int(req is not None)
        if req is not None:
            dut.s_rd_req_addr.value = req.addr
            dut.s_rd_req_len.value = req.length
            dut.s_rd_req_ram_addr.value = req.ram_addr
            dut.s_rd_req_pasid_valid.value = int(req.pasid is not None)
            dut.s_rd_req_pasid.value = req.pasid or 0
            dut.s_rd_req_pmr.value = int(req.pmr)
            dut.s_rd_req_tag.value = req.tag
        mrd_ready = rng.random() < self.p_req_ready
        dut.tx_rd_req_tlp_ready.value = int(mrd_ready)
        ram_ready = rng.random() < self.p_ram_ready
        dut.m_ram_wr_ready.value = int(ram_ready)
        if not self.cur_beats:
            self.pick_completion()
        drive_cpl = bool(self.cur_beats) and rng.random() < self.p_cpl_valid
        dut.rx_cpl_tlp_valid.value = int(drive_cpl)
        if drive_cpl:
            hdr, data, sop, eop, strb, _, _ = self.cur_beats[0]
            dut.rx_cpl_tlp_hdr.value = hdr
            dut.rx_cpl_tlp_data.value = data
            dut.rx_cpl_tlp_sop.value = int(sop)
            dut.rx_cpl_tlp_eop.value = int(eop)
            dut.rx_cpl_tlp_strb.value = strb
        await ReadOnly()
        self.presented_mrd = bool(dut.tx_rd_req_tlp_valid.value)
        if req is not None and dut.s_rd_req_ready.value:
            self.todo.popleft()
            self.reqs.append(req)
            for i in range(req.length):
                self.allowed[(req.ram_addr + i) % len(self.ram)] = 1
        if mrd_ready and dut.tx_rd_req_tlp_valid.value:
            self.on_mrd(dut.tx_rd_req_tlp_hdr.value.to_unsigned(), dut.tx_rd_req_tlp_prfx.value.to_unsigned())
        if drive_cpl and dut.rx_cpl_tlp_ready.value:
            beat = self.cur_beats.popleft()
            release = beat[5]
            if beat[6] is not None:
                self.fc_h -= beat[6][0]
                self.fc_d -= beat[6][1]
            if release is not None:
                self.outstanding.pop(release)
            self.cpl_beats += 1
        if ram_ready and dut.m_ram_wr_valid.value:
            waddr = dut.m_ram_wr_addr.value.to_unsigned()
            be = dut.m_ram_wr_be.value.to_unsigned()
            data = dut.m_ram_wr_data.value.to_unsigned().to_bytes(self.bpw, "little")
            for i in range(self.bpw):
                if be >> i & 1:
                    addr = waddr * self.bpw + i
                    assert self.allowed[addr], f"RAM byte {addr:#x} written outside every request"
                    self.ram[addr] = data[i]
        if dut.m_rd_sts_valid.value:
            tag = dut.m_rd_sts_tag.value.to_unsigned()
            assert tag not in self.done, f"second status for request {tag}"
            self.done[tag] = dut.m_rd_sts_error.value.to_unsigned()
            for t in self.dropped.pop(tag, []):
                self.outstanding.pop(t)
            self.check_data(tag)
            self.last_sts = self.cycle
        if dut.m_stat_unexp_cpl.value:
            self.unexp_seen += 1
        await RisingEdge(dut.clk)
        self.cycle += 1

    def pick_completion(self) -> None:
        if self.extra and self.extra[0][0] <= self.cycle:
            self.cur_beats.extend(self.beats_of(self.extra.popleft()[1]))
            return
        ready = sorted((q[0][0], t) for t, q in self.pending.items() if q and q[0][0] <= self.cycle)
        if not ready:
            return
        # interleave across tags, but among the oldest few so that no tag starves into a timeout
        tag = self.rng.choice(ready[:4])[1]
        _, cpl = self.pending[tag].popleft()
        if not self.pending[tag]:
            del self.pending[tag]
        self.cur_beats.extend(self.beats_of(cpl))

    def on_mrd(self, hdr: int, prfx: int) -> None:
        if self.first_mrd is None:
            self.first_mrd = self.cycle
        dw0, dw1, dw2, dw3 = (
            (hdr >> 96) & 0xFFFF_FFFF,
            (hdr >> 64) & 0xFFFF_FFFF,
            (hdr >> 32) & 0xFFFF_FFFF,
            hdr & 0xFFFF_FFFF,
        )
        fmt, typ = dw0 >> 29, (dw0 >> 24) & 0x1F
        assert typ == 0 and fmt in (0b000, 0b001), f"not an MRd: {dw0:#x}"
        assert (dw0 >> 10) & 0x3FFF == 0, "TC/attr/TD/EP must be 0"
        assert dw1 >> 16 == self.rid
        tag = (dw1 >> 8) & 0xFF
        assert tag not in self.outstanding, f"tag {tag} reused while outstanding"
        if not self.ext_tag:
            assert tag < 32, f"tag {tag} needs extended tags"
        addr = (dw2 << 32 | dw3) if fmt == 0b001 else dw2
        if fmt == 0b001:
            assert dw2 != 0, "4-DW header below 4 GiB"
        ndw = dw0 & 0x3FF or 1024
        fbe, lbe = dw1 & 0xF, (dw1 >> 4) & 0xF
        # which request: the current one, or (after an injected error) a later one
        while True:
            r = self.reqs[self.mrd_ptr]
            if r.next_chunk < len(r.chunks):
                a, n = r.chunks[r.next_chunk]
                if a & ~3 == addr:
                    break
                assert r.inject is not None and r.next_chunk > 0, f"MRd at {addr:#x}, expected {a:#x}"
            self.mrd_ptr += 1
        r.next_chunk += 1
        assert ndw == (a % 4 + n + 3) // 4, "MRd length"
        assert a % 4096 + n <= 4096 and n <= self.mrrs, "MRd crosses 4 KiB or exceeds MRRS"
        start, end = a % 4, (a + n - 1) % 4
        efbe, elbe = (0xF << start) & 0xF, 0xF >> (3 - end)
        if ndw == 1:
            efbe, elbe = efbe & elbe, 0
        assert (fbe, lbe) == (efbe, elbe), f"BE {fbe:#x}/{lbe:#x} for a={a:#x} n={n}"
        exp_prfx = (
            (0x91 << 24 | int(r.pmr and bool(self.priv_en)) << 23 | r.pasid)
            if r.pasid is not None and self.pasid_en
            else 0
        )
        assert prfx == exp_prfx, f"prefix {prfx:#x} != {exp_prfx:#x}"
        self.outstanding[tag] = r
        due = self.cycle + self.rng.randint(*self.lat)
        cpls = self.completions(r, tag, a, n)
        for c in cpls:
            c.owed = True
            self.fc_h += 1
            self.fc_d += (len(c.dws) + 3) // 4
        self.fc_h_max = max(self.fc_h_max, self.fc_h)
        self.fc_d_max = max(self.fc_d_max, self.fc_d)
        assert self.fc_h <= CPLH_LIMIT, f"{self.fc_h} completion headers in flight > {CPLH_LIMIT}"
        assert self.fc_d <= CPLD_LIMIT, f"{self.fc_d} completion data credits in flight > {CPLD_LIMIT}"
        if cpls:
            cpls[-1].release = tag
            self.pending.setdefault(tag, deque()).extend((due, c) for c in cpls)

    def check_data(self, tag: int) -> None:
        r = next(x for x in self.reqs if x.tag == tag)
        if self.done[tag] != DMA_OK:
            return
        got = bytes(self.ram[(r.ram_addr + i) % len(self.ram)] for i in range(r.length))
        assert got == host_bytes(r.addr, r.length), f"data of request {tag} wrong"

    def random_req(self, tag: int, inject: str | None = None) -> RdReq:
        rng = self.rng
        hi = rng.choice([0, 0, rng.getrandbits(32)])
        addr = (hi << 32) | rng.getrandbits(32)
        if rng.random() < 0.2:
            addr = (addr & ~0xFFF) | (0x1000 - rng.randint(1, 64))
        length = rng.choice([rng.randint(0, 64), rng.randint(1, 5000), 4096])
        ram = (tag % 16) * REGION + rng.randint(0, REGION - 1 - length) if length < REGION else 0
        return RdReq(
            addr=addr,
            length=length,
            ram_addr=ram,
            tag=tag,
            pasid=rng.getrandbits(20) if rng.random() < 0.7 else None,
            pmr=rng.random() < 0.5,
            inject=inject if length else None,
        )

    async def run_all(self, reqs: list[RdReq], max_cycles: int) -> None:
        queue = deque(reqs)
        while (queue or self.todo or len(self.done) < len(reqs)) and self.cycle < max_cycles:
            # keep RAM regions exclusive: request j only after request j-16 finished
            while queue and (queue[0].tag < 16 or queue[0].tag - 16 in self.done):
                self.add(queue.popleft())
            await self.step()
        assert len(self.done) == len(reqs), f"{len(reqs) - len(self.done)} requests without status"
        # completions still queued belong to MRds of failed requests that timed out meanwhile
        # (the host model is slow under backpressure); they are dropped as unexpected
        for _ in range(20000):
            if not self.pending and not self.cur_beats:
                break
            await self.step()
        for _ in range(10):
            await self.step()
        assert not self.pending and not self.cur_beats
        assert int(self.dut.m_rd_busy.value) == 0


def expected_error(r: RdReq) -> int:
    return {
        None: DMA_OK,
        "ur": DMA_ERR_UR,
        "ca": DMA_ERR_CA,
        "poison": DMA_ERR_POISONED,
        "drop": DMA_ERR_TIMEOUT,
        "bigbc": DMA_ERR_MALFORMED,
    }[r.inject]


@cocotb.test(timeout_time=5, timeout_unit="ms")
@cocotb.parametrize(backpressure=[False, True])
async def random_reads(dut, backpressure: bool) -> None:
    """Random reads, completions split at RCB and interleaved, UR/CA/poison injected."""
    rng = random.Random(cocotb.RANDOM_SEED)
    tb = RdBench(dut, rng)
    tb.ext_tag = rng.randint(0, 1)
    tb.priv_en = rng.randint(0, 1)
    tb.rcb = rng.choice([64, 128])
    tb.cpl_max = rng.choice([tb.rcb, 256, 512])
    mrrs_code = rng.choice([0, 1, 2, 5])
    await tb.reset(mrrs_code)
    if backpressure:
        tb.p_req_ready, tb.p_cpl_valid, tb.p_ram_ready = 0.5, 0.6, 0.7
    reqs = [tb.random_req(t, rng.choice([None] * 8 + ["ur", "ca", "poison"])) for t in range(60)]
    await tb.run_all(reqs, 200000)
    for r in reqs:
        assert tb.done[r.tag] == expected_error(r), f"request {r.tag} ({r.inject}): {tb.done[r.tag]}"
    assert all(b == SENTINEL for b, ok in zip(tb.ram, tb.allowed, strict=True) if not ok)
    log.info("MRRS %d RCB %d: %d requests in %d cycles", tb.mrrs, tb.rcb, len(reqs), tb.cycle)


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def timeout_and_unexpected(dut) -> None:
    """A dropped completion ends its request with TIMEOUT; late and unknown completions are dropped."""
    rng = random.Random(cocotb.RANDOM_SEED)
    tb = RdBench(dut, rng)
    await tb.reset(2)
    reqs = [tb.random_req(t, "drop" if t in (1, 4) else None) for t in range(8)]
    for r in reqs:
        r.length = max(r.length, 700)
        r.inject = "drop" if r.tag in (1, 4) else None
        r.ram_addr = r.tag * REGION
    # an unknown tag arrives early: dropped and counted
    unknown = Cpl(((0b010 << 29) | (0b01010 << 24) | 1) << 96 | (4 << 64) | (200 << 40), [0x1234])
    tb.extra.append((50, unknown))
    await tb.run_all(reqs, 4 * CPL_TIMEOUT + 5000)
    for r in reqs:
        assert tb.done[r.tag] == expected_error(r), f"request {r.tag}: {tb.done[r.tag]}"
    assert tb.unexp_seen == 1


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def bus_master_disabled(dut) -> None:
    """BME clear: no MRd, every non-empty request ends with DMA_ERR_BME."""
    rng = random.Random(cocotb.RANDOM_SEED)
    tb = RdBench(dut, rng)
    await tb.reset(2, bme=0)
    reqs = [tb.random_req(t) for t in range(10)]
    await tb.run_all(reqs, 2000)
    assert tb.first_mrd is None
    for r in reqs:
        assert tb.done[r.tag] == (DMA_ERR_BME if r.length else DMA_OK)


@cocotb.test(timeout_time=5, timeout_unit="ms")
@cocotb.parametrize(backpressure=[False, True])
async def bus_master_cleared_mid_request(dut, backpressure: bool) -> None:
    """BME drops while a multi-MRd read and more requests are queued: no MRd that was not already
    presented goes out after that; MRds already sent get their completions and free their tags;
    cut and later requests report DMA_ERR_BME, finished ones DMA_OK. BME set again: normal reads."""
    rng = random.Random(cocotb.RANDOM_SEED)
    tb = RdBench(dut, rng)
    await tb.reset(0)  # MRRS 128: a 4 KiB read is 32+ MRds
    if backpressure:
        tb.p_req_ready, tb.p_cpl_valid, tb.p_ram_ready = 0.5, 0.6, 0.7
    reqs = [RdReq(addr=0x3_0000_0000 + rng.randint(0, 64), length=4096, ram_addr=rng.randint(0, 64), tag=0)]
    reqs += [tb.random_req(t) for t in range(1, 10)]
    for r in reqs:
        tb.add(r)
    while tb.first_mrd is None:
        await tb.step()
    for _ in range(rng.randint(0, 60)):
        await tb.step()
    sent = sum(r.next_chunk for r in tb.reqs)
    dut.cfg_bus_master_en.value = 0  # for the cycle now starting
    await tb.step()
    presented = tb.presented_mrd
    for _ in range(CPL_TIMEOUT // 2):
        if len(tb.done) == len(reqs) and not tb.pending and not tb.cur_beats and not int(dut.m_rd_busy.value):
            break
        await tb.step()
    assert len(tb.done) == len(reqs), "requests without status"
    assert not tb.pending and not tb.cur_beats and int(dut.m_rd_busy.value) == 0
    assert not tb.outstanding, "MRds without completion"
    late = sum(r.next_chunk for r in tb.reqs) - sent
    assert late <= int(presented), f"{late} MRds after BME was cleared (presented: {presented})"
    for r in reqs:
        exp = DMA_OK if r.next_chunk == len(r.chunks) else DMA_ERR_BME
        assert tb.done[r.tag] == exp, f"request {r.tag}: {tb.done[r.tag]} != {exp}"
    assert any(v == DMA_ERR_BME for v in tb.done.values())
    log.info(
        "BME cleared after %d MRds (%d later): %d of %d requests BME",
        sent, late, sum(v == DMA_ERR_BME for v in tb.done.values()), len(reqs),
    )
    # BME set again: tags were released, reads work normally
    dut.cfg_bus_master_en.value = 1
    tb.done.clear()
    tb.reqs.clear()
    tb.mrd_ptr = 0
    again = [tb.random_req(t) for t in range(10)]
    await tb.run_all(again, 100000)
    for r in again:
        assert tb.done[r.tag] == DMA_OK, f"request {r.tag} after BME set again: {tb.done[r.tag]}"


DMA_ERR_PASID = 8


@cocotb.test(timeout_time=5, timeout_unit="ms")
@cocotb.parametrize(backpressure=[False, True])
async def pasid_enable_cleared_mid_request(dut, backpressure: bool) -> None:
    """PASID Enable drops while multi-MRd reads with a PASID are queued: no MRd that was not
    already presented goes out after that (neither with the prefix nor without it, which would
    reach the PF's RID_PASID domain); MRds already sent complete and free their tags; cut and
    later PASID requests report DMA_ERR_PASID. Requests without a PASID still run while it is
    clear; PASID Enable set again: normal reads with the prefix."""
    rng = random.Random(cocotb.RANDOM_SEED)
    tb = RdBench(dut, rng)
    await tb.reset(0)  # MRRS 128: a 4 KiB read is 32+ MRds
    if backpressure:
        tb.p_req_ready, tb.p_cpl_valid, tb.p_ram_ready = 0.5, 0.6, 0.7
    reqs = [RdReq(addr=0x3_0000_0000 + rng.randint(0, 64), length=4096, ram_addr=rng.randint(0, 64), tag=0,
                  pasid=0x1234)]
    for t in range(1, 10):
        r = tb.random_req(t)
        r.pasid = rng.getrandbits(20)
        reqs.append(r)
    for r in reqs:
        tb.add(r)
    while tb.first_mrd is None:
        await tb.step()
    for _ in range(rng.randint(0, 60)):
        await tb.step()
    sent = sum(r.next_chunk for r in tb.reqs)
    dut.cfg_pasid_en.value = 0  # tb.pasid_en stays 1: an MRd presented before still has its prefix
    await tb.step()
    presented = tb.presented_mrd
    for _ in range(CPL_TIMEOUT // 2):
        if len(tb.done) == len(reqs) and not tb.pending and not tb.cur_beats and not int(dut.m_rd_busy.value):
            break
        await tb.step()
    assert len(tb.done) == len(reqs), "requests without status"
    assert not tb.pending and not tb.cur_beats and int(dut.m_rd_busy.value) == 0
    assert not tb.outstanding, "MRds without completion"
    late = sum(r.next_chunk for r in tb.reqs) - sent
    assert late <= int(presented), f"{late} MRds after PASID Enable was cleared (presented: {presented})"
    for r in reqs:
        exp = DMA_OK if r.next_chunk == len(r.chunks) else DMA_ERR_PASID
        assert tb.done[r.tag] == exp, f"request {r.tag}: {tb.done[r.tag]} != {exp}"
    assert any(v == DMA_ERR_PASID for v in tb.done.values())
    # PASID Enable clear: requests without a PASID run; then set again: prefixed reads
    for pasid_en in (0, 1):
        tb.pasid_en = pasid_en
        dut.cfg_pasid_en.value = pasid_en
        tb.done.clear()
        tb.reqs.clear()
        tb.mrd_ptr = 0
        again = [tb.random_req(t) for t in range(10)]
        for r in again:
            r.pasid = None if not pasid_en else rng.getrandbits(20)
        await tb.run_all(again, tb.cycle + 100000)
        for r in again:
            assert tb.done[r.tag] == DMA_OK, f"request {r.tag} (PASID Enable {pasid_en}): {tb.done[r.tag]}"


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def throughput_4k(dut) -> None:
    """32 x 4 KiB at MRRS 512, completions of 64..512 bytes interleaved: completion beats per clock."""
    rng = random.Random(cocotb.RANDOM_SEED)
    tb = RdBench(dut, rng)
    tb.rcb, tb.cpl_max, tb.lat = 64, 512, (100, 100)
    await tb.reset(2)
    reqs = [
        RdReq(addr=0x2_0000_0000 + t * 4096, length=4096, ram_addr=(t % 16) * REGION, tag=t, pasid=t) for t in range(32)
    ]
    await tb.run_all(reqs, 20000)
    busy = tb.last_sts - (tb.first_mrd or 0)
    beats = 32 * 4096 // tb.bpw
    log.info(
        "read throughput: %d data beats, first MRd to last status %d cycles = %.3f beats/clock",
        beats,
        busy,
        beats / busy,
    )
    assert all(v == DMA_OK for v in tb.done.values())
    assert beats / busy >= 0.85


@cocotb.test(timeout_time=5, timeout_unit="ms")
@cocotb.parametrize(rcb=[64, 128])
async def completion_credits(dut, rcb: int) -> None:
    """Slow completions (long latency, small RCB splits, misaligned reads): the DUT must hold MRds
    back so the completion headers and data it is owed never exceed its credit limits (checked on
    every MRd in on_mrd), yet fill the buffer (no needless stall) and lose no data."""
    rng = random.Random(cocotb.RANDOM_SEED)
    tb = RdBench(dut, rng)
    tb.rcb, tb.cpl_max, tb.lat = rcb, rcb, (400, 600)  # every completion one RCB block
    await tb.reset(5)  # MRRS 4096: one MRd can owe 65 headers / 257 data credits
    reqs = [
        RdReq(addr=0x1_0000_0000 + t * 8192 + rng.randint(0, 63), length=rng.randint(3000, 4096),
              ram_addr=(t % 16) * REGION, tag=t, pasid=t)
        for t in range(24)
    ]
    reqs += [tb.random_req(t) for t in range(24, 40)]
    await tb.run_all(reqs, 150000)
    assert all(v == DMA_OK for v in tb.done.values())
    log.info("RCB %d: max in flight %d/%d headers, %d/%d data credits",
             rcb, tb.fc_h_max, CPLH_LIMIT, tb.fc_d_max, CPLD_LIMIT)
    assert tb.fc_h_max > CPLH_LIMIT - 66 or tb.fc_d_max > CPLD_LIMIT - 258, "buffer never filled"


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def foreign_requester_id(dut) -> None:
    """A completion whose tag is live but whose Requester ID is another function's is unexpected:
    dropped (no RAM write), reported on m_stat_unexp_cpl; the real completion still finishes."""
    rng = random.Random(cocotb.RANDOM_SEED)
    tb = RdBench(dut, rng)
    tb.lat = (300, 300)
    await tb.reset(2)
    reqs = [RdReq(addr=0x4000, length=256, ram_addr=0, tag=0)]
    for r in reqs:
        tb.add(r)
    while not tb.outstanding:
        await tb.step()
    tag = next(iter(tb.outstanding))
    dws = [0xDEADBEEF] * 64
    hdr = ((0b010 << 29 | 0b01010 << 24 | 64) << 96) | ((0x0100 << 16 | 256) << 64)
    hdr |= ((tb.rid ^ 0x0008) << 16 | tag << 8) << 32  # function 0 -> another RID
    tb.extra.append((tb.cycle, Cpl(hdr, dws)))
    await tb.run_all([], 2000)
    while len(tb.done) < 1:
        await tb.step()
    assert tb.unexp_seen == 1
    assert tb.done[0] == DMA_OK  # check_data: the foreign data did not land in the buffer


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def runtime_timeout(dut) -> None:
    """cfg_cpl_timeout (the dma_timeout register) sets the completion timeout at run time: a
    dropped completion ends its request with TIMEOUT after that many cycles, not a build-time
    constant, and m_stat_cpl_timeout pulses once."""
    rng = random.Random(cocotb.RANDOM_SEED)
    tb = RdBench(dut, rng)
    tb.timeout = 3000
    await tb.reset(2)
    pulses = 0

    async def count() -> None:
        nonlocal pulses
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            pulses += int(dut.m_stat_cpl_timeout.value)

    cocotb.start_soon(count())
    r = RdReq(addr=0x8000, length=100, ram_addr=0, tag=0, inject="drop")
    tb.add(r)
    while tb.first_mrd is None:
        await tb.step()
    start = tb.first_mrd
    while 0 not in tb.done and tb.cycle < start + 20000:
        await tb.step()
    assert tb.done.get(0) == DMA_ERR_TIMEOUT
    took = tb.last_sts - start
    assert 3000 <= took <= 3000 + 64 + 8, f"timeout after {took} cycles, programmed 3000"
    assert pulses == 1


DMA_ERR_CPL_OTHER = 7
CPL_CRS = 2


def cpl_hdr(rid: int, tag: int, ndw: int, bc: int, la: int = 0, status: int = CPL_SC) -> int:
    """Completion header (CplD when ndw > 0) from completer 0x0100 to requester ``rid``."""
    dw0 = ((0b010 if ndw else 0b000) << 29) | (0b01010 << 24) | (ndw % 1024)
    return (dw0 << 96) | ((0x0100 << 16 | status << 13 | bc % 4096) << 64) | ((rid << 16 | tag << 8 | la) << 32)


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def crs_completion(dut) -> None:
    """A completion with status CRS (or any status other than SC/UR/CA) ends the request with
    DMA_ERR_CPL_OTHER; no data lands, its tag and credits are freed and later reads work."""
    rng = random.Random(cocotb.RANDOM_SEED)
    tb = RdBench(dut, rng)
    tb.lat = (30, 30)
    await tb.reset(2)
    r0 = RdReq(addr=0x6000, length=64, ram_addr=0, tag=0, inject="drop")
    tb.add(r0)
    while not tb.outstanding:
        await tb.step()
    tag = next(iter(tb.outstanding))
    tb.dropped.pop(0)  # answered below with CRS instead of never
    tb.extra.append((tb.cycle, Cpl(cpl_hdr(tb.rid, tag, 0, 64, status=CPL_CRS), [], release=tag)))
    while 0 not in tb.done:
        await tb.step()
    assert tb.done[0] == DMA_ERR_CPL_OTHER
    assert all(b == SENTINEL for b in tb.ram[:64]), "data of a CRS completion landed"
    tb.reqs.clear()
    tb.done.clear()
    tb.mrd_ptr = 0
    again = [tb.random_req(t) for t in range(1, 6)]
    await tb.run_all(again, 50000)
    assert all(tb.done[r.tag] == DMA_OK for r in again)


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def malformed_completions_under_backpressure(dut) -> None:
    """CplDs whose byte count exceeds their MRd (malformed), several beats long, arrive between
    good completions while the local RAM is back-pressured: each ends its request with
    DMA_ERR_MALFORMED, the rest of it is dropped beat by beat even while the ingest stalls, none
    of its data lands (the MRds of the request already sent still complete), and the interleaved
    good reads complete byte-exact."""
    rng = random.Random(cocotb.RANDOM_SEED)
    tb = RdBench(dut, rng)
    tb.lat = (10, 40)
    await tb.reset(2)  # MRRS 512
    tb.p_ram_ready = 0.25
    reqs = []
    for t in range(24):
        r = tb.random_req(t, "bigbc" if t % 3 == 1 else None)
        r.length = rng.randint(200, 1500)
        r.ram_addr = t * 4096 + rng.randint(0, 4096 - r.length)  # own RAM range per request
        r.inject = "bigbc" if t % 3 == 1 else None
        reqs.append(r)
    await tb.run_all(reqs, 100000)
    for r in reqs:
        assert tb.done[r.tag] == expected_error(r), f"request {r.tag} ({r.inject}): {tb.done[r.tag]}"
        if r.inject:  # the first MRd's only completion was the malformed one: nothing of it landed
            n0 = r.chunks[0][1]
            assert all(b == SENTINEL for b in tb.ram[r.ram_addr : r.ram_addr + n0]), f"request {r.tag}"
    assert all(b == SENTINEL for b, ok in zip(tb.ram, tb.allowed, strict=True) if not ok)


@cocotb.test(timeout_time=10, timeout_unit="ms")
async def quarantined_tag(dut) -> None:
    """A timed-out tag stays quarantined for another timeout period: new MRds use other tags,
    late completions for it (multi-beat, under RAM back-pressure, between good completions) are
    dropped and counted, none of their data lands; after the quarantine the tag is used again."""
    rng = random.Random(cocotb.RANDOM_SEED)
    tb = RdBench(dut, rng)
    tb.timeout = 2000
    tb.ext_tag = 0  # tags 0..31
    tb.lat = (20, 40)
    await tb.reset(2)  # MRRS 512
    tags: list[int] = []
    on_mrd = tb.on_mrd

    def record(hdr: int, prfx: int) -> None:
        tags.append((hdr >> 72) & 0xFF)
        on_mrd(hdr, prfx)

    tb.on_mrd = record  # type: ignore[method-assign]
    tb.add(RdReq(addr=0x10000, length=256, ram_addr=0, tag=0, inject="drop"))
    while 0 not in tb.done:
        await tb.step()
    assert tb.done[0] == DMA_ERR_TIMEOUT and tags == [0]
    quarantined_at = tb.cycle
    # within the quarantine: a 4 KiB read (8 MRds) while late completions of tag 0 come in
    tb.p_ram_ready = 0.3
    r1 = RdReq(addr=0x20000, length=4096, ram_addr=REGION, tag=1)
    tb.add(r1)
    late = 0
    while 1 not in tb.done:
        if len(tags) > 1 and late < 6 and not tb.extra and rng.random() < 0.05:
            ndw = 64
            tb.extra.append((tb.cycle, Cpl(cpl_hdr(tb.rid, 0, ndw, 4 * ndw), [0xBAD0_0000 + i for i in range(ndw)])))
            late += 1
        await tb.step()
    while tb.extra or tb.cur_beats:
        await tb.step()
    for _ in range(10):
        await tb.step()
    assert tb.done[1] == DMA_OK  # check_data: r1's bytes are right
    assert tb.cycle < quarantined_at + tb.timeout, "the test outlived the quarantine"
    assert 0 not in tags[1:], f"quarantined tag reused: {tags}"
    assert late > 0 and tb.unexp_seen == late
    assert all(b == SENTINEL for b in tb.ram[:256]), "a late completion's data landed"
    # after the quarantine (timeout + one scan round) tag 0 is the lowest free tag again
    tb.p_ram_ready = 1.0
    while tb.cycle < quarantined_at + tb.timeout + 64:
        await tb.step()
    n = len(tags)
    tb.done.clear()
    r2 = RdReq(addr=0x30000, length=100, ram_addr=2 * REGION, tag=2)
    await tb.run_all([r2], 20000)
    assert tb.done[2] == DMA_OK and tags[n] == 0, tags[n:]


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def whole_4k_completion(dut) -> None:
    """MRRS 4096: a 4 KiB read answered by one 1024-DW CplD (Length field 0): every byte lands,
    its credits come back (the RTL's leak assertion checks when idle), later reads work."""
    rng = random.Random(cocotb.RANDOM_SEED)
    tb = RdBench(dut, rng)
    tb.rcb, tb.cpl_max = 4096, 4096  # the completer returns each MRd whole
    await tb.reset(5)
    reqs = [RdReq(addr=0x7_0000_0000 + t * 4096, length=4096, ram_addr=(t % 16) * REGION, tag=t) for t in range(3)]
    reqs += [RdReq(addr=0x8000 + 4096 * t + 3, length=700, ram_addr=(t % 16) * REGION, tag=t) for t in range(3, 6)]
    await tb.run_all(reqs, 50000)
    assert all(tb.done[r.tag] == DMA_OK for r in reqs)


@cocotb.test(timeout_time=5, timeout_unit="ms")
@cocotb.parametrize(a_offset=[0, 12])
async def error_completion_credits_returned_twice(dut, a_offset: int) -> None:
    """BUGS.md #6 (fixed: the streaming completion's credits stay reserved apart from the retired tag
    and go back once, at its eop; this test failed before the fix). ``a_offset`` 12: read A starts
    12 bytes into a 16-byte block, so its tag reserved one data credit more (129) than the
    malformed completion carries (128): only the completion's own credits stay reserved."""
    await _error_completion_credits(dut, a_offset)


async def _error_completion_credits(dut, a_offset: int = 0) -> None:
    """BUGS.md #6. A malformed 2 KiB CplD (one completion, 16 beats) ends read A at its first beat:
    A's tag 0 retires and releases all of A's credits, read B (4 KiB, waiting for header credits)
    gets tag 0 at once, and when A's last beat is consumed its credits are returned again, this
    time from B's reservation. The engine then counts one header (and 128 data credits) fewer
    than B may still be sent and issues read C, although B's 64 RCB-sized completions plus C's 17
    exceed the 80 completion headers of the buffer. Expected: C waits until B's completions come."""
    rng = random.Random(cocotb.RANDOM_SEED)
    tb = RdBench(dut, rng)
    tb.rcb, tb.cpl_max, tb.lat = 64, 64, (400, 400)  # good completions: one 64-byte RCB block each
    await tb.reset(5)  # MRRS 4096: B is one MRd, 64 header / 256 data credits at worst
    a = RdReq(addr=0x10_0000 + a_offset, length=2048, ram_addr=0, tag=0, inject="bigbc")
    b = RdReq(addr=0x20_0000, length=4096, ram_addr=REGION, tag=1)
    c = RdReq(addr=0x30_0000, length=1088, ram_addr=2 * REGION, tag=2)  # 17 headers at worst
    await tb.run_all([a, b, c], 20000)  # on_mrd fails the test when C's MRd overfills the buffer
    assert [tb.done[r.tag] for r in (a, b, c)] == [DMA_ERR_MALFORMED, DMA_OK, DMA_OK]


@pytest.mark.rtl
@pytest.mark.parametrize("data_width", [256, 128])
def test_ep_dma_rd(data_width: int) -> None:
    run_rtl(
        "ep_dma_rd",
        test_module=__name__,
        parameters={
            "DataWidth": data_width,
            "RamAddrWidth": RAM_ADDR_WIDTH,
            "CplhFcLimit": CPLH_LIMIT,
            "CpldFcLimit": CPLD_LIMIT,
        },
    )
