"""Long random COPY/FILL/SEND mix (slow): 96 ADIs of 1024, 8 rounds under backpressure on all
streams, reordered and RCB-split completions, random MPS/MRRS; golden-model scoreboard."""

from __future__ import annotations

from typing import Any

import cocotb
import pytest

from siov_sim.tb.runner import run_rtl
from tests.system.test_adi_traffic import traffic


@cocotb.test(timeout_time=5000, timeout_unit="ms")
async def soak(dut: Any) -> None:
    await traffic(dut, n_adis=min(int(dut.NumAdi.value), 96), rounds=8, per_round=7, stress=True)


@pytest.mark.system
@pytest.mark.slow
def test_adi_soak() -> None:
    run_rtl("ep_top", test_module=__name__, parameters={"NumAdi": 1024})
