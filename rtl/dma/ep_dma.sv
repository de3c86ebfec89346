// SPDX-License-Identifier: Apache-2.0
/// ep_dma: the shared DMA engine = ep_dma_rd (MRd out, completions in -> local buffer RAM writes)
/// + ep_dma_wr (local buffer RAM reads / immediate data -> MWr out, interrupt messages), sharing
/// the config inputs. Client interface and rules: rtl/dma/README.md.
`resetall
`default_nettype none
module ep_dma #(
  parameter int unsigned DataWidth     = 256,      /// TLP data / RAM word width (multiple of 64)
  parameter int unsigned RamAddrWidth  = 16,       /// local buffer byte address width
  parameter int unsigned LenWidth      = 16,       /// request length width (bytes)
  parameter int unsigned TagWidth      = 8,        /// client tag width
  parameter int unsigned NumTags       = 64,       /// PCIe read tags (32..256)
  parameter int unsigned NumOps        = 16,       /// client read requests in flight
  parameter int unsigned CplhFcLimit   = 572,      /// completion header credits (rtl/dma/README.md)
  parameter int unsigned CpldFcLimit   = 1444,     /// completion data credits, 16 bytes each
  parameter int unsigned RcbBytes      = 64,       /// completer RCB assumed for splits
  parameter int unsigned WordFifoDepth = 8,        /// write path RAM read credits
  parameter int unsigned MsiTagWidth   = 1         /// interrupt message source tag width
) (
  input  wire logic                       clk,
  input  wire logic                       rst,
  /// config (quasi-static, from ep_cfg_space)
  input  wire logic [15:0]                cfg_requester_id,
  input  wire logic                       cfg_bus_master_en,
  input  wire logic [2:0]                 cfg_max_payload,
  input  wire logic [2:0]                 cfg_max_read_req,
  input  wire logic                       cfg_ext_tag_en,
  input  wire logic                       cfg_pasid_en,
  input  wire logic                       cfg_pasid_priv_en,
  input  wire logic [27:0]                cfg_cpl_timeout,   // completion timeout, clock cycles
  /// read request (sink) / status (NO ready) / local buffer write port
  input  wire logic [63:0]                s_rd_req_addr,
  input  wire logic [LenWidth-1:0]        s_rd_req_len,
  input  wire logic [RamAddrWidth-1:0]    s_rd_req_ram_addr,
  input  wire logic                       s_rd_req_pasid_valid,
  input  wire logic [19:0]                s_rd_req_pasid,
  input  wire logic                       s_rd_req_pmr,
  input  wire logic [TagWidth-1:0]        s_rd_req_tag,
  input  wire logic                       s_rd_req_valid,
  output logic                            s_rd_req_ready,
  output logic [TagWidth-1:0]             m_rd_sts_tag,
  output logic [3:0]                      m_rd_sts_error,
  output logic                            m_rd_sts_valid,
  output logic [RamAddrWidth-$clog2(DataWidth/8)-1:0] m_ram_wr_addr,
  output logic [DataWidth/8-1:0]          m_ram_wr_be,
  output logic [DataWidth-1:0]            m_ram_wr_data,
  output logic                            m_ram_wr_valid,
  input  wire logic                       m_ram_wr_ready,
  /// write request (sink) / status (NO ready) / interrupt message (sink) / local buffer read port
  input  wire logic [63:0]                s_wr_req_addr,
  input  wire logic [LenWidth-1:0]        s_wr_req_len,
  input  wire logic [RamAddrWidth-1:0]    s_wr_req_ram_addr,
  input  wire logic                       s_wr_req_imm_en,
  input  wire logic [DataWidth-1:0]       s_wr_req_imm_data,
  input  wire logic                       s_wr_req_pasid_valid,
  input  wire logic [19:0]                s_wr_req_pasid,
  input  wire logic                       s_wr_req_pmr,
  input  wire logic [TagWidth-1:0]        s_wr_req_tag,
  input  wire logic                       s_wr_req_valid,
  output logic                            s_wr_req_ready,
  output logic [TagWidth-1:0]             m_wr_sts_tag,
  output logic [3:0]                      m_wr_sts_error,
  output logic                            m_wr_sts_valid,
  input  wire logic [63:0]                s_msi_req_addr,
  input  wire logic [31:0]                s_msi_req_data,
  input  wire logic [MsiTagWidth-1:0]     s_msi_req_tag,
  input  wire logic                       s_msi_req_valid,
  output logic                            s_msi_req_ready,
  output logic [RamAddrWidth-$clog2(DataWidth/8)-1:0] m_ram_rd_cmd_addr,
  output logic                            m_ram_rd_cmd_valid,
  input  wire logic                       m_ram_rd_cmd_ready,
  input  wire logic [DataWidth-1:0]       s_ram_rd_resp_data,
  input  wire logic                       s_ram_rd_resp_valid,
  /// link streams (rtl/README.md), wired straight to ep_top
  output logic [127:0]                    tx_wr_req_tlp_hdr,
  output logic [DataWidth-1:0]            tx_wr_req_tlp_data,
  output logic [DataWidth/32-1:0]         tx_wr_req_tlp_strb,
  output logic [31:0]                     tx_wr_req_tlp_prfx,
  output logic                            tx_wr_req_tlp_valid,
  output logic                            tx_wr_req_tlp_sop,
  output logic                            tx_wr_req_tlp_eop,
  input  wire logic                       tx_wr_req_tlp_ready,
  output logic [127:0]                    tx_rd_req_tlp_hdr,
  output logic [31:0]                     tx_rd_req_tlp_prfx,
  output logic                            tx_rd_req_tlp_valid,
  output logic                            tx_rd_req_tlp_sop,
  output logic                            tx_rd_req_tlp_eop,
  input  wire logic                       tx_rd_req_tlp_ready,
  input  wire logic [127:0]               rx_cpl_tlp_hdr,
  input  wire logic [DataWidth-1:0]       rx_cpl_tlp_data,
  input  wire logic [DataWidth/32-1:0]    rx_cpl_tlp_strb,
  input  wire logic                       rx_cpl_tlp_valid,
  input  wire logic                       rx_cpl_tlp_sop,
  input  wire logic                       rx_cpl_tlp_eop,
  output logic                            rx_cpl_tlp_ready,
  /// statistics / drain
  output logic                            m_stat_unexp_cpl,  // pulse per dropped completion
  output logic                            m_stat_cpl_timeout, // pulse per timed-out read tag
  output logic                            m_stat_msi_drop,   // pulse per message dropped (BME = 0)
  output logic [MsiTagWidth-1:0]          m_stat_msi_drop_tag, // its s_msi_req_tag
  output logic                            m_rd_busy,
  output logic                            m_wr_busy
);
  ep_dma_rd #(
    .DataWidth (DataWidth), .RamAddrWidth (RamAddrWidth), .LenWidth (LenWidth),
    .TagWidth (TagWidth), .NumTags (NumTags), .NumOps (NumOps), .CplhFcLimit (CplhFcLimit),
    .CpldFcLimit (CpldFcLimit), .RcbBytes (RcbBytes)
  ) u_rd (
    .clk, .rst,
    .cfg_requester_id, .cfg_bus_master_en, .cfg_max_read_req, .cfg_ext_tag_en,
    .cfg_pasid_en, .cfg_pasid_priv_en, .cfg_cpl_timeout,
    .s_rd_req_addr, .s_rd_req_len, .s_rd_req_ram_addr, .s_rd_req_pasid_valid, .s_rd_req_pasid,
    .s_rd_req_pmr, .s_rd_req_tag, .s_rd_req_valid, .s_rd_req_ready,
    .m_rd_sts_tag, .m_rd_sts_error, .m_rd_sts_valid,
    .m_ram_wr_addr, .m_ram_wr_be, .m_ram_wr_data, .m_ram_wr_valid, .m_ram_wr_ready,
    .tx_rd_req_tlp_hdr, .tx_rd_req_tlp_prfx, .tx_rd_req_tlp_valid, .tx_rd_req_tlp_sop,
    .tx_rd_req_tlp_eop, .tx_rd_req_tlp_ready,
    .rx_cpl_tlp_hdr, .rx_cpl_tlp_data, .rx_cpl_tlp_strb, .rx_cpl_tlp_valid, .rx_cpl_tlp_sop,
    .rx_cpl_tlp_eop, .rx_cpl_tlp_ready,
    .m_stat_unexp_cpl, .m_stat_cpl_timeout, .m_rd_busy
  );

  ep_dma_wr #(
    .DataWidth (DataWidth), .RamAddrWidth (RamAddrWidth), .LenWidth (LenWidth),
    .TagWidth (TagWidth), .WordFifoDepth (WordFifoDepth), .MsiTagWidth (MsiTagWidth)
  ) u_wr (
    .clk, .rst,
    .cfg_requester_id, .cfg_bus_master_en, .cfg_max_payload, .cfg_pasid_en, .cfg_pasid_priv_en,
    .s_wr_req_addr, .s_wr_req_len, .s_wr_req_ram_addr, .s_wr_req_imm_en, .s_wr_req_imm_data,
    .s_wr_req_pasid_valid, .s_wr_req_pasid, .s_wr_req_pmr, .s_wr_req_tag, .s_wr_req_valid,
    .s_wr_req_ready,
    .m_wr_sts_tag, .m_wr_sts_error, .m_wr_sts_valid,
    .s_msi_req_addr, .s_msi_req_data, .s_msi_req_tag, .s_msi_req_valid, .s_msi_req_ready,
    .m_stat_msi_drop, .m_stat_msi_drop_tag,
    .m_ram_rd_cmd_addr, .m_ram_rd_cmd_valid, .m_ram_rd_cmd_ready, .s_ram_rd_resp_data,
    .s_ram_rd_resp_valid,
    .tx_wr_req_tlp_hdr, .tx_wr_req_tlp_data, .tx_wr_req_tlp_strb, .tx_wr_req_tlp_prfx,
    .tx_wr_req_tlp_valid, .tx_wr_req_tlp_sop, .tx_wr_req_tlp_eop, .tx_wr_req_tlp_ready,
    .m_wr_busy
  );
endmodule
`resetall
