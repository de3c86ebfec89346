"""VDCM: mdev types, create/remove, teardown order, churn without leaks, virtual config space."""

from __future__ import annotations

import errno
import random
import uuid

import pytest

from siov_sim.model.iommu import Fault
from siov_sim.sw.driver import pci
from siov_sim.sw.guest import DpdkPmd, UserProcess, vfio_close, vfio_open
from siov_sim.sw.vdcm import CyclicIdAllocator
from siov_sim.sw.vdcm.vdev import BAR0_SIZE, VDEV_DEVICE_ID, VDEV_VENDOR_ID
from siov_sim.sw.vfio import VfioError
from siov_sim.sw.vfio import uapi as u

from .fakes import PF_BDF
from .stack import Stack, build, run

pytestmark = pytest.mark.sw


def uid() -> str:
    return str(uuid.uuid4())


def test_supported_types_and_available_instances() -> None:
    async def body() -> None:
        st = await build(num_adis=8)
        types = {t.type_id: t for t in st.vdcm.supported_types()}
        assert types["siov-1q"].available_instances == 8
        assert types["siov-4q"].available_instances == 2
        assert types["siov-4q"].device_api == "vfio-pci"
        await st.vdcm.create("siov-4q", uid())
        await st.vdcm.create("siov-1q", uid())
        assert st.vdcm.available_instances("siov-4q") == 0
        assert st.vdcm.available_instances("siov-1q") == 3
        with pytest.raises(VfioError) as ei:
            await st.vdcm.create("siov-4q", uid())
        assert ei.value.errno == errno.ENOSPC

    run(body())


def test_create_rejects_bad_uuid_duplicate_and_unknown_type() -> None:
    async def body() -> None:
        st = await build()
        u1 = uid()
        await st.vdcm.create("siov-1q", u1)
        for args, err in (
            (("siov-1q", u1), errno.EEXIST),
            (("siov-1q", "not-a-uuid"), errno.EINVAL),
            (("siov-9q", uid()), errno.EINVAL),
        ):
            with pytest.raises(VfioError) as ei:
                await st.vdcm.create(*args)
            assert ei.value.errno == err
        with pytest.raises(VfioError) as ei:
            await st.vdcm.remove(uid())
        assert ei.value.errno == errno.ENODEV

    run(body())


def test_vdevs_get_distinct_pasids_adis_and_addresses() -> None:
    async def body() -> None:
        st = await build(num_adis=8)
        vs = [await st.vdcm.create("siov-1q", uid()) for _ in range(3)]
        vs.append(await st.vdcm.create("siov-4q", uid()))
        assert len({v.pasid for v in vs}) == 4 and all(v.pasid > 0 for v in vs)
        adis = [a for v in vs for a in v.adis]
        assert len(set(adis)) == len(adis) == 7
        addrs = [a for v in vs for a in v.sw_addrs]
        assert len(set(addrs)) == 7
        assert len({v.vbdf for v in vs}) == 4

    run(body())


def test_virtual_config_space_ids_bars_and_msix() -> None:
    async def body() -> None:
        st = await build()
        v = await st.vdcm.create("siov-4q", uid())
        cfg = u.VFIO_PCI_CONFIG_REGION_INDEX

        async def rd(off: int, n: int) -> bytes:
            return await v.region_read(cfg, off, n)

        def le(b: bytes) -> int:
            return int.from_bytes(b, "little")

        assert le(await rd(0, 2)) == VDEV_VENDOR_ID and le(await rd(2, 2)) == VDEV_DEVICE_ID
        assert (VDEV_VENDOR_ID, VDEV_DEVICE_ID) != (0x8086, 0x0B25)  # not the PF's IDs
        # BAR0 sizing: write all-ones, read back the size mask (64-bit memory BAR)
        await v.region_write(cfg, 0x10, b"\xff" * 4)
        await v.region_write(cfg, 0x14, b"\xff" * 4)
        lo, hi = le(await rd(0x10, 4)), le(await rd(0x14, 4))
        assert lo & 0xF == 0x4
        assert (~((hi << 32) | (lo & ~0xF)) & ((1 << 64) - 1)) + 1 == BAR0_SIZE
        await v.region_write(cfg, 0x18, b"\xff" * 4)
        assert (~(le(await rd(0x18, 4)) & ~0xF) & 0xFFFF_FFFF) + 1 == 4 * 4096
        # capability chain: PCIe -> MSI-X with 4 vectors in BAR0
        ptr = (await rd(0x34, 1))[0]
        assert (await rd(ptr, 1))[0] == pci.PCI_CAP_ID_EXP
        msix = (await rd(ptr + 1, 1))[0]
        assert (await rd(msix, 1))[0] == pci.PCI_CAP_ID_MSIX
        assert le(await rd(msix + 2, 2)) & 0x7FF == 3
        # read-only fields ignore writes
        await v.region_write(cfg, 0, b"\x00\x00\x00\x00")
        assert le(await rd(0, 2)) == VDEV_VENDOR_ID

    run(body())


def test_remove_follows_drain_unbind_free_order() -> None:
    async def body() -> None:
        st = await build()
        vdev = await st.vdcm.create("siov-4q", uid())
        proc = UserProcess(st.host, "p")
        fs = proc.enable_sva(st.iommu)
        dev = await st.vdcm.open_sva(vdev.uuid, fs)
        from siov_sim.sw.guest import SvaUser

        drv = SvaUser(proc, dev, st.host.runtime)
        await drv.start()
        events: list[str] = []
        adi, iommu, vdcm = st.pf.adi, st.iommu, st.vdcm

        def spy(obj: object, name: str) -> None:
            orig = getattr(obj, name)

            async def wrapped(*a: object, **k: object) -> object:
                events.append(name)
                return await orig(*a, **k)

            setattr(obj, name, wrapped)

        spy(adi, "drain")
        spy(adi, "abort")
        spy(adi, "reset")
        spy(iommu, "unbind_pasid")
        orig_free = vdcm._pasids.free

        def free(p: int) -> None:
            events.append("free_pasid")
            orig_free(p)

        vdcm._pasids.free = free  # type: ignore[method-assign,assignment]
        await st.vdcm.close_sva(vdev.uuid)
        await st.vdcm.remove(vdev.uuid)
        # teardown aborts (ABORT: the descriptor in flight is cut, not waited for), never drains
        assert events.index("abort") < events.index("unbind_pasid") < events.index("free_pasid")
        assert events.count("abort") == 4 and "drain" not in events  # every enabled queue
        assert st.pf.free_adi_count() == st.pf.num_adis

    run(body())


def test_removed_vdev_pasid_faults() -> None:
    async def body() -> None:
        st = await build()
        vdev = await st.vdcm.create("siov-1q", uid())
        proc = UserProcess(st.host, "dpdk")
        container, dev = await vfio_open(st.vfio, st.vdcm.group_id(vdev.uuid), vdev.uuid, proc)
        drv = DpdkPmd(proc, container, dev, st.host.runtime)
        await drv.start()
        buf = await drv.mem.alloc(4096)
        assert not isinstance(st.host.iommu.translate(PF_BDF, vdev.pasid, buf), Fault)
        pasid = vdev.pasid
        await drv.stop()
        await vfio_close(st.vfio, st.vdcm.group_id(vdev.uuid), container, dev)
        await st.vdcm.remove(vdev.uuid)
        t = st.host.iommu.translate(PF_BDF, pasid, buf)
        assert isinstance(t, Fault)
        # and the next VDEV does not get the same PASID
        v2 = await st.vdcm.create("siov-1q", uid())
        assert v2.pasid != pasid

    run(body())


def test_remove_while_open_is_refused_and_requests_release() -> None:
    async def body() -> None:
        st = await build()
        vdev = await st.vdcm.create("siov-1q", uid())
        proc = UserProcess(st.host, "dpdk")
        container, dev = await vfio_open(st.vfio, st.vdcm.group_id(vdev.uuid), vdev.uuid, proc)
        asked: list[int] = []
        await dev.set_irqs(
            u.VFIO_PCI_REQ_IRQ_INDEX,
            u.VFIO_IRQ_SET_DATA_EVENTFD | u.VFIO_IRQ_SET_ACTION_TRIGGER,
            0,
            1,
            [lambda: asked.append(1)],
        )
        with pytest.raises(VfioError) as ei:
            await st.vdcm.remove(vdev.uuid)
        assert ei.value.errno == errno.EBUSY and asked == [1]
        await vfio_close(st.vfio, st.vdcm.group_id(vdev.uuid), container, dev)
        await st.vdcm.remove(vdev.uuid)

    run(body())


async def _cycle(st: Stack, rng: random.Random, with_traffic: bool) -> None:
    t = rng.choice(["siov-1q", "siov-4q"])
    vdev = await st.vdcm.create(t, uid(), network=rng.choice([None, "n0", "n1"]))
    if with_traffic:
        proc = UserProcess(st.host, "churn")
        gid = st.vdcm.group_id(vdev.uuid)
        container, dev = await vfio_open(st.vfio, gid, vdev.uuid, proc)
        drv = DpdkPmd(proc, container, dev, st.host.runtime, use_irq=rng.random() < 0.5)
        await drv.start()
        q = rng.choice(drv.queues)
        src, dst = await drv.mem.alloc(4096), await drv.mem.alloc(4096)
        drv.mem.write(src, bytes([rng.randrange(256)]) * 4096)
        await q.copy(src, dst, 4096)
        assert drv.mem.read(dst, 4096) == drv.mem.read(src, 4096)
        await drv.mem.free(src)
        await drv.mem.free(dst)
        await drv.stop()
        await vfio_close(st.vfio, gid, container, dev)
        await proc.exit()
    await st.vdcm.remove(vdev.uuid)


@pytest.mark.parametrize("traffic", [False, True])
def test_create_remove_churn_leaks_nothing(traffic: bool) -> None:
    async def body() -> None:
        st = await build(num_adis=8)
        rng = random.Random(5)
        await _cycle(st, rng, traffic)  # warm-up: lazily allocated IOMMU tables

        def pasid_tables() -> int:  # the IOMMU driver keeps PASID-table pages once allocated
            dev = st.iommu._devices.get(PF_BDF)
            return 0 if dev is None else len(dev.pasid_tables)

        pages, irqs = st.host.alloc.in_use() - 4096 * pasid_tables(), st.host.irq.allocated()
        for _ in range(200 if not traffic else 120):
            await _cycle(st, rng, traffic)
        use = st.vdcm.usage()
        assert (use.vdevs, use.adis_in_use, use.pasids_in_use, use.switch_addrs_in_use, use.groups_in_use) == (
            0,
            0,
            0,
            0,
            0,
        )
        assert st.host.irq.allocated() == irqs
        assert st.host.alloc.in_use() - 4096 * pasid_tables() == pages, "host pages leaked"
        assert all(a.state == 0 for a in st.host.dev.adis)
        assert all(f == 0 for f in st.host.dev.fwd)
        assert st.host.dev.faults == []

    run(body())


def test_cyclic_allocator_reuses_late() -> None:
    a = CyclicIdAllocator(1, 4)
    got = [a.alloc() for _ in range(3)]
    a.free(got[0])
    assert a.alloc() == 4 and a.alloc() == 1
    with pytest.raises(VfioError):
        a.alloc()


def test_remove_keeps_pasid_while_adi_cannot_drain() -> None:
    async def body() -> None:
        from siov_sim.sw.driver import PfError
        from siov_sim.sw.driver.abi import Descriptor, Opcode

        st = await build()
        vdev = await st.vdcm.create("siov-1q", uid())
        proc = UserProcess(st.host, "p")
        container, dev = await vfio_open(st.vfio, st.vdcm.group_id(vdev.uuid), vdev.uuid, proc)
        drv = DpdkPmd(proc, container, dev, st.host.runtime)
        await drv.start()
        adi = vdev.adis[0]
        st.host.dev.stalled.add(adi)
        src = await drv.mem.alloc(4096)
        await drv.queues[0].submit(Descriptor(Opcode.COPY, 64, src, src + 2048))
        st.pf.adi.poll_limit = 20  # type: ignore[attr-defined]
        with pytest.raises(PfError, match="did not drain"):
            await vfio_close(st.vfio, st.vdcm.group_id(vdev.uuid), container, dev)
        # requests may still be in flight: the PASID stays bound and allocated
        assert vdev.attached and st.vdcm.usage().pasids_in_use == 1
        assert not isinstance(st.host.iommu.translate(PF_BDF, vdev.pasid, src), Fault)
        st.host.dev.release(adi)
        await vfio_close(st.vfio, st.vdcm.group_id(vdev.uuid), container, dev)
        await st.vdcm.remove(vdev.uuid)
        assert st.vdcm.usage().pasids_in_use == 0

    run(body())
