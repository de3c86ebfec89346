// SPDX-License-Identifier: Apache-2.0
/// ep_adi_state: per-ADI configuration and dynamic state, held in two RAMs (docs/datasheet.md,
/// rtl/adi/README.md). One FSM serves every access as a read-modify-write of one ADI's words:
/// cycle A reads the configuration word and the dynamic word, cycle B computes, writes back and
/// answers. Sources, highest priority first: the init walk after reset, the BAR0 ADI-page
/// window (PF slow path), the BAR2 portal (doorbells), the engine's ops. At most one op is in
/// the pipe, so there are no read-after-write hazards. The run FIFO holds each ADI that has
/// work at most once (`sched` bit), which gives round-robin service over the ADIs with work.
`resetall
`default_nettype none
module ep_adi_state #(
  parameter int unsigned NumAdi = 4   /// ADIs, power of two, 4 .. 4096
) (
  input  wire logic                      clk,
  input  wire logic                      rst,            // synchronous, active-high
  output logic                           init_done,      // init walk finished
  input  wire logic                      cfg_pasid_en,   // PASID capability enable
  input  wire logic                      cfg_pasid_priv_en,
  // BAR0 ADI pages (etana external block `adis`: request pulse, ack later)
  input  wire logic                      s_csr_req,
  input  wire logic [18:0]               s_csr_addr,
  input  wire logic                      s_csr_wr,
  input  wire logic [31:0]               s_csr_wdata,
  input  wire logic [31:0]               s_csr_biten,
  output logic                           s_csr_wr_ack,
  output logic                           s_csr_rd_ack,
  output logic [31:0]                    s_csr_rdata,
  // BAR2 portal: request (valid/ready) and ack (status, no ready)
  input  wire logic                      s_portal_valid,
  output logic                           s_portal_ready,
  input  wire logic [$clog2(NumAdi)-1:0] s_portal_adi,
  input  wire logic [11:0]               s_portal_off,
  input  wire logic                      s_portal_wr,
  input  wire logic [31:0]               s_portal_wdata,
  output logic                           m_portal_ack,
  output logic [31:0]                    m_portal_rdata,
  // run queue: ADIs with descriptors to fetch (source)
  output logic [$clog2(NumAdi)-1:0]      m_run_adi,
  output logic                           m_run_valid,
  input  wire logic                      m_run_ready,
  // engine ops (sink) and their responses (status, no ready; one per op, in order)
  input  wire logic                      s_op_valid,
  output logic                           s_op_ready,
  input  wire logic [1:0]                s_op_code,      // 0 BEGIN, 1 COMPLETE, 2 RX_ALLOC, 3 RX_DONE
  input  wire logic [$clog2(NumAdi)-1:0] s_op_adi,
  input  wire logic [7:0]                s_op_err,       // COMPLETE: error code (0 = ok)
  input  wire logic [31:0]               s_op_bytes,     // COMPLETE: bytes moved (error: ring
                                                         // index); RX_ALLOC: payload bytes
  input  wire logic                      s_op_irq,       // COMPLETE: interrupt requested
  input  wire logic [11:0]               s_op_group,     // RX_ALLOC: sender's switch group
  output logic                           m_op_rsp_valid,
  output logic                           m_op_rsp_ok,    // BEGIN: work; RX_ALLOC: slot granted
  output logic                           m_op_rsp_full,  // RX_ALLOC: allowed but ring full
  output logic                           m_op_rsp_big,   // RX_ALLOC: allowed, payload > slot - 16
  output logic [63:0]                    m_op_rsp_addr,  // BEGIN: descriptor; RX_ALLOC: slot
  output logic [63:0]                    m_op_rsp_cpl,   // BEGIN: completion record address
  output logic [15:0]                    m_op_rsp_idx,   // BEGIN: ring index; RX_ALLOC: slot index
  output logic [31:0]                    m_op_rsp_prfx,  // PASID prefix of the ADI (0 = none)
  output logic [31:0]                    m_op_rsp_port,  // BEGIN: sw_port register of the ADI
  // interrupt messages for IMS (source)
  output logic [63:0]                    m_ims_addr,
  output logic [31:0]                    m_ims_data,
  output logic [$clog2(NumAdi)-1:0]      m_ims_adi,      // ADI of the message (its source tag)
  output logic                           m_ims_valid,
  input  wire logic                      m_ims_ready,
  // IMS messages the DMA engine dropped (Bus Master Enable cleared after they left the FIFO):
  // status, NO ready; at most 9 at once (all ep_dma_wr can hold, rtl/dma/README.md), buffered in
  // a 16-entry FIFO. The ADI's pending bit is set.
  input  wire logic                      s_ims_drop_valid,
  input  wire logic [$clog2(NumAdi)-1:0] s_ims_drop_adi,
  // 1 while Bus Master Enable is clear: the IMS scan leaves pending messages pending (a pass
  // runs when it falls)
  input  wire logic                      ims_hold,
  // PF events (one-cycle pulses) and last-event registers
  output logic                           evt_adi_error,
  output logic                           evt_drain_done,
  // ABORT of an ADI with a descriptor in flight (one-cycle pulse, no ready): the context that
  // owns that ADI's descriptor stops it at its next request boundary (ep_adi_ctx)
  output logic                           m_abort_valid,
  output logic [$clog2(NumAdi)-1:0]      m_abort_adi,
  output logic [15:0]                    last_err_adi,
  output logic [7:0]                     last_err_code,
  output logic [15:0]                    last_drain_adi
);
  localparam int unsigned AdiW = $clog2(NumAdi);
  if (NumAdi != 2**AdiW || NumAdi < 4 || NumAdi > 4096) begin : gen_chk
    $fatal(1, "ep_adi_state: NumAdi must be a power of two in 4..4096 (%m)");
  end

  // ---- states and error codes (docs/datasheet.md "Error codes")
  localparam logic [1:0] StDisabled = 2'd0, StEnabled = 2'd1, StError = 2'd2, StDraining = 2'd3;
  localparam logic [7:0] ErrDoorbell  = 8'h13;   // doorbell beyond ring size
  localparam logic [7:0] ErrAlign     = 8'h14;   // ring/completion base not aligned
  localparam logic [7:0] ErrNoPasid   = 8'h17;   // enable with PASID on but no valid PASID
  localparam logic [7:0] ErrPasidOff  = 8'h18;   // PASID Enable cleared under an ADI using PASID
  localparam logic [7:0] ErrAborted   = 8'h19;   // COMPLETE of a descriptor stopped by ABORT
  localparam logic [1:0] OpBegin = 2'd0, OpComplete = 2'd1, OpRxAlloc = 2'd2, OpRxDone = 2'd3;

  // ---- configuration word: DW k = BAR0 page offset 4k, k = 0..13 (ring_base_lo .. sw_port)
  localparam int unsigned CfgDw = 14;
  localparam int unsigned CfgW  = 32 * CfgDw;
  // reset image: rx_cfg.log2_slot_bytes = 11 (DW 7), ims_ctrl.mask = 1 (DW 12)
  localparam logic [CfgW-1:0] CfgReset = (CfgW'(32'h0000_0B00) << (32 * 7)) | (CfgW'(1) << (32 * 12));

  typedef struct packed {
    logic        parked;        // stopped by QUIESCE from ENABLED: SENDs to it are dropped
    logic        rx_busy;       // a SEND into this ADI's receive ring is between RX_ALLOC and RX_DONE
    logic        quiesce;       // QUIESCE waiting for the outstanding request (DRAINING or ERROR)
    logic        pasid_on;      // enabled with a PASID prefix: may never run without one
    logic [15:0] err_info;
    logic [31:0] cnt_bytes;
    logic [31:0] cnt_desc;
    logic [15:0] rx_tail;
    logic [15:0] rx_head;
    logic [15:0] tail;
    logic [15:0] head;
    logic [7:0]  outstanding;
    logic        ims_pending;
    logic        sched;
    logic [7:0]  err;
    logic [1:0]  state;
  } dyn_t;
  localparam int unsigned DynW = 168;   // width of dyn_t (Yosys has no $bits of a type)

  // ---- RAMs
  logic                cfg_wr_en, dyn_wr_en, ram_rd_en;
  logic [AdiW-1:0]     wr_adi, rd_adi;
  logic [CfgDw*4-1:0]  cfg_wr_be;
  logic [CfgW-1:0]     cfg_wr_data, cfg_rd;
  dyn_t                dyn_wr_data, dyn_rd;
  logic [DynW-1:0]     dyn_rd_raw;

  ep_ram_sdp #(.Width(CfgW), .Depth(NumAdi), .BeWidth(CfgDw * 4)) u_cfg_ram (
    .clk, .wr_en(cfg_wr_en), .wr_addr(wr_adi), .wr_be(cfg_wr_be), .wr_data(cfg_wr_data),
    .rd_en(ram_rd_en), .rd_addr(rd_adi), .rd_data(cfg_rd)
  );
  ep_ram_sdp #(.Width(DynW), .Depth(NumAdi), .BeWidth(1)) u_dyn_ram (
    .clk, .wr_en(dyn_wr_en), .wr_addr(wr_adi), .wr_be(1'b1), .wr_data(dyn_wr_data),
    .rd_en(ram_rd_en), .rd_addr(rd_adi), .rd_data(dyn_rd_raw)
  );
  assign dyn_rd = dyn_rd_raw;

  // ---- run FIFO (each ADI at most once, so NumAdi entries never overflow)
  logic            run_push;
  logic [AdiW-1:0] run_push_adi;
  logic            run_s_ready;
  ep_fifo #(.Width(AdiW), .Depth(NumAdi)) u_run_fifo (
    .clk, .rst, .s_data(run_push_adi), .s_valid(run_push), .s_ready(run_s_ready),
    .m_data(m_run_adi), .m_valid(m_run_valid), .m_ready(m_run_ready)
  );

  // ---- IMS message FIFO: {adi, addr[63:2], 2'b00, data}
  logic             ims_push, ims_s_ready;
  logic [AdiW+95:0] ims_push_data, ims_m_data;
  ep_fifo #(.Width(AdiW + 96), .Depth(4)) u_ims_fifo (
    .clk, .rst, .s_data(ims_push_data), .s_valid(ims_push), .s_ready(ims_s_ready),
    .m_data(ims_m_data), .m_valid(m_ims_valid), .m_ready(m_ims_ready)
  );
  assign m_ims_addr = {ims_m_data[95:34], 2'b00};
  assign m_ims_data = ims_m_data[31:0];
  assign m_ims_adi  = ims_m_data[96 +: AdiW];

  // ---- dropped IMS messages (from the DMA engine, no back-pressure): each sets its ADI's
  // pending bit through the pipe (highest priority), and a scan pass resends it once Bus Master
  // Enable is back and the entry is unmasked. Depth 16 > the 9 messages ep_dma_wr can hold.
  logic            drop_valid, drop_s_ready;
  logic [AdiW-1:0] drop_adi;

  // Quiesce flush: when a DRAIN/QUIESCE finishes, its ADI's last interrupt message may still be
  // in the IMS FIFO. ims_wait_q counts the FIFO pops still needed until every message pushed up
  // to the latest drain-done has left for the interrupt path (status.flush, with a scan pass
  // in progress).
  logic [2:0] ims_occ_q, ims_wait_q;        // FIFO occupancy (0..4); pops still awaited
  wire        ims_pop = m_ims_valid && m_ims_ready;
  // ---- request capture: the pipe holds one access at a time
  typedef enum logic [2:0] {SrcNone, SrcInit, SrcCsr, SrcPortal, SrcOp, SrcScan, SrcDrop} src_e;
  src_e            a_src_q;                 // stage B (RAM data valid) source; SrcNone = idle
  logic [AdiW-1:0] b_adi_q;
  logic [31:0]     b_wdata_q, b_biten_q;
  logic [4:0]      b_reg_q;                 // CSR: DW index in page; portal: DW index
  logic            b_wr_q, b_oob_q;         // oob: ADI number >= NumAdi (CSR) or offset unused
  logic [1:0]      b_op_q;
  logic [7:0]      b_op_err_q;
  logic [31:0]     b_op_bytes_q;
  logic            b_op_irq_q;
  logic [11:0]     b_op_group_q;

  logic            init_q;
  logic [AdiW-1:0] init_adi_q;
  logic            csr_pend_q;              // CSR request waiting for the pipe
  logic [18:0]     csr_addr_q;
  logic            csr_wr_q;
  logic [31:0]     csr_wdata_q, csr_biten_q;

  assign init_done = !init_q;

  // The run FIFO always has room by construction. An IMS message that finds the IMS FIFO full
  // (Bus Master Enable off holds it) is deferred: the ADI's pending bit is set and the IMS scan
  // walks all ADIs, at the lowest priority, sending each unmasked pending message once there is
  // room. So no access ever waits for the IMS FIFO.
  logic            scan_q, scan_req_q;
  logic            pasid_en_q;              // cfg_pasid_en one cycle ago (falling edge: scan)
  logic            ims_defer;               // stage B deferred an IMS message
  logic            drop_rescan;             // stage B recorded a dropped IMS message as pending
  logic            hold_q;                  // ims_hold one cycle ago (falling edge: scan)
  logic [AdiW-1:0] scan_adi_q;
  wire pipe_free = (a_src_q == SrcNone);
  wire take_drop   = !init_q && pipe_free && drop_valid;
  wire take_csr    = !init_q && pipe_free && !drop_valid && csr_pend_q;
  wire take_portal = !init_q && pipe_free && !drop_valid && !csr_pend_q && s_portal_valid;
  wire take_op     = !init_q && pipe_free && !drop_valid && !csr_pend_q && !s_portal_valid && s_op_valid;
  wire take_scan   = !init_q && pipe_free && !drop_valid && !csr_pend_q && !s_portal_valid && !s_op_valid
                   && scan_q && ims_s_ready;
  ep_fifo #(.Width(AdiW), .Depth(16)) u_drop_fifo (
    .clk, .rst, .s_data(s_ims_drop_adi), .s_valid(s_ims_drop_valid), .s_ready(drop_s_ready),
    .m_data(drop_adi), .m_valid(drop_valid), .m_ready(take_drop)
  );
  assign s_portal_ready = take_portal;
  assign s_op_ready     = take_op;

  wire [AdiW-1:0] csr_adi = csr_addr_q[7 +: AdiW];
  logic           csr_oob;                  // page of an ADI >= NumAdi (none when NumAdi = 4096)
  if (NumAdi < 4096) begin : gen_oob
    assign csr_oob = (csr_addr_q[18:7] >= 12'(NumAdi));
  end else begin : gen_no_oob
    assign csr_oob = 1'b0;
  end

  always_comb begin
    ram_rd_en = 1'b0;
    rd_adi    = '0;
    if (take_drop)        begin ram_rd_en = 1'b1; rd_adi = drop_adi; end
    else if (take_csr)    begin ram_rd_en = 1'b1; rd_adi = csr_adi; end
    else if (take_portal) begin ram_rd_en = 1'b1; rd_adi = s_portal_adi; end
    else if (take_op)     begin ram_rd_en = 1'b1; rd_adi = s_op_adi; end
    else if (take_scan)   begin ram_rd_en = 1'b1; rd_adi = scan_adi_q; end
  end

  always_ff @(posedge clk) begin
    if (s_csr_req) begin
      csr_addr_q  <= s_csr_addr;
      csr_wr_q    <= s_csr_wr;
      csr_wdata_q <= s_csr_wdata;
      csr_biten_q <= s_csr_biten;
    end
    if (take_drop) begin
      b_adi_q <= drop_adi;
    end else if (take_csr) begin
      b_adi_q <= csr_adi;  b_reg_q <= csr_addr_q[6:2];  b_wr_q <= csr_wr_q;
      b_wdata_q <= csr_wdata_q;  b_biten_q <= csr_biten_q;  b_oob_q <= csr_oob;
    end else if (take_portal) begin
      b_adi_q <= s_portal_adi;  b_reg_q <= s_portal_off[6:2];  b_wr_q <= s_portal_wr;
      b_wdata_q <= s_portal_wdata;  b_biten_q <= '1;  b_oob_q <= (s_portal_off[11:7] != 5'd0);
    end else if (take_op) begin
      b_adi_q <= s_op_adi;  b_op_q <= s_op_code;  b_op_err_q <= s_op_err;
      b_op_bytes_q <= s_op_bytes;  b_op_irq_q <= s_op_irq;  b_op_group_q <= s_op_group;
    end else if (take_scan) begin
      b_adi_q <= scan_adi_q;
    end
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      a_src_q    <= SrcNone;
      init_q     <= 1'b1;
      init_adi_q <= '0;
      csr_pend_q <= 1'b0;
      scan_q     <= 1'b0;
      scan_req_q <= 1'b0;
      scan_adi_q <= '0;
      pasid_en_q <= 1'b0;
      hold_q     <= 1'b0;
      ims_occ_q  <= 3'd0;
      ims_wait_q <= 3'd0;
    end else begin
      pasid_en_q <= cfg_pasid_en;
      hold_q     <= ims_hold;
      ims_occ_q  <= ims_occ_q + 3'(ims_push) - 3'(ims_pop);
      if (e_drain) ims_wait_q <= ims_occ_q + 3'(ims_push) - 3'(ims_pop);
      else if (ims_pop && ims_wait_q != 3'd0) ims_wait_q <= ims_wait_q - 3'd1;
      if (init_q) begin
        init_adi_q <= init_adi_q + 1'b1;
        if (init_adi_q == AdiW'(NumAdi - 1)) init_q <= 1'b0;
      end
      if (s_csr_req) csr_pend_q <= 1'b1;
      else if (take_csr) csr_pend_q <= 1'b0;
      if (take_drop)        a_src_q <= SrcDrop;
      else if (take_csr)    a_src_q <= SrcCsr;
      else if (take_portal) a_src_q <= SrcPortal;
      else if (take_op)     a_src_q <= SrcOp;
      else if (take_scan)   a_src_q <= SrcScan;
      else                  a_src_q <= SrcNone;
      // IMS scan passes: one over all ADIs per request; a deferral (or a dropped message recorded
      // as pending) during a pass asks for another, and so does Bus Master Enable coming back
      if (!scan_q && scan_req_q) begin
        scan_q     <= 1'b1;
        scan_req_q <= ims_defer || drop_rescan;
        scan_adi_q <= '0;
      end else begin
        if (ims_defer || drop_rescan || (pasid_en_q && !cfg_pasid_en) || (hold_q && !ims_hold))
          scan_req_q <= 1'b1;
        if (take_scan) begin
          scan_adi_q <= scan_adi_q + 1'b1;
          if (scan_adi_q == AdiW'(NumAdi - 1)) scan_q <= 1'b0;
        end
      end
    end
  end

  // ---- stage B: compute
  // configuration fields of the word read in stage A
  logic [CfgDw-1:0][31:0] c_dw;
  assign c_dw = cfg_rd;
  wire [63:0] c_ring_base = {c_dw[1], c_dw[0]};
  wire [3:0]  c_ring_log2 = c_dw[2][3:0];
  wire [63:0] c_cpl_base  = {c_dw[4], c_dw[3]};
  wire [63:0] c_rx_base   = {c_dw[6], c_dw[5]};
  wire [3:0]  c_rx_log2   = c_dw[7][3:0];
  wire [4:0]  c_slot_log2 = c_dw[7][12:8];
  wire [31:0] c_pasid     = c_dw[8];
  wire [63:0] c_ims_addr  = {c_dw[10], c_dw[9]};
  wire [31:0] c_ims_data  = c_dw[11];
  wire        c_ims_mask  = c_dw[12][0];
  wire [11:0] c_group     = c_dw[13][11:0];
  wire        c_recv_en   = c_dw[13][31];
  wire [15:0] ring_mask   = 16'((17'd1 << c_ring_log2) - 17'd1);
  wire [15:0] rx_mask     = 16'((17'd1 << c_rx_log2) - 17'd1);
  wire [31:0] prfx        = (cfg_pasid_en && c_pasid[31])
                          ? {8'h91, c_pasid[30] & cfg_pasid_priv_en, 1'b0, 2'b00, c_pasid[19:0]} : 32'd0;

  dyn_t        d;             // next dynamic word
  // an ADI enabled with a PASID, still ENABLED (or DRAINING), while PASID Enable is now clear
  wire         pasid_lost = dyn_rd.pasid_on && !cfg_pasid_en
                            && (dyn_rd.state == StEnabled || dyn_rd.state == StDraining)
                            && dyn_rd.err == 8'd0;
  logic [31:0] rdata;
  logic        ack_csr_rd, ack_csr_wr, ack_portal;
  logic        rsp_valid, rsp_ok, rsp_full, rsp_big;
  logic [63:0] rsp_addr;
  logic [15:0] rsp_idx;
  logic        ims_send;      // push an IMS message for b_adi_q
  logic        ims_event;     // an IMS message is due for b_adi_q (sent or deferred)
  logic        e_err, e_drain, e_abort, set_err, q_done;
  logic [7:0]  e_err_code;
  // load: the dynamic registers take restore writes only while DISABLED with nothing outstanding
  // "busy": a descriptor of this ADI in flight or a SEND into its receive ring in flight
  wire         busy_rd  = dyn_rd.outstanding != 8'd0 || dyn_rd.rx_busy;
  wire         loadable = dyn_rd.state == StDisabled && !busy_rd && !dyn_rd.quiesce;
  wire         flush    = (ims_wait_q != 3'd0) || scan_q || scan_req_q || drop_valid;
  wire         rx_park  = dyn_rd.parked || (dyn_rd.state == StDraining && dyn_rd.quiesce);
  function automatic logic [15:0] merge16(input logic [15:0] old, input logic [15:0] wd,
                                          input logic [15:0] be);
    merge16 = (old & ~be) | (wd & be);
  endfunction

  always_comb begin
    d           = dyn_rd;
    cfg_wr_en   = 1'b0;
    cfg_wr_be   = '0;
    cfg_wr_data = '0;
    dyn_wr_en   = 1'b0;
    wr_adi      = b_adi_q;
    rdata       = 32'd0;
    ack_csr_rd  = 1'b0;
    ack_csr_wr  = 1'b0;
    ack_portal  = 1'b0;
    rsp_valid   = 1'b0;
    rsp_ok      = 1'b0;
    rsp_full    = 1'b0;
    rsp_big     = 1'b0;
    rsp_addr    = 64'd0;
    rsp_idx     = 16'd0;
    ims_send    = 1'b0;
    ims_event   = 1'b0;
    ims_defer   = 1'b0;
    drop_rescan = 1'b0;
    run_push    = 1'b0;
    e_err       = 1'b0;
    e_drain     = 1'b0;
    e_abort     = 1'b0;
    e_err_code  = 8'd0;
    set_err     = 1'b0;
    q_done      = 1'b0;

    if (init_q) begin
      // init walk: one ADI per cycle, configuration at reset values, dynamic state zero
      wr_adi      = init_adi_q;
      cfg_wr_en   = 1'b1;
      cfg_wr_be   = '1;
      cfg_wr_data = CfgReset;
      dyn_wr_en   = 1'b1;
      d           = '0;
    end else begin
      unique case (a_src_q)
        SrcCsr: begin
          ack_csr_rd = !b_wr_q;
          ack_csr_wr = b_wr_q;
          if (!b_oob_q) begin
            // ---- read
            if (b_reg_q < 5'(CfgDw)) rdata = c_dw[b_reg_q[3:0]];
            unique case (b_reg_q)
              5'h0C: rdata = {30'd0, dyn_rd.ims_pending, c_ims_mask};
              5'h0F: rdata = {14'd0, flush, busy_rd, dyn_rd.err, 6'd0, dyn_rd.state};
              5'h10: rdata = {16'd0, dyn_rd.head};
              5'h11: rdata = {16'd0, dyn_rd.tail};
              5'h12: rdata = {dyn_rd.rx_tail, dyn_rd.rx_head};
              5'h13: rdata = dyn_rd.cnt_desc;
              5'h14: rdata = dyn_rd.cnt_bytes;
              5'h15: rdata = {16'd0, dyn_rd.err_info};
              default: ;
            endcase
            // ---- write
            if (b_wr_q && b_reg_q < 5'(CfgDw)) begin
              // PASID changes only while DISABLED
              cfg_wr_en = !(b_reg_q == 5'h08 && dyn_rd.state != StDisabled);
              for (int k = 0; k < 4; k++) cfg_wr_be[4 * b_reg_q[3:0] + k] = b_biten_q[8 * k];
              cfg_wr_data = {CfgDw{b_wdata_q}};
              // load: writing pending = 1 sets it (DISABLED, nothing outstanding)
              if (b_reg_q == 5'h0C && b_biten_q[1] && b_wdata_q[1] && loadable) begin
                d.ims_pending = 1'b1;
                dyn_wr_en     = 1'b1;
              end
              // unmask with pending: send now
              if (b_reg_q == 5'h0C && b_biten_q[0] && !b_wdata_q[0] && d.ims_pending) begin
                ims_event     = 1'b1;
                d.ims_pending = 1'b0;
                dyn_wr_en     = 1'b1;
              end
            end
            // load: restore writes of the dynamic registers (byte enables honoured)
            if (b_wr_q && loadable) begin
              unique case (b_reg_q)
                5'h0F: if (b_biten_q[0] && (b_wdata_q[1:0] == StDisabled || b_wdata_q[1:0] == StError)) begin
                  d.state  = b_wdata_q[1:0];
                  d.parked = 1'b0;
                  if (b_biten_q[8]) d.err = b_wdata_q[15:8];
                  dyn_wr_en = 1'b1;
                end
                5'h10: begin d.head = merge16(dyn_rd.head, b_wdata_q[15:0], b_biten_q[15:0]) & ring_mask;  dyn_wr_en = 1'b1; end
                5'h11: begin d.tail = merge16(dyn_rd.tail, b_wdata_q[15:0], b_biten_q[15:0]) & ring_mask;  dyn_wr_en = 1'b1; end
                5'h12: begin
                  d.rx_head = merge16(dyn_rd.rx_head, b_wdata_q[15:0], b_biten_q[15:0]) & rx_mask;
                  d.rx_tail = merge16(dyn_rd.rx_tail, b_wdata_q[31:16], b_biten_q[31:16]) & rx_mask;
                  dyn_wr_en = 1'b1;
                end
                5'h13: begin d.cnt_desc  = (dyn_rd.cnt_desc & ~b_biten_q) | (b_wdata_q & b_biten_q);  dyn_wr_en = 1'b1; end
                5'h14: begin d.cnt_bytes = (dyn_rd.cnt_bytes & ~b_biten_q) | (b_wdata_q & b_biten_q); dyn_wr_en = 1'b1; end
                5'h15: begin d.err_info = merge16(dyn_rd.err_info, b_wdata_q[15:0], b_biten_q[15:0]);  dyn_wr_en = 1'b1; end
                default: ;
              endcase
            end
            if (b_wr_q && b_reg_q == 5'h0E && b_biten_q[0]) begin
              dyn_wr_en = 1'b1;
              unique case (b_wdata_q[2:0])
                3'd1: if (dyn_rd.state == StDisabled) begin         // ENABLE
                  if (c_dw[0][4:0] != 5'd0 || c_dw[3][3:0] != 4'd0) begin
                    d.state = StError;  d.err = ErrAlign;  e_err = 1'b1;  e_err_code = ErrAlign;
                  end else if (cfg_pasid_en && !c_pasid[31]) begin
                    d.state = StError;  d.err = ErrNoPasid;  e_err = 1'b1;  e_err_code = ErrNoPasid;
                  end else begin
                    d.state    = StEnabled;
                    d.err      = 8'd0;
                    d.parked   = 1'b0;
                    d.pasid_on = cfg_pasid_en && c_pasid[31];
                    if (!dyn_rd.sched && dyn_rd.head != dyn_rd.tail) begin
                      d.sched = 1'b1;  run_push = 1'b1;
                    end
                  end
                end
                3'd2, 3'd3: begin                                    // DRAIN / RESET
                  if (busy_rd) begin
                    d.state = StDraining;
                  end else begin
                    if (b_wdata_q[1:0] == 2'd3) begin
                      d = '0;
                      d.sched = dyn_rd.sched;          // a queued run entry finds no work
                    end else begin
                      d.state = StDisabled;
                      e_drain = 1'b1;
                    end
                  end
                end
                3'd4: begin                                          // QUIESCE
                  // stop at a descriptor boundary: no new BEGIN; the descriptor in flight
                  // finishes (COMPLETE ends the quiesce); ERROR and DISABLED keep their state
                  if (busy_rd) begin
                    d.quiesce = 1'b1;
`ifndef MUTANT_QUIESCE_KEEPS_FETCHING  // planted bug (make mutants): a quiescing ADI stays ENABLED
                    if (dyn_rd.state == StEnabled) d.state = StDraining;
`endif
                  end else begin
                    if (dyn_rd.state == StEnabled || dyn_rd.state == StDraining) begin
                      d.state  = StDisabled;
                      d.parked = 1'b1;
                    end
                    e_drain = 1'b1;
                  end
                end
                3'd5: begin                                          // ABORT
                  // DRAIN that also stops the descriptor in flight at its next DMA request
                  // boundary (its record says ABORTED); overrides a QUIESCE in progress. A SEND
                  // of another ADI into this receive ring (rx_busy) is waited for, not cut.
                  d.quiesce = 1'b0;
                  if (busy_rd) begin
                    d.state = StDraining;
                    e_abort = dyn_rd.outstanding != 8'd0;
                  end else begin
                    d.state = StDisabled;
                    e_drain = 1'b1;
                  end
                end
                default: ;
              endcase
            end
          end
        end

        SrcPortal: begin
          ack_portal = 1'b1;
          if (!b_oob_q) begin
            unique case (b_reg_q)
              5'h02: rdata = {15'd0, busy_rd, dyn_rd.err, 6'd0, dyn_rd.state};
              5'h03: rdata = {16'd0, dyn_rd.head};
              5'h04: rdata = {16'd0, dyn_rd.rx_tail};
              default: ;
            endcase
            if (b_wr_q && dyn_rd.state == StEnabled && (b_reg_q == 5'h00 || b_reg_q == 5'h01)) begin
              dyn_wr_en = 1'b1;
              if (b_reg_q == 5'h00) begin                           // doorbell: new tail
                if (b_wdata_q[31:16] != 16'd0 || (b_wdata_q[15:0] & ~ring_mask) != 16'd0) begin
                  set_err = 1'b1;  e_err_code = ErrDoorbell;  d.err_info = b_wdata_q[15:0];
                end else begin
                  d.tail = b_wdata_q[15:0];
                  if (!dyn_rd.sched && b_wdata_q[15:0] != dyn_rd.head) begin
                    d.sched = 1'b1;  run_push = 1'b1;
                  end
                end
              end else begin                                       // receive head
                if (b_wdata_q[31:16] != 16'd0 || (b_wdata_q[15:0] & ~rx_mask) != 16'd0) begin
                  set_err = 1'b1;  e_err_code = ErrDoorbell;  d.err_info = b_wdata_q[15:0];
                end else begin
                  d.rx_head = b_wdata_q[15:0];
                end
              end
            end
          end
        end

        SrcOp: begin
          rsp_valid = 1'b1;
          dyn_wr_en = 1'b1;
          unique case (b_op_q)
            OpBegin: begin
              if (pasid_lost) begin
                // PASID Enable was cleared under this ADI: never a request without its prefix
                d.sched    = 1'b0;
                set_err    = 1'b1;
                e_err_code = ErrPasidOff;
                if (c_ims_mask) d.ims_pending = 1'b1;               // errors always interrupt
                else ims_event = 1'b1;
              end else if (dyn_rd.state == StEnabled && dyn_rd.head != dyn_rd.tail) begin
                rsp_ok        = 1'b1;
                rsp_addr      = c_ring_base + {43'd0, dyn_rd.head, 5'd0};
                rsp_idx       = dyn_rd.head;
`ifdef MUTANT_STALE_HEAD  // planted bug (make mutants): the head pointer is not advanced past a fetched slot
                d.head        = dyn_rd.head;
`else
                d.head        = (dyn_rd.head + 16'd1) & ring_mask;
`endif
                d.outstanding = dyn_rd.outstanding + 8'd1;
                // sched stays set: the ADI is owned by one context until COMPLETE, so each
                // ADI has at most one descriptor in flight (in-order completion, exact halts)
              end else begin
                d.sched = 1'b0;
              end
            end
            OpComplete: begin
              d.outstanding = dyn_rd.outstanding - 8'd1;
              if (b_op_err_q == 8'd0 && dyn_rd.state == StEnabled && dyn_rd.head != dyn_rd.tail) begin
                run_push = 1'b1;                                   // more work: back in the queue
              end else begin
                d.sched = 1'b0;
              end
              if (b_op_err_q == ErrAborted) begin
                d.err_info = b_op_bytes_q[15:0];                   // aborted: not an ADI error
              end else if (b_op_err_q != 8'd0) begin
                set_err    = 1'b1;
                e_err_code = b_op_err_q;
                d.err_info = b_op_bytes_q[15:0];                   // engine passes the ring index
              end else begin
                d.cnt_desc  = dyn_rd.cnt_desc + 32'd1;
                d.cnt_bytes = dyn_rd.cnt_bytes + b_op_bytes_q;
              end
              // an error interrupts, except the abort code and a descriptor cut by PASID Enable
              // whose ADI-level PASID_DISABLED error the scan has already reported (one error,
              // one interrupt, whichever of the scan and this COMPLETE comes first)
              if (b_op_irq_q || (b_op_err_q != 8'd0 && b_op_err_q != ErrAborted
                                 && !(b_op_err_q == ErrPasidOff && dyn_rd.err != 8'd0))) begin
                if (c_ims_mask) d.ims_pending = 1'b1;
                else ims_event = 1'b1;
              end
              if (dyn_rd.outstanding == 8'd1 && !dyn_rd.rx_busy && dyn_rd.quiesce) begin
                q_done = 1'b1;                                      // ends after the error entry
              end else if (dyn_rd.state == StDraining && dyn_rd.outstanding == 8'd1 && !dyn_rd.rx_busy) begin
                d.state = StDisabled;
                e_drain = 1'b1;
              end
            end
            OpRxAlloc: begin
              // the engine serialises SENDs (RX_ALLOC .. RX_DONE), so the slot at rx_tail is free
              // until RX_DONE publishes it
              rsp_addr = c_rx_base + ({48'd0, dyn_rd.rx_tail} << c_slot_log2);
              rsp_idx  = dyn_rd.rx_tail;
              // a receiver being quiesced or parked by QUIESCE drops the packet (as if its ring
              // were full): the sender goes on, the receiver's ring does not move
              if ((dyn_rd.state == StEnabled || rx_park) && c_recv_en && c_group == b_op_group_q) begin
                if ({1'b0, b_op_bytes_q} + 33'd16 > (33'd1 << c_slot_log2)) rsp_big = 1'b1;
                else if (rx_park || ((dyn_rd.rx_tail + 16'd1) & rx_mask) == dyn_rd.rx_head) rsp_full = 1'b1;
                else begin
                  rsp_ok    = 1'b1;
                  d.rx_busy = 1'b1;                                 // a quiesce waits for RX_DONE
                end
              end
            end
            OpRxDone: begin
              // publish the slot; an RX_DONE with an error (the payload write failed) only ends
              // the receive
              d.rx_busy = 1'b0;
              if (b_op_err_q == 8'd0) begin
                d.rx_tail = (dyn_rd.rx_tail + 16'd1) & rx_mask;
                if (c_ims_mask) d.ims_pending = 1'b1;
                else ims_event = 1'b1;
              end
              if (dyn_rd.outstanding == 8'd0 && dyn_rd.quiesce) begin
                q_done = 1'b1;
              end else if (dyn_rd.state == StDraining && dyn_rd.outstanding == 8'd0) begin
                d.state = StDisabled;
                e_drain = 1'b1;
              end
            end
            default: ;
          endcase
        end
        SrcDrop: begin
          // the DMA engine dropped this ADI's message (Bus Master Enable cleared after it left
          // the IMS FIFO): pending again, sent by a scan pass once BME is back and it is unmasked
          // (or by the unmask). Events coalesce as for any pending message.
          d.ims_pending = 1'b1;
          dyn_wr_en     = 1'b1;
          drop_rescan   = 1'b1;
        end
        SrcScan: begin
          if (dyn_rd.ims_pending && !c_ims_mask && !ims_hold) begin
            ims_event     = 1'b1;
            d.ims_pending = 1'b0;
            dyn_wr_en     = 1'b1;
          end
          if (pasid_lost) begin                                 // scan after PASID Enable fell
            set_err    = 1'b1;
            e_err_code = ErrPasidOff;
            dyn_wr_en  = 1'b1;
            if (c_ims_mask) d.ims_pending = 1'b1;
            else ims_event = 1'b1;
          end
        end
        default: ;
      endcase
    end
    // IMS: send, or defer (pending + scan) when the FIFO is full
    if (ims_event) begin
      if (ims_s_ready) begin
        ims_send = 1'b1;
      end else begin
        d.ims_pending = 1'b1;
        ims_defer     = 1'b1;
      end
    end
    // error entry: ENABLED -> ERROR (PF event); DRAINING records the reason and keeps draining;
    // the first reason is kept
    if (set_err) begin
      if (d.state == StEnabled) begin
        d.state = StError;
        e_err   = 1'b1;
      end
      if (d.err == 8'd0) d.err = e_err_code;
    end
    // QUIESCE finished: DISABLED, or ERROR (PF event) if an error was recorded while it waited;
    // an ERROR ADI stays ERROR
    if (q_done) begin
      d.quiesce = 1'b0;
      e_drain   = 1'b1;
      if (d.state == StDraining) begin
        if (d.err != 8'd0) begin
          d.state    = StError;
          e_err      = 1'b1;
          e_err_code = d.err;
        end else begin
          d.state  = StDisabled;
          d.parked = 1'b1;
        end
      end
    end
    dyn_wr_data  = d;
    run_push_adi = b_adi_q;
  end

  assign ims_push      = ims_send;
  assign ims_push_data = {b_adi_q, c_ims_addr[63:2], 2'b00, c_ims_data};

  // ---- outputs (registered)
  always_ff @(posedge clk) begin
    if (rst) begin
      s_csr_rd_ack   <= 1'b0;
      s_csr_wr_ack   <= 1'b0;
      m_portal_ack   <= 1'b0;
      m_op_rsp_valid <= 1'b0;
      evt_adi_error  <= 1'b0;
      evt_drain_done <= 1'b0;
      m_abort_valid  <= 1'b0;
      last_err_adi   <= 16'd0;
      last_err_code  <= 8'd0;
      last_drain_adi <= 16'd0;
    end else begin
      s_csr_rd_ack   <= ack_csr_rd;
      s_csr_wr_ack   <= ack_csr_wr;
      m_portal_ack   <= ack_portal;
      m_op_rsp_valid <= rsp_valid;
      evt_adi_error  <= e_err;
      evt_drain_done <= e_drain;
      m_abort_valid  <= e_abort;
      if (e_err)   begin last_err_adi <= 16'(b_adi_q); last_err_code <= e_err_code; end
      if (e_drain) last_drain_adi <= 16'(b_adi_q);
    end
  end
  always_ff @(posedge clk) begin
    s_csr_rdata        <= rdata;
    m_portal_rdata     <= rdata;
    m_op_rsp_ok        <= rsp_ok;
    m_op_rsp_full      <= rsp_full;
    m_op_rsp_big       <= rsp_big;
    m_op_rsp_addr      <= rsp_addr;
    m_op_rsp_cpl       <= c_cpl_base + {44'd0, dyn_rd.head, 4'd0};
    m_op_rsp_idx       <= rsp_idx;
    m_op_rsp_prfx      <= prfx;
    m_op_rsp_port      <= c_dw[13];
    m_abort_adi        <= b_adi_q;
  end

`ifndef SYNTHESIS
  // ---- invariants, checked in every simulation
  always_ff @(posedge clk) begin
    if (!rst && !init_q && a_src_q == SrcOp) begin
      // a quiescing, disabled or loading ADI never starts a descriptor (so issues no DMA)
      if (b_op_q == OpBegin && rsp_ok && (dyn_rd.state != StEnabled || dyn_rd.quiesce))
        $error("ep_adi_state: BEGIN granted to ADI %0d in state %0d (quiesce %0d) (%m)",
               b_adi_q, dyn_rd.state, dyn_rd.quiesce);
      // every COMPLETE ends a BEGIN: never one for an ADI with nothing outstanding (e.g. loaded)
      if (b_op_q == OpComplete && dyn_rd.outstanding == 8'd0)
        $error("ep_adi_state: COMPLETE for ADI %0d with nothing outstanding (%m)", b_adi_q);
      // one descriptor in flight per ADI
      if (b_op_q == OpBegin && rsp_ok && dyn_rd.outstanding != 8'd0)
        $error("ep_adi_state: second BEGIN for ADI %0d (%m)", b_adi_q);
      // an aborted descriptor is reported only by an ADI that was told to abort (DRAINING)
      if (b_op_q == OpComplete && b_op_err_q == ErrAborted && dyn_rd.state != StDraining)
        $error("ep_adi_state: ABORTED COMPLETE for ADI %0d in state %0d (%m)", b_adi_q, dyn_rd.state);
      // a quiescing or parked receiver never gets a receive slot; one SEND at a time (lock)
      if (b_op_q == OpRxAlloc && rsp_ok && (rx_park || dyn_rd.rx_busy))
        $error("ep_adi_state: RX_ALLOC granted to ADI %0d (parked %0d, rx_busy %0d) (%m)",
               b_adi_q, rx_park, dyn_rd.rx_busy);
    end
    // a restore write (load) lands only in an ADI with nothing outstanding
    if (!rst && !init_q && a_src_q == SrcCsr && b_wr_q && !b_oob_q && dyn_wr_en
        && (b_reg_q >= 5'h10 && b_reg_q <= 5'h15) && (busy_rd || dyn_rd.state != StDisabled))
      $error("ep_adi_state: restore write to ADI %0d with a request outstanding (%m)", b_adi_q);
    // a dropped IMS message is never lost: the drop buffer never overflows, and the pipe
    // records every drop as pending
    if (!rst && s_ims_drop_valid && !drop_s_ready)
      $error("ep_adi_state: dropped IMS message of ADI %0d lost, drop buffer full (%m)", s_ims_drop_adi);
    if (!rst && !init_q && a_src_q == SrcDrop && !(dyn_wr_en && dyn_wr_data.ims_pending && wr_adi == b_adi_q))
      $error("ep_adi_state: dropped IMS message of ADI %0d not recorded as pending (%m)", b_adi_q);
    if (!rst && (ims_wait_q > ims_occ_q || ims_occ_q > 3'd4))
      $error("ep_adi_state: IMS flush count %0d above FIFO occupancy %0d (%m)", ims_wait_q, ims_occ_q);
  end
`endif

  wire unused_ok = &{1'b0, run_s_ready, s_portal_off[1:0], ims_m_data[33:32], csr_addr_q[1:0],
                     c_pasid[29:20], c_ims_addr[1:0]};
endmodule
`resetall
