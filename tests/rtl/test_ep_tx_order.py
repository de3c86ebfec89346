"""ep_tx_order: a guarded frame (completion / read) is never taken while a posted-write frame that
was presented in an earlier clock is still open; a presented frame is never withdrawn; nothing is
lost; with the posted stream idle the gate costs nothing."""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from siov_sim.tb.runner import run_rtl


async def run(dut, rng: random.Random, *, p_wr: float, p_wr_ready: float, p_ready: float, n: int) -> int:
    Clock(dut.clk, 4, unit="ns").start()
    dut.rst.value = 1
    for sig in ("wr_valid", "wr_ready", "wr_eop", "s_valid", "s_eop", "m_ready"):
        getattr(dut, sig).value = 0
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    cycle = 0
    wr_beats = 0  # beats left in the current posted frame (0: none presented)
    wr_pres = None  # cycle the current posted frame was first presented
    g_beats = 0
    g_pres = None
    taken = 0
    held = False
    while taken < n:
        cycle += 1
        assert cycle < 50 * n + 1000, "guarded stream starved"
        if wr_beats == 0 and rng.random() < p_wr:
            wr_beats, wr_pres = rng.randint(1, 8), cycle
        if g_beats == 0:
            g_beats, g_pres = rng.randint(1, 3), None
        dut.wr_valid.value = int(wr_beats > 0)
        dut.wr_eop.value = int(wr_beats == 1)
        wr_ready = rng.random() < p_wr_ready
        dut.wr_ready.value = int(wr_ready)
        dut.s_valid.value = 1
        dut.s_eop.value = int(g_beats == 1)
        m_ready = rng.random() < p_ready
        dut.m_ready.value = int(m_ready)
        await ReadOnly()
        m_valid = bool(dut.m_valid.value)
        assert bool(dut.s_ready.value) == (m_valid and m_ready), "s_ready must equal the m handshake"
        if held:
            assert m_valid, "a presented frame was withdrawn"
        if m_valid and g_pres is None:
            g_pres = cycle
        if m_valid and m_ready:
            # no posted frame presented in an earlier clock may still be open now
            # (a posted frame that ends in this very clock counts as open: same-clock is not after)
            assert not (wr_beats > 0 and wr_pres is not None and wr_pres < g_pres), (
                f"cycle {cycle}: guarded frame passed a posted write presented at {wr_pres}")
            g_beats -= 1
            if g_beats == 0:
                taken += 1
        held = m_valid and not m_ready
        if wr_beats > 0 and wr_ready:
            wr_beats -= 1
            if wr_beats == 0:
                wr_pres = None
        await RisingEdge(dut.clk)
    return cycle


@cocotb.test(timeout_time=2, timeout_unit="ms")
@cocotb.parametrize(p_wr_ready=[1.0, 0.3], p_ready=[1.0, 0.5])
async def random_streams(dut, p_wr_ready: float, p_ready: float) -> None:
    """Random posted frames with backpressure; the guarded stream always has a frame to send."""
    rng = random.Random(cocotb.RANDOM_SEED)
    await run(dut, rng, p_wr=0.5, p_wr_ready=p_wr_ready, p_ready=p_ready, n=400)


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def no_posted_traffic_full_rate(dut) -> None:
    """Posted stream idle: one single-beat guarded frame per clock."""
    rng = random.Random(cocotb.RANDOM_SEED)
    cycles = await run(dut, rng, p_wr=0.0, p_wr_ready=1.0, p_ready=1.0, n=300)
    assert cycles <= 300 * 3 + 5  # frames of 1..3 beats, no gate cycles


@pytest.mark.rtl
def test_ep_tx_order() -> None:
    run_rtl("ep_tx_order", test_module=__name__)
