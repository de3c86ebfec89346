// SPDX-License-Identifier: Apache-2.0
/// tb_ep_tlp_path: test-only wrapper = ep_pcie_fe + a small register responder standing in for
/// ep_core: 1024 DW per BAR (offset bits [11:2]), byte enables honoured, responses in order after
/// two cycles, s_reg_ready throttled by an LFSR when `stall` is set.
`resetall
`default_nettype none
module tb_ep_tlp_path #(
  parameter int unsigned DataWidth    = 256,
  parameter int unsigned NumAdi       = 4,
  parameter int unsigned Bar0SizeLog2 = 20,
  localparam int unsigned S = DataWidth / 32
) (
  input  wire logic                 clk,
  input  wire logic                 rst,
  input  wire logic [127:0]         rx_req_tlp_hdr,
  input  wire logic [DataWidth-1:0] rx_req_tlp_data,
  input  wire logic [S-1:0]         rx_req_tlp_strb,
  input  wire logic [31:0]          rx_req_tlp_prfx,
  input  wire logic                 rx_req_tlp_valid,
  input  wire logic                 rx_req_tlp_sop,
  input  wire logic                 rx_req_tlp_eop,
  output logic                      rx_req_tlp_ready,
  output logic [127:0]              tx_cpl_tlp_hdr,
  output logic [DataWidth-1:0]      tx_cpl_tlp_data,
  output logic [S-1:0]              tx_cpl_tlp_strb,
  output logic                      tx_cpl_tlp_valid,
  output logic                      tx_cpl_tlp_sop,
  output logic                      tx_cpl_tlp_eop,
  input  wire logic                 tx_cpl_tlp_ready,
  input  wire logic [127:0]         rx_cpl_tlp_hdr,
  input  wire logic                 rx_cpl_tlp_valid,
  input  wire logic                 rx_cpl_tlp_sop,
  input  wire logic                 stall,
  input  wire logic                 dma_tp,        // stands in for ep_core's Transactions Pending
  output logic                      flr_rst,
  // observation of the register bus
  output logic [31:0]               reg_count,     // requests accepted
  output logic                      last_bar,
  output logic [31:0]               last_addr,
  output logic                      last_write,
  output logic [3:0]                last_be,
  output logic [15:0]               cfg_requester_id,
  output logic [4:0]                cfg_sys_page_shift
);
  logic        reg_valid, reg_ready, reg_bar, reg_write;
  logic [31:0] reg_addr, reg_wdata;
  logic [3:0]  reg_be;
  logic        rsp_valid;
  logic [31:0] rsp_rdata;
  logic        bme, ete, pe, pxe, ppe, me, mfm;
  logic [2:0]  mps, mrrs;

  ep_pcie_fe #(
    .DataWidth(DataWidth), .NumAdi(NumAdi), .Bar0SizeLog2(Bar0SizeLog2)
  ) u_fe (
    .clk(clk), .rst(rst),
    .rx_req_tlp_hdr(rx_req_tlp_hdr), .rx_req_tlp_data(rx_req_tlp_data),
    .rx_req_tlp_strb(rx_req_tlp_strb), .rx_req_tlp_prfx(rx_req_tlp_prfx),
    .rx_req_tlp_valid(rx_req_tlp_valid), .rx_req_tlp_sop(rx_req_tlp_sop),
    .rx_req_tlp_eop(rx_req_tlp_eop), .rx_req_tlp_ready(rx_req_tlp_ready),
    .tx_cpl_tlp_hdr(tx_cpl_tlp_hdr), .tx_cpl_tlp_data(tx_cpl_tlp_data),
    .tx_cpl_tlp_strb(tx_cpl_tlp_strb), .tx_cpl_tlp_valid(tx_cpl_tlp_valid),
    .tx_cpl_tlp_sop(tx_cpl_tlp_sop), .tx_cpl_tlp_eop(tx_cpl_tlp_eop),
    .tx_cpl_tlp_ready(tx_cpl_tlp_ready),
    .mon_rx_cpl_tlp_hdr(rx_cpl_tlp_hdr), .mon_rx_cpl_tlp_valid(rx_cpl_tlp_valid),
    .mon_rx_cpl_tlp_sop(rx_cpl_tlp_sop), .mon_rx_cpl_tlp_ready(1'b1),
    .m_reg_valid(reg_valid), .m_reg_ready(reg_ready), .m_reg_bar(reg_bar),
    .m_reg_addr(reg_addr), .m_reg_write(reg_write), .m_reg_wdata(reg_wdata), .m_reg_be(reg_be),
    .s_reg_rsp_valid(rsp_valid), .s_reg_rsp_rdata(rsp_rdata),
    .cfg_requester_id(cfg_requester_id), .cfg_bus_master_en(bme), .cfg_max_payload(mps),
    .cfg_max_read_req(mrrs), .cfg_ext_tag_en(ete), .cfg_pasid_en(pe), .cfg_pasid_exec_en(pxe),
    .cfg_pasid_priv_en(ppe), .cfg_msix_en(me), .cfg_msix_func_mask(mfm),
    .cfg_sys_page_shift(cfg_sys_page_shift),
    .dma_tp(dma_tp), .err_cpl_timeout(1'b0), .err_unexp_cpl(1'b0), .flr_rst(flr_rst),
    // HipCfg = 0: the hard-IP inputs are unused
    .hip_cfg_requester_id(16'h0), .hip_cfg_mem_en(1'b0), .hip_cfg_bus_master_en(1'b0),
    .hip_cfg_max_payload(3'h0), .hip_cfg_max_read_req(3'h0), .hip_cfg_ext_tag_en(1'b0),
    .hip_cfg_pasid_en(1'b0), .hip_cfg_pasid_priv_en(1'b0), .hip_cfg_msix_en(1'b0),
    .hip_cfg_msix_func_mask(1'b0), .hip_flr(1'b0), .s_xcfg_valid(1'b0), .s_xcfg_write(1'b0),
    .s_xcfg_dw(10'h0), .s_xcfg_wdata(32'h0), .s_xcfg_be(4'h0), .m_xcfg_rdata()
  );

  logic [15:0] lfsr_q;
  logic [31:0] mem_q [2048];
  logic [1:0]  pipe_v_q;
  logic [31:0] pipe_d_q [2];
  logic [10:0] idx;
  assign idx       = {reg_bar, reg_addr[11:2]};
  assign reg_ready = !stall || lfsr_q[0];

  always_ff @(posedge clk) begin
    lfsr_q <= {lfsr_q[14:0], lfsr_q[15] ^ lfsr_q[13] ^ lfsr_q[12] ^ lfsr_q[10]};
    pipe_v_q <= {pipe_v_q[0], reg_valid && reg_ready};
    pipe_d_q[1] <= pipe_d_q[0];
    pipe_d_q[0] <= reg_write ? 32'h0 : mem_q[idx];
    if (reg_valid && reg_ready) begin
      reg_count  <= reg_count + 1;
      last_bar   <= reg_bar;
      last_addr  <= reg_addr;
      last_write <= reg_write;
      last_be    <= reg_be;
      if (reg_write) begin
        for (int b = 0; b < 4; b++) begin
          if (reg_be[b]) mem_q[idx][8*b +: 8] <= reg_wdata[8*b +: 8];
        end
      end
    end
    if (rst) begin
      lfsr_q <= 16'hACE1;
      pipe_v_q <= '0;
      reg_count <= '0;
    end
  end
  assign rsp_valid = pipe_v_q[1];
  assign rsp_rdata = pipe_d_q[1];

  logic unused_tb;
  assign unused_tb = ^{bme, ete, pe, pxe, ppe, me, mfm, mps, mrrs, reg_addr[31:12]};
endmodule
`resetall
