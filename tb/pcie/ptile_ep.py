"""The SIOV endpoint's Intel P-tile IP parameters, and the extended P-tile model built with them.

What a Quartus IP instance of the board would be configured with (the hard IP owns config space,
so these are IP parameters, not RTL): identity, BAR sizes, MSI-X table location, link (gen4 x8 on
P-tile port 1, 256-bit Avalon-ST at 250 MHz, whose completion buffer is what ep_ptile_top's
CplhFcLimit / CpldFcLimit reserve), PASID capability (20 bits, privileged mode, no execute),
End-End TLP prefix support, CII on for the Intel VSEC range (the SIOV DVSEC at 0xD00 is served by
the RTL). rtl/hip/README.md lists them for the board build.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from cocotbext.pcie.intel.ptile import PTileRxBus, PTileTxBus

from siov_sim.tb.pcie.ptile_ext import PTileExtDevice


@dataclass(frozen=True)
class PTileEpParams:
    vendor_id: int = 0x1DEA
    device_id: int = 0x5105
    subsystem_vendor_id: int = 0x1DEA
    subsystem_id: int = 0x0001
    revision_id: int = 0x01
    class_code: int = 0x088000  # system peripheral, other
    bar0_size_log2: int = 20  # PF control registers, MSI-X table/PBA (64-bit, non-prefetchable)
    max_page_shift: int = 16  # BAR2 = NumAdi portal pages of the largest system page (64 KiB)
    msix_vectors: int = 8
    msix_table_offset: int = 0x2000  # BAR0
    msix_pba_offset: int = 0x3000  # BAR0
    port_num: int = 1
    pcie_generation: int = 4
    pcie_link_width: int = 8
    max_payload_size: int = 512


def make_ptile_device(dut: Any, num_adi: int, params: PTileEpParams = PTileEpParams()) -> PTileExtDevice:
    """The extended P-tile model connected to an ``ep_ptile_top`` DUT, configured as the board's IP."""
    sig = {name: getattr(dut, name) for name in (
        "reset_status_n", "coreclkout_hip", "tx_cdts_limit", "tx_cdts_limit_tdm_idx",
        "tl_cfg_func", "tl_cfg_add", "tl_cfg_ctl",
        "cii_req", "cii_hdr_poisoned", "cii_hdr_first_be", "cii_func_num", "cii_wr_vf_active", "cii_vf_num",
        "cii_wr", "cii_addr", "cii_dout", "cii_override_en", "cii_override_din", "cii_halt",
        "flr_rcvd_pf", "flr_rcvd_vf", "flr_rcvd_pf_num", "flr_rcvd_vf_num",
        "flr_completed_pf", "flr_completed_vf", "flr_completed_pf_num", "flr_completed_vf_num",
        "app_err_valid", "app_err_hdr", "app_err_info", "app_err_func_num", "app_int")}
    dev = PTileExtDevice(
        port_num=params.port_num,
        pcie_generation=params.pcie_generation,
        pcie_link_width=params.pcie_link_width,
        pld_clk_frequency=250e6,
        max_payload_size=params.max_payload_size,
        enable_extended_tag=True,
        pf0_msix_enable=True,
        pf0_msix_table_size=params.msix_vectors - 1,
        pf0_msix_table_bir=0,
        pf0_msix_table_offset=params.msix_table_offset,
        pf0_msix_pba_bir=0,
        pf0_msix_pba_offset=params.msix_pba_offset,
        rx_bus=PTileRxBus.from_prefix(dut, "rx_st"),
        tx_bus=PTileTxBus.from_prefix(dut, "tx_st"),
        **sig,
    )
    for bus in ("rx_st", "tx_st"):  # the released model logs every frame at INFO
        logging.getLogger(f"cocotb.{dut._name}.{bus}").setLevel(logging.WARNING)
    f = dev.functions[0]
    f.vendor_id = params.vendor_id
    f.device_id = params.device_id
    f.subsystem_vendor_id = params.subsystem_vendor_id
    f.subsystem_id = params.subsystem_id
    f.revision_id = params.revision_id
    f.class_code = params.class_code
    f.configure_bar(0, 1 << params.bar0_size_log2, ext=True)
    f.configure_bar(2, num_adi << params.max_page_shift, ext=True, prefetch=True)
    return dev
