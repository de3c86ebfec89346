// SPDX-License-Identifier: Apache-2.0
/// ep_ptile_top: the SIOV endpoint behind an Intel P-tile Avalon-ST hard IP for PCI Express
/// (user guide 683059). Port names are the IP's user-interface names without the `p0_` prefix
/// (the names cocotbext-pcie's P-tile model uses). Docs: rtl/hip/README.md.
///
/// WORK IN PROGRESS (port list committed first so the board top can be written against it).
`resetall
`default_nettype none
module ep_ptile_top #(
  parameter int unsigned DataWidth    = 256,        /// Avalon-ST width: 256 (1 segment) or 512 (2)
  parameter int unsigned NumAdi       = 4,          /// ADIs, power of two 4 .. 4096
  parameter int unsigned Bar0SizeLog2 = 20,         /// BAR0 size (IP parameter: must match)
  /// completion buffer of the P-tile port the endpoint sits on (rtl/dma/README.md): port 1
  /// (x8, 256 bit) = 572 CplH / 1444 CplD; port 0 (x16) = 1144 / 2888
  parameter int unsigned CplhFcLimit  = 572,
  parameter int unsigned CpldFcLimit  = 1444,
  localparam int unsigned Seg = DataWidth / 256     /// Avalon-ST segments (derived)
) (
  // ---- clock and reset: coreclkout_hip is the application clock; reset_status_n (IP output,
  //      synchronous to coreclkout_hip) low = application held in reset
  input  wire logic                  coreclkout_hip,
  input  wire logic                  reset_status_n,
  // ---- RX (IP -> application): requests to our BARs and completions for our reads
  input  wire logic [DataWidth-1:0]  rx_st_data,
  input  wire logic [Seg*3-1:0]      rx_st_empty,
  input  wire logic [Seg-1:0]        rx_st_sop,
  input  wire logic [Seg-1:0]        rx_st_eop,
  input  wire logic [Seg-1:0]        rx_st_valid,
  output logic                       rx_st_ready,      // ready latency 27 cycles (see README)
  input  wire logic [Seg*128-1:0]    rx_st_hdr,
  input  wire logic [Seg*32-1:0]     rx_st_tlp_prfx,
  input  wire logic [Seg*3-1:0]      rx_st_bar_range,
  input  wire logic [Seg-1:0]        rx_st_tlp_abort,
  input  wire logic [Seg-1:0]        rx_st_vf_active,
  input  wire logic [Seg*3-1:0]      rx_st_func_num,
  input  wire logic [Seg*11-1:0]     rx_st_vf_num,
  // ---- TX (application -> IP): one stream for completions, DMA writes/reads, MSI-X messages
  output logic [DataWidth-1:0]       tx_st_data,
  output logic [Seg-1:0]             tx_st_sop,
  output logic [Seg-1:0]             tx_st_eop,
  output logic [Seg-1:0]             tx_st_valid,
  input  wire logic                  tx_st_ready,      // ready latency 3 cycles (see README)
  output logic [Seg-1:0]             tx_st_err,
  output logic [Seg*128-1:0]         tx_st_hdr,
  output logic [Seg*32-1:0]          tx_st_tlp_prfx,
  // ---- TX credit limits, time-division multiplexed (idx 0 PH, 1 NPH, 2 CplH, 4 PD, 5 NPD, 6 CplD)
  input  wire logic [15:0]           tx_cdts_limit,
  input  wire logic [2:0]            tx_cdts_limit_tdm_idx,
  // ---- configuration output interface (tl_cfg), time-division multiplexed
  input  wire logic [2:0]            tl_cfg_func,
  input  wire logic [4:0]            tl_cfg_add,
  input  wire logic [15:0]           tl_cfg_ctl,
  // ---- configuration intercept interface: the SIOV DVSEC at 0xD00 is served here
  input  wire logic                  cii_req,
  input  wire logic                  cii_hdr_poisoned,
  input  wire logic [3:0]            cii_hdr_first_be,
  input  wire logic [2:0]            cii_func_num,
  input  wire logic                  cii_wr_vf_active,
  input  wire logic [10:0]           cii_vf_num,
  input  wire logic                  cii_wr,
  input  wire logic [9:0]            cii_addr,         // DW address
  input  wire logic [31:0]           cii_dout,
  output logic                       cii_override_en,
  output logic [31:0]                cii_override_din,
  output logic                       cii_halt,
  // ---- Function Level Reset handshake
  input  wire logic [7:0]            flr_rcvd_pf,
  input  wire logic                  flr_rcvd_vf,
  input  wire logic [2:0]            flr_rcvd_pf_num,
  input  wire logic [10:0]           flr_rcvd_vf_num,
  output logic [7:0]                 flr_completed_pf,
  output logic                       flr_completed_vf,
  output logic [2:0]                 flr_completed_pf_num,
  output logic [10:0]                flr_completed_vf_num,
  // ---- error reporting to the IP's AER, legacy interrupt (unused: MSI-X only)
  output logic                       app_err_valid,
  output logic [31:0]                app_err_hdr,
  output logic [12:0]                app_err_info,
  output logic [2:0]                 app_err_func_num,
  output logic [7:0]                 app_int
);
  // body follows in the next commits (port list first, see rtl/hip/README.md)
  logic unused;
  assign unused = ^{coreclkout_hip, reset_status_n, rx_st_data, rx_st_empty, rx_st_sop, rx_st_eop,
                    rx_st_valid, rx_st_hdr, rx_st_tlp_prfx, rx_st_bar_range, rx_st_tlp_abort,
                    rx_st_vf_active, rx_st_func_num, rx_st_vf_num, tx_st_ready, tx_cdts_limit,
                    tx_cdts_limit_tdm_idx, tl_cfg_func, tl_cfg_add, tl_cfg_ctl, cii_req,
                    cii_hdr_poisoned, cii_hdr_first_be, cii_func_num, cii_wr_vf_active, cii_vf_num,
                    cii_wr, cii_addr, cii_dout, flr_rcvd_pf, flr_rcvd_vf, flr_rcvd_pf_num,
                    flr_rcvd_vf_num};
  assign rx_st_ready = 1'b0;
  assign {tx_st_data, tx_st_sop, tx_st_eop, tx_st_valid, tx_st_err, tx_st_hdr, tx_st_tlp_prfx} = '0;
  assign {cii_override_en, cii_override_din, cii_halt} = '0;
  assign {flr_completed_pf, flr_completed_vf, flr_completed_pf_num, flr_completed_vf_num} = '0;
  assign {app_err_valid, app_err_hdr, app_err_info, app_err_func_num, app_int} = '0;
endmodule
`resetall
