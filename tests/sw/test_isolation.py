"""Isolation and guest bad input: nothing a VDEV user does reaches another VDEV."""

from __future__ import annotations

import errno

import pytest

from siov_sim.sw.driver import PfError, pci
from siov_sim.sw.driver.abi import AdiState, ErrorCode
from siov_sim.sw.guest import QueueError
from siov_sim.sw.vdcm import QREG, VREG, Reject
from siov_sim.sw.vdcm.vconfig import PCIE_CAP_OFF
from siov_sim.sw.vdcm.vdev import MSIX_TABLE_OFF, Q_BASE, Q_STRIDE
from siov_sim.sw.vfio import VfioError
from siov_sim.sw.vfio import uapi as u

from .fakes import PF_BDF
from .stack import build, run
from .test_drivers import pmd

pytestmark = pytest.mark.sw
BAR0 = u.VFIO_PCI_BAR0_REGION_INDEX
BAR2 = u.VFIO_PCI_BAR2_REGION_INDEX


def qreg(q: int, r: QREG) -> int:
    return Q_BASE + q * Q_STRIDE + r


def test_dma_into_memory_only_another_vdev_mapped_faults_with_own_pasid() -> None:
    async def body() -> None:
        st = await build()
        a, ua = await pmd(st, va_base=0x7000_0000_0000)
        b, _ub = await pmd(st, va_base=0x6000_0000_0000)
        secret = await b.mem.alloc(4096)
        b.mem.write(secret, b"B's secret" * 400)
        mine = await a.mem.alloc(4096)
        a.mem.write(mine, b"A" * 4096)
        # A names B's IOVA as its COPY source and as its FILL destination.
        with pytest.raises(QueueError) as ei:
            await a.queues[0].copy(secret, mine, 4096)
        assert ei.value.error == ErrorCode.CPL_UR
        assert a.mem.read(mine, 4096) == b"A" * 4096
        faults = await st.iommu.drain_faults()
        pasid_a = st.vdcm.get(ua).pasid
        assert any(f.pasid == pasid_a and f.sid == PF_BDF and f.addr >> 12 == secret >> 12 for f in faults)
        assert (await a.queues[0].status())[0] is AdiState.ERROR
        # B is unaffected and keeps working.
        assert b.mem.read(secret, 10) == b"B's secret"
        dst = await b.mem.alloc(4096)
        await b.queues[0].copy(secret, dst, 4096)
        assert b.mem.read(dst, 10) == b"B's secret"
        # A recovers after a queue reset through the slow path.
        await a.queues[0].reset()
        await a.queues[0].fill(mine, 0x4141414141414141, 4096)
        await a.queues[0].copy(mine, mine + 2048, 64)
        assert (await a.queues[0].status())[0] is AdiState.ENABLED
        # A write into B's memory is dropped by the IOMMU (posted write: A cannot even tell).
        await a.queues[0].fill(secret, 0, 4096)
        assert b.mem.read(secret, 10) == b"B's secret"

    run(body())


def test_guest_cannot_change_pasid() -> None:
    async def body() -> None:
        st = await build()
        drv, uuid = await pmd(st)
        vdev = st.vdcm.get(uuid)
        for off in (VREG.PASID, qreg(0, QREG.PASID)):
            with pytest.raises(VfioError) as ei:
                await drv.dev.region_write32(BAR0, off, vdev.pasid + 1)
            assert ei.value.errno == errno.EPERM
        assert [r.reason for r in vdev.rejects] == [Reject.PASID_CHANGE, Reject.PASID_CHANGE]
        assert await drv.dev.region_read32(BAR0, VREG.PASID) == vdev.pasid
        hw = st.host.dev.adis[vdev.adis[0]].reg(0x20) & 0xFFFFF
        assert hw == vdev.pasid
        assert (await drv.dev.region_read32(BAR0, VREG.REJECT)) >> 16 == 2

    run(body())


def test_guest_cannot_reach_queues_it_does_not_own() -> None:
    async def body() -> None:
        st = await build()
        a, _ = await pmd(st, "siov-1q")
        _b, ub = await pmd(st, "siov-4q")
        # queue 1 would be the next ADI's block: it is not A's
        with pytest.raises(VfioError) as ei:
            await a.dev.region_write32(BAR0, qreg(1, QREG.RING_BASE_LO), 0x1000)
        assert ei.value.errno == errno.EINVAL
        with pytest.raises(VfioError):
            await a.dev.region_write32(BAR0, 0x1FF0, 1)
        # BAR2 beyond its single portal page: no mmap, no write
        with pytest.raises(VfioError):
            a.dev.mmap(u.VFIO_PCI_INDEX_TO_OFFSET(BAR2) + 4096, 4096)
        info = a.dev.get_region_info(BAR2)
        assert info.sparse_mmap == ((0, 4096),)
        # its mapping is exactly its own ADI's page
        vdev_a = next(v for v in st.vdcm.vdevs() if v.uuid != ub)
        assert a.portals[0].hpa == st.pf.portal_addr(vdev_a.adis[0])
        # MSI-X vectors beyond its queue count
        with pytest.raises(VfioError):
            await a.dev.set_irqs(
                u.VFIO_PCI_MSIX_IRQ_INDEX,
                u.VFIO_IRQ_SET_DATA_EVENTFD | u.VFIO_IRQ_SET_ACTION_TRIGGER,
                1,
                1,
                [lambda: None],
            )
        # a mapping cannot be used past its end
        with pytest.raises(VfioError):
            await a.portals[0].write32(4096, 1)

    run(body())


def test_guest_cannot_spoof_switch_identity() -> None:
    async def body() -> None:
        st = await build()
        a, ua = await pmd(st, network="red")
        _b, ub = await pmd(st, network="blue")
        vdev_a = st.vdcm.get(ua)
        group_before = vdev_a.group
        with pytest.raises(VfioError):
            await a.dev.region_write32(BAR0, VREG.GROUP, st.vdcm.get(ub).group)
        with pytest.raises(VfioError):
            await a.dev.region_write32(BAR0, qreg(0, QREG.SW_ADDR), st.vdcm.switch_addr(ub))
        assert [r.reason for r in vdev_a.rejects] == [Reject.SPOOF, Reject.SPOOF]
        assert vdev_a.group == group_before
        port = st.host.dev.adis[vdev_a.adis[0]].reg(0x34)
        assert port & 0xFFFF == group_before
        assert await a.dev.region_read32(BAR0, qreg(0, QREG.SW_ADDR)) == st.vdcm.switch_addr(ua)

    run(body())


def test_ring_registers_locked_while_enabled_and_validated_at_enable() -> None:
    async def body() -> None:
        st = await build()
        drv, uuid = await pmd(st)
        with pytest.raises(VfioError) as ei:
            await drv.dev.region_write64(BAR0, qreg(0, QREG.RING_BASE_LO), 0x1000)
        assert ei.value.errno == errno.EBUSY
        await drv.dev.region_write32(BAR0, qreg(0, QREG.CTRL), 2)  # queue reset
        for reg, value in ((QREG.RING_SIZE, 3), (QREG.RING_SIZE, 1 << 16), (QREG.RING_BASE_LO, 0x1008)):
            await drv.dev.region_write32(BAR0, qreg(0, QREG.CTRL), 2)
            await drv.dev.region_write64(BAR0, qreg(0, QREG.RING_BASE_LO), 0x7F00_0000_0000)
            await drv.dev.region_write32(BAR0, qreg(0, QREG.RING_SIZE), 64)
            await drv.dev.region_write64(BAR0, qreg(0, QREG.CPL_BASE_LO), 0x7F00_0001_0000)
            await drv.dev.region_write32(BAR0, qreg(0, reg), value)
            with pytest.raises(VfioError) as ei:
                await drv.dev.region_write32(BAR0, qreg(0, QREG.CTRL), 1)
            assert ei.value.errno == errno.EINVAL
        vdev = st.vdcm.get(uuid)
        assert not vdev.queue_enabled(0)
        assert all(r.reason == Reject.BAD_VALUE for r in vdev.rejects[-3:])
        for bad in ((0x10, b"\x00\x00"), (0x11, b"\x00" * 4)):
            with pytest.raises(VfioError):
                await drv.dev.pwrite(u.VFIO_PCI_INDEX_TO_OFFSET(BAR0) + bad[0], bad[1])

    run(body())


def test_doorbell_beyond_ring_errors_only_that_adi() -> None:
    async def body() -> None:
        st = await build()
        a, _ = await pmd(st)
        b, _ = await pmd(st)
        await a.portals[0].write32(0, 1000)  # ring has 64 entries
        assert await a.queues[0].status() == (AdiState.ERROR, ErrorCode.DOORBELL_RANGE)
        src, dst = await b.mem.alloc(4096), await b.mem.alloc(4096)
        await b.queues[0].copy(src, dst, 4096)
        assert (await b.queues[0].status())[0] is AdiState.ENABLED

    run(body())


def test_enable_without_attached_domain_is_refused() -> None:
    async def body() -> None:
        st = await build()
        vdev = await st.vdcm.create("siov-1q", "0b3c7e5e-5f8e-4b8e-9d6c-1c2f3a4b5c6d")
        await vdev.region_write(u.VFIO_PCI_CONFIG_REGION_INDEX, 4, (6).to_bytes(2, "little"))
        await vdev.region_write(BAR0, qreg(0, QREG.RING_BASE_LO), (0x10000).to_bytes(8, "little"))
        await vdev.region_write(BAR0, qreg(0, QREG.RING_SIZE), (64).to_bytes(4, "little"))
        await vdev.region_write(BAR0, qreg(0, QREG.CPL_BASE_LO), (0x20000).to_bytes(8, "little"))
        with pytest.raises(VfioError) as ei:
            await vdev.region_write(BAR0, qreg(0, QREG.CTRL), (1).to_bytes(4, "little"))
        assert ei.value.errno == errno.EIO
        assert vdev.rejects[-1].reason == Reject.NOT_ATTACHED

    run(body())


def test_msix_table_writes_are_emulated_not_forwarded() -> None:
    async def body() -> None:
        st = await build()
        drv, uuid = await pmd(st)
        await drv.dev.region_write32(BAR0, MSIX_TABLE_OFF, 0xDEAD_0000)
        assert await drv.dev.region_read32(BAR0, MSIX_TABLE_OFF) == 0xDEAD_0000
        # the physical IMS entry of its ADI is untouched by guest MSI-X writes
        adi = st.vdcm.get(uuid).adis[0]
        assert st.host.dev.adis[adi].reg(0x24) != 0xDEAD_0000

    run(body())


def test_bus_master_off_stops_queues_and_device_refusal_is_eio() -> None:
    async def body() -> None:
        st = await build()
        drv, uuid = await pmd(st)
        vdev = st.vdcm.get(uuid)
        cfg = u.VFIO_PCI_CONFIG_REGION_INDEX
        await drv.dev.pwrite(u.VFIO_PCI_INDEX_TO_OFFSET(cfg) + 4, (0x2).to_bytes(2, "little"))
        assert not vdev.queue_enabled(0)
        assert st.host.dev.adis[vdev.adis[0]].state == AdiState.DISABLED
        await drv.dev.pwrite(u.VFIO_PCI_INDEX_TO_OFFSET(cfg) + 4, (0x6).to_bytes(2, "little"))

        # the device itself refuses ENABLE (as the RTL does with NO_PASID or BAD_RING_ALIGN)
        async def refuse(_adi: int) -> None:
            raise PfError("ADI 0 did not enable: state ERROR, error NO_PASID")

        st.pf.adi.enable = refuse  # type: ignore[method-assign,assignment]
        with pytest.raises(VfioError) as ei:
            await drv.dev.region_write32(BAR0, qreg(0, QREG.CTRL), 1)
        assert ei.value.errno == errno.EIO and not vdev.queue_enabled(0)

    run(body())


def test_virtual_flr_resets_only_that_vdevs_adis() -> None:
    """A guest's Initiate FLR in its virtual DevCtl: its ADIs drained and reset, its virtual config
    back to power-on; another VDEV's queue keeps running."""

    async def body() -> None:
        st = await build()
        a, ua = await pmd(st, va_base=0x7000_0000_0000)
        b, ub = await pmd(st, va_base=0x6000_0000_0000)
        va, vb = st.vdcm.get(ua), st.vdcm.get(ub)
        cfg = u.VFIO_PCI_CONFIG_REGION_INDEX
        devcap = int.from_bytes(await va.region_read(cfg, PCIE_CAP_OFF + pci.PCI_EXP_DEVCAP, 4), "little")
        assert devcap & pci.PCI_EXP_DEVCAP_FLR
        assert (await a.queues[0].status())[0] is AdiState.ENABLED
        assert va.config.bus_master
        devctl = int.from_bytes(await va.region_read(cfg, PCIE_CAP_OFF + pci.PCI_EXP_DEVCTL, 2), "little")
        flr = (devctl | pci.PCI_EXP_DEVCTL_BCR_FLR).to_bytes(2, "little")
        await a.dev.pwrite(u.VFIO_PCI_INDEX_TO_OFFSET(cfg) + PCIE_CAP_OFF + pci.PCI_EXP_DEVCTL, flr)
        st_a = await st.pf.adi.status(va.adis[0])
        assert st_a.state is AdiState.DISABLED, "virtual FLR did not reset the VDEV's ADI"
        assert not va.queue_enabled(0) and not va.config.bus_master
        assert int.from_bytes(await va.region_read(cfg, PCIE_CAP_OFF + pci.PCI_EXP_DEVCTL, 2), "little") == 0x2810
        # the other VDEV is untouched
        assert (await st.pf.adi.status(vb.adis[0])).state is AdiState.ENABLED and vb.config.bus_master
        src, dst = await b.mem.alloc(4096), await b.mem.alloc(4096)
        b.mem.write(src, b"b" * 4096)
        await b.queues[0].copy(src, dst, 4096)
        assert b.mem.read(dst, 4096) == b"b" * 4096

    run(body())
