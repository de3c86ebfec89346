"""End to end on the fake endpoint: the three driver kinds run COPY/FILL/SEND through VDEVs."""

from __future__ import annotations

import uuid

import pytest

from siov_sim.sw.driver.abi import CplStatus, ErrorCode, Opcode
from siov_sim.sw.guest import (
    AvfGuestDriver,
    DpdkPmd,
    GuestVm,
    QueueError,
    SvaUser,
    UserProcess,
    vfio_close,
    vfio_open,
    vmm_attach,
)

from .stack import Stack, build, run

pytestmark = pytest.mark.sw


def uid() -> str:
    return str(uuid.uuid4())


async def pmd(
    st: Stack, type_id: str = "siov-1q", *, network: str | None = None, va_base: int = 0x7F00_0000_0000
) -> tuple[DpdkPmd, str]:
    vdev = await st.vdcm.create(type_id, uid(), network=network)
    proc = UserProcess(st.host, "dpdk", va_base=va_base)
    container, dev = await vfio_open(st.vfio, st.vdcm.group_id(vdev.uuid), vdev.uuid, proc)
    drv = DpdkPmd(proc, container, dev, st.host.runtime)
    await drv.start()
    return drv, vdev.uuid


def test_pmd_copy_and_fill_through_second_stage() -> None:
    async def body() -> None:
        st = await build()
        drv, _ = await pmd(st)
        q = drv.queues[0]
        src, dst = await drv.mem.alloc(8192), await drv.mem.alloc(8192)
        drv.mem.write(src, bytes(range(256)) * 32)
        rec = await q.copy(src, dst, 8192)
        assert rec.bytes_done == 8192
        assert drv.mem.read(dst, 8192) == bytes(range(256)) * 32
        await q.fill(dst, 0x1122334455667788, 64)
        assert drv.mem.read(dst, 16) == bytes.fromhex("88776655443322118877665544332211")
        assert q.stats.ops == 2 and q.stats.polls >= 0 and q.stats.irqs == 0

    run(body())


def test_avf_guest_copy_with_gpas_and_msix_interrupts() -> None:
    async def body() -> None:
        st = await build()
        vdev = await st.vdcm.create("siov-4q", uid())
        vm = GuestVm(st.host, "vm0", ram_size=8 << 20)
        container, dev = await vmm_attach(st.vfio, st.vdcm.group_id(vdev.uuid), vdev.uuid, vm)
        drv = AvfGuestDriver(vm, dev, st.host.runtime)
        await drv.start()
        assert len(drv.queues) == 4
        for i, q in enumerate(drv.queues):
            src, dst = await drv.mem.alloc(4096), await drv.mem.alloc(4096)
            assert src < vm.ram_size  # a GPA
            vm.write(src, bytes([i + 1]) * 4096)
            await q.copy(src, dst, 4096)
            assert vm.read(dst, 4096) == bytes([i + 1]) * 4096
            assert q.stats.irqs == 1
        assert vdev.irq_counts == [1, 1, 1, 1]
        await drv.stop()
        await vfio_close(st.vfio, st.vdcm.group_id(vdev.uuid), container, dev)
        await st.vdcm.remove(vdev.uuid)
        await vm.destroy()

    run(body())


def test_sva_user_copies_with_process_virtual_addresses() -> None:
    async def body() -> None:
        st = await build()
        vdev = await st.vdcm.create("siov-1q", uid())
        proc = UserProcess(st.host, "sva-app")
        fs = proc.enable_sva(st.iommu)
        dev = await st.vdcm.open_sva(vdev.uuid, fs)
        drv = SvaUser(proc, dev, st.host.runtime)
        await drv.start()
        q = drv.queues[0]
        src = proc.mmap_anon(3 * 4096)  # VAs, never registered with VFIO
        dst = proc.mmap_anon(3 * 4096)
        proc.write(src, b"sva!" * 3072)
        await q.copy(src, dst, 3 * 4096)
        assert proc.read(dst, 3 * 4096) == b"sva!" * 3072
        assert q.stats.irqs == 1
        await drv.stop()
        await st.vdcm.close_sva(vdev.uuid)
        await st.vdcm.remove(vdev.uuid)
        await proc.exit()

    run(body())


def test_send_between_vdevs_on_one_network() -> None:
    async def body() -> None:
        st = await build()
        a, ua = await pmd(st, network="net0")
        b, ub = await pmd(st, network="net0")
        src = await a.mem.alloc(4096)
        a.mem.write(src, b"hello from A")
        rec = await a.queues[0].send(src, 12, st.vdcm.switch_addr(ub))
        assert (rec.status, rec.opcode, rec.bytes_done, rec.error) == (CplStatus.SUCCESS, Opcode.SEND, 12, 0)
        got = await b.queues[0].receive()
        assert got is not None
        hdr, data = got
        assert data == b"hello from A" and hdr.length == 12
        assert hdr.src_addr == st.vdcm.switch_addr(ua) and hdr.seq == rec.tag  # slot header: seq = tag
        assert await b.queues[0].receive() is None

    run(body())


def test_send_to_another_group_is_denied_by_the_switch() -> None:
    async def body() -> None:
        st = await build()
        a, _ = await pmd(st, network="red")
        b, ub = await pmd(st, network="blue")
        src = await a.mem.alloc(4096)
        with pytest.raises(QueueError) as ei:
            await a.queues[0].send(src, 64, st.vdcm.switch_addr(ub))
        assert ei.value.error == ErrorCode.SEND_DENIED
        assert await b.queues[0].receive() is None

    run(body())


def test_guest_with_viommu_uses_nested_translation() -> None:
    async def body() -> None:
        st = await build()
        vdev = await st.vdcm.create("siov-1q", uid())
        vm = GuestVm(st.host, "vm-viommu", ram_size=8 << 20)
        gid = st.vdcm.group_id(vdev.uuid)
        container, dev = await vmm_attach(st.vfio, gid, vdev.uuid, vm, nesting=True)
        guest_table = container.alloc_nested_domain()  # the guest's vIOMMU page table
        await dev.attach_pt(guest_table)
        drv = AvfGuestDriver(vm, dev, st.host.runtime, viommu=guest_table)
        await drv.start()
        q = drv.queues[0]
        src, dst = await drv.mem.alloc(4096), await drv.mem.alloc(4096)
        assert src >= 0x40_0000_0000  # guest IOVAs, not GPAs
        drv.mem.write(src, b"nested" * 600)
        await q.copy(src, dst, 3600)
        assert drv.mem.read(dst, 3600) == b"nested" * 600
        # a GPA used directly (no guest mapping) faults under the guest's table
        gpa = vm.page_alloc.alloc(4096)
        with pytest.raises(QueueError):
            await q.copy(gpa, dst, 64)
        await drv.stop()
        await vfio_close(st.vfio, gid, container, dev)
        await st.vdcm.remove(vdev.uuid)

    run(body())


def test_batch_submission_one_doorbell_one_interrupt() -> None:
    async def body() -> None:
        st = await build()
        vdev = await st.vdcm.create("siov-1q", uid())
        vm = GuestVm(st.host, "vmb", ram_size=8 << 20)
        _container, dev = await vmm_attach(st.vfio, st.vdcm.group_id(vdev.uuid), vdev.uuid, vm)
        drv = AvfGuestDriver(vm, dev, st.host.runtime)
        await drv.start()
        q = drv.queues[0]
        src, dst = await drv.mem.alloc(16 * 4096), await drv.mem.alloc(16 * 4096)
        vm.write(src, bytes(range(256)) * 256)
        descs = [q.copy_desc(src + i * 4096, dst + i * 4096, 4096) for i in range(16)]
        recs = await q.run_batch(descs)
        assert [(r.status, r.opcode, r.bytes_done, r.tag) for r in recs] == [
            (CplStatus.SUCCESS, Opcode.COPY, 4096, d.tag) for d in descs
        ]
        assert len({d.tag for d in descs}) == 16
        assert vm.read(dst, 16 * 4096) == bytes(range(256)) * 256
        assert q.stats.irqs == 1 and q.stats.ops == 16 and q.stats.bytes == 16 * 4096
        with pytest.raises(ValueError):
            await q.run_batch([q.copy_desc(src, dst, 64)] * 64)

    run(body())


def test_wait_times_out_instead_of_hanging() -> None:
    async def body() -> None:
        st = await build()
        vdev = await st.vdcm.create("siov-1q", uid())
        proc = UserProcess(st.host, "p")
        dev = await st.vdcm.open_sva(vdev.uuid, proc.enable_sva(st.iommu))
        drv = SvaUser(proc, dev, st.host.runtime)
        await drv.start()
        q = drv.queues[0]
        q.timeout_ns = 50_000
        st.host.dev.stalled.add(vdev.adis[0])
        src = proc.mmap_anon(4096)
        with pytest.raises(QueueError, match="did not complete"):
            await q.copy(src, src + 2048, 64)

    run(body())
