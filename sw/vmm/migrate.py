"""The VMM's live migration of a VM with a SIOV VDEV (QEMU's migration + ``hw/vfio/migration.c``).

::

   source host                                             destination host
   -----------                                             ----------------
   guest runs traffic on VDEV (PASID s)                    mdev create <type> -> VDEV (PASID d),
                                                           VMM opens it (container, MAP_DMA RAM)
   DIRTY_PAGES START + KVM dirty log   ---- round 0: all RAM pages ---->
   while dirty > threshold:            ---- round k: pages dirtied by the CPU (dirty log) and by
                                             the device (IOMMU D flags, VFIO_IOMMU_DIRTY_PAGES) -->
   == downtime starts ==
   vCPUs paused
   SET STOP_COPY (RUNNING -> RUNNING_P2P -> STOP: every ADI quiesced at a descriptor boundary
                  -> STOP_COPY: data fd)
   read() the device state              ---- last dirty pages + device-state stream ---->
                                                           SET_IRQS (guest's vectors), SET RESUMING,
                                                           write() the stream, SET RUNNING (STOP:
                                                           checked + loaded; RUNNING_P2P: ADIs
                                                           enabled, resume at their head)
                                                           guest RAM, portal EPT entries and BAR0
                                                           re-pointed; vCPUs resumed
   == downtime ends ==
   close device fd (irqs off, reset), container (unbind PASID s: drain -> invalidate), VMM exits,
   mdev remove (ADIs and PASID s freed) -- only now, after the destination runs.

Failure before switch-over leaves the source running: the destination's VDEV is removed, the
source goes back to RUNNING (from STOP_COPY: STOP -> RUNNING_P2P re-enables the quiesced ADIs,
which resume at their head with nothing lost) and the guest is resumed.
"""

from __future__ import annotations

import errno
import logging
import uuid as uuidlib
from dataclasses import dataclass, field
from random import Random

from siov_sim.model.mem import PAGE_SIZE
from siov_sim.sw.bus import HostBus
from siov_sim.sw.driver.pf import PfDriver
from siov_sim.sw.guest.drivers import AvfGuestDriver, vfio_open
from siov_sim.sw.guest.memory import UserProcess
from siov_sim.sw.vdcm.vdcm import Vdcm
from siov_sim.sw.vdcm.vdev import Vdev
from siov_sim.sw.vfio import uapi as u
from siov_sim.sw.vfio.device_ops import IrqCallback, VfioError
from siov_sim.sw.vfio.migration import RESUMING, RUNNING, STOP_COPY
from siov_sim.sw.vfio.vfio import VfioContainer, VfioDevice
from siov_sim.sw.vmm.guest import EptMapping, GuestRuntime, MigratableVm

log = logging.getLogger(__name__)

#: The migration link between the hosts' VMMs is modelled by its bandwidth (``link_gbps``,
#: default 10 Gb/s: one 4 KiB page costs 3.3 us of simulated time).


class MigrationError(Exception):
    """A migration failed; ``errno`` says why (ENOSPC: no free ADIs at the destination, EINVAL:
    the destination rejected the device state, ...). The source runs on."""

    def __init__(self, err: int, msg: str) -> None:
        super().__init__(f"[{errno.errorcode.get(err, err)}] {msg}")
        self.errno = err


@dataclass
class Host:
    """One host's software stack (its own IOMMU, PF driver, VFIO and VDCM)."""

    name: str
    bus: HostBus
    pf: PfDriver
    vdcm: Vdcm


@dataclass
class Placement:
    """Where the VM runs now: the host, its VDEV and the VMM's handles on it."""

    host: Host
    uuid: str
    container: VfioContainer
    dev: VfioDevice
    vmm: UserProcess
    ram_va: int

    @property
    def vdev(self) -> Vdev:
        return self.host.vdcm.get(self.uuid)


@dataclass
class MigrationStats:
    src: str
    dst: str
    pages_per_round: list[int] = field(default_factory=list)
    state_bytes: int = 0
    downtime_ns: float = 0.0
    total_ns: float = 0.0
    src_pasid: int = 0
    dst_pasid: int = 0
    src_adis: list[int] = field(default_factory=list)
    dst_adis: list[int] = field(default_factory=list)
    ram_checked: bool = False  # every page of guest RAM compared between the hosts at switch-over
    # downtime = stop_ns (vCPUs paused, source ADIs quiesced, state read) + copy_ns (last dirty pages
    # and the state over the link) + resume_ns (destination: vectors, RESUMING, load, RUNNING)
    stop_ns: float = 0.0
    copy_ns: float = 0.0
    resume_ns: float = 0.0

    @property
    def rounds(self) -> int:
        return len(self.pages_per_round)


@dataclass
class MigratingGuest:
    """A VM with an AVF-like driver on a VDEV, and where it runs (:class:`Placement`)."""

    vm: MigratableVm
    driver: AvfGuestDriver
    at: Placement
    type_id: str
    callbacks: list[IrqCallback | None]
    history: list[MigrationStats] = field(default_factory=list)


async def open_vdev(host: Host, vm: MigratableVm, uuid: str, vmm: UserProcess, ram_va: int) -> Placement:
    """The VMM (``vmm``, guest RAM mapped at ``ram_va``) opens ``uuid`` on ``host``: container,
    group, type1v2, device fd, guest RAM MAP_DMA'd at IOVA = GPA (QEMU's memory listener)."""
    vfio = host.vdcm.vfio
    assert vfio is not None
    container, dev = await vfio_open(vfio, host.vdcm.group_id(uuid), uuid, vmm)
    try:
        flags = u.VFIO_DMA_MAP_FLAG_READ | u.VFIO_DMA_MAP_FLAG_WRITE
        await container.map_dma(ram_va, 0, vm.ram_size, flags)
    except BaseException:
        await dev.close()
        await container.close()
        raise
    return Placement(host, uuid, container, dev, vmm, ram_va)


async def start_guest(host: Host, name: str, type_id: str, *, ram_size: int = 2 << 20,
                      ring_size: int = 64, uuid: str | None = None) -> MigratingGuest:  # fmt: skip
    """Create a VDEV on ``host``, a VM with an AVF-like driver on it (interrupts on)."""
    uid = uuid or str(uuidlib.uuid4())
    await host.vdcm.create(type_id, uid)
    vm = MigratableVm(host.bus, name, ram_size)
    vm.host_name = host.name
    at = await open_vdev(host, vm, uid, vm.vmm, vm.ram_va)
    drv = AvfGuestDriver(vm, at.dev, GuestRuntime(vm), use_irq=True, ring_size=ring_size, rx_slots=0)
    await drv.start()
    for i, q in enumerate(drv.queues):  # the guest's EPT entries onto the VMM's portal mmaps
        ept = EptMapping(vm, drv.portals[i])
        q.portal = drv.portals[i] = ept
    callbacks: list[IrqCallback | None] = list(drv.irq_callbacks())
    return MigratingGuest(vm, drv, at, type_id, callbacks)


COPY_CHUNK = 16  # pages sent per link burst; the guest runs between bursts


async def _copy_pages(src: Placement, dst: Placement, gpas: set[int] | range, page_ns: float) -> int:
    """Send pages over the modelled link: each burst takes link time, during which the guest
    (if not paused) runs on and may dirty pages again."""
    pages = sorted(gpas)
    rt = src.host.bus.runtime
    for i in range(0, len(pages), COPY_CHUNK):
        burst = pages[i : i + COPY_CHUNK]
        for gpa in burst:
            dst.vmm.write(dst.ram_va + gpa, src.vmm.read(src.ram_va + gpa, PAGE_SIZE))
        await rt.sleep(round(len(burst) * page_ns))  # whole ns (simulator precision)
    return len(pages)


async def migrate(
    g: MigratingGuest,
    dst_host: Host,
    *,
    max_rounds: int = 8,
    threshold_pages: int = 16,
    abort_at: str | None = None,
    corrupt_state: bool = False,
    link_gbps: float = 10.0,
    verify_ram: bool = True,
) -> MigrationStats:
    """Live-migrate ``g`` to ``dst_host`` (see the module docstring); returns the statistics.

    ``abort_at`` ("precopy" / "stopcopy") cancels the migration at that point, and
    ``corrupt_state`` flips one byte of the device state in transit (tests): both end in
    :class:`MigrationError` with the guest still running on the source, nothing lost.
    ``verify_ram`` (a simulation-only check) compares all guest RAM of both hosts once the
    source is stopped and the last pages are copied: a page the dirty tracking missed fails the
    migration (EIO) before the destination runs, and the source resumes.
    """
    src, vm = g.at, g.vm
    rt = src.host.bus.runtime
    page_ns = PAGE_SIZE * 8 / link_gbps
    st = MigrationStats(src.host.name, dst_host.name)
    t_start = rt.now_ns()
    st.src_pasid, st.src_adis = src.vdev.pasid, list(src.vdev.adis)
    if src.dev.migration_flags() & u.VFIO_MIGRATION_STOP_COPY == 0:
        raise MigrationError(errno.EOPNOTSUPP, "the source VDEV cannot be migrated")
    # -- destination: a VDEV of the same type, opened by the destination VMM (ENOSPC: no ADIs)
    uid = str(uuidlib.uuid4())
    try:
        await dst_host.vdcm.create(g.type_id, uid)
    except VfioError as exc:
        raise MigrationError(exc.errno, f"{dst_host.name}: cannot create the destination VDEV: {exc}") from exc
    dst_vmm = UserProcess(dst_host.bus, f"qemu-{vm.name}")
    dst_ram = dst_vmm.mmap_anon(vm.ram_size)
    dst = await open_vdev(dst_host, vm, uid, dst_vmm, dst_ram)
    st.dst_pasid, st.dst_adis = dst.vdev.pasid, list(dst.vdev.adis)
    stopped = False
    try:
        # -- pre-copy: all of RAM, then what the CPU and the device dirtied meanwhile
        await src.container.dirty_pages_start()
        vm.start_dirty_log()
        st.pages_per_round.append(await _copy_pages(src, dst, range(0, vm.ram_size, PAGE_SIZE), page_ns))
        while True:
            dirty = vm.take_cpu_dirty() | set(await src.container.dirty_pages_get(0, vm.ram_size))
            if abort_at == "precopy":
                raise MigrationError(errno.ECANCELED, "migration cancelled during pre-copy")
            # converged: few enough pages for the downtime, or no longer shrinking (the guest's
            # working set is dirtied as fast as it is sent), or out of rounds
            if (
                len(dirty) <= threshold_pages
                or len(dirty) >= st.pages_per_round[-1]
                or len(st.pages_per_round) >= max_rounds
            ):
                vm.requeue_dirty(dirty)  # copied in stop-and-copy
                break
            st.pages_per_round.append(await _copy_pages(src, dst, dirty, page_ns))
        # -- stop and copy
        t_down = rt.now_ns()
        await vm.pause()
        stopped = True
        f = await src.dev.set_mig_state(STOP_COPY)
        assert f is not None
        state = f.read_all()
        f.close()
        t_copy = rt.now_ns()
        st.stop_ns = t_copy - t_down
        dirty = vm.take_cpu_dirty() | set(await src.container.dirty_pages_get(0, vm.ram_size))
        st.pages_per_round.append(await _copy_pages(src, dst, dirty, page_ns))
        st.state_bytes = len(state)
        await rt.sleep(round(len(state) * 8 / link_gbps))
        if verify_ram:
            bad = [
                gpa
                for gpa in range(0, vm.ram_size, PAGE_SIZE)
                if src.vmm.read(src.ram_va + gpa, PAGE_SIZE) != dst.vmm.read(dst.ram_va + gpa, PAGE_SIZE)
            ]
            st.ram_checked = not bad
            if bad:
                raise MigrationError(
                    errno.EIO, f"guest RAM differs after the last round at GPAs {[hex(b) for b in bad[:8]]}"
                )
        if abort_at == "stopcopy":
            raise MigrationError(errno.ECANCELED, "migration cancelled during stop-and-copy")
        if corrupt_state:
            state = state[:40] + bytes([state[40] ^ 0x5A]) + state[41:]
        t_resume = rt.now_ns()
        st.copy_ns = t_resume - t_copy
        # -- destination resumes
        msix = u.VFIO_PCI_MSIX_IRQ_INDEX
        flags = u.VFIO_IRQ_SET_DATA_EVENTFD | u.VFIO_IRQ_SET_ACTION_TRIGGER
        await dst.dev.set_irqs(msix, flags, 0, len(g.callbacks), g.callbacks)
        fin = await dst.dev.set_mig_state(RESUMING)
        assert fin is not None
        fin.write(state)
        try:
            await dst.dev.set_mig_state(RUNNING)
        except VfioError as exc:
            fin.close()
            raise MigrationError(exc.errno, f"{dst_host.name} rejected the device state: {exc}") from exc
        fin.close()
    except BaseException:
        vm.stop_dirty_log()
        if src.container.dirty_tracking:
            await src.container.dirty_pages_stop()
        if stopped:
            await src.dev.set_mig_state(RUNNING)  # STOP_COPY -> STOP -> RUNNING_P2P -> RUNNING
            vm.resume()
        await _close(dst)
        await dst.vmm.exit()
        await dst_host.vdcm.remove(uid)
        log.warning("migration %s -> %s failed; %s runs on", src.host.name, dst_host.name, src.host.name)
        raise
    # -- switch-over: the guest's RAM, portal pages and BAR0 now reach the destination
    vm.stop_dirty_log()
    await src.container.dirty_pages_stop()
    _repoint(g, dst)
    vm.resume()
    st.downtime_ns = rt.now_ns() - t_down
    st.resume_ns = rt.now_ns() - t_resume
    # -- only now is the source torn down: fd closed, PASID unbound (drain -> invalidate), freed
    await _close(src)
    await src.vmm.exit()
    await src.host.vdcm.remove(src.uuid)
    st.total_ns = rt.now_ns() - t_start
    g.history.append(st)
    log.info(
        "migrated %s -> %s: %d rounds %s pages, %d B device state, downtime %.2f us",
        st.src, st.dst, st.rounds, st.pages_per_round, st.state_bytes, st.downtime_ns / 1000,
    )  # fmt: skip
    return st


def _repoint(g: MigratingGuest, dst: Placement) -> None:
    """The destination VMM maps what the guest sees onto its own host: RAM, portals, BAR0."""
    g.vm.rebase(dst.vmm, dst.ram_va, dst.host.bus.runtime, dst.host.name)
    page = dst.vdev.page_size
    for q, queue in enumerate(g.driver.queues):
        ept = queue.portal
        assert isinstance(ept, EptMapping)
        ept.retarget(dst.dev.mmap(u.VFIO_PCI_INDEX_TO_OFFSET(u.VFIO_PCI_BAR2_REGION_INDEX) + q * page, page))
        queue.dev = dst.dev
    g.driver.dev = dst.dev
    g.at = dst


async def _close(p: Placement) -> None:
    """The VMM on ``p.host`` lets go of the VDEV: device fd (irqs off, reset), then the container
    (the PASID unbound with invalidation, RAM unmapped and unpinned)."""
    await p.dev.close()
    await p.container.close()


async def stop_guest(g: MigratingGuest) -> None:
    """Guest shuts its driver down; the VMM closes the VDEV, exits; the VDEV is removed."""
    await g.driver.stop()
    await _close(g.at)
    await g.at.vmm.exit()
    await g.at.host.vdcm.remove(g.at.uuid)


def random_uuid(rng: Random) -> str:
    return str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
