"""ep_spill_reg: order and loss-free transfer under random valid/ready, full throughput."""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from siov_sim.tb.runner import run_rtl


async def run_stream(dut, rng: random.Random, n: int, p_valid: float, p_ready: float) -> int:
    """Push n words through s_* -> m_*; return the number of clock cycles used."""
    width = len(dut.s_data)
    sent = [rng.getrandbits(width) for _ in range(n)]
    got: list[int] = []
    si = 0
    cycles = 0
    dut.s_valid.value = 0
    dut.m_ready.value = 0
    while len(got) < n:
        cycles += 1
        assert cycles < 20 * n + 100, "stream stalled"
        sv = si < n and rng.random() < p_valid
        dut.s_valid.value = int(sv)
        dut.s_data.value = sent[si] if si < n else 0
        mr = rng.random() < p_ready
        dut.m_ready.value = int(mr)
        await ReadOnly()
        if sv and dut.s_ready.value:
            si += 1
        if mr and dut.m_valid.value:
            got.append(dut.m_data.value.to_unsigned())
        await RisingEdge(dut.clk)
    dut.s_valid.value = 0
    assert got == sent
    return cycles


async def reset(dut) -> None:
    Clock(dut.clk, 4, unit="ns").start()
    dut.rst.value = 1
    dut.s_valid.value = 0
    dut.m_ready.value = 0
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


@cocotb.test(timeout_time=200, timeout_unit="us")
@cocotb.parametrize(p_valid=[1.0, 0.6], p_ready=[1.0, 0.5])
async def random_stream(dut, p_valid: float, p_ready: float) -> None:
    await reset(dut)
    rng = random.Random(cocotb.RANDOM_SEED)
    n = 500
    cycles = await run_stream(dut, rng, n, p_valid, p_ready)
    if p_valid == 1.0 and p_ready == 1.0:
        assert cycles <= n + 3, f"not full throughput: {cycles} cycles for {n} words"


@pytest.mark.rtl
def test_ep_spill_reg() -> None:
    run_rtl("ep_spill_reg", test_module=__name__, parameters={"Width": 32})
