// SPDX-License-Identifier: Apache-2.0
/// ep_adi: the ADI subsystem = ep_adi_state (per-ADI RAM state, doorbells, run queue, IMS)
/// + ep_adi_switch (forwarding table) + ep_adi_engine (descriptor contexts, local buffer).
/// Toward ep_core: the BAR0 external regions `adis`/`switch`, the BAR2 portal, IMS messages,
/// PF events; toward the DMA engine: its client interface (rtl/dma/README.md).
`resetall
`default_nettype none
module ep_adi #(
  parameter int unsigned NumAdi    = 4,     /// ADIs, power of two 4 .. 4096
  parameter int unsigned DataWidth = 256,   /// DMA word width (>= 256)
  parameter int unsigned NumCtx    = 8,     /// descriptor contexts
  parameter int unsigned RamAddrWidth = $clog2(NumCtx * 8192) + 1  /// DO NOT OVERWRITE
) (
  input  wire logic                      clk,
  input  wire logic                      rst,             // synchronous, active-high
  input  wire logic                      enable,          // pf_ctrl.enable
  output logic                           init_done,
  output logic                           busy,            // a descriptor is in progress
  input  wire logic                      cfg_pasid_en,
  input  wire logic                      cfg_pasid_priv_en,
  // BAR0 `adis` region (etana external)
  input  wire logic                      s_adis_req,
  input  wire logic [18:0]               s_adis_addr,
  input  wire logic                      s_adis_wr,
  input  wire logic [31:0]               s_adis_wdata,
  input  wire logic [31:0]               s_adis_biten,
  output logic                           s_adis_wr_ack,
  output logic                           s_adis_rd_ack,
  output logic [31:0]                    s_adis_rdata,
  // BAR0 `switch` region (etana external)
  input  wire logic                      s_sw_req,
  input  wire logic [13:0]               s_sw_addr,
  input  wire logic                      s_sw_wr,
  input  wire logic [31:0]               s_sw_wdata,
  output logic                           s_sw_wr_ack,
  output logic                           s_sw_rd_ack,
  output logic [31:0]                    s_sw_rdata,
  // BAR2 portal
  input  wire logic                      s_portal_valid,
  output logic                           s_portal_ready,
  input  wire logic [$clog2(NumAdi)-1:0] s_portal_adi,
  input  wire logic [11:0]               s_portal_off,
  input  wire logic                      s_portal_wr,
  input  wire logic [31:0]               s_portal_wdata,
  output logic                           m_portal_ack,
  output logic [31:0]                    m_portal_rdata,
  // IMS messages (source)
  output logic [63:0]                    m_ims_addr,
  output logic [31:0]                    m_ims_data,
  output logic [$clog2(NumAdi)-1:0]      m_ims_adi,       // source ADI of the message
  output logic                           m_ims_valid,
  input  wire logic                      m_ims_ready,
  // IMS messages dropped by the DMA engine (status, no ready): become pending (ep_adi_state)
  input  wire logic                      s_ims_drop_valid,
  input  wire logic [$clog2(NumAdi)-1:0] s_ims_drop_adi,
  input  wire logic                      ims_hold,        // Bus Master Enable clear
  // PF events
  output logic                           evt_adi_error,
  output logic                           evt_drain_done,
  output logic [15:0]                    last_err_adi,
  output logic [7:0]                     last_err_code,
  output logic [15:0]                    last_drain_adi,
  // DMA engine client interface (names as seen from the DMA engine, mirrored)
  output logic [63:0]                    m_rd_req_addr,
  output logic [15:0]                    m_rd_req_len,
  output logic [RamAddrWidth-1:0]        m_rd_req_ram_addr,
  output logic                           m_rd_req_pasid_valid,
  output logic [19:0]                    m_rd_req_pasid,
  output logic                           m_rd_req_pmr,
  output logic [7:0]                     m_rd_req_tag,
  output logic                           m_rd_req_valid,
  input  wire logic                      m_rd_req_ready,
  input  wire logic [7:0]                s_rd_sts_tag,
  input  wire logic [3:0]                s_rd_sts_error,
  input  wire logic                      s_rd_sts_valid,
  input  wire logic [RamAddrWidth-$clog2(DataWidth/8)-1:0] s_ram_wr_addr,
  input  wire logic [DataWidth/8-1:0]    s_ram_wr_be,
  input  wire logic [DataWidth-1:0]      s_ram_wr_data,
  input  wire logic                      s_ram_wr_valid,
  output logic                           s_ram_wr_ready,
  output logic [63:0]                    m_wr_req_addr,
  output logic [15:0]                    m_wr_req_len,
  output logic [RamAddrWidth-1:0]        m_wr_req_ram_addr,
  output logic                           m_wr_req_imm_en,
  output logic [DataWidth-1:0]           m_wr_req_imm_data,
  output logic                           m_wr_req_pasid_valid,
  output logic [19:0]                    m_wr_req_pasid,
  output logic                           m_wr_req_pmr,
  output logic [7:0]                     m_wr_req_tag,
  output logic                           m_wr_req_valid,
  input  wire logic                      m_wr_req_ready,
  input  wire logic [7:0]                s_wr_sts_tag,
  input  wire logic [3:0]                s_wr_sts_error,
  input  wire logic                      s_wr_sts_valid,
  input  wire logic [RamAddrWidth-$clog2(DataWidth/8)-1:0] s_ram_rd_cmd_addr,
  input  wire logic                      s_ram_rd_cmd_valid,
  output logic                           s_ram_rd_cmd_ready,
  output logic [DataWidth-1:0]           m_ram_rd_resp_data,
  output logic                           m_ram_rd_resp_valid
);
  localparam int unsigned AdiW = $clog2(NumAdi);

  logic            st_init_done, sw_init_done;
  logic [AdiW-1:0] run_adi, op_adi, res_adi;
  logic            run_valid, run_ready;
  logic            op_valid, op_ready, op_irq, rsp_valid, rsp_ok, rsp_full, rsp_big;
  logic [1:0]      op_code;
  logic [7:0]      op_err;
  logic [31:0]     op_bytes, rsp_prfx, rsp_port;
  logic [11:0]     op_group;
  logic [63:0]     rsp_addr, rsp_cpl;
  logic [15:0]     rsp_idx, lk_addr;
  logic            lk_valid, lk_ready, res_valid, res_hit;
  logic            abort_valid;
  logic [AdiW-1:0] abort_adi;

  assign init_done = st_init_done && sw_init_done;

  ep_adi_state #(.NumAdi(NumAdi)) u_state (
    .clk, .rst, .init_done(st_init_done), .cfg_pasid_en, .cfg_pasid_priv_en,
    .s_csr_req(s_adis_req), .s_csr_addr(s_adis_addr), .s_csr_wr(s_adis_wr), .s_csr_wdata(s_adis_wdata),
    .s_csr_biten(s_adis_biten), .s_csr_wr_ack(s_adis_wr_ack), .s_csr_rd_ack(s_adis_rd_ack),
    .s_csr_rdata(s_adis_rdata),
    .s_portal_valid, .s_portal_ready, .s_portal_adi, .s_portal_off, .s_portal_wr, .s_portal_wdata,
    .m_portal_ack, .m_portal_rdata,
    .m_run_adi(run_adi), .m_run_valid(run_valid), .m_run_ready(run_ready),
    .s_op_valid(op_valid), .s_op_ready(op_ready), .s_op_code(op_code), .s_op_adi(op_adi),
    .s_op_err(op_err), .s_op_bytes(op_bytes), .s_op_irq(op_irq), .s_op_group(op_group),
    .m_op_rsp_valid(rsp_valid), .m_op_rsp_ok(rsp_ok), .m_op_rsp_full(rsp_full), .m_op_rsp_big(rsp_big),
    .m_op_rsp_addr(rsp_addr), .m_op_rsp_cpl(rsp_cpl), .m_op_rsp_idx(rsp_idx), .m_op_rsp_prfx(rsp_prfx),
    .m_op_rsp_port(rsp_port),
    .m_ims_addr, .m_ims_data, .m_ims_adi, .m_ims_valid, .m_ims_ready,
    .s_ims_drop_valid, .s_ims_drop_adi, .ims_hold,
    .evt_adi_error, .evt_drain_done, .m_abort_valid(abort_valid), .m_abort_adi(abort_adi),
    .last_err_adi, .last_err_code, .last_drain_adi
  );

  ep_adi_switch #(.NumAdi(NumAdi)) u_switch (
    .clk, .rst, .init_done(sw_init_done),
    .s_csr_req(s_sw_req), .s_csr_addr(s_sw_addr), .s_csr_wr(s_sw_wr), .s_csr_wdata(s_sw_wdata),
    .s_csr_wr_ack(s_sw_wr_ack), .s_csr_rd_ack(s_sw_rd_ack), .s_csr_rdata(s_sw_rdata),
    .s_lookup_valid(lk_valid), .s_lookup_ready(lk_ready), .s_lookup_addr(lk_addr),
    .m_result_valid(res_valid), .m_result_hit(res_hit), .m_result_adi(res_adi)
  );

  ep_adi_engine #(.NumAdi(NumAdi), .DataWidth(DataWidth), .NumCtx(NumCtx)) u_engine (
    .clk, .rst, .enable, .cfg_pasid_en, .s_abort_valid(abort_valid), .s_abort_adi(abort_adi),
    .s_run_adi(run_adi), .s_run_valid(run_valid), .s_run_ready(run_ready),
    .m_op_valid(op_valid), .m_op_ready(op_ready), .m_op_code(op_code), .m_op_adi(op_adi),
    .m_op_err(op_err), .m_op_bytes(op_bytes), .m_op_irq(op_irq), .m_op_group(op_group),
    .s_rsp_valid(rsp_valid), .s_rsp_ok(rsp_ok), .s_rsp_full(rsp_full), .s_rsp_big(rsp_big),
    .s_rsp_addr(rsp_addr), .s_rsp_cpl(rsp_cpl), .s_rsp_idx(rsp_idx), .s_rsp_prfx(rsp_prfx),
    .s_rsp_port(rsp_port),
    .m_lookup_valid(lk_valid), .m_lookup_ready(lk_ready), .m_lookup_addr(lk_addr),
    .s_result_valid(res_valid), .s_result_hit(res_hit), .s_result_adi(res_adi),
    .m_rd_req_addr, .m_rd_req_len, .m_rd_req_ram_addr, .m_rd_req_pasid_valid, .m_rd_req_pasid,
    .m_rd_req_pmr, .m_rd_req_tag, .m_rd_req_valid, .m_rd_req_ready,
    .s_rd_sts_tag, .s_rd_sts_error, .s_rd_sts_valid,
    .s_ram_wr_addr, .s_ram_wr_be, .s_ram_wr_data, .s_ram_wr_valid, .s_ram_wr_ready,
    .m_wr_req_addr, .m_wr_req_len, .m_wr_req_ram_addr, .m_wr_req_imm_en, .m_wr_req_imm_data,
    .m_wr_req_pasid_valid, .m_wr_req_pasid, .m_wr_req_pmr, .m_wr_req_tag, .m_wr_req_valid,
    .m_wr_req_ready, .s_wr_sts_tag, .s_wr_sts_error, .s_wr_sts_valid,
    .s_ram_rd_cmd_addr, .s_ram_rd_cmd_valid, .s_ram_rd_cmd_ready, .m_ram_rd_resp_data,
    .m_ram_rd_resp_valid, .busy
  );
endmodule
`resetall
