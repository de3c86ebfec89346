"""Random guest writes to every trapped region: only VfioError comes out, nothing outside the
writer's own ADIs changes, its PASID and switch identity never move."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siov_sim.sw.guest import DpdkPmd, UserProcess, vfio_open
from siov_sim.sw.vdcm.vdev import BAR0_SIZE, Q_BASE, Q_STRIDE, QREG, VREG
from siov_sim.sw.vfio import VfioError
from siov_sim.sw.vfio import uapi as u

from .stack import Stack, build

pytestmark = pytest.mark.sw

KNOWN = [int(r) for r in VREG] + [Q_BASE + q * Q_STRIDE + int(r) for q in range(5) for r in QREG]
write = st.tuples(
    st.sampled_from([u.VFIO_PCI_BAR0_REGION_INDEX, u.VFIO_PCI_CONFIG_REGION_INDEX, u.VFIO_PCI_BAR2_REGION_INDEX]),
    st.one_of(st.integers(0, BAR0_SIZE - 8), st.sampled_from(KNOWN)),
    st.sampled_from([1, 2, 4, 8]),
    st.one_of(
        st.integers(0, (1 << 64) - 1),
        st.sampled_from([0, 1, 2, 3, 6, 8, 64, 0x1000, 0x7F00_0000_0000, 0x8000_0001, 0xFFFF_FFFF]),
    ),
)


def _hw_snapshot(stk: Stack, adis: list[int]) -> list[object]:
    dev = stk.host.dev
    out: list[object] = [list(dev.fwd)]
    for n in adis:  # the whole ADI as the golden model holds it: configuration and state
        out.append((n, copy.deepcopy(dev.model.adis[n])))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(write, min_size=1, max_size=60))
def test_random_guest_writes_stay_contained(writes: list[tuple[int, int, int, int]]) -> None:
    async def body() -> None:
        stk = await build(num_adis=8)
        a = await stk.vdcm.create("siov-4q", str(uuid.uuid4()), network="n")
        b = await stk.vdcm.create("siov-1q", str(uuid.uuid4()), network="n")
        procs = [UserProcess(stk.host, "a"), UserProcess(stk.host, "b", va_base=0x6000_0000_0000)]
        _ca, da = await vfio_open(stk.vfio, stk.vdcm.group_id(a.uuid), a.uuid, procs[0])
        cb, db = await vfio_open(stk.vfio, stk.vdcm.group_id(b.uuid), b.uuid, procs[1])
        pb = DpdkPmd(procs[1], cb, db, stk.host.runtime)
        await pb.start()
        others = [n for n in range(8) if n not in a.adis]
        before = _hw_snapshot(stk, others)
        pasid, group, addrs = a.pasid, a.group, list(a.sw_addrs)
        for index, off, size, value in writes:
            data = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
            region_size = da.get_region_info(index).size
            with contextlib.suppress(VfioError):
                await da.pwrite(u.VFIO_PCI_INDEX_TO_OFFSET(index) + off % max(region_size - 8, 1), data)
        assert (a.pasid, a.group, a.sw_addrs) == (pasid, group, addrs)
        for n in a.adis:  # whatever the guest did, its ADIs carry only its own PASID
            p = stk.host.dev.adis[n].reg(0x20)
            assert p == 0 or p & 0xFFFFF == pasid
            assert stk.host.dev.adis[n].reg(0x34) & 0xFFF == group
        assert _hw_snapshot(stk, others) == before
        # B still works
        src, dst = await pb.mem.alloc(4096), await pb.mem.alloc(4096)
        pb.mem.write(src, b"b" * 4096)
        await pb.queues[0].copy(src, dst, 4096)
        assert pb.mem.read(dst, 4096) == b"b" * 4096

    asyncio.run(body())


def test_concurrent_traffic_on_many_vdevs() -> None:
    async def body() -> None:
        stk = await build(num_adis=16)
        drivers = []
        for i in range(8):
            v = await stk.vdcm.create("siov-1q", str(uuid.uuid4()))
            p = UserProcess(stk.host, f"p{i}", va_base=0x7000_0000_0000 - i * 0x10_0000_0000)
            c, d = await vfio_open(stk.vfio, stk.vdcm.group_id(v.uuid), v.uuid, p)
            drv = DpdkPmd(p, c, d, stk.host.runtime, use_irq=bool(i % 2))
            await drv.start()
            drivers.append(drv)

        async def traffic(i: int, drv: DpdkPmd) -> None:
            src, dst = await drv.mem.alloc(8192), await drv.mem.alloc(8192)
            for k in range(10):
                drv.mem.write(src, bytes([i * 16 + k]) * 8192)
                await drv.queues[0].copy(src, dst, 8192)
                assert drv.mem.read(dst, 8192) == bytes([i * 16 + k]) * 8192
                await asyncio.sleep(0)

        await asyncio.gather(*(traffic(i, d) for i, d in enumerate(drivers)))
        assert all(d.queues[0].stats.ops == 10 for d in drivers)
        assert stk.host.dev.faults == []

    asyncio.run(body())
