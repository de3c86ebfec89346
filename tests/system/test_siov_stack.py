"""The whole SIOV stack on the real RTL: root complex with the VT-d IOMMU, PF driver, VFIO, VDCM,
guest/user drivers — the `make sim` scenario, create/remove churn, and concurrent traffic.

Runs on the fast link (tb/fast), like `make sim`: these tests check the host flows, not link
timing, and tests/system/test_link_modes.py proves the fast link equal to the accurate one on the
same kind of scenario."""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import cocotb
import pytest
from cocotb.triggers import Combine

from siov_sim.model.mem import FlatHostMemory
from siov_sim.sw.driver import PfDriver
from siov_sim.sw.driver.regs_adi import RegAdiControl
from siov_sim.sw.guest import DpdkPmd, SvaUser, UserProcess, vfio_close, vfio_open
from siov_sim.sw.guest.demo import run_demo
from siov_sim.sw.iommu import IommuDriver
from siov_sim.sw.vdcm import Vdcm
from siov_sim.sw.vfio import Vfio
from siov_sim.tb.env import Env
from siov_sim.tb.pcie.host_bus import as_host_bus
from siov_sim.tb.pcie.iommu_rc import LOW_RAM_END, IommuRootComplex
from siov_sim.tb.runner import run_rtl

log = logging.getLogger(__name__)
NUM_ADI = 16
CHURN_CYCLES = 200


async def _stack(dut: Any) -> tuple[Env, IommuRootComplex, Any, IommuDriver, PfDriver]:
    rc = IommuRootComplex(FlatHostMemory(0, LOW_RAM_END))
    env = Env(dut, rc=rc)
    dev = await env.start()
    assert dev is not None
    bus = as_host_bus(rc)
    iommu = IommuDriver(bus)
    pf = PfDriver(bus, int(dev.pcie_id), iommu, RegAdiControl.create)
    await pf.probe()
    return env, rc, bus, iommu, pf


async def _open_user_driver(
    vdcm: Vdcm, vfio: Vfio, iommu: IommuDriver, bus: Any, vdev_uuid: str, proc: UserProcess, sva: bool
) -> tuple[Any, Callable[[], Awaitable[None]]]:
    """An SVA process (its own page table) or a DPDK-like PMD (VFIO, IOVAs) on one VDEV, started;
    returns the driver and the coroutine function that closes what was opened."""
    if sva:
        dev = await vdcm.open_sva(vdev_uuid, proc.enable_sva(iommu))
        drv: Any = SvaUser(proc, dev, bus.runtime)

        async def close() -> None:
            await vdcm.close_sva(vdev_uuid)
    else:
        cont, dev = await vfio_open(vfio, vdcm.group_id(vdev_uuid), vdev_uuid, proc)
        drv = DpdkPmd(proc, cont, dev, bus.runtime)

        async def close() -> None:
            await vfio_close(vfio, vdcm.group_id(vdev_uuid), cont, dev)

    await drv.start()
    return drv, close


async def _copy_checked(drv: Any, queue: Any, data: bytes) -> None:
    """COPY ``data`` between two fresh buffers of the driver's address space and check the result."""
    src, dst = await drv.mem.alloc(len(data)), await drv.mem.alloc(len(data))
    drv.mem.write(src, data)
    await queue.copy(src, dst, len(data))
    assert drv.mem.read(dst, len(data)) == data
    await drv.mem.free(src)
    await drv.mem.free(dst)


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def demo_scenario_on_rtl(dut: Any) -> None:
    env, _rc, bus, iommu, pf = await _stack(dut)
    rep = await run_demo(bus, pf, iommu, vdevs=4, size=4096, seed=cocotb.RANDOM_SEED & 0xFFFF)
    log.info("\n%s", rep.text())
    assert {v.driver for v in rep.vdevs} == {"avf", "pmd", "sva"}
    assert all(v.errors == 0 and v.ops > 0 and v.bytes > 0 for v in rep.vdevs), rep.text()
    assert all(v.sends and v.received for v in rep.vdevs), "SEND across two PASID address spaces"
    assert any(v.interrupts for v in rep.vdevs), "IMS interrupts reached the drivers"
    iso = rep.isolation
    assert iso["blocked"] and iso["victim_intact"] and iso["recovered"], iso
    assert iso["fault_pasid"] == next(v.pasid for v in rep.vdevs if v.uuid == iso["offender"])
    assert not any(rep.leaks.values()), rep.leaks
    env.check_link_clean()


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def create_remove_churn_leaks_nothing(dut: Any) -> None:
    """Hundreds of create → traffic → remove cycles: no ADI, PASID, page or vector leaks."""
    env, rc, bus, iommu, pf = await _stack(dut)
    vfio = Vfio(iommu)
    vdcm = Vdcm(pf, vfio=vfio)
    rng = random.Random(cocotb.RANDOM_SEED)
    base_pages: int | None = None
    base_irqs = rc.irq.allocated()
    t0 = time.monotonic()
    for i in range(CHURN_CYCLES):
        v = await vdcm.create(rng.choice(["siov-1q", "siov-4q"]), str(uuid.UUID(int=rng.getrandbits(128))))
        proc = UserProcess(bus, f"p{i}")
        drv, close = await _open_user_driver(vdcm, vfio, iommu, bus, v.uuid, proc, sva=i % 2 == 0)
        if i % 4 == 0:  # traffic on a quarter of the cycles keeps the run short
            await _copy_checked(drv, rng.choice(drv.queues), rng.randbytes(512))
        await drv.stop()
        await close()
        await vdcm.remove(v.uuid)
        await proc.exit()
        # PASID-table pages stay with the device once allocated (as in Linux); everything else returns
        pages = bus.alloc.in_use() - 4096 * len(iommu._devices[int(env.dev.pcie_id)].pasid_tables)
        base_pages = pages if base_pages is None else base_pages
        assert pages == base_pages, f"cycle {i}: {pages - base_pages} bytes of host memory leaked"
    u = vdcm.usage()
    assert (u.vdevs, u.adis_in_use, u.pasids_in_use) == (0, 0, 0), u
    assert rc.irq.allocated() == base_irqs, "interrupt vectors leaked"
    assert rc.faults == [], rc.faults[:3]
    log.info("%d create/remove cycles in %.1f s wall", CHURN_CYCLES, time.monotonic() - t0)
    env.check_link_clean()


@cocotb.test(timeout_time=50, timeout_unit="ms")
async def concurrent_traffic_on_many_vdevs(dut: Any) -> None:
    """Eight VDEVs (PMD and SVA, each its own PASID) copy at the same time; every byte checked."""
    env, rc, bus, iommu, pf = await _stack(dut)
    vfio = Vfio(iommu)
    vdcm = Vdcm(pf, vfio=vfio)
    rng = random.Random(cocotb.RANDOM_SEED)
    drivers: list[Any] = []
    for i in range(8):
        v = await vdcm.create("siov-1q", str(uuid.UUID(int=rng.getrandbits(128))))
        drv, _close = await _open_user_driver(vdcm, vfio, iommu, bus, v.uuid, UserProcess(bus, f"p{i}"), sva=i % 2 == 1)
        drivers.append(drv)

    async def traffic(drv: Any, seed: int) -> None:
        r = random.Random(seed)
        for _ in range(6):
            await _copy_checked(drv, drv.queues[0], r.randbytes(r.choice([64, 500, 4096, 6000])))

    tasks = [cocotb.start_soon(traffic(d, rng.getrandbits(32))) for d in drivers]
    await Combine(*tasks)
    for t in tasks:
        t.result()
    assert rc.faults == [], rc.faults[:3]
    env.check_link_clean()


@pytest.mark.system
def test_siov_stack() -> None:
    run_rtl("ep_top", test_module=__name__, parameters={"NumAdi": NUM_ADI}, link="fast")
