"""The guest's own IOMMU (sw/guest/viommu.py): guest-built first stage nested on the host's second.

The guest's tables live in guest RAM (their entries hold GPAs), the VMM installs the root GPA as
the first stage of a nested PASID entry over the container's second stage and forwards the
guest's invalidation descriptors; a guest that forgets one keeps hitting its old mapping in the
IOTLB, as on real hardware.
"""

from __future__ import annotations

import uuid

import pytest

from siov_sim.model.iommu import Fault, Pgtt
from siov_sim.sw.driver.abi import AdiState
from siov_sim.sw.guest import AvfGuestDriver, GuestVm, QueueError, vfio_close, vmm_attach_viommu

from .fakes import PF_BDF
from .stack import build, run

pytestmark = pytest.mark.sw


def test_guest_tables_in_guest_ram_are_the_nested_first_stage() -> None:
    async def body() -> None:
        st = await build()
        vdev = await st.vdcm.create("siov-1q", str(uuid.uuid4()))
        vm = GuestVm(st.host, "vm", ram_size=4 << 20)
        gid = st.vdcm.group_id(vdev.uuid)
        container, dev, giommu = await vmm_attach_viommu(st.vfio, gid, vdev.uuid, vm)
        table = giommu.alloc_table()
        assert table.root < vm.ram_size  # the root table is a guest page (a GPA)
        await giommu.attach(table)
        assert vdev.domain is giommu.vmm.nested and vdev.domain is not container.domain
        drv = AvfGuestDriver(vm, dev, st.host.runtime, viommu=table)
        await drv.start()
        q = drv.queues[0]
        src, dst = await drv.mem.alloc(4096), await drv.mem.alloc(4096)
        assert src >= 0x40_0000_0000  # guest IOVAs
        drv.mem.write(src, b"guest-built tables" * 100)
        await q.copy(src, dst, 1800)
        assert drv.mem.read(dst, 1800) == b"guest-built tables" * 100
        t = st.host.iommu.translate(PF_BDF, vdev.pasid, src)
        assert not isinstance(t, Fault) and t.pgtt == Pgtt.NESTED
        # a GPA the guest did not map in its table is not reachable by the device
        with pytest.raises(QueueError):
            await q.copy(vm.page_alloc.alloc(4096), dst, 64)
        await q.reset()
        # unmap with invalidation (forwarded as IOMMU_HWPT_INVALIDATE), then the GIOVA faults
        before = giommu.stats.invalidations_forwarded
        await drv.mem.free(src)
        assert giommu.stats.invalidations_forwarded == before + 1
        assert isinstance(st.host.iommu.translate(PF_BDF, vdev.pasid, src), Fault)
        await drv.stop()
        await vfio_close(st.vfio, gid, container, dev)
        await st.vdcm.remove(vdev.uuid)
        await vm.destroy()
        assert st.iommu.bound(PF_BDF).keys() == {0}

    run(body())


def test_forgotten_guest_invalidation_leaves_a_stale_mapping_until_invalidated() -> None:
    async def body() -> None:
        st = await build()
        vdev = await st.vdcm.create("siov-1q", str(uuid.uuid4()))
        vm = GuestVm(st.host, "vm", ram_size=4 << 20)
        _c, dev, giommu = await vmm_attach_viommu(st.vfio, st.vdcm.group_id(vdev.uuid), vdev.uuid, vm)
        table = giommu.alloc_table()
        await giommu.attach(table)
        drv = AvfGuestDriver(vm, dev, st.host.runtime, viommu=table)
        await drv.start()
        q = drv.queues[0]
        dst = await drv.mem.alloc(4096)
        giova = 0x50_0000_0000
        old_gpa, new_gpa = vm.page_alloc.alloc(4096), vm.page_alloc.alloc(4096)
        vm.write(old_gpa, b"OLD!" * 1024)
        vm.write(new_gpa, b"NEW!" * 1024)
        table.map(giova, old_gpa, 4096)
        await q.copy(giova, dst, 64)  # the IOTLB now holds GIOVA -> old page
        assert drv.mem.read(dst, 4) == b"OLD!"
        await table.unmap(giova, 4096, invalidate=False)  # the guest driver forgets to invalidate
        table.map(giova, new_gpa, 4096)
        await q.copy(giova, dst, 64)
        assert drv.mem.read(dst, 4) == b"OLD!"  # stale: the device still reaches the old page
        assert giommu.stats.invalidations_skipped == 1
        await giommu.invalidate(giova, 4096)  # the invalidation, late
        await q.copy(giova, dst, 64)
        assert drv.mem.read(dst, 4) == b"NEW!"
        assert st.host.dev.adis[vdev.adis[0]].state == AdiState.ENABLED

    run(body())


def test_guest_turning_its_viommu_off_and_on_replaces_the_table_without_stopping_queues() -> None:
    async def body() -> None:
        st = await build()
        vdev = await st.vdcm.create("siov-1q", str(uuid.uuid4()))
        vm = GuestVm(st.host, "vm", ram_size=4 << 20)
        container, _dev, giommu = await vmm_attach_viommu(st.vfio, st.vdcm.group_id(vdev.uuid), vdev.uuid, vm)
        t1 = giommu.alloc_table()
        t1.map(0x1000_0000, 0x20_0000, 0x10_0000)
        await giommu.attach(t1)
        first = giommu.vmm.nested
        t2 = giommu.alloc_table()
        t2.map(0x1000_0000, 0x30_0000, 0x10_0000)
        await giommu.attach(t2)  # a new nested HWPT, the old one destroyed
        assert giommu.vmm.nested is not first and len(container._nested) == 1
        hpa = vm.gpa_to_hpa(0x30_0000)
        t = st.host.iommu.translate(PF_BDF, vdev.pasid, 0x1000_0000)
        assert not isinstance(t, Fault) and t.hpa == hpa
        await giommu.detach()  # translation off: IOVA = GPA through the second stage again
        assert vdev.domain is container.domain and container._nested == []

    run(body())
