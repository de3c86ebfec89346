"""Training workload of a PGO fast build (``make sim PGO=1``, ``tb.runner.build_fast(flags="pgo")``).

GCC's profile-guided optimisation compiles the Verilated model twice: once instrumented
(``-fprofile-generate``), which this cocotb test then runs, and once with the profile it wrote
(``-fprofile-use``). The profile says which branches of the model's evaluation are hot, so the
second build lays the code out for them; it does not change what the model computes (the bench
replays the PGO build's own recording and checks the output hash).

The workload is deliberately *not* the benchmark's (``tests/bench/bench_cosim.py``: 4 VDEVs,
64 KiB COPYs, seed 7): three VDEVs of the ``make sim`` kinds, 16 KiB COPYs, another seed, some
MMIO and an idle stretch -- the kinds of activity any run has. Code it never reaches is compiled as
without a profile (``-fprofile-partial-training``).
"""

from __future__ import annotations

from typing import Any

import cocotb
from cocotb.triggers import Timer

TRAIN = {"vdevs": 3, "size": 16384, "batch": 4, "rounds": 3, "seed": 4242}
IDLE_NS = 40_000


@cocotb.test()
async def pgo_train(dut: Any) -> None:
    from siov_sim.model.mem import FlatHostMemory
    from siov_sim.sw.driver import PfDriver
    from siov_sim.sw.driver.regs_adi import RegAdiControl
    from siov_sim.sw.guest.demo import run_bandwidth
    from siov_sim.sw.iommu import IommuDriver
    from siov_sim.tb.env import Env
    from siov_sim.tb.pcie.host_bus import as_host_bus
    from siov_sim.tb.pcie.iommu_rc import LOW_RAM_END, IommuRootComplex

    rc = IommuRootComplex(FlatHostMemory(0, LOW_RAM_END))
    env = Env(dut, rc=rc)
    dev = await env.start()
    assert dev is not None
    bus = as_host_bus(rc)
    iommu = IommuDriver(bus)
    pf = PfDriver(bus, int(dev.pcie_id), iommu, RegAdiControl.create)
    await pf.probe()
    rep = await run_bandwidth(bus, pf, iommu, **TRAIN)
    assert not rep.errors and rep.mismatches == 0, (rep.errors, rep.mismatches)
    env.check_link_clean()
    await Timer(IDLE_NS, unit="ns")
