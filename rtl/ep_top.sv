// SPDX-License-Identifier: Apache-2.0
/// ep_top: the SIOV endpoint = PCIe front end (ep_pcie_fe: config space, TLP decode, MMIO,
/// completions) + ep_core (BAR0 registers, MSI-X, IMS, ADIs, DMA). Link side: the five generic
/// TLP streams of rtl/README.md; a board wrapper adapts them to a vendor hard IP.
`resetall
`default_nettype none
module ep_top #(
  parameter int unsigned DataWidth    = 256,        /// TLP data width (power of two, 64 .. 1024)
  parameter int unsigned NumAdi       = 4,          /// ADIs, power of two 4 .. 4096
  parameter logic [15:0] VendorId     = 16'h1DEA,   /// config space Vendor ID
  parameter logic [15:0] DeviceId     = 16'h5105,   /// config space Device ID
  parameter int unsigned Bar0SizeLog2 = 20,         /// BAR0 size = 2**Bar0SizeLog2 bytes
  /// DMA completion credits the hard IP's receive buffer holds (rtl/dma/README.md). Defaults:
  /// Intel P-tile port 1 (x8, 256-bit Avalon-ST) completion buffer, 572 CplH / 1444 CplD.
  parameter int unsigned CplhFcLimit  = 572,        /// completion header credits
  parameter int unsigned CpldFcLimit  = 1444,       /// completion data credits (16 bytes each)
  localparam int unsigned S = DataWidth / 32        /// DWs per beat (derived, do not override)
) (
  input  wire logic                 clk,
  input  wire logic                 rst,            // synchronous, active-high
  /// host -> EP requests (CfgRd0/CfgWr0, MRd, MWr, anything else the link delivers)
  input  wire logic [127:0]         rx_req_tlp_hdr,
  input  wire logic [DataWidth-1:0] rx_req_tlp_data,
  input  wire logic [S-1:0]         rx_req_tlp_strb,
  input  wire logic [31:0]          rx_req_tlp_prfx,
  input  wire logic                 rx_req_tlp_valid,
  input  wire logic                 rx_req_tlp_sop,
  input  wire logic                 rx_req_tlp_eop,
  output logic                      rx_req_tlp_ready,
  /// completions for config and MMIO reads
  output logic [127:0]              tx_cpl_tlp_hdr,
  output logic [DataWidth-1:0]      tx_cpl_tlp_data,
  output logic [S-1:0]              tx_cpl_tlp_strb,
  output logic                      tx_cpl_tlp_valid,
  output logic                      tx_cpl_tlp_sop,
  output logic                      tx_cpl_tlp_eop,
  input  wire logic                 tx_cpl_tlp_ready,
  /// DMA MWr, MSI-X and IMS messages
  output logic [127:0]              tx_wr_req_tlp_hdr,
  output logic [DataWidth-1:0]      tx_wr_req_tlp_data,
  output logic [S-1:0]              tx_wr_req_tlp_strb,
  output logic [31:0]               tx_wr_req_tlp_prfx,
  output logic                      tx_wr_req_tlp_valid,
  output logic                      tx_wr_req_tlp_sop,
  output logic                      tx_wr_req_tlp_eop,
  input  wire logic                 tx_wr_req_tlp_ready,
  /// DMA MRd
  output logic [127:0]              tx_rd_req_tlp_hdr,
  output logic [31:0]               tx_rd_req_tlp_prfx,
  output logic                      tx_rd_req_tlp_valid,
  output logic                      tx_rd_req_tlp_sop,
  output logic                      tx_rd_req_tlp_eop,
  input  wire logic                 tx_rd_req_tlp_ready,
  /// completions for DMA reads
  input  wire logic [127:0]         rx_cpl_tlp_hdr,
  input  wire logic [DataWidth-1:0] rx_cpl_tlp_data,
  input  wire logic [S-1:0]         rx_cpl_tlp_strb,
  input  wire logic                 rx_cpl_tlp_valid,
  input  wire logic                 rx_cpl_tlp_sop,
  input  wire logic                 rx_cpl_tlp_eop,
  output logic                      rx_cpl_tlp_ready
);
  logic        reg_valid, reg_ready, reg_bar, reg_write;
  logic        cpl_valid, cpl_ready, rd_valid, rd_ready;   // TX streams before the ordering gates
  logic [31:0] reg_addr, reg_wdata;
  logic [3:0]  reg_be;
  logic        reg_rsp_valid;
  logic [31:0] reg_rsp_rdata;
  logic [15:0] cfg_requester_id;
  logic        cfg_bus_master_en, cfg_ext_tag_en, cfg_pasid_en, cfg_pasid_exec_en;
  logic        cfg_pasid_priv_en, cfg_msix_en, cfg_msix_func_mask;
  logic [2:0]  cfg_max_payload, cfg_max_read_req;
  logic [4:0]  cfg_sys_page_shift;
  logic        dma_tp, err_cpl_timeout, err_unexp_cpl, flr_rst, core_rst;
  logic [31:0] unused_xcfg_rdata;  // HipCfg = 0: no second config port
  assign core_rst = rst || flr_rst;  // Function Level Reset: everything behind the front end

  ep_pcie_fe #(
    .DataWidth   (DataWidth),
    .NumAdi      (NumAdi),
    .Bar0SizeLog2(Bar0SizeLog2),
    .VendorId    (VendorId),
    .DeviceId    (DeviceId)
  ) u_fe (
    .clk                 (clk),
    .rst                 (rst),
    .rx_req_tlp_hdr      (rx_req_tlp_hdr),
    .rx_req_tlp_data     (rx_req_tlp_data),
    .rx_req_tlp_strb     (rx_req_tlp_strb),
    .rx_req_tlp_prfx     (rx_req_tlp_prfx),
    .rx_req_tlp_valid    (rx_req_tlp_valid),
    .rx_req_tlp_sop      (rx_req_tlp_sop),
    .rx_req_tlp_eop      (rx_req_tlp_eop),
    .rx_req_tlp_ready    (rx_req_tlp_ready),
    .tx_cpl_tlp_hdr      (tx_cpl_tlp_hdr),
    .tx_cpl_tlp_data     (tx_cpl_tlp_data),
    .tx_cpl_tlp_strb     (tx_cpl_tlp_strb),
    .tx_cpl_tlp_valid    (cpl_valid),
    .tx_cpl_tlp_sop      (tx_cpl_tlp_sop),
    .tx_cpl_tlp_eop      (tx_cpl_tlp_eop),
    .tx_cpl_tlp_ready    (cpl_ready),
    .mon_rx_cpl_tlp_hdr  (rx_cpl_tlp_hdr),
    .mon_rx_cpl_tlp_valid(rx_cpl_tlp_valid),
    .mon_rx_cpl_tlp_sop  (rx_cpl_tlp_sop),
    .mon_rx_cpl_tlp_ready(rx_cpl_tlp_ready),
    .m_reg_valid         (reg_valid),
    .m_reg_ready         (reg_ready),
    .m_reg_bar           (reg_bar),
    .m_reg_addr          (reg_addr),
    .m_reg_write         (reg_write),
    .m_reg_wdata         (reg_wdata),
    .m_reg_be            (reg_be),
    .s_reg_rsp_valid     (reg_rsp_valid),
    .s_reg_rsp_rdata     (reg_rsp_rdata),
    .cfg_requester_id    (cfg_requester_id),
    .cfg_bus_master_en   (cfg_bus_master_en),
    .cfg_max_payload     (cfg_max_payload),
    .cfg_max_read_req    (cfg_max_read_req),
    .cfg_ext_tag_en      (cfg_ext_tag_en),
    .cfg_pasid_en        (cfg_pasid_en),
    .cfg_pasid_exec_en   (cfg_pasid_exec_en),
    .cfg_pasid_priv_en   (cfg_pasid_priv_en),
    .cfg_msix_en         (cfg_msix_en),
    .cfg_msix_func_mask  (cfg_msix_func_mask),
    .cfg_sys_page_shift  (cfg_sys_page_shift),
    .dma_tp              (dma_tp),
    .err_cpl_timeout     (err_cpl_timeout),
    .err_unexp_cpl       (err_unexp_cpl),
    .flr_rst             (flr_rst),
    // this top owns config space (HipCfg = 0): the hard-IP inputs are unused (rtl/hip)
    .hip_cfg_requester_id  (16'h0),
    .hip_cfg_mem_en        (1'b0),
    .hip_cfg_bus_master_en (1'b0),
    .hip_cfg_max_payload   (3'h0),
    .hip_cfg_max_read_req  (3'h0),
    .hip_cfg_ext_tag_en    (1'b0),
    .hip_cfg_pasid_en      (1'b0),
    .hip_cfg_pasid_priv_en (1'b0),
    .hip_cfg_msix_en       (1'b0),
    .hip_cfg_msix_func_mask(1'b0),
    .hip_flr               (1'b0),
    .s_xcfg_valid          (1'b0),
    .s_xcfg_write          (1'b0),
    .s_xcfg_dw             (10'h0),
    .s_xcfg_wdata          (32'h0),
    .s_xcfg_be             (4'h0),
    .m_xcfg_rdata          (unused_xcfg_rdata)
  );

  ep_core #(
    .DataWidth   (DataWidth),
    .NumAdi      (NumAdi),
    .Bar0SizeLog2(Bar0SizeLog2),
    .CplhFcLimit (CplhFcLimit),
    .CpldFcLimit (CpldFcLimit)
  ) u_core (
    .clk                (clk),
    .rst                (core_rst),
    .s_reg_valid        (reg_valid),
    .s_reg_ready        (reg_ready),
    .s_reg_bar          (reg_bar),
    .s_reg_addr         (reg_addr),
    .s_reg_write        (reg_write),
    .s_reg_wdata        (reg_wdata),
    .s_reg_be           (reg_be),
    .m_reg_rsp_valid    (reg_rsp_valid),
    .m_reg_rsp_rdata    (reg_rsp_rdata),
    .cfg_requester_id   (cfg_requester_id),
    .cfg_bus_master_en  (cfg_bus_master_en),
    .cfg_max_payload    (cfg_max_payload),
    .cfg_max_read_req   (cfg_max_read_req),
    .cfg_ext_tag_en     (cfg_ext_tag_en),
    .cfg_pasid_en       (cfg_pasid_en),
    .cfg_pasid_exec_en  (cfg_pasid_exec_en),
    .cfg_pasid_priv_en  (cfg_pasid_priv_en),
    .cfg_msix_en        (cfg_msix_en),
    .cfg_msix_func_mask (cfg_msix_func_mask),
    .cfg_sys_page_shift (cfg_sys_page_shift),
    .tx_wr_req_tlp_hdr  (tx_wr_req_tlp_hdr),
    .tx_wr_req_tlp_data (tx_wr_req_tlp_data),
    .tx_wr_req_tlp_strb (tx_wr_req_tlp_strb),
    .tx_wr_req_tlp_prfx (tx_wr_req_tlp_prfx),
    .tx_wr_req_tlp_valid(tx_wr_req_tlp_valid),
    .tx_wr_req_tlp_sop  (tx_wr_req_tlp_sop),
    .tx_wr_req_tlp_eop  (tx_wr_req_tlp_eop),
    .tx_wr_req_tlp_ready(tx_wr_req_tlp_ready),
    .tx_rd_req_tlp_hdr  (tx_rd_req_tlp_hdr),
    .tx_rd_req_tlp_prfx (tx_rd_req_tlp_prfx),
    .tx_rd_req_tlp_valid(rd_valid),
    .tx_rd_req_tlp_sop  (tx_rd_req_tlp_sop),
    .tx_rd_req_tlp_eop  (tx_rd_req_tlp_eop),
    .tx_rd_req_tlp_ready(rd_ready),
    .rx_cpl_tlp_hdr     (rx_cpl_tlp_hdr),
    .rx_cpl_tlp_data    (rx_cpl_tlp_data),
    .rx_cpl_tlp_strb    (rx_cpl_tlp_strb),
    .rx_cpl_tlp_valid   (rx_cpl_tlp_valid),
    .rx_cpl_tlp_sop     (rx_cpl_tlp_sop),
    .rx_cpl_tlp_eop     (rx_cpl_tlp_eop),
    .rx_cpl_tlp_ready   (rx_cpl_tlp_ready),
    .dma_tp             (dma_tp),
    .err_cpl_timeout    (err_cpl_timeout),
    .err_unexp_cpl      (err_unexp_cpl)
  );

  // PCIe ordering across the TX streams: completions and DMA reads never pass a posted write
  // presented before them (rtl/pcie/README.md, TX ordering)
  ep_tx_order u_cpl_order (
    .clk, .rst,
    .wr_valid(tx_wr_req_tlp_valid), .wr_ready(tx_wr_req_tlp_ready), .wr_eop(tx_wr_req_tlp_eop),
    .s_valid(cpl_valid), .s_ready(cpl_ready), .s_eop(tx_cpl_tlp_eop),
    .m_valid(tx_cpl_tlp_valid), .m_ready(tx_cpl_tlp_ready)
  );
  ep_tx_order u_rd_order (
    .clk, .rst,
    .wr_valid(tx_wr_req_tlp_valid), .wr_ready(tx_wr_req_tlp_ready), .wr_eop(tx_wr_req_tlp_eop),
    .s_valid(rd_valid), .s_ready(rd_ready), .s_eop(tx_rd_req_tlp_eop),
    .m_valid(tx_rd_req_tlp_valid), .m_ready(tx_rd_req_tlp_ready)
  );
endmodule
`resetall
