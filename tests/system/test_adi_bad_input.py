"""Full chip, bad input from the guest side: doorbell / receive head beyond the ring, ring base
not aligned, descriptors with zero / huge length or a bad opcode, SENDs the switch does not allow,
a COPY whose destination is outside the ADI's memory. Each is a recorded error (state, reason,
``err_info``, completion record, IMS), the other ADIs are unaffected, RESET brings the ADI back,
and nothing is written outside the ADI's memory: the whole data window is compared with the
golden model and every other page of host memory with a snapshot taken before."""

from __future__ import annotations

import logging
from typing import Any

import cocotb
import pytest

from siov_sim.model.adi import MAX_XFER, AdiState, Cmd, Descriptor, ErrorCode, Opcode
from siov_sim.sw.regs import AdiPage
from siov_sim.tb.runner import run_rtl
from tests.system.adi_sys import (
    DATA_HI,
    DATA_LO,
    RX_SLOT_LOG2,
    AdiSystem,
    changed_outside,
    fill_sources,
    random_desc,
    snapshot_outside,
)

log = logging.getLogger(f"cocotb.{__name__}")


async def _setup(dut: Any, n: int = 4) -> tuple[AdiSystem, list[int]]:
    s = AdiSystem(dut)
    await s.start()
    chosen = sorted(s.rng.sample(range(s.num_adi), n))
    for a in chosen:
        await s.add_adi(a, ring_log2=3, data_pages=2)
        fill_sources(s, a)
    for a in chosen:
        await s.submit(a, [random_desc(s, a) for _ in range(2)])
    await s.check()
    return s, chosen


async def _expect_error(s: AdiSystem, adi: int, code: ErrorCode, others: list[int], *, record: bool = True) -> None:
    """The model says ``adi`` is in ERROR with ``code``; check everything, then RESET + ENABLE."""
    before = snapshot_outside(s.mem, DATA_LO, DATA_HI)
    d = s.model.model.adis[adi].dyn
    assert d.state == AdiState.ERROR and d.err == code, (d, code)
    for a in others:  # the others keep running meanwhile
        await s.submit(a, [random_desc(s, a) for _ in range(2)])
    await s.check()
    if not record:
        s.model.observe_error_without_record(int(code))
    assert await s.pf_last_err() == (adi, int(code))
    assert s.rc.stats["wr_fault"] == 0, "the device tried to write outside the mapped memory"
    assert not changed_outside(s.mem, before, DATA_LO, DATA_HI)
    await s.reset(adi)
    assert await s.enable(adi)
    await s.submit(adi, [random_desc(s, adi)])
    await s.check()


@cocotb.test(timeout_time=100, timeout_unit="ms")
async def doorbell_beyond_ring(dut: Any) -> None:
    s, adis = await _setup(dut)
    a, others = adis[0], adis[1:]
    ctx = s.adis[a]
    for bad in (ctx.ring_size, 0xFFFF):
        await s.doorbell(a, bad)
        assert s.model.model.adis[a].dyn.err_info == bad
        await _expect_error(s, a, ErrorCode.DOORBELL_RANGE, others, record=False)
    b = others[0]  # receive head beyond the receive ring
    await s.rx_doorbell(b, 1 << 3)
    await _expect_error(s, b, ErrorCode.DOORBELL_RANGE, [a, *others[1:]], record=False)


@cocotb.test(timeout_time=100, timeout_unit="ms")
async def doorbell_on_disabled_adi_is_ignored(dut: Any) -> None:
    """A portal write to an ADI nobody enabled (a stray or hostile write into BAR2): no fetch, no
    error, no state change, nothing written to memory; the running ADIs are not disturbed."""
    s, adis = await _setup(dut, n=3)
    free = s.rng.choice([a for a in range(s.num_adi) if a not in adis])
    before = snapshot_outside(s.mem, DATA_LO, DATA_HI)
    last_err = await s.pf_last_err()
    faults = s.rc.stats["rd_fault"] + s.rc.stats["wr_fault"]
    for tail in (1, 0xFFFF):  # in range for any ring, and beyond every ring
        await s.doorbell(free, tail)
        await s.rx_doorbell(free, tail)
    for a in adis:
        await s.submit(a, [random_desc(s, a) for _ in range(2)])
    await s.check()
    r = await s.read_regs(free)
    assert (r.state, r.err, r.head, r.cnt_desc, r.cnt_bytes) == (int(AdiState.DISABLED), 0, 0, 0, 0), r
    assert await s.pf_last_err() == last_err, "a doorbell on a DISABLED ADI raised an ADI error"
    assert s.rc.stats["rd_fault"] + s.rc.stats["wr_fault"] == faults, "the DISABLED ADI made DMA requests"
    assert not changed_outside(s.mem, before, DATA_LO, DATA_HI)


@cocotb.test(timeout_time=100, timeout_unit="ms")
async def ring_base_not_aligned(dut: Any) -> None:
    s, adis = await _setup(dut, 3)
    free = next(x for x in range(s.num_adi) if x not in adis)
    ctx = await s.add_adi(free, ring_log2=3, data_pages=2, ring_misalign=8)  # enable fails
    before = snapshot_outside(s.mem, DATA_LO, DATA_HI)  # after the IOMMU tables were written
    assert s.model.model.adis[free].dyn.err == ErrorCode.BAD_RING_ALIGN
    await s.doorbell(free, 1)  # ignored: not ENABLED
    await s.check()
    s.model.observe_error_without_record(int(ErrorCode.BAD_RING_ALIGN))
    assert not changed_outside(s.mem, before, DATA_LO, DATA_HI)
    # fix the base through the slow path, then the ADI works
    await s.reset(free)
    await s.ctl.configure(free, _cfg(s, free))
    s.model.model.adis[free].cfg.ring_base = ctx.ring
    assert await s.enable(free)
    fill_sources(s, free)
    await s.submit(free, [random_desc(s, free) for _ in range(3)])
    await s.check()


def _cfg(s: AdiSystem, adi: int) -> Any:
    from siov_sim.sw.driver.adi import AdiConfig

    c = s.adis[adi]
    return AdiConfig(ring_base=c.ring, ring_size=c.ring_size, cpl_base=c.cpl, pasid=c.pasid, rx_base=c.rx,
                     rx_slots=8, rx_slot_bytes=1 << RX_SLOT_LOG2)


@cocotb.test(timeout_time=100, timeout_unit="ms")
async def pasid_locked_and_required(dut: Any) -> None:
    """The PASID register ignores writes unless the ADI is DISABLED (traffic keeps its PASID);
    ENABLE without a valid PASID (PASID Enable is set) is ERROR NO_PASID."""
    s, adis = await _setup(dut, 3)
    a = adis[0]
    page = s.bar0.adi_page(a)
    old = await page.read(AdiPage.PASID)
    await page.write(AdiPage.PASID, AdiPage.PASID.pack(valid=1, pasid=s.new_pasid()))
    assert await page.read(AdiPage.PASID) == old
    await s.submit(a, [random_desc(s, a) for _ in range(3)])
    await s.check()
    free = next(x for x in range(s.num_adi) if x not in adis)
    await s.add_adi(free, ring_log2=3, data_pages=2, enable=False)
    await s.bar0.adi_page(free).write(AdiPage.PASID, 0)  # valid = 0
    s.model.model.set_pasid(free, s.adis[free].pasid, valid=False)
    assert not await s.enable(free)
    assert s.model.model.adis[free].dyn.err == ErrorCode.NO_PASID
    await s.doorbell(free, 1)  # ignored
    await s.check()
    s.model.observe_error_without_record(int(ErrorCode.NO_PASID))
    assert await s.pf_last_err() == (free, int(ErrorCode.NO_PASID))


@cocotb.test(timeout_time=100, timeout_unit="ms")
async def bad_descriptors(dut: Any) -> None:
    s, adis = await _setup(dut)
    a, others = adis[0], adis[1:]
    ctx = s.adis[a]
    peer = others[0]
    half = ctx.data_size // 2
    cases = [
        (Descriptor(Opcode.COPY, 0, ctx.data, ctx.data + half, 1), ErrorCode.ZERO_LENGTH),
        (Descriptor(Opcode.FILL, 0, 0x55, ctx.data + half, 2), ErrorCode.ZERO_LENGTH),
        (Descriptor(Opcode.SEND, 0, ctx.data, peer, 3), ErrorCode.ZERO_LENGTH),
        (Descriptor(Opcode.COPY, MAX_XFER + 1, ctx.data, ctx.data + half, 4), ErrorCode.HUGE_LENGTH),
        (Descriptor(Opcode.FILL, 0xFFFF_FFFF, 0x55, ctx.data + half, 5), ErrorCode.HUGE_LENGTH),
        (Descriptor(Opcode.SEND, 4097, ctx.data, peer, 6), ErrorCode.HUGE_LENGTH),
        (Descriptor(Opcode.SEND, (1 << RX_SLOT_LOG2) - 15, ctx.data, peer, 7), ErrorCode.HUGE_LENGTH),  # > slot
        (Descriptor(7, 64, ctx.data, ctx.data + half, 8), ErrorCode.BAD_OPCODE),
    ]
    s.rng.shuffle(cases)
    for desc, code in cases:
        good = random_desc(s, a)
        await s.submit(a, [good, desc, random_desc(s, a)])  # the third one must not run
        await _expect_error(s, a, code, others)
    log.info("outcomes %s", dict(s.model.outcomes))


@cocotb.test(timeout_time=100, timeout_unit="ms")
async def send_denied_by_switch(dut: Any) -> None:
    s, adis = await _setup(dut)
    a, b, c, d = adis
    m = s.model.model
    ctx = s.adis[a]

    async def send(to: int) -> None:
        await s.submit(a, [Descriptor(Opcode.SEND, 100, ctx.data, to, s.rng.getrandbits(32))])

    # 1. forwarding entry invalid
    await s.ctl.set_forward(b, None)
    m.set_forwarding(b, b, valid=False)
    await send(b)
    await _expect_error(s, a, ErrorCode.SEND_DENIED, [c, d])
    await s.ctl.set_forward(b, b)
    m.set_forwarding(b, b)
    # 2. destination in another switch group
    await s.ctl.set_switch_port(c, 5, c, send=True, recv=True)
    m.adis[c].cfg.group = 5
    await send(c)
    await _expect_error(s, a, ErrorCode.SEND_DENIED, [b, d])
    # 3. destination without recv_en
    await s.ctl.set_switch_port(d, 0, d, send=True, recv=False)
    m.adis[d].cfg.recv_en = False
    await send(d)
    await _expect_error(s, a, ErrorCode.SEND_DENIED, [b, c])
    # 4. sender without send_en
    await s.ctl.set_switch_port(a, 0, a, send=False, recv=True)
    m.adis[a].cfg.send_en = False
    await send(b)
    await _expect_error(s, a, ErrorCode.SEND_DENIED, [b, c, d])
    await s.ctl.set_switch_port(a, 0, a, send=True, recv=True)
    m.adis[a].cfg.send_en = True
    # 5. destination not ENABLED (drained)
    await s.ctl.drain(b)
    s.model.command(b, Cmd.DRAIN)
    await send(b)
    await _expect_error(s, a, ErrorCode.SEND_DENIED, [c, d])
    # the allowed SEND still works
    await s.reset(b)
    assert await s.enable(b)
    await send(b)
    await s.check()
    assert s.model.outcomes[("SEND", "switch_denied")] == 5
    assert s.model.outcomes[("SEND", "none")] == 1


@cocotb.test(timeout_time=100, timeout_unit="ms")
async def copy_outside_own_memory_is_blocked(dut: Any) -> None:
    """The destination is an IOVA the ADI has not mapped (another ADI's memory is mapped there in
    *its* space): the IOMMU drops the writes, no byte of the other ADI changes."""
    s, adis = await _setup(dut)
    a, b = adis[0], adis[1]
    ca, cb = s.adis[a], s.adis[b]
    before = snapshot_outside(s.mem, DATA_LO, DATA_HI)
    target = cb.data if not ca.iova <= cb.data < ca.iova + ca.size else ca.iova + ca.size
    await s.submit(a, [Descriptor(Opcode.COPY, 3000, ca.data, target, 1), random_desc(s, a)])
    for x in adis[1:]:
        await s.submit(x, [random_desc(s, x) for _ in range(2)])
    await s.check()
    assert s.rc.stats["wr_fault"] > 0
    assert s.model.spaces.blocked_writes
    assert not changed_outside(s.mem, before, DATA_LO, DATA_HI)
    faults = await s.iommu.drain_faults()
    assert faults and {f.pasid for f in faults} == {ca.pasid}


@pytest.mark.system
@pytest.mark.parametrize("num_adi", [4, 1024])
def test_adi_bad_input(num_adi: int) -> None:
    run_rtl("ep_top", test_module=__name__, parameters={"NumAdi": num_adi})
