// SPDX-License-Identifier: Apache-2.0
/// ep_ptile_top: the SIOV endpoint behind an Intel P-tile Avalon-ST hard IP for PCI Express
/// (user guide 683059). Port names are the IP's user-interface names without the `p0_` prefix
/// (the names cocotbext-pcie's P-tile model uses). Docs: rtl/hip/README.md.
///
/// Inside: ep_pcie_fe (HipCfg = 1) + ep_core + the two TX ordering gates, as in ep_top, with
///  * RX: the one Avalon-ST RX stream split into requests (rx_req, address rewritten from the
///    BAR-hit sideband) and completions (rx_cpl), each behind a FIFO deep enough for the IP's
///    27-cycle ready latency;
///  * TX: completions, DMA writes and DMA reads merged onto the one TX stream (frame by frame,
///    only when the link partner has credits for the frame: tx_cdts_limit accounting), driven
///    with the IP's 3-cycle ready latency;
///  * config: the IP owns config space; Bus Master Enable, MSE, MPS, MRRS, Extended Tag, MSI-X
///    Enable / Function Mask, bus/device number and PASID Enable come from tl_cfg; the SIOV DVSEC
///    is served at 0xD00 through CII by ep_cfg_space's DVSEC registers.
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
  /// modulus of the credit limits on tx_cdts_limit: 12-bit header, 16-bit data credit counters
  /// (the Scaled Flow Control widths; the IP reports its counters at these widths)
  parameter int unsigned HdrFcBits    = 12,
  parameter int unsigned DataFcBits   = 16,
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

  // the endpoint runs 256 bits wide; a 512-bit (two-segment) IP interface is served a segment
  // per clock (half its bandwidth, see rtl/hip/README.md)
  localparam int unsigned CoreWidth = 256;
  localparam int unsigned S = CoreWidth / 32;                 // DWs per core beat
  if (DataWidth != 256 && DataWidth != 512) begin : gen_chk_width
    $fatal(1, "ep_ptile_top: DataWidth must be 256 or 512, not %0d (%m)", DataWidth);
  end
  // BAR2 = NumAdi portal pages of the largest supported system page (64 KiB, ep_cfg_space default)
  localparam int unsigned Bar2SizeLog2 = $clog2(NumAdi) + 16;
  localparam logic [63:0] HipBar2Base  = 64'h0000_0000_8000_0000;  // = ep_pcie_fe's
  localparam logic [9:0]  CiiDvsecDw   = 10'h340;                    // 0xD00: Intel VSEC range
  localparam int unsigned DvsecDws     = 6;                          // DVSEC length 0x18
  localparam logic [9:0]  DwSiov       = 10'(ep_pcie_pkg::ECAP_SIOV_OFF >> 2);
  /// tl_cfg_ctl index that carries PASID Enable / Privileged Mode Enable (rtl/hip/README.md)
  localparam logic [4:0]  TlCfgPasidAdd = 5'h18;
  localparam int unsigned TlCfgPasidEn  = 1;
  localparam int unsigned TlCfgPasidPriv = 3;
  localparam int unsigned RxFifoDepth   = 64;  // beats per RX FIFO (block RAM)
  localparam int unsigned RxReadyLatency = 27; // rx_st_ready -> rx_st_valid (IP)
  // rx_st_ready drops while a FIFO holds this many beats: room for the beats already on their way
  localparam int unsigned RxFull = RxFifoDepth - RxReadyLatency - 5;
  localparam int unsigned CntW   = $clog2(RxFifoDepth + 4) + 1;

  logic clk, rst;
  assign clk = coreclkout_hip;
  // reset_status_n is synchronous to coreclkout_hip: one register makes the core's reset
  logic rst_q;
  always_ff @(posedge clk) rst_q <= !reset_status_n;
  assign rst = rst_q;

  // ---- configuration state from tl_cfg (function 0), registered ----------------------------------
  logic [2:0]  tl_func_q;
  logic [4:0]  tl_add_q;
  logic [15:0] tl_ctl_q;
  logic [15:0] cfg_rid_q;
  logic        cfg_mse_q, cfg_bme_q, cfg_ete_q, cfg_msix_en_q, cfg_msix_fm_q, cfg_pasid_en_q;
  logic        cfg_pasid_priv_q;
  logic [2:0]  cfg_mps_q, cfg_mrrs_q;
  always_ff @(posedge clk) begin
    tl_func_q <= tl_cfg_func;
    tl_add_q  <= tl_cfg_add;
    tl_ctl_q  <= tl_cfg_ctl;
    if (tl_func_q == 3'd0) begin
      unique case (tl_add_q)
        5'h00: begin
          cfg_mse_q  <= tl_ctl_q[15];
          cfg_bme_q  <= tl_ctl_q[7];
          cfg_ete_q  <= tl_ctl_q[6];
          cfg_mrrs_q <= tl_ctl_q[5:3];
          cfg_mps_q  <= tl_ctl_q[2:0];
        end
        5'h01: cfg_rid_q <= {tl_ctl_q[7:0], tl_ctl_q[12:8], 3'b000};  // bus, device, function 0
        5'h0C: begin
          cfg_msix_en_q <= tl_ctl_q[5];
          cfg_msix_fm_q <= tl_ctl_q[6];
        end
        TlCfgPasidAdd: begin
          cfg_pasid_en_q   <= tl_ctl_q[TlCfgPasidEn];
          cfg_pasid_priv_q <= tl_ctl_q[TlCfgPasidPriv];
        end
        default: ;
      endcase
    end
    if (rst) begin
      {cfg_mse_q, cfg_bme_q, cfg_ete_q, cfg_msix_en_q, cfg_msix_fm_q} <= '0;
      {cfg_pasid_en_q, cfg_pasid_priv_q} <= '0;
      cfg_mps_q  <= 3'd0;
      cfg_mrrs_q <= 3'd2;
      cfg_rid_q  <= 16'h0;
    end
  end

  // ---- the endpoint: front end (hard-IP config mode) + core + TX ordering gates, as ep_top --------
  logic [127:0]         rq_hdr, rc_hdr, cpl_hdr, wr_hdr, rd_hdr;
  logic [CoreWidth-1:0] rq_data, rc_data, cpl_data, wr_data;
  logic [S-1:0]         rq_strb, rc_strb, cpl_strb, wr_strb;
  logic [31:0]          rq_prfx, wr_prfx, rd_prfx;
  logic rq_valid, rq_sop, rq_eop, rq_ready, rc_valid, rc_sop, rc_eop, rc_ready;
  logic cpl_valid, cpl_sop, cpl_eop, cpl_ready, cpl_valid_g, cpl_ready_g;
  logic wr_valid, wr_sop, wr_eop, wr_ready;
  logic rd_valid, rd_sop, rd_eop, rd_ready, rd_valid_g, rd_ready_g;
  logic        reg_valid, reg_ready, reg_bar, reg_write, reg_rsp_valid;
  logic [31:0] reg_addr, reg_wdata, reg_rsp_rdata;
  logic [3:0]  reg_be;
  logic [15:0] cfg_requester_id;
  logic        cfg_bus_master_en, cfg_ext_tag_en, cfg_pasid_en, cfg_pasid_exec_en;
  logic        cfg_pasid_priv_en, cfg_msix_en, cfg_msix_func_mask;
  logic [2:0]  cfg_max_payload, cfg_max_read_req;
  logic [4:0]  cfg_sys_page_shift;
  logic        dma_tp, err_cpl_timeout, err_unexp_cpl, flr_rst, core_rst, hip_flr;
  logic        xcfg_valid, xcfg_write;
  logic [9:0]  xcfg_dw;
  logic [31:0] xcfg_wdata, xcfg_rdata;
  logic [3:0]  xcfg_be;
  assign core_rst = rst || flr_rst;

  ep_pcie_fe #(
    .DataWidth   (CoreWidth),
    .NumAdi      (NumAdi),
    .Bar0SizeLog2(Bar0SizeLog2),
    .HipCfg      (1'b1)
  ) u_fe (
    .clk                   (clk),
    .rst                   (rst),
    .rx_req_tlp_hdr        (rq_hdr),
    .rx_req_tlp_data       (rq_data),
    .rx_req_tlp_strb       (rq_strb),
    .rx_req_tlp_prfx       (rq_prfx),
    .rx_req_tlp_valid      (rq_valid),
    .rx_req_tlp_sop        (rq_sop),
    .rx_req_tlp_eop        (rq_eop),
    .rx_req_tlp_ready      (rq_ready),
    .tx_cpl_tlp_hdr        (cpl_hdr),
    .tx_cpl_tlp_data       (cpl_data),
    .tx_cpl_tlp_strb       (cpl_strb),
    .tx_cpl_tlp_valid      (cpl_valid),
    .tx_cpl_tlp_sop        (cpl_sop),
    .tx_cpl_tlp_eop        (cpl_eop),
    .tx_cpl_tlp_ready      (cpl_ready),
    .mon_rx_cpl_tlp_hdr    (rc_hdr),
    .mon_rx_cpl_tlp_valid  (rc_valid),
    .mon_rx_cpl_tlp_sop    (rc_sop),
    .mon_rx_cpl_tlp_ready  (rc_ready),
    .m_reg_valid           (reg_valid),
    .m_reg_ready           (reg_ready),
    .m_reg_bar             (reg_bar),
    .m_reg_addr            (reg_addr),
    .m_reg_write           (reg_write),
    .m_reg_wdata           (reg_wdata),
    .m_reg_be              (reg_be),
    .s_reg_rsp_valid       (reg_rsp_valid),
    .s_reg_rsp_rdata       (reg_rsp_rdata),
    .cfg_requester_id      (cfg_requester_id),
    .cfg_bus_master_en     (cfg_bus_master_en),
    .cfg_max_payload       (cfg_max_payload),
    .cfg_max_read_req      (cfg_max_read_req),
    .cfg_ext_tag_en        (cfg_ext_tag_en),
    .cfg_pasid_en          (cfg_pasid_en),
    .cfg_pasid_exec_en     (cfg_pasid_exec_en),
    .cfg_pasid_priv_en     (cfg_pasid_priv_en),
    .cfg_msix_en           (cfg_msix_en),
    .cfg_msix_func_mask    (cfg_msix_func_mask),
    .cfg_sys_page_shift    (cfg_sys_page_shift),
    .dma_tp                (dma_tp),
    .err_cpl_timeout       (err_cpl_timeout),
    .err_unexp_cpl         (err_unexp_cpl),
    .flr_rst               (flr_rst),
    .hip_cfg_requester_id  (cfg_rid_q),
    .hip_cfg_mem_en        (cfg_mse_q),
    .hip_cfg_bus_master_en (cfg_bme_q),
    .hip_cfg_max_payload   (cfg_mps_q),
    .hip_cfg_max_read_req  (cfg_mrrs_q),
    .hip_cfg_ext_tag_en    (cfg_ete_q),
    .hip_cfg_pasid_en      (cfg_pasid_en_q),
    .hip_cfg_pasid_priv_en (cfg_pasid_priv_q),
    .hip_cfg_msix_en       (cfg_msix_en_q),
    .hip_cfg_msix_func_mask(cfg_msix_fm_q),
    .hip_flr               (hip_flr),
    .s_xcfg_valid          (xcfg_valid),
    .s_xcfg_write          (xcfg_write),
    .s_xcfg_dw             (xcfg_dw),
    .s_xcfg_wdata          (xcfg_wdata),
    .s_xcfg_be             (xcfg_be),
    .m_xcfg_rdata          (xcfg_rdata)
  );

  ep_core #(
    .DataWidth   (CoreWidth),
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
    .tx_wr_req_tlp_hdr  (wr_hdr),
    .tx_wr_req_tlp_data (wr_data),
    .tx_wr_req_tlp_strb (wr_strb),
    .tx_wr_req_tlp_prfx (wr_prfx),
    .tx_wr_req_tlp_valid(wr_valid),
    .tx_wr_req_tlp_sop  (wr_sop),
    .tx_wr_req_tlp_eop  (wr_eop),
    .tx_wr_req_tlp_ready(wr_ready),
    .tx_rd_req_tlp_hdr  (rd_hdr),
    .tx_rd_req_tlp_prfx (rd_prfx),
    .tx_rd_req_tlp_valid(rd_valid),
    .tx_rd_req_tlp_sop  (rd_sop),
    .tx_rd_req_tlp_eop  (rd_eop),
    .tx_rd_req_tlp_ready(rd_ready),
    .rx_cpl_tlp_hdr     (rc_hdr),
    .rx_cpl_tlp_data    (rc_data),
    .rx_cpl_tlp_strb    (rc_strb),
    .rx_cpl_tlp_valid   (rc_valid),
    .rx_cpl_tlp_sop     (rc_sop),
    .rx_cpl_tlp_eop     (rc_eop),
    .rx_cpl_tlp_ready   (rc_ready),
    .dma_tp             (dma_tp),
    .err_cpl_timeout    (err_cpl_timeout),
    .err_unexp_cpl      (err_unexp_cpl)
  );

  ep_tx_order u_cpl_order (
    .clk, .rst,
    .wr_valid(wr_valid), .wr_ready(wr_ready), .wr_eop(wr_eop),
    .s_valid(cpl_valid), .s_ready(cpl_ready), .s_eop(cpl_eop),
    .m_valid(cpl_valid_g), .m_ready(cpl_ready_g)
  );
  ep_tx_order u_rd_order (
    .clk, .rst,
    .wr_valid(wr_valid), .wr_ready(wr_ready), .wr_eop(wr_eop),
    .s_valid(rd_valid), .s_ready(rd_ready), .s_eop(rd_eop),
    .m_valid(rd_valid_g), .m_ready(rd_ready_g)
  );

  // ---- RX: one Avalon-ST stream -> requests + completions ------------------------------------
  // in_*: one 256-bit segment per clock (the input register, or the 512-bit unpacker below)
  logic                 in_v_q, in_sop_q, in_eop_q;
  logic [127:0]         in_hdr_q;
  logic [31:0]          in_prfx_q;
  logic [2:0]           in_bar_q;
  logic [CoreWidth-1:0] in_data_q;
  logic                 seg_room;   // Seg = 2: the segment FIFO can take the IP's beats
  logic                 unpack_ok;  // Seg = 2: the FIFOs below can take a segment this clock
  if (Seg == 1) begin : gen_rx_seg1
    // input register (timing: the IP's outputs cross into the fabric here)
    always_ff @(posedge clk) begin
      in_v_q    <= rx_st_valid[0] && !rst;
      in_sop_q  <= rx_st_sop[0];
      in_eop_q  <= rx_st_eop[0];
      in_hdr_q  <= rx_st_hdr[127:0];
      in_prfx_q <= rx_st_tlp_prfx[31:0];
      in_bar_q  <= rx_st_bar_range[2:0];
      in_data_q <= rx_st_data;
    end
    assign seg_room = 1'b1;
    logic unused_unpack;
    assign unused_unpack = unpack_ok;
  end else begin : gen_rx_seg2
    // 512 bits = two segments; a TLP may start or end in either, two may share a beat. Beats
    // with a valid segment go into a FIFO; the unpacker sends segment 0 then segment 1 (those
    // valid) down the 256-bit path, one per clock, in stream order.
    localparam int unsigned SegW = 3 + 128 + 32 + 3 + CoreWidth;  // valid sop eop hdr prfx bar data
    logic [2*SegW-1:0] sb_in, sb_out;
    logic              sb_v_q, sb_out_valid, sb_out_ready, sb_in_ready;
    logic [2*SegW-1:0] sb_q;
    always_ff @(posedge clk) begin
      sb_v_q <= |rx_st_valid && !rst;
      sb_q   <= sb_in;
    end
    for (genvar g = 0; g < 2; g++) begin : gen_seg
      assign sb_in[g*SegW +: SegW] = {rx_st_valid[g], rx_st_sop[g], rx_st_eop[g], rx_st_hdr[g*128 +: 128],
                                      rx_st_tlp_prfx[g*32 +: 32], rx_st_bar_range[g*3 +: 3],
                                      rx_st_data[g*CoreWidth +: CoreWidth]};
    end
    ep_fifo #(.Width(2 * SegW), .Depth(RxFifoDepth)) u_rx_seg_fifo (
      .clk, .rst,
      .s_data(sb_q), .s_valid(sb_v_q), .s_ready(sb_in_ready),
      .m_data(sb_out), .m_valid(sb_out_valid), .m_ready(sb_out_ready)
    );
    logic       half_q;  // segment 0 of the head beat already sent
    logic [SegW-1:0] cur;
    logic       cur_v, last;
    assign cur   = half_q ? sb_out[SegW +: SegW] : sb_out[0 +: SegW];
    assign cur_v = cur[SegW-1];
    // the head beat is done after segment 1, or after segment 0 when segment 1 is empty
    assign last  = half_q || !sb_out[2*SegW-1];
    assign sb_out_ready = sb_out_valid && unpack_ok && last;
    always_ff @(posedge clk) begin
      in_v_q <= 1'b0;
      if (sb_out_valid && unpack_ok) begin
        in_v_q    <= cur_v;
        {in_sop_q, in_eop_q, in_hdr_q, in_prfx_q, in_bar_q, in_data_q} <= cur[SegW-2:0];
        half_q    <= !last;
      end
      if (rst) begin
        in_v_q <= 1'b0;
        half_q <= 1'b0;
      end
    end
    logic [CntW-1:0] sb_cnt_q;
    always_ff @(posedge clk) begin
      sb_cnt_q <= sb_cnt_q + CntW'(sb_v_q) - CntW'(sb_out_ready);
      if (rst) sb_cnt_q <= '0;
    end
    assign seg_room = sb_cnt_q < CntW'(RxFull);
`ifndef SYNTHESIS
    always_ff @(posedge clk) begin
      if (!rst && sb_v_q && !sb_in_ready) $error("ep_ptile_top: RX segment FIFO overflow (%m)");
    end
`endif
  end

  // which stream, per-DW strobes (from the header's Length: the IP's rx_st_empty is redundant)
  logic [4:0]   in_type;
  logic         in_is_cpl, in_cpl_q, cpl_now;
  logic [10:0]  in_len, rem_now, rem_q;
  logic [S-1:0] in_strb;
  assign in_type   = in_hdr_q[ep_pcie_pkg::HDR_TYPE_LSB +: 5];
  assign in_is_cpl = in_type == ep_pcie_pkg::TYPE_CPL || in_type == ep_pcie_pkg::TYPE_CPL_LK;
  assign cpl_now   = in_sop_q ? in_is_cpl : in_cpl_q;
  assign in_len    = in_hdr_q[ep_pcie_pkg::HDR_LEN_LSB +: 10] == 10'd0 ? 11'd1024
                     : {1'b0, in_hdr_q[ep_pcie_pkg::HDR_LEN_LSB +: 10]};
  assign rem_now   = in_sop_q ? (in_hdr_q[126] ? in_len : 11'd0) : rem_q;  // Fmt[1]: with data
  always_comb begin
    for (int i = 0; i < S; i++) in_strb[i] = rem_now > 11'(i);
  end
  always_ff @(posedge clk) begin
    if (in_v_q) begin
      in_cpl_q <= cpl_now;
      rem_q    <= rem_now > 11'(S) ? rem_now - 11'(S) : 11'd0;
    end
    if (rst) begin
      in_cpl_q <= 1'b0;
      rem_q    <= 11'd0;
    end
  end

  // memory requests: the address becomes the offset in the BAR the IP says was hit, placed at
  // the base ep_pcie_fe decodes that BAR at (0 for BAR0, HipBar2Base for BAR2)
  logic         in_mem, in_is4;
  logic [63:0]  in_addr, new_addr;
  logic [127:0] in_hdr_rw;
  assign in_mem  = in_type[4:1] == 4'b0000 && !in_hdr_q[127];  // MRd / MRdLk / MWr, not a prefix
  assign in_is4  = in_hdr_q[125];
  assign in_addr = in_is4 ? {in_hdr_q[63:32], in_hdr_q[31:2], 2'b00} : {32'h0, in_hdr_q[63:34], 2'b00};
  always_comb begin
    new_addr  = in_addr;
    in_hdr_rw = in_hdr_q;
    if (in_bar_q == 3'd0) new_addr = in_addr & ((64'd1 << Bar0SizeLog2) - 64'd1);
    if (in_bar_q == 3'd2) new_addr = HipBar2Base | (in_addr & ((64'd1 << Bar2SizeLog2) - 64'd1));
    if (in_mem && (in_bar_q == 3'd0 || in_bar_q == 3'd2)) begin
      if (in_is4) begin
        in_hdr_rw[63:32] = new_addr[63:32];
        in_hdr_rw[31:2]  = new_addr[31:2];
      end else begin
        in_hdr_rw[63:34] = new_addr[31:2];
      end
    end
  end

  localparam int unsigned ReqW = 2 + S + 32 + 128 + CoreWidth;
  localparam int unsigned CplW = 2 + S + 128 + CoreWidth;
  logic rq_push, rc_push, rq_in_ready, rc_in_ready;
  assign rq_push = in_v_q && !cpl_now;
  assign rc_push = in_v_q && cpl_now;
  ep_fifo #(.Width(ReqW), .Depth(RxFifoDepth)) u_rx_req_fifo (
    .clk, .rst,
    .s_data ({in_sop_q, in_eop_q, in_strb, in_prfx_q, in_hdr_rw, in_data_q}),
    .s_valid(rq_push), .s_ready(rq_in_ready),
    .m_data ({rq_sop, rq_eop, rq_strb, rq_prfx, rq_hdr, rq_data}),
    .m_valid(rq_valid), .m_ready(rq_ready)
  );
  ep_fifo #(.Width(CplW), .Depth(RxFifoDepth)) u_rx_cpl_fifo (
    .clk, .rst,
    .s_data ({in_sop_q, in_eop_q, in_strb, in_hdr_q, in_data_q}),
    .s_valid(rc_push), .s_ready(rc_in_ready),
    .m_data ({rc_sop, rc_eop, rc_strb, rc_hdr, rc_data}),
    .m_valid(rc_valid), .m_ready(rc_ready)
  );
  // occupancy (beats pushed and not yet popped) -> rx_st_ready with room for the ready latency
  logic [CntW-1:0] rq_cnt_q, rc_cnt_q;
  logic rx_ready_q;
  always_ff @(posedge clk) begin
    rq_cnt_q   <= rq_cnt_q + CntW'(rq_push) - CntW'(rq_valid && rq_ready);
    rc_cnt_q   <= rc_cnt_q + CntW'(rc_push) - CntW'(rc_valid && rc_ready);
    rx_ready_q <= rq_cnt_q < CntW'(RxFull) && rc_cnt_q < CntW'(RxFull) && seg_room;
    if (rst) begin
      rq_cnt_q   <= '0;
      rc_cnt_q   <= '0;
      rx_ready_q <= 1'b0;
    end
  end
  assign rx_st_ready = rx_ready_q;
  // Seg = 2: a segment leaves the unpacker only while both FIFOs have room for it and the two
  // beats in flight behind it
  assign unpack_ok = rq_cnt_q < CntW'(RxFifoDepth - 4) && rc_cnt_q < CntW'(RxFifoDepth - 4);

  // ---- TX: cpl / wr / rd merged onto the one stream, frame by frame, within the credits --------
  // credit limits from the TDM bus; a type whose limit never left 0 since reset was advertised
  // infinite (InitFC 0) and is not counted
  logic [15:0] cdts_q;
  logic [2:0]  cdts_idx_q;
  logic [HdrFcBits-1:0]  lim_h_q [3], cons_h_q [3];   // [0] posted [1] non-posted [2] completion
  logic [DataFcBits-1:0] lim_d_q [3], cons_d_q [3];
  logic [2:0]  inf_h_q, inf_d_q;
  always_ff @(posedge clk) begin
    cdts_q     <= tx_cdts_limit;
    cdts_idx_q <= tx_cdts_limit_tdm_idx;
    for (int k = 0; k < 3; k++) begin
      if (cdts_idx_q == 3'(k)) begin
        lim_h_q[k] <= cdts_q[HdrFcBits-1:0];
        if (cdts_q[HdrFcBits-1:0] != '0) inf_h_q[k] <= 1'b0;
      end
      if (cdts_idx_q == 3'(k + 4)) begin
        lim_d_q[k] <= cdts_q[DataFcBits-1:0];
        if (cdts_q[DataFcBits-1:0] != '0) inf_d_q[k] <= 1'b0;
      end
    end
    if (rst) begin
      inf_h_q <= '1;
      inf_d_q <= '1;
      for (int k = 0; k < 3; k++) begin
        lim_h_q[k] <= '0;
        lim_d_q[k] <= '0;
      end
    end
  end
  if (HdrFcBits < 16) begin : gen_unused_cdts
    logic unused_cdts;  // header limits are narrower than the bus
    assign unused_cdts = ^cdts_q[15:HdrFcBits];
  end

  // the three sources: index 0 = tx_wr (posted), 1 = tx_rd (non-posted), 2 = tx_cpl (completion)
  logic [2:0]   src_valid, src_sop, src_eop, src_ready, cand;
  logic [127:0] src_hdr [3];
  logic [DataFcBits-1:0] need_d [3];
  logic [2:0]   ok;
  assign src_valid = {cpl_valid_g, rd_valid_g, wr_valid};
  assign src_sop   = {cpl_sop, rd_sop, wr_sop};
  assign src_eop   = {cpl_eop, rd_eop, wr_eop};
  assign src_hdr[0] = wr_hdr;
  assign src_hdr[1] = rd_hdr;
  assign src_hdr[2] = cpl_hdr;
  always_comb begin
    for (int k = 0; k < 3; k++) begin
      logic [10:0] len;
      logic [HdrFcBits-1:0]  left_h;
      logic [DataFcBits-1:0] left_d;
      len = src_hdr[k][ep_pcie_pkg::HDR_LEN_LSB +: 10] == 10'd0 ? 11'd1024
            : {1'b0, src_hdr[k][ep_pcie_pkg::HDR_LEN_LSB +: 10]};
      // data credits: 16 bytes (4 DWs) each
      need_d[k] = src_hdr[k][126] ? DataFcBits'(9'((len + 11'd3) >> 2)) : '0;
      // PCIe flow-control gate: (limit - (consumed + needed)) mod 2^N <= 2^(N-1)
      left_h = lim_h_q[k] - cons_h_q[k] - HdrFcBits'(1);
      left_d = lim_d_q[k] - cons_d_q[k] - need_d[k];
      ok[k] = (inf_h_q[k] || left_h <= HdrFcBits'(1 << (HdrFcBits - 1)))
              && (inf_d_q[k] || left_d <= DataFcBits'(1 << (DataFcBits - 1)));
    end
`ifdef MUTANT_PTILE_NO_CREDIT_GATE  // planted bug (make mutants): frames start without TX credits
    cand = src_valid & src_sop & (ok | 3'b111);
`else
    cand = src_valid & src_sop & ok;
`endif
  end

  // ready latency 3: a beat may be presented in cycle n only if tx_st_ready was high in n - 3;
  // the output is a register, so the beat is chosen in n - 1 with ready from n - 3 (two delays)
  logic       rdy1_q, rdy2_q, busy_q, take, sop_take;
  logic [1:0] sel_q, last_q, pick, cur;
  always_ff @(posedge clk) begin
    rdy1_q <= tx_st_ready;
    rdy2_q <= rdy1_q;
    if (rst) {rdy1_q, rdy2_q} <= 2'b00;
  end
  // round robin among the sources that may start a frame, starting after the last one granted
  always_comb begin
    pick = 2'd0;
    for (int j = 3; j >= 1; j--) begin
      logic [1:0] k;
      k = 2'((32'(last_q) + 32'(j)) % 3);
      if (cand[k]) pick = k;
    end
  end
  assign cur       = busy_q ? sel_q : pick;
  assign take      = rdy2_q && (busy_q ? src_valid[sel_q] : |cand);
  assign sop_take  = take && !busy_q;
  assign src_ready = take ? 3'(1 << cur) : 3'b000;
  assign wr_ready    = src_ready[0];
  assign rd_ready_g  = src_ready[1];
  assign cpl_ready_g = src_ready[2];

  logic                 out_v_q, out_sop_q, out_eop_q;
  logic [127:0]         out_hdr_q;
  logic [31:0]          out_prfx_q;
  logic [CoreWidth-1:0] out_data_q;
  always_ff @(posedge clk) begin
    out_v_q <= take;
    if (take) begin
      out_sop_q <= src_sop[cur];
      out_eop_q <= src_eop[cur];
      unique case (cur)
        2'd0:    begin out_hdr_q <= wr_hdr;  out_prfx_q <= wr_prfx; out_data_q <= wr_data;  end
        2'd1:    begin out_hdr_q <= rd_hdr;  out_prfx_q <= rd_prfx; out_data_q <= '0;       end
        default: begin out_hdr_q <= cpl_hdr; out_prfx_q <= 32'h0;   out_data_q <= cpl_data; end
      endcase
      busy_q <= !src_eop[cur];
      sel_q  <= cur;
    end
    if (sop_take) begin
      last_q <= cur;
      cons_h_q[cur] <= cons_h_q[cur] + HdrFcBits'(1);
      cons_d_q[cur] <= cons_d_q[cur] + need_d[cur];
    end
    if (rst) begin
      out_v_q <= 1'b0;
      busy_q  <= 1'b0;
      sel_q   <= 2'd0;
      last_q  <= 2'd2;
      for (int k = 0; k < 3; k++) begin
        cons_h_q[k] <= '0;
        cons_d_q[k] <= '0;
      end
    end
  end
  // Seg = 2: every frame in segment 0, segment 1 idle (a TLP may start in either; 0 is allowed)
  assign tx_st_valid    = Seg'(out_v_q);
  assign tx_st_sop      = Seg'(out_sop_q);
  assign tx_st_eop      = Seg'(out_eop_q);
  assign tx_st_hdr      = (Seg*128)'(out_hdr_q);
  assign tx_st_tlp_prfx = (Seg*32)'(out_prfx_q);
  assign tx_st_data     = DataWidth'(out_data_q);
  assign tx_st_err      = '0;
  logic unused_tx;  // per-DW strobes: the P-tile takes the payload length from the header
  assign unused_tx = ^{wr_strb, cpl_strb, rd_sop & rd_eop};

  // ---- CII: the SIOV DVSEC at 0xD00 (DWs 0x340 ..) from ep_cfg_space ----------------------------
  // A request is seen on cii_req's rising edge; cii_halt goes up the next cycle and stays up until
  // the answer is on cii_override_en/din, which then stay valid until cii_req falls. Reads in
  // 0xD00 .. 0xFFF are answered (DVSEC or 0); writes reach the DVSEC (System Page Size) and are
  // not overridden; requests outside the range are released untouched.
  typedef enum logic [1:0] {CiiIdle, CiiAccess, CiiResp, CiiDone} cii_e;
  cii_e        cii_st_q;
  logic        cii_req_q, cii_halt_q, cii_ovr_q, cii_wr_q, cii_in_vsec_q, cii_hit_q, cii_dw0_q;
  logic [31:0] cii_din_q;
  logic        vsec_req, dvsec_req;
  logic [9:0]  cii_off;
  assign cii_off   = cii_addr - CiiDvsecDw;
  assign vsec_req  = cii_addr >= CiiDvsecDw;
  assign dvsec_req = vsec_req && cii_off < 10'(DvsecDws);
  always_ff @(posedge clk) begin
    cii_req_q  <= cii_req;
    xcfg_valid <= 1'b0;
    unique case (cii_st_q)
      CiiIdle: if (cii_req && !cii_req_q) begin
        cii_halt_q    <= 1'b1;
        cii_wr_q      <= cii_wr;
        cii_in_vsec_q <= vsec_req;
        cii_hit_q     <= dvsec_req;
        cii_dw0_q     <= cii_off == 10'd0;
        xcfg_valid    <= dvsec_req;
        xcfg_write    <= cii_wr;
        xcfg_dw       <= DwSiov + cii_off;
        xcfg_wdata    <= cii_dout;
        xcfg_be       <= cii_hdr_first_be;
        cii_st_q      <= CiiAccess;
      end
      CiiAccess: cii_st_q <= CiiResp;  // ep_cfg_space's read data is valid now
      CiiResp: begin
        cii_halt_q <= 1'b0;
        cii_ovr_q  <= cii_in_vsec_q && !cii_wr_q;
        // the DVSEC is the last capability here: its Next Capability Offset reads 0
        cii_din_q  <= !cii_hit_q ? 32'h0 : cii_dw0_q ? {12'h000, xcfg_rdata[19:0]} : xcfg_rdata;
        cii_st_q   <= CiiDone;
      end
      default: if (!cii_req) begin  // CiiDone: answer held until the IP drops the request
        cii_ovr_q <= 1'b0;
        cii_st_q  <= CiiIdle;
      end
    endcase
    if (rst) begin
      cii_st_q   <= CiiIdle;
      cii_req_q  <= 1'b1;  // a request already up at reset is not taken for a new one
      cii_halt_q <= 1'b0;
      cii_ovr_q  <= 1'b0;
      cii_din_q  <= 32'h0;
      xcfg_valid <= 1'b0;
    end
  end
  assign cii_halt         = cii_halt_q;
  assign cii_override_en  = cii_ovr_q;
  assign cii_override_din = cii_din_q;
  logic unused_cii;  // single function, no VFs: which function / VF is implied
  assign unused_cii = ^{cii_hdr_poisoned, cii_func_num, cii_wr_vf_active, cii_vf_num};

  // ---- Function Level Reset: flr_rcvd_pf[0] -> reset behind the front end -> flr_completed_pf[0]
  logic flr_rcvd_q, flr_done_q;
  always_ff @(posedge clk) begin
    flr_rcvd_q <= flr_rcvd_pf[0];
    flr_done_q <= flr_rst;
    if (rst) begin
      flr_rcvd_q <= 1'b0;
      flr_done_q <= 1'b0;
    end
  end
  assign hip_flr              = flr_rcvd_pf[0] && !flr_rcvd_q;
  assign flr_completed_pf     = {7'h0, flr_done_q};
  assign flr_completed_vf     = 1'b0;
  assign flr_completed_pf_num = 3'd0;
  assign flr_completed_vf_num = 11'd0;
  logic unused_flr;  // PF0 only, no VFs
  assign unused_flr = ^{flr_rcvd_pf[7:1], flr_rcvd_vf, flr_rcvd_pf_num, flr_rcvd_vf_num};

  // ---- errors are logged by the IP's own AER (not reported from here yet), no legacy INTx --------
  assign app_err_valid    = 1'b0;
  assign app_err_hdr      = 32'h0;
  assign app_err_info     = 13'h0;
  assign app_err_func_num = 3'd0;
  assign app_int          = 8'h0;
  logic unused_rx;  // single segment: end-of-frame from the header Length; no VFs, no abort
  assign unused_rx = ^{rx_st_empty, rx_st_tlp_abort, rx_st_vf_active, rx_st_func_num, rx_st_vf_num,
                       rq_in_ready, rc_in_ready, new_addr[1:0]};

`ifndef SYNTHESIS
  always_ff @(posedge clk) begin
    if (!rst && rq_push && !rq_in_ready) $error("ep_ptile_top: RX request FIFO overflow (%m)");
    if (!rst && rc_push && !rc_in_ready) $error("ep_ptile_top: RX completion FIFO overflow (%m)");
    if (!rst && out_v_q && !tx_st_valid[0]) $error("ep_ptile_top: tx_st_valid lost (%m)");
  end
`endif
endmodule
`resetall
