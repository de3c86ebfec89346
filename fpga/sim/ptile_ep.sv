// SPDX-License-Identifier: Apache-2.0
/// ptile_ep (stub): the ports of the P-tile Avalon-ST IP variant that fpga/ip/ptile_ep.tcl
/// generates (Gen3 2x8, 256-bit, port 0 used, CII, FLR and error interfaces on; names as in the
/// generated <variant>.v of Quartus Prime Pro, user guide 683059 "Interfaces"), for `make lint`
/// only: Verilator -Wall and Yosys check fpga/board_top.sv against it, so a port of ep_ptile_top or
/// of the IP that the board top does not connect by the right name, width or direction fails.
/// Behaviour: the hard IP is not modelled (that is tb/pcie's job in simulation); the stub keeps the
/// application in reset (reset_status_n low) and the link down, and drives every output with a
/// defined value.
/// Not checked here: that this list is exactly the generated one (no Quartus on this machine);
/// docs/board.md says how to compare it after `fpga/build.sh ip`.
`resetall
`default_nettype none
module ptile_ep (
  // ---- port 0 Avalon-ST RX
  input  wire logic         p0_rx_st_ready_i,
  output logic              p0_rx_st_sop_o,
  output logic              p0_rx_st_eop_o,
  output logic [255:0]      p0_rx_st_data_o,
  output logic              p0_rx_st_valid_o,
  output logic [2:0]        p0_rx_st_empty_o,
  output logic [127:0]      p0_rx_st_hdr_o,
  output logic [31:0]       p0_rx_st_tlp_prfx_o,
  output logic [2:0]        p0_rx_st_bar_range_o,
  output logic              p0_rx_st_tlp_abort_o,
  output logic              p0_rx_par_err_o,
  // ---- port 0 Avalon-ST TX
  input  wire logic         p0_tx_st_sop_i,
  input  wire logic         p0_tx_st_eop_i,
  input  wire logic [255:0] p0_tx_st_data_i,
  input  wire logic         p0_tx_st_valid_i,
  input  wire logic         p0_tx_st_err_i,
  output logic              p0_tx_st_ready_o,
  input  wire logic [127:0] p0_tx_st_hdr_i,
  input  wire logic [31:0]  p0_tx_st_tlp_prfx_i,
  output logic              p0_tx_par_err_o,
  // ---- credits, config output (TDM), timers
  output logic [15:0]       p0_tx_cdts_limit_o,
  output logic [2:0]        p0_tx_cdts_limit_tdm_idx_o,
  output logic [2:0]        p0_tl_cfg_func_o,
  output logic [4:0]        p0_tl_cfg_add_o,
  output logic [15:0]       p0_tl_cfg_ctl_o,
  output logic              p0_dl_timer_update_o,
  // ---- reset and status
  output logic              p0_reset_status_n,
  output logic              p0_pin_perst_n,
  output logic              p0_link_up_o,
  output logic              p0_dl_up_o,
  output logic              p0_surprise_down_err_o,
  output logic [2:0]        p0_pm_state_o,
  output logic [5:0]        p0_ltssm_state_o,
  output logic [31:0]       p0_pm_dstate_o,
  input  wire logic [7:0]   p0_apps_pm_xmt_pme_i,
  input  wire logic [7:0]   p0_app_req_retry_en_i,
  // ---- configuration intercept interface
  output logic              p0_cii_hdr_poisoned_o,
  input  wire logic         p0_cii_override_en_i,
  output logic [3:0]        p0_cii_hdr_first_be_o,
  output logic [31:0]       p0_cii_dout_o,
  input  wire logic         p0_cii_halt_i,
  output logic              p0_cii_req_o,
  output logic [9:0]        p0_cii_addr_o,
  output logic              p0_cii_wr_o,
  input  wire logic [31:0]  p0_cii_override_din_i,
  // ---- Function Level Reset
  output logic [7:0]        p0_flr_rcvd_pf_o,
  output logic              p0_flr_rcvd_vf_o,
  output logic [2:0]        p0_flr_rcvd_pf_num_o,
  output logic [10:0]       p0_flr_rcvd_vf_num_o,
  input  wire logic [7:0]   p0_flr_completed_pf_i,
  input  wire logic         p0_flr_completed_vf_i,
  input  wire logic [2:0]   p0_flr_completed_pf_num_i,
  input  wire logic [10:0]  p0_flr_completed_vf_num_i,
  // ---- error interface (to the IP's AER)
  input  wire logic         p0_app_err_valid_i,
  input  wire logic [31:0]  p0_app_err_hdr_i,
  input  wire logic [12:0]  p0_app_err_info_i,
  input  wire logic [2:0]   p0_app_err_func_num_i,
  // ---- serial lanes, clocks, reset
  input  wire logic rx_p_in0,  input wire logic rx_n_in0,  output logic tx_p_out0,  output logic tx_n_out0,
  input  wire logic rx_p_in1,  input wire logic rx_n_in1,  output logic tx_p_out1,  output logic tx_n_out1,
  input  wire logic rx_p_in2,  input wire logic rx_n_in2,  output logic tx_p_out2,  output logic tx_n_out2,
  input  wire logic rx_p_in3,  input wire logic rx_n_in3,  output logic tx_p_out3,  output logic tx_n_out3,
  input  wire logic rx_p_in4,  input wire logic rx_n_in4,  output logic tx_p_out4,  output logic tx_n_out4,
  input  wire logic rx_p_in5,  input wire logic rx_n_in5,  output logic tx_p_out5,  output logic tx_n_out5,
  input  wire logic rx_p_in6,  input wire logic rx_n_in6,  output logic tx_p_out6,  output logic tx_n_out6,
  input  wire logic rx_p_in7,  input wire logic rx_n_in7,  output logic tx_p_out7,  output logic tx_n_out7,
  input  wire logic rx_p_in8,  input wire logic rx_n_in8,  output logic tx_p_out8,  output logic tx_n_out8,
  input  wire logic rx_p_in9,  input wire logic rx_n_in9,  output logic tx_p_out9,  output logic tx_n_out9,
  input  wire logic rx_p_in10, input wire logic rx_n_in10, output logic tx_p_out10, output logic tx_n_out10,
  input  wire logic rx_p_in11, input wire logic rx_n_in11, output logic tx_p_out11, output logic tx_n_out11,
  input  wire logic rx_p_in12, input wire logic rx_n_in12, output logic tx_p_out12, output logic tx_n_out12,
  input  wire logic rx_p_in13, input wire logic rx_n_in13, output logic tx_p_out13, output logic tx_n_out13,
  input  wire logic rx_p_in14, input wire logic rx_n_in14, output logic tx_p_out14, output logic tx_n_out14,
  input  wire logic rx_p_in15, input wire logic rx_n_in15, output logic tx_p_out15, output logic tx_n_out15,
  output logic              coreclkout_hip,
  input  wire logic         refclk0,
  input  wire logic         refclk1,
  input  wire logic         pin_perst_n,
  input  wire logic         ninit_done
);
  // the application clock: the stub passes refclk0 through (the IP makes 250 MHz from it)
  assign coreclkout_hip = refclk0;
  // application held in reset, link down, nothing received, nothing accepted, no credits
  assign p0_reset_status_n = 1'b0;
  assign p0_pin_perst_n    = pin_perst_n;
  assign {p0_link_up_o, p0_dl_up_o, p0_surprise_down_err_o} = '0;
  assign {p0_pm_state_o, p0_ltssm_state_o, p0_pm_dstate_o} = '0;
  assign {p0_rx_st_sop_o, p0_rx_st_eop_o, p0_rx_st_data_o, p0_rx_st_valid_o, p0_rx_st_empty_o} = '0;
  assign {p0_rx_st_hdr_o, p0_rx_st_tlp_prfx_o, p0_rx_st_bar_range_o, p0_rx_st_tlp_abort_o} = '0;
  assign {p0_rx_par_err_o, p0_tx_par_err_o, p0_tx_st_ready_o} = '0;
  assign {p0_tx_cdts_limit_o, p0_tx_cdts_limit_tdm_idx_o, p0_dl_timer_update_o} = '0;
  assign {p0_tl_cfg_func_o, p0_tl_cfg_add_o, p0_tl_cfg_ctl_o} = '0;
  assign {p0_cii_hdr_poisoned_o, p0_cii_hdr_first_be_o, p0_cii_dout_o, p0_cii_req_o, p0_cii_addr_o,
          p0_cii_wr_o} = '0;
  assign {p0_flr_rcvd_pf_o, p0_flr_rcvd_vf_o, p0_flr_rcvd_pf_num_o, p0_flr_rcvd_vf_num_o} = '0;
  // electrical idle on every lane
  assign {tx_p_out0, tx_p_out1, tx_p_out2, tx_p_out3, tx_p_out4, tx_p_out5, tx_p_out6, tx_p_out7,
          tx_p_out8, tx_p_out9, tx_p_out10, tx_p_out11, tx_p_out12, tx_p_out13, tx_p_out14, tx_p_out15} = '0;
  assign {tx_n_out0, tx_n_out1, tx_n_out2, tx_n_out3, tx_n_out4, tx_n_out5, tx_n_out6, tx_n_out7,
          tx_n_out8, tx_n_out9, tx_n_out10, tx_n_out11, tx_n_out12, tx_n_out13, tx_n_out14, tx_n_out15} = '0;
  logic unused;
  assign unused = ^{p0_rx_st_ready_i, p0_tx_st_sop_i, p0_tx_st_eop_i, p0_tx_st_data_i, p0_tx_st_valid_i,
                    p0_tx_st_err_i, p0_tx_st_hdr_i, p0_tx_st_tlp_prfx_i, p0_apps_pm_xmt_pme_i,
                    p0_app_req_retry_en_i, p0_cii_override_en_i, p0_cii_halt_i, p0_cii_override_din_i,
                    p0_flr_completed_pf_i, p0_flr_completed_vf_i, p0_flr_completed_pf_num_i,
                    p0_flr_completed_vf_num_i, p0_app_err_valid_i, p0_app_err_hdr_i, p0_app_err_info_i,
                    p0_app_err_func_num_i, refclk1, ninit_done,
                    rx_p_in0, rx_p_in1, rx_p_in2, rx_p_in3, rx_p_in4, rx_p_in5, rx_p_in6, rx_p_in7,
                    rx_p_in8, rx_p_in9, rx_p_in10, rx_p_in11, rx_p_in12, rx_p_in13, rx_p_in14, rx_p_in15,
                    rx_n_in0, rx_n_in1, rx_n_in2, rx_n_in3, rx_n_in4, rx_n_in5, rx_n_in6, rx_n_in7,
                    rx_n_in8, rx_n_in9, rx_n_in10, rx_n_in11, rx_n_in12, rx_n_in13, rx_n_in14, rx_n_in15};
endmodule
`resetall
