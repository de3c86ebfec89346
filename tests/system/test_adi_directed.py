"""Full chip, directed: the functional-coverage bins (``tb/coverage.py``) that the other system
tests and the random regression reach only by chance, each checked against the golden model.

* Commands that arrive while an ADI is DRAINING. The descriptor in flight reads from an address
  whose completion never comes, so the window lasts until the completion timeout (BAR0
  ``dma_timeout``, shortened here): ENABLE is ignored, RESET waits like DRAIN, a doorbell is
  ignored (``tail`` unchanged, the descriptor behind it never runs), and the drain ends DISABLED
  with the reason recorded and no ``adi_error``; QUIESCE during a DRAIN turns it into a quiesce,
  which ends in ERROR because the descriptor failed (datasheet section 2). A SEND whose source
  read times out.
* IOMMU faults at the link that only bad addresses produce: pass-through beyond the host
  address width (SGN_4), second stage beyond its input width (SGN_5), first stage non-canonical
  (SGN_1); and a root complex that answers a faulting read with Completer Abort instead of UR.
* A nested PASID (host-built first stage over a second-stage parent) with 2 MiB leaves in both
  stages: the link sees nested 2 MiB translations for reads and writes.
* A config request to a function the endpoint does not have: a UR completion up the link.
"""

from __future__ import annotations

import logging
from typing import Any

import cocotb
import pytest
from cocotb.triggers import Timer
from cocotbext.pcie.core.tlp import CplStatus as PcieCplStatus
from cocotbext.pcie.core.utils import PcieId

from siov_sim.model.adi import CPL_SIZE, AdiState, Cmd, Descriptor, ErrorCode, Opcode
from siov_sim.model.iommu.entries import Pgtt
from siov_sim.model.iommu.faults import FaultReason
from siov_sim.model.iommu.walk import Translation
from siov_sim.sw.iommu import DomainKind
from siov_sim.sw.regs import AdiPage, Bar0
from siov_sim.tb.pcie.ep_device import CplFault, TlpFrame
from siov_sim.tb.runner import run_rtl
from tests.system.adi_sys import AdiSystem, fill_sources, random_desc

log = logging.getLogger(f"cocotb.{__name__}")

#: BAR0 dma_timeout during the DRAINING window: 4 x 4096 cycles = 65.5 us at 250 MHz
TIMEOUT_UNITS = 4
DEFAULT_TIMEOUT_UNITS = 0x100


async def _setup(dut: Any, n: int) -> tuple[AdiSystem, list[int]]:
    s = AdiSystem(dut)
    await s.start()
    chosen = sorted(s.rng.sample(range(s.num_adi), n))
    for a in chosen:
        await s.add_adi(a, ring_log2=3, data_pages=2)
        fill_sources(s, a)
    return s, chosen


async def _status(s: AdiSystem, adi: int) -> dict[str, int]:
    return AdiPage.STATUS.unpack(await s.bar0.adi_page(adi).read(AdiPage.STATUS))


async def _cmd(s: AdiSystem, adi: int, cmd: Cmd) -> None:
    """Write the ADI's CMD register directly (the PF driver does not send commands it knows do
    nothing in the current state)."""
    await s.bar0.adi_page(adi).write(AdiPage.CMD, AdiPage.CMD.pack(cmd=int(cmd)))


async def _tail(s: AdiSystem, adi: int) -> int:
    return AdiPage.TAIL.field("tail").get(await s.bar0.adi_page(adi).read(AdiPage.TAIL))


async def _stuck_in_flight(s: AdiSystem, adi: int) -> None:
    """One COPY on ``adi`` whose source read gets no completion, begun by the DUT. The model is
    given the doorbell but does not run the descriptor: :func:`_timeout_over` does, once the DUT's
    completion timeout has ended it."""
    ctx = s.adis[adi]
    lo = ctx.data + 0x100
    s.ep.add_cpl_fault(CplFault(status=None, pasid=ctx.pasid, addr_lo=lo, addr_hi=lo + 0x40))
    s.model.spaces.add_read_fault(ctx.pasid, lo, lo + 0x40, int(ErrorCode.DMA_TIMEOUT))
    slots = await s.submit(adi, [Descriptor(Opcode.COPY, 256, lo, ctx.data + ctx.data_size // 2, 0x5A5A)],
                           ring=False)
    await s.bus.mmio_write(s.pf.portal_addr(adi), ctx.tail.to_bytes(4, "little"))
    s.model.submitted += [(adi, i) for i in slots]
    s.model.model.doorbell(adi, ctx.tail)  # the tail only: nothing runs in the model yet
    for _ in range(50):
        st = await _status(s, adi)
        if st["busy"]:
            break
        await Timer(200, unit="ns")
    assert (st["state"], st["busy"]) == (AdiState.ENABLED, 1), f"the COPY never started: {st}"


async def _timeout_over(s: AdiSystem, adi: int, *, in_flight: bool) -> None:
    """Wait until the DUT's completion timeout has ended ``adi``'s descriptor in flight; with
    ``in_flight`` the model then runs it (it fails with DMA_TIMEOUT) and its outstanding request
    is done. The faults are cleared afterwards."""
    await s.wait_idle([adi], timeout_us=20 * TIMEOUT_UNITS * 16.4)
    assert Bar0.PF_STATUS.field("cpl_timeout").get(await s.bar0.read(Bar0.PF_STATUS))
    await s.bar0.write(Bar0.PF_STATUS, Bar0.PF_STATUS.field("cpl_timeout").put(0, 1))
    if in_flight:
        m = s.model.model
        m.step(adi)
        m.outstanding_done(adi)
    s.ep.clear_cpl_faults()
    s.model.spaces.clear_read_faults()


async def _recover(s: AdiSystem, adi: int) -> None:
    await s.reset(adi)
    assert await s.enable(adi)
    await s.submit(adi, [random_desc(s, adi) for _ in range(2)])
    await s.check()


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def commands_while_draining(dut: Any) -> None:
    s, (a, b, c, d) = await _setup(dut, 4)
    m = s.model.model
    await s.bar0.write(Bar0.DMA_TIMEOUT, TIMEOUT_UNITS)
    await s.ctl.pf_events()  # clear old causes
    last_err = await s.pf_last_err()

    # ---- DRAIN with a descriptor in flight, then ENABLE, RESET and a doorbell while DRAINING
    await _stuck_in_flight(s, a)
    await _cmd(s, a, Cmd.DRAIN)
    s.model.command(a, Cmd.DRAIN, outstanding=1)
    assert m.adis[a].dyn.state == AdiState.DRAINING
    await _cmd(s, a, Cmd.ENABLE)  # only from DISABLED: ignored
    s.model.command(a, Cmd.ENABLE)
    await _cmd(s, a, Cmd.RESET)  # with a request outstanding RESET acts as DRAIN
    s.model.command(a, Cmd.RESET, outstanding=1)
    behind = await s.submit(a, [random_desc(s, a)], ring=False)  # must never run
    await s.doorbell(a, s.adis[a].tail)  # ignored: the ADI is not ENABLED
    assert m.adis[a].dyn.state == AdiState.DRAINING and m.adis[a].dyn.tail == 1
    st = await _status(s, a)
    assert (st["state"], st["busy"], st["err"]) == (AdiState.DRAINING, 1, 0), st
    assert await _tail(s, a) == 1, "a doorbell on a DRAINING ADI moved its tail"
    await _timeout_over(s, a, in_flight=True)
    assert (m.adis[a].dyn.state, m.adis[a].dyn.err) == (AdiState.DISABLED, ErrorCode.DMA_TIMEOUT)
    await s.check([a])  # record (COPY, timeout), registers, the error's IMS message, memory
    assert s.record(a, behind[0]) == bytes(CPL_SIZE), "the descriptor behind the ignored doorbell ran"
    assert await _tail(s, a) == 1
    events = {(e.kind, e.adi, e.error) for e in await s.ctl.pf_events()}
    assert events == {("drain_done", a, 0)}, f"a drain that fails raises no adi_error: {events}"
    assert await s.pf_last_err() == last_err
    await _recover(s, a)

    # ---- QUIESCE while DRAINING: the drain becomes a quiesce, and the failed descriptor leaves ERROR
    await _stuck_in_flight(s, b)
    await _cmd(s, b, Cmd.DRAIN)
    s.model.command(b, Cmd.DRAIN, outstanding=1)
    await _cmd(s, b, Cmd.QUIESCE)
    s.model.command(b, Cmd.QUIESCE, outstanding=1)
    st = await _status(s, b)
    assert (st["state"], st["busy"]) == (AdiState.DRAINING, 1), st
    await _timeout_over(s, b, in_flight=True)
    assert (m.adis[b].dyn.state, m.adis[b].dyn.err) == (AdiState.ERROR, ErrorCode.DMA_TIMEOUT)
    await s.check([b])
    events = {(e.kind, e.adi, e.error) for e in await s.ctl.pf_events()}
    assert events == {("drain_done", b, 0), ("adi_error", b, ErrorCode.DMA_TIMEOUT)}, events
    await _recover(s, b)

    # ---- a SEND whose source read never completes: ERROR DMA_TIMEOUT, nothing reaches the receiver
    cc = s.adis[c]
    lo = cc.data + 0x200
    s.ep.add_cpl_fault(CplFault(status=None, pasid=cc.pasid, addr_lo=lo, addr_hi=lo + 0x40))
    s.model.spaces.add_read_fault(cc.pasid, lo, lo + 0x40, int(ErrorCode.DMA_TIMEOUT))
    # a FILL first: a random COPY could read the stalled range itself and time out before the
    # SEND (seed 1796522482 did)
    await s.submit(c, [random_desc(s, c, ops=("FILL",)), Descriptor(Opcode.SEND, 100, lo, d, 0x5E4D),
                       random_desc(s, c)])
    assert (m.adis[c].dyn.state, m.adis[c].dyn.err) == (AdiState.ERROR, ErrorCode.DMA_TIMEOUT)
    await _timeout_over(s, c, in_flight=False)
    await s.check([c, d])  # the receive ring of d is in the compared window: untouched
    assert s.model.outcomes[("SEND", "timeout")] == 1
    assert await s.pf_last_err() == (c, int(ErrorCode.DMA_TIMEOUT))
    await s.bar0.write(Bar0.DMA_TIMEOUT, DEFAULT_TIMEOUT_UNITS)
    await _recover(s, c)


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def iommu_faults_at_the_link(dut: Any) -> None:
    s = AdiSystem(dut)
    await s.start()
    p, q, r = s.rng.sample(range(s.num_adi), 3)
    await s.add_adi(p, ring_log2=3, data_pages=2, kind=DomainKind.PASS_THROUGH)
    await s.add_adi(q, ring_log2=3, data_pages=2, kind=DomainKind.SECOND_STAGE)
    await s.add_adi(r, ring_log2=3, data_pages=2, kind=DomainKind.FIRST_STAGE)
    for a in (p, q, r):
        fill_sources(s, a)
    haw = s.rc.iommu.caps.haw
    unmapped = s.adis[q].iova + s.adis[q].size + 0x10_0000
    cases = [  # ADI, source of the faulting read, fault reason, completion status
        (p, 1 << haw, FaultReason.SGN_4_HAW, PcieCplStatus.UR),  # pass-through: no table, only the width
        (q, 1 << 52, FaultReason.SGN_5_SS_INPUT, PcieCplStatus.UR),  # beyond the 48-bit second stage
        (r, 1 << 47, FaultReason.SGN_1_CANONICAL, PcieCplStatus.UR),  # bit 47 set, 63:48 clear (4-level)
        (q, unmapped, FaultReason.SSS_2_NOT_PRESENT, PcieCplStatus.CA),  # a root complex answering CA
    ]
    code_of = {PcieCplStatus.UR: ErrorCode.CPL_UR, PcieCplStatus.CA: ErrorCode.CPL_CA}
    for adi, src, reason, status in cases:
        ctx = s.adis[adi]
        await s.iommu.drain_faults()
        s.rc.fault_read_status = status
        s.model.spaces.unmapped_read_code = int(code_of[status])
        bad = Descriptor(Opcode.COPY, 64, src + 0x40, ctx.data + ctx.data_size // 2, 0xFA17)
        await s.submit(adi, [random_desc(s, adi), bad, random_desc(s, adi)])  # the third never runs
        dyn = s.model.model.adis[adi].dyn
        bad_at = (ctx.tail - 2) % ctx.ring_size
        assert (dyn.state, dyn.err, dyn.err_info) == (AdiState.ERROR, code_of[status], bad_at), dyn
        await s.check()
        assert await s.pf_last_err() == (adi, int(code_of[status]))
        faults = [(f.sid, f.pasid, f.reason, f.write) for f in await s.iommu.drain_faults()]
        assert faults == [(s.sid, ctx.pasid, int(reason), False)], (hex(src), faults)
        log.info("ADI %d: read of 0x%x -> %s, %s completion", adi, src, reason.name, status.name)
        s.rc.fault_read_status = PcieCplStatus.UR
        s.model.spaces.unmapped_read_code = int(ErrorCode.CPL_UR)
        await _recover(s, adi)
    assert s.rc.stats["wr_fault"] == 0


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def nested_2m_leaves(dut: Any) -> None:
    s = AdiSystem(dut)
    await s.start()
    a = s.rng.randrange(s.num_adi)
    # 2 MiB of memory, 2 MiB-aligned IOVA, GPA and host address: 2M leaves in both stages
    ctx = await s.add_adi(a, ring_log2=4, data_pages=512 - 4, align=1 << 21, iova=0x4000_0000, kind=DomainKind.NESTED)
    assert ctx.size == 1 << 21
    fill_sources(s, a)
    half = ctx.data_size // 2
    descs = [random_desc(s, a, max_len=12000) for _ in range(6)]
    descs.append(Descriptor(Opcode.COPY, 12000, ctx.data + half - 12000, ctx.data + ctx.data_size - 12000, 0x2E57))
    await s.submit(a, descs)
    await s.check()
    for addr, write in ((ctx.data, False), (ctx.data + half, True), (ctx.cpl, True)):
        t = s.rc.iommu.translate(s.sid, ctx.pasid, addr, write)
        assert isinstance(t, Translation), t
        assert (t.pgtt, t.page_shift, t.hpa) == (Pgtt.NESTED, 21, ctx.hpa + addr - ctx.iova), (hex(addr), t)


@cocotb.test(timeout_time=100, timeout_unit="ms")
async def config_request_to_a_missing_function(dut: Any) -> None:
    """The endpoint is a single-function device: a config read of function 1 (which enumeration
    does not issue to a single-function device) is answered by the RTL with a UR completion; the
    root complex returns all ones; function 0 is unaffected."""
    s = AdiSystem(dut)
    await s.start()
    cpls: list[TlpFrame] = []

    def tap(f: TlpFrame, stream: str) -> bool:
        if stream == "tx_cpl_tlp":
            cpls.append(f)
        return False  # observe only: the completion still goes up the link (and is sampled)

    me = PcieId.from_int(s.sid)
    s.ep.tap = tap
    try:
        data = await s.rc.config_read(PcieId(me.bus, me.device, 1), 0, 4)
    finally:
        s.ep.tap = None
    assert bytes(data) == b"\xff" * 4, data
    assert len(cpls) == 1, cpls
    status, ctype = (cpls[0].hdr >> 77) & 0x7, (cpls[0].hdr >> 120) & 0xFF
    assert (status, ctype) == (int(PcieCplStatus.UR), 0x0A), (status, hex(ctype))  # UR, Cpl without data
    ids = int.from_bytes(await s.rc.config_read(me, 0, 4), "little")
    assert ids == int.from_bytes(await s.bus.cfg_read(s.sid, 0, 4), "little") != 0xFFFF_FFFF


@pytest.mark.system
def test_adi_directed() -> None:
    run_rtl("ep_top", test_module=__name__, parameters={"NumAdi": 4})
