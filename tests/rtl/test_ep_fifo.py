"""ep_fifo: order, no loss, full throughput and full/empty behaviour; register and RAM builds."""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.triggers import ReadOnly, RisingEdge

from siov_sim.tb.runner import run_rtl
from tests.rtl.test_ep_spill_reg import reset, run_stream


@cocotb.test(timeout_time=500, timeout_unit="us")
@cocotb.parametrize(p_valid=[1.0, 0.7, 0.3], p_ready=[1.0, 0.5, 0.2])
async def random_stream(dut, p_valid: float, p_ready: float) -> None:
    await reset(dut)
    rng = random.Random(cocotb.RANDOM_SEED)
    n = 400
    cycles = await run_stream(dut, rng, n, p_valid, p_ready)
    if p_valid == 1.0 and p_ready == 1.0:
        assert cycles <= n + 5, f"not full throughput: {cycles} cycles for {n} words"


@cocotb.test(timeout_time=100, timeout_unit="us")
async def fills_to_depth(dut) -> None:
    """With the output stalled, the FIFO takes Depth words (RAM build: up to Depth + 3), then stops."""
    await reset(dut)
    depth = int(dut.Depth.value)
    flop_max = int(dut.FlopMaxDepth.value)
    taken = 0
    dut.m_ready.value = 0
    for i in range(depth + 10):
        dut.s_valid.value = 1
        dut.s_data.value = i
        await ReadOnly()
        if dut.s_ready.value:
            taken += 1
        await RisingEdge(dut.clk)
    dut.s_valid.value = 0
    if depth <= flop_max:
        assert taken == depth
    else:
        assert depth <= taken <= depth + 3
    got = []
    dut.m_ready.value = 1
    for _ in range(taken + 10):
        await ReadOnly()
        if dut.m_valid.value:
            got.append(dut.m_data.value.to_unsigned())
        await RisingEdge(dut.clk)
    assert got == list(range(taken))


@pytest.mark.rtl
@pytest.mark.parametrize("depth", [4, 64])
def test_ep_fifo(depth: int) -> None:
    run_rtl("ep_fifo", test_module=__name__, parameters={"Width": 32, "Depth": depth})
