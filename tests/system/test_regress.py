"""Seeded constrained-random system regression (`make regress SEEDS=N`, `make regress SEED=s`).

Every seed runs two simulations, each fully determined by the seed (``COCOTB_RANDOM_SEED``):

* ``adi`` -- accurate link (the only one with cycle-level backpressure, completion reordering and
  completion fault injection): ADIs of a 1024-ADI endpoint are added and removed in epochs (each
  with its own PASID, first- or second-stage domain, ring size, PMR, IOVA layout), random
  COPY/FILL/SEND mixes and sizes, random backpressure on all five streams, reordered and
  RCB-split completions, random MPS/MRRS, injected UR/CA/poisoned completions and IOMMU faults
  (DMA outside the ADI's mapping) on one victim ADI per epoch, which is then reset and re-enabled,
  Bus Master Enable dropped in the middle of traffic in some epochs (ADIs end ENABLED or in
  ERROR NO_BUS_MASTER, nothing is written outside the ADIs' memory, RESET recovers), and PASID
  Enable cleared in the middle of traffic in others (no request without its prefix, every ADI
  ERROR PASID_DISABLED, nothing written outside the ADIs' memory, ABORT/RESET recovers). Every
  completion record, ADI register, IMS message and the whole DMA window are checked against the
  golden model (tb/scoreboard.py) after each epoch.
* ``vdev`` -- fast link (proven equal to the accurate one by tests/system/test_link_modes.py; the
  host flows, not link timing, are under test): VDEVs of every driver kind (a VM's driver through
  a vIOMMU, a DPDK-like PMD on VFIO, an SVA process) and both types are created and removed at
  random while others run random COPY/FILL batches of random sizes (every byte compared); some
  VDEVs are made to fault (DMA to an address their driver never mapped: the queue stops in ERROR,
  the IOMMU records the fault with the VDEV's PASID, nothing else changes) and are reset, at
  least one of every driver kind per seed. At the end nothing leaks (VDEVs, ADIs, PASIDs, switch
  addresses, interrupt vectors).

A failing seed prints the one command that reproduces it (``make regress SEED=<s>``). `make test`
runs the fixed seeds of ``DEFAULT_SEEDS``; ``--seeds 1:50`` (pytest) / ``make regress SEEDS=50``
runs more.
"""

from __future__ import annotations

import logging
import random
import uuid
from typing import Any

import cocotb
import pytest
from cocotb.triggers import Timer
from cocotb.utils import get_sim_time
from cocotbext.pcie.core.tlp import CplStatus

from siov_sim.model.adi import AdiState, Cmd, Descriptor, ErrorCode, Opcode
from siov_sim.model.adi.formats import fill_bytes
from siov_sim.model.mem import FlatHostMemory
from siov_sim.sw.driver import PfDriver
from siov_sim.sw.driver.regs_adi import RegAdiControl
from siov_sim.sw.guest.demo import KINDS, _bring_up, _Live, _tear_down, vm_ram_for
from siov_sim.sw.guest.queue import QueueError
from siov_sim.sw.iommu import DomainKind, IommuDriver
from siov_sim.sw.regs import AdiPage
from siov_sim.sw.vdcm import Vdcm
from siov_sim.sw.vfio import Vfio
from siov_sim.tb.coverage import once, sample_irq, sample_vdev
from siov_sim.tb.env import Env
from siov_sim.tb.pcie.ep_device import CplFault
from siov_sim.tb.pcie.host_bus import as_host_bus
from siov_sim.tb.pcie.iommu_rc import LOW_RAM_END, IommuRootComplex
from siov_sim.tb.runner import run_rtl
from tests.system.adi_sys import (
    DATA_HI,
    SW_LO,
    AdiSystem,
    changed_outside,
    fill_sources,
    is_msi,
    random_desc,
    snapshot_outside,
)

log = logging.getLogger(f"cocotb.{__name__}")

DEFAULT_SEEDS = (1, 48)  # what `make test` runs (tests/conftest.py); 48 hung an ADI before issue 9 (BUGS.md #5)
ADI_NUM = 1024  # the build tests/system/test_adi_traffic.py already uses
VDEV_NUM_ADI = 16  # the build tests/system/test_siov_stack.py already uses
FAULT_CODE = {CplStatus.UR: ErrorCode.CPL_UR, CplStatus.CA: ErrorCode.CPL_CA, "poisoned": ErrorCode.CPL_POISONED}
BME_DRAIN_NS = 1000  # requests already inside ep_dma when BME drops still leave (rtl/dma/README)


def reproduce(seed: int) -> str:
    return f"make regress SEED={seed}"


# ---------------------------------------------------------------------------------- ADI level
async def _raw_cmd(s: AdiSystem, adi: int, cmd: int) -> None:
    """Write the ADI's CMD register directly (the PF driver refuses commands it knows are no-ops)
    and mirror it in the model; command 0 is no command at all."""
    await s.bar0.adi_page(adi).write(AdiPage.CMD, AdiPage.CMD.pack(cmd=cmd))
    if cmd:
        s.model.command(adi, Cmd(cmd))


async def _victim_fault(s: AdiSystem, victim: int, descs: list[Descriptor]) -> None:
    """Append to ``descs`` a descriptor that faults on ``victim`` (one of four ways, random)."""
    v = s.adis[victim]
    half = v.data_size // 2
    way = s.rng.choice(["UR", "CA", "poisoned", "iommu"])
    if way == "iommu":  # source outside the ADI's mapping: the IOMMU answers UR; just past the
        # mapping (not present), beyond the address width, or non-canonical (first stage)
        lo = s.rng.choice([v.iova + v.size + 0x10_0000, 1 << 52, 0x8000_0000_0000])
        if v.domain.kind == DomainKind.PASS_THROUGH:  # no table: all host memory is reachable, only
            lo = 1 << s.rc.iommu.caps.haw  # the address width faults (seed 231 read past the ADI)
        descs.append(Descriptor(Opcode.COPY, s.rng.randint(1, 3000), lo + s.rng.randrange(0x100), v.data + half, 7))
        return
    # a read fault on a range of the second half (random descriptors only read the first half)
    lo = v.data + half + s.rng.randrange(0, half - 0x400, 0x40)
    hi = lo + s.rng.choice([0x40, 0x200])
    if way == "poisoned":
        s.ep.add_cpl_fault(CplFault(poison=True, pasid=v.pasid, addr_lo=lo, addr_hi=hi))
        code = FAULT_CODE["poisoned"]
    else:
        st = CplStatus.UR if way == "UR" else CplStatus.CA
        s.ep.add_cpl_fault(CplFault(status=st, pasid=v.pasid, addr_lo=lo, addr_hi=hi))
        code = FAULT_CODE[st]
    s.model.spaces.add_read_fault(v.pasid, lo, hi, int(code))
    n, src = s.rng.randint(hi - lo, 3000), lo - s.rng.randrange(0, 0x40)
    # the read stays inside the ADI's data: one that also ran past its mapping would meet a second
    # error (IOMMU UR), and the record reports whichever error completion arrives first (seed 100:
    # the UR of the later 2 KiB request overtook the poisoned one)
    descs.append(Descriptor(Opcode.COPY, min(n, v.data + v.data_size - src), src, v.data, 7))


async def _queue_work(s: AdiSystem, active: list[int], max_len: int = 6000) -> None:
    """1-5 random COPY/FILLs on every ADI (as far as its ring has room), then a random wait: the
    work a BME or PASID Enable clear lands in."""
    for a in active:
        ctx = s.adis[a]
        k = min(s.rng.randint(1, 5), ctx.ring_size - 1 - len(ctx.outstanding))
        if k > 0:
            await s.submit(a, [random_desc(s, a, max_len=max_len) for _ in range(k)])
    await Timer(s.rng.randint(1, 3000), unit="ns")


async def _restart(s: AdiSystem, active: list[int]) -> None:
    """After a phase the model cannot follow step by step: every ADI reset, the model restarted
    from memory, interrupts seen so far dropped, every ADI enabled again."""
    for a in active:
        await s.reset(a)
    s.resync_model()
    s.irqs.clear()
    for a in active:
        assert await s.enable(a)


async def _bme_phase(s: AdiSystem, active: list[int]) -> None:
    """BME cleared while the ADIs have work: requests stop (bounded by what was in flight), ADIs end
    ENABLED or in ERROR NO_BUS_MASTER, nothing outside the ADIs' memory changes; BME set again,
    every ADI reset and re-enabled, the model restarted from memory (it cannot predict which
    descriptor BME cut)."""
    # the PF driver's and the IOMMU's memory (SW_LO..SW_HI) legitimately changes (PF event ring)
    before = snapshot_outside(s.mem, SW_LO, DATA_HI)
    await _queue_work(s, active)
    req_ns: list[float] = []

    def tap(f: Any, stream: str) -> bool:
        if stream != "tx_cpl_tlp":
            req_ns.append(get_sim_time("ns"))
        return False

    s.ep.tap = tap
    faults0 = (s.rc.stats["wr_fault"], s.rc.stats["rd_fault"])
    await s.set_bus_master(False)
    t_off = get_sim_time("ns")
    try:
        await s.wait_idle(active)
    except AssertionError:
        log.error("BME off, not idle: MRd without completion %s, completions held %d, up %d down %d",
                  sorted(s.ep._mrd_sent), len(s.ep._cpl_pool), s.ep.tlps_up, s.ep.tlps_down)
        raise
    for a in active:
        regs = await s.read_regs(a)
        assert regs.state in (AdiState.ENABLED, AdiState.ERROR), (a, regs)
        if regs.state == AdiState.ERROR:
            assert regs.err == ErrorCode.NO_BUS_MASTER, (a, regs)
    late = [t - t_off for t in req_ns if t > t_off]
    assert all(t < BME_DRAIN_NS for t in late), f"requests long after BME was cleared: +{late[:8]} ns"
    s.ep.tap = None
    await s.set_bus_master(True)
    await Timer(20_000, unit="ns")  # held interrupts go out (one scan over all ADIs)
    assert changed_outside(s.mem, before, SW_LO, DATA_HI) == [], "BME off: memory outside software + ADIs changed"
    await _restart(s, active)
    assert (s.rc.stats["wr_fault"], s.rc.stats["rd_fault"]) == faults0, "DMA faulted while BME was off"


async def _pasid_phase(s: AdiSystem, active: list[int]) -> None:
    """PASID Enable cleared in config space while the ADIs have work (every ADI here is enabled
    with a PASID): after the completion of that CfgWr no request TLP leaves except the tail of one
    already started, and never one without its PASID prefix (interrupt messages aside); every ADI
    ends ERROR PASID_DISABLED and not busy; nothing outside the ADIs' memory changes and nothing
    faults. PASID Enable set again, every ADI (ABORT +) RESET and re-enabled, the model restarted
    from memory (it cannot predict where the cut fell)."""
    before = snapshot_outside(s.mem, SW_LO, DATA_HI)
    await _queue_work(s, active, max_len=12000)
    req: list[tuple[float, bool]] = []  # (time at eop, prefixed) of request TLPs, no MSI/IMS
    cpl_ns: list[float] = []

    def tap(f: Any, stream: str) -> bool:
        if stream == "tx_cpl_tlp":
            cpl_ns.append(get_sim_time("ns"))
        elif not is_msi(f, stream):
            req.append((get_sim_time("ns"), bool(f.prfx)))
        return False

    s.ep.tap = tap
    faults0 = (s.rc.stats["wr_fault"], s.rc.stats["rd_fault"])
    pasid_ctl = s.pf.caps.pasid_cap + 6
    ctl = int.from_bytes(await s.bus.cfg_read(s.sid, pasid_ctl, 2), "little")
    await s.bus.cfg_write(s.sid, pasid_ctl, (ctl & ~1).to_bytes(2, "little"))
    t_off = cpl_ns[-1]  # the CfgWr's completion left the RTL here
    await s.wait_idle(active)
    s.ep.tap = None
    late = [(round(t - t_off), p) for t, p in req if t > t_off]
    log.info("PASID Enable off: %d request TLPs after it (ns, prefixed): %s", len(late), late)
    assert len(late) <= 1 and all(t < BME_DRAIN_NS for t, _ in late), f"requests after PASID Enable fell: {late}"
    assert all(p for _, p in late), "an ADI request without its PASID prefix after PASID Enable fell"
    # an idle ADI is stopped by the walk over all ADIs that PASID Enable's fall starts, at the
    # lowest priority of the ADI state pipe (an ADI every 2 cycles at best: >= 8 us at 1024 ADIs);
    # until then it is ENABLED, and its next descriptor fetch would stop it
    deadline = get_sim_time("ns") + s.num_adi * 4 * 4 + 5000
    pending = set(active)
    while pending:
        for a in sorted(pending):
            regs = await s.read_regs(a)
            if regs.state != AdiState.ENABLED or get_sim_time("ns") > deadline:
                assert (regs.state, regs.err) == (AdiState.ERROR, ErrorCode.PASID_DISABLED), (a, regs)
                pending.discard(a)
        await Timer(1000, unit="ns")
    log.info("PASID Enable off: every ADI in ERROR PASID_DISABLED %d ns after it", get_sim_time("ns") - t_off)
    await s.bus.cfg_write(s.sid, pasid_ctl, ctl.to_bytes(2, "little"))
    await Timer(2000, unit="ns")
    assert changed_outside(s.mem, before, SW_LO, DATA_HI) == [], "PASID off: memory outside software + ADIs changed"
    assert (s.rc.stats["wr_fault"], s.rc.stats["rd_fault"]) == faults0, "DMA faulted while PASID Enable was off"
    for a in active:
        if s.rng.random() < 0.5:
            await s.ctl.abort(a)  # ERROR, nothing outstanding: DISABLED, the error kept until RESET
            regs = await s.read_regs(a)
            assert (regs.state, regs.err) == (AdiState.DISABLED, ErrorCode.PASID_DISABLED), (a, regs)
    await _restart(s, active)


async def adi_regress(dut: Any) -> None:
    s = AdiSystem(dut)
    await s.start()
    rng = s.rng
    side = random.Random(cocotb.RANDOM_SEED ^ 0x9A51D)  # the PASID Enable phase's draw
    if rng.random() < 0.8:
        s.ep.set_backpressure(random.Random(rng.getrandbits(64)), tx_pause=rng.choice([0.1, 0.3, 0.6]))
    if rng.random() < 0.8:
        s.ep.set_cpl_reorder(random.Random(rng.getrandbits(64)), window=rng.choice([2, 4, 8]),
                             hold_cycles=rng.choice([8, 48, 128]))
    s.rc.split_on_all_rcb = rng.random() < 0.5
    await s.set_mps_mrrs(rng.randint(0, 2), rng.randint(0, 5))
    log.info("backpressure %s, reorder %s, RCB splits %s", s.ep.rx_req.pause is not None,
             s.ep._reorder_rng is not None, s.rc.split_on_all_rcb)
    free = list(range(s.num_adi))
    rng.shuffle(free)
    active: list[int] = []
    epochs = rng.randint(2, 4)
    iommu_faults = 0
    for ep in range(epochs):
        # churn: remove some ADIs (reset: DISABLED, state cleared), add new ones (new PASID, domain)
        gone = rng.sample(active, k=rng.randint(0, len(active) // 2)) if ep else []
        for a in gone:
            await s.wait_idle([a])
            await Timer(2000, unit="ns")  # a message released by the last unmask reaches the host
            # its interrupts leave with it: the model's and the host's (check() matches active ADIs only)
            msg = (s.adis[a].irq.addr, s.adis[a].irq.data)
            s.model.expect_ims([a])
            s.model.observe_ims([m for m in s.irqs if m == msg])
            s.irqs = [m for m in s.irqs if m != msg]
            await s.reset(a)
            active.remove(a)
            del s.adis[a]
            free.append(a)
        for _ in range(rng.randint(1 if active else 3, 6)):
            a = free.pop(rng.randrange(len(free)))
            shape = rng.choices(["small", "large", "pt"], weights=[8, 1, 1])[0]
            if shape == "large":  # 2 MiB, 2 MiB-aligned on both sides: 2M leaves in either stage
                await s.add_adi(a, ring_log2=rng.choice([3, 4, 5]), data_pages=512 - 4, pmr=rng.random() < 0.5,
                                align=1 << 21, iova=rng.choice([0x4000_0000, 0x2_0020_0000]))
            elif shape == "pt":  # pass-through PASID: IOVA = host address
                await s.add_adi(a, ring_log2=rng.choice([3, 4, 5]), data_pages=rng.choice([2, 4]),
                                kind=DomainKind.PASS_THROUGH)
            else:
                await s.add_adi(a, ring_log2=rng.choice([3, 4, 5]), data_pages=rng.choice([2, 4, 6]),
                                pmr=rng.random() < 0.3, ims_masked=rng.random() < 0.2)
            fill_sources(s, a)
            active.append(a)
        log.info("epoch %d: removed %s, active %s", ep, gone,
                 [(a, s.adis[a].pasid, hex(s.adis[a].hpa), s.adis[a].size) for a in active])
        if len(active) >= 3 and ep and rng.random() < 0.3:
            log.info("epoch %d: BME cleared during traffic", ep)
            await _bme_phase(s, active)
            await s.check()
            continue
        if ep and side.random() < 0.25:  # own generator: seeds without this phase run as before
            log.info("epoch %d: PASID Enable cleared during traffic", ep)
            await _pasid_phase(s, active)
            await s.check()
            continue
        victim = rng.choice(active) if len(active) > 1 and rng.random() < 0.6 else None
        # one sender per receiver per epoch: packets from two senders would land in the receive
        # ring in an order the link's timing decides, not the model
        receivers = active[:]
        rng.shuffle(receivers)
        peer_of = dict(zip(active, receivers, strict=True))
        for a in rng.sample(active, len(active)):
            ctx = s.adis[a]
            k = rng.randint(1, ctx.ring_size - 2)
            # nothing sent to the victim: whether its ERROR comes before a SEND arrives is timing
            peer = peer_of[a] if peer_of[a] != victim else None
            descs = [random_desc(s, a, send_to=peer if peer is not None and rng.random() < 0.2 else None,
                                 max_len=rng.choice([256, 6000, 12000])) for _ in range(k)]
            if a == victim:
                log.info("epoch %d: victim ADI %d", ep, a)
                at = rng.randrange(len(descs) + 1)
                tail = descs[at:]
                descs = descs[:at]
                await _victim_fault(s, a, descs)
                descs += tail[: max(0, ctx.ring_size - 2 - len(descs))]
            while descs:  # one or several doorbells
                n = rng.randint(1, len(descs))
                await s.submit(a, descs[:n])
                descs = descs[n:]
                if rng.random() < 0.3:
                    await Timer(rng.randint(10, 2000), unit="ns")
        if victim is not None:
            assert s.model.model.adis[victim].dyn.state == AdiState.ERROR
        await s.check()
        for a in active:  # receivers consume some of their packets
            if rng.random() < 0.6:
                await s.rx_doorbell(a, s.model.model.adis[a].dyn.rx_tail)
            if s.model.model.adis[a].cfg.ims_mask and rng.random() < 0.5:  # unmask: a pending message goes out
                await s.ctl.set_ims(a, s.adis[a].irq, masked=False)
                s.model.set_ims_mask(a, False)
        for a in rng.sample(active, min(2, len(active))):  # commands that change nothing
            if a != victim:
                await _raw_cmd(s, a, rng.choice([0, int(Cmd.ENABLE)]))
        if victim is not None:
            iommu_faults += len(await s.iommu.drain_faults())
            s.ep.clear_cpl_faults()
            s.model.spaces.clear_read_faults()
            if rng.random() < 0.5:  # ENABLE is ignored in ERROR; DRAIN of an idle ADI in ERROR disables it
                await _raw_cmd(s, victim, int(Cmd.ENABLE))
                await _raw_cmd(s, victim, int(Cmd.DRAIN))
                if rng.random() < 0.5:
                    await _raw_cmd(s, victim, int(Cmd.DRAIN))  # DRAIN of a DISABLED ADI: stays DISABLED
            await s.reset(victim)
            assert await s.enable(victim)
        log.info("epoch %d: %d ADIs, %d records checked, outcomes %s", ep, len(active), s.model.ops_checked,
                 dict(s.model.outcomes))
    # a last round on every ADI after the churn: all still work
    for a in active:
        await s.submit(a, [random_desc(s, a) for _ in range(2)])
    await s.check()
    assert s.model.ops_checked > 0
    assert s.rc.stats["wr_fault"] == 0, "a DMA write faulted (writes go only to mapped memory)"


@cocotb.test(timeout_time=3000, timeout_unit="ms")
async def regress_adi(dut: Any) -> None:
    await adi_regress(dut)


# ---------------------------------------------------------------------------------- VDEV level
async def _checked_ops(lv: _Live, rng: random.Random) -> None:
    """A random batch of COPY/FILL of random sizes on a random queue; every byte compared."""
    drv = lv.driver
    q = rng.choice(drv.queues)
    jobs: list[tuple[Descriptor, int, bytes, int]] = []
    for _ in range(rng.randint(1, 6)):
        n = rng.choice([rng.randint(1, 64), rng.randint(1, 4096), rng.randint(4096, 12000)])
        dst = await drv.mem.alloc(n)
        if rng.random() < 0.5:
            pat = rng.getrandbits(64)
            jobs.append((Descriptor(Opcode.FILL, n, pat, dst, q._next_tag()), dst, fill_bytes(pat, n), 0))
        else:
            src = await drv.mem.alloc(n)
            data = rng.randbytes(n)
            drv.mem.write(src, data)
            jobs.append((q.copy_desc(src, dst, n), dst, data, src))
    await q.run_batch([j[0] for j in jobs])
    for _d, dst, want, src in jobs:
        got = drv.mem.read(dst, len(want))
        assert got == want, f"VDEV {lv.report.uuid[:8]} ({lv.kind}): wrong data at 0x{dst:x}"
        await drv.mem.free(dst)
        if src:
            await drv.mem.free(src)
    lv.report.ops += len(jobs)


async def _fault_and_reset(lv: _Live, iommu: IommuDriver, rng: random.Random) -> None:
    """DMA from an address the driver never mapped: the queue stops in ERROR, the fault carries
    the VDEV's PASID; the queue reset brings it back."""
    drv = lv.driver
    q = rng.choice(drv.queues)
    await iommu.drain_faults()
    dst = await drv.mem.alloc(256)
    # never mapped; beyond the address width; non-canonical (first stage)
    bad = rng.choice([0x6543_2100_0000, 1 << 52, 0x8000_0000_0000]) + rng.randrange(0, 1 << 20, 64)
    try:
        await q.copy(bad, dst, rng.randint(1, 256))
    except QueueError as exc:
        assert exc.state == AdiState.ERROR, exc
    else:
        raise AssertionError(f"VDEV {lv.report.uuid[:8]} ({lv.kind}): DMA from unmapped 0x{bad:x} succeeded")
    faults = await iommu.drain_faults()
    assert faults and {f.pasid for f in faults} == {lv.report.pasid}, faults
    once(sample_vdev, "error", lv.kind)
    await q.reset()
    once(sample_vdev, "reset", lv.kind)
    await drv.mem.free(dst)
    await _checked_ops(lv, rng)


async def vdev_regress(dut: Any) -> None:
    rc = IommuRootComplex(FlatHostMemory(0, LOW_RAM_END))
    env = Env(dut, rc=rc)
    dev = await env.start()
    assert dev is not None
    bus = as_host_bus(rc)
    iommu = IommuDriver(bus)
    pf = PfDriver(bus, int(dev.pcie_id), iommu, RegAdiControl.create)
    await pf.probe()
    vfio = Vfio(iommu)
    vdcm = Vdcm(pf, vfio=vfio)
    rng = random.Random(cocotb.RANDOM_SEED)
    base_irqs = rc.irq.allocated()
    live: list[_Live] = []
    n_created = n_faults = 0
    kinds_seen: set[str] = set()
    kinds_faulted: set[str] = set()

    async def create(kind: str) -> _Live | None:
        nonlocal n_created
        type_id = rng.choice(["siov-1q", "siov-4q"])
        if vdcm.available_instances(type_id) == 0:
            type_id = "siov-1q"
        if vdcm.available_instances(type_id) == 0:
            return None
        uid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        lv = await _bring_up(bus, iommu, vfio, vdcm, kind, type_id, n_created, uid, vm_ram_for(12000, 6))
        n_created += 1
        once(sample_vdev, "create", kind)
        once(sample_vdev, "bind", kind)  # VFIO opened / SVA bound and the driver started on it
        live.append(lv)
        kinds_seen.add(kind)
        return lv

    async def fault(lv: _Live) -> None:
        nonlocal n_faults
        await _fault_and_reset(lv, iommu, rng)
        n_faults += 1
        kinds_faulted.add(lv.kind)

    steps = rng.randint(15, 30)
    for step in range(steps):
        r = rng.random()
        # every kind at least once, early
        want_kind = next((k for k in KINDS if k not in kinds_seen), None) if step < 6 else None
        if want_kind or not live or (r < 0.3 and len(live) < 8):
            await create(want_kind or rng.choice(KINDS))
        elif r < 0.45 and len(live) > 1:
            lv = live.pop(rng.randrange(len(live)))
            await _tear_down(vfio, vdcm, lv)  # driver stop (queues drained), close, remove
            once(sample_vdev, "drain", lv.kind)
            once(sample_vdev, "remove", lv.kind)
        elif r < 0.55:
            await fault(rng.choice(live))
        else:
            lv = rng.choice(live)
            await _checked_ops(lv, rng)
            once(sample_vdev, "run", lv.kind)
            if lv.driver.use_irq:
                once(sample_irq, "ims")
    # every driver kind faults and is reset at least once per seed (the random steps above can
    # miss one): a live VDEV of that kind, or a new one
    for kind in KINDS:
        if kind not in kinds_faulted:
            lv = next((x for x in live if x.kind == kind), None) or await create(kind)
            while lv is None and live:  # every ADI in use (seeds 51, 65, 90, ...): make room
                old = live.pop(0)
                await _tear_down(vfio, vdcm, old)
                once(sample_vdev, "drain", old.kind)
                once(sample_vdev, "remove", old.kind)
                lv = await create(kind)
            assert lv is not None, f"no VDEV of kind {kind} could be created"
            await fault(lv)
    assert kinds_faulted == set(KINDS), kinds_faulted
    for lv in live:
        await _checked_ops(lv, rng)
        once(sample_vdev, "run", lv.kind)
        await _tear_down(vfio, vdcm, lv)
        once(sample_vdev, "drain", lv.kind)
        once(sample_vdev, "remove", lv.kind)
    u = vdcm.usage()
    assert (u.vdevs, u.adis_in_use, u.pasids_in_use, u.switch_addrs_in_use) == (0, 0, 0, 0), u
    assert rc.irq.allocated() == base_irqs, "interrupt vectors leaked"
    assert kinds_seen == set(KINDS), kinds_seen
    log.info("%d steps: %d VDEVs created, %d faults injected", steps, n_created, n_faults)
    env.check_link_clean()


@cocotb.test(timeout_time=3000, timeout_unit="ms")
async def regress_vdev(dut: Any) -> None:
    await vdev_regress(dut)


# ---------------------------------------------------------------------------------- pytest
@pytest.mark.system
@pytest.mark.parametrize("level", ["adi", "vdev"])
def test_regress(level: str, regress_seed: int) -> None:
    env = {"COCOTB_RANDOM_SEED": str(regress_seed)}
    try:
        if level == "adi":
            run_rtl("ep_top", test_module=__name__, testcase="regress_adi", parameters={"NumAdi": ADI_NUM},
                    extra_env=env)
        else:
            run_rtl("ep_top", test_module=__name__, testcase="regress_vdev", parameters={"NumAdi": VDEV_NUM_ADI},
                    extra_env=env, link="fast")
    except AssertionError as exc:
        raise AssertionError(f"regression seed {regress_seed} ({level}) failed; reproduce with: "
                             f"{reproduce(regress_seed)}\n{exc}") from exc
