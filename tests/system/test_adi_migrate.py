"""Full chip, ADI migration against the golden model: traffic on one ADI, QUIESCE at a random
point, save, load into another ADI with another PASID (its own IOMMU domain with the same
mappings) and IMS vector, enable, traffic goes on -- back and forth. Every descriptor runs
exactly once (records, registers and the whole data window checked against the model), every
IMS message arrives on the vector of the ADI that ran the descriptor; a bystander's SENDs to the
VDEV are dropped while it is parked and received after it resumes. Also: quiesce -> enable on
the same ADI (abort path), quiesce of an ERROR ADI (stays ERROR, loads as ERROR), a descriptor
failing while the ADI quiesces (ends in ERROR), load refused into an enabled or busy ADI with
nothing changed, a masked IMS entry's pending bit delivered once on the destination. The RTL
asserts (ifndef SYNTHESIS) that a quiescing or loading ADI begins no descriptor, so every run
here also checks "no DMA while quiescing / loading"."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import cocotb
import pytest
from cocotb.triggers import Timer

from siov_sim.model.adi import AdiState, Cmd, DescFlags, Descriptor, ErrorCode, Opcode
from siov_sim.sw.driver import AdiSnapshot, PfError
from siov_sim.sw.iommu import DomainKind
from siov_sim.sw.regs import AdiPage, Bar0, Reg
from siov_sim.tb.pcie.ep_device import CplFault
from siov_sim.tb.runner import run_rtl
from tests.system.adi_sys import AdiCtx, AdiSystem, fill_sources, random_desc

log = logging.getLogger(f"cocotb.{__name__}")


async def twin(s: AdiSystem, adi: int, of: AdiCtx) -> AdiCtx:
    """ADI ``adi`` as a migration target for ``of``'s VDEV: a new PASID bound to its own domain
    that maps the same IOVAs to the same memory (what the destination host sets up), its own
    IMS vector; the ADI itself stays unconfigured (load does that)."""
    pasid = s.new_pasid()
    dom = s.iommu.alloc_domain(DomainKind.SECOND_STAGE)
    dom.map(of.iova, of.hpa, of.size)
    await s.iommu.bind_pasid(s.sid, pasid, dom)
    s.model.spaces.map(pasid, of.iova, of.hpa, of.size)
    irq = s.bus.alloc_irq(lambda m: s.irqs.append((m.addr, m.data)))
    ctx = AdiCtx(adi, pasid, of.iova, of.hpa, of.size, of.ring_log2, dom, irq, of.group, of.pmr)
    s.adis[adi] = ctx
    return ctx


PAGE_REGS = [r for r in vars(AdiPage).values() if isinstance(r, Reg)]


async def page(s: AdiSystem, adi: int) -> list[int]:
    """Every register of the ADI's BAR0 page."""
    p = s.bar0.adi_page(adi)
    return [await p.read(reg) for reg in PAGE_REGS]


class Traffic:
    """Descriptors doorbelled on the DUT whose execution the model has not been told yet."""

    def __init__(self, s: AdiSystem) -> None:
        self.s = s
        self.pending: list[int] = []  # ring slots, in order

    async def submit(self, adi: int, n: int) -> None:
        s = self.s
        slots = await s.submit(adi, [random_desc(s, adi, max_len=3000) for _ in range(n)], ring=False)
        self.pending += slots
        await s.bus.mmio_write(s.pf.portal_addr(adi), s.adis[adi].tail.to_bytes(4, "little"))

    def ran(self, adi: int, head: int) -> None:
        """The DUT's ``adi`` stopped with ``head``: the model runs exactly the slots before it."""
        m = self.s.model.model
        n = (head - m.adis[adi].dyn.head) % self.s.adis[adi].ring_size
        done, self.pending = self.pending[:n], self.pending[n:]
        self.s.model.doorbell(adi, head, done)


async def quiesce(s: AdiSystem, t: Traffic, adi: int, *, mirror_state: bool = True) -> AdiSnapshot:
    """QUIESCE + save; the model runs what the DUT ran, then takes the QUIESCE through the
    scoreboard (functional coverage: QUIESCE x the state it found). ``mirror_state=False`` when
    the model's state is not the one the DUT had when the command arrived (a QUIESCE already
    written by hand with a request outstanding): the model still takes it, unsampled."""
    was = await s.ctl.quiesce(adi)
    snap = await s.ctl.save(adi)
    assert snap.state is (AdiState.ERROR if snap.error else was)
    t.ran(adi, snap.head)
    if mirror_state:
        s.model.command(adi, Cmd.QUIESCE)
    else:
        s.model.model.command(adi, Cmd.QUIESCE)
    return snap


def mirror_load(s: AdiSystem, dst: int, src: int, snap: AdiSnapshot) -> None:
    """The model's side of ``load``: configuration of ``src`` with ``dst``'s PASID and vector."""
    m = s.model.model
    a, b, ctx = m.adis[src], m.adis[dst], s.adis[dst]
    for f in ("ring_base", "log2_entries", "cpl_base", "rx_base", "rx_log2_slots", "rx_log2_slot_bytes",
              "group", "port_addr", "send_en", "recv_en"):
        setattr(b.cfg, f, getattr(a.cfg, f))
    assert m.set_pasid(dst, ctx.pasid, pmr=ctx.pmr)
    b.cfg.ims_addr, b.cfg.ims_data, b.cfg.ims_mask = ctx.irq.addr, ctx.irq.data, True
    if snap.ims_pending:
        assert m.restore(dst, "ims_pending", 1)
    for f in ("head", "tail", "rx_head", "rx_tail", "cnt_desc", "cnt_bytes", "err_info"):
        assert m.restore(dst, f, getattr(snap, f))
    assert m.restore(dst, "status", (int(AdiState.ERROR) if snap.error else 0) | snap.error << 8)
    m.set_ims_mask(dst, snap.ims_masked)  # load's last write: unmasking sends a pending message
    s.adis[dst].tail = s.adis[src].tail


@cocotb.test(timeout_time=400, timeout_unit="ms")
async def migrate_back_and_forth_under_traffic(dut: Any) -> None:
    s = AdiSystem(dut)
    await s.start()
    s.ctl.poll_limit = 5000  # a quiesce that never ends fails in ~1 ms simulated, not 10 ms
    log.info("seed %d", cocotb.RANDOM_SEED)
    rng = s.rng
    x, y = rng.sample(range(s.num_adi), 2)
    other = next(a for a in range(s.num_adi) if a not in (x, y))
    ctx = await s.add_adi(x, ring_log2=5, data_pages=4)
    fill_sources(s, x)
    await twin(s, y, ctx)
    await s.add_adi(other, ring_log2=4, data_pages=2)  # a bystander with its own traffic
    fill_sources(s, other)
    t = Traffic(s)
    cur, nxt = x, y
    rounds, aborts, mid = 8, 0, 0

    async def packet() -> None:
        """The bystander SENDs one packet to the VDEV's switch address (x, wherever it runs now);
        the receiver consumes what it got."""
        await s.submit(other, [random_desc(s, other, send_to=x)])
        await s.check([other, cur])
        if s.model.model.adis[cur].dyn.state == AdiState.ENABLED:
            await s.rx_doorbell(cur, s.model.model.adis[cur].dyn.rx_tail)

    for r in range(rounds):
        await t.submit(cur, rng.randint(4, 12))
        await s.submit(other, [random_desc(s, other) for _ in range(2)])
        wait_ns = 0 if r == 0 else rng.randrange(0, 5000)  # round 0: at once, mid-descriptor
        if wait_ns:
            await Timer(wait_ns, unit="ns")
        snap = await quiesce(s, t, cur)
        mid += snap.head != snap.tail
        log.info("round %d: ADI %d quiesced after %d ns at head %d (tail %d, %d to go)",
                 r, cur, wait_ns, snap.head, snap.tail, len(t.pending))
        await s.check([cur, other])  # exactly the descriptors before head ran, nothing after
        await packet()  # to the parked source: DROPPED, its receive ring untouched
        await Timer(3000, unit="ns")
        assert AdiPage.HEAD.field("head").get(await s.bar0.adi_page(cur).read(AdiPage.HEAD)) == snap.head
        if r % 3 == 2:  # migration abort: resume on the same ADI
            aborts += 1
            assert await s.enable(cur)
            s.model.doorbell(cur, snap.tail, t.pending)
            t.pending = []
            await s.check([cur])
            await packet()  # resumed: received again
            continue
        if r:  # the previous source: reset before it can be a target
            await s.reset(nxt)
        await s.ctl.load(nxt, AdiSnapshot.unpack(snap.pack()), pasid=s.adis[nxt].pasid, ims=s.adis[nxt].irq)
        mirror_load(s, nxt, cur, snap)
        assert await s.enable(nxt)
        await s.ctl.set_forward(x, nxt)  # the VDEV's switch address now reaches the destination
        s.model.model.set_forwarding(x, nxt)
        s.model.doorbell(nxt, snap.tail, t.pending)
        t.pending = []
        cur, nxt = nxt, cur
        await s.check()
        await packet()  # lands in the destination's ring, after the source's packets
    await t.submit(cur, 5)
    t.ran(cur, t.s.adis[cur].tail)
    await s.check()
    m = s.model.model
    total = m.adis[x].dyn.cnt_desc if cur == x else m.adis[y].dyn.cnt_desc
    out = s.model.outcomes
    log.info("%d rounds (%d aborts, %d stopped mid-stream), %d descriptors on the migrating VDEV, "
             "SENDs to it: %d received, %d dropped while parked", rounds, aborts, mid, total,
             out[("SEND", "none")], out[("SEND", "ring_overflow")])
    assert out[("SEND", "ring_overflow")] == rounds and out[("SEND", "none")] == rounds
    assert mid, "no quiesce stopped the ring mid-stream"


@cocotb.test(timeout_time=400, timeout_unit="ms")
async def quiesce_error_and_refused_loads(dut: Any) -> None:
    s = AdiSystem(dut)
    await s.start()
    s.ctl.poll_limit = 5000
    a, b, c, d = s.rng.sample(range(s.num_adi), 4)
    ca = await s.add_adi(a, ring_log2=4, data_pages=2)
    cc = await s.add_adi(c, ring_log2=4, data_pages=2)
    for adi in (a, c):
        fill_sources(s, adi)
    await twin(s, b, ca)
    # ---- an ERROR ADI: quiesce keeps ERROR, the snapshot carries it, the target loads as ERROR
    await s.submit(a, [random_desc(s, a) for _ in range(3)])
    await s.check([a])
    await s.doorbell(a, 1 << 4)  # beyond the ring
    assert s.model.model.adis[a].dyn.state == AdiState.ERROR
    t = Traffic(s)
    snap = await quiesce(s, t, a)
    assert snap.state is AdiState.ERROR and snap.error == ErrorCode.DOORBELL_RANGE and snap.err_info == 16
    assert (await s.read_regs(a)).state == AdiState.ERROR
    await s.check([a])
    before = await page(s, c)
    with pytest.raises(PfError, match="cannot be loaded"):  # into an ENABLED ADI: nothing written
        await s.ctl.load(c, snap, pasid=s.adis[b].pasid)
    assert await page(s, c) == before
    await s.ctl.load(b, snap, pasid=s.adis[b].pasid, ims=s.adis[b].irq)
    mirror_load(s, b, a, snap)
    regs = await s.read_regs(b)
    assert (regs.state, regs.err, regs.head, regs.cnt_desc) == (AdiState.ERROR, ErrorCode.DOORBELL_RANGE, 3, 3)
    assert not await s.enable(b)  # ERROR: the guest must reset it, as on the source
    await s.check([a, b])
    # ---- a descriptor in flight fails while its ADI quiesces: ERROR; a busy ADI refuses a load
    lo = cc.data + cc.data_size // 2
    s.ep.add_cpl_fault(CplFault(status=None, pasid=cc.pasid, addr_lo=lo, addr_hi=lo + 0x100))
    s.model.spaces.add_read_fault(cc.pasid, lo, lo + 0x100, int(ErrorCode.DMA_TIMEOUT))
    await s.bar0.write(Bar0.DMA_TIMEOUT, 0x10)  # 65 536 cycles = 262 us
    t.pending = await s.submit(c, [Descriptor(Opcode.COPY, 256, lo, cc.data, 7, 1)], ring=False)
    await s.bus.mmio_write(s.pf.portal_addr(c), cc.tail.to_bytes(4, "little"))
    await Timer(2000, unit="ns")
    await s.bar0.adi_page(c).write(AdiPage.CMD, AdiPage.CMD.pack(cmd=Cmd.QUIESCE))
    st = AdiPage.STATUS.unpack(await s.bar0.adi_page(c).read(AdiPage.STATUS))
    assert (st["state"], st["busy"]) == (AdiState.DRAINING, 1), st
    before = await page(s, c)
    with pytest.raises(PfError, match="cannot be loaded"):
        await s.ctl.load(c, snap, pasid=s.adis[b].pasid)
    assert await page(s, c) == before
    await s.ctl.reset(d)  # never used: DISABLED, nothing outstanding -- but a bad snapshot is refused
    before = await page(s, d)
    with pytest.raises(PfError, match="outside its ring"):
        await s.ctl.load(d, dataclasses.replace(snap, head=99), pasid=s.adis[b].pasid)
    assert await page(s, d) == before
    snap_c = await quiesce(s, t, c, mirror_state=False)  # waits for the completion timeout
    assert snap_c.state is AdiState.ERROR and snap_c.error == ErrorCode.DMA_TIMEOUT and snap_c.head == 1
    await s.check([c])
    await s.bar0.write(Bar0.DMA_TIMEOUT, 0x100)
    s.ep.clear_cpl_faults()
    s.model.spaces.clear_read_faults()
    await s.bar0.write(Bar0.PF_STATUS, Bar0.PF_STATUS.field("cpl_timeout").put(0, 1))
    events = {(e.kind, e.adi, e.error) for e in await s.ctl.pf_events()}
    assert events == {("drain_done", c, 0), ("adi_error", c, ErrorCode.DMA_TIMEOUT)}, events


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def masked_ims_pending_migrates(dut: Any) -> None:
    """A masked IMS entry with its pending bit set travels with the snapshot: no message on the
    source, exactly one on the destination's vector when the destination guest unmasks; a
    quiesce of a DISABLED ADI changes nothing."""
    s = AdiSystem(dut)
    await s.start()
    a, b = s.rng.sample(range(s.num_adi), 2)
    ca = await s.add_adi(a, ring_log2=4, data_pages=2, ims_masked=True)
    fill_sources(s, a)
    await twin(s, b, ca)
    descs = [random_desc(s, a) for _ in range(3)]
    descs[1] = dataclasses.replace(descs[1], flags=int(DescFlags.INTR))
    await s.submit(a, descs)
    await s.check([a])
    t = Traffic(s)
    snap = await quiesce(s, t, a)
    assert (snap.ims_masked, snap.ims_pending, snap.head, snap.state) == (True, True, 3, AdiState.ENABLED)
    assert await s.ctl.quiesce(a) is AdiState.ENABLED  # again: nothing changes, same answer
    s.model.command(a, Cmd.QUIESCE)  # QUIESCE of a DISABLED (parked) ADI: stays DISABLED
    await s.ctl.load(b, snap, pasid=s.adis[b].pasid, ims=s.adis[b].irq)
    mirror_load(s, b, a, snap)
    ctrl = AdiPage.IMS_CTRL.unpack(await s.bar0.adi_page(b).read(AdiPage.IMS_CTRL))
    assert ctrl == {"mask": 1, "pending": 1}, ctrl
    assert await s.enable(b)
    await s.check()  # no message anywhere yet
    await s.ctl.set_ims(b, s.adis[b].irq, masked=False)  # the destination guest unmasks
    s.model.set_ims_mask(b, False)
    await s.check()  # exactly one, on b's vector
    # a never-enabled, reset ADI: quiesce reports DISABLED at once and its page stays as it was
    c = next(x for x in range(s.num_adi) if x not in (a, b))
    before = await page(s, c)
    assert await s.ctl.quiesce(c) is AdiState.DISABLED
    s.model.command(c, Cmd.QUIESCE)
    assert s.model.model.adis[c].dyn.state == AdiState.DISABLED
    assert await page(s, c) == before


@pytest.mark.system
def test_adi_migrate() -> None:
    run_rtl("ep_top", test_module=__name__, parameters={"NumAdi": 4})
