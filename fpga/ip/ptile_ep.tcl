# qsys-script: the P-tile Avalon-ST IP for PCI Express variant "ptile_ep" that fpga/board_top.sv
# instantiates. fpga/build.sh runs:
#   qsys-script --script=ip/ptile_ep.tcl --quartus-project=board_top
# and Quartus generates ip/ptile_ep/ (RTL + the IP's SDC) from the saved ip/ptile_ep.ip.
#
# What the endpoint needs from the hard IP (docs/board.md, rtl/hip/README.md):
#   * Gen3 x8 on port 0 with a 256-bit Avalon-ST interface at coreclkout_hip = 250 MHz (the RTL's
#     timing target; Gen4 would need 350..500 MHz, see rtl/README.md "Timing");
#   * one physical function, no SR-IOV, no legacy interrupt, MSI-X (8 vectors, table and PBA in
#     BAR0 at 0x2000 / 0x3000, served by the RTL);
#   * BAR0 = 1 MiB 64-bit non-prefetchable (PF control registers), BAR2 = NumAdi x 64 KiB 64-bit
#     prefetchable (ADI portal pages: 2048 x 64 KiB = 128 MiB);
#   * PASID extended capability (20-bit PASIDs, privileged mode supported, execute not) and
#     End-End TLP prefixes on the Avalon-ST streams (rx/tx_st_tlp_prfx): the PASID prefix of
#     every ADI DMA request;
#   * the configuration intercept interface (CII) and the user VSEC pointer at 0xD00, where the
#     RTL serves the Intel Scalable IOV DVSEC;
#   * FLR capability and the error interface (app_err_*) for AER logging of what the RTL detects;
#   * 8-bit (extended) tags, no 10-bit tags (the DMA read engine keeps 64 tags in flight).
# Completion credits: the P-tile advertises infinite completion credits; the DMA read engine
# never has more reads outstanding than the port's completion buffer holds (ep_ptile_top
# parameters CplhFcLimit/CpldFcLimit, 572 / 1444 = the x8 port's buffer, a safe bound for port 0).
#
# Parameter names: those marked "seen" appear in Intel-generated Platform Designer scripts of the
# P-tile IP (Quartus Prime Pro 21.x-23.x). Those marked "check" follow the same naming but could not
# be confirmed here (no Quartus on this machine): qsys-script stops with an error on a parameter name
# the installed IP does not have, so a wrong name fails the build loudly; fix it from the IP's
# parameter editor (Tools > Generate Tcl) and update this file. docs/board.md lists what to confirm.

package require -exact qsys 21.3

set device        AGFB014R24B2E2V
set num_adi       2048
set bar0_log2     20
set bar2_log2     [expr {int(log($num_adi) / log(2)) + 16}]
set vendor_id     0x1DEA
set device_id     0x5105
set class_code    0x088000
set msix_vectors  8
set msix_table    0x2000
set msix_pba      0x3000

create_system ptile_ep
set_project_property DEVICE $device
set_project_property DEVICE_FAMILY {Agilex 7}
set_project_property HIDE_FROM_IP_CATALOG {true}
set_use_testbench_naming_pattern 0 {}

add_instance hip intel_pcie_ptile_ast
proc p {name value} { set_instance_parameter_value hip $name $value }

# ---- topology, clock (seen)
p top_topology_hwtcl                               {Gen3 2x8, Interface - 256 bit}
# ---- identity (seen)
p core16_pf0_pci_type0_vendor_id_hwtcl             [expr {$vendor_id}]
p core16_pf0_pci_type0_device_id_hwtcl             [expr {$device_id}]
p core16_pf0_class_code_hwtcl                      [expr {$class_code}]
p core16_enable_multi_func_hwtcl                   0
p core16_enable_sriov_hwtcl                        0
# ---- BARs (seen)
p core16_pf0_bar0_type_user_hwtcl                  {64-bit non-prefetchable memory}
p core16_pf0_bar0_address_width_user_hwtcl         $bar0_log2
p core16_pf0_bar2_type_user_hwtcl                  {64-bit prefetchable memory}
p core16_pf0_bar2_address_width_user_hwtcl         $bar2_log2
foreach b {1 3 4 5} {
  p core16_pf0_bar${b}_type_user_hwtcl             {Disabled}
}
# ---- interrupts: MSI-X only (seen); table size is encoded N-1, offsets in 8-byte units
p core16_pf0_int_pin_hwtcl                         {NO INT}
p core16_enable_legacy_int_hwtcl                   0
p core16_pf0_pci_msix_table_size_hwtcl             [expr {$msix_vectors - 1}]
p core16_pf0_pci_msix_bir_hwtcl                    0
p core16_pf0_pci_msix_table_offset_hwtcl           [expr {$msix_table / 8}]
p core16_pf0_pci_msix_pba_hwtcl                    0
p core16_pf0_pci_msix_pba_offset_hwtcl             [expr {$msix_pba / 8}]
# ---- PASID capability (seen): 20-bit PASIDs, privileged mode supported, execute not
p core16_virtual_pf0_pasid_cap_enable_hwtcl        1
p core16_pf0_pasid_cap_max_pasid_width             20
p core16_pf0_pasid_cap_privileged_mode_supported   1
p core16_pf0_pasid_cap_execute_permission_supported 0
# ---- configuration intercept (CII) + user VSEC pointer to 0xD00 for the SIOV DVSEC (seen)
p core16_enable_cii_hwtcl                          1
p core16_user_vsec_cap_enable_hwtcl                1
# ---- tags (seen): 8-bit tags yes, 10-bit tags no
p core16_cap_ext_tag_supp_user_hwtcl               1
p core16_enable_10bit_tag_support_intf_hwtcl       0
# ---- FLR, error interface (seen)
p core16_flr_cap_user_hwtcl                        1
p core16_enable_error_intf_hwtcl                   1
p core16_enable_rx_buffer_limit_ports_hwtcl        0
# ---- End-End TLP prefix support, max payload 512 B (check: names not confirmed here)
p core16_pf0_pcie_cap_ep_tlp_prefix_supported_hwtcl 1
p core16_pf0_pcie_cap_max_ep_tlp_prefixes_hwtcl     1
p core16_pf0_pcie_cap_max_payload_size_hwtcl        {512}

# export every interface of the IP under its own name (p0_rx_st_data_o, p0_cii_req_o, ...): the
# generated module's ports are then the names fpga/board_top.sv connects (fpga/sim/ptile_ep.sv
# lists them); port 1's interfaces stay unconnected in the board top (Quartus ties its inputs low)
set_instance_property hip AUTO_EXPORT true

save_system {ip/ptile_ep.ip}
