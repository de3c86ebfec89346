"""ep_adi_switch: forwarding table through the BAR0 external port, lookups, init walk."""

from __future__ import annotations

import random
from typing import Any

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from siov_sim.tb.runner import run_rtl

Dut = Any


class Tb:
    def __init__(self, dut: Dut) -> None:
        self.dut = dut
        self.rng = random.Random(cocotb.RANDOM_SEED)
        self.n = int(dut.NumAdi.value)
        Clock(dut.clk, 4, unit="ns").start()
        for s in ("s_csr_req", "s_csr_addr", "s_csr_wr", "s_csr_wdata", "s_lookup_valid", "s_lookup_addr"):
            getattr(dut, s).value = 0
        self.results: list[tuple[int, int]] = []
        cocotb.start_soon(self._results())

    async def _results(self) -> None:
        d = self.dut
        while True:
            await RisingEdge(d.clk)
            if d.m_result_valid.value:
                self.results.append((int(d.m_result_hit.value), d.m_result_adi.value.to_unsigned()))

    async def start(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 2)
        self.dut.rst.value = 0
        while not self.dut.init_done.value:
            await ClockCycles(self.dut.clk, 16)

    async def csr(self, entry: int, value: int | None = None) -> int:
        d = self.dut
        d.s_csr_req.value = 1
        d.s_csr_wr.value = int(value is not None)
        d.s_csr_addr.value = 4 * entry
        d.s_csr_wdata.value = value or 0
        await RisingEdge(d.clk)
        d.s_csr_req.value = 0
        for _ in range(20):
            await RisingEdge(d.clk)
            if d.s_csr_wr_ack.value or d.s_csr_rd_ack.value:
                return d.s_csr_rdata.value.to_unsigned()
        raise AssertionError("no ack")

    async def lookup(self, addrs: list[int]) -> list[tuple[int, int]]:
        d = self.dut
        self.results.clear()
        for a in addrs:
            d.s_lookup_valid.value = 1
            d.s_lookup_addr.value = a
            while True:
                await RisingEdge(d.clk)
                if d.s_lookup_ready.value:
                    break
        d.s_lookup_valid.value = 0
        await ClockCycles(d.clk, 3)
        return list(self.results)


@cocotb.test()
async def table_and_lookups(dut: Dut) -> None:
    tb = Tb(dut)
    await tb.start()
    entries = {a: tb.rng.randrange(tb.n) for a in tb.rng.sample(range(tb.n), min(tb.n - 1, 8))}
    for a, adi in entries.items():
        await tb.csr(a, 1 << 31 | 0x7FFF_0000 | adi)  # junk in reserved bits is dropped
    for a, adi in entries.items():
        assert await tb.csr(a) == 1 << 31 | adi
    invalid = next(a for a in range(tb.n) if a not in entries)
    assert await tb.csr(invalid) == 0  # cleared by the init walk
    probe = [*entries, invalid, tb.n, 0xFFFF]
    got = await tb.lookup(probe)
    exp = [(1, entries[a]) for a in entries] + [(0, 0)]
    assert [g for g in got[: len(entries)]] == exp[: len(entries)]
    assert [h for h, _ in got[len(entries) :]] == [0, 0, 0]
    # an entry pointing beyond NumAdi never hits
    await tb.csr(invalid, 1 << 31 | 0xFFFF)
    assert [h for h, _ in await tb.lookup([invalid])] == [0]
    # out-of-range CSR entries read 0 and ignore writes
    if tb.n < 4096:
        await tb.csr(tb.n, 1 << 31 | 1)
        assert await tb.csr(tb.n) == 0


@pytest.mark.rtl
@pytest.mark.parametrize("num_adi", [4, 1024])
def test_ep_adi_switch(num_adi: int) -> None:
    run_rtl("ep_adi_switch", test_module=__name__, parameters={"NumAdi": num_adi})
