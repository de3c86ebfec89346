// SPDX-License-Identifier: Apache-2.0
/// ep_core: everything behind the PCIe front end (contract: rtl/README.md "ep_core contract").
///   register bus -> BAR0: ep_regs (generated from rtl/regs/ep_regs.rdl) with the RAM-backed
///                         regions `adis` (ep_adi_state) and `switch` (ep_adi_switch)
///                -> BAR2: portal pages (ep_adi_state)
///   PF interrupts: ep_msix (table/PBA in ep_regs) ; IMS messages from ep_adi_state
///   DMA: ep_dma (rtl/dma) between ep_adi's client ports and the link streams; interrupt
///   messages (MSI-X, IMS) go through its message port, ordered after earlier writes
/// One register request is served at a time; responses come in request order.
`resetall
`default_nettype none
module ep_core #(
  parameter int unsigned DataWidth    = 256,  /// TLP data width, multiple of 64
  parameter int unsigned NumAdi       = 4,    /// ADIs, power of two 4 .. 4096
  parameter int unsigned Bar0SizeLog2 = 20,   /// BAR0 size (1 MiB)
  parameter int unsigned CplhFcLimit  = 572,  /// DMA completion header credits (rtl/dma/README.md)
  parameter int unsigned CpldFcLimit  = 1444  /// DMA completion data credits, 16 bytes each
) (
  input  wire logic                     clk,
  input  wire logic                     rst,               // synchronous, active-high
  // register bus from the front end: one DW per request (sink)
  input  wire logic                     s_reg_valid,
  output logic                          s_reg_ready,
  input  wire logic                     s_reg_bar,         // 0 = BAR0, 1 = BAR2
  input  wire logic [31:0]              s_reg_addr,        // byte offset inside the BAR
  input  wire logic                     s_reg_write,
  input  wire logic [31:0]              s_reg_wdata,
  input  wire logic [3:0]               s_reg_be,
  // register responses: one per request, in order (status: no ready)
  output logic                          m_reg_rsp_valid,
  output logic [31:0]                   m_reg_rsp_rdata,
  // configuration state from ep_cfg_space
  input  wire logic [15:0]              cfg_requester_id,
  input  wire logic                     cfg_bus_master_en,
  input  wire logic [2:0]               cfg_max_payload,
  input  wire logic [2:0]               cfg_max_read_req,
  input  wire logic                     cfg_ext_tag_en,
  input  wire logic                     cfg_pasid_en,
  input  wire logic                     cfg_pasid_exec_en,
  input  wire logic                     cfg_pasid_priv_en,
  input  wire logic                     cfg_msix_en,
  input  wire logic                     cfg_msix_func_mask,
  input  wire logic [4:0]               cfg_sys_page_shift,
  // DMA write requests, MSI-X and IMS messages (source)
  output logic [127:0]                  tx_wr_req_tlp_hdr,
  output logic [DataWidth-1:0]          tx_wr_req_tlp_data,
  output logic [DataWidth/32-1:0]       tx_wr_req_tlp_strb,
  output logic [31:0]                   tx_wr_req_tlp_prfx,
  output logic                          tx_wr_req_tlp_valid,
  output logic                          tx_wr_req_tlp_sop,
  output logic                          tx_wr_req_tlp_eop,
  input  wire logic                     tx_wr_req_tlp_ready,
  // DMA read requests (source)
  output logic [127:0]                  tx_rd_req_tlp_hdr,
  output logic [31:0]                   tx_rd_req_tlp_prfx,
  output logic                          tx_rd_req_tlp_valid,
  output logic                          tx_rd_req_tlp_sop,
  output logic                          tx_rd_req_tlp_eop,
  input  wire logic                     tx_rd_req_tlp_ready,
  // completions for DMA reads (sink)
  input  wire logic [127:0]             rx_cpl_tlp_hdr,
  input  wire logic [DataWidth-1:0]     rx_cpl_tlp_data,
  input  wire logic [DataWidth/32-1:0]  rx_cpl_tlp_strb,
  input  wire logic                     rx_cpl_tlp_valid,
  input  wire logic                     rx_cpl_tlp_sop,
  input  wire logic                     rx_cpl_tlp_eop,
  output logic                          rx_cpl_tlp_ready,
  // requester status for the config space (DevSta.TP, AER): level / one-cycle pulses
  output logic                          dma_tp,            // DMA reads outstanding
  output logic                          err_cpl_timeout,   // a DMA read tag timed out
  output logic                          err_unexp_cpl      // a completion was unexpected
);
  localparam int unsigned AdiW = $clog2(NumAdi);
  if (Bar0SizeLog2 != 20) begin : gen_chk_bar0
    $fatal(1, "ep_core: the register map (rtl/regs/ep_regs.rdl) is laid out for a 1 MiB BAR0 (%m)");
  end

  // ------------------------------------------------------------------ register bus adapter
  typedef enum logic [1:0] {RbIdle, RbBar0, RbBar2} rb_e;
  rb_e rb_q;

  logic        cpu_req, cpu_rd_ack, cpu_wr_ack, cpu_stall_rd, cpu_stall_wr, cpu_rd_err, cpu_wr_err;
  logic [31:0] cpu_rd_data;
  logic        portal_valid_q, portal_ready, portal_ack;
  logic [31:0] portal_rdata;
  logic [AdiW-1:0] portal_adi_q;
  logic [11:0] portal_off_q;
  logic        portal_wr_q;
  logic [31:0] portal_wdata_q;

  assign s_reg_ready = (rb_q == RbIdle);
  wire   accept      = s_reg_valid && s_reg_ready;
  assign cpu_req     = accept && !s_reg_bar;

  // BAR2: ADI = addr >> page shift; offsets beyond the first 4 KiB of a page read as 0
  wire [31:0] page_mask = (32'd1 << cfg_sys_page_shift) - 32'd1;
  wire [31:0] page_adi  = s_reg_addr >> cfg_sys_page_shift;
  wire [31:0] page_off  = s_reg_addr & page_mask;
  wire        page_oob  = (page_adi >= 32'(NumAdi));

  always_ff @(posedge clk) begin
    if (rst) begin
      rb_q            <= RbIdle;
      m_reg_rsp_valid <= 1'b0;
      portal_valid_q  <= 1'b0;
    end else begin
      m_reg_rsp_valid <= 1'b0;
      unique case (rb_q)
        RbIdle: if (accept) begin
          if (!s_reg_bar) begin
            if (cpu_rd_ack || cpu_wr_ack) m_reg_rsp_valid <= 1'b1;   // internal register
            else rb_q <= RbBar0;                                     // external region
          end else if (page_oob) begin
            m_reg_rsp_valid <= 1'b1;
          end else begin
            rb_q           <= RbBar2;
            portal_valid_q <= 1'b1;
          end
        end
        RbBar0: if (cpu_rd_ack || cpu_wr_ack) begin
          m_reg_rsp_valid <= 1'b1;
          rb_q            <= RbIdle;
        end
        RbBar2: begin
          if (portal_ready) portal_valid_q <= 1'b0;
          if (portal_ack) begin
            m_reg_rsp_valid <= 1'b1;
            rb_q            <= RbIdle;
          end
        end
        default: rb_q <= RbIdle;
      endcase
    end
  end
  always_ff @(posedge clk) begin
    if (accept) begin
      portal_adi_q   <= page_adi[AdiW-1:0];
      portal_off_q   <= (page_off >= 32'h1000) ? 12'hFFF : page_off[11:0];
      portal_wr_q    <= s_reg_write;
      portal_wdata_q <= s_reg_wdata;
    end
    if (cpu_rd_ack) m_reg_rsp_rdata <= cpu_rd_data;
    else if (portal_ack && !portal_wr_q) m_reg_rsp_rdata <= portal_rdata;
    else m_reg_rsp_rdata <= 32'd0;
  end

  // ------------------------------------------------------------------ BAR0 register block
  logic        pf_enable, init_done;
  logic        evt_adi_error, evt_drain_done, mask_err, mask_drain;
  logic [2:0]  vec_err, vec_drain;
  logic [15:0] last_err_adi, last_drain_adi, dma_timeout_units;
  logic [7:0]  last_err_code, msix_pending;
  logic [31:0] scratch;
  logic [8*64-1:0] msix_addr;
  logic [8*32-1:0] msix_data;
  logic [7:0]  msix_mask;
  logic        sw_req, sw_wr, sw_wr_ack, sw_rd_ack;
  logic [13:0] sw_addr;
  logic [31:0] sw_wdata, sw_biten, sw_rdata;
  logic        adis_req, adis_wr, adis_wr_ack, adis_rd_ack;
  logic [18:0] adis_addr;
  logic [31:0] adis_wdata, adis_biten, adis_rdata;

  ep_regs u_regs (
    .clk, .rst,
    .s_cpuif_req(cpu_req), .s_cpuif_req_is_wr(s_reg_write), .s_cpuif_addr(s_reg_addr[19:0]),
    .s_cpuif_wr_data(s_reg_wdata),
    .s_cpuif_wr_biten({{8{s_reg_be[3]}}, {8{s_reg_be[2]}}, {8{s_reg_be[1]}}, {8{s_reg_be[0]}}}),
    .s_cpuif_req_stall_wr(cpu_stall_wr), .s_cpuif_req_stall_rd(cpu_stall_rd),
    .s_cpuif_rd_ack(cpu_rd_ack), .s_cpuif_rd_err(cpu_rd_err), .s_cpuif_rd_data(cpu_rd_data),
    .s_cpuif_wr_ack(cpu_wr_ack), .s_cpuif_wr_err(cpu_wr_err),
    .hwif_in_num_adi_count(16'(NumAdi)),
    .hwif_out_pf_ctrl_enable(pf_enable),
    .hwif_in_pf_status_init_done(init_done),
    .hwif_in_pf_status_tp(dma_rd_busy),
    .hwif_in_pf_status_cpl_timeout_hwset(stat_cpl_timeout),
    .hwif_in_pf_status_unexp_cpl_hwset(stat_unexp_cpl),
    .hwif_in_pf_int_cause_adi_error_hwset(evt_adi_error),
    .hwif_in_pf_int_cause_drain_done_hwset(evt_drain_done),
    .hwif_out_pf_int_mask_adi_error(mask_err),
    .hwif_out_pf_int_mask_drain_done(mask_drain),
    .hwif_out_pf_int_vec_adi_error(vec_err),
    .hwif_out_pf_int_vec_drain_done(vec_drain),
    .hwif_in_last_err_adi(last_err_adi),
    .hwif_in_last_err_err(last_err_code),
    .hwif_in_last_drain_adi(last_drain_adi),
    .hwif_out_dma_timeout_units(dma_timeout_units),
    .hwif_out_scratch_value(scratch),
    .hwif_out_msix_0_addr_lo_addr(msix_addr[0*64 +: 32]), .hwif_out_msix_0_addr_hi_addr(msix_addr[0*64+32 +: 32]),
    .hwif_out_msix_0_data(msix_data[0*32 +: 32]), .hwif_out_msix_0_ctrl_mask(msix_mask[0]),
    .hwif_out_msix_1_addr_lo_addr(msix_addr[1*64 +: 32]), .hwif_out_msix_1_addr_hi_addr(msix_addr[1*64+32 +: 32]),
    .hwif_out_msix_1_data(msix_data[1*32 +: 32]), .hwif_out_msix_1_ctrl_mask(msix_mask[1]),
    .hwif_out_msix_2_addr_lo_addr(msix_addr[2*64 +: 32]), .hwif_out_msix_2_addr_hi_addr(msix_addr[2*64+32 +: 32]),
    .hwif_out_msix_2_data(msix_data[2*32 +: 32]), .hwif_out_msix_2_ctrl_mask(msix_mask[2]),
    .hwif_out_msix_3_addr_lo_addr(msix_addr[3*64 +: 32]), .hwif_out_msix_3_addr_hi_addr(msix_addr[3*64+32 +: 32]),
    .hwif_out_msix_3_data(msix_data[3*32 +: 32]), .hwif_out_msix_3_ctrl_mask(msix_mask[3]),
    .hwif_out_msix_4_addr_lo_addr(msix_addr[4*64 +: 32]), .hwif_out_msix_4_addr_hi_addr(msix_addr[4*64+32 +: 32]),
    .hwif_out_msix_4_data(msix_data[4*32 +: 32]), .hwif_out_msix_4_ctrl_mask(msix_mask[4]),
    .hwif_out_msix_5_addr_lo_addr(msix_addr[5*64 +: 32]), .hwif_out_msix_5_addr_hi_addr(msix_addr[5*64+32 +: 32]),
    .hwif_out_msix_5_data(msix_data[5*32 +: 32]), .hwif_out_msix_5_ctrl_mask(msix_mask[5]),
    .hwif_out_msix_6_addr_lo_addr(msix_addr[6*64 +: 32]), .hwif_out_msix_6_addr_hi_addr(msix_addr[6*64+32 +: 32]),
    .hwif_out_msix_6_data(msix_data[6*32 +: 32]), .hwif_out_msix_6_ctrl_mask(msix_mask[6]),
    .hwif_out_msix_7_addr_lo_addr(msix_addr[7*64 +: 32]), .hwif_out_msix_7_addr_hi_addr(msix_addr[7*64+32 +: 32]),
    .hwif_out_msix_7_data(msix_data[7*32 +: 32]), .hwif_out_msix_7_ctrl_mask(msix_mask[7]),
    .hwif_in_msix_pba_pending(msix_pending),
    .hwif_out_switch_req(sw_req), .hwif_out_switch_addr(sw_addr), .hwif_out_switch_req_is_wr(sw_wr),
    .hwif_out_switch_wr_data(sw_wdata), .hwif_out_switch_wr_biten(sw_biten),
    .hwif_in_switch_wr_ack(sw_wr_ack), .hwif_in_switch_rd_data(sw_rdata), .hwif_in_switch_rd_ack(sw_rd_ack),
    .hwif_out_adis_req(adis_req), .hwif_out_adis_addr(adis_addr), .hwif_out_adis_req_is_wr(adis_wr),
    .hwif_out_adis_wr_data(adis_wdata), .hwif_out_adis_wr_biten(adis_biten),
    .hwif_in_adis_wr_ack(adis_wr_ack), .hwif_in_adis_rd_data(adis_rdata), .hwif_in_adis_rd_ack(adis_rd_ack)
  );

  // ------------------------------------------------------------------ ADI subsystem
  localparam int unsigned NumCtx = 8;
  localparam int unsigned RamAddrWidth = $clog2(NumCtx * 8192) + 1;
  localparam int unsigned RamWordW = RamAddrWidth - $clog2(DataWidth / 8);
  logic [63:0]     ims_addr;
  logic [31:0]     ims_data;
  logic [AdiW-1:0] ims_adi, ims_drop_adi;
  logic            ims_valid, ims_ready, adi_busy, ims_drop_valid;
  // DMA client interface (ep_dma, rtl/dma/README.md)
  logic [63:0]     rd_req_addr, wr_req_addr;
  logic [15:0]     rd_req_len, wr_req_len;
  logic [RamAddrWidth-1:0] rd_req_ram_addr, wr_req_ram_addr;
  logic            rd_req_pasid_valid, rd_req_pmr, rd_req_valid, wr_req_pasid_valid, wr_req_pmr;
  logic            wr_req_imm_en, wr_req_valid, ram_wr_ready, ram_rd_cmd_ready, ram_rd_resp_valid;
  logic [19:0]     rd_req_pasid, wr_req_pasid;
  logic [7:0]      rd_req_tag, wr_req_tag;
  logic [DataWidth-1:0] wr_req_imm_data, ram_rd_resp_data, ram_wr_data;
  logic            rd_req_ready, wr_req_ready, rd_sts_valid, wr_sts_valid, ram_wr_valid, ram_rd_cmd_valid;
  logic [7:0]      rd_sts_tag, wr_sts_tag;
  logic [3:0]      rd_sts_error, wr_sts_error;
  logic [RamWordW-1:0] ram_wr_addr, ram_rd_cmd_addr;
  logic [DataWidth/8-1:0] ram_wr_be;
  logic            stat_unexp_cpl, stat_cpl_timeout, dma_rd_busy, dma_wr_busy;
  logic [27:0]     cpl_timeout_cycles;
  // dma_timeout.units counts 4096 clock cycles (0 acts as 1)
  assign cpl_timeout_cycles = {(dma_timeout_units == 16'd0) ? 16'd1 : dma_timeout_units, 12'h000};
  assign dma_tp          = dma_rd_busy;
  assign err_cpl_timeout = stat_cpl_timeout;
  assign err_unexp_cpl   = stat_unexp_cpl;

  ep_adi #(.NumAdi(NumAdi), .DataWidth(DataWidth), .NumCtx(NumCtx)) u_adi (
    .clk, .rst, .enable(pf_enable), .init_done(init_done), .busy(adi_busy),
    .cfg_pasid_en, .cfg_pasid_priv_en,
    .s_adis_req(adis_req), .s_adis_addr(adis_addr), .s_adis_wr(adis_wr), .s_adis_wdata(adis_wdata),
    .s_adis_biten(adis_biten), .s_adis_wr_ack(adis_wr_ack), .s_adis_rd_ack(adis_rd_ack),
    .s_adis_rdata(adis_rdata),
    .s_sw_req(sw_req), .s_sw_addr(sw_addr), .s_sw_wr(sw_wr), .s_sw_wdata(sw_wdata),
    .s_sw_wr_ack(sw_wr_ack), .s_sw_rd_ack(sw_rd_ack), .s_sw_rdata(sw_rdata),
    .s_portal_valid(portal_valid_q), .s_portal_ready(portal_ready), .s_portal_adi(portal_adi_q),
    .s_portal_off(portal_off_q), .s_portal_wr(portal_wr_q), .s_portal_wdata(portal_wdata_q),
    .m_portal_ack(portal_ack), .m_portal_rdata(portal_rdata),
    .m_ims_addr(ims_addr), .m_ims_data(ims_data), .m_ims_adi(ims_adi), .m_ims_valid(ims_valid),
    .m_ims_ready(ims_ready),
    .s_ims_drop_valid(ims_drop_valid), .s_ims_drop_adi(ims_drop_adi), .ims_hold(!cfg_bus_master_en),
    .evt_adi_error, .evt_drain_done, .last_err_adi, .last_err_code, .last_drain_adi,
    .m_rd_req_addr(rd_req_addr), .m_rd_req_len(rd_req_len), .m_rd_req_ram_addr(rd_req_ram_addr),
    .m_rd_req_pasid_valid(rd_req_pasid_valid), .m_rd_req_pasid(rd_req_pasid), .m_rd_req_pmr(rd_req_pmr),
    .m_rd_req_tag(rd_req_tag), .m_rd_req_valid(rd_req_valid), .m_rd_req_ready(rd_req_ready),
    .s_rd_sts_tag(rd_sts_tag), .s_rd_sts_error(rd_sts_error), .s_rd_sts_valid(rd_sts_valid),
    .s_ram_wr_addr(ram_wr_addr), .s_ram_wr_be(ram_wr_be), .s_ram_wr_data(ram_wr_data),
    .s_ram_wr_valid(ram_wr_valid),
    .s_ram_wr_ready(ram_wr_ready),
    .m_wr_req_addr(wr_req_addr), .m_wr_req_len(wr_req_len), .m_wr_req_ram_addr(wr_req_ram_addr),
    .m_wr_req_imm_en(wr_req_imm_en), .m_wr_req_imm_data(wr_req_imm_data),
    .m_wr_req_pasid_valid(wr_req_pasid_valid), .m_wr_req_pasid(wr_req_pasid), .m_wr_req_pmr(wr_req_pmr),
    .m_wr_req_tag(wr_req_tag), .m_wr_req_valid(wr_req_valid), .m_wr_req_ready(wr_req_ready),
    .s_wr_sts_tag(wr_sts_tag), .s_wr_sts_error(wr_sts_error), .s_wr_sts_valid(wr_sts_valid),
    .s_ram_rd_cmd_addr(ram_rd_cmd_addr), .s_ram_rd_cmd_valid(ram_rd_cmd_valid),
    .s_ram_rd_cmd_ready(ram_rd_cmd_ready),
    .m_ram_rd_resp_data(ram_rd_resp_data), .m_ram_rd_resp_valid(ram_rd_resp_valid)
  );

  // ------------------------------------------------------------------ PF MSI-X and messages
  logic [7:0]  msix_evt;
  logic [63:0] msix_msg_addr;
  logic [31:0] msix_msg_data;
  logic [2:0]  msix_msg_vec;
  logic        msix_msg_valid, msix_msg_ready;

  // A message the DMA engine dropped (Bus Master Enable cleared after it was queued there) comes
  // back with its source tag: {1, ADI} for IMS, {0, vector} for MSI-X. An MSI-X one sets its PBA
  // bit again (an event of that vector), an IMS one the ADI's pending bit (ep_adi_state); both
  // are sent once they are deliverable again (BME set, unmasked), exactly once.
  localparam int unsigned MsiTagW = 1 + ((AdiW > 3) ? AdiW : 3);
  logic               stat_msi_drop;
  logic [MsiTagW-1:0] stat_msi_drop_tag;
  wire                msix_drop = stat_msi_drop && !stat_msi_drop_tag[MsiTagW-1];
  assign ims_drop_valid = stat_msi_drop && stat_msi_drop_tag[MsiTagW-1];
  assign ims_drop_adi   = stat_msi_drop_tag[AdiW-1:0];

  always_comb begin
    msix_evt = 8'd0;
    if (evt_adi_error && !mask_err)    msix_evt[vec_err]   = 1'b1;
    if (evt_drain_done && !mask_drain) msix_evt[vec_drain] = 1'b1;
    if (msix_drop)                     msix_evt[stat_msi_drop_tag[2:0]] = 1'b1;
  end

  ep_msix #(.NumVec(8)) u_msix (
    .clk, .rst, .cfg_msix_en, .cfg_msix_func_mask, .cfg_bus_master_en,
    .tbl_addr(msix_addr), .tbl_data(msix_data), .tbl_mask(msix_mask), .evt(msix_evt),
    .pending(msix_pending),
    .m_msg_addr(msix_msg_addr), .m_msg_data(msix_msg_data), .m_msg_vec(msix_msg_vec),
    .m_msg_valid(msix_msg_valid),
    .m_msg_ready(msix_msg_ready)
  );

  // interrupt messages: PF MSI-X and IMS, round-robin into the DMA engine's message port
  // (ordered after every write request accepted before them). IMS messages wait in
  // ep_adi_state's FIFO while Bus Master Enable is clear (ep_dma would drop them).
  logic [63:0] msi_addr;
  logic [31:0] msi_data;
  logic [MsiTagW-1:0] msi_tag;
  logic        msi_valid, msi_ready, msi_last_ims_q;
  wire         ims_go  = ims_valid && cfg_bus_master_en;
  wire         pick_ims = ims_go && (!msix_msg_valid || !msi_last_ims_q);
  assign msi_valid      = msix_msg_valid || ims_go;
  assign msi_addr       = pick_ims ? ims_addr : msix_msg_addr;
  assign msi_data       = pick_ims ? ims_data : msix_msg_data;
  assign msi_tag        = pick_ims ? {1'b1, (MsiTagW-1)'(ims_adi)} : {1'b0, (MsiTagW-1)'(msix_msg_vec)};
  assign ims_ready      = msi_ready && pick_ims;
  assign msix_msg_ready = msi_ready && !pick_ims;
  always_ff @(posedge clk) begin
    if (rst) msi_last_ims_q <= 1'b0;
    else if (msi_valid && msi_ready) msi_last_ims_q <= pick_ims;
  end

  // ------------------------------------------------------------------ DMA engine
  ep_dma #(
    .DataWidth(DataWidth), .RamAddrWidth(RamAddrWidth), .CplhFcLimit(CplhFcLimit),
    .CpldFcLimit(CpldFcLimit), .MsiTagWidth(MsiTagW)
  ) u_dma (
    .clk, .rst,
    .cfg_requester_id, .cfg_bus_master_en, .cfg_max_payload, .cfg_max_read_req, .cfg_ext_tag_en,
    .cfg_pasid_en, .cfg_pasid_priv_en, .cfg_cpl_timeout(cpl_timeout_cycles),
    .s_rd_req_addr(rd_req_addr), .s_rd_req_len(rd_req_len), .s_rd_req_ram_addr(rd_req_ram_addr),
    .s_rd_req_pasid_valid(rd_req_pasid_valid), .s_rd_req_pasid(rd_req_pasid), .s_rd_req_pmr(rd_req_pmr),
    .s_rd_req_tag(rd_req_tag), .s_rd_req_valid(rd_req_valid), .s_rd_req_ready(rd_req_ready),
    .m_rd_sts_tag(rd_sts_tag), .m_rd_sts_error(rd_sts_error), .m_rd_sts_valid(rd_sts_valid),
    .m_ram_wr_addr(ram_wr_addr), .m_ram_wr_be(ram_wr_be), .m_ram_wr_data(ram_wr_data),
    .m_ram_wr_valid(ram_wr_valid), .m_ram_wr_ready(ram_wr_ready),
    .s_wr_req_addr(wr_req_addr), .s_wr_req_len(wr_req_len), .s_wr_req_ram_addr(wr_req_ram_addr),
    .s_wr_req_imm_en(wr_req_imm_en), .s_wr_req_imm_data(wr_req_imm_data),
    .s_wr_req_pasid_valid(wr_req_pasid_valid), .s_wr_req_pasid(wr_req_pasid), .s_wr_req_pmr(wr_req_pmr),
    .s_wr_req_tag(wr_req_tag), .s_wr_req_valid(wr_req_valid), .s_wr_req_ready(wr_req_ready),
    .m_wr_sts_tag(wr_sts_tag), .m_wr_sts_error(wr_sts_error), .m_wr_sts_valid(wr_sts_valid),
    .s_msi_req_addr(msi_addr), .s_msi_req_data(msi_data), .s_msi_req_tag(msi_tag), .s_msi_req_valid(msi_valid),
    .s_msi_req_ready(msi_ready),
    .m_ram_rd_cmd_addr(ram_rd_cmd_addr), .m_ram_rd_cmd_valid(ram_rd_cmd_valid),
    .m_ram_rd_cmd_ready(ram_rd_cmd_ready), .s_ram_rd_resp_data(ram_rd_resp_data),
    .s_ram_rd_resp_valid(ram_rd_resp_valid),
    .tx_wr_req_tlp_hdr, .tx_wr_req_tlp_data, .tx_wr_req_tlp_strb, .tx_wr_req_tlp_prfx,
    .tx_wr_req_tlp_valid, .tx_wr_req_tlp_sop, .tx_wr_req_tlp_eop, .tx_wr_req_tlp_ready,
    .tx_rd_req_tlp_hdr, .tx_rd_req_tlp_prfx, .tx_rd_req_tlp_valid, .tx_rd_req_tlp_sop,
    .tx_rd_req_tlp_eop, .tx_rd_req_tlp_ready,
    .rx_cpl_tlp_hdr, .rx_cpl_tlp_data, .rx_cpl_tlp_strb, .rx_cpl_tlp_valid, .rx_cpl_tlp_sop,
    .rx_cpl_tlp_eop, .rx_cpl_tlp_ready,
    .m_stat_unexp_cpl(stat_unexp_cpl), .m_stat_cpl_timeout(stat_cpl_timeout),
    .m_stat_msi_drop(stat_msi_drop), .m_stat_msi_drop_tag(stat_msi_drop_tag),
    .m_rd_busy(dma_rd_busy), .m_wr_busy(dma_wr_busy)
  );

`ifndef SYNTHESIS
  // a dropped MSI-X message is never lost: its PBA bit is set the next clock (ep_msix ORs the
  // event into pending after any clear); IMS drops are checked in ep_adi_state
  logic       msix_drop_q;
  logic [2:0] msix_drop_vec_q;
  always_ff @(posedge clk) begin
    if (rst) begin
      msix_drop_q <= 1'b0;
    end else begin
      msix_drop_q     <= msix_drop;
      msix_drop_vec_q <= stat_msi_drop_tag[2:0];
      if (msix_drop_q && !msix_pending[msix_drop_vec_q])
        $error("ep_core: dropped MSI-X message of vector %0d not pending (%m)", msix_drop_vec_q);
    end
  end
`endif

  wire unused_ok = &{1'b0, cpu_stall_rd, cpu_stall_wr, cpu_rd_err, cpu_wr_err, s_reg_addr[31:20],
                     sw_biten, scratch, adi_busy, dma_wr_busy, cfg_pasid_exec_en, page_off[31:12]};
endmodule
`resetall
