"""ep_adi_state: per-ADI RAM state, init walk, doorbells, run queue and the engine op protocol
(BEGIN / COMPLETE / RX_ALLOC / RX_DONE), driven directly."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from siov_sim.model.adi import AdiState, ErrorCode
from siov_sim.sw.regs import ADIS_STRIDE, AdiPage, PortalPage, Reg
from siov_sim.tb.runner import run_rtl

Dut = Any
BEGIN, COMPLETE, RX_ALLOC, RX_DONE = range(4)


@dataclass
class Rsp:
    ok: int
    full: int
    big: int
    addr: int
    cpl: int
    idx: int
    prfx: int
    port: int


class Tb:
    def __init__(self, dut: Dut) -> None:
        self.dut = dut
        self.rng = random.Random(cocotb.RANDOM_SEED)
        self.n = int(dut.NumAdi.value)
        Clock(dut.clk, 4, unit="ns").start()
        for s in (
            "s_csr_req",
            "s_csr_addr",
            "s_csr_wr",
            "s_csr_wdata",
            "s_portal_valid",
            "s_portal_adi",
            "s_portal_off",
            "s_portal_wr",
            "s_portal_wdata",
            "m_run_ready",
            "s_op_valid",
            "s_op_code",
            "s_op_adi",
            "s_op_err",
            "s_op_bytes",
            "s_op_irq",
            "s_op_group",
            "cfg_pasid_priv_en",
        ):
            getattr(dut, s).value = 0
        dut.s_csr_biten.value = 0xFFFF_FFFF
        dut.cfg_pasid_en.value = 1
        dut.m_ims_ready.value = 1
        self.ims: list[tuple[int, int]] = []
        self.events: list[str] = []
        cocotb.start_soon(self._mon())

    async def _mon(self) -> None:
        d = self.dut
        while True:
            await RisingEdge(d.clk)
            if d.m_ims_valid.value and d.m_ims_ready.value:
                self.ims.append((d.m_ims_addr.value.to_unsigned(), d.m_ims_data.value.to_unsigned()))
            if d.evt_adi_error.value:
                self.events.append("err")
            if d.evt_drain_done.value:
                self.events.append("drain")

    async def start(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 2)
        self.dut.rst.value = 0
        cycles = 0
        while not self.dut.init_done.value:
            await ClockCycles(self.dut.clk, 8)
            cycles += 8
        assert cycles >= self.n - 8, "init walk visits every ADI"

    async def _ack(self, sig: str) -> None:
        for _ in range(50):
            await RisingEdge(self.dut.clk)
            if getattr(self.dut, sig).value:
                return
        raise AssertionError(f"no {sig}")

    async def wr(self, adi: int, reg: Reg, value: int) -> None:
        d = self.dut
        d.s_csr_req.value, d.s_csr_wr.value = 1, 1
        d.s_csr_addr.value, d.s_csr_wdata.value = adi * ADIS_STRIDE + reg.offset, value
        await RisingEdge(d.clk)
        d.s_csr_req.value = 0
        await self._ack("s_csr_wr_ack")

    async def rd(self, adi: int, reg: Reg) -> int:
        d = self.dut
        d.s_csr_req.value, d.s_csr_wr.value = 1, 0
        d.s_csr_addr.value = adi * ADIS_STRIDE + reg.offset
        await RisingEdge(d.clk)
        d.s_csr_req.value = 0
        await self._ack("s_csr_rd_ack")
        return int(d.s_csr_rdata.value.to_unsigned())

    async def portal(self, adi: int, reg: Reg, value: int | None = None) -> int:
        d = self.dut
        d.s_portal_valid.value, d.s_portal_adi.value, d.s_portal_off.value = 1, adi, reg.offset
        d.s_portal_wr.value, d.s_portal_wdata.value = int(value is not None), value or 0
        while True:
            await RisingEdge(d.clk)
            if d.s_portal_ready.value:
                break
        d.s_portal_valid.value = 0
        await self._ack("m_portal_ack")
        return int(d.m_portal_rdata.value.to_unsigned())

    async def pop_run(self) -> int | None:
        d = self.dut
        for _ in range(4):  # the run FIFO (RAM-based when deep) takes a few cycles
            await RisingEdge(d.clk)
            if d.m_run_valid.value:
                break
        else:
            return None
        adi = d.m_run_adi.value.to_unsigned()
        d.m_run_ready.value = 1
        await RisingEdge(d.clk)
        d.m_run_ready.value = 0
        return int(adi)

    async def op(self, code: int, adi: int, *, err: int = 0, nbytes: int = 0, irq: int = 0, group: int = 0) -> Rsp:
        d = self.dut
        d.s_op_valid.value, d.s_op_code.value, d.s_op_adi.value = 1, code, adi
        d.s_op_err.value, d.s_op_bytes.value, d.s_op_irq.value, d.s_op_group.value = err, nbytes, irq, group
        while True:
            await RisingEdge(d.clk)
            if d.s_op_ready.value:
                break
        d.s_op_valid.value = 0
        await self._ack("m_op_rsp_valid")
        v = {
            k: int(getattr(d, f"m_op_rsp_{k}").value)
            for k in ("ok", "full", "big", "addr", "cpl", "idx", "prfx", "port")
        }
        return Rsp(**v)

    async def state(self, adi: int) -> dict[str, int]:
        return AdiPage.STATUS.unpack(await self.rd(adi, AdiPage.STATUS))


async def configure(
    tb: Tb,
    adi: int,
    *,
    ring: int,
    log2: int,
    pasid: int,
    port: int = 0,
    rx: int = 0,
    rx_log2: int = 2,
    slot_log2: int = 8,
) -> None:
    for reg, v in (
        (AdiPage.RING_BASE_LO, ring),
        (AdiPage.RING_SIZE, log2),
        (AdiPage.CPL_BASE_LO, ring + 0x8000),
        (AdiPage.PASID, 1 << 31 | pasid),
        (AdiPage.SW_PORT, port),
        (AdiPage.RX_BASE_LO, rx),
        (AdiPage.RX_CFG, rx_log2 | slot_log2 << 8),
        (AdiPage.IMS_ADDR_LO, 0xFEE0_0000 | adi << 4),
        (AdiPage.IMS_DATA, adi),
        (AdiPage.IMS_CTRL, 0),
        (AdiPage.CMD, 1),
    ):
        await tb.wr(adi, reg, v)


@cocotb.test()
async def run_queue_and_ops(dut: Dut) -> None:
    tb = Tb(dut)
    await tb.start()
    a, b = 1, tb.n - 1
    await configure(tb, a, ring=0x10000, log2=2, pasid=0xABC)
    await configure(tb, b, ring=0x20000, log2=3, pasid=0x123)
    assert await tb.pop_run() is None
    await tb.portal(a, PortalPage.DOORBELL, 3)
    await tb.portal(b, PortalPage.DOORBELL, 1)
    await tb.portal(a, PortalPage.DOORBELL, 3)  # no new work: not queued twice
    assert [await tb.pop_run(), await tb.pop_run(), await tb.pop_run()] == [a, b, None]
    r = await tb.op(BEGIN, a)
    assert (r.ok, r.addr, r.cpl, r.idx, r.prfx) == (1, 0x10000, 0x18000, 0, 0x9100_0ABC)
    assert await tb.portal(a, PortalPage.HEAD) == 1
    assert (await tb.state(a))["busy"] == 1
    assert await tb.pop_run() is None  # one descriptor in flight per ADI: not requeued yet
    await tb.op(COMPLETE, a, nbytes=100, irq=1)
    assert await tb.pop_run() == a  # more work: requeued on COMPLETE
    r = await tb.op(BEGIN, a)
    assert (r.ok, r.addr, r.idx) == (1, 0x10020, 1)
    await tb.op(COMPLETE, a, nbytes=28)
    assert await tb.rd(a, AdiPage.CNT_DESC) == 2 and await tb.rd(a, AdiPage.CNT_BYTES) == 128
    await ClockCycles(dut.clk, 4)
    assert tb.ims == [(0xFEE0_0000 | a << 4, a)]
    # an error on the in-flight descriptor halts the ADI and drops it from the queue
    assert await tb.pop_run() == a
    r = await tb.op(BEGIN, a)
    await tb.op(COMPLETE, a, err=ErrorCode.CPL_CA, nbytes=r.idx)
    st = await tb.state(a)
    assert (st["state"], st["err"], st["busy"]) == (AdiState.ERROR, ErrorCode.CPL_CA, 0)
    assert await tb.rd(a, AdiPage.ERR_INFO) == 2 and tb.events == ["err"]
    assert int(dut.last_err_adi.value) == a and int(dut.last_err_code.value) == ErrorCode.CPL_CA
    await ClockCycles(dut.clk, 4)
    assert len(tb.ims) == 2  # errors always interrupt
    # b (popped at the start, its context not yet at BEGIN) is drained meanwhile: no work
    await tb.wr(b, AdiPage.CMD, 2)
    assert (await tb.state(b))["state"] == AdiState.DISABLED and tb.events == ["err", "drain"]
    r = await tb.op(BEGIN, b)
    assert r.ok == 0
    # drain with a request outstanding: DRAINING until COMPLETE
    await tb.wr(b, AdiPage.CMD, 3)
    await tb.wr(b, AdiPage.CMD, 1)
    await tb.portal(b, PortalPage.DOORBELL, 2)
    assert await tb.pop_run() == b
    await tb.op(BEGIN, b)
    await tb.wr(b, AdiPage.CMD, 2)
    assert (await tb.state(b))["state"] == AdiState.DRAINING
    await tb.op(COMPLETE, b, nbytes=1)
    assert (await tb.state(b))["state"] == AdiState.DISABLED and tb.events[-1] == "drain"
    assert await tb.pop_run() is None


@cocotb.test()
async def receive_ring_ops(dut: Dut) -> None:
    tb = Tb(dut)
    await tb.start()
    r_adi = tb.n - 2
    await configure(tb, r_adi, ring=0x30000, log2=2, pasid=0x55, port=1 << 31 | 7, rx=0x40000, rx_log2=2, slot_log2=8)
    r = await tb.op(RX_ALLOC, r_adi, group=6, nbytes=16)
    assert (r.ok, r.full, r.big) == (0, 0, 0), "wrong group is denied"
    r = await tb.op(RX_ALLOC, r_adi, group=7, nbytes=241)
    assert (r.ok, r.big) == (0, 1), "payload + 16 > slot"
    for slot in range(3):
        r = await tb.op(RX_ALLOC, r_adi, group=7, nbytes=240)
        assert (r.ok, r.addr, r.idx, r.prfx) == (1, 0x40000 + slot * 256, slot, 0x9100_0055)
        assert await tb.portal(r_adi, PortalPage.RX_TAIL) == slot  # published only by RX_DONE
        await tb.op(RX_DONE, r_adi)
    r = await tb.op(RX_ALLOC, r_adi, group=7, nbytes=1)
    assert (r.ok, r.full) == (0, 1)
    await tb.portal(r_adi, PortalPage.RX_DOORBELL, 2)
    r = await tb.op(RX_ALLOC, r_adi, group=7, nbytes=1)
    assert (r.ok, r.idx) == (1, 3)
    await ClockCycles(dut.clk, 4)
    assert len(tb.ims) == 3
    # doorbell beyond the receive ring is an error
    await tb.portal(r_adi, PortalPage.RX_DOORBELL, 4)
    assert (await tb.state(r_adi))["err"] == ErrorCode.DOORBELL_RANGE


@cocotb.test()
async def ims_deferred_while_blocked(dut: Dut) -> None:
    """IMS FIFO held (as while Bus Master Enable is off): events never stall the pipe; the
    overflow sets pending and the IMS scan sends it once the FIFO drains."""
    tb = Tb(dut)
    await tb.start()
    adis = [0, 1, 2, tb.n - 1]
    for a in adis:
        await configure(tb, a, ring=0x10000 * (a + 1), log2=2, pasid=a + 1)
    dut.m_ims_ready.value = 0
    for _ in range(2):
        for a in adis:
            await tb.op(RX_DONE, a)  # each raises the ADI's IMS (the FIFO holds 4)
    pend = [AdiPage.IMS_CTRL.unpack(await tb.rd(a, AdiPage.IMS_CTRL))["pending"] for a in adis]
    assert pend == [1, 1, 1, 1], pend
    dut.m_ims_ready.value = 1
    await ClockCycles(dut.clk, 40 + 4 * tb.n)
    assert sorted(tb.ims) == sorted((0xFEE0_0000 | a << 4, a) for a in adis for _ in range(2))
    pend = [AdiPage.IMS_CTRL.unpack(await tb.rd(a, AdiPage.IMS_CTRL))["pending"] for a in adis]
    assert pend == [0, 0, 0, 0], pend


@cocotb.test()
async def pasid_enable_cleared(dut: Dut) -> None:
    """PASID Enable cleared while ADIs run with a PASID: they stop in ERROR PASID_DISABLED (PF
    event, IMS) and never BEGIN a descriptor without their prefix; an ADI enabled without PASID runs on."""
    tb = Tb(dut)
    await tb.start()
    a, b, c = 0, 1, tb.n - 1
    dut.cfg_pasid_en.value = 0
    await configure(tb, c, ring=0x50000, log2=2, pasid=0x77)  # enabled while PASID is off: no prefix
    dut.cfg_pasid_en.value = 1
    await configure(tb, a, ring=0x10000, log2=2, pasid=0x11)
    await configure(tb, b, ring=0x20000, log2=2, pasid=0x22)
    await tb.portal(a, PortalPage.DOORBELL, 2)
    assert await tb.pop_run() == a
    r = await tb.op(BEGIN, a)
    assert (r.ok, r.prfx) == (1, 0x9100_0011)
    await tb.op(COMPLETE, a, nbytes=8)
    assert await tb.pop_run() == a  # one more descriptor queued
    dut.cfg_pasid_en.value = 0
    r = await tb.op(BEGIN, a)  # the engine's BEGIN may come before the scan reaches a
    assert r.ok == 0, f"descriptor begun without the PASID prefix (prfx {r.prfx:#x})"
    await ClockCycles(dut.clk, 40 + 4 * tb.n)
    for adi in (a, b):
        st = await tb.state(adi)
        assert (st["state"], st["err"]) == (AdiState.ERROR, ErrorCode.PASID_DISABLED), (adi, st)
    assert tb.events == ["err", "err"]
    assert int(dut.last_err_code.value) == ErrorCode.PASID_DISABLED
    assert sorted(m[1] for m in tb.ims) == [a, b]  # errors always interrupt
    # c never used a prefix: it keeps running
    assert (await tb.state(c))["state"] == AdiState.ENABLED
    await tb.portal(c, PortalPage.DOORBELL, 1)
    assert await tb.pop_run() == c
    r = await tb.op(BEGIN, c)
    assert (r.ok, r.prfx) == (1, 0)
    # recovery: RESET, PASID back on, ENABLE
    dut.cfg_pasid_en.value = 1
    await tb.wr(a, AdiPage.CMD, 3)
    await tb.wr(a, AdiPage.CMD, 1)
    assert (await tb.state(a))["state"] == AdiState.ENABLED


QUIESCE = 4


@cocotb.test()
async def quiesce_at_descriptor_boundary(dut: Dut) -> None:
    """QUIESCE with a descriptor in flight: DRAINING (no BEGIN granted) until its COMPLETE, then
    DISABLED + drain-done; status.flush until its IMS message left the FIFO; ENABLE resumes at
    the next descriptor (abort path). An error on that descriptor ends the quiesce in ERROR."""
    tb = Tb(dut)
    await tb.start()
    a, b = 0, tb.n - 1
    await configure(tb, a, ring=0x10000, log2=3, pasid=0x11)
    await tb.portal(a, PortalPage.DOORBELL, 5)
    assert await tb.pop_run() == a
    r = await tb.op(BEGIN, a)
    assert (r.ok, r.idx) == (1, 0)
    await tb.wr(a, AdiPage.CMD, QUIESCE)
    # a quiescing ADI never begins another descriptor, even if the engine asks (the RTL's
    # no-DMA-while-quiescing assertion checks the same on every BEGIN)
    assert (await tb.op(BEGIN, a)).ok == 0
    st = await tb.state(a)
    assert (st["state"], st["busy"]) == (AdiState.DRAINING, 1) and tb.events == []
    assert await tb.portal(a, PortalPage.HEAD) == 1
    # a restore write (load) is refused while the request is outstanding
    await tb.wr(a, AdiPage.HEAD, 4)
    assert await tb.rd(a, AdiPage.HEAD) == 1
    dut.m_ims_ready.value = 0  # hold the interrupt path: the message waits in the FIFO
    await tb.op(COMPLETE, a, nbytes=64, irq=1)
    st = await tb.state(a)
    assert (st["state"], st["busy"], st["flush"], st["err"]) == (AdiState.DISABLED, 0, 1, 0)
    assert tb.events == ["drain"] and int(dut.last_drain_adi.value) == a and tb.ims == []
    dut.m_ims_ready.value = 1
    await ClockCycles(dut.clk, 4)
    assert tb.ims == [(0xFEE0_0000, a)] and (await tb.state(a))["flush"] == 0
    assert await tb.rd(a, AdiPage.CNT_DESC) == 1
    assert await tb.pop_run() is None
    # abort path: ENABLE resumes at head (descriptor 1), nothing repeated
    await tb.wr(a, AdiPage.CMD, 1)
    assert await tb.pop_run() == a
    r = await tb.op(BEGIN, a)
    assert (r.ok, r.idx) == (1, 1)
    # QUIESCE while the in-flight descriptor fails: ERROR (PF error event) + drain-done
    await tb.wr(a, AdiPage.CMD, QUIESCE)
    await tb.op(COMPLETE, a, err=ErrorCode.CPL_UR, nbytes=1)
    st = await tb.state(a)
    assert (st["state"], st["err"], st["busy"]) == (AdiState.ERROR, ErrorCode.CPL_UR, 0)
    assert tb.events == ["drain", "err", "drain"] and int(dut.last_err_code.value) == ErrorCode.CPL_UR
    assert await tb.rd(a, AdiPage.ERR_INFO) == 1
    # QUIESCE of an ERROR ADI with nothing outstanding: stays ERROR, done at once
    await tb.wr(a, AdiPage.CMD, QUIESCE)
    assert (await tb.state(a))["state"] == AdiState.ERROR and tb.events[-1] == "drain"
    # ERROR with a request outstanding (doorbell error while a descriptor runs): stays ERROR
    await configure(tb, b, ring=0x20000, log2=2, pasid=0x22)
    await tb.portal(b, PortalPage.DOORBELL, 2)
    assert await tb.pop_run() == b
    await tb.op(BEGIN, b)
    await tb.portal(b, PortalPage.DOORBELL, 7)  # beyond the ring
    await ClockCycles(dut.clk, 2)
    assert tb.events[-1] == "err"
    n = len(tb.events)
    await tb.wr(b, AdiPage.CMD, QUIESCE)
    st = await tb.state(b)
    assert (st["state"], st["busy"]) == (AdiState.ERROR, 1) and len(tb.events) == n
    await tb.op(COMPLETE, b, nbytes=8)
    st = await tb.state(b)
    assert (st["state"], st["busy"], st["err"]) == (AdiState.ERROR, 0, ErrorCode.DOORBELL_RANGE)
    assert tb.events[n:] == ["drain"]
    # QUIESCE of a DISABLED ADI: nothing to do, reported at once
    await tb.wr(2, AdiPage.CMD, QUIESCE)
    assert (await tb.state(2))["state"] == AdiState.DISABLED and tb.events[-1] == "drain"
    # an undefined command value does nothing
    await tb.wr(b, AdiPage.CMD, 7)
    assert (await tb.state(b))["state"] == AdiState.ERROR


@cocotb.test()
async def load_restore_writes(dut: Dut) -> None:
    """The dynamic registers take restore writes only while DISABLED with nothing outstanding;
    indices are masked to the ring, byte enables honoured, status takes DISABLED/ERROR only,
    ims_ctrl.pending can only be set; ENABLE after a load queues the ADI from the loaded head."""
    tb = Tb(dut)
    await tb.start()
    a = tb.n - 2
    await configure(tb, a, ring=0x30000, log2=4, pasid=0x33)  # enabled: restore writes ignored
    await tb.wr(a, AdiPage.TAIL, 9)
    await tb.wr(a, AdiPage.CNT_DESC, 5)
    await tb.wr(a, AdiPage.STATUS, AdiState.ERROR | 0x13 << 8)
    assert await tb.rd(a, AdiPage.TAIL) == 0 and await tb.rd(a, AdiPage.CNT_DESC) == 0
    assert (await tb.state(a))["state"] == AdiState.ENABLED
    await tb.wr(a, AdiPage.CMD, QUIESCE)
    await tb.wr(a, AdiPage.RX_CFG, 3 | 8 << 8)  # 8 receive slots
    for reg, value, want in (
        (AdiPage.HEAD, 0x1_0023, 3),  # masked to 16 entries
        (AdiPage.TAIL, 12, 12),
        (AdiPage.RX_IDX, 6 | 0x11 << 16, 6 | 1 << 16),  # rx_tail masked to 8 slots
        (AdiPage.CNT_DESC, 0xFFFF_FFFE, 0xFFFF_FFFE),
        (AdiPage.CNT_BYTES, 0x8000_0001, 0x8000_0001),
        (AdiPage.ERR_INFO, 0xBEEF, 0xBEEF),
    ):
        await tb.wr(a, reg, value)
        assert await tb.rd(a, reg) == want, reg
    dut.s_csr_biten.value = 0xFFFF_0000  # rx_tail only
    await tb.wr(a, AdiPage.RX_IDX, 0x0002_0005)
    dut.s_csr_biten.value = 0xFFFF_FFFF
    assert await tb.rd(a, AdiPage.RX_IDX) == 6 | 2 << 16
    for bad in (AdiState.ENABLED, AdiState.DRAINING):
        await tb.wr(a, AdiPage.STATUS, bad | 0x13 << 8)
        st = await tb.state(a)
        assert (st["state"], st["err"]) == (AdiState.DISABLED, 0), bad
    await tb.wr(a, AdiPage.IMS_CTRL, 1 | 2)  # masked, pending set
    assert AdiPage.IMS_CTRL.unpack(await tb.rd(a, AdiPage.IMS_CTRL)) == {"mask": 1, "pending": 1}
    await tb.wr(a, AdiPage.IMS_CTRL, 1)  # writing 0 leaves it set
    assert AdiPage.IMS_CTRL.unpack(await tb.rd(a, AdiPage.IMS_CTRL))["pending"] == 1
    await tb.wr(a, AdiPage.IMS_CTRL, 0)  # unmask: the pending message is sent
    await ClockCycles(dut.clk, 4)
    assert tb.ims == [(0xFEE0_0000 | a << 4, a)]
    assert AdiPage.IMS_CTRL.unpack(await tb.rd(a, AdiPage.IMS_CTRL))["pending"] == 0
    # ENABLE from the loaded indices: work from head 3 to tail 12
    assert await tb.pop_run() is None
    await tb.wr(a, AdiPage.CMD, 1)
    assert await tb.pop_run() == a
    r = await tb.op(BEGIN, a)
    assert (r.ok, r.idx, r.addr, r.cpl) == (1, 3, 0x30000 + 3 * 32, 0x38000 + 3 * 16)
    await tb.op(COMPLETE, a, nbytes=3)
    assert await tb.rd(a, AdiPage.CNT_DESC) == 0xFFFF_FFFF
    assert await tb.rd(a, AdiPage.CNT_BYTES) == 0x8000_0004
    # load into ERROR: the ADI is in ERROR with the loaded reason, no PF error event, no ENABLE
    await tb.wr(a, AdiPage.CMD, QUIESCE)
    await tb.wr(a, AdiPage.CMD, 3)  # RESET
    n = len(tb.events)
    await tb.wr(a, AdiPage.STATUS, AdiState.ERROR | ErrorCode.CPL_CA << 8)
    st = await tb.state(a)
    assert (st["state"], st["err"]) == (AdiState.ERROR, ErrorCode.CPL_CA) and len(tb.events) == n
    await tb.wr(a, AdiPage.HEAD, 1)  # no longer DISABLED: ignored
    assert await tb.rd(a, AdiPage.HEAD) == 0
    await tb.wr(a, AdiPage.CMD, 1)
    assert (await tb.state(a))["state"] == AdiState.ERROR
    await tb.wr(a, AdiPage.CMD, 3)
    assert (await tb.state(a))["state"] == AdiState.DISABLED


@cocotb.test()
async def quiesce_receiver_with_send_in_flight(dut: Dut) -> None:
    """QUIESCE of a receiver while a SEND into it is between RX_ALLOC and RX_DONE: busy and
    DRAINING until RX_DONE publishes the slot (so the saved rx_tail includes it); meanwhile and
    afterwards (parked) RX_ALLOC drops (full, not denied); ENABLE receives again. An RX_DONE
    with an error (payload write failed) ends the receive without publishing."""
    tb = Tb(dut)
    await tb.start()
    r_adi = 1
    await configure(tb, r_adi, ring=0x30000, log2=2, pasid=0x55, port=1 << 31 | 7, rx=0x40000, rx_log2=2, slot_log2=8)
    r = await tb.op(RX_ALLOC, r_adi, group=7, nbytes=16)
    assert (r.ok, r.idx) == (1, 0)
    assert (await tb.state(r_adi))["busy"] == 1  # an incoming SEND counts as busy
    await tb.wr(r_adi, AdiPage.RX_IDX, 3)  # not loadable while it is busy
    await tb.wr(r_adi, AdiPage.CMD, QUIESCE)
    st = await tb.state(r_adi)
    assert (st["state"], st["busy"]) == (AdiState.DRAINING, 1) and tb.events == []
    r = await tb.op(RX_ALLOC, r_adi, group=7, nbytes=16)  # another sender meanwhile: dropped
    assert (r.ok, r.full, r.big) == (0, 1, 0)
    r = await tb.op(RX_ALLOC, r_adi, group=6, nbytes=16)  # wrong group: still denied
    assert (r.ok, r.full) == (0, 0)
    await tb.op(RX_DONE, r_adi)
    st = await tb.state(r_adi)
    assert (st["state"], st["busy"]) == (AdiState.DISABLED, 0) and tb.events == ["drain"]
    assert await tb.rd(r_adi, AdiPage.RX_IDX) == 1 << 16  # rx_tail 1: the packet is in the state
    await ClockCycles(dut.clk, 4)
    assert len(tb.ims) == 1
    r = await tb.op(RX_ALLOC, r_adi, group=7, nbytes=16)  # parked: dropped
    assert (r.ok, r.full) == (0, 1)
    r = await tb.op(RX_ALLOC, r_adi, group=7, nbytes=241)  # too big is still an error
    assert (r.ok, r.big) == (0, 1)
    await tb.wr(r_adi, AdiPage.CMD, 1)  # resume
    r = await tb.op(RX_ALLOC, r_adi, group=7, nbytes=16)
    assert (r.ok, r.idx) == (1, 1)
    await tb.op(RX_DONE, r_adi, err=ErrorCode.CPL_UR)  # payload write failed: nothing published
    assert await tb.rd(r_adi, AdiPage.RX_IDX) == 1 << 16 and (await tb.state(r_adi))["busy"] == 0
    await ClockCycles(dut.clk, 4)
    assert len(tb.ims) == 1
    # DRAIN (not QUIESCE) also waits for the incoming SEND; a drained receiver denies
    r = await tb.op(RX_ALLOC, r_adi, group=7, nbytes=16)
    await tb.wr(r_adi, AdiPage.CMD, 2)
    assert (await tb.state(r_adi))["state"] == AdiState.DRAINING
    await tb.op(RX_DONE, r_adi)
    assert (await tb.state(r_adi))["state"] == AdiState.DISABLED and tb.events[-1] == "drain"
    r = await tb.op(RX_ALLOC, r_adi, group=7, nbytes=16)
    assert (r.ok, r.full) == (0, 0)


async def portal_raw(tb: Tb, adi: int, off: int, value: int | None = None) -> int:
    """A portal access at a raw offset (ep_core passes 0xFFF for an offset beyond the first 4 KiB)."""
    d = tb.dut
    d.s_portal_valid.value, d.s_portal_adi.value, d.s_portal_off.value = 1, adi, off
    d.s_portal_wr.value, d.s_portal_wdata.value = int(value is not None), value or 0
    while True:
        await RisingEdge(d.clk)
        if d.s_portal_ready.value:
            break
    d.s_portal_valid.value = 0
    await tb._ack("m_portal_ack")
    return int(d.m_portal_rdata.value.to_unsigned())


@cocotb.test()
async def portal_offsets_outside_registers(dut: Dut) -> None:
    """Portal offsets past the five portal registers (0x80 .. 0xFFF): acknowledged, read 0,
    writes ignored (no doorbell, no error); the doorbell at offset 0 works afterwards."""
    tb = Tb(dut)
    await tb.start()
    a = tb.n - 1
    await configure(tb, a, ring=0x10000, log2=2, pasid=0x11)
    for off in (0x80, 0x100, 0x800, 0xFFF & ~3, 0xFFF):
        assert await portal_raw(tb, a, off) == 0, hex(off)
        await portal_raw(tb, a, off, 3)  # would be a doorbell (offset 0 in bits 6:2)
    st = await tb.state(a)
    assert (st["state"], st["err"]) == (AdiState.ENABLED, 0) and tb.events == []
    assert await tb.rd(a, AdiPage.TAIL) == 0 and await tb.pop_run() is None
    await tb.portal(a, PortalPage.DOORBELL, 3)
    assert await tb.rd(a, AdiPage.TAIL) == 3 and await tb.pop_run() == a


@cocotb.test()
async def enable_without_pasid(dut: Dut) -> None:
    """ENABLE while PASID Enable is set but the ADI's PASID register is not valid: ERROR NO_PASID
    (PF error event), never ENABLED, so the ADI can never DMA without a prefix; with a valid
    PASID written after RESET it enables."""
    tb = Tb(dut)
    await tb.start()
    a = 1
    await tb.wr(a, AdiPage.RING_BASE_LO, 0x10000)
    await tb.wr(a, AdiPage.RING_SIZE, 2)
    await tb.wr(a, AdiPage.PASID, 0x42)  # valid bit (31) clear
    await tb.wr(a, AdiPage.CMD, 1)
    st = await tb.state(a)
    assert (st["state"], st["err"]) == (AdiState.ERROR, ErrorCode.NO_PASID) and tb.events == ["err"]
    assert int(dut.last_err_adi.value) == a and int(dut.last_err_code.value) == ErrorCode.NO_PASID
    await tb.portal(a, PortalPage.DOORBELL, 1)  # not ENABLED: ignored
    assert await tb.pop_run() is None
    await tb.wr(a, AdiPage.CMD, 3)
    await tb.wr(a, AdiPage.PASID, 1 << 31 | 0x42)
    await tb.wr(a, AdiPage.CMD, 1)
    assert (await tb.state(a))["state"] == AdiState.ENABLED
    await tb.portal(a, PortalPage.DOORBELL, 1)
    assert await tb.pop_run() == a
    assert (await tb.op(BEGIN, a)).prfx == 0x9100_0042


@cocotb.test()
async def first_error_kept_and_masked_interrupts(dut: Dut) -> None:
    """The first error reason of an ADI is kept when a later one arrives (doorbell error, then the
    in-flight descriptor fails); events on a masked IMS entry set pending instead of sending
    (RX_DONE, BEGIN and the scan after PASID Enable falls), and unmasking sends each once;
    a status restore write without its err byte enable leaves err alone."""
    tb = Tb(dut)
    await tb.start()
    a, b, c = 0, 1, 2
    await configure(tb, a, ring=0x10000, log2=2, pasid=0x11)
    await tb.portal(a, PortalPage.DOORBELL, 1)
    assert await tb.pop_run() == a
    await tb.op(BEGIN, a)
    await tb.portal(a, PortalPage.DOORBELL, 9)  # beyond the ring: ERROR, descriptor still out
    await tb.op(COMPLETE, a, err=ErrorCode.CPL_UR, nbytes=0)
    st = await tb.state(a)
    assert (st["state"], st["err"], st["busy"]) == (AdiState.ERROR, ErrorCode.DOORBELL_RANGE, 0)
    assert tb.events == ["err"], "a second error of an ADI already in ERROR is no new PF event"
    # status restore without the err byte: state loaded, err kept
    await tb.wr(a, AdiPage.CMD, 3)
    await tb.wr(a, AdiPage.STATUS, AdiState.DISABLED | ErrorCode.CPL_CA << 8)
    dut.s_csr_biten.value = 0x0000_00FF
    await tb.wr(a, AdiPage.STATUS, AdiState.ERROR | ErrorCode.CPL_UR << 8)
    dut.s_csr_biten.value = 0xFFFF_FFFF
    st = await tb.state(a)
    assert (st["state"], st["err"]) == (AdiState.ERROR, ErrorCode.CPL_CA)
    await ClockCycles(dut.clk, 4)
    assert tb.ims == [(0xFEE0_0000 | a << 4, a)]  # the failed descriptor's (unmasked) interrupt
    tb.ims.clear()
    # masked IMS: a receive completes, pending is set, nothing sent
    await configure(tb, b, ring=0x20000, log2=2, pasid=0x22, port=1 << 31 | 5, rx=0x40000)
    await configure(tb, c, ring=0x30000, log2=2, pasid=0x33)
    for adi in (b, c):
        await tb.wr(adi, AdiPage.IMS_CTRL, 1)
    r = await tb.op(RX_ALLOC, b, group=5, nbytes=16)
    assert r.ok == 1
    await tb.op(RX_DONE, b)
    await ClockCycles(dut.clk, 4)
    assert tb.ims == []
    assert AdiPage.IMS_CTRL.unpack(await tb.rd(b, AdiPage.IMS_CTRL)) == {"mask": 1, "pending": 1}
    # PASID Enable falls: c's BEGIN (engine first) and b's scan visit both hold the error IMS
    await tb.portal(c, PortalPage.DOORBELL, 1)
    assert await tb.pop_run() == c
    dut.cfg_pasid_en.value = 0
    assert (await tb.op(BEGIN, c)).ok == 0
    await ClockCycles(dut.clk, 40 + 4 * tb.n)
    for adi in (b, c):
        st = await tb.state(adi)
        assert (st["state"], st["err"]) == (AdiState.ERROR, ErrorCode.PASID_DISABLED), (adi, st)
        assert AdiPage.IMS_CTRL.unpack(await tb.rd(adi, AdiPage.IMS_CTRL))["pending"] == 1
    assert tb.ims == []
    for adi in (b, c):
        await tb.wr(adi, AdiPage.IMS_CTRL, 0)
    await ClockCycles(dut.clk, 8)
    assert sorted(m[1] for m in tb.ims) == [b, c]


ABORT = 5
ABORTED = 0x19  # ErrorCode.ABORTED: COMPLETE of a descriptor stopped by ABORT


@cocotb.test()
async def abort_command(dut: Dut) -> None:
    """ABORT (cmd 5): with a descriptor in flight the ADI goes DRAINING at once, the owning
    context is told (m_abort_valid/m_abort_adi pulse) and no BEGIN is granted; the COMPLETE with
    ABORTED ends it DISABLED + drain-done (last_drain), err_info = the ring index, no counters, no
    error state, no IMS unless the descriptor asked for one; ENABLE resumes after it. With nothing
    in flight it acts as DRAIN at once (ENABLED/DISABLED/ERROR -> DISABLED, err kept); it
    overrides a QUIESCE in progress; a SEND into its receive ring is waited for, not cut."""
    tb = Tb(dut)
    await tb.start()
    aborts: list[int] = []

    async def mon() -> None:
        while True:
            await RisingEdge(dut.clk)
            if dut.m_abort_valid.value:
                aborts.append(int(dut.m_abort_adi.value))

    cocotb.start_soon(mon())
    a, b = 1, tb.n - 1
    await configure(tb, a, ring=0x10000, log2=3, pasid=0x11)
    await tb.portal(a, PortalPage.DOORBELL, 4)
    assert await tb.pop_run() == a
    r = await tb.op(BEGIN, a)
    assert (r.ok, r.idx) == (1, 0)
    await tb.wr(a, AdiPage.CMD, ABORT)
    st = await tb.state(a)
    assert (st["state"], st["busy"]) == (AdiState.DRAINING, 1) and tb.events == []
    assert aborts == [a], aborts
    assert (await tb.op(BEGIN, a)).ok == 0  # nothing new begins
    await tb.op(COMPLETE, a, err=ABORTED, nbytes=r.idx)
    st = await tb.state(a)
    assert (st["state"], st["busy"], st["err"]) == (AdiState.DISABLED, 0, 0), st
    assert tb.events == ["drain"] and int(dut.last_drain_adi.value) == a
    assert await tb.rd(a, AdiPage.CNT_DESC) == 0 and await tb.rd(a, AdiPage.ERR_INFO) == 0
    assert await tb.portal(a, PortalPage.HEAD) == 1
    await ClockCycles(dut.clk, 4)
    assert tb.ims == [] and await tb.pop_run() is None
    # ENABLE resumes at the descriptor after the aborted one; INTR on an aborted one interrupts
    await tb.wr(a, AdiPage.CMD, 1)
    assert await tb.pop_run() == a
    r = await tb.op(BEGIN, a)
    assert (r.ok, r.idx) == (1, 1)
    await tb.wr(a, AdiPage.CMD, ABORT)
    await tb.op(COMPLETE, a, err=ABORTED, nbytes=r.idx, irq=1)
    await ClockCycles(dut.clk, 4)
    assert tb.ims == [(0xFEE0_0000 | a << 4, a)] and await tb.rd(a, AdiPage.ERR_INFO) == 1
    assert aborts == [a, a] and tb.events == ["drain", "drain"]
    # ABORT overrides a QUIESCE in progress: ends DISABLED, not parked-by-quiesce ERROR logic
    await tb.wr(a, AdiPage.CMD, 1)
    assert await tb.pop_run() == a
    r = await tb.op(BEGIN, a)
    assert (r.ok, r.idx) == (1, 2)
    await tb.wr(a, AdiPage.CMD, QUIESCE)
    st = await tb.state(a)
    assert (st["state"], st["busy"]) == (AdiState.DRAINING, 1), st
    await tb.wr(a, AdiPage.CMD, ABORT)
    await ClockCycles(dut.clk, 2)
    assert aborts == [a, a, a]
    await tb.op(COMPLETE, a, err=ABORTED, nbytes=r.idx)
    st = await tb.state(a)
    assert (st["state"], st["err"], st["flush"]) == (AdiState.DISABLED, 0, 0), st
    assert tb.events[-1] == "drain"
    # nothing in flight: at once, no abort pulse. ENABLED idle -> DISABLED; DISABLED stays
    n = len(tb.events)
    await tb.wr(a, AdiPage.CMD, 1)
    assert await tb.pop_run() == a  # queued (head != tail) but not begun
    await tb.wr(a, AdiPage.CMD, ABORT)
    assert (await tb.state(a))["state"] == AdiState.DISABLED and tb.events[n:] == ["drain"]
    assert (await tb.op(BEGIN, a)).ok == 0
    await tb.wr(a, AdiPage.CMD, ABORT)
    assert (await tb.state(a))["state"] == AdiState.DISABLED and tb.events[n:] == ["drain", "drain"]
    # ERROR with nothing in flight: DISABLED, the reason kept until RESET
    await configure(tb, b, ring=0x20000, log2=2, pasid=0x22)
    await tb.portal(b, PortalPage.DOORBELL, 7)  # beyond the ring: ERROR
    await tb.wr(b, AdiPage.CMD, ABORT)
    st = await tb.state(b)
    assert (st["state"], st["err"]) == (AdiState.DISABLED, ErrorCode.DOORBELL_RANGE), st
    assert tb.events[-1] == "drain"
    # a SEND into its receive ring (another ADI's descriptor) is waited for, not cut
    await tb.wr(b, AdiPage.CMD, 3)
    await configure(tb, b, ring=0x20000, log2=2, pasid=0x22, port=1 << 31 | 7, rx=0x40000)
    r = await tb.op(RX_ALLOC, b, group=7, nbytes=16)
    assert r.ok == 1
    n_ab = len(aborts)
    await tb.wr(b, AdiPage.CMD, ABORT)
    assert (await tb.state(b))["state"] == AdiState.DRAINING and len(aborts) == n_ab
    await tb.op(RX_DONE, b)
    assert (await tb.state(b))["state"] == AdiState.DISABLED and tb.events[-1] == "drain"
    assert aborts == [a, a, a]


@pytest.mark.rtl
@pytest.mark.parametrize("num_adi", [4, 1024])
def test_ep_adi_state(num_adi: int) -> None:
    run_rtl("ep_adi_state", test_module=__name__, parameters={"NumAdi": num_adi})
