"""The endpoint behind its Intel P-tile wrapper (rtl/hip/ep_ptile_top.sv) and the extended P-tile
hard-IP model (tb/pcie/ptile_ext.py), under cocotbext-pcie's IOMMU root complex.

* config split: the IP answers the header, PCIe, MSI-X, AER and PASID capabilities; the SIOV DVSEC
  at 0xD00 comes from the RTL through CII (read, System Page Size write + read-back, an
  unsupported size ignored, next pointer 0, the rest of the VSEC range reads 0); PASID Enable,
  Bus Master Enable and the page size reach the RTL;
* MMIO to BAR0 through the BAR-hit address rewrite;
* Function Level Reset handshake (flr_rcvd_pf -> flr_completed_pf; DVSEC and PF registers reset);
* TX credit accounting: with 2 posted header / 40 data credits advertised by the root port, the
  demo's PASID-tagged DMA writes are held on tx_cdts_limit (the model flags any TLP sent beyond
  the limit) and still complete;
* the pure frame <-> TLP conversions of the model extension (prefix both ways).
"""

from __future__ import annotations

import struct
from typing import Any

import cocotb
import pytest
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout
from cocotbext.pcie.core.tlp import FcType, TlpType
from cocotbext.pcie.intel.ptile.interface import PTilePcieFrame

from siov_sim.model.mem import FlatHostMemory
from siov_sim.model.pcie.cfgspace import ConfigSpace
from siov_sim.model.pcie.prefix import PasidPrefix
from siov_sim.sw.driver import pci
from siov_sim.tb.cfgdump import read_config_space
from siov_sim.tb.env import Env
from siov_sim.tb.pcie.host_bus import as_host_bus
from siov_sim.tb.pcie.iommu_rc import LOW_RAM_END, IommuRootComplex
from siov_sim.tb.pcie.pasid_tlp import PasidTlp
from siov_sim.tb.pcie.ptile_ext import PTileExtDevice, frame_from_tlp, frame_to_tlp
from siov_sim.tb.runner import run_rtl

NUM_ADI = 8  # one build shared with test_sim_ptile.py and the P-tile cfgdump test


async def _up(dut: Any) -> tuple[Env, Any]:
    rc = IommuRootComplex(FlatHostMemory(0, LOW_RAM_END))
    env = Env(dut, rc=rc, num_adi=NUM_ADI)
    dev = await env.start()
    assert dev is not None
    return env, dev


def _ep(env: Env) -> PTileExtDevice:
    assert isinstance(env.ep, PTileExtDevice)
    return env.ep


@cocotb.test(timeout_time=300, timeout_unit="us")
async def config_split_and_mmio(dut: Any) -> None:
    env, dev = await _up(dut)
    ep = _ep(env)
    cs = ConfigSpace(await read_config_space(dev, 0x1000))
    assert (cs.vendor_id, cs.device_id) == (0x1DEA, 0x5105)
    pasid, dvsec = cs.pasid(), cs.siov_dvsec()
    assert pasid is not None and pasid.offset == 0x330 and pasid.max_width == 20 and pasid.priv_supported
    assert dvsec is not None and dvsec.offset == 0xD00, cs.ext_capabilities()
    assert dvsec.supported_page_sizes == 0x15 and dvsec.ims_supported and dvsec.system_page_bytes == 4096
    assert cs.ext_capabilities()[-1][2] == 0xD00 and (await dev.config_read_dword(0xD00)) >> 20 == 0
    assert await dev.config_read_dword(0xD18) == 0 and await dev.config_read_dword(0xFFC) == 0
    assert ep.cii_requests >= 4 and ep.cii_overrides >= 4
    # System Page Size: written through CII into the RTL's DVSEC, read back through CII
    await dev.config_write_dword(0xD00 + pci.SIOV_DVSEC_SYS_PAGE_SIZE, 1 << 4)  # 64 KiB
    assert await dev.config_read_dword(0xD00 + pci.SIOV_DVSEC_SYS_PAGE_SIZE) == 1 << 4
    await ClockCycles(dut.coreclkout_hip, 4)
    assert int(dut.u_fe.cfg_sys_page_shift.value) == 16
    await dev.config_write_dword(0xD00 + pci.SIOV_DVSEC_SYS_PAGE_SIZE, 1 << 1)  # not supported: ignored
    assert await dev.config_read_dword(0xD00 + pci.SIOV_DVSEC_SYS_PAGE_SIZE) == 1 << 4
    await dev.config_write_dword(0xD00 + pci.SIOV_DVSEC_SYS_PAGE_SIZE, 1)
    # PASID Enable + Privileged Mode Enable: IP capability -> tl_cfg 0x18 -> the RTL
    assert int(dut.u_fe.cfg_pasid_en.value) == 0
    await dev.config_write_word(0x330 + pci.PCI_PASID_CTRL, pci.PCI_PASID_CTRL_ENABLE | pci.PCI_PASID_CTRL_PRIV)
    await ClockCycles(dut.coreclkout_hip, 80)  # one tl_cfg round (32 indices) and then some
    assert int(dut.u_fe.cfg_pasid_en.value) == 1 and int(dut.u_fe.cfg_pasid_priv_en.value) == 1
    # MMIO: the BAR0 scratch register and ID, through the BAR-hit address rewrite
    await dev.config_write_word(pci.PCI_COMMAND, pci.PCI_COMMAND_MEMORY | pci.PCI_COMMAND_MASTER)
    await ClockCycles(dut.coreclkout_hip, 80)
    assert int(dut.u_fe.cfg_bus_master_en.value) == 1
    bar0 = dev.bar_window[0]
    assert await bar0.read_dword(0x0) == 0x53494F56  # 'SIOV'
    await bar0.write_dword(0x30, 0xC0FFEE11)
    assert await bar0.read_dword(0x30) == 0xC0FFEE11
    assert await bar0.read_dword(0x8) == NUM_ADI
    assert not ep.protocol_errors, ep.protocol_errors


@cocotb.test(timeout_time=300, timeout_unit="us")
async def flr_handshake(dut: Any) -> None:
    env, dev = await _up(dut)
    await dev.config_write_word(pci.PCI_COMMAND, pci.PCI_COMMAND_MEMORY | pci.PCI_COMMAND_MASTER)
    await ClockCycles(dut.coreclkout_hip, 80)
    await dev.bar_window[0].write_dword(0x30, 0x12345678)
    assert await dev.bar_window[0].read_dword(0x30) == 0x12345678
    await dev.config_write_dword(0xD00 + pci.SIOV_DVSEC_SYS_PAGE_SIZE, 1 << 2)  # 16 KiB
    pcie = 0xB0
    ctl = await dev.config_read_word(pcie + pci.PCI_EXP_DEVCTL)
    await with_timeout(dev.config_write_word(pcie + pci.PCI_EXP_DEVCTL, ctl | pci.PCI_EXP_DEVCTL_BCR_FLR), 50, "us")
    # the IP cleared Command; the RTL reset everything behind its front end, DVSEC included
    assert (await dev.config_read_word(pci.PCI_COMMAND)) & 0x6 == 0
    assert await dev.config_read_dword(0xD00 + pci.SIOV_DVSEC_SYS_PAGE_SIZE) == 1
    await dev.config_write_word(pci.PCI_COMMAND, pci.PCI_COMMAND_MEMORY | pci.PCI_COMMAND_MASTER)
    await ClockCycles(dut.coreclkout_hip, 80)
    assert await dev.bar_window[0].read_dword(0x30) == 0
    assert not _ep(env).protocol_errors


class _AsFunction1:
    """Stands in for the model's tl_cfg_func handle: every function number it is given goes
    out as 1, so the words that follow are those of another function."""

    def __init__(self, sig: Any) -> None:
        self.sig = sig

    @property
    def value(self) -> Any:
        return self.sig.value

    @value.setter
    def value(self, _v: int) -> None:
        self.sig.value = 1


@cocotb.test(timeout_time=300, timeout_unit="us")
async def tl_cfg_of_another_function_ignored(dut: Any) -> None:
    """tl_cfg words the IP presents for another function (tl_cfg_func != 0, as an IP built with
    more physical functions cycles through them) never reach the RTL's configuration state:
    Bus Master Enable cleared while the words carry function 1 stays set in the RTL, and is
    taken once they carry function 0 again."""
    env, dev = await _up(dut)
    ep = _ep(env)
    await dev.config_write_word(pci.PCI_COMMAND, pci.PCI_COMMAND_MEMORY | pci.PCI_COMMAND_MASTER)
    await ClockCycles(dut.coreclkout_hip, 80)
    assert int(dut.u_fe.cfg_bus_master_en.value) == 1
    real = ep.tl_cfg_func
    ep.tl_cfg_func = _AsFunction1(real)
    await ClockCycles(dut.coreclkout_hip, 80)  # the next round starts as function 1
    assert int(dut.tl_cfg_func.value) == 1
    await dev.config_write_word(pci.PCI_COMMAND, pci.PCI_COMMAND_MEMORY)
    await ClockCycles(dut.coreclkout_hip, 120)
    assert int(dut.u_fe.cfg_bus_master_en.value) == 1, "another function's Command reached the RTL"
    assert int(dut.u_fe.cfg_mem_en.value) == 1
    ep.tl_cfg_func = real
    await ClockCycles(dut.coreclkout_hip, 120)
    assert int(dut.u_fe.cfg_bus_master_en.value) == 0
    assert await dev.bar_window[0].read_dword(0x0) == 0x53494F56
    assert not ep.protocol_errors, ep.protocol_errors


@cocotb.test(timeout_time=2000, timeout_unit="us")
async def posted_credits_gate_dma(dut: Any) -> None:
    """The root port advertises 2 posted header / 40 data credits: DMA writes (MPS 512 B = 32 data
    credits) and MSI-X writes must wait on tx_cdts_limit. The model flags any TLP sent beyond the
    limit; the RTL's gate must have held a posted frame back at least once."""
    from siov_sim.sw.driver import PfDriver
    from siov_sim.sw.driver.regs_adi import RegAdiControl
    from siov_sim.sw.guest.demo import run_demo
    from siov_sim.sw.iommu import IommuDriver

    rc = IommuRootComplex(FlatHostMemory(0, LOW_RAM_END))
    env = Env(dut, rc=rc, num_adi=NUM_ADI)
    fc = env.root_port.downstream_port.fc_state[0]
    for st, n in ((fc.ph, 2), (fc.pd, 40)):  # before the link's InitFC exchange
        st.rx_initial_allocation = st.rx_credits_allocated = n
    dev = await env.start()
    assert dev is not None
    held = 0

    async def watch() -> None:
        nonlocal held
        while True:
            await RisingEdge(dut.coreclkout_hip)
            if int(dut.wr_valid.value) and int(dut.wr_sop.value) and not int(dut.busy_q.value) \
                    and not (int(dut.ok.value) & 1):
                held += 1

    cocotb.start_soon(watch())
    bus = as_host_bus(rc)
    iommu = IommuDriver(bus)
    pf = PfDriver(bus, int(dev.pcie_id), iommu, RegAdiControl.create)
    await pf.probe()
    demo = await run_demo(bus, pf, iommu, vdevs=2, size=2048, seed=5)
    assert not any(v.errors for v in demo.vdevs) and sum(v.bytes for v in demo.vdevs) > 4096
    ep = _ep(env)
    assert not ep.protocol_errors, ep.protocol_errors[:3]
    assert held > 0, "the posted-credit gate never held a DMA write back"
    assert ep.app_consumed[FcType.P][1] > 40


def test_frame_tlp_prefix_roundtrip() -> None:
    """The model extension's conversions keep the PASID prefix both ways (the released ones drop it)."""
    tlp = PasidTlp()
    tlp.fmt_type = TlpType.MEM_WRITE_64
    tlp.address = 0x1_2345_6000
    tlp.set_data(struct.pack("<4L", 1, 2, 3, 4))
    tlp.set_pasid(0x1234, pmr=True)
    frame = frame_from_tlp(tlp)
    assert frame.tlp_prfx == PasidPrefix(0x1234, True, False).pack()
    assert PTilePcieFrame.from_tlp(tlp).tlp_prfx == 0  # what the released model does
    back = frame_to_tlp(frame)
    assert back.pasid == 0x1234 and back.pmr and back.address == tlp.address and bytes(back.data) == bytes(tlp.data)
    frame.tlp_prfx = 0
    assert frame_to_tlp(frame).prefixes == []


def test_ptile_wrapper() -> None:
    run_rtl("ep_ptile_top", test_module="tests.system.test_ptile", parameters={"NumAdi": NUM_ADI},
            extra_env={"SIOV_NUM_ADI": str(NUM_ADI)})


@pytest.mark.slow
def test_ptile_wrapper_512() -> None:
    """The same tests with the 512-bit (two-segment) Avalon-ST interface: the model packs two
    TLPs into one beat where it can; the wrapper unpacks a segment per clock (own build, slow)."""
    run_rtl("ep_ptile_top", test_module="tests.system.test_ptile", parameters={"NumAdi": NUM_ADI, "DataWidth": 512},
            extra_env={"SIOV_NUM_ADI": str(NUM_ADI)})
