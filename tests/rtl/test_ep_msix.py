"""ep_msix: pending bits and message delivery rules of the PF's MSI-X vectors."""

from __future__ import annotations

import random
from typing import Any

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from siov_sim.tb.coverage import once, sample_irq
from siov_sim.tb.runner import run_rtl

Dut = Any
N = 8
# functional coverage (tb/coverage.py irq.path) of each way a vector is held pending
BLOCKER_BIN = {"tbl_mask": "msix_masked_pending", "cfg_msix_en": "msix_disabled",
               "cfg_msix_func_mask": "msix_func_masked", "cfg_bus_master_en": "bme_off_held"}


class Tb:
    def __init__(self, dut: Dut) -> None:
        self.dut = dut
        self.rng = random.Random(cocotb.RANDOM_SEED)
        Clock(dut.clk, 4, unit="ns").start()
        self.addr = [0xFEE0_0000 + 0x10 * i + (self.rng.randrange(2) << 32) for i in range(N)]
        self.data = [self.rng.getrandbits(32) for _ in range(N)]
        dut.tbl_addr.value = sum(a << (64 * i) for i, a in enumerate(self.addr))
        dut.tbl_data.value = sum(d << (32 * i) for i, d in enumerate(self.data))
        dut.tbl_mask.value = 0
        dut.evt.value = 0
        dut.cfg_msix_en.value = 1
        dut.cfg_msix_func_mask.value = 0
        dut.cfg_bus_master_en.value = 1
        dut.m_msg_ready.value = 1
        self.msgs: list[tuple[int, int]] = []
        cocotb.start_soon(self._sink())

    async def _sink(self) -> None:
        d = self.dut
        while True:
            await RisingEdge(d.clk)
            if d.m_msg_valid.value and d.m_msg_ready.value:
                self.msgs.append((d.m_msg_addr.value.to_unsigned(), d.m_msg_data.value.to_unsigned()))

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 2)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 1)

    async def event(self, bits: int) -> None:
        self.dut.evt.value = bits
        await RisingEdge(self.dut.clk)
        self.dut.evt.value = 0

    def msg(self, i: int) -> tuple[int, int]:
        return (self.addr[i], self.data[i])


@cocotb.test()
async def delivery_and_pending(dut: Dut) -> None:
    tb = Tb(dut)
    await tb.reset()
    await tb.event(1 << 3)
    await ClockCycles(dut.clk, 4)
    assert tb.msgs == [tb.msg(3)] and dut.pending.value == 0
    once(sample_irq, "msix")
    # two vectors at once: both delivered, one per message
    await tb.event(0b101)
    await ClockCycles(dut.clk, 6)
    assert sorted(tb.msgs[1:]) == sorted([tb.msg(0), tb.msg(2)])
    # masked vector: pending until unmasked; each blocker works the same way
    for blocker in ("tbl_mask", "cfg_msix_en", "cfg_msix_func_mask", "cfg_bus_master_en"):
        n = len(tb.msgs)
        if blocker == "tbl_mask":
            dut.tbl_mask.value = 1 << 5
        else:
            getattr(dut, blocker).value = int(blocker == "cfg_msix_func_mask")
        await tb.event(1 << 5)
        await ClockCycles(dut.clk, 4)
        assert len(tb.msgs) == n and dut.pending.value == 1 << 5, blocker
        once(sample_irq, BLOCKER_BIN[blocker])  # held, pending bit set: checked just above
        await tb.event(1 << 5)  # coalesces with the pending one
        dut.tbl_mask.value = 0
        dut.cfg_msix_en.value = 1
        dut.cfg_msix_func_mask.value = 0
        dut.cfg_bus_master_en.value = 1
        await ClockCycles(dut.clk, 4)
        assert tb.msgs[n:] == [tb.msg(5)] and dut.pending.value == 0, blocker
        once(sample_irq, "msix_pending_released")
    # backpressure: messages wait, none lost or duplicated
    dut.m_msg_ready.value = 0
    n = len(tb.msgs)
    await tb.event(0xFF)
    await ClockCycles(dut.clk, 4)
    for _ in range(40):
        dut.m_msg_ready.value = tb.rng.randrange(2)
        await RisingEdge(dut.clk)
    dut.m_msg_ready.value = 1
    await ClockCycles(dut.clk, 10)
    assert sorted(tb.msgs[n:]) == sorted(tb.msg(i) for i in range(N))


@pytest.mark.rtl
def test_ep_msix() -> None:
    run_rtl("ep_msix", test_module=__name__, parameters={"NumVec": N})
