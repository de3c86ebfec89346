"""Full chip, stopping a running 1 MiB descriptor (issue 9 item 8): the ADI command ABORT through
the PF driver (``AdiControl.abort``), and PASID Enable cleared in config space under a COPY that
carries the PASID prefix. Both against the golden model and the link taps."""

from __future__ import annotations

import logging
from typing import Any

import cocotb
import pytest
from cocotb.triggers import Timer
from cocotb.utils import get_sim_time

from siov_sim.model.adi import AdiState, Cmd, Completion, CplStatus, Descriptor, ErrorCode, Opcode
from siov_sim.sw.regs import AdiPage
from siov_sim.tb.runner import run_rtl
from tests.system.adi_sys import AdiSystem, fill_sources, is_msi, random_desc

log = logging.getLogger(f"cocotb.{__name__}")

MIB = 1 << 20
DATA_PAGES = 2 * MIB // 4096  # sources in the first MiB, destinations in the second
ABORT_NS = 10_000  # ABORT to DISABLED: the 4 KiB step in progress, its record (a 1 MiB COPY takes ~250 us)
TLP_TAIL_NS = 100  # one max-size TLP whose first beat left before the cut (BME_TLP_TAIL_NS)


async def _setup(dut: Any) -> tuple[AdiSystem, int, list[int]]:
    """ADI ``a`` with 2 MiB of data, three others with the usual 16 KiB, all with random sources."""
    s = AdiSystem(dut)
    await s.start()
    chosen = sorted(s.rng.sample(range(s.num_adi), 4))
    a, others = chosen[0], chosen[1:]
    await s.add_adi(a, ring_log2=4, data_pages=DATA_PAGES)
    s.write(a, s.adis[a].data, s.rng.randbytes(MIB))
    for b in others:
        await s.add_adi(b, ring_log2=4, data_pages=4)
        fill_sources(s, b)
    return s, a, others


async def _start_big_copy(s: AdiSystem, a: int, tag: int) -> list[int]:
    """Ring a 1 MiB COPY and a small one behind it on the DUT only (the model learns later how far
    the DUT got); returns once the COPY has moved data for a while."""
    ctx = s.adis[a]
    descs = [Descriptor(Opcode.COPY, MIB, ctx.data, ctx.data + MIB, tag),
             Descriptor(Opcode.COPY, 4096, ctx.data, ctx.data + MIB - 4096, tag + 1)]
    slots = await s.submit(a, descs, ring=False)
    await s.bus.mmio_write(s.pf.portal_addr(a), ctx.tail.to_bytes(4, "little"))
    page = s.bar0.adi_page(a)
    for _ in range(50):
        if AdiPage.STATUS.unpack(await page.read(AdiPage.STATUS))["busy"]:
            break
    else:
        raise AssertionError("the COPY never started")
    await Timer(s.rng.randrange(10_000, 40_000), unit="ns")
    assert s.record(a, slots[0])[0] == 0, "the 1 MiB COPY finished too early for the test"
    return slots


@cocotb.test(timeout_time=200, timeout_unit="ms")
@cocotb.parametrize(drain_first=[True, False])
async def abort_1mib_copy(dut: Any, drain_first: bool) -> None:
    """ABORT mid 1 MiB COPY while other ADIs run, from DRAINING (a DRAIN first, which waits for
    the COPY) or straight from ENABLED: DISABLED within ABORT_NS, record ABORTED with whole 2 KiB
    steps, exactly the model's data (nothing written outside the ADI's buffers: the whole data
    window is compared), drain_done; ABORT again on the DISABLED ADI is a no-op DRAIN; RESET +
    ENABLE: the ADI runs normally again."""
    s, a, others = await _setup(dut)
    for b in others:
        await s.submit(b, [random_desc(s, b) for _ in range(4)])
    slots = await _start_big_copy(s, a, 0x5A)
    await s.ctl.pf_events()  # clear old causes
    page = s.bar0.adi_page(a)
    if drain_first:
        await page.write(AdiPage.CMD, AdiPage.CMD.pack(cmd=int(Cmd.DRAIN)))  # would wait for the 1 MiB
        await Timer(2000, unit="ns")
        st = AdiPage.STATUS.unpack(await page.read(AdiPage.STATUS))
        assert (st["state"], st["busy"]) == (AdiState.DRAINING, 1), st
    else:
        st = AdiPage.STATUS.unpack(await page.read(AdiPage.STATUS))
        assert (st["state"], st["busy"]) == (AdiState.ENABLED, 1), st
    t0 = get_sim_time("ns")
    await s.ctl.abort(a)  # returns when DISABLED with nothing outstanding
    took = get_sim_time("ns") - t0
    rec = Completion.unpack(s.record(a, slots[0]))
    log.info("ABORT of ADI %d took %d ns; record %s", a, took, rec)
    assert took < ABORT_NS, f"ABORT took {took} ns"
    assert (rec.status, rec.error, rec.tag) == (CplStatus.ABORTED, ErrorCode.ABORTED, 0x5A), rec
    assert 0 < rec.bytes_done < MIB and rec.bytes_done % 2048 == 0, rec
    # the model: the DUT stopped after rec.bytes_done; the second descriptor never began
    m = s.model.model
    m.adis[a].dyn.tail = s.adis[a].tail
    if drain_first:
        s.model.command(a, Cmd.DRAIN, outstanding=1)
    s.model.command(a, Cmd.ABORT, outstanding=1)
    assert m.step(a, abort_at=rec.bytes_done) == rec
    assert m.adis[a].dyn.state == AdiState.DISABLED and m.adis[a].dyn.head == 1
    s.model.submitted += [(a, i) for i in slots]
    await s.check()
    kinds = [(e.kind, e.adi) for e in await s.ctl.pf_events()]
    assert ("drain_done", a) in kinds and ("adi_error", a) not in kinds, kinds
    assert s.rc.stats["wr_fault"] == 0 and s.rc.stats["rd_fault"] == 0
    # ABORT of a DISABLED ADI: nothing to stop
    s.model.command(a, Cmd.ABORT)
    await s.ctl.abort(a)
    # reusable: RESET, ENABLE, normal traffic (and the others keep going)
    await s.reset(a)
    assert await s.enable(a)
    await s.submit(a, [random_desc(s, a) for _ in range(3)])
    for b in others:
        await s.submit(b, [random_desc(s, b) for _ in range(2)])
    await s.check()


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def pasid_enable_cleared_mid_1mib_copy(dut: Any) -> None:
    """PASID Enable cleared in config space under a 1 MiB COPY with its prefix: once the CfgWr
    has completed, no request TLP leaves the function (neither with a prefix nor without one,
    which would reach the PF's RID_PASID domain) except the tail of one TLP already started and
    interrupt messages; no completion record is written (it would need the prefix); the data
    moved is a prefix of the source; every ADI enabled with a PASID ends ERROR PASID_DISABLED
    and not busy. PASID Enable set again + RESET + ENABLE: normal traffic."""
    s, a, others = await _setup(dut)
    for b in others:
        ctx = s.adis[b]
        half = ctx.data_size // 2
        await s.submit(b, [Descriptor(Opcode.COPY, half, ctx.data, ctx.data + half, i) for i in range(3)],
                       ring=False)
        await s.bus.mmio_write(s.pf.portal_addr(b), ctx.tail.to_bytes(4, "little"))
    slots = await _start_big_copy(s, a, 0x77)
    req: list[tuple[float, bool, int]] = []  # (time at eop, prefixed, address bits 63:52 of a 3-DW MWr)
    cpl_ns: list[float] = []

    def tap(f: Any, stream: str) -> bool:
        now = get_sim_time("ns")
        if stream == "tx_cpl_tlp":
            cpl_ns.append(now)
        else:
            req.append((now, bool(f.prfx), int(is_msi(f, stream))))
        return False

    s.ep.tap = tap
    pasid_ctl = s.pf.caps.pasid_cap + 6
    ctl = int.from_bytes(await s.bus.cfg_read(s.sid, pasid_ctl, 2), "little")
    await s.bus.cfg_write(s.sid, pasid_ctl, (ctl & ~1).to_bytes(2, "little"))
    s.model.model.pasid_disable()
    t_off = cpl_ns[-1]  # the completion of the CfgWr that cleared PASID Enable left the RTL here
    await s.wait_idle([a, *others], timeout_us=50)
    s.ep.tap = None
    late = [(round(t - t_off), p) for t, p, msi in req if t > t_off and not msi]
    log.info("PASID Enable off: %d requests after it (ns, prefixed): %s", len(late), late[:8])
    assert len(late) <= 1 and all(t < TLP_TAIL_NS for t, _ in late), (
        f"{len(late)} request TLPs left after PASID Enable was cleared: {late[:8]}")
    assert all(p for _, p in late), "an ADI request without its PASID prefix"
    for b in [a, *others]:
        regs = await s.read_regs(b)
        assert (regs.state, regs.err) == (AdiState.ERROR, ErrorCode.PASID_DISABLED), (b, regs)
    assert s.record(a, slots[0]) == bytes(16), "completion record written after PASID Enable cleared"
    ctx = s.adis[a]
    src, dst = s.read(a, ctx.data, MIB), s.read(a, ctx.data + MIB, MIB)
    k = next(i for i in range(MIB) if dst[i] != src[i])
    assert 0 < k < MIB and dst[k:] == bytes(MIB - k), f"data beyond the copied prefix ({k} bytes)"
    assert s.rc.stats["wr_fault"] == 0 and s.rc.stats["rd_fault"] == 0
    log.info("PASID Enable cleared after %d bytes of the 1 MiB COPY", k)
    # recovery: PASID Enable on, RESET, ENABLE, normal traffic against a fresh model
    await s.bus.cfg_write(s.sid, pasid_ctl, ctl.to_bytes(2, "little"))
    s.model.model.pasid_enabled = True
    for b in [a, *others]:
        assert s.model.model.adis[b].dyn.state == AdiState.ERROR
        s.model.command(b, Cmd.ABORT)  # ERROR, nothing outstanding: DISABLED, reason kept
        await s.ctl.abort(b)
        regs = await s.read_regs(b)
        assert (regs.state, regs.err) == (AdiState.DISABLED, ErrorCode.PASID_DISABLED), (b, regs)
        await s.reset(b)
    s.resync_model()
    s.irqs.clear()
    for b in [a, *others]:
        assert await s.enable(b)
        await s.submit(b, [random_desc(s, b) for _ in range(3)])
    await s.check()


@pytest.mark.system
@pytest.mark.parametrize("num_adi", [4])
def test_adi_abort(num_adi: int) -> None:
    run_rtl("ep_top", test_module=__name__, parameters={"NumAdi": num_adi})
