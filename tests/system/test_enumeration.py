"""ep_top behind cocotbext-pcie's root complex: enumeration through the RTL config space,
MSI-X set-up through BAR0, and what the endpoint does with bad config and malformed TLPs."""

from __future__ import annotations

import cocotb
import pytest
from cocotb.triggers import ClockCycles, Event, with_timeout

from siov_sim.model.pcie.cfgspace import (
    CAP_ID_MSIX,
    CAP_ID_PCIE,
    EXT_CAP_ID_DVSEC,
    EXT_CAP_ID_PASID,
    ConfigSpace,
)
from siov_sim.tb.cfgdump import read_config_space
from siov_sim.tb.env import Env
from siov_sim.tb.pcie.ep_device import TlpFrame
from siov_sim.tb.runner import run_rtl

NUM_ADI = 4
CPL_UR = 1


async def _up(dut: object) -> Env:
    env = Env(dut)
    await env.start()
    return env


def _hdr(*dws: int) -> int:
    dws4 = [*dws, 0, 0, 0][:4]
    return (dws4[0] << 96) | (dws4[1] << 64) | (dws4[2] << 32) | dws4[3]


async def _raw(env: Env, frame: TlpFrame, tag: int, expect_cpl: bool = True) -> TlpFrame | None:
    """Inject a raw request on rx_req and wait for the completion with ``tag`` (taken off the link)."""
    got: list[TlpFrame] = []
    ev = Event()

    def tap(f: TlpFrame, stream: str) -> bool:
        if stream == "tx_cpl_tlp" and (f.hdr >> 40) & 0xFF == tag:
            got.append(f)
            ev.set()
            return True
        return False

    env.ep.tap = tap
    env.ep.inject_request(frame)
    try:
        if expect_cpl:
            await with_timeout(ev.wait(), 20, "us")
        else:
            await ClockCycles(env.dut.clk, 200)
    finally:
        env.ep.tap = None
    return got[0] if got else None


def _cpl_status(f: TlpFrame) -> int:
    return (f.hdr >> 77) & 0x7


@cocotb.test()
async def enumerates_through_rtl_config_space(dut: object) -> None:
    env = await _up(dut)
    dev = env.dev
    assert dev is not None
    assert dev.vendor_id == 0x1DEA and dev.device_id == 0x5105
    assert dev.class_code == 0x088000
    assert [c for c, _ in dev.capabilities][:2] == [CAP_ID_PCIE, CAP_ID_MSIX] or {CAP_ID_PCIE, CAP_ID_MSIX} <= {
        c for c, _ in dev.capabilities
    }
    ext = [c for c, _ in dev.ext_capabilities]
    assert EXT_CAP_ID_PASID in ext and EXT_CAP_ID_DVSEC in ext
    assert dev.bar_size[0] == 1 << 20
    assert dev.bar_size[2] == NUM_ADI * 65536  # sized for the largest supported page (64 KiB)
    cs = ConfigSpace(await read_config_space(dev))
    pcie = cs.pcie()
    assert pcie is not None and pcie.e2e_prefix_supported and pcie.max_e2e_prefixes == 1
    assert pcie.max_payload == 512 and pcie.ext_tag_enabled
    sd = cs.siov_dvsec()
    assert sd is not None and sd.ims_supported and sd.homogeneous and sd.system_page_bytes == 4096
    assert sd.length == 0x18
    pasid = cs.pasid()
    assert pasid is not None and pasid.max_width == 20 and pasid.priv_supported and not pasid.exec_supported
    assert [b.index for b in cs.bars()] == [0, 2] and all(b.is_64bit for b in cs.bars())
    env.check_link_clean()


@cocotb.test()
async def msix_table_in_bar0_is_programmed_by_the_probe(dut: object) -> None:
    env = await _up(dut)
    dev = env.dev
    assert dev is not None
    await dev.enable_device()
    await dev.set_master()
    assert await dev.alloc_irq_vectors(1, 8) == 8
    bar0 = dev.bar_window[0]
    for k in range(8):  # cocotbext-pcie wrote address/data/unmasked into the RTL's table
        assert await bar0.read_dword(0x2000 + 16 * k + 0) == dev.msi_vectors[k].addr & 0xFFFF_FFFC
        assert await bar0.read_dword(0x2000 + 16 * k + 8) == dev.msi_vectors[k].data
        assert await bar0.read_dword(0x2000 + 16 * k + 12) & 1 == 0
    # qword and multi-dword accesses are split into dword register accesses correctly
    await bar0.write(0x2000 + 16 * 7, bytes(range(12)))
    assert await bar0.read(0x2000 + 16 * 7, 12) == bytes(range(12))
    cs = ConfigSpace(await read_config_space(dev))
    assert cs.msix() is not None and cs.msix().enabled  # type: ignore[union-attr]
    env.check_link_clean()


@cocotb.test()
async def bad_config_writes_are_contained(dut: object) -> None:
    env = await _up(dut)
    dev = env.dev
    assert dev is not None
    # read-only fields ignore writes
    await dev.config_write_dword(0x00, 0xFFFF_FFFF)
    assert await dev.config_read_dword(0x00) == 0x5105_1DEA
    # unimplemented space reads 0 and ignores writes
    await dev.config_write_dword(0xF00, 0x1234_5678)
    assert await dev.config_read_dword(0xF00) == 0
    # BAR sizing: all-ones reads back the size mask, then the address is restored
    old = await dev.config_read_dword(0x10)
    await dev.config_write_dword(0x10, 0xFFFF_FFFF)
    assert await dev.config_read_dword(0x10) & ~0xF == (~((1 << 20) - 1)) & 0xFFFF_FFF0
    await dev.config_write_dword(0x10, old)
    assert await dev.config_read_dword(0x10) == old
    # system page size: zero, two bits, unsupported bits are rejected; the value stays 4 KiB
    cs = ConfigSpace(await read_config_space(dev))
    sd = cs.siov_dvsec()
    assert sd is not None
    unsupported = ~sd.supported_page_sizes & 0xFFFF_FFFF
    for bad in (0, 0x3, unsupported & -unsupported):
        await dev.config_write_dword(sd.offset + 0x10, bad)
        assert await dev.config_read_dword(sd.offset + 0x10) == 1, hex(bad)
    env.check_link_clean()


@cocotb.test()
async def malformed_and_unsupported_tlps_get_ur_and_no_hang(dut: object) -> None:
    env = await _up(dut)
    dev = env.dev
    assert dev is not None
    rid = 0x0000
    tgt = int(dev.pcie_id) << 16
    # Cfg type 1 to an endpoint: UR
    cpl = await _raw(env, TlpFrame(_hdr(0x0500_0001, rid << 16 | 0x11 << 8 | 0xF, tgt)), 0x11)
    assert cpl is not None and _cpl_status(cpl) == CPL_UR
    # IO read: UR
    cpl = await _raw(env, TlpFrame(_hdr(0x0200_0001, rid << 16 | 0x12 << 8 | 0xF, 0x1000)), 0x12)
    assert cpl is not None and _cpl_status(cpl) == CPL_UR
    # memory read outside both BARs: UR, and DevSta.URD gets set (RW1C)
    cpl = await _raw(env, TlpFrame(_hdr(0x0000_0001, rid << 16 | 0x13 << 8 | 0xF, 0x10)), 0x13)
    assert cpl is not None and _cpl_status(cpl) == CPL_UR
    cs = ConfigSpace(await read_config_space(dev))
    pcie = cs.pcie()
    assert pcie is not None
    devsta = await dev.config_read_word(pcie.offset + 0x0A)
    assert devsta & 0x8, f"DevSta 0x{devsta:04x}: Unsupported Request Detected not set"
    await dev.config_write_word(pcie.offset + 0x0A, 0x8)  # RW1C
    assert await dev.config_read_word(pcie.offset + 0x0A) & 0x8 == 0
    # malformed memory read (crosses a 4 KiB boundary) inside BAR0: UR, so the requester never hangs
    bar0 = dev.bar_addr[0]
    cross = bar0 + 0x1FFC
    cpl = await _raw(env, TlpFrame(_hdr(0x2000_0002, rid << 16 | 0x14 << 8 | 0xFF, cross >> 32, cross & ~3)), 0x14)
    assert cpl is not None and _cpl_status(cpl) == CPL_UR
    # a reserved Type (0b01100): malformed, dropped (nothing to complete), recorded
    assert await _raw(env, TlpFrame(_hdr(0x0C00_0001, rid << 16 | 0x16 << 8 | 0xF, 0)), 0x16,
                      expect_cpl=False) is None
    # MWr whose length field disagrees with its payload: dropped, no completion
    bad = TlpFrame(
        _hdr(0x6000_0004, rid << 16 | 0x15 << 8 | 0xFF, bar0 >> 32, (bar0 + 0x2000) & 0xFFFF_FFFC), data=[1, 2]
    )
    assert await _raw(env, bad, 0x15, expect_cpl=False) is None
    # the endpoint still answers afterwards
    assert await dev.config_read_dword(0x00) == 0x5105_1DEA
    env.check_link_clean()


@pytest.mark.system
def test_enumeration() -> None:
    run_rtl("ep_top", test_module=__name__, parameters={"NumAdi": NUM_ADI})
