"""Live migration between two fake hosts (VT-d model + ADI golden model each): the VMM's
migration driver (sw/vmm), the VDEV's VFIO migration v2 arcs and the VDCM state stream."""

from __future__ import annotations

import asyncio
import errno
import os
from random import Random

import pytest

from siov_sim.model.iommu import Fault
from siov_sim.sw.driver.abi import AdiState
from siov_sim.sw.guest.memory import UserProcess
from siov_sim.sw.guest.queue import QueueError
from siov_sim.sw.vdcm import migration as stream
from siov_sim.sw.vfio.device_ops import VfioError
from siov_sim.sw.vfio.migration import ERROR, RESUMING, RUNNING, STOP_COPY
from siov_sim.sw.vmm import CheckedTraffic, Host, MigratingGuest, MigrationError, migrate, start_guest, stop_guest
from siov_sim.sw.vmm.migrate import open_vdev

from .fakes import PF_BDF
from .stack import Stack, build, run

pytestmark = pytest.mark.sw


async def two_hosts(num_adis: int = 8) -> tuple[Host, Host, Stack, Stack]:
    a, b = await build(num_adis), await build(num_adis)
    b.host.runtime = a.host.runtime  # one clock for both hosts (one simulation)
    return Host("A", a.host, a.pf, a.vdcm), Host("B", b.host, b.pf, b.vdcm), a, b


def test_migrate_back_and_forth_under_traffic() -> None:
    seed = int(os.environ.get("SIOV_MIGRATE_SEED", "1"))
    print(f"seed {seed}")
    rng = Random(seed)

    async def main() -> None:
        ha, hb, sa, sb = await two_hosts()
        g = await start_guest(ha, "vm0", "siov-4q", ram_size=0x14_0000)
        t = CheckedTraffic(g, rng)
        await t.setup()
        tasks = [asyncio.ensure_future(t.run(q)) for q in range(len(g.driver.queues))]
        hosts = [ha, hb]
        for i in range(100):
            await sa.host.runtime.sleep(rng.uniform(0, 20_000))  # a random migration point
            await migrate(g, hosts[(i + 1) % 2], threshold_pages=rng.choice([0, 4, 16]))
            assert not t.stats.errors, t.stats.errors
        t.stop = True
        await asyncio.gather(*tasks)
        assert not t.stats.errors, t.stats.errors
        assert t.stats.completed == t.stats.posted > 200
        assert await t.device_completed() == t.stats.posted  # nothing executed twice or lost
        assert t.irqs() > 0
        assert set(t.stats.per_host) == {"A", "B"}
        await stop_guest(g)
        for s in (sa, sb):
            u = s.vdcm.usage()
            assert (u.vdevs, u.adis_in_use, u.pasids_in_use) == (0, 0, 0)

    run(main())


async def _guest_with_traffic(
    seed: int = 7,
) -> tuple[Host, Host, Stack, Stack, MigratingGuest, CheckedTraffic, list[asyncio.Future[None]]]:
    ha, hb, sa, sb = await two_hosts()
    g = await start_guest(ha, "vm0", "siov-4q", ram_size=0x14_0000)
    t = CheckedTraffic(g, Random(seed))
    await t.setup()
    tasks = [asyncio.ensure_future(t.run(q)) for q in range(len(g.driver.queues))]
    await sa.host.runtime.sleep(5_000)
    return ha, hb, sa, sb, g, t, tasks


async def _finish(g: MigratingGuest, t: CheckedTraffic, tasks: list[asyncio.Future[None]]) -> None:
    before = t.stats.completed
    while t.stats.completed < before + 20 and not t.stats.errors:  # the guest still makes progress
        await g.vm.runtime.sleep(2_000)
    t.stop = True
    await asyncio.gather(*tasks)
    assert not t.stats.errors, t.stats.errors
    assert t.stats.completed == t.stats.posted
    assert await t.device_completed() == t.stats.posted


@pytest.mark.parametrize("where", ["precopy", "stopcopy"])
def test_abort_returns_the_source_to_running_with_nothing_lost(where: str) -> None:
    async def main() -> None:
        ha, hb, sa, sb, g, t, tasks = await _guest_with_traffic()
        with pytest.raises(MigrationError) as ei:
            await migrate(g, hb, abort_at=where)
        assert ei.value.errno == errno.ECANCELED
        assert g.at.host is ha and g.at.dev.get_mig_state() == RUNNING
        assert all(sa.host.dev.model.adis[a].dyn.state == AdiState.ENABLED for a in g.at.vdev.adis)
        assert sb.vdcm.usage().vdevs == 0 and sb.vdcm.usage().pasids_in_use == 0  # destination cleaned up
        assert not sa.vfio.iommu.bound(PF_BDF)[g.at.vdev.pasid].dirty_tracking
        await _finish(g, t, tasks)
        await migrate(g, hb)  # and a migration afterwards works
        assert g.at.host is hb

    run(main())


def test_destination_without_free_adis_refuses_and_the_source_keeps_running() -> None:
    async def main() -> None:
        ha, hb, _sa, _sb, g, t, tasks = await _guest_with_traffic()
        for i in range(2):  # 8 ADIs on B: two 4-queue VDEVs take them all
            await hb.vdcm.create("siov-4q", f"00000000-0000-4000-8000-00000000000{i}")
        with pytest.raises(MigrationError) as ei:
            await migrate(g, hb)
        assert ei.value.errno == errno.ENOSPC
        assert g.at.host is ha and g.at.dev.get_mig_state() == RUNNING
        await _finish(g, t, tasks)

    run(main())


@pytest.mark.parametrize("damage", ["corrupt", "version", "type"])
def test_bad_device_state_is_rejected_and_enables_nothing(damage: str) -> None:
    """VFIO level: RESUMING takes the stream, RESUMING -> STOP checks it whole: EINVAL, the
    device in ERROR, every ADI of the destination VDEV reset and disabled; RESET -> RUNNING."""

    async def main() -> None:
        _ha, hb, _sa, sb, g, t, tasks = await _guest_with_traffic()
        await g.vm.pause()
        f = await g.at.dev.set_mig_state(STOP_COPY)
        assert f is not None and g.at.dev.get_mig_state() == STOP_COPY
        data = bytearray(f.read_all())
        assert data[:8] == b"SIOVVDEV"
        if damage == "corrupt":
            data[60] ^= 1
        elif damage == "version":
            data[8] = 2  # u16 version
            data[-4:] = (stream.zlib.crc32(bytes(data[:-12]))).to_bytes(4, "little")
        type_id = "siov-1q" if damage == "type" else "siov-4q"
        uid = "00000000-0000-4000-8000-0000000000aa"
        await hb.vdcm.create(type_id, uid)
        vmm = UserProcess(hb.bus, "qemu-vm0")
        dst = await open_vdev(hb, g.vm, uid, vmm, vmm.mmap_anon(g.vm.ram_size))
        fin = await dst.dev.set_mig_state(RESUMING)
        assert fin is not None
        fin.write(bytes(data))
        with pytest.raises(VfioError) as ei:
            await dst.dev.set_mig_state(RUNNING)
        assert ei.value.errno == errno.EINVAL
        assert dst.dev.get_mig_state() == ERROR
        with pytest.raises(VfioError):
            fin.write(b"x")  # the session ended
        for a in dst.vdev.adis:
            assert sb.host.dev.model.adis[a].dyn.state == AdiState.DISABLED
        with pytest.raises(VfioError) as ei:
            await dst.dev.set_mig_state(RUNNING)  # ERROR is left only by a reset
        assert ei.value.errno == errno.EINVAL
        await dst.dev.reset()
        assert dst.dev.get_mig_state() == RUNNING
        # the source resumes as if nothing happened
        await g.at.dev.set_mig_state(RUNNING)
        g.vm.resume()
        await _finish(g, t, tasks)

    run(main())


def test_corrupted_state_in_transit_fails_the_migration_safely() -> None:
    async def main() -> None:
        ha, hb, _sa, sb, g, t, tasks = await _guest_with_traffic()
        with pytest.raises(MigrationError) as ei:
            await migrate(g, hb, corrupt_state=True)
        assert ei.value.errno == errno.EINVAL
        assert g.at.host is ha and sb.vdcm.usage().vdevs == 0
        await _finish(g, t, tasks)

    run(main())


def test_source_is_freed_only_after_the_destination_runs_and_its_pasid_is_invalidated() -> None:
    async def main() -> None:
        ha, hb, sa, sb, g, t, tasks = await _guest_with_traffic()
        src_uuid, src_pasid, src_adis = g.at.uuid, g.at.vdev.pasid, list(g.at.vdev.adis)
        seen: list[tuple[int, list[AdiState]]] = []
        real_remove = ha.vdcm.remove

        async def remove(uuid: str) -> None:
            assert uuid == src_uuid
            dst = g.at.vdev  # already re-pointed: the destination VDEV
            seen.append((dst.migration_state, [sb.host.dev.model.adis[a].dyn.state for a in dst.adis]))
            assert src_pasid not in sa.vfio.iommu.bound(PF_BDF)  # unbound (and invalidated) before
            await real_remove(uuid)

        ha.vdcm.remove = remove  # type: ignore[method-assign]
        st = await migrate(g, hb)
        assert seen == [(RUNNING, [AdiState.ENABLED] * 4)]
        assert st.src_pasid == src_pasid and ha.vdcm.usage().adis_in_use == 0
        assert sa.pf.free_adi_count() == 8 and src_adis
        # nothing on host A translates the old PASID any more (PASID cache and IOTLB invalidated)
        r = sa.host.iommu.translate(PF_BDF, src_pasid, 0x10_0000, True)
        assert isinstance(r, Fault)
        await _finish(g, t, tasks)

    run(main())


def test_isolation_after_migration() -> None:
    """The destination's DMA carries the destination's PASID and reaches only its mappings."""

    async def main() -> None:
        _ha, hb, _sa, sb, g, t, tasks = await _guest_with_traffic()
        st = await migrate(g, hb)
        await _finish(g, t, tasks)
        vdev = g.at.vdev
        for a in vdev.adis:
            assert sb.host.dev.model.adis[a].cfg.pasid == vdev.pasid == st.dst_pasid
        q = g.driver.queues[0]
        dst = await g.driver.mem.alloc(4096)
        outside = g.vm.ram_size + 0x1000  # a GPA the VMM never mapped
        sb.host.iommu.fault_log.clear()
        with pytest.raises(QueueError):
            await q.copy(outside, dst, 64)  # the read faults: UR, the ADI goes to ERROR
        assert g.vm.read(dst, 64) == bytes(64)
        faults = [f for f in sb.host.iommu.fault_log if isinstance(f, Fault)]
        assert faults and all(f.pasid == vdev.pasid for f in faults)
        assert all(f.addr == outside for f in faults)

    run(main())


def test_a_queue_in_error_migrates_in_error_and_recovers_on_the_destination() -> None:
    async def main() -> None:
        ha, hb, _sa, sb = await two_hosts()
        g = await start_guest(ha, "vm0", "siov-4q", ram_size=0x14_0000)
        q = g.driver.queues[1]
        dst = await g.driver.mem.alloc(4096)
        with pytest.raises(QueueError) as ei:
            await q.copy(g.vm.ram_size + 0x1000, dst, 64)  # read outside the VM: UR, queue 1 in ERROR
        code = ei.value.error
        before = await q.status()
        assert before[0] is AdiState.ERROR
        await migrate(g, hb)
        assert await q.status() == before  # same state and error code on B
        adi = g.at.vdev.adis[1]
        assert sb.host.dev.model.adis[adi].dyn.state == AdiState.ERROR and sb.host.dev.model.adis[adi].dyn.err == code
        others = [g.at.vdev.adis[i] for i in (0, 2, 3)]
        assert all(sb.host.dev.model.adis[a].dyn.state == AdiState.ENABLED for a in others)
        await q.reset()  # the guest recovers it on B
        src = await g.driver.mem.alloc(4096)
        g.vm.write(src, b"\x5a" * 64)
        await q.copy(src, dst, 64)
        assert g.vm.read(dst, 64) == b"\x5a" * 64
        await stop_guest(g)

    run(main())
