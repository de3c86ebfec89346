"""VFIO migration v2 (the FSM, VFIO_DEVICE_FEATURE, the data fd) and VFIO_IOMMU_DIRTY_PAGES backed
by the IOMMU's second-stage dirty flags, on a fake host."""

from __future__ import annotations

import errno
import struct
from collections import deque

import pytest

from siov_sim.sw.vfio import uapi as u
from siov_sim.sw.vfio.device_ops import VfioError
from siov_sim.sw.vfio.migration import (
    ERROR,
    RESUMING,
    RUNNING,
    RUNNING_P2P,
    STOP,
    STOP_COPY,
    MigrationFile,
    mig_get_next_state,
    mig_path,
)
from siov_sim.sw.vmm import Host, MigratingGuest, migrate, start_guest

from .fakes import PF_BDF
from .stack import Stack, build, run

pytestmark = pytest.mark.sw

STATES = (STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P)
BOTH = u.VFIO_MIGRATION_STOP_COPY | u.VFIO_MIGRATION_P2P


def _shortest(arcs: set[tuple[int, int]], cur: int, new: int) -> list[int]:
    """Independent oracle: BFS over the header's arcs (all of them go both ways)."""
    prev: dict[int, int] = {cur: cur}
    todo = deque([cur])
    while todo:
        s = todo.popleft()
        for a, b in arcs:
            if a == s and b not in prev:
                prev[b] = s
                todo.append(b)
    path = [new]
    while path[-1] != cur:
        path.append(prev[path[-1]])
    return path[::-1][1:]


@pytest.mark.parametrize("flags", [BOTH, u.VFIO_MIGRATION_STOP_COPY], ids=["p2p", "no-p2p"])
def test_fsm_takes_the_shortest_path_over_the_header_arcs(flags: int) -> None:
    arcs = {(STOP, STOP_COPY), (STOP, RESUMING)}
    arcs |= {(RUNNING, RUNNING_P2P), (RUNNING_P2P, STOP)} if flags & u.VFIO_MIGRATION_P2P else {(RUNNING, STOP)}
    arcs |= {(b, a) for a, b in arcs}
    states = [s for s in STATES if s != RUNNING_P2P or flags & u.VFIO_MIGRATION_P2P]
    for cur in states:
        for new in states:
            assert mig_path(flags, cur, new) == _shortest(arcs, cur, new), (cur, new)
    if not flags & u.VFIO_MIGRATION_P2P:
        with pytest.raises(VfioError) as ei:
            mig_get_next_state(flags, RUNNING, RUNNING_P2P)
        assert ei.value.errno == errno.EINVAL


def test_fsm_refuses_error_as_a_target_and_as_a_start() -> None:
    for cur, new in ((RUNNING, ERROR), (ERROR, RUNNING), (RUNNING, 17)):
        with pytest.raises(VfioError) as ei:
            mig_get_next_state(BOTH, cur, new)
        assert ei.value.errno == errno.EINVAL


def test_data_fd_rules() -> None:
    f = MigrationFile(saving=True, data=b"abcdef")
    assert f.read(4) == b"abcd" and f.read(4) == b"ef" and f.read(4) == b""
    with pytest.raises(VfioError) as ei:
        f.write(b"x")
    assert ei.value.errno == errno.EINVAL
    f.disable()
    with pytest.raises(VfioError) as ei:
        f.read(1)
    assert ei.value.errno == errno.ENODEV
    r = MigrationFile(saving=False, limit=4)
    assert r.write(b"ab") == 2
    with pytest.raises(VfioError) as ei:
        r.write(b"abc")
    assert ei.value.errno == errno.ENOMEM
    with pytest.raises(VfioError):
        r.read(1)


async def _guest(num_adis: int = 8) -> tuple[Stack, Host, MigratingGuest]:
    s = await build(num_adis)
    h = Host("A", s.host, s.pf, s.vdcm)
    return s, h, await start_guest(h, "vm0", "siov-1q", ram_size=0x14_0000)


def _feature(flags: int, payload: bytes = b"", argsz: int | None = None) -> bytearray:
    size = u.VfioDeviceFeature.sizeof() + len(payload)
    return bytearray(u.VfioDeviceFeature(size if argsz is None else argsz, flags).pack() + payload)


def test_device_feature_ioctl() -> None:
    async def main() -> None:
        s, _h, g = await _guest()
        dev = g.at.dev
        get, set_, probe = u.VFIO_DEVICE_FEATURE_GET, u.VFIO_DEVICE_FEATURE_SET, u.VFIO_DEVICE_FEATURE_PROBE
        mig, state = u.VFIO_DEVICE_FEATURE_MIGRATION, u.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE
        buf = _feature(get | mig, bytes(8))
        assert await dev.ioctl(u.VFIO_DEVICE_FEATURE, buf) == 0
        assert u.VfioDeviceFeatureMigration.unpack(buf, 8).flags == BOTH
        assert await dev.ioctl(u.VFIO_DEVICE_FEATURE, _feature(probe | get | mig)) == 0
        assert await dev.ioctl(u.VFIO_DEVICE_FEATURE, _feature(probe | get | set_ | state)) == 0
        for bad in (
            _feature(probe | set_ | mig),  # MIGRATION is GET only
            _feature(get | set_ | state, bytes(8)),  # GET and SET without PROBE
            _feature(get | mig | 1 << 20, bytes(8)),  # unknown flag
            _feature(get | state, bytes(4)),  # payload too short
            _feature(get | 9, bytes(8)),  # a feature this device does not have
            _feature(get | mig, bytes(8), argsz=4),  # argsz below the header
        ):
            with pytest.raises(VfioError) as ei:
                await dev.ioctl(u.VFIO_DEVICE_FEATURE, bad)
            assert ei.value.errno == errno.EINVAL, bad
        # SET STOP_COPY from RUNNING: a combination transition; the data fd comes back
        buf = _feature(set_ | state, u.VfioDeviceFeatureMigState(STOP_COPY, 0).pack())
        await dev.ioctl(u.VFIO_DEVICE_FEATURE, buf)
        m = u.VfioDeviceFeatureMigState.unpack(buf, 8)
        assert m.data_fd >= 0
        data = s.vfio.files.get(m.data_fd).read_all()
        assert data[:8] == b"SIOVVDEV" and len(data) == g.at.vdev.state_bytes
        buf = _feature(get | state, bytes(8))
        await dev.ioctl(u.VFIO_DEVICE_FEATURE, buf)
        assert u.VfioDeviceFeatureMigState.unpack(buf, 8) == u.VfioDeviceFeatureMigState(STOP_COPY, -1)
        with pytest.raises(VfioError) as ei:  # ERROR cannot be asked for
            await dev.ioctl(u.VFIO_DEVICE_FEATURE, _feature(set_ | state, struct.pack("<Ii", ERROR, 0)))
        assert ei.value.errno == errno.EINVAL
        buf = _feature(set_ | state, u.VfioDeviceFeatureMigState(RUNNING, 0).pack())
        await dev.ioctl(u.VFIO_DEVICE_FEATURE, buf)
        assert u.VfioDeviceFeatureMigState.unpack(buf, 8).data_fd == -1
        with pytest.raises(VfioError) as ei:
            s.vfio.files.get(m.data_fd).read(1)  # leaving STOP_COPY ended the session
        assert ei.value.errno == errno.ENODEV
        s.vfio.files.close(m.data_fd)
        assert await g.driver.queues[0].copy(await g.driver.mem.alloc(64), await g.driver.mem.alloc(64), 64)

    run(main())


def test_guest_cannot_enable_a_queue_while_stopped() -> None:
    async def main() -> None:
        _s, _h, g = await _guest()
        await g.at.dev.set_mig_state(STOP)
        q = g.driver.queues[0]
        with pytest.raises(VfioError) as ei:
            await q.reset()  # CTRL writes are refused while the device is stopped
        assert ei.value.errno == errno.EBUSY
        await g.at.dev.set_mig_state(RUNNING)

    run(main())


# ---- dirty tracking -----------------------------------------------------------------------------
def _pasid_q0(s: Stack, pasid: int) -> int:
    iommu = s.iommu
    dev = iommu._devices[PF_BDF]  # reading the table the hardware walks
    ea = iommu._pasid_entry_addr(dev, pasid, create=False)
    assert ea is not None
    return s.host.mem.read_u64(ea)


async def _second_write_seen(skip_invalidation: bool) -> tuple[list[int], list[int], int]:
    """The device writes page P, the dirty log is read (and cleared), the device writes P again:
    is the second write reported? Returns (first report, second report, P)."""
    s, _h, g = await _guest()
    c = g.at.container
    q = g.driver.queues[0]
    src, dst = await g.driver.mem.alloc(4096), await g.driver.mem.alloc(4096)
    await q.copy(src, dst, 64)  # IOTLB now holds a writable translation of dst
    await c.dirty_pages_start()
    assert _pasid_q0(s, g.at.vdev.pasid) >> 9 & 1  # SSADE set in the PASID entry
    if skip_invalidation:  # the bug a dirty tracker must not have: D cleared, IOTLB left stale

        async def no_flush(*_a: object) -> None:
            return None

        s.iommu.flush_range = no_flush  # type: ignore[method-assign]
    await q.copy(src, dst, 64)  # a walk: D set, a writable translation cached
    first = await c.dirty_pages_get(0, g.vm.ram_size)
    await q.copy(src, dst, 64)
    second = await c.dirty_pages_get(0, g.vm.ram_size)
    return first, second, dst


def test_device_writes_are_logged_after_read_and_clear() -> None:
    first, second, p = run(_second_write_seen(False))
    assert p in first and p in second


def test_a_missed_dirty_page_is_seen_when_the_invalidation_is_skipped() -> None:
    """Proof that the test above can fail: without the IOTLB invalidation after clearing D, the
    second write hits the cached writable translation and sets no D flag."""
    first, second, p = run(_second_write_seen(True))
    assert p in first and p not in second


def test_migration_catches_a_missed_dirty_page() -> None:
    """The same bug in a live migration under traffic: the stale destination page is found at
    switch-over (``verify_ram``), the migration fails with EIO and the source runs on."""
    import asyncio
    from random import Random

    from siov_sim.sw.vmm import CheckedTraffic, MigrationError

    async def main() -> None:
        a, b = await build(), await build()
        b.host.runtime = a.host.runtime
        ha, hb = Host("A", a.host, a.pf, a.vdcm), Host("B", b.host, b.pf, b.vdcm)
        g = await start_guest(ha, "vm0", "siov-4q", ram_size=0x14_0000)
        t = CheckedTraffic(g, Random(3))
        await t.setup()
        tasks = [asyncio.ensure_future(t.run(q)) for q in range(4)]

        async def no_flush(*_a: object) -> None:
            return None

        real = a.iommu.flush_range
        a.iommu.flush_range = no_flush  # type: ignore[method-assign]
        with pytest.raises(MigrationError) as ei:
            for _ in range(5):
                await migrate(g, hb, threshold_pages=0)
        assert ei.value.errno == errno.EIO and "differs" in str(ei.value)
        a.iommu.flush_range = real  # type: ignore[method-assign]
        assert g.at.host is ha
        st = await migrate(g, hb)
        assert st.ram_checked and g.at.host is hb
        t.stop = True
        await asyncio.gather(*tasks)
        assert not t.stats.errors and t.stats.completed == t.stats.posted

    run(main())


def test_dirty_pages_ioctl() -> None:
    async def main() -> None:
        s, _h, g = await _guest()
        c = g.at.container
        hdr = u.VfioIommuType1DirtyBitmap
        get = u.VfioIommuType1DirtyBitmapGet
        bitmap_va = g.at.vmm.mmap_anon(4096)
        npages = g.vm.ram_size // 4096

        def get_buf(iova: int, size: int, bsize: int) -> bytearray:
            return bytearray(
                hdr(8 + get.sizeof(), u.VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP).pack()
                + get(iova, size, 4096, bsize, bitmap_va).pack()
            )

        with pytest.raises(VfioError) as ei:  # not started
            await c.ioctl(u.VFIO_IOMMU_DIRTY_PAGES, get_buf(0, g.vm.ram_size, npages // 8))
        assert ei.value.errno == errno.EINVAL
        await c.ioctl(u.VFIO_IOMMU_DIRTY_PAGES, bytearray(hdr(8, u.VFIO_IOMMU_DIRTY_PAGES_FLAG_START).pack()))
        q = g.driver.queues[0]
        src, dst = await g.driver.mem.alloc(4096), await g.driver.mem.alloc(4096)
        await q.copy(src, dst, 64)
        for bad in (
            get_buf(0, g.vm.ram_size, 8),  # bitmap too small
            get_buf(0, 0x1000, 8),  # splits the RAM mapping
            bytearray(hdr(8, 3).pack()),  # two flags
        ):
            with pytest.raises(VfioError) as ei:
                await c.ioctl(u.VFIO_IOMMU_DIRTY_PAGES, bad)
            assert ei.value.errno == errno.EINVAL
        await c.ioctl(u.VFIO_IOMMU_DIRTY_PAGES, get_buf(0, g.vm.ram_size, (npages + 63) // 64 * 8))
        bits = int.from_bytes(g.at.vmm.read(bitmap_va, (npages + 63) // 64 * 8), "little")
        dirty = {i * 4096 for i in range(npages) if bits >> i & 1}
        assert dst in dirty and q.cpl in dirty and src not in dirty  # DMA writes only
        pt = g.at.container.domain
        assert pt is not None and pt.pgtable is not None
        assert not pt.pgtable.read_and_clear_dirty(0, g.vm.ram_size)  # the report cleared every D flag
        await c.ioctl(u.VFIO_IOMMU_DIRTY_PAGES, bytearray(hdr(8, u.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP).pack()))
        assert not _pasid_q0(s, g.at.vdev.pasid) >> 9 & 1

    run(main())
