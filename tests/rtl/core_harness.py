"""ep_core with its real DMA engine: register bus driver + TLP-level host (tests/rtl/tlp_host.py)
+ the golden ADI model. Used by test_ep_core_dma.py and the DMA efficiency benchmark."""

from __future__ import annotations

import random
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from siov_sim.model.adi import AdiDevice, Cmd, Descriptor
from siov_sim.sw.regs import ADIS_BASE, ADIS_STRIDE, SWITCH_BASE, AdiPage, Bar0, PortalPage, Reg
from tests.rtl.adi_harness import Spaces
from tests.rtl.tlp_host import TlpHost

Dut = Any


class CoreTb:
    def __init__(self, dut: Dut, *, latency: int = 40, split: bool = False, backpressure: bool = False) -> None:
        self.dut = dut
        self.rng = random.Random(cocotb.RANDOM_SEED)
        self.num_adi = int(dut.NumAdi.value)
        Clock(dut.clk, 4, unit="ns").start()
        for name, v in (
            ("s_reg_valid", 0),
            ("s_reg_bar", 0),
            ("s_reg_addr", 0),
            ("s_reg_write", 0),
            ("s_reg_wdata", 0),
            ("s_reg_be", 0xF),
            ("cfg_requester_id", 0x0100),
            ("cfg_bus_master_en", 1),
            ("cfg_max_payload", 1),
            ("cfg_max_read_req", 2),
            ("cfg_ext_tag_en", 1),
            ("cfg_pasid_en", 1),
            ("cfg_pasid_exec_en", 0),
            ("cfg_pasid_priv_en", 0),
            ("cfg_msix_en", 1),
            ("cfg_msix_func_mask", 0),
            ("cfg_sys_page_shift", 12),
        ):
            getattr(dut, name).value = v
        self.spaces = Spaces()
        self.host = TlpHost(dut, self.spaces, self.rng, latency=latency, split=split, backpressure=backpressure)

    async def start(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        cocotb.start_soon(self.host.run())
        for _ in range(1000):
            if await self.rd(Bar0.PF_STATUS) & 1:
                break
            await ClockCycles(self.dut.clk, 32)
        await self.wr(Bar0.PF_CTRL, 1)

    async def access(self, bar: int, addr: int, write: bool, data: int = 0) -> int:
        d = self.dut
        d.s_reg_valid.value = 1
        d.s_reg_bar.value = bar
        d.s_reg_addr.value = addr
        d.s_reg_write.value = int(write)
        d.s_reg_wdata.value = data
        while True:
            await RisingEdge(d.clk)
            if d.s_reg_ready.value:
                break
        d.s_reg_valid.value = 0
        for _ in range(10000):
            await ReadOnly()
            if d.m_reg_rsp_valid.value:
                value = int(d.m_reg_rsp_rdata.value.to_unsigned())
                await RisingEdge(d.clk)
                return value
            await RisingEdge(d.clk)
        raise AssertionError("no register response")

    async def rd(self, reg: Reg, base: int = 0) -> int:
        return await self.access(0, base + reg.offset, False)

    async def wr(self, reg: Reg, value: int, base: int = 0) -> None:
        await self.access(0, base + reg.offset, True, value)

    def page(self, adi: int) -> int:
        return ADIS_BASE + adi * ADIS_STRIDE

    async def adi_rd(self, adi: int, reg: Reg) -> int:
        return await self.rd(reg, self.page(adi))

    async def sw_wr(self, addr: int, value: int) -> None:
        await self.access(0, SWITCH_BASE + 4 * addr, True, value)

    async def setup_adi(
        self,
        model: AdiDevice,
        adi: int,
        *,
        pasid: int,
        ring: int,
        log2_entries: int,
        cpl: int,
        ims: tuple[int, int] = (0, 0),
        ims_mask: bool = True,
        group: int = 0,
        port_addr: int = 0,
        send: bool = False,
        recv: bool = False,
        rx: int = 0,
        rx_log2: int = 0,
        slot_log2: int = 11,
    ) -> None:
        pg = self.page(adi)
        for reg, v in (
            (AdiPage.RING_BASE_LO, ring & 0xFFFF_FFFF),
            (AdiPage.RING_BASE_HI, ring >> 32),
            (AdiPage.RING_SIZE, log2_entries),
            (AdiPage.CPL_BASE_LO, cpl & 0xFFFF_FFFF),
            (AdiPage.CPL_BASE_HI, cpl >> 32),
            (AdiPage.RX_BASE_LO, rx & 0xFFFF_FFFF),
            (AdiPage.RX_BASE_HI, rx >> 32),
            (AdiPage.RX_CFG, rx_log2 | slot_log2 << 8),
            (AdiPage.PASID, pasid | 1 << 31),
            (AdiPage.IMS_ADDR_LO, ims[0]),
            (AdiPage.IMS_DATA, ims[1]),
            (AdiPage.IMS_CTRL, int(ims_mask)),
            (AdiPage.SW_PORT, group | port_addr << 16 | int(send) << 30 | int(recv) << 31),
            (AdiPage.CMD, 1),
        ):
            await self.wr(reg, v, pg)
        c = model.adis[adi].cfg
        c.ring_base, c.log2_entries, c.cpl_base = ring, log2_entries, cpl
        c.rx_base, c.rx_log2_slots, c.rx_log2_slot_bytes = rx, rx_log2, slot_log2
        c.ims_addr, c.ims_data, c.ims_mask = ims[0], ims[1], ims_mask
        c.group, c.port_addr, c.send_en, c.recv_en = group, port_addr, send, recv
        model.set_pasid(adi, pasid)
        model.command(adi, Cmd.ENABLE)

    def write_descs(self, model: AdiDevice, adi: int, descs: list[Descriptor], start: int = 0) -> int:
        cfg = model.adis[adi].cfg
        pasid = model.space(adi)
        idx = start
        for desc in descs:
            for sp in (self.spaces, model.mem):
                sp.write(pasid, cfg.ring_base + 32 * idx, desc.pack())  # type: ignore[attr-defined]
            idx = (idx + 1) % (1 << cfg.log2_entries)
        return idx

    async def doorbell(self, model: AdiDevice, adi: int, tail: int) -> None:
        await self.access(1, (adi << 12) + PortalPage.DOORBELL.offset, True, tail)
        model.doorbell(adi, tail)
