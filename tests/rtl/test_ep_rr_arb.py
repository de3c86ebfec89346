"""ep_rr_arb: one-hot grant among requesters, held requests, round-robin fairness bound."""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from siov_sim.tb.runner import run_rtl


@cocotb.test(timeout_time=200, timeout_unit="us")
@cocotb.parametrize(p_req=[1.0, 0.3], p_ack=[1.0, 0.5])
async def fair_grants(dut, p_req: float, p_ack: float) -> None:
    rng = random.Random(cocotb.RANDOM_SEED)
    Clock(dut.clk, 4, unit="ns").start()
    n = len(dut.req)
    dut.rst.value = 1
    dut.req.value = 0
    dut.ack.value = 0
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    pending = [False] * n
    waited = [0] * n  # acks given to others while this one was requesting
    grants = [0] * n
    for _ in range(1500):
        for i in range(n):
            if not pending[i] and rng.random() < p_req:
                pending[i] = True
                waited[i] = 0
        req = sum(1 << i for i in range(n) if pending[i])
        ack = rng.random() < p_ack
        dut.req.value = req
        dut.ack.value = int(ack)
        await ReadOnly()
        g = dut.grant.value.to_unsigned()
        gv = bool(dut.grant_valid.value)
        assert gv == (req != 0)
        if req:
            assert g & (g - 1) == 0 and g & req, f"grant {g:#x} for req {req:#x}"
            idx = dut.grant_idx.value.to_unsigned()
            assert g == 1 << idx
            if ack:
                pending[idx] = False
                grants[idx] += 1
                for i in range(n):
                    if pending[i] and i != idx:
                        waited[i] += 1
                        assert waited[i] < n, f"requester {i} starved for {waited[i]} grants"
        else:
            assert g == 0
        await RisingEdge(dut.clk)
    if p_req == 1.0 and p_ack == 1.0:
        assert max(grants) - min(grants) <= 1, grants


@pytest.mark.rtl
@pytest.mark.parametrize("num_req", [1, 5, 8])
def test_ep_rr_arb(num_req: int) -> None:
    run_rtl("ep_rr_arb", test_module=__name__, parameters={"NumReq": num_req})
