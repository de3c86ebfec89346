// SPDX-License-Identifier: Apache-2.0
/// ep_pcie_fe: PCIe front end of the endpoint = ep_cfg_space + ep_tlp_rx + ep_tlp_tx
/// (docs: rtl/pcie/README.md). Host requests in, completions out, a one-DW register bus to
/// ep_core, and the configuration state ep_core needs. It also watches the DMA completion
/// stream (rx_cpl_tlp_*) to log UR / CA / poisoned completions in the Status register.
`resetall
`default_nettype none
module ep_pcie_fe #(
  parameter int unsigned DataWidth    = 256,        /// TLP data width, power of two, 64 .. 1024
  parameter int unsigned NumAdi       = 4,          /// ADIs (BAR2 portal pages), power of two
  parameter int unsigned Bar0SizeLog2 = 20,         /// BAR0 size = 2**Bar0SizeLog2 bytes
  parameter logic [15:0] VendorId     = 16'h1DEA,
  parameter logic [15:0] DeviceId     = 16'h5105,
  parameter int unsigned CplBufDw     = 32,         /// completion data FIFO (DWs)
  /// 0: this front end owns config space (ep_cfg_space answers CfgRd0/CfgWr0 TLPs, BAR decode
  /// by the BAR registers). 1: a hard IP owns config space (rtl/hip): the configuration state
  /// comes from the hip_cfg_* inputs, ep_cfg_space serves only the SIOV DVSEC through the s_xcfg
  /// port (the IP's Configuration Intercept Interface), BAR0 is decoded at address 0 and BAR2 at
  /// HipBar2Base (the wrapper rewrites the address of a request from the IP's BAR-hit sideband),
  /// Function Level Reset is hip_flr (the IP's flr_rcvd), and AER messages are not sent (the IP
  /// owns AER).
  parameter bit          HipCfg       = 1'b0,
  localparam int unsigned S = DataWidth / 32        /// DWs per beat (derived, do not override)
) (
  input  wire logic                 clk,
  input  wire logic                 rst,          // synchronous, active-high
  /// host requests (sink)
  input  wire logic [127:0]         rx_req_tlp_hdr,
  input  wire logic [DataWidth-1:0] rx_req_tlp_data,
  input  wire logic [S-1:0]         rx_req_tlp_strb,
  input  wire logic [31:0]          rx_req_tlp_prfx,
  input  wire logic                 rx_req_tlp_valid,
  input  wire logic                 rx_req_tlp_sop,
  input  wire logic                 rx_req_tlp_eop,
  output logic                      rx_req_tlp_ready,
  /// completions (source)
  output logic [127:0]              tx_cpl_tlp_hdr,
  output logic [DataWidth-1:0]      tx_cpl_tlp_data,
  output logic [S-1:0]              tx_cpl_tlp_strb,
  output logic                      tx_cpl_tlp_valid,
  output logic                      tx_cpl_tlp_sop,
  output logic                      tx_cpl_tlp_eop,
  input  wire logic                 tx_cpl_tlp_ready,
  /// DMA completion stream, watched only (the handshake belongs to ep_core)
  input  wire logic [127:0]         mon_rx_cpl_tlp_hdr,
  input  wire logic                 mon_rx_cpl_tlp_valid,
  input  wire logic                 mon_rx_cpl_tlp_sop,
  input  wire logic                 mon_rx_cpl_tlp_ready,
  /// register bus to ep_core (source) and its responses (status, no ready)
  output logic                      m_reg_valid,
  input  wire logic                 m_reg_ready,
  output logic                      m_reg_bar,
  output logic [31:0]               m_reg_addr,
  output logic                      m_reg_write,
  output logic [31:0]               m_reg_wdata,
  output logic [3:0]                m_reg_be,
  input  wire logic                 s_reg_rsp_valid,
  input  wire logic [31:0]          s_reg_rsp_rdata,
  /// configuration state for ep_core
  output logic [15:0]               cfg_requester_id,
  output logic                      cfg_bus_master_en,
  output logic [2:0]                cfg_max_payload,
  output logic [2:0]                cfg_max_read_req,
  output logic                      cfg_ext_tag_en,
  output logic                      cfg_pasid_en,
  output logic                      cfg_pasid_exec_en,
  output logic                      cfg_pasid_priv_en,
  output logic                      cfg_msix_en,
  output logic                      cfg_msix_func_mask,
  output logic [4:0]                cfg_sys_page_shift,
  /// status from ep_core: DMA transactions pending (level), completion timeout and unexpected
  /// completion (one-cycle pulses)
  input  wire logic                 dma_tp,
  input  wire logic                 err_cpl_timeout,
  input  wire logic                 err_unexp_cpl,
  /// Function Level Reset of everything behind the front end (one-cycle pulse, see below)
  output logic                      flr_rst,
  /// HipCfg = 1 only (tie to 0 otherwise): configuration state decoded from the hard IP
  input  wire logic [15:0]          hip_cfg_requester_id,
  input  wire logic                 hip_cfg_mem_en,
  input  wire logic                 hip_cfg_bus_master_en,
  input  wire logic [2:0]           hip_cfg_max_payload,
  input  wire logic [2:0]           hip_cfg_max_read_req,
  input  wire logic                 hip_cfg_ext_tag_en,
  input  wire logic                 hip_cfg_pasid_en,
  input  wire logic                 hip_cfg_pasid_priv_en,
  input  wire logic                 hip_cfg_msix_en,
  input  wire logic                 hip_cfg_msix_func_mask,
  input  wire logic                 hip_flr,            // FLR received by the IP (pulse)
  /// HipCfg = 1 only: config access to ep_cfg_space (DW index in ep_cfg_space's own map), read
  /// data the next cycle (status, no ready), like ep_cfg_space's s_cfg port
  input  wire logic                 s_xcfg_valid,
  input  wire logic                 s_xcfg_write,
  input  wire logic [9:0]           s_xcfg_dw,
  input  wire logic [31:0]          s_xcfg_wdata,
  input  wire logic [3:0]           s_xcfg_be,
  output logic [31:0]               m_xcfg_rdata
);
  localparam logic [63:0] HipBar2Base = 64'h0000_0000_8000_0000;
  logic        cfg_valid, cfg_write;
  logic [9:0]  cfg_dw;
  logic [31:0] cfg_wdata, cfg_rdata;
  logic [3:0]  cfg_be;
  logic [15:0] cfg_target_id;
  logic        cfg_mem_en;
  logic [63:0] cfg_bar0_addr, cfg_bar2_addr, cfg_bar2_mask;
  logic        ev_ur_np, ev_ur_p, ev_malformed, ev_poisoned;
  logic        reg_idle;
  logic [127:0] cpl_hdr;
  logic [DataWidth-1:0] cpl_data;
  logic [S-1:0] cpl_strb;
  logic        cpl_valid, cpl_sop, cpl_eop, cpl_ready;
  logic [127:0] ev_req_hdr, ev_cpl_hdr, cpl_hdr_q;
  logic [31:0]  ev_req_prfx;
  logic         errmsg_valid, errmsg_ready;
  logic [7:0]   errmsg_code;

  // DMA completions: UR -> Received Master Abort, CA -> Received Target Abort, EP -> parity
  logic        cpl_sop_fire;
  logic [2:0]  cpl_status;
  assign cpl_sop_fire = mon_rx_cpl_tlp_valid && mon_rx_cpl_tlp_ready && mon_rx_cpl_tlp_sop;
  assign cpl_status   = mon_rx_cpl_tlp_hdr[ep_pcie_pkg::HDR_CPL_STATUS_LSB +: 3];
  logic unused_mon;
  assign unused_mon = ^{mon_rx_cpl_tlp_hdr[127:111], mon_rx_cpl_tlp_hdr[109:80],
                        mon_rx_cpl_tlp_hdr[76:0]};

  // completion-side errors log the completion header: the one on the monitored stream now, or
  // (for an unexpected completion reported later by ep_core) the last one that went in
  always_ff @(posedge clk) begin
    if (cpl_sop_fire) cpl_hdr_q <= mon_rx_cpl_tlp_hdr;
  end
  assign ev_cpl_hdr = cpl_sop_fire ? mon_rx_cpl_tlp_hdr : cpl_hdr_q;

  // ---- who owns config space: this front end (HipCfg = 0) or a hard IP (HipCfg = 1) ----------
  logic        cs_rst, cs_valid, cs_write, cs_flr, flr_req;
  logic [9:0]  cs_dw;
  logic [31:0] cs_wdata;
  logic [3:0]  cs_be;
  logic [15:0] cs_target_id, cs_requester_id;
  logic        cs_mem_en, cs_bus_master_en, cs_ext_tag_en, cs_pasid_en, cs_pasid_exec_en;
  logic        cs_pasid_priv_en, cs_msix_en, cs_msix_func_mask;
  logic [2:0]  cs_max_payload, cs_max_read_req;
  logic [63:0] cs_bar0_addr, cs_bar2_addr, cs_bar2_mask;
  if (HipCfg) begin : gen_hip_cfg
    // the hard IP answers config requests itself: ep_cfg_space is reached only through s_xcfg
    // (the SIOV DVSEC, System Page Size); everything else comes from the IP's config outputs
    assign cs_rst       = rst || hip_flr;  // FLR: the DVSEC's System Page Size back to 4 KiB
    assign cs_valid     = s_xcfg_valid;
    assign cs_write     = s_xcfg_write;
    assign cs_dw        = s_xcfg_dw;
    assign cs_wdata     = s_xcfg_wdata;
    assign cs_be        = s_xcfg_be;
    assign cs_target_id = hip_cfg_requester_id;
    assign flr_req      = hip_flr;
    assign cfg_requester_id   = hip_cfg_requester_id;
    assign cfg_mem_en         = hip_cfg_mem_en;
    assign cfg_bus_master_en  = hip_cfg_bus_master_en;
    assign cfg_max_payload    = hip_cfg_max_payload;
    assign cfg_max_read_req   = hip_cfg_max_read_req;
    assign cfg_ext_tag_en     = hip_cfg_ext_tag_en;
    assign cfg_pasid_en       = hip_cfg_pasid_en;
    assign cfg_pasid_exec_en  = 1'b0;  // Execute Permission not supported (IP parameter)
    assign cfg_pasid_priv_en  = hip_cfg_pasid_priv_en;
    assign cfg_msix_en        = hip_cfg_msix_en;
    assign cfg_msix_func_mask = hip_cfg_msix_func_mask;
    assign cfg_bar0_addr      = 64'h0;
    assign cfg_bar2_addr      = HipBar2Base;
    assign cfg_bar2_mask      = cs_bar2_mask;
    logic unused_cs;  // ep_cfg_space's own copies of what the IP owns
    assign unused_cs = ^{cfg_valid, cfg_write, cfg_dw, cfg_wdata, cfg_be, cfg_target_id, cs_flr,
                         cs_requester_id, cs_mem_en, cs_bus_master_en, cs_ext_tag_en, cs_pasid_en,
                         cs_pasid_exec_en, cs_pasid_priv_en, cs_msix_en, cs_msix_func_mask,
                         cs_max_payload, cs_max_read_req, cs_bar0_addr, cs_bar2_addr};
`ifndef SYNTHESIS
    always_ff @(posedge clk) begin
      if (!rst && cfg_valid)
        $error("ep_pcie_fe: a config TLP reached the fabric although the hard IP owns config space (%m)");
    end
`endif
  end else begin : gen_own_cfg
    assign cs_rst       = rst;
    assign cs_valid     = cfg_valid;
    assign cs_write     = cfg_write;
    assign cs_dw        = cfg_dw;
    assign cs_wdata     = cfg_wdata;
    assign cs_be        = cfg_be;
    assign cs_target_id = cfg_target_id;
    assign flr_req      = cs_flr;
    assign cfg_requester_id   = cs_requester_id;
    assign cfg_mem_en         = cs_mem_en;
    assign cfg_bus_master_en  = cs_bus_master_en;
    assign cfg_max_payload    = cs_max_payload;
    assign cfg_max_read_req   = cs_max_read_req;
    assign cfg_ext_tag_en     = cs_ext_tag_en;
    assign cfg_pasid_en       = cs_pasid_en;
    assign cfg_pasid_exec_en  = cs_pasid_exec_en;
    assign cfg_pasid_priv_en  = cs_pasid_priv_en;
    assign cfg_msix_en        = cs_msix_en;
    assign cfg_msix_func_mask = cs_msix_func_mask;
    assign cfg_bar0_addr      = cs_bar0_addr;
    assign cfg_bar2_addr      = cs_bar2_addr;
    assign cfg_bar2_mask      = cs_bar2_mask;
    logic unused_hip;  // tied off by ep_top
    assign unused_hip = ^{hip_cfg_requester_id, hip_cfg_mem_en, hip_cfg_bus_master_en,
                          hip_cfg_max_payload, hip_cfg_max_read_req, hip_cfg_ext_tag_en,
                          hip_cfg_pasid_en, hip_cfg_pasid_priv_en, hip_cfg_msix_en,
                          hip_cfg_msix_func_mask, hip_flr, s_xcfg_valid, s_xcfg_write, s_xcfg_dw,
                          s_xcfg_wdata, s_xcfg_be};
  end
  assign m_xcfg_rdata = cfg_rdata;

  ep_cfg_space #(
    .NumAdi        (NumAdi),
    .Bar0SizeLog2  (Bar0SizeLog2),
    .VendorId      (VendorId),
    .DeviceId      (DeviceId),
    .SubsysVendorId(VendorId)
  ) u_cfg (
    .clk               (clk),
    .rst               (cs_rst),
    .s_cfg_valid       (cs_valid),
    .s_cfg_write       (cs_write),
    .s_cfg_dw          (cs_dw),
    .s_cfg_wdata       (cs_wdata),
    .s_cfg_be          (cs_be),
    .s_cfg_target_id   (cs_target_id),
    .m_cfg_rdata       (cfg_rdata),
    .ev_ur_np          (ev_ur_np),
    .ev_ur_p           (ev_ur_p),
    .ev_malformed      (ev_malformed),
    .ev_poisoned       (ev_poisoned),
    .ev_cpl_ur         (cpl_sop_fire && cpl_status == ep_pcie_pkg::CPL_UR),
    .ev_cpl_ca         (cpl_sop_fire && cpl_status == ep_pcie_pkg::CPL_CA),
    .ev_cpl_poisoned   (cpl_sop_fire && mon_rx_cpl_tlp_hdr[ep_pcie_pkg::HDR_EP]),
    .ev_sig_ca         (1'b0),  // this completer never answers with CA
    .ev_cpl_timeout    (err_cpl_timeout),
    .ev_unexp_cpl      (err_unexp_cpl),
    .dma_tp            (dma_tp),
    .ev_req_hdr        (ev_req_hdr),
    .ev_req_prfx       (ev_req_prfx),
    .ev_cpl_hdr        (ev_cpl_hdr),
    .m_errmsg_valid    (errmsg_valid),
    .m_errmsg_code     (errmsg_code),
    .m_errmsg_ready    (errmsg_ready),
    .cfg_flr           (cs_flr),
    .cfg_requester_id  (cs_requester_id),
    .cfg_mem_en        (cs_mem_en),
    .cfg_bus_master_en (cs_bus_master_en),
    .cfg_max_payload   (cs_max_payload),
    .cfg_max_read_req  (cs_max_read_req),
    .cfg_ext_tag_en    (cs_ext_tag_en),
    .cfg_pasid_en      (cs_pasid_en),
    .cfg_pasid_exec_en (cs_pasid_exec_en),
    .cfg_pasid_priv_en (cs_pasid_priv_en),
    .cfg_msix_en       (cs_msix_en),
    .cfg_msix_func_mask(cs_msix_func_mask),
    .cfg_sys_page_shift(cfg_sys_page_shift),
    .cfg_bar0_addr     (cs_bar0_addr),
    .cfg_bar2_addr     (cs_bar2_addr),
    .cfg_bar2_mask     (cs_bar2_mask)
  );

  logic        job_valid, job_ready, job_data, job_lk;
  logic [2:0]  job_status, job_tc, job_attr;
  logic [10:0] job_len;
  logic [12:0] job_bc;
  logic [11:0] job_addr;
  logic [15:0] job_rid;
  logic [9:0]  job_tag;
  logic        dat_valid, dat_pop;
  logic [31:0] dat_data;

  ep_tlp_rx #(
    .DataWidth   (DataWidth),
    .Bar0SizeLog2(Bar0SizeLog2),
    .CplBufDw    (CplBufDw)
  ) u_rx (
    .clk             (clk),
    .rst             (rst),
    .rx_req_tlp_hdr  (rx_req_tlp_hdr),
    .rx_req_tlp_data (rx_req_tlp_data),
    .rx_req_tlp_strb (rx_req_tlp_strb),
    .rx_req_tlp_prfx (rx_req_tlp_prfx),
    .rx_req_tlp_valid(rx_req_tlp_valid),
    .rx_req_tlp_sop  (rx_req_tlp_sop),
    .rx_req_tlp_eop  (rx_req_tlp_eop),
    .rx_req_tlp_ready(rx_req_tlp_ready),
    .m_cfg_valid     (cfg_valid),
    .m_cfg_write     (cfg_write),
    .m_cfg_dw        (cfg_dw),
    .m_cfg_wdata     (cfg_wdata),
    .m_cfg_be        (cfg_be),
    .m_cfg_target_id (cfg_target_id),
    .s_cfg_rdata     (cfg_rdata),
    .cfg_mem_en      (cfg_mem_en),
    .cfg_bar0_addr   (cfg_bar0_addr),
    .cfg_bar2_addr   (cfg_bar2_addr),
    .cfg_bar2_mask   (cfg_bar2_mask),
    .cfg_max_payload (cfg_max_payload),
    .cfg_pasid_en    (cfg_pasid_en),
    .m_reg_valid     (m_reg_valid),
    .m_reg_ready     (m_reg_ready),
    .m_reg_bar       (m_reg_bar),
    .m_reg_addr      (m_reg_addr),
    .m_reg_write     (m_reg_write),
    .m_reg_wdata     (m_reg_wdata),
    .m_reg_be        (m_reg_be),
    .s_reg_rsp_valid (s_reg_rsp_valid),
    .s_reg_rsp_rdata (s_reg_rsp_rdata),
    .m_job_valid     (job_valid),
    .m_job_ready     (job_ready),
    .m_job_status    (job_status),
    .m_job_data      (job_data),
    .m_job_len       (job_len),
    .m_job_bc        (job_bc),
    .m_job_addr      (job_addr),
    .m_job_rid       (job_rid),
    .m_job_tag       (job_tag),
    .m_job_tc        (job_tc),
    .m_job_attr      (job_attr),
    .m_job_lk        (job_lk),
    .m_dat_valid     (dat_valid),
    .m_dat_data      (dat_data),
    .s_dat_pop       (dat_pop),
    .ev_ur_np        (ev_ur_np),
    .ev_ur_p         (ev_ur_p),
    .ev_malformed    (ev_malformed),
    .ev_poisoned     (ev_poisoned),
    .m_reg_idle      (reg_idle),
    .m_ev_hdr        (ev_req_hdr),
    .m_ev_prfx       (ev_req_prfx)
  );

  // ---- Function Level Reset ------------------------------------------------------------------
  // Initiate FLR resets config space at once (Bus Master Enable off: the DMA engine starts no new
  // request). The rest of the function (ep_core: PF registers, every ADI, DMA engine, IMS) is
  // reset once Transactions Pending has cleared - the completions of requests already sent are
  // taken, not left to arrive at a reset engine - and no register request from ep_tlp_rx is in
  // ep_core (its response would be lost). The FLR's own CfgWr completion is sent normally.
  logic flr_pend_q;
  always_ff @(posedge clk) begin
    if (flr_req) flr_pend_q <= 1'b1;
    else if (flr_rst) flr_pend_q <= 1'b0;
    if (rst) flr_pend_q <= 1'b0;
  end
  assign flr_rst = flr_pend_q && !dma_tp && reg_idle;

  ep_tlp_tx #(
    .DataWidth(DataWidth),
    .CplBufDw (CplBufDw)
  ) u_tx (
    .clk             (clk),
    .rst             (rst),
    .s_job_valid     (job_valid),
    .s_job_ready     (job_ready),
    .s_job_status    (job_status),
    .s_job_lk        (job_lk),
    .s_job_data      (job_data),
    .s_job_len       (job_len),
    .s_job_bc        (job_bc),
    .s_job_addr      (job_addr),
    .s_job_rid       (job_rid),
    .s_job_tag       (job_tag),
    .s_job_tc        (job_tc),
    .s_job_attr      (job_attr),
    .s_dat_valid     (dat_valid),
    .s_dat_data      (dat_data),
    .m_dat_pop       (dat_pop),
    .cfg_completer_id(cfg_requester_id),
    .cfg_max_payload (cfg_max_payload),
    .tx_cpl_tlp_hdr  (cpl_hdr),
    .tx_cpl_tlp_data (cpl_data),
    .tx_cpl_tlp_strb (cpl_strb),
    .tx_cpl_tlp_valid(cpl_valid),
    .tx_cpl_tlp_sop  (cpl_sop),
    .tx_cpl_tlp_eop  (cpl_eop),
    .tx_cpl_tlp_ready(cpl_ready)
  );

  // ---- AER error messages share tx_cpl with the completions ---------------------------------------
  // A message (Msg, 4-DW, routed to the Root Complex, no data, one beat) is granted only between
  // completion TLPs; while granted, ep_tlp_tx sees ready low (it holds its beat) and the message
  // is presented until the link takes it. Posted messages may pass completions (PCIe ordering).
  logic        msg_gnt_q, cpl_in_tlp_q;
  logic [127:0] msg_hdr;
  always_comb begin
    msg_hdr = '0;
    msg_hdr[ep_pcie_pkg::HDR_FMT_LSB +: 3]  = 3'b001;                       // 4-DW, no data
    msg_hdr[ep_pcie_pkg::HDR_TYPE_LSB +: 5] = ep_pcie_pkg::TYPE_MSG_TO_RC;  // routed to RC
    msg_hdr[ep_pcie_pkg::HDR_RID_LSB +: 16] = cfg_requester_id;
    msg_hdr[71:64]                          = errmsg_code;                  // message code
  end
  always_ff @(posedge clk) begin
    if (cpl_valid && cpl_ready) cpl_in_tlp_q <= !cpl_eop;
    // not while a completion is inside its frame (nor when one starts a multi-beat frame now)
    if (!HipCfg && !msg_gnt_q && errmsg_valid && !cpl_in_tlp_q && !(cpl_valid && cpl_ready && !cpl_eop))
      msg_gnt_q <= 1'b1;
    if (msg_gnt_q && tx_cpl_tlp_ready) msg_gnt_q <= 1'b0;
    if (rst) begin
      msg_gnt_q    <= 1'b0;
      cpl_in_tlp_q <= 1'b0;
    end
  end
  // HipCfg: the hard IP owns AER (software reads the IP's AER capability), so the shadow AER
  // of ep_cfg_space sends no message: taken and discarded
  assign errmsg_ready     = HipCfg ? 1'b1 : msg_gnt_q && tx_cpl_tlp_ready;
  assign cpl_ready        = !msg_gnt_q && tx_cpl_tlp_ready;
  assign tx_cpl_tlp_hdr   = msg_gnt_q ? msg_hdr : cpl_hdr;
  assign tx_cpl_tlp_data  = msg_gnt_q ? '0 : cpl_data;
  assign tx_cpl_tlp_strb  = msg_gnt_q ? '0 : cpl_strb;
  assign tx_cpl_tlp_valid = msg_gnt_q || cpl_valid;
  assign tx_cpl_tlp_sop   = msg_gnt_q || cpl_sop;
  assign tx_cpl_tlp_eop   = msg_gnt_q || cpl_eop;
endmodule
`resetall
