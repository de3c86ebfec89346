"""ep_cfg_space: config header, capability chain, RO/RW/RW1C/HwInit semantics, BAR sizing, SIOV DVSEC.

The module is driven through its own one-DW access port (the TLP path is tested in
test_ep_tlp_path.py); inputs change on the falling edge, read data is sampled on the next one.
"""

from __future__ import annotations

import logging
import os
import random
from typing import Any

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

from siov_sim.tb.runner import run_rtl

log = logging.getLogger(__name__)

VENDOR_ID = 0x1DEA
DEVICE_ID = 0x5105
SUPPORTED_PAGE_SIZES = 0x15  # 4 KiB, 16 KiB, 64 KiB

# DW index -> (RW mask, RW1C mask) for the registers with writable bits (BARs, PMCSR and
# System Page Size have value-dependent rules and are tested on their own)
RW_MASKS: dict[int, tuple[int, int]] = {
    0x04 // 4: (0x0000_0546, 0xB900_0000),  # Command: MSE BME PER SERR IntDis / Status RW1C
    0x0C // 4: (0x0000_00FF, 0),  # Cache Line Size
    0x3C // 4: (0x0000_00FF, 0),  # Interrupt Line
    0x48 // 4: (0x0000_79FF, 0x000F_0000),  # DevCtl / DevSta RW1C
    0x50 // 4: (0x0000_00C3, 0),  # LinkCtl: ASPM, Common Clock, Extended Synch
    0x70 // 4: (0x0000_000F, 0),  # LinkCtl2: Target Link Speed
    0x90 // 4: (0xC000_0000, 0),  # MSI-X Enable, Function Mask
    0x104 // 4: (0x0005_0000, 0),  # PASID Enable, Privileged Mode Enable
    0x148 // 4: (0x0015_D000, 0),  # AER Uncorrectable Error Mask (implemented errors)
    0x14C // 4: (0x0015_D000, 0),  # AER Uncorrectable Error Severity
    0x154 // 4: (0x0000_2000, 0),  # AER Correctable Error Mask (Advisory Non-Fatal)
}
SPECIAL = {4, 5, 6, 7, 0x84 // 4, 0x120 // 4}

RESET_VALUES: dict[int, int] = {
    0x00: DEVICE_ID << 16 | VENDOR_ID,
    0x04: 0x0010_0000,  # Status.Capabilities List
    0x08: 0x0880_0001,  # class 088000, revision 1
    0x0C: 0,
    0x10: 0x0000_0004,  # BAR0: 64-bit memory, non-prefetchable
    0x14: 0,
    0x18: 0x0000_000C,  # BAR2: 64-bit memory, prefetchable
    0x1C: 0,
    0x2C: 0x0001_1DEA,  # subsystem
    0x34: 0x40,
    0x3C: 0,  # Interrupt Pin 0
    0x40: 0x0002_8010,  # PCIe cap v2, endpoint, next 0x80
    0x44: 0x1000_8FE2,  # DevCap: ... Function Level Reset Capability
    0x48: 0x0000_2810,  # DevCtl: RO, NS, MRRS 512
    0x4C: 0x0040_0083,  # LinkCap
    0x50: 0x1083_0000,  # LinkSta
    0x64: 0x0070_0000,  # DevCap2: ExtFmt, E2E prefix, max 1 prefix
    0x68: 0,
    0x6C: 0x0000_000E,  # LinkCap2
    0x70: 0x0000_0003,  # LinkCtl2 target speed
    0x80: 0x0003_9001,  # PM cap, next 0x90
    0x84: 0x0000_0008,  # PMCSR: No_Soft_Reset, D0
    0x90: 0x0007_0011,  # MSI-X: 8 vectors, end of list
    0x94: 0x0000_2000,  # table BAR0 0x2000
    0x98: 0x0000_3000,  # PBA BAR0 0x3000
    0x100: 0x1101_001B,  # PASID v1, next 0x110
    0x104: 0x0000_1404,  # PASID cap: priv, width 20
    0x110: 0x1401_0023,  # DVSEC v1, next 0x140
    0x140: 0x0002_0001,  # AER v2, end of list
    0x14C: 0x0004_0000,  # Uncorrectable Error Severity: Malformed TLP fatal
    0x154: 0x0000_2000,  # Correctable Error Mask: Advisory Non-Fatal masked
    0x114: 0x0180_8086,  # DVSEC vendor 8086 rev 0 len 0x18
    0x118: 0x0100_0005,  # DVSEC ID 5, dependency link 0, Homogeneous
    0x11C: SUPPORTED_PAGE_SIZES,
    0x120: 0x0000_0001,  # System Page Size 4 KiB
    0x124: 0x0000_0001,  # IMS Support
}


class Tb:
    def __init__(self, dut: Any) -> None:
        self.dut = dut
        self.rng = random.Random(cocotb.RANDOM_SEED)
        Clock(dut.clk, 4, unit="ns").start()
        for sig in (
            "s_cfg_valid",
            "s_cfg_write",
            "s_cfg_dw",
            "s_cfg_wdata",
            "s_cfg_be",
            "s_cfg_target_id",
            "ev_ur_np",
            "ev_ur_p",
            "ev_malformed",
            "ev_poisoned",
            "ev_cpl_ur",
            "ev_cpl_ca",
            "ev_cpl_poisoned",
            "ev_sig_ca",
            "ev_cpl_timeout",
            "ev_unexp_cpl",
            "dma_tp",
            "ev_req_hdr",
            "ev_req_prfx",
            "ev_cpl_hdr",
        ):
            getattr(dut, sig).value = 0
        dut.m_errmsg_ready.value = 1

    async def reset(self) -> None:
        self.dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(self.dut.clk)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def access(self, dw: int, write: bool, data: int = 0, be: int = 0xF, tid: int = 0) -> int:
        d = self.dut
        d.s_cfg_valid.value = 1
        d.s_cfg_write.value = int(write)
        d.s_cfg_dw.value = dw
        d.s_cfg_wdata.value = data
        d.s_cfg_be.value = be
        d.s_cfg_target_id.value = tid
        await FallingEdge(d.clk)
        d.s_cfg_valid.value = 0
        return int(d.m_cfg_rdata.value.to_unsigned())

    async def rd(self, off: int) -> int:
        return await self.access(off >> 2, False)

    async def wr(self, off: int, data: int, be: int = 0xF) -> None:
        await self.access(off >> 2, True, data, be)

    async def pulse(self, name: str) -> None:
        getattr(self.dut, name).value = 1
        await FallingEdge(self.dut.clk)
        getattr(self.dut, name).value = 0


def expected_reset(num_adi: int) -> dict[int, int]:
    exp = dict(RESET_VALUES)
    del num_adi  # BAR reset values do not depend on the size
    return exp


@cocotb.test()
async def header_and_capability_chain(dut: Any) -> None:
    """Every DW of the 4 KiB space after reset: implemented registers as documented, the rest 0."""
    tb = Tb(dut)
    await tb.reset()
    space = [await tb.access(dw, False) for dw in range(1024)]
    exp = expected_reset(int(os.environ["EP_NUM_ADI"]))
    for dw, val in enumerate(space):
        want = exp.get(dw * 4, 0)
        assert val == want, f"cfg[{dw * 4:#05x}] = {val:#010x}, expected {want:#010x}"
    # walk the chains the way software does
    caps = []
    ptr = space[0x34 // 4] & 0xFC
    while ptr:
        caps.append((space[ptr // 4] & 0xFF, ptr))
        ptr = (space[ptr // 4] >> 8) & 0xFC
    assert caps == [(0x10, 0x40), (0x01, 0x80), (0x11, 0x90)]
    ecaps = []
    ptr = 0x100
    while ptr:
        ecaps.append((space[ptr // 4] & 0xFFFF, space[ptr // 4] >> 16 & 0xF, ptr))
        ptr = space[ptr // 4] >> 20
    assert ecaps == [(0x1B, 1, 0x100), (0x23, 1, 0x110), (0x01, 2, 0x140)]
    assert (space[0x0C // 4] >> 16) & 0x7F == 0, "header type 0"


@cocotb.test()
async def function_level_reset(dut: Any) -> None:
    """DevCap FLR; Initiate FLR (DevCtl[15], reads 0): cfg_flr pulse, every register back at its reset
    value except the captured Bus/Device Number; DevSta Transactions Pending = dma_tp; CTO/UC logged."""
    tb = Tb(dut)
    await tb.reset()
    assert (await tb.rd(0x44)) >> 28 & 1 == 1
    dut.dma_tp.value = 1
    assert (await tb.rd(0x48)) >> 16 == 0x20
    dut.dma_tp.value = 0
    assert (await tb.rd(0x48)) >> 16 == 0
    await tb.pulse("ev_cpl_timeout")
    assert (await tb.rd(0x48)) >> 16 == 0b0010, "completion timeout: non-fatal"
    await tb.pulse("ev_unexp_cpl")
    assert (await tb.rd(0x48)) >> 16 == 0b0011, "unexpected completion: advisory (correctable)"
    flr = 0

    async def mon() -> None:
        nonlocal flr
        while True:
            await RisingEdge(dut.clk)
            flr += int(dut.cfg_flr.value)

    cocotb.start_soon(mon())
    exp = expected_reset(int(os.environ["EP_NUM_ADI"]))
    await tb.access(1, True, 0x0000_0546, tid=0x1A08)
    for off, val, be in ((0x10, 0xFFF0_0000, 0xF), (0x3C, 0x5A, 0x1), (0x104, 0x0005_0000, 0x4),
                         (0x120, 0x4, 0xF), (0x90, 0xC000_0000, 0x8), (0x84, 0x3, 0x1), (0x50, 0xC3, 0x1)):
        await tb.wr(off, val, be)
        assert await tb.rd(off) != exp.get(off, 0), f"{off:#x} did not change"
    await tb.pulse("ev_ur_np")
    await tb.wr(0x48, 0x0000_40E0)  # DevCtl without Initiate FLR: no reset
    assert flr == 0 and await tb.rd(0x48) == 0x000B_40E0
    await tb.access(0x48 // 4, True, 0x0000_C0E0, tid=0x1A08)  # Initiate FLR
    assert flr == 1
    space = [await tb.access(dw, False) for dw in range(1024)]
    for dw, val in enumerate(space):
        if 0x140 <= dw * 4 < 0x188:
            continue  # AER is sticky: FLR leaves it (aer_logging_and_messages)
        want = exp.get(dw * 4, 0)
        assert val == want, f"after FLR cfg[{dw * 4:#05x}] = {val:#010x}, expected {want:#010x}"
    assert space[0x144 // 4] == 1 << 20 | 1 << 16 | 1 << 14, "AER status (UR, UC, CTO) kept over FLR"
    assert dut.cfg_requester_id.value.to_unsigned() == 0x1A08, "FLR keeps the captured Bus/Device"
    assert (dut.cfg_mem_en.value, dut.cfg_bus_master_en.value, dut.cfg_pasid_en.value,
            dut.cfg_msix_en.value) == (0, 0, 0, 0)
    assert dut.cfg_sys_page_shift.value.to_unsigned() == 12
    assert flr == 1


@cocotb.test()
async def aer_logging_and_messages(dut: Any) -> None:
    """AER: status set even when masked, First Error Pointer + Header/Prefix Log of the first
    unmasked error, severity, advisory non-fatal -> ANFE/ERR_COR, messages per DevCtl enables,
    a stalled message held, sticky over FLR, RW1C clear."""
    tb = Tb(dut)
    await tb.reset()
    MAL, URB, POI, CTO, UC = 18, 20, 12, 14, 16
    COR, NF, FATAL = 0x30, 0x31, 0x33
    msgs: list[int] = []

    async def mon() -> None:
        held: int | None = None
        while True:
            await RisingEdge(dut.clk)
            if dut.m_errmsg_valid.value:
                code = int(dut.m_errmsg_code.value)
                assert held is None or code == held, f"message code changed while stalled: {held:#x} -> {code:#x}"
                if dut.m_errmsg_ready.value:
                    msgs.append(code)
                    held = None
                else:
                    held = code
            else:
                assert held is None, "message withdrawn while stalled"

    cocotb.start_soon(mon())

    async def ev(name: str, hdr: int = 0, prfx: int = 0, cpl_hdr: int = 0) -> None:
        dut.ev_req_hdr.value, dut.ev_req_prfx.value, dut.ev_cpl_hdr.value = hdr, prfx, cpl_hdr
        await tb.pulse(name)
        await ClockCycles(dut.clk, 3)
        await FallingEdge(dut.clk)  # accesses start at a falling edge

    async def hlog() -> list[int]:
        return [await tb.rd(0x15C + 4 * i) for i in range(4)]

    h1, h2, h3 = (0x0000_0001_0100_0A0F_8000_0010_0000_0000, 0x4000_0001_0000_01FF_8000_0080_0000_0000,
                  0x2000_0004_0000_3301_0000_0012_8000_0000)
    # nothing enabled: logged, no message
    await ev("ev_malformed", h1, 0x9100_0042)
    assert await tb.rd(0x144) == 1 << MAL
    assert await tb.rd(0x158) == 1 << 11 | MAL, "FEP 18, TLP Prefix Log Present"
    assert await hlog() == [h1 >> 96, h1 >> 64 & 0xFFFF_FFFF, h1 >> 32 & 0xFFFF_FFFF, h1 & 0xFFFF_FFFF]
    assert await tb.rd(0x178) == 0x9100_0042
    # a second error while the first is logged: status only
    await ev("ev_ur_p", h2)
    assert await tb.rd(0x144) == 1 << MAL | 1 << URB
    assert await tb.rd(0x158) & 0x1F == MAL and (await hlog())[0] == h1 >> 96
    await tb.wr(0x144, 1 << MAL)  # RW1C: FEP now invalid, the next error is logged
    assert await tb.rd(0x144) == 1 << URB
    assert msgs == []
    # enable reporting: CERE NFERE FERE URRE
    await tb.wr(0x48, 0x0000_281F)
    await ev("ev_malformed", h3)
    assert await tb.rd(0x158) == MAL and (await hlog())[0] == h3 >> 96, "no prefix: bit 11 clear"
    assert msgs == [FATAL]
    # UR on a non-posted request: advisory non-fatal -> ANFE; ERR_COR only once ANFE is unmasked
    await ev("ev_ur_np", h2)
    assert (await tb.rd(0x150)) >> 13 & 1 and msgs == [FATAL]
    await tb.wr(0x154, 0)
    await ev("ev_ur_np", h2)
    await ev("ev_ur_p", h2)  # posted UR: uncorrectable non-fatal
    await ev("ev_cpl_timeout")
    await ev("ev_unexp_cpl", cpl_hdr=h3)  # advisory
    await ev("ev_cpl_poisoned", cpl_hdr=h3)  # poisoned completion to our read: advisory
    await ev("ev_poisoned", h1)  # poisoned request: non-fatal
    assert msgs == [FATAL, COR, NF, NF, COR, COR, NF], [hex(m) for m in msgs]
    sta = await tb.rd(0x144)
    assert sta == 1 << MAL | 1 << URB | 1 << CTO | 1 << UC | 1 << POI, hex(sta)
    # URRE off: UR not reported; UR masked: not reported either (status still set)
    await tb.wr(0x48, 0x0000_2817)
    await ev("ev_ur_p", h2)
    await tb.wr(0x48, 0x0000_281F)
    await tb.wr(0x148, 1 << URB)
    await tb.wr(0x144, 0xFFFF_FFFF)
    await ev("ev_ur_p", h2)
    assert await tb.rd(0x144) == 1 << URB and await tb.rd(0x158) & 0x1F != URB, "masked error logged"
    assert len(msgs) == 7
    # UR severity fatal (unmasked): a non-posted UR is no longer advisory
    await tb.wr(0x148, 0)
    await tb.wr(0x14C, 1 << MAL | 1 << URB)
    await ev("ev_ur_np", h2)
    assert msgs[-1] == FATAL and len(msgs) == 8
    # a message the link does not take is held (valid, code stable) and later ones queue behind it
    dut.m_errmsg_ready.value = 0
    await ev("ev_ur_p", h2)  # severity fatal now
    await tb.wr(0x14C, 1 << MAL)
    await ev("ev_cpl_timeout")
    await ClockCycles(dut.clk, 20)
    assert len(msgs) == 8 and dut.m_errmsg_valid.value == 1
    dut.m_errmsg_ready.value = 1
    await ClockCycles(dut.clk, 10)
    await FallingEdge(dut.clk)
    assert msgs[8:] == [FATAL, NF], [hex(m) for m in msgs]
    # AER is sticky: FLR leaves it; RW1C clears it
    before = [await tb.rd(0x144), await tb.rd(0x150), await tb.rd(0x158)]
    await tb.wr(0x48, 0x0000_A810)
    assert [await tb.rd(0x144), await tb.rd(0x150), await tb.rd(0x158)] == before
    await tb.wr(0x144, 0xFFFF_FFFF)
    await tb.wr(0x150, 0xFFFF_FFFF)
    assert await tb.rd(0x144) == 0 and await tb.rd(0x150) == 0


@cocotb.test()
async def ro_and_rw_semantics(dut: Any) -> None:
    """All-ones then all-zeros then random writes to every DW: only the RW bits move."""
    tb = Tb(dut)
    await tb.reset()
    model = {dw: (await tb.access(dw, False)) for dw in range(1024)}
    for pattern in (0xFFFF_FFFF, 0, None):
        for dw in range(1024):
            if dw in SPECIAL:
                continue
            data = tb.rng.getrandbits(32) if pattern is None else pattern
            be = tb.rng.getrandbits(4) if pattern is None else 0xF
            if dw == 0x48 // 4:
                data &= ~0x8000  # Initiate FLR resets everything: function_level_reset tests it
            await tb.access(dw, True, data, be)
            rw, w1c = RW_MASKS.get(dw, (0, 0))
            bm = sum(0xFF << (8 * i) for i in range(4) if be >> i & 1)
            model[dw] = (model[dw] & ~(rw & bm)) | (data & rw & bm)
            model[dw] &= ~(data & w1c & bm)
        for dw in range(1024):
            if dw in SPECIAL:
                continue
            got = await tb.access(dw, False)
            assert got == model[dw], f"cfg[{dw * 4:#05x}] = {got:#010x}, expected {model[dw]:#010x}"
    # Execute Permission Enable is RO 0 (not supported)
    await tb.wr(0x104, 0x0007_0000)
    assert await tb.rd(0x104) == 0x0005_1404
    assert dut.cfg_pasid_en.value == 1 and dut.cfg_pasid_priv_en.value == 1
    assert dut.cfg_pasid_exec_en.value == 0


@cocotb.test()
async def rw1c_status_bits(dut: Any) -> None:
    """Error events set Status/DevSta bits; writing 1 clears just that bit, 0 and unenabled bytes do not."""
    tb = Tb(dut)
    await tb.reset()
    await tb.wr(0x04, 0x0000_0040)  # Parity Error Response enable (for Master Data Parity Error)
    for ev in ("ev_cpl_ur", "ev_cpl_ca", "ev_sig_ca", "ev_cpl_poisoned"):
        await tb.pulse(ev)
    sta = await tb.rd(0x04) >> 16
    assert sta == 0x0010 | 1 << 8 | 1 << 11 | 1 << 12 | 1 << 13 | 1 << 15, hex(sta)
    await tb.wr(0x04, 0x2000_0040, be=0x7)  # byte 3 not enabled: nothing cleared
    assert await tb.rd(0x04) >> 16 == sta
    await tb.wr(0x04, 0x0000_0040)  # zeros clear nothing
    assert await tb.rd(0x04) >> 16 == sta
    await tb.wr(0x04, 0x2000_0040)  # clear Received Master Abort only
    assert await tb.rd(0x04) >> 16 == sta & ~(1 << 13)
    await tb.wr(0x04, 0xFFFF_0040)
    assert await tb.rd(0x04) >> 16 == 0x0010
    # Device Status
    for ev, bits in (("ev_ur_np", 0b1001), ("ev_ur_p", 0b1010), ("ev_malformed", 0b0100)):
        await tb.pulse(ev)
        got = (await tb.rd(0x48)) >> 16
        assert got & bits == bits, f"{ev}: DevSta {got:#x}"
    assert (await tb.rd(0x48)) >> 16 == 0xF
    await tb.wr(0x48, 0x0008_0000, be=0x4)  # clear UR Detected, DevCtl untouched (byte 0/1 off)
    assert await tb.rd(0x48) == 0x0007_2810
    await tb.wr(0x48, 0x000F_2810)
    assert await tb.rd(0x48) == 0x0000_2810
    # poisoned request: Detected Parity Error + Non-Fatal Error Detected
    await tb.pulse("ev_poisoned")
    assert (await tb.rd(0x04)) >> 31 == 1
    assert (await tb.rd(0x48)) >> 16 == 0b0010


@cocotb.test()
async def bar_sizing(dut: Any) -> None:
    """Write all-ones, read the size mask; bits below the size read 0; BAR2 is sized for the largest
    supported page size (64 KiB) whatever System Page Size says, so an SPS write never moves it."""
    tb = Tb(dut)
    await tb.reset()
    num_adi = int(os.environ["EP_NUM_ADI"])
    bar0_log2 = int(os.environ["EP_BAR0_LOG2"])
    for off in (0x10, 0x14, 0x18, 0x1C):
        await tb.wr(off, 0xFFFF_FFFF)
    bar0 = (await tb.rd(0x14)) << 32 | await tb.rd(0x10)
    assert bar0 == (~((1 << bar0_log2) - 1) & (2**64 - 1)) | 0x4, hex(bar0)
    for page_bit, page_shift in ((0, 12), (2, 14), (4, 16), (0, 12)):
        await tb.wr(0x120, 1 << page_bit)
        assert await tb.rd(0x120) == 1 << page_bit
        assert dut.cfg_sys_page_shift.value.to_unsigned() == page_shift
        await tb.wr(0x18, 0xFFFF_FFFF)
        await tb.wr(0x1C, 0xFFFF_FFFF)
        bar2 = (await tb.rd(0x1C)) << 32 | await tb.rd(0x18)
        size = num_adi << 16
        assert bar2 == (~(size - 1) & (2**64 - 1)) | 0xC, f"page {page_shift}: {bar2:#x}"
        assert (~bar2 & ~0xF & (2**64 - 1)) + 16 == size
    # assign addresses; low bits written as ones read back 0
    await tb.wr(0x10, 0xFEDC_BA98)
    await tb.wr(0x14, 0x0000_0012)
    assert await tb.rd(0x10) == (0xFEDC_BA98 & ~((1 << bar0_log2) - 1) & 0xFFFF_FFFF) | 0x4
    assert dut.cfg_bar0_addr.value.to_unsigned() == 0x12_0000_0000 | (
        0xFEDC_BA98 & ~((1 << bar0_log2) - 1) & 0xFFFF_FFFF
    )
    base2 = 0x0000_0034_5670_0000 & ~((num_adi << 16) - 1)
    await tb.wr(0x120, 1 << 4)  # 64 KiB pages
    await tb.wr(0x18, (base2 | 0xFFF0) & 0xFFFF_FFFF)
    await tb.wr(0x1C, base2 >> 32)
    assert dut.cfg_bar2_addr.value.to_unsigned() == base2
    assert dut.cfg_bar2_mask.value.to_unsigned() == ~((num_adi << 16) - 1) & (2**64 - 1)
    assert (await tb.rd(0x18)) == (base2 & 0xFFFF_FFFF) | 0xC
    # memory decoding on, then System Page Size changes: BAR2 neither moves nor changes size
    await tb.wr(0x04, 0x0000_0006)
    for page_bit in (0, 2, 4):
        await tb.wr(0x120, 1 << page_bit)
        assert await tb.rd(0x120) == 1 << page_bit
        assert dut.cfg_bar2_addr.value.to_unsigned() == base2, f"SPS bit {page_bit}: BAR2 moved"
        assert dut.cfg_bar2_mask.value.to_unsigned() == ~((num_adi << 16) - 1) & (2**64 - 1)
        assert (await tb.rd(0x18)) == (base2 & 0xFFFF_FFFF) | 0xC


@cocotb.test()
async def system_page_size_rejects_illegal(dut: Any) -> None:
    """Zero, several, or unsupported bits are rejected and the old value is kept."""
    tb = Tb(dut)
    await tb.reset()
    await tb.wr(0x120, 0x4)
    for bad in (0x0, 0x3, 0x2, 0x8, 0x14, 0x8000_0000, 0x20, 0xFFFF_FFFF):
        await tb.wr(0x120, bad)
        assert await tb.rd(0x120) == 0x4, f"wrote {bad:#x}"
        assert dut.cfg_sys_page_shift.value.to_unsigned() == 14
    # byte-enable merge: writing byte 1 with a bit while byte 0 still has one -> two bits: rejected
    await tb.wr(0x120, 0x0000_0100, be=0x2)
    assert await tb.rd(0x120) == 0x4
    await tb.wr(0x120, 0x0000_0010, be=0x1)
    assert await tb.rd(0x120) == 0x10
    assert dut.cfg_sys_page_shift.value.to_unsigned() == 16


@cocotb.test()
async def requester_id_and_cfg_outputs(dut: Any) -> None:
    """Bus/Device captured from CfgWr0 only (not reads, never the function); cfg_* outputs follow."""
    tb = Tb(dut)
    await tb.reset()
    await tb.access(0, False, tid=0x0300)
    assert dut.cfg_requester_id.value.to_unsigned() == 0x0000, "a CfgRd0 must not set the ID"
    await tb.access(1, True, 0x0000_0006, tid=0x1A0B)  # MSE + BME, bus 0x1A dev 1 (fn bits 3)
    assert dut.cfg_requester_id.value.to_unsigned() == 0x1A08, "function number must not be taken"
    await tb.access(0, False, tid=0x0300)
    assert dut.cfg_requester_id.value.to_unsigned() == 0x1A08
    assert dut.cfg_mem_en.value == 1 and dut.cfg_bus_master_en.value == 1
    await tb.wr(0x48, 0x0000_5140)  # MRRS 101b, ETE, MPS 010b
    assert dut.cfg_max_payload.value.to_unsigned() == 2
    assert dut.cfg_max_read_req.value.to_unsigned() == 5
    assert dut.cfg_ext_tag_en.value == 1
    await tb.wr(0x90, 0xC000_0000, be=0x8)
    assert dut.cfg_msix_en.value == 1 and dut.cfg_msix_func_mask.value == 1
    await tb.wr(0x90, 0x8000_0000, be=0x8)
    assert dut.cfg_msix_en.value == 1 and dut.cfg_msix_func_mask.value == 0
    # Power Management: D1/D2 are not supported (ignored); D3hot turns memory and bus mastering off
    await tb.wr(0x84, 0x1)
    assert await tb.rd(0x84) == 0x8
    await tb.wr(0x84, 0x3)
    assert await tb.rd(0x84) == 0xB
    assert dut.cfg_mem_en.value == 0 and dut.cfg_bus_master_en.value == 0
    await tb.wr(0x84, 0x0)
    assert dut.cfg_mem_en.value == 1 and dut.cfg_bus_master_en.value == 1


@cocotb.test()
async def control_bytes_need_their_byte_enable(dut: Any) -> None:
    """A CfgWr that covers only other bytes of the MSI-X Message Control DW (capability ID / next
    pointer) or of the PASID Capability/Control DW (the RO PASID Capability register) leaves
    MSI-X Enable / Function Mask and PASID Enable / Privileged Mode Enable as they were."""
    tb = Tb(dut)
    await tb.reset()
    await tb.wr(0x90, 0xC000_0000, be=0x8)
    await tb.wr(0x104, 0x0005_0000, be=0x4)
    assert (dut.cfg_msix_en.value, dut.cfg_msix_func_mask.value) == (1, 1)
    assert (dut.cfg_pasid_en.value, dut.cfg_pasid_priv_en.value) == (1, 1)
    msix, pasid = await tb.rd(0x90), await tb.rd(0x104)
    for be in (0x1, 0x2, 0x4, 0x7):
        await tb.wr(0x90, 0, be=be)
        assert (dut.cfg_msix_en.value, dut.cfg_msix_func_mask.value) == (1, 1), f"MSI-X, BE {be:#x}"
        assert await tb.rd(0x90) == msix
    for be in (0x1, 0x2, 0x8, 0xB):
        await tb.wr(0x104, 0, be=be)
        assert (dut.cfg_pasid_en.value, dut.cfg_pasid_priv_en.value) == (1, 1), f"PASID, BE {be:#x}"
        assert await tb.rd(0x104) == pasid
    await tb.wr(0x90, 0, be=0x8)
    await tb.wr(0x104, 0, be=0x4)
    assert (dut.cfg_msix_en.value, dut.cfg_msix_func_mask.value) == (0, 0)
    assert (dut.cfg_pasid_en.value, dut.cfg_pasid_priv_en.value) == (0, 0)
    # a field keeps its value when its byte is not enabled, whatever the other bytes do: Command
    # byte 0 (Memory Space, Bus Master, Parity Error Response) and byte 1 (SERR#, Interrupt
    # Disable), Cache Line Size, Interrupt Line, DevCtl byte 0 (MPS, error reporting), LinkCtl and
    # LinkCtl2 (Target Link Speed) byte 0
    for off, byte in ((0x04, 0), (0x04, 1), (0x0C, 0), (0x3C, 0), (0x48, 0), (0x50, 0), (0x70, 0)):
        before = await tb.rd(off)
        await tb.wr(off, ~before & 0xFFFF_FFFF, be=0xF & ~(1 << byte))
        after = await tb.rd(off)
        assert (after ^ before) >> 8 * byte & 0xFF == 0, f"{off:#x}: byte {byte} {before:#010x} -> {after:#010x}"
    assert dut.cfg_max_payload.value == 0


@pytest.mark.rtl
@pytest.mark.parametrize(("num_adi", "bar0_log2"), [(4, 20), (1024, 16)])
def test_ep_cfg_space(num_adi: int, bar0_log2: int) -> None:
    run_rtl(
        "ep_cfg_space",
        test_module=__name__,
        parameters={"NumAdi": num_adi, "Bar0SizeLog2": bar0_log2},
        extra_env={"EP_NUM_ADI": str(num_adi), "EP_BAR0_LOG2": str(bar0_log2)},
    )
