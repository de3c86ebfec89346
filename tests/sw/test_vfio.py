"""VFIO model: container/group/device semantics, MAP/UNMAP_DMA, ioctls, interrupts, reset."""

from __future__ import annotations

import asyncio
import errno
import struct
import uuid
from collections.abc import Callable

import pytest

from siov_sim.model.iommu import Fault
from siov_sim.sw.driver.abi import Descriptor, Opcode
from siov_sim.sw.driver.adi import AdiState
from siov_sim.sw.guest import DpdkPmd, UserProcess, vfio_close, vfio_open
from siov_sim.sw.vdcm import QREG
from siov_sim.sw.vdcm.vdev import Q_BASE
from siov_sim.sw.vfio import VfioContainer, VfioDevice, VfioError
from siov_sim.sw.vfio import uapi as u

from .fakes import PF_BDF
from .stack import Stack, build, run

pytestmark = pytest.mark.sw
RW = u.VFIO_DMA_MAP_FLAG_READ | u.VFIO_DMA_MAP_FLAG_WRITE


async def opened(st: Stack, type_id: str = "siov-1q") -> tuple[UserProcess, VfioContainer, VfioDevice, str]:
    vdev = await st.vdcm.create(type_id, str(uuid.uuid4()))
    proc = UserProcess(st.host, "user")
    container, dev = await vfio_open(st.vfio, st.vdcm.group_id(vdev.uuid), vdev.uuid, proc)
    return proc, container, dev, vdev.uuid


def test_container_ioctls_version_extension_set_iommu() -> None:
    async def body() -> None:
        st = await build()
        vdev = await st.vdcm.create("siov-1q", str(uuid.uuid4()))
        c = st.vfio.open_container(UserProcess(st.host, "p"))
        assert await c.ioctl(u.VFIO_GET_API_VERSION) == u.VFIO_API_VERSION
        assert await c.ioctl(u.VFIO_CHECK_EXTENSION, u.VFIO_TYPE1v2_IOMMU) == 1
        assert await c.ioctl(u.VFIO_CHECK_EXTENSION, u.VFIO_SPAPR_TCE_IOMMU) == 0
        with pytest.raises(VfioError) as ei:  # no group yet
            await c.ioctl(u.VFIO_SET_IOMMU, u.VFIO_TYPE1v2_IOMMU)
        assert ei.value.errno == errno.EINVAL
        g = st.vfio.open_group(st.vdcm.group_id(vdev.uuid))
        buf = bytearray(u.VfioGroupStatus(8, 0).pack())
        await g.ioctl(u.VFIO_GROUP_GET_STATUS, buf)
        assert u.VfioGroupStatus.unpack(buf).flags == u.VFIO_GROUP_FLAGS_VIABLE
        with pytest.raises(VfioError):  # device fd needs container + IOMMU
            g.get_device_fd(vdev.uuid)
        await g.ioctl(u.VFIO_GROUP_SET_CONTAINER, c)
        await c.ioctl(u.VFIO_SET_IOMMU, u.VFIO_TYPE1v2_IOMMU)
        await g.ioctl(u.VFIO_GROUP_GET_STATUS, buf)
        assert u.VfioGroupStatus.unpack(buf).flags & u.VFIO_GROUP_FLAGS_CONTAINER_SET
        assert vdev.attached
        with pytest.raises(VfioError) as ei:
            await c.set_iommu(u.VFIO_TYPE1v2_IOMMU)
        assert ei.value.errno == errno.EBUSY
        with pytest.raises(VfioError) as ei:
            await c.ioctl(0x3B00 + 99)
        assert ei.value.errno == errno.ENOTTY

    run(body())


def test_map_dma_builds_second_stage_and_unmap_invalidates() -> None:
    async def body() -> None:
        st = await build()
        proc, container, _dev, uid = await opened(st)
        pasid = st.vdcm.get(uid).pasid
        va = proc.mmap_anon(4 * 4096)
        buf = bytearray(u.VfioIommuType1DmaMap(32, RW, va, 0x4000_0000, 4 * 4096).pack())
        await container.ioctl(u.VFIO_IOMMU_MAP_DMA, buf)
        for i in range(4):
            t = st.host.iommu.translate(PF_BDF, pasid, 0x4000_0000 + i * 4096 + 8, True)
            assert not isinstance(t, Fault) and t.hpa == proc.vaddr_to_hpa(va + i * 4096 + 8)
        un = bytearray(u.VfioIommuType1DmaUnmap(24, 0, 0x4000_0000, 4 * 4096).pack())
        await container.ioctl(u.VFIO_IOMMU_UNMAP_DMA, un)
        assert u.VfioIommuType1DmaUnmap.unpack(un).size == 4 * 4096
        # the IOTLB held the translation; UNMAP must have invalidated it
        assert isinstance(st.host.iommu.translate(PF_BDF, pasid, 0x4000_0000 + 8, True), Fault)

    run(body())


def test_map_dma_argument_checks() -> None:
    async def body() -> None:
        st = await build()
        proc, c, _dev, _ = await opened(st)
        va = proc.mmap_anon(8 * 4096)
        m = c.map_dma
        await m(va, 0x10000, 4 * 4096, RW)
        cases = [
            ((va, 0x10000 + 4096, 4096, RW), errno.EEXIST),
            ((va + 1, 0x90000, 4096, RW), errno.EINVAL),
            ((va, 0x90000, 0, RW), errno.EINVAL),
            ((va, 0x90000, 4096, 0), errno.EINVAL),
            ((va, 0xFEE0_0000, 4096, RW), errno.EINVAL),
            ((va, 0x90000, 4096, 0x80), errno.EINVAL),
            ((0x1000, 0x90000, 4096, RW), errno.EFAULT),
        ]
        for args, err in cases:
            with pytest.raises(VfioError) as ei:
                await m(*args)
            assert ei.value.errno == err, args
        with pytest.raises(VfioError) as ei:  # type1v2 cannot split a mapping
            await c.unmap_dma(0x10000, 4096)
        assert ei.value.errno == errno.EINVAL
        assert await c.unmap_dma(0x80000, 4096) == 0
        await m(va + 4 * 4096, 0x20000, 4096, u.VFIO_DMA_MAP_FLAG_READ)
        assert await c.unmap_dma(0, 0, u.VFIO_DMA_UNMAP_FLAG_ALL) == 5 * 4096
        assert c.mappings() == []

    run(body())


def test_read_only_mapping_blocks_device_writes() -> None:
    async def body() -> None:
        st = await build()
        proc, c, dev, uid = await opened(st)
        drv = DpdkPmd(proc, c, dev, st.host.runtime)
        await drv.start()
        ro = proc.mmap_anon(4096)
        proc.write(ro, b"R" * 4096)
        await c.map_dma(ro, 0x5000_0000, 4096, u.VFIO_DMA_MAP_FLAG_READ)
        src = await drv.mem.alloc(4096)
        await drv.queues[0].fill(0x5000_0000, 0, 4096)  # write into a read-only IOVA: dropped
        assert proc.read(ro, 4) == b"RRRR"
        await drv.queues[0].copy(0x5000_0000, src, 4096)  # reading it is fine
        assert drv.mem.read(src, 4) == b"RRRR"
        faults = await st.iommu.drain_faults()
        assert any(f.write and f.pasid == st.vdcm.get(uid).pasid for f in faults)

    run(body())


def test_iommu_get_info_reports_pgsizes_and_iova_ranges() -> None:
    async def body() -> None:
        st = await build()
        _p, c, _d, _ = await opened(st)
        buf = bytearray(u.VfioIommuType1Info(24, 0, 0).pack())
        await c.ioctl(u.VFIO_IOMMU_GET_INFO, buf)
        info = u.VfioIommuType1Info.unpack(buf)
        assert info.flags & u.VFIO_IOMMU_INFO_PGSIZES and info.iova_pgsizes & 4096
        assert info.cap_offset == 0 and info.argsz > 24  # caps did not fit: argsz tells how much
        buf = bytearray(info.argsz)
        buf[:24] = u.VfioIommuType1Info(info.argsz, 0, 0).pack()
        await c.ioctl(u.VFIO_IOMMU_GET_INFO, buf)
        info = u.VfioIommuType1Info.unpack(buf)
        cap = u.VfioIommuType1InfoCapIovaRange.unpack(bytes(buf), info.cap_offset)
        assert next((r.start, r.end) for r in cap.iova_ranges) == (0, 0xFEDF_FFFF)
        nxt = cap.next
        assert struct.unpack_from("<HHII", buf, nxt)[0] == u.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL

    run(body())


def test_device_info_region_info_sparse_mmap_ioctl() -> None:
    async def body() -> None:
        st = await build()
        _p, _c, dev, _ = await opened(st, "siov-4q")
        b = bytearray(u.VfioDeviceInfo(20, 0, 0, 0).pack())
        await dev.ioctl(u.VFIO_DEVICE_GET_INFO, b)
        di = u.VfioDeviceInfo.unpack(b)
        assert di.flags & u.VFIO_DEVICE_FLAGS_PCI and di.flags & u.VFIO_DEVICE_FLAGS_RESET
        assert (di.num_regions, di.num_irqs) == (u.VFIO_PCI_NUM_REGIONS, u.VFIO_PCI_NUM_IRQS)
        r = bytearray(u.VfioRegionInfo(32, 0, u.VFIO_PCI_BAR2_REGION_INDEX, 0, 0, 0).pack())
        await dev.ioctl(u.VFIO_DEVICE_GET_REGION_INFO, r)
        ri = u.VfioRegionInfo.unpack(r)
        assert ri.flags & u.VFIO_REGION_INFO_FLAG_MMAP and ri.flags & u.VFIO_REGION_INFO_FLAG_CAPS
        assert ri.cap_offset == 0 and ri.argsz == 32 + 16 + 16
        assert ri.offset == u.VFIO_PCI_INDEX_TO_OFFSET(2) and ri.size == 4 * 4096
        r = bytearray(ri.argsz)
        r[:32] = u.VfioRegionInfo(ri.argsz, 0, 2, 0, 0, 0).pack()
        await dev.ioctl(u.VFIO_DEVICE_GET_REGION_INFO, r)
        ri = u.VfioRegionInfo.unpack(r)
        cap = u.VfioRegionInfoCapSparseMmap.unpack(bytes(r), ri.cap_offset)
        assert [(a.offset, a.size) for a in cap.areas] == [(0, 4 * 4096)]
        # BAR0 is trapped: readable/writable, never mmap-able
        r0 = bytearray(u.VfioRegionInfo(32, 0, 0, 0, 0, 0).pack())
        await dev.ioctl(u.VFIO_DEVICE_GET_REGION_INFO, r0)
        assert not u.VfioRegionInfo.unpack(r0).flags & u.VFIO_REGION_INFO_FLAG_MMAP
        with pytest.raises(VfioError):
            dev.mmap(0, 4096)
        q = bytearray(u.VfioIrqInfo(16, 0, u.VFIO_PCI_MSIX_IRQ_INDEX, 0).pack())
        await dev.ioctl(u.VFIO_DEVICE_GET_IRQ_INFO, q)
        assert u.VfioIrqInfo.unpack(q).count == 4
        with pytest.raises(VfioError) as ei:
            await dev.ioctl(u.VFIO_DEVICE_GET_REGION_INFO, bytearray(u.VfioRegionInfo(8, 0, 0, 0, 0, 0).pack()))
        assert ei.value.errno == errno.EINVAL

    run(body())


def test_set_irqs_mask_unmask_and_loopback_trigger() -> None:
    async def body() -> None:
        st = await build()
        _p, _c, dev, uid = await opened(st, "siov-4q")
        hits: list[int] = []
        cbs = [lambda i=i: hits.append(i) for i in range(4)]
        trig = u.VFIO_IRQ_SET_DATA_EVENTFD | u.VFIO_IRQ_SET_ACTION_TRIGGER
        await dev.set_irqs(u.VFIO_PCI_MSIX_IRQ_INDEX, trig, 0, 4, cbs)
        vdev = st.vdcm.get(uid)
        # IMS entries of its ADIs now carry host MSI messages
        for adi in vdev.adis:
            assert st.host.dev.adis[adi].reg(0x24) >> 20 == 0xFEE
        none_trig = u.VFIO_IRQ_SET_DATA_NONE | u.VFIO_IRQ_SET_ACTION_TRIGGER
        await dev.set_irqs(u.VFIO_PCI_MSIX_IRQ_INDEX, none_trig, 2, 1)
        assert hits == [2]
        mask = u.VFIO_IRQ_SET_DATA_NONE | u.VFIO_IRQ_SET_ACTION_MASK
        unmask = u.VFIO_IRQ_SET_DATA_NONE | u.VFIO_IRQ_SET_ACTION_UNMASK
        await dev.set_irqs(u.VFIO_PCI_MSIX_IRQ_INDEX, mask, 1, 1)
        vdev._on_host_irq(1)  # the device fires while masked: pending, not delivered
        assert hits == [2]
        await dev.set_irqs(u.VFIO_PCI_MSIX_IRQ_INDEX, unmask, 1, 1)
        assert hits == [2, 1]
        irqs = st.host.irq.allocated()
        await dev.set_irqs(u.VFIO_PCI_MSIX_IRQ_INDEX, none_trig, 0, 0)
        assert st.host.irq.allocated() == irqs - 4
        with pytest.raises(VfioError):  # two action flags
            await dev.set_irqs(u.VFIO_PCI_MSIX_IRQ_INDEX, trig | mask, 0, 1, [None])

    run(body())


def test_device_reset_quiesces_and_clears_virtual_state_keeps_pasid() -> None:
    async def body() -> None:
        st = await build()
        proc, c, dev, uid = await opened(st)
        drv = DpdkPmd(proc, c, dev, st.host.runtime)
        await drv.start()
        vdev = st.vdcm.get(uid)
        adi = vdev.adis[0]
        assert st.host.dev.adis[adi].state == AdiState.ENABLED
        await dev.ioctl(u.VFIO_DEVICE_RESET)
        assert st.host.dev.adis[adi].state == AdiState.DISABLED
        assert not vdev.queue_enabled(0)
        assert await dev.region_read32(0, Q_BASE + QREG.RING_SIZE) == 0
        assert vdev.attached
        # and it comes back with the same setup path
        drv.queues.clear()
        await drv.start()
        src, dst = await drv.mem.alloc(4096), await drv.mem.alloc(4096)
        await drv.queues[0].copy(src, dst, 4096)

    run(body())


def test_drain_waits_for_outstanding_requests() -> None:
    async def body() -> None:
        st = await build()
        proc, c, dev, uid = await opened(st)
        drv = DpdkPmd(proc, c, dev, st.host.runtime)
        await drv.start()
        adi = st.vdcm.get(uid).adis[0]
        st.host.dev.stalled.add(adi)
        q = drv.queues[0]
        src, dst = await drv.mem.alloc(4096), await drv.mem.alloc(4096)
        await q.submit(Descriptor(Opcode.COPY, 4096, src, dst))
        assert st.host.dev.adis[adi].busy

        async def release_later() -> None:
            for _ in range(5):
                await asyncio.sleep(0)
            st.host.dev.release(adi)

        task = asyncio.ensure_future(release_later())
        await st.pf.adi.drain(adi)
        await task
        assert st.host.dev.adis[adi].state == AdiState.DISABLED and not st.host.dev.adis[adi].busy

    run(body())


def test_close_releases_domain_and_pages() -> None:
    async def body() -> None:
        st = await build()
        base = st.host.alloc.in_use()
        proc, c, dev, uid = await opened(st)
        drv = DpdkPmd(proc, c, dev, st.host.runtime)
        await drv.start()
        await drv.stop()
        await vfio_close(st.vfio, st.vdcm.group_id(uid), c, dev)
        assert not st.vdcm.get(uid).attached
        await proc.exit()
        await st.vdcm.remove(uid)
        dev_tables = st.iommu._devices[PF_BDF]
        assert st.host.alloc.in_use() - 4096 * len(dev_tables.pasid_tables) <= base

    run(body())


def test_set_irqs_ioctl_with_eventfd_array() -> None:
    async def body() -> None:
        st = await build()
        _p, _c, dev, uid = await opened(st, "siov-4q")
        hits: list[int] = []

        def hit(i: int) -> Callable[[], None]:
            return lambda: hits.append(i)

        fds = [st.vfio.eventfds.eventfd(hit(i)) for i in range(2)]
        flags = u.VFIO_IRQ_SET_DATA_EVENTFD | u.VFIO_IRQ_SET_ACTION_TRIGGER
        buf = bytearray(u.VfioIrqSet(20 + 8, flags, u.VFIO_PCI_MSIX_IRQ_INDEX, 1, 2).pack() + struct.pack("<2i", *fds))
        await dev.ioctl(u.VFIO_DEVICE_SET_IRQS, buf)
        vdev = st.vdcm.get(uid)
        vdev._on_host_irq(2)
        assert hits == [1]
        # fd -1 de-assigns; a bogus fd is EBADF
        buf = bytearray(u.VfioIrqSet(24, flags, u.VFIO_PCI_MSIX_IRQ_INDEX, 1, 1).pack() + struct.pack("<i", -1))
        await dev.ioctl(u.VFIO_DEVICE_SET_IRQS, buf)
        vdev._on_host_irq(1)
        assert hits == [1]
        buf = bytearray(u.VfioIrqSet(24, flags, u.VFIO_PCI_MSIX_IRQ_INDEX, 0, 1).pack() + struct.pack("<i", 7))
        with pytest.raises(VfioError) as ei:
            await dev.ioctl(u.VFIO_DEVICE_SET_IRQS, buf)
        assert ei.value.errno == errno.EBADF
        # DATA_BOOL trigger
        await dev.set_irqs(u.VFIO_PCI_MSIX_IRQ_INDEX, flags, 0, 1, [lambda: hits.append(0)])
        bflags = u.VFIO_IRQ_SET_DATA_BOOL | u.VFIO_IRQ_SET_ACTION_TRIGGER
        buf = bytearray(u.VfioIrqSet(22, bflags, u.VFIO_PCI_MSIX_IRQ_INDEX, 0, 2).pack() + b"\x01\x00")
        await dev.ioctl(u.VFIO_DEVICE_SET_IRQS, buf)
        assert hits == [1, 0]

    run(body())


def test_mapped_pages_stay_pinned_after_munmap_until_unmap() -> None:
    async def body() -> None:
        st = await build()
        proc, c, _dev, _ = await opened(st)
        va = proc.mmap_anon(2 * 4096)
        hpa = proc.vaddr_to_hpa(va)
        await c.map_dma(va, 0x10000, 2 * 4096, RW)
        in_use = st.host.alloc.in_use()
        await proc.munmap(va)  # succeeds, as munmap(2) does; the pinned pages stay allocated
        assert proc.vaddr_to_hpa(va) is None and proc.orphaned_pages() == 2
        assert st.host.alloc.in_use() == in_use
        await c.unmap_dma(0x10000, 2 * 4096)  # the last unpin frees them
        assert proc.orphaned_pages() == 0 and proc.pinned_pages() == 0
        assert st.host.alloc.in_use() <= in_use - 2 * 4096  # (and emptied IOMMU tables)
        assert hpa is not None

    run(body())


def test_abort_cuts_a_descriptor_drain_would_wait_for() -> None:
    """AdiControl.abort: a descriptor that would run for ages (the fake's ``long``) is cut, its
    record says ABORTED, the ADI is DISABLED with nothing outstanding; drain would time out."""

    async def body() -> None:
        from siov_sim.sw.driver import PfError
        from siov_sim.sw.driver.abi import Completion, CplStatus, ErrorCode

        st = await build()
        proc, c, dev, uid = await opened(st)
        drv = DpdkPmd(proc, c, dev, st.host.runtime)
        await drv.start()
        adi = st.vdcm.get(uid).adis[0]
        st.host.dev.long.add(adi)
        q = drv.queues[0]
        src, dst = await drv.mem.alloc(4096), await drv.mem.alloc(4096)
        slot = await q.submit(Descriptor(Opcode.COPY, 4096, src, dst, tag=0x77))
        assert st.host.dev.adis[adi].busy
        st.pf.adi.poll_limit = 20  # type: ignore[attr-defined]
        with pytest.raises(PfError, match="did not drain"):
            await st.pf.adi.drain(adi)
        assert st.host.dev.adis[adi].state == AdiState.DRAINING
        await st.pf.adi.abort(adi)
        a = st.host.dev.adis[adi]
        assert (a.state, a.busy, a.err) == (AdiState.DISABLED, False, 0)
        rec = Completion.unpack(drv.mem.read(q.cpl + 16 * slot, 16))
        assert (rec.status, rec.error, rec.tag) == (CplStatus.ABORTED, ErrorCode.ABORTED, 0x77)
        await st.pf.adi.abort(adi)  # DISABLED, nothing outstanding: nothing to do

    run(body())


def test_device_reset_and_remove_abort_long_descriptors() -> None:
    """VFIO_DEVICE_RESET (virtual FLR) and teardown do not wait for a descriptor in flight:
    they ABORT it (a DRAIN would wait for the whole 1 MiB COPY), then reset the ADI."""

    async def body() -> None:
        st = await build()
        st.pf.adi.poll_limit = 20  # type: ignore[attr-defined]
        proc, c, dev, uid = await opened(st)
        drv = DpdkPmd(proc, c, dev, st.host.runtime)
        await drv.start()
        vdev = st.vdcm.get(uid)
        adi = vdev.adis[0]
        st.host.dev.long.add(adi)
        src, dst = await drv.mem.alloc(4096), await drv.mem.alloc(4096)
        await drv.queues[0].submit(Descriptor(Opcode.COPY, 4096, src, dst))
        assert st.host.dev.adis[adi].busy
        await dev.ioctl(u.VFIO_DEVICE_RESET)
        a = st.host.dev.adis[adi]
        assert (a.state, a.busy) == (AdiState.DISABLED, False) and not vdev.queue_enabled(0)
        # again with a queue running at teardown: close (reset) and remove
        drv.queues.clear()
        await drv.start()
        st.host.dev.long.add(adi)
        await drv.queues[0].submit(Descriptor(Opcode.COPY, 4096, src, dst))
        assert st.host.dev.adis[adi].busy
        await vfio_close(st.vfio, st.vdcm.group_id(uid), c, dev)
        assert not st.host.dev.adis[adi].busy
        await proc.exit()
        await st.vdcm.remove(uid)
        assert st.vdcm.usage().pasids_in_use == 0

    run(body())
