"""The SIOV end-to-end scenario behind ``make sim``, independent of the bus backend.

``await run_demo(bus, pf, iommu, vdevs=4, size=4096)`` after the PF is probed:

1. VFIO + VDCM come up; VDEVs of different types are created on demand (``siov-4q`` for VMs,
   ``siov-1q`` for the host user-space drivers), all on one switch network;
2. each VDEV gets a driver of one kind in turn -- AVF-like guest in a VM (GPAs), DPDK-like
   PMD (IOVAs, polling), SVA process (its own page table, IMS interrupts) -- and runs COPY,
   FILL and SEND (to the next VDEV) with the data checked;
3. isolation: a PMD names as COPY source an IOVA that only another VDEV mapped; the IOMMU
   blocks it with the offender's PASID recorded, the victim's data is untouched, the
   offender's ADI is in ERROR and recovers after a queue reset;
4. teardown: drivers stop, VFIO closes, VDEVs are removed (drain -> unbind PASID -> free).

It returns a :class:`DemoReport` (also ``asdict``-able for JSON). The same code runs on the
cocotb root complex (``tb/``) and on the unit tests' fake host.
"""

from __future__ import annotations

import logging
import time
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random

from siov_sim.sw.bus import HostBus
from siov_sim.sw.driver.abi import MAX_XFER, AdiState, CplStatus, error_name
from siov_sim.sw.driver.iommu_api import IommuApi
from siov_sim.sw.driver.pf import PfDriver
from siov_sim.sw.guest.drivers import (
    AvfGuestDriver,
    DpdkPmd,
    SvaUser,
    VdevDriver,
    vfio_close,
    vfio_open,
    vmm_attach_viommu,
)
from siov_sim.sw.guest.memory import GuestVm, UserProcess
from siov_sim.sw.guest.queue import QueueError, VdevQueue
from siov_sim.sw.guest.viommu import GuestIommu, GuestIoTable
from siov_sim.sw.vdcm.vdcm import Vdcm
from siov_sim.sw.vfio.vfio import Vfio, VfioContainer, VfioDevice

log = logging.getLogger(__name__)

KINDS = ("avf", "pmd", "sva")
TYPE_OF = {"avf": "siov-4q", "pmd": "siov-1q", "sva": "siov-1q"}
MAX_SIZE = MAX_XFER  # a COPY/FILL descriptor moves at most 1 MiB
_MIB = 1 << 20


def vm_ram_for(size: int, batch: int) -> int:
    """Guest RAM an AVF VM of the demo needs: drivers and rings, plus per queue the single
    transfer buffers and the batch buffers (``size`` bytes each), rounded up to 2 MiB."""
    need = 2 * _MIB + 4 * 2 * size * (max(batch, 1) + 1)
    return max(4 * _MIB, (need + 2 * _MIB - 1) // (2 * _MIB) * 2 * _MIB)


def host_ram_needed(vdevs: int, size: int, batch: int = 8) -> int:
    """Host RAM the demo will allocate for ``vdevs`` VDEVs (AVF VMs' RAM, user processes'
    buffers), for checking the knobs before anything is built."""
    per_user = 64 * 1024 + 2 * size * (max(batch, 1) + 1)
    n_avf = (vdevs + len(KINDS) - 1) // len(KINDS)
    return n_avf * vm_ram_for(size, batch) + (vdevs - n_avf) * per_user


@dataclass
class VdevReport:
    uuid: str
    type_id: str
    driver: str
    pasid: int
    adis: list[int]
    queues: int
    ops: int = 0
    bytes: int = 0
    interrupts: int = 0
    polls: int = 0
    sends: int = 0
    received: int = 0
    faults: int = 0
    errors: int = 0
    notes: list[str] = field(default_factory=list)
    sim_ns: float = 0.0
    start_ns: float = 0.0  # simulated: create() called -> first DMA of the new VDEV completed

    @property
    def start_us(self) -> float:
        return self.start_ns / 1000

    @property
    def bandwidth_gbps(self) -> float:
        return 8 * self.bytes / self.sim_ns if self.sim_ns else 0.0


@dataclass
class DemoReport:
    vdevs: list[VdevReport] = field(default_factory=list)
    isolation: dict[str, object] = field(default_factory=dict)
    viommu: dict[str, object] = field(default_factory=dict)
    removal: list[str] = field(default_factory=list)
    leaks: dict[str, int] = field(default_factory=dict)
    sim_ns: float = 0.0
    wall_s: float = 0.0

    def text(self) -> str:
        lines = [
            f"{'VDEV':8} {'type':8} {'driver':6} {'PASID':>5} {'ADIs':10} {'start us':>8} {'ops':>5} {'bytes':>9} "
            f"{'irqs':>5} {'sent':>4} {'rcvd':>4} {'faults':>6} {'Gb/s':>7}"
        ]
        shown = self.vdevs if len(self.vdevs) <= 24 else [*self.vdevs[:12], *self.vdevs[-12:]]
        for v in shown:
            if len(shown) < len(self.vdevs) and v is self.vdevs[-12]:
                lines.append(f"... {len(self.vdevs) - 24} more VDEVs ...")
            lines.append(
                f"{v.uuid[:8]:8} {v.type_id:8} {v.driver:6} {v.pasid:5d} {','.join(map(str, v.adis))[:10]:10} "
                f"{v.start_us:8.2f} {v.ops:5d} {v.bytes:9d} {v.interrupts:5d} {v.sends:4d} {v.received:4d} "
                f"{v.faults:6d} {v.bandwidth_gbps:7.2f}"
            )
        if self.vdevs:
            starts = sorted(v.start_us for v in self.vdevs)
            lines.append(f"VDEV start (create -> first DMA done, simulated): min {starts[0]:.2f} us, "
                         f"median {starts[len(starts) // 2]:.2f} us, max {starts[-1]:.2f} us")
        iso = self.isolation
        if iso:
            lines.append(
                f"isolation: {iso.get('offender', '?')[:8]} read {iso.get('victim', '?')[:8]}'s IOVA "  # type: ignore[index]
                f"0x{iso.get('iova', 0):x} -> blocked={iso.get('blocked')} fault PASID={iso.get('fault_pasid')} "
                f"victim intact={iso.get('victim_intact')} ADI error={iso.get('adi_error_name')} "
                f"recovered={iso.get('recovered')} PF saw={iso.get('pf_saw_adi_error')}"
            )
        vi = self.viommu
        if vi:
            lines.append(
                f"vIOMMU: {vi.get('vdev', '?')[:8]} guest tables in guest RAM (root GPA 0x{vi.get('root_gpa', 0):x}) "  # type: ignore[index]
                f"nested on the container's second stage; forgotten invalidation -> stale={vi.get('stale_seen')}, "
                f"after the late invalidation -> fresh={vi.get('fresh_after_invalidation')}; "
                f"invalidations forwarded {vi.get('forwarded')}, skipped {vi.get('skipped')}"
            )
        notes = [f"note {v.uuid[:8]}: {n}" for v in self.vdevs for n in v.notes]
        lines += notes if len(notes) <= 24 else [*notes[:24], f"... {len(notes) - 24} more notes"]
        rm = self.removal if len(self.removal) <= 24 else [*self.removal[:4], f"... {len(self.removal) - 4} more"]
        lines += [f"removed: {r}" for r in rm]
        lines.append(f"left over after removal: {self.leaks}")
        lines.append(f"simulated {self.sim_ns / 1000:.1f} us, wall {self.wall_s:.2f} s")
        return "\n".join(lines)


@dataclass
class _Live:
    report: VdevReport
    driver: VdevDriver
    kind: str
    container: VfioContainer | None
    dev: VfioDevice
    gid: int
    process: UserProcess | None = None
    vm: GuestVm | None = None
    giommu: GuestIommu | None = None
    table: GuestIoTable | None = None


Progress = Callable[[str], None]


async def run_demo(
    bus: HostBus,
    pf: PfDriver,
    iommu: IommuApi,
    *,
    vdevs: int = 4,
    size: int = 4096,
    seed: int = 1,
    batch: int = 8,
    progress: Progress | None = None,
    vdcm: Vdcm | None = None,
) -> DemoReport:
    """Run the scenario (see module docstring); ``progress`` receives one line per step.

    ``size``: bytes per transfer; ``batch``: COPYs posted per doorbell per queue for the
    bandwidth figure (0 = none). ``vdcm``: use this VDCM (and its VFIO) instead of a new one,
    e.g. the one a live sysfs tree shows.
    """
    say: Progress = progress or (lambda msg: log.info("%s", msg))
    rng = Random(seed)
    t0, w0 = bus.runtime.now_ns(), time.monotonic()
    report = DemoReport()
    if vdcm is None:
        vdcm = Vdcm(pf, vfio=Vfio(iommu))
    if vdcm.vfio is None:
        raise ValueError("the demo needs a VDCM with VFIO")
    vfio = vdcm.vfio
    say(f"VDCM up: types {[(t.type_id, t.available_instances) for t in vdcm.supported_types()]}")
    live: list[_Live] = []
    for i in range(vdevs):
        kind = KINDS[i % len(KINDS)]
        type_id = TYPE_OF[kind]
        left = vdevs - i - 1  # VDEVs still to create after this one need an ADI each
        if type_id != "siov-1q" and pf.free_adi_count() - 4 < left:
            type_id = "siov-1q"  # not enough ADIs for a 4-queue VDEV and all the others
        if vdcm.available_instances(type_id) == 0:
            type_id = "siov-1q"
            if vdcm.available_instances(type_id) == 0:
                say(f"no ADIs left for VDEV {i}: stopping at {len(live)}")
                break
        uid = str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
        t_create = bus.runtime.now_ns()
        live.append(await _bring_up(bus, iommu, vfio, vdcm, kind, type_id, i, uid, vm_ram_for(size, batch)))
        r = live[-1].report
        try:
            await _first_dma(live[-1], rng)
        except QueueError as exc:
            r.errors += 1
            r.notes.append(f"first DMA failed: {exc}")
        r.start_ns = bus.runtime.now_ns() - t_create
        if vdevs <= 32 or i % 100 == 99 or i == vdevs - 1:
            say(f"VDEV {r.uuid[:8]} ({type_id}, {kind}) up: PASID {r.pasid}, ADIs {r.adis}, "
                f"first DMA {r.start_ns / 1000:.2f} us after create")

    for n, lv in enumerate(live):
        try:
            await _traffic(vdcm, lv, live[(n + 1) % len(live)], size, batch, rng)
        except QueueError as exc:  # report it and go on: the other VDEVs are unaffected
            lv.report.errors += 1
            lv.report.notes.append(f"traffic stopped: {exc}")
            _collect(lv)
        if len(live) <= 32 or n % 100 == 99 or n == len(live) - 1:
            say(f"VDEV {lv.report.uuid[:8]}: {lv.report.ops} ops, {lv.report.bytes} bytes, {lv.report.errors} errors")

    for lv in live:
        _collect(lv)
    avfs = [lv for lv in live if lv.giommu is not None]
    if avfs:
        report.viommu = await _stale_guest_mapping(avfs[0])
        say(f"vIOMMU: {report.viommu}")
    pmds = [lv for lv in live if lv.kind == "pmd"]
    others = [lv for lv in live if lv.kind in ("pmd", "avf") and lv not in pmds[:1]]
    if pmds and others:
        report.isolation = await _isolation(iommu, pmds[0], others[0])
        pf_errors = [e for e in await pf.service_events() if e.kind == "adi_error"]
        report.isolation["pf_saw_adi_error"] = [(e.adi, e.error) for e in pf_errors]
        say(f"isolation: {report.isolation}")

    for n, lv in enumerate(live):
        await _tear_down(vfio, vdcm, lv)
        report.removal.append(f"{lv.report.uuid} ({lv.kind}): drained, PASID {lv.report.pasid} unbound and freed")
        if len(live) <= 32 or n % 100 == 99 or n == len(live) - 1:
            say(f"VDEV {lv.report.uuid[:8]} removed" + (f" ({n + 1} of {len(live)})" if len(live) > 32 else ""))
    use = vdcm.usage()
    report.leaks = {
        "vdevs": use.vdevs,
        "adis": use.adis_in_use,
        "pasids": use.pasids_in_use,
        "switch_addrs": use.switch_addrs_in_use,
    }
    report.vdevs = [lv.report for lv in live]
    report.sim_ns = bus.runtime.now_ns() - t0
    report.wall_s = time.monotonic() - w0
    return report


async def _bring_up(
    bus: HostBus, iommu: IommuApi, vfio: Vfio, vdcm: Vdcm, kind: str, type_id: str, i: int, uid: str,
    vm_ram: int = 4 << 20,
) -> _Live:
    vdev = await vdcm.create(type_id, uid, network="demo")
    gid = vdcm.group_id(uid)
    rep = VdevReport(uid, type_id, kind, vdev.pasid, list(vdev.adis), vdev.num_queues)
    driver: VdevDriver
    if kind == "avf":  # a VM with a vIOMMU: the guest's own tables, nested on the host's second stage
        vm = GuestVm(bus, f"vm{i}", ram_size=vm_ram)
        container, dev, giommu = await vmm_attach_viommu(vfio, gid, uid, vm)
        table = giommu.alloc_table()
        await giommu.attach(table)
        driver = AvfGuestDriver(vm, dev, bus.runtime, viommu=table)
        lv = _Live(rep, driver, kind, container, dev, gid, vm=vm, giommu=giommu, table=table)
    elif kind == "pmd":
        proc = UserProcess(bus, f"dpdk{i}", va_base=0x7000_0000_0000 - i * 0x10_0000_0000)
        container, dev = await vfio_open(vfio, gid, uid, proc)
        driver = DpdkPmd(proc, container, dev, bus.runtime)
        lv = _Live(rep, driver, kind, container, dev, gid, process=proc)
    else:
        proc = UserProcess(bus, f"sva{i}", va_base=0x7000_0000_0000 - i * 0x10_0000_0000)
        dev = await vdcm.open_sva(uid, proc.enable_sva(iommu))
        driver = SvaUser(proc, dev, bus.runtime)
        lv = _Live(rep, driver, kind, None, dev, gid, process=proc)
    await driver.start()
    return lv


async def _first_dma(lv: _Live, rng: Random) -> None:
    """One small checked COPY right after bring-up: the VDEV is usable."""
    mem, q = lv.driver.mem, lv.driver.queues[0]
    src, dst = await mem.alloc(64), await mem.alloc(64)
    data = rng.randbytes(64)
    mem.write(src, data)
    await q.copy(src, dst, 64)
    if mem.read(dst, 64) != data:
        lv.report.errors += 1
        lv.report.notes.append("first DMA: data mismatch")
    await mem.free(src)
    await mem.free(dst)


async def _traffic(vdcm: Vdcm, lv: _Live, peer: _Live, size: int, batch: int, rng: Random) -> None:
    drv, rep = lv.driver, lv.report
    t0 = drv.runtime.now_ns()
    src, dst = await drv.mem.alloc(size), await drv.mem.alloc(size)
    if batch:
        bsrc, bdst = await drv.mem.alloc(size * batch), await drv.mem.alloc(size * batch)
        for q in drv.queues:
            n = min(batch, q.ring_size - 1)
            descs = [q.copy_desc(bsrc + i * size, bdst + i * size, size) for i in range(n)]
            await q.run_batch(descs)
        if drv.mem.read(bdst, size * batch) != drv.mem.read(bsrc, size * batch):
            rep.errors += 1
        await drv.mem.free(bsrc)
        await drv.mem.free(bdst)
    for q in drv.queues:
        pattern = bytes(rng.randrange(256) for _ in range(64)) * (size // 64 + 1)
        drv.mem.write(src, pattern[:size])
        await q.copy(src, dst, size)
        if drv.mem.read(dst, size) != pattern[:size]:
            rep.errors += 1
        await q.fill(dst, 0x5A5A_5A5A_0000_0000 | q.index, size)
    # SEND to the peer's first queue (same switch network), checked on the receiving side
    msg = f"hello from {rep.uuid[:8]}".encode()
    drv.mem.write(src, msg)
    rec = await drv.queues[0].send(src, len(msg), vdcm.switch_addr(peer.report.uuid))
    rep.sends += int(rec.status == CplStatus.SUCCESS)
    got = await peer.driver.queues[0].receive()
    if got is None or got[1] != msg:
        rep.errors += 1
    elif (got[0].src_addr, got[0].seq) != (vdcm.switch_addr(rep.uuid), rec.tag):
        rep.errors += 1  # the slot header names the sender's switch address and the SEND's tag
        rep.notes.append(f"receive header {got[0]} (sender addr {vdcm.switch_addr(rep.uuid)}, tag {rec.tag})")
    await drv.mem.free(src)
    await drv.mem.free(dst)
    rep.sim_ns += drv.runtime.now_ns() - t0
    _collect(lv)


def _collect(lv: _Live) -> None:
    rep = lv.report
    rep.ops = sum(q.stats.ops for q in lv.driver.queues)
    rep.bytes = sum(q.stats.bytes for q in lv.driver.queues)
    rep.interrupts = sum(q.stats.irqs for q in lv.driver.queues)
    rep.polls = sum(q.stats.polls for q in lv.driver.queues)
    rep.received = sum(q.stats.received for q in lv.driver.queues)


async def _stale_guest_mapping(lv: _Live) -> dict[str, object]:
    """A guest driver that forgets an invalidation: remap a GIOVA to another page without telling
    the vIOMMU, and the device still reads the old page (IOTLB); after the invalidation, the new."""
    assert lv.vm is not None and lv.giommu is not None and lv.table is not None
    vm, table, q = lv.vm, lv.table, lv.driver.queues[0]
    dst = await lv.driver.mem.alloc(4096)
    giova = 0x60_0000_0000
    old_gpa, new_gpa = vm.page_alloc.alloc(4096), vm.page_alloc.alloc(4096)
    vm.write(old_gpa, b"old page" * 512)
    vm.write(new_gpa, b"new page" * 512)
    table.map(giova, old_gpa, 4096)
    await q.copy(giova, dst, 64)
    first = lv.driver.mem.read(dst, 8)
    await table.unmap(giova, 4096, invalidate=False)  # the bug
    table.map(giova, new_gpa, 4096)
    await q.copy(giova, dst, 64)
    stale = lv.driver.mem.read(dst, 8)
    await lv.giommu.invalidate(giova, 4096)
    await q.copy(giova, dst, 64)
    fresh = lv.driver.mem.read(dst, 8)
    await table.unmap(giova, 4096)
    vm.page_alloc.free(old_gpa)
    vm.page_alloc.free(new_gpa)
    await lv.driver.mem.free(dst)
    _collect(lv)
    st = lv.giommu.stats
    return {
        "vdev": lv.report.uuid,
        "root_gpa": table.root,
        "first_read": first.decode(),
        "stale_seen": first == stale == b"old page",
        "fresh_after_invalidation": fresh == b"new page",
        "forwarded": st.invalidations_forwarded,
        "skipped": st.invalidations_skipped,
        "pasid_entry_writes": st.pasid_entry_writes,
    }


async def _isolation(iommu: IommuApi, offender: _Live, victim: _Live) -> dict[str, object]:
    vmem, omem = victim.driver.mem, offender.driver.mem
    secret = await vmem.alloc(4096)
    vmem.write(secret, b"victim data " * 341)
    mine = await omem.alloc(4096)
    q = offender.driver.queues[0]
    await iommu.drain_faults()  # start from a clean fault log
    blocked, adi_error = False, 0
    try:
        await q.copy(secret, mine, 4096)
    except QueueError as exc:  # blocked means: the ADI stopped in ERROR (not a timeout)
        blocked, adi_error = exc.state == AdiState.ERROR, exc.error
    faults = await iommu.drain_faults()
    mine_faults = [f for f in faults if f.pasid == offender.report.pasid]
    offender.report.faults += len(mine_faults)
    intact = vmem.read(secret, 12) == b"victim data "
    await q.reset()
    recovered = True
    try:
        await q.copy(mine, mine + 2048, 64)
    except QueueError as exc:
        recovered = False
        offender.report.notes.append(f"no recovery: {exc}")
    await vmem.free(secret)
    await omem.free(mine)
    _collect(offender)
    return {
        "offender": offender.report.uuid,
        "victim": victim.report.uuid,
        "iova": secret,
        "blocked": blocked,
        "fault_pasid": mine_faults[0].pasid if mine_faults else None,
        "fault_addr": mine_faults[0].addr if mine_faults else None,
        "victim_intact": intact,
        "adi_error": adi_error,
        "adi_error_name": error_name(adi_error),
        "recovered": recovered,
    }


async def _tear_down(vfio: Vfio, vdcm: Vdcm, lv: _Live) -> None:
    await lv.driver.stop()
    if lv.kind == "sva":
        await vdcm.close_sva(lv.report.uuid)
    else:
        assert lv.container is not None
        await vfio_close(vfio, lv.gid, lv.container, lv.dev)
    await vdcm.remove(lv.report.uuid)
    if lv.vm is not None:
        await lv.vm.destroy()
    if lv.process is not None:
        await lv.process.exit()


@dataclass
class BandwidthReport:
    """What :func:`run_bandwidth` moved: every byte checked after every batch."""

    vdevs: int = 0
    queues: int = 0
    size: int = 0
    batch: int = 0
    rounds: int = 0
    bytes: int = 0
    copies: int = 0
    mismatches: int = 0
    errors: list[str] = field(default_factory=list)
    sim_ns: float = 0.0
    wall_s: float = 0.0


async def run_bandwidth(
    bus: HostBus,
    pf: PfDriver,
    iommu: IommuApi,
    *,
    vdevs: int = 4,
    size: int = 65536,
    batch: int = 8,
    rounds: int = 4,
    seed: int = 1,
    on_phase: Callable[[str], None] | None = None,
) -> BandwidthReport:
    """Bulk COPY traffic on ``vdevs`` VDEVs of the ``make sim`` kinds (AVF guest, PMD, SVA), all
    queues at once: each queue posts ``batch`` COPYs of ``size`` bytes per doorbell, ``rounds``
    times; before each round the destinations are cleared and afterwards compared with the
    sources, so every byte of every round is checked. Buffers are allocated before the timed
    phase; ``on_phase("start")`` / ``on_phase("end")`` bracket it (the bench marks them)."""
    rng = Random(seed)
    vfio = Vfio(iommu)
    vdcm = Vdcm(pf, vfio=vfio)
    live: list[_Live] = []
    for i in range(vdevs):
        kind = KINDS[i % len(KINDS)]
        type_id = TYPE_OF[kind]
        if vdcm.available_instances(type_id) == 0:
            type_id = "siov-1q"
        uid = str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
        vm_ram = (4 << 20) + 8 * 2 * size * batch  # rings and drivers + src/dst of up to 8 queues
        live.append(await _bring_up(bus, iommu, vfio, vdcm, kind, type_id, i, uid, vm_ram))
    jobs = []
    for lv in live:
        for q in lv.driver.queues:
            n = min(batch, q.ring_size - 1)
            src, dst = await lv.driver.mem.alloc(size * n), await lv.driver.mem.alloc(size * n)
            lv.driver.mem.write(src, rng.randbytes(size * n))
            jobs.append((lv, q, src, dst, n))
    rep = BandwidthReport(vdevs=len(live), queues=len(jobs), size=size, batch=batch, rounds=rounds)

    async def queue_job(lv: _Live, q: VdevQueue, src: int, dst: int, n: int) -> None:
        mem = lv.driver.mem
        want = mem.read(src, size * n)
        for _ in range(rounds):
            mem.write(dst, bytes(size * n))
            try:
                await q.run_batch([q.copy_desc(src + i * size, dst + i * size, size) for i in range(n)])
            except QueueError as exc:
                rep.errors.append(f"{lv.report.uuid[:8]} q{q.index}: {exc}")
                return
            rep.copies += n
            rep.bytes += size * n
            if mem.read(dst, size * n) != want:
                rep.mismatches += 1

    if on_phase is not None:
        on_phase("start")
    t0, w0 = bus.runtime.now_ns(), time.monotonic()
    await bus.runtime.gather([queue_job(*j) for j in jobs])
    rep.sim_ns, rep.wall_s = bus.runtime.now_ns() - t0, time.monotonic() - w0
    if on_phase is not None:
        on_phase("end")
    for lv in live:
        await _tear_down(vfio, vdcm, lv)
    return rep
