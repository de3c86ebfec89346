// SPDX-License-Identifier: Apache-2.0
/// ep_dma_tb: test-only wrapper for tests/rtl/test_ep_dma.py: ep_dma with an ep_ram_sdp local
/// buffer (write port <- DMA reads, read port -> DMA writes), the way a client wires it.
`resetall
`default_nettype none
module ep_dma_tb #(
  parameter int unsigned DataWidth    = 256,
  parameter int unsigned RamAddrWidth = 16,
  parameter int unsigned CplTimeout   = 100000
) (
  input  wire logic                    clk,
  input  wire logic                    rst,
  input  wire logic [15:0]             cfg_requester_id,
  input  wire logic                    cfg_bus_master_en,
  input  wire logic [2:0]              cfg_max_payload,
  input  wire logic [2:0]              cfg_max_read_req,
  input  wire logic                    cfg_ext_tag_en,
  input  wire logic                    cfg_pasid_en,
  input  wire logic                    cfg_pasid_priv_en,
  input  wire logic [63:0]             s_rd_req_addr,
  input  wire logic [15:0]             s_rd_req_len,
  input  wire logic [RamAddrWidth-1:0] s_rd_req_ram_addr,
  input  wire logic                    s_rd_req_pasid_valid,
  input  wire logic [19:0]             s_rd_req_pasid,
  input  wire logic                    s_rd_req_pmr,
  input  wire logic [7:0]              s_rd_req_tag,
  input  wire logic                    s_rd_req_valid,
  output logic                         s_rd_req_ready,
  output logic [7:0]                   m_rd_sts_tag,
  output logic [3:0]                   m_rd_sts_error,
  output logic                         m_rd_sts_valid,
  input  wire logic [63:0]             s_wr_req_addr,
  input  wire logic [15:0]             s_wr_req_len,
  input  wire logic [RamAddrWidth-1:0] s_wr_req_ram_addr,
  input  wire logic                    s_wr_req_imm_en,
  input  wire logic [DataWidth-1:0]    s_wr_req_imm_data,
  input  wire logic                    s_wr_req_pasid_valid,
  input  wire logic [19:0]             s_wr_req_pasid,
  input  wire logic                    s_wr_req_pmr,
  input  wire logic [7:0]              s_wr_req_tag,
  input  wire logic                    s_wr_req_valid,
  output logic                         s_wr_req_ready,
  output logic [7:0]                   m_wr_sts_tag,
  output logic [3:0]                   m_wr_sts_error,
  output logic                         m_wr_sts_valid,
  input  wire logic [63:0]             s_msi_req_addr,
  input  wire logic [31:0]             s_msi_req_data,
  input  wire logic                    s_msi_req_valid,
  output logic                         s_msi_req_ready,
  output logic [127:0]                 tx_wr_req_tlp_hdr,
  output logic [DataWidth-1:0]         tx_wr_req_tlp_data,
  output logic [DataWidth/32-1:0]      tx_wr_req_tlp_strb,
  output logic [31:0]                  tx_wr_req_tlp_prfx,
  output logic                         tx_wr_req_tlp_valid,
  output logic                         tx_wr_req_tlp_sop,
  output logic                         tx_wr_req_tlp_eop,
  input  wire logic                    tx_wr_req_tlp_ready,
  output logic [127:0]                 tx_rd_req_tlp_hdr,
  output logic [31:0]                  tx_rd_req_tlp_prfx,
  output logic                         tx_rd_req_tlp_valid,
  output logic                         tx_rd_req_tlp_sop,
  output logic                         tx_rd_req_tlp_eop,
  input  wire logic                    tx_rd_req_tlp_ready,
  input  wire logic [127:0]            rx_cpl_tlp_hdr,
  input  wire logic [DataWidth-1:0]    rx_cpl_tlp_data,
  input  wire logic [DataWidth/32-1:0] rx_cpl_tlp_strb,
  input  wire logic                    rx_cpl_tlp_valid,
  input  wire logic                    rx_cpl_tlp_sop,
  input  wire logic                    rx_cpl_tlp_eop,
  output logic                         rx_cpl_tlp_ready,
  output logic                         m_stat_unexp_cpl,
  output logic                         m_stat_msi_drop,
  output logic                         m_rd_busy,
  output logic                         m_wr_busy
);
  localparam int unsigned B   = DataWidth / 8;
  localparam int unsigned WAW = RamAddrWidth - $clog2(B);

  logic [WAW-1:0]       ram_wr_addr, ram_rd_addr;
  logic [B-1:0]         ram_wr_be;
  logic [DataWidth-1:0] ram_wr_data, ram_rd_data;
  logic                 ram_wr_valid, ram_rd_valid, ram_rd_valid_q;

  ep_dma #(.DataWidth(DataWidth), .RamAddrWidth(RamAddrWidth)) u_dma (
    .clk, .rst,
    .cfg_requester_id, .cfg_bus_master_en, .cfg_max_payload, .cfg_max_read_req, .cfg_ext_tag_en,
    .cfg_pasid_en, .cfg_pasid_priv_en, .cfg_cpl_timeout(28'(CplTimeout)),
    .s_rd_req_addr, .s_rd_req_len, .s_rd_req_ram_addr, .s_rd_req_pasid_valid, .s_rd_req_pasid,
    .s_rd_req_pmr, .s_rd_req_tag, .s_rd_req_valid, .s_rd_req_ready,
    .m_rd_sts_tag, .m_rd_sts_error, .m_rd_sts_valid,
    .m_ram_wr_addr (ram_wr_addr), .m_ram_wr_be (ram_wr_be), .m_ram_wr_data (ram_wr_data),
    .m_ram_wr_valid (ram_wr_valid), .m_ram_wr_ready (1'b1),
    .s_wr_req_addr, .s_wr_req_len, .s_wr_req_ram_addr, .s_wr_req_imm_en, .s_wr_req_imm_data,
    .s_wr_req_pasid_valid, .s_wr_req_pasid, .s_wr_req_pmr, .s_wr_req_tag, .s_wr_req_valid,
    .s_wr_req_ready,
    .m_wr_sts_tag, .m_wr_sts_error, .m_wr_sts_valid,
    .s_msi_req_addr, .s_msi_req_data, .s_msi_req_tag(1'b0), .s_msi_req_valid, .s_msi_req_ready,
    .m_ram_rd_cmd_addr (ram_rd_addr), .m_ram_rd_cmd_valid (ram_rd_valid), .m_ram_rd_cmd_ready (1'b1),
    .s_ram_rd_resp_data (ram_rd_data), .s_ram_rd_resp_valid (ram_rd_valid_q),
    .tx_wr_req_tlp_hdr, .tx_wr_req_tlp_data, .tx_wr_req_tlp_strb, .tx_wr_req_tlp_prfx,
    .tx_wr_req_tlp_valid, .tx_wr_req_tlp_sop, .tx_wr_req_tlp_eop, .tx_wr_req_tlp_ready,
    .tx_rd_req_tlp_hdr, .tx_rd_req_tlp_prfx, .tx_rd_req_tlp_valid, .tx_rd_req_tlp_sop,
    .tx_rd_req_tlp_eop, .tx_rd_req_tlp_ready,
    .rx_cpl_tlp_hdr, .rx_cpl_tlp_data, .rx_cpl_tlp_strb, .rx_cpl_tlp_valid, .rx_cpl_tlp_sop,
    .rx_cpl_tlp_eop, .rx_cpl_tlp_ready,
    .m_stat_unexp_cpl, .m_stat_cpl_timeout(), .m_stat_msi_drop, .m_stat_msi_drop_tag(), .m_rd_busy, .m_wr_busy
  );

  ep_ram_sdp #(.Width(DataWidth), .Depth(2**WAW), .BeWidth(B)) u_buf (
    .clk,
    .wr_en (ram_wr_valid), .wr_addr (ram_wr_addr), .wr_be (ram_wr_be), .wr_data (ram_wr_data),
    .rd_en (ram_rd_valid), .rd_addr (ram_rd_addr), .rd_data (ram_rd_data)
  );

  always_ff @(posedge clk) begin
    if (rst) ram_rd_valid_q <= 1'b0;
    else     ram_rd_valid_q <= ram_rd_valid;
  end
endmodule
`resetall
