"""PF driver migration API (quiesce / save / load) over the registers of the fake endpoint."""

from __future__ import annotations

import dataclasses

import pytest

from siov_sim.sw.bus import MsiMessage
from siov_sim.sw.driver import AdiConfig, AdiSnapshot, AdiState, PfError
from siov_sim.sw.driver.abi import Cmd, ErrorCode
from siov_sim.sw.regs import AdiPage

from .stack import Stack, build, run

pytestmark = pytest.mark.sw
CFG = AdiConfig(ring_base=0x4000, ring_size=16, cpl_base=0x8000, pasid=7, pmr=True, rx_base=0xC000,
                rx_slots=8, rx_slot_bytes=256)  # fmt: skip
IMS = MsiMessage(0xFEE0_1000, 0x31)


async def page(st: Stack, adi: int) -> list[int]:
    return [st.host.dev.adi_read(adi, off) for off in range(0, 0x58, 4)]


async def running(st: Stack, adi: int) -> None:
    """ADI with configuration, IMS (masked, pending), switch port, state from the model."""
    ctl = st.pf.adi
    await ctl.configure(adi, CFG)
    await ctl.set_ims(adi, IMS, masked=True)
    await ctl.set_switch_port(adi, 5, 9, send=True, recv=False)
    await ctl.enable(adi)
    d = st.host.dev.model.adis[adi].dyn
    d.head, d.tail, d.rx_head, d.rx_tail, d.cnt_desc, d.cnt_bytes = 3, 3, 2, 5, 0xFFFF_FFF0, 1234
    d.ims_pending = True


def test_quiesce_save_load_roundtrip() -> None:
    async def body() -> None:
        st = await build(num_adis=4)
        ctl = st.pf.adi
        await running(st, 0)
        assert await ctl.quiesce(0) is AdiState.ENABLED
        assert st.host.dev.adis[0].state is AdiState.DISABLED
        snap = await ctl.save(0)
        assert snap == AdiSnapshot(CFG, IMS, True, True, 5, 9, True, False, AdiState.ENABLED, 0, 0,
                                   3, 3, 2, 5, 0xFFFF_FFF0, 1234)  # fmt: skip
        snap = AdiSnapshot.unpack(snap.pack())
        other = MsiMessage(0xFEE0_2000, 0x77)
        await ctl.load(2, snap, pasid=99, ims=other)
        got = await ctl.save(2, AdiState.ENABLED)
        assert got == dataclasses.replace(snap, cfg=dataclasses.replace(CFG, pasid=99), ims=other)
        assert st.host.dev.adis[2].state is AdiState.DISABLED
        await ctl.enable(2)
        assert st.host.dev.adis[2].state is AdiState.ENABLED

    run(body())


def test_load_refused_into_busy_enabled_or_errored_adi_changes_nothing() -> None:
    async def body() -> None:
        st = await build(num_adis=4)
        ctl = st.pf.adi
        await running(st, 0)
        await ctl.quiesce(0)
        snap = await ctl.save(0)
        # ENABLED target
        await ctl.configure(1, dataclasses.replace(CFG, ring_base=0x10_0000))
        await ctl.enable(1)
        before = await page(st, 1)
        with pytest.raises(PfError, match="cannot be loaded"):
            await ctl.load(1, snap, pasid=3)
        assert await page(st, 1) == before
        # busy target (a request outstanding, DRAINING)
        st.host.dev.stalled.add(1)
        st.host.dev.model.adis[1].dyn.tail = 1
        st.host.dev._pump()
        ctl.poll_limit = 3
        with pytest.raises(PfError, match="did not quiesce"):
            await ctl.quiesce(1)
        before = await page(st, 1)
        with pytest.raises(PfError, match="cannot be loaded"):
            await ctl.load(1, snap, pasid=3)
        assert await page(st, 1) == before
        st.host.dev.release(1)
        assert await ctl.quiesce(1) is AdiState.ENABLED  # was ENABLED when the first quiesce began
        # a DISABLED target with an error left (drained ERROR ADI): must be reset first
        with pytest.raises(PfError, match="CPL_UR"):
            await ctl.enable(1)  # its pending descriptor is fetched from an unmapped address
        st.host.dev.model.command(1, Cmd.DRAIN)  # DRAIN of an ERROR ADI: DISABLED, error kept
        assert st.host.dev.adis[1].state is AdiState.DISABLED and st.host.dev.adis[1].err
        with pytest.raises(PfError, match="cannot be loaded"):
            await ctl.load(1, snap, pasid=3)
        await ctl.reset(1)
        await ctl.load(1, snap, pasid=3)

    run(body())


def test_quiesce_of_error_adi_stays_error_and_loads_as_error() -> None:
    async def body() -> None:
        st = await build(num_adis=4)
        ctl = st.pf.adi
        await running(st, 0)
        await st.host.dev.mmio_write(st.pf.portal_addr(0), (40).to_bytes(4, "little"))  # beyond ring
        assert st.host.dev.adis[0].state is AdiState.ERROR
        assert await ctl.quiesce(0) is AdiState.ERROR
        assert st.host.dev.adis[0].state is AdiState.ERROR
        snap = await ctl.save(0)
        assert snap.state is AdiState.ERROR and snap.error == ErrorCode.DOORBELL_RANGE and snap.err_info == 40
        await ctl.load(3, snap, pasid=4)
        assert st.host.dev.adis[3].state is AdiState.ERROR and st.host.dev.adis[3].err == ErrorCode.DOORBELL_RANGE
        assert AdiPage.ERR_INFO.field("index").get(st.host.dev.adi_read(3, AdiPage.ERR_INFO.offset)) == 40
        with pytest.raises(PfError, match="did not enable"):
            await ctl.enable(3)
        await ctl.reset(3)  # the guest's reset recovers it, as on the source

    run(body())


def test_save_needs_a_quiesced_adi_and_load_checks_the_snapshot() -> None:
    async def body() -> None:
        st = await build(num_adis=4)
        ctl = st.pf.adi
        await running(st, 0)
        with pytest.raises(PfError, match="without quiesce"):
            await ctl.save(0)
        with pytest.raises(PfError, match="not quiesced"):
            await ctl.save(0, AdiState.ENABLED)
        await ctl.quiesce(0)
        snap = await ctl.save(0)
        before = await page(st, 2)
        for bad, msg in (
            (dataclasses.replace(snap, head=16), "outside its ring"),
            (dataclasses.replace(snap, rx_tail=8), "outside its ring"),
            (dataclasses.replace(snap, state=AdiState.ERROR), "with error"),
            (dataclasses.replace(snap, error=5), "with error"),
            (dataclasses.replace(snap, state=AdiState.DRAINING), "not a quiesced state"),
            (dataclasses.replace(snap, cfg=dataclasses.replace(CFG, ring_size=12)), "power of two"),
        ):
            with pytest.raises(PfError, match=msg):
                await ctl.load(2, bad, pasid=1)
            assert await page(st, 2) == before
        with pytest.raises(PfError, match="PASID"):
            await ctl.load(2, snap, pasid=1 << 20)
        # an unmasked pending interrupt is sent by the load (its final mask write)
        sent: list[MsiMessage] = []
        msg = st.host.alloc_irq(sent.append)
        await ctl.load(2, dataclasses.replace(snap, ims_masked=False), pasid=1, ims=msg)
        assert sent == [msg] and not st.host.dev.model.adis[2].dyn.ims_pending

    run(body())
