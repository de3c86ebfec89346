"""VFIO/VDCM ownership, teardown and failure paths (issue 10 §2): one regression test per bug.

Each test reproduces what a user could do to the model before the fix (a second group open, a
device fd closed with interrupts live, a failing SET_IOMMU, SVA and VFIO on one VDEV, ...) and
checks that Linux's answer comes back and nothing is left over.
"""

from __future__ import annotations

import errno
import uuid
from typing import Any

import pytest

from siov_sim.model.iommu import Fault
from siov_sim.sw.driver import PfError
from siov_sim.sw.driver.abi import AdiState
from siov_sim.sw.guest import AvfGuestDriver, DpdkPmd, GuestVm, UserProcess, vfio_close, vfio_open, vmm_attach
from siov_sim.sw.iommu import IommuError
from siov_sim.sw.vfio import VfioError
from siov_sim.sw.vfio import uapi as u

from .fakes import PF_BDF
from .stack import Stack, build, run

pytestmark = pytest.mark.sw
RW = u.VFIO_DMA_MAP_FLAG_READ | u.VFIO_DMA_MAP_FLAG_WRITE
MSIX = u.VFIO_PCI_MSIX_IRQ_INDEX
TRIG_FD = u.VFIO_IRQ_SET_DATA_EVENTFD | u.VFIO_IRQ_SET_ACTION_TRIGGER
TRIG_NONE = u.VFIO_IRQ_SET_DATA_NONE | u.VFIO_IRQ_SET_ACTION_TRIGGER


def uid() -> str:
    return str(uuid.uuid4())


def fail_nth_bind(st: Stack, n: int, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the ``n``-th (1-based) ``bind_pasid`` from now on fail as the IOMMU driver would."""
    calls: list[int] = []
    real = st.iommu.bind_pasid

    async def bind(sid: int, pasid: int, domain: Any, **kw: Any) -> None:
        calls.append(pasid)
        if len(calls) == n:
            raise IommuError(f"injected: PASID {pasid} cannot be bound", errno.ENOSPC)
        await real(sid, pasid, domain, **kw)

    monkeypatch.setattr(st.iommu, "bind_pasid", bind)
    return calls


def test_group_open_is_exclusive_and_device_fds_hold_the_group() -> None:
    async def body() -> None:
        st = await build()
        vdev = await st.vdcm.create("siov-1q", uid())
        gid = st.vdcm.group_id(vdev.uuid)
        g = st.vfio.open_group(gid)
        with pytest.raises(VfioError) as ei:  # a second opener gets nothing
            st.vfio.open_group(gid)
        assert ei.value.errno == errno.EBUSY
        c = st.vfio.open_container(UserProcess(st.host, "a"))
        await g.set_container(c)
        await c.set_iommu(u.VFIO_TYPE1v2_IOMMU)
        dev = g.get_device_fd(vdev.uuid)
        await g.close()
        with pytest.raises(VfioError) as ei:  # the device fd still holds the group
            st.vfio.open_group(gid)
        assert ei.value.errno == errno.EBUSY
        await dev.close()  # last reference: the group leaves the container
        assert not vdev.attached and c.domain is None
        g2 = st.vfio.open_group(gid)
        assert not g2.get_status() & u.VFIO_GROUP_FLAGS_CONTAINER_SET
        await g2.close()

    run(body())


def test_device_close_disables_interrupts_resets_and_revokes_mappings() -> None:
    async def body() -> None:
        st = await build()
        vdev = await st.vdcm.create("siov-1q", uid())
        gid = st.vdcm.group_id(vdev.uuid)
        base_irqs = st.host.irq.allocated()
        a = UserProcess(st.host, "first")
        ca, da = await vfio_open(st.vfio, gid, vdev.uuid, a)
        drv = DpdkPmd(a, ca, da, st.host.runtime, use_irq=True)
        await drv.start()  # interrupts on, queue enabled, portal page mapped
        portal = drv.portals[0]
        first_user_irqs: list[int] = []
        drv.queues[0].on_irq = lambda: first_user_irqs.append(1)  # type: ignore[method-assign]
        assert st.host.irq.allocated() == base_irqs + 1
        await vfio_close(st.vfio, gid, ca, da)  # the user goes away without tidying up
        assert st.host.irq.allocated() == base_irqs  # host vector freed, IMS entry masked
        assert st.host.dev.adis[vdev.adis[0]].state == AdiState.DISABLED  # reset
        with pytest.raises(VfioError) as ei:  # the old portal mapping is gone (SIGBUS)
            await portal.write32(0, 1)
        assert ei.value.errno == errno.EFAULT
        # the next user's device interrupts never reach the previous user's callback
        b = UserProcess(st.host, "second")
        _cb, db = await vfio_open(st.vfio, gid, vdev.uuid, b)
        second_user_irqs: list[int] = []
        await db.set_irqs(MSIX, TRIG_FD, 0, 1, [lambda: second_user_irqs.append(1)])
        vdev._on_host_irq(0)
        assert first_user_irqs == [] and second_user_irqs == [1]

    run(body())


def test_failed_set_iommu_unwinds_completely(monkeypatch: pytest.MonkeyPatch) -> None:
    async def body() -> None:
        st = await build()
        v1, v2 = await st.vdcm.create("siov-1q", uid()), await st.vdcm.create("siov-1q", uid())
        g1, g2 = st.vfio.open_group(st.vdcm.group_id(v1.uuid)), st.vfio.open_group(st.vdcm.group_id(v2.uuid))
        c = st.vfio.open_container(UserProcess(st.host, "p"))
        await g1.set_container(c)
        await g2.set_container(c)
        dids = list(st.iommu._free_dids), st.iommu._next_did
        fail_nth_bind(st, 2, monkeypatch)  # v1 attaches, v2 does not
        with pytest.raises(VfioError) as ei:  # not a raw IommuError
            await c.set_iommu(u.VFIO_TYPE1v2_IOMMU)
        assert ei.value.errno == errno.ENOSPC
        assert c.iommu_type is None and c.domain is None
        assert not v1.attached and not v2.attached and set(st.iommu.bound(PF_BDF)) == {0}  # only the PF's RID_PASID
        assert (sorted(st.iommu._free_dids), st.iommu._next_did) == (sorted(dids[0] + [dids[1]]), dids[1] + 1)
        with pytest.raises(VfioError) as ei:  # no device fd out of a container without an IOMMU model
            g1.get_device_fd(v1.uuid)
        assert ei.value.errno == errno.EINVAL
        monkeypatch.undo()
        await c.set_iommu(u.VFIO_TYPE1v2_IOMMU)  # and it can be set once the cause is gone
        assert v1.attached and v2.attached

    run(body())


def test_failed_group_attach_does_not_join_the_container(monkeypatch: pytest.MonkeyPatch) -> None:
    async def body() -> None:
        st = await build()
        v1, v2 = await st.vdcm.create("siov-1q", uid()), await st.vdcm.create("siov-1q", uid())
        proc = UserProcess(st.host, "p")
        c, _d1 = await vfio_open(st.vfio, st.vdcm.group_id(v1.uuid), v1.uuid, proc)
        g2 = st.vfio.open_group(st.vdcm.group_id(v2.uuid))
        fail_nth_bind(st, 1, monkeypatch)
        with pytest.raises(VfioError):
            await g2.set_container(c)
        assert not g2.get_status() & u.VFIO_GROUP_FLAGS_CONTAINER_SET
        assert not v2.attached and len(c._groups) == 1
        monkeypatch.undo()
        await g2.set_container(c)  # a later, successful attach
        assert v2.attached and v2.domain is c.domain

    run(body())


def test_sva_and_vfio_use_of_one_vdev_exclude_each_other() -> None:
    async def body() -> None:
        st = await build()
        vdev = await st.vdcm.create("siov-1q", uid())
        gid = st.vdcm.group_id(vdev.uuid)
        sva_proc = UserProcess(st.host, "sva")
        sva_dom = sva_proc.enable_sva(st.iommu)
        await st.vdcm.open_sva(vdev.uuid, sva_dom)
        with pytest.raises(VfioError) as ei:  # VFIO cannot take a VDEV that SVA uses
            await vfio_open(st.vfio, gid, vdev.uuid, UserProcess(st.host, "intruder"))
        assert ei.value.errno == errno.EBUSY
        assert vdev.domain is sva_dom  # the SVA owner's binding is intact
        await st.vdcm.close_sva(vdev.uuid)
        # ... and the other way round, already while the group is merely open
        g = st.vfio.open_group(gid)
        with pytest.raises(VfioError) as ei:
            await st.vdcm.open_sva(vdev.uuid, sva_dom)
        assert ei.value.errno == errno.EBUSY and not vdev.attached
        await g.close()
        await st.vdcm.open_sva(vdev.uuid, sva_dom)
        await st.vdcm.remove(vdev.uuid)  # remove closes the SVA use and frees everything
        assert st.vdcm.usage().vdevs == 0 and set(st.iommu.bound(PF_BDF)) == {0}  # only the PF's RID_PASID

    run(body())


def test_map_dma_failing_in_the_iommu_leaves_nothing_behind() -> None:
    async def body() -> None:
        st = await build()
        vdev = await st.vdcm.create("siov-1q", uid())
        vm = GuestVm(st.host, "vm", ram_size=2 << 20)
        c, _dev = await vmm_attach(st.vfio, st.vdcm.group_id(vdev.uuid), vdev.uuid, vm, nesting=True)
        nested = c.alloc_nested_domain()
        # The nested domain's first-stage tables are mapped into the container's second stage at
        # a GPA the user did not map; a MAP_DMA over that page fails inside the IOMMU driver.
        assert nested.pgtable is not None and c.domain is not None
        table_gpa = nested.pgtable.root
        proc = vm.vmm
        va = proc.mmap_anon(3 * 4096)
        before = (proc.pinned_pages(), proc.locked_vm, c.mappings())
        with pytest.raises(VfioError) as ei:
            await c.map_dma(va, table_gpa - 4096, 3 * 4096, RW)
        assert ei.value.errno == errno.EEXIST
        assert (proc.pinned_pages(), proc.locked_vm, c.mappings()) == before
        assert c.domain.lookup(table_gpa - 4096) is None and c.domain.lookup(table_gpa + 4096) is None
        assert c.domain.lookup(table_gpa) is not None  # the table's own mapping is untouched
        buf = bytearray(u.VfioIommuType1DmaMap(32, RW, va, table_gpa, 4096).pack())
        with pytest.raises(VfioError):  # the ioctl path too
            await c.ioctl(u.VFIO_IOMMU_MAP_DMA, buf)

    run(body())


def test_map_dma_rejects_negative_iova_and_accepts_write_only() -> None:
    async def body() -> None:
        st = await build()
        vdev = await st.vdcm.create("siov-1q", uid())
        proc = UserProcess(st.host, "p")
        c, _dev = await vfio_open(st.vfio, st.vdcm.group_id(vdev.uuid), vdev.uuid, proc)
        va = proc.mmap_anon(4096)
        with pytest.raises(VfioError) as ei:  # would alias to the top of the IOVA space
            await c.map_dma(va, -4096, 4096, RW)
        assert ei.value.errno == errno.EINVAL
        assert c.domain is not None and c.domain.lookup((1 << 48) - 4096) is None
        assert c.mappings() == []
        await c.map_dma(va, 0x20_0000, 4096, u.VFIO_DMA_MAP_FLAG_WRITE)  # type1 allows write-only
        hpa = proc.vaddr_to_hpa(va)
        w = st.host.iommu.translate(PF_BDF, vdev.pasid, 0x20_0010, True)
        assert not isinstance(w, Fault) and w.hpa == (hpa or 0) + 0x10
        assert isinstance(st.host.iommu.translate(PF_BDF, vdev.pasid, 0x20_0020, False), Fault)

    run(body())


def test_type1_v1_container_keeps_v1_unmap_rules() -> None:
    async def body() -> None:
        st = await build()
        vdev = await st.vdcm.create("siov-1q", uid())
        proc = UserProcess(st.host, "v1")
        c, _dev = await vfio_open(st.vfio, st.vdcm.group_id(vdev.uuid), vdev.uuid, proc,
                                  iommu_type=u.VFIO_TYPE1_IOMMU)
        va = proc.mmap_anon(4 * 4096)
        await c.map_dma(va, 0x10000, 2 * 4096, RW)
        await c.map_dma(va + 2 * 4096, 0x20000, 2 * 4096, RW)
        # v1: a range starting inside a mapping leaves it alone and succeeds with 0 bytes
        assert await c.unmap_dma(0x11000, 4096) == 0
        assert len(c.mappings()) == 2
        # v1: a range covering a mapping's first IOVA takes the whole mapping, past the range
        assert await c.unmap_dma(0x10000, 4096) == 2 * 4096
        assert [m.iova for m in c.mappings()] == [0x20000]
        # v2 on the same request is EINVAL (checked in test_vfio.py); v1 ALL works the same
        assert await c.unmap_dma(0, 0, u.VFIO_DMA_UNMAP_FLAG_ALL) == 2 * 4096

    run(body())


def test_locked_memory_limit_gives_enomem() -> None:
    async def body() -> None:
        st = await build()
        vdev = await st.vdcm.create("siov-1q", uid())
        proc = UserProcess(st.host, "limited", rlimit_memlock=2 * 4096)
        c, _dev = await vfio_open(st.vfio, st.vdcm.group_id(vdev.uuid), vdev.uuid, proc)
        va = proc.mmap_anon(3 * 4096)
        await c.map_dma(va, 0x10000, 2 * 4096, RW)
        assert proc.locked_vm == 2 * 4096
        with pytest.raises(VfioError) as ei:
            await c.map_dma(va + 2 * 4096, 0x30000, 4096, RW)
        assert ei.value.errno == errno.ENOMEM
        assert proc.locked_vm == 2 * 4096 and proc.pinned_pages() == 2 and len(c.mappings()) == 1
        await c.unmap_dma(0x10000, 2 * 4096)
        assert proc.locked_vm == 0
        await c.map_dma(va + 2 * 4096, 0x30000, 4096, RW)

    run(body())


def test_create_failing_part_way_leaves_no_forwarding_entry_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    async def body() -> None:
        st = await build()
        real = st.pf.adi.set_switch_port
        calls: list[int] = []

        async def port(adi: int, *a: Any, **kw: Any) -> None:
            calls.append(adi)
            if len(calls) == 3:
                raise PfError(f"injected: ADI {adi} port write failed")
            await real(adi, *a, **kw)

        monkeypatch.setattr(st.pf.adi, "set_switch_port", port)
        with pytest.raises(PfError):
            await st.vdcm.create("siov-4q", uid())
        assert all(not valid for valid, _adi in st.host.dev.model.fwd)
        use = st.vdcm.usage()
        assert (use.vdevs, use.adis_in_use, use.pasids_in_use, use.switch_addrs_in_use, use.groups_in_use) == (
            0, 0, 0, 0, 0)

    run(body())


def test_attach_pt_does_not_stop_running_queues() -> None:
    async def body() -> None:
        st = await build()
        vdev = await st.vdcm.create("siov-1q", uid())
        vm = GuestVm(st.host, "vm", ram_size=4 << 20)
        c, dev = await vmm_attach(st.vfio, st.vdcm.group_id(vdev.uuid), vdev.uuid, vm, nesting=True)
        drv = AvfGuestDriver(vm, dev, st.host.runtime)  # GPAs through the second stage
        await drv.start()
        q = drv.queues[0]
        src, dst = await drv.mem.alloc(4096), await drv.mem.alloc(4096)
        await q.copy(src, dst, 64)
        guest_table = c.alloc_nested_domain()  # the guest turns its vIOMMU on: identity map of RAM
        guest_table.map(0, 0, vm.ram_size, write=True, user=True)
        await dev.attach_pt(guest_table)
        assert vdev.queue_enabled(0) and st.host.dev.adis[vdev.adis[0]].state == AdiState.ENABLED
        vm.write(src, b"still running")
        await q.copy(src, dst, 64)  # the same queue, now through the nested table
        assert vm.read(dst, 13) == b"still running"
        assert vdev.domain is guest_table

    run(body())


def test_set_irqs_start_past_the_last_vector_is_einval() -> None:
    async def body() -> None:
        st = await build()
        vdev = await st.vdcm.create("siov-4q", uid())
        _c, dev = await vfio_open(st.vfio, st.vdcm.group_id(vdev.uuid), vdev.uuid, UserProcess(st.host, "p"))
        hits: list[int] = []
        await dev.set_irqs(MSIX, TRIG_FD, 0, 4, [lambda i=i: hits.append(i) for i in range(4)])
        with pytest.raises(VfioError) as ei:
            await dev.set_irqs(MSIX, TRIG_NONE, 4, 0)
        assert ei.value.errno == errno.EINVAL
        vdev._on_host_irq(3)
        assert hits == [3]  # nothing was disabled
        await dev.set_irqs(MSIX, TRIG_NONE, 1, 0)  # Linux: DATA_NONE, count 0 disables the index
        vdev._on_host_irq(3)
        assert hits == [3]

    run(body())
