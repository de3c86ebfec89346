"""PCIe ordering across the endpoint's TX streams with the posted stream (tx_wr) back-pressured
hard, as a hard IP short of posted credits does: DMA traffic (COPY/FILL/SEND, their completion
records and interrupts) on four ADIs while the host keeps reading ADI registers (CplD on tx_cpl)
and the engines fetch descriptors and data (MRd on tx_rd). The adapter (tb/pcie/ep_device.py)
flags every completion or read that passes a posted write presented before it; there must be
none, and results must match the golden model."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from typing import Any

import cocotb
import pytest

from siov_sim.tb.runner import run_rtl
from tests.system.adi_sys import AdiSystem, fill_sources, random_desc

log = logging.getLogger(f"cocotb.{__name__}")


def pauses(rng: random.Random, p: float, burst: int) -> Iterator[int]:
    while True:
        if rng.random() < p:
            yield from [1] * rng.randint(1, burst)
        yield 0


@cocotb.test(timeout_time=500, timeout_unit="ms")
async def posted_backpressure(dut: Any) -> None:
    s = AdiSystem(dut)
    await s.start()
    s.ep.tx_wr.set_pause_generator(pauses(random.Random(s.rng.getrandbits(64)), 0.5, 12))
    adis = list(range(4))
    for a in adis:
        await s.add_adi(a, ring_log2=4, data_pages=4)
        fill_sources(s, a)
    done = False

    async def mmio_reader() -> None:  # CplDs while MWrs wait on tx_wr
        while not done:
            for a in adis:
                await s.read_regs(a)

    reader = cocotb.start_soon(mmio_reader())
    for _ in range(4):
        for a in adis:
            peer = adis[(adis.index(a) + 1) % len(adis)]
            descs = [random_desc(s, a, send_to=peer if s.rng.random() < 0.4 else None) for _ in range(6)]
            await s.submit(a, descs)
        await s.check()
        for a in adis:
            await s.rx_doorbell(a, s.model.model.adis[a].dyn.rx_tail)
    done = True
    await reader
    st = s.ep.tx_wr.stats
    log.info("tx_wr stalled %d cycles; %d completions/reads checked against an open posted write; "
             "ordering errors %d", st.stall_cycles, s.ep.ordering_checks, len(s.ep.ordering_errors))
    assert st.stall_cycles > 1000, "posted stream was hardly back-pressured"
    assert s.ep.ordering_checks > 50, "no completion or read was taken while a posted write waited"
    assert not s.ep.ordering_errors, s.ep.ordering_errors[:3]


@pytest.mark.system
def test_tx_ordering() -> None:
    run_rtl("ep_top", test_module=__name__, parameters={"NumAdi": 4})
