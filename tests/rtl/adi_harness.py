"""Test harness for ep_adi: BAR0/BAR2 access, a Python stand-in for the DMA engine's client
interface (rtl/dma/README.md), and the golden model (siov_sim.model.adi) as the reference."""

from __future__ import annotations

import copy
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from siov_sim.model.adi import AdiDevice, DmaError
from siov_sim.model.mem import HostMemory
from siov_sim.sw.regs import ADIS_STRIDE, AdiPage, PortalPage, Reg

Dut = Any


@dataclass
class Spaces:
    """Host memory per PASID (None = no prefix); reads of ``faults`` pages fail with ``code``."""

    mems: dict[int | None, HostMemory] = field(default_factory=dict)
    faults: dict[tuple[int | None, int], int] = field(default_factory=dict)

    def mem(self, pasid: int | None) -> HostMemory:
        if pasid not in self.mems:
            self.mems[pasid] = HostMemory(0, 1 << 48)
        return self.mems[pasid]

    def read(self, pasid: int | None, addr: int, length: int) -> bytes:
        for page in range(addr >> 12, (addr + length - 1 >> 12) + 1):
            code = self.faults.get((pasid, page))
            if code:
                raise DmaError(code)
        return self.mem(pasid).read(addr, length)

    def write(self, pasid: int | None, addr: int, data: bytes) -> None:
        self.mem(pasid).write(addr, data)

    def clone(self) -> Spaces:
        return Spaces({k: copy.deepcopy(v) for k, v in self.mems.items()}, dict(self.faults))


class AdiTb:
    def __init__(self, dut: Dut, *, stress: bool = False, pasid_en: bool = True) -> None:
        self.dut = dut
        self.rng = random.Random(cocotb.RANDOM_SEED)
        self.num_adi = int(dut.NumAdi.value)
        self.B = int(dut.DataWidth.value) // 8
        self.stress = stress
        self.spaces = Spaces()
        self.writes: list[tuple[int | None, int, int]] = []  # (pasid, addr, len) in issue order
        self.ims: list[tuple[int, int]] = []
        self.rd_latency = 12
        # cycles m_rd_req_ready stays low after each accepted read request (0: off), as when
        # the DMA engine holds requests back for completion credits: a read's status can then
        # come back before the context's next read request is accepted
        self.rd_hold = 0
        # write fault injection: (pasid, addr, len) -> DMA error code of that write (0: it lands),
        # as the DMA engine reports a write it could not send (Bus Master Enable clear)
        self.wr_fault: Callable[[int | None, int, int], int] | None = None
        Clock(dut.clk, 4, unit="ns").start()
        for name in (
            "enable",
            "s_adis_req",
            "s_adis_wr",
            "s_adis_addr",
            "s_adis_wdata",
            "s_sw_req",
            "s_sw_wr",
            "s_sw_addr",
            "s_sw_wdata",
            "s_portal_valid",
            "s_portal_adi",
            "s_portal_off",
            "s_portal_wr",
            "s_portal_wdata",
            "s_rd_sts_valid",
            "s_rd_sts_tag",
            "s_rd_sts_error",
            "s_ram_wr_valid",
            "s_ram_wr_addr",
            "s_ram_wr_be",
            "s_ram_wr_data",
            "s_wr_sts_valid",
            "s_wr_sts_tag",
            "s_wr_sts_error",
            "s_ram_rd_cmd_valid",
            "s_ram_rd_cmd_addr",
            "cfg_pasid_priv_en",
        ):
            getattr(dut, name).value = 0
        dut.s_adis_biten.value = 0xFFFF_FFFF
        dut.cfg_pasid_en.value = int(pasid_en)
        dut.m_ims_ready.value = 1
        dut.m_rd_req_ready.value = 1
        dut.m_wr_req_ready.value = 1

    async def start(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        cocotb.start_soon(self._dma())
        while not self.dut.init_done.value:
            await ClockCycles(self.dut.clk, 16)
        self.dut.enable.value = 1

    # ------------------------------------------------------------------ register access
    async def _ack(self, *sigs: str) -> int:
        d = self.dut
        for _ in range(1000):
            await RisingEdge(d.clk)
            for s in sigs:
                if getattr(d, s).value:
                    return 1
        raise AssertionError(f"no {sigs}")

    async def adi_wr(self, adi: int, reg: Reg, value: int) -> None:
        d = self.dut
        d.s_adis_req.value = 1
        d.s_adis_wr.value = 1
        d.s_adis_addr.value = adi * ADIS_STRIDE + reg.offset
        d.s_adis_wdata.value = value
        await RisingEdge(d.clk)
        d.s_adis_req.value = 0
        await self._ack("s_adis_wr_ack")

    async def adi_rd(self, adi: int, reg: Reg) -> int:
        d = self.dut
        d.s_adis_req.value = 1
        d.s_adis_wr.value = 0
        d.s_adis_addr.value = adi * ADIS_STRIDE + reg.offset
        await RisingEdge(d.clk)
        d.s_adis_req.value = 0
        await self._ack("s_adis_rd_ack")
        return int(d.s_adis_rdata.value.to_unsigned())

    async def sw_wr(self, addr: int, value: int) -> None:
        d = self.dut
        d.s_sw_req.value = 1
        d.s_sw_wr.value = 1
        d.s_sw_addr.value = 4 * addr
        d.s_sw_wdata.value = value
        await RisingEdge(d.clk)
        d.s_sw_req.value = 0
        await self._ack("s_sw_wr_ack")

    async def portal(self, adi: int, reg: Reg, value: int | None = None) -> int:
        d = self.dut
        d.s_portal_valid.value = 1
        d.s_portal_adi.value = adi
        d.s_portal_off.value = reg.offset
        d.s_portal_wr.value = int(value is not None)
        d.s_portal_wdata.value = value or 0
        while True:
            await RisingEdge(d.clk)
            if d.s_portal_ready.value:
                break
        d.s_portal_valid.value = 0
        await self._ack("m_portal_ack")
        return int(d.m_portal_rdata.value.to_unsigned())

    # ------------------------------------------------------------------ DMA engine stand-in
    async def _dma(self) -> None:
        d = self.dut
        B = self.B
        rng = self.rng
        rd_jobs: deque[tuple[int, int, int, list[tuple[int, int, int]]]] = deque()  # due, tag, err, words
        cur_words: deque[tuple[int, int, int]] = deque()
        cur_tag = -1
        cur_err = 0
        wr_jobs: deque[tuple[int | None, int, int, int, bool, int, int]] = deque()
        wr_cmd: deque[int] = deque()
        wr_data: list[int] = []
        wr_cur: tuple[int | None, int, int, int, bool, int, int] | None = None
        wr_words = 0
        cycle = 0
        wr_ram_valid = False
        rd_sts_next: tuple[int, int] | None = None
        hold_until = 0
        while True:
            await RisingEdge(d.clk)
            cycle += 1
            # --- read requests
            if d.m_rd_req_valid.value and d.m_rd_req_ready.value:
                addr = d.m_rd_req_addr.value.to_unsigned()
                length = d.m_rd_req_len.value.to_unsigned()
                ram = d.m_rd_req_ram_addr.value.to_unsigned()
                pasid = d.m_rd_req_pasid.value.to_unsigned() if d.m_rd_req_pasid_valid.value else None
                tag = d.m_rd_req_tag.value.to_unsigned()
                words: list[tuple[int, int, int]] = []
                err = 0
                try:
                    data = self.spaces.read(pasid, addr, length)
                except DmaError as e:
                    err = e.code
                else:
                    pos = 0
                    while pos < length:
                        lane = (ram + pos) % B
                        n = min(B - lane, length - pos)
                        word = int.from_bytes(data[pos : pos + n], "little") << (8 * lane)
                        be = ((1 << n) - 1) << lane
                        words.append(((ram + pos) // B, be, word))
                        pos += n
                rd_jobs.append((cycle + self.rd_latency, tag, err, words))
                hold_until = cycle + self.rd_hold
            # --- local buffer writes (one word per cycle)
            if wr_ram_valid and d.s_ram_wr_ready.value:
                cur_words.popleft()
            sts = None
            if cur_tag >= 0 and not cur_words:
                sts = (cur_tag, cur_err)
                cur_tag = -1
            if cur_tag < 0 and rd_jobs and rd_jobs[0][0] <= cycle:
                _, cur_tag, cur_err, w = rd_jobs.popleft()
                cur_words.extend(w)
            if cur_words:
                a, be, word = cur_words[0]
                d.s_ram_wr_addr.value = a
                d.s_ram_wr_be.value = be
                d.s_ram_wr_data.value = word
                d.s_ram_wr_valid.value = 1
                wr_ram_valid = True
            elif wr_ram_valid:
                d.s_ram_wr_valid.value = 0
                wr_ram_valid = False
            if sts is not None:
                d.s_rd_sts_tag.value = sts[0]
                d.s_rd_sts_error.value = sts[1]
                d.s_rd_sts_valid.value = 1
                rd_sts_next = sts
            elif rd_sts_next is not None:
                d.s_rd_sts_valid.value = 0
                rd_sts_next = None
            # --- write requests
            if d.m_wr_req_valid.value and d.m_wr_req_ready.value:
                pasid = d.m_wr_req_pasid.value.to_unsigned() if d.m_wr_req_pasid_valid.value else None
                imm = bool(d.m_wr_req_imm_en.value)
                wr_jobs.append(
                    (
                        pasid,
                        d.m_wr_req_addr.value.to_unsigned(),
                        d.m_wr_req_len.value.to_unsigned(),
                        d.m_wr_req_ram_addr.value.to_unsigned(),
                        imm,
                        d.m_wr_req_imm_data.value.to_unsigned() if imm else 0,
                        d.m_wr_req_tag.value.to_unsigned(),
                    )
                )
            if d.m_ram_rd_resp_valid.value:
                wr_data.append(d.m_ram_rd_resp_data.value.to_unsigned())
            wsts = None
            if wr_cur is None and wr_jobs:
                wr_cur = wr_jobs.popleft()
                pasid, addr, length, ram, imm, immd, tag = wr_cur
                wr_data = []
                if imm:
                    wr_words = 0
                else:
                    first, last = ram // B, (ram + length - 1) // B
                    wr_words = last - first + 1
                    wr_cmd.extend(range(first, last + 1))
            if wr_cur is not None and len(wr_data) == wr_words and not wr_cmd:
                pasid, addr, length, ram, imm, immd, tag = wr_cur
                if imm:
                    data = immd.to_bytes(B, "little")[:length]
                else:
                    blob = b"".join(w.to_bytes(B, "little") for w in wr_data)
                    data = blob[ram % B : ram % B + length]
                wr_err = self.wr_fault(pasid, addr, length) if self.wr_fault else 0
                if not wr_err:
                    self.spaces.write(pasid, addr, data)
                    self.writes.append((pasid, addr, length))
                wsts = (tag, wr_err)
                wr_cur = None
            if wr_cmd:
                d.s_ram_rd_cmd_addr.value = wr_cmd.popleft()
                d.s_ram_rd_cmd_valid.value = 1
            else:
                d.s_ram_rd_cmd_valid.value = 0
            if wsts is not None:
                d.s_wr_sts_tag.value = wsts[0]
                d.s_wr_sts_error.value = wsts[1]
                d.s_wr_sts_valid.value = 1
            else:
                d.s_wr_sts_valid.value = 0
            # --- IMS messages
            if d.m_ims_valid.value and d.m_ims_ready.value:
                self.ims.append((d.m_ims_addr.value.to_unsigned(), d.m_ims_data.value.to_unsigned()))
            if self.stress:
                d.m_rd_req_ready.value = rng.random() < 0.7
                d.m_wr_req_ready.value = rng.random() < 0.7
            if self.rd_hold:
                d.m_rd_req_ready.value = int(cycle >= hold_until)

    # ------------------------------------------------------------------ ADI setup helpers
    async def setup_adi(
        self,
        model: AdiDevice | None,
        adi: int,
        *,
        pasid: int,
        ring: int,
        log2_entries: int,
        cpl: int,
        rx: int = 0,
        rx_log2: int = 0,
        slot_log2: int = 11,
        ims: tuple[int, int] = (0, 0),
        ims_mask: bool = True,
        group: int = 0,
        port_addr: int = 0,
        send: bool = False,
        recv: bool = False,
        enable: bool = True,
    ) -> None:
        regs = [
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
        ]
        for reg, v in regs:
            await self.adi_wr(adi, reg, v)
        if enable:
            await self.adi_wr(adi, AdiPage.CMD, 1)
        if model is not None:
            c = model.adis[adi].cfg
            c.ring_base, c.log2_entries, c.cpl_base = ring, log2_entries, cpl
            c.rx_base, c.rx_log2_slots, c.rx_log2_slot_bytes = rx, rx_log2, slot_log2
            c.ims_addr, c.ims_data, c.ims_mask = ims[0], ims[1], ims_mask
            c.group, c.port_addr, c.send_en, c.recv_en = group, port_addr, send, recv
            model.set_pasid(adi, pasid)
            if enable:
                from siov_sim.model.adi import Cmd

                model.command(adi, Cmd.ENABLE)

    async def ring(self, adi: int, tail: int) -> None:
        await self.portal(adi, PortalPage.DOORBELL, tail)

    async def wait_until(self, cond: Callable[[], bool], cycles: int = 200_000, step: int = 32) -> None:
        for _ in range(cycles // step):
            if cond():
                return
            await ClockCycles(self.dut.clk, step)
        raise AssertionError("timeout waiting for the engine")

    async def wait_idle(self, cycles: int = 200_000) -> None:
        quiet = 0
        for _ in range(cycles // 32):
            await ClockCycles(self.dut.clk, 32)
            quiet = quiet + 1 if not self.dut.busy.value else 0
            if quiet >= 4:
                return
        raise AssertionError("engine did not go idle")
