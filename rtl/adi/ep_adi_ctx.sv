// SPDX-License-Identifier: Apache-2.0
/// ep_adi_ctx: one descriptor context of the ADI engine. It takes an ADI from the run queue,
/// asks ep_adi_state for the next descriptor (BEGIN), fetches it through the DMA engine into its
/// descriptor slot, executes it in chunks of at most 4 KiB through its 8 KiB buffer region,
/// writes the completion record and reports COMPLETE. Every shared resource (run queue, state
/// ops, switch lookup, DMA read, DMA write, fill unit, SEND lock) is a request held until its
/// one-cycle grant; answers are routed back to this context by the engine (docs/datasheet.md).
/// Abort: an ABORT of the ADI (abort_valid/abort_adi from ep_adi_state) or PASID Enable cleared
/// under a descriptor that carries a PASID prefix stops the descriptor at its next DMA request
/// boundary: a request already presented is not withdrawn (valid/ready), statuses of requests
/// issued are still awaited (their data is discarded), then the record says ABORTED (ABORT) or
/// no record is written (PASID Enable clear: it would need the prefix) and COMPLETE reports it.
`resetall
`default_nettype none
module ep_adi_ctx #(
  parameter int unsigned NumAdi       = 4,     /// ADIs
  parameter int unsigned CtxId        = 0,     /// this context's number
  parameter int unsigned DataWidth    = 256,   /// buffer word width
  parameter int unsigned RamAddrWidth = 17,    /// buffer byte address width
  parameter int unsigned DescBase     = 65536  /// byte address of the descriptor slots
) (
  input  wire logic                      clk,
  input  wire logic                      rst,          // synchronous, active-high
  input  wire logic                      cfg_pasid_en, // PASID capability: PASID Enable
  // ABORT of an ADI with a descriptor in flight (status: pulse, no ready)
  input  wire logic                      abort_valid,
  input  wire logic [$clog2(NumAdi)-1:0] abort_adi,
  // run queue
  output logic                           run_req,
  input  wire logic                      run_gnt,
  input  wire logic [$clog2(NumAdi)-1:0] run_adi,
  // ep_adi_state ops
  output logic                           op_req,
  input  wire logic                      op_gnt,
  output logic [1:0]                     op_code,
  output logic [$clog2(NumAdi)-1:0]      op_adi,
  output logic [7:0]                     op_err,
  output logic [31:0]                    op_bytes,
  output logic                           op_irq,
  output logic [11:0]                    op_group,
  input  wire logic                      rsp_valid,    // routed: response to this context's op
  input  wire logic                      rsp_ok,
  input  wire logic                      rsp_full,
  input  wire logic                      rsp_big,
  input  wire logic [63:0]               rsp_addr,
  input  wire logic [63:0]               rsp_cpl,
  input  wire logic [15:0]               rsp_idx,
  input  wire logic [31:0]               rsp_prfx,
  input  wire logic [31:0]               rsp_port,
  // switch lookup
  output logic                           lk_req,
  input  wire logic                      lk_gnt,
  output logic [15:0]                    lk_addr,
  input  wire logic                      lk_valid,     // routed
  input  wire logic                      lk_hit,
  input  wire logic [$clog2(NumAdi)-1:0] lk_adi,
  // DMA read
  output logic                           rd_req,
  input  wire logic                      rd_gnt,
  output logic [63:0]                    rd_addr,
  output logic [15:0]                    rd_len,
  output logic [RamAddrWidth-1:0]        rd_ram_addr,
  output logic [31:0]                    rd_prfx,
  output logic                           rd_sub,       // tag bit: 0 = fetch / first half, 1 = second half
  input  wire logic                      rd_sts_valid, // routed
  input  wire logic                      rd_sts_sub,
  input  wire logic [3:0]                rd_sts_error,
  // DMA write
  output logic                           wr_req,
  input  wire logic                      wr_gnt,
  output logic [63:0]                    wr_addr,
  output logic [15:0]                    wr_len,
  output logic [RamAddrWidth-1:0]        wr_ram_addr,
  output logic                           wr_imm_en,
  output logic [127:0]                   wr_imm_data,
  output logic [31:0]                    wr_prfx,
  input  wire logic                      wr_sts_valid, // routed
  input  wire logic [3:0]                wr_sts_error,
  // fill unit: writes the rotated pattern into this context's buffer region
  output logic                           fill_req,
  input  wire logic                      fill_gnt,
  output logic [63:0]                    fill_pattern,
  output logic [63:0]                    fill_dst,
  output logic [12:0]                    fill_len,     // bytes of the first chunk (<= 4096)
  input  wire logic                      fill_done,    // routed
  // SEND lock (one SEND between RX_ALLOC and RX_DONE at a time)
  output logic                           lock_req,
  input  wire logic                      lock_gnt,
  output logic                           lock_rel,
  // descriptor capture from the DMA read data
  input  wire logic                      desc_we,
  input  wire logic [31:0]               desc_be,
  input  wire logic [255:0]              desc_wdata
);
  localparam int unsigned AdiW  = $clog2(NumAdi);
  localparam int unsigned B     = DataWidth / 8;
  localparam int unsigned LogB  = $clog2(B);
  localparam int unsigned Chunk = 4096;
  localparam logic [RamAddrWidth-1:0] Region   = RamAddrWidth'(CtxId * 8192);
  localparam logic [RamAddrWidth-1:0] DescSlot = RamAddrWidth'(DescBase + CtxId * B);

  localparam logic [1:0] OpBegin = 2'd0, OpComplete = 2'd1, OpRxAlloc = 2'd2, OpRxDone = 2'd3;
  localparam logic [7:0] OpNop = 8'd0, OpFill = 8'd2, OpSend = 8'd3;   // 1 = COPY
  localparam logic [7:0] ErrBadOp = 8'h10, ErrZeroLen = 8'h11, ErrHugeLen = 8'h12,
                         ErrDenied = 8'h15, ErrRxFull = 8'h16, ErrPasidOff = 8'h18,
                         ErrAborted = 8'h19;
  localparam logic [7:0] CplSuccess = 8'd1, CplError = 8'd2, CplDropped = 8'd3, CplAborted = 8'd4;

  typedef enum logic [4:0] {
    SIdle, SBegin, SBeginW, SFetch, SFetchW, SDecode, SLookup, SLookupW, SRd, SRdB, SRdW, SWaitB,
    SFill, SFillW, SWr, SWrW, SLock, SAlloc, SAllocW, SHdr, SHdrW, SRxDone, SRxDoneW, SCpl, SCplW,
    SComplete, SCompleteW
  } st_e;

  st_e             st_q;
  logic [AdiW-1:0] adi_q, dadi_q;
  logic [31:0]     prfx_q, dprfx_q, port_q;
  logic [255:0]    desc_q;
  logic [63:0]     cpl_q, src_q, dst_q, slot_q;
  logic [15:0]     idx_q;
  logic [20:0]     rem_q;
  logic [31:0]     done_q;
  logic [7:0]      err_q;
  logic            drop_q;
  logic            phase_q;                 // COPY chunk: 0 = first half, 1 = second half
  logic            bpend_q, bdone_q;        // second-half read issued / its status received
  logic            adone_q;                 // first-half status received while still in SRdB
  logic [3:0]      aerr_q;
  logic            a_hit;                   // first-half read status: now or held
  logic [3:0]      a_err;
  assign a_hit = adone_q || (rd_sts_valid && !rd_sts_sub);
  assign a_err = adone_q ? aerr_q : rd_sts_error;
  logic [3:0]      berr_q;

  // ---- abort: the context owns its ADI's descriptor from the BEGIN response to COMPLETE (an
  // abort pulse seen in SBegin/SBeginW belongs to an ABORT before this BEGIN, which then finds
  // the ADI not ENABLED). `ab` redirects every transition into a new DMA request.
  logic            abort_q;                 // ABORT command hit this descriptor
  logic            cut_q;                   // PASID Enable cleared under its prefix (sticky)
  wire owned   = (st_q != SIdle) && (st_q != SBegin) && (st_q != SBeginW);
  wire pcut    = owned && prfx_q[31:24] == 8'h91 && !cfg_pasid_en;
  wire cut     = cut_q || pcut;
  wire ab      = abort_q || cut;
  wire rsp_cut = rsp_prfx[31:24] == 8'h91 && !cfg_pasid_en;   // BEGIN answered after PASID fell
  // err_q may take the abort code only where no presented request or op depends on it; an
  // ABORT no longer changes a SEND whose slot header is being written (it completes and is
  // published), PASID Enable clear does (the header write may have been dropped: not published)
  wire cut_safe = owned && !(st_q == SAlloc || st_q == SRxDone || st_q == SCpl || st_q == SCplW
                             || st_q == SComplete || st_q == SCompleteW);
  wire ab_safe  = cut_safe && !(st_q == SHdr || st_q == SHdrW || st_q == SRxDoneW);

  wire [7:0]  d_op    = desc_q[7:0];
  wire [7:0]  d_flags = desc_q[15:8];
  wire [31:0] d_len   = desc_q[63:32];
  wire [63:0] d_src   = desc_q[127:64];
  wire [63:0] d_dst   = desc_q[191:128];
  wire [31:0] d_tag   = desc_q[223:192];
  wire        is_send = (d_op == OpSend);
  wire        is_fill = (d_op == OpFill);
  wire [20:0] chunk   = (rem_q > 21'(Chunk)) ? 21'(Chunk) : rem_q;
  // a COPY chunk over 2 KiB is read as two requests, so its first half is written while the
  // second half is still arriving (same bytes, same errors as 2 KiB steps: model CHUNK)
  wire [20:0] len_a   = (is_send || is_fill || chunk <= 21'(Chunk / 2)) ? chunk : 21'(Chunk / 2);
  wire [20:0] len_b   = chunk - len_a;
  wire [20:0] cur_len = phase_q ? len_b : len_a;
  wire [20:0] cur_off = phase_q ? len_a : 21'd0;
  wire [RamAddrWidth-1:0] src_ram = Region + RamAddrWidth'(src_q[LogB-1:0]);
  wire [RamAddrWidth-1:0] dst_ram = Region + RamAddrWidth'(dst_q[LogB-1:0]);

  // requests are pure functions of the state
  assign run_req  = (st_q == SIdle);
  assign op_req   = (st_q == SBegin) || (st_q == SAlloc) || (st_q == SRxDone) || (st_q == SComplete);
  assign lk_req   = (st_q == SLookup);
  assign rd_req   = (st_q == SFetch) || (st_q == SRd) || (st_q == SRdB);
  assign wr_req   = (st_q == SWr) || (st_q == SHdr) || (st_q == SCpl);
  assign fill_req = (st_q == SFill);
  assign lock_req = (st_q == SLock);

  always_comb begin
    op_code = OpBegin;
    op_adi  = adi_q;
    unique case (st_q)
      SAlloc:    begin op_code = OpRxAlloc;  op_adi = dadi_q; end
      SRxDone:   begin op_code = OpRxDone;   op_adi = dadi_q; end
      SComplete: op_code = OpComplete;
      default: ;
    endcase
  end
  assign op_err   = err_q;
  assign op_bytes = (st_q == SAlloc) ? d_len : (err_q != 8'd0) ? {16'd0, idx_q} : done_q;
  assign op_irq   = d_flags[0];
  assign op_group = port_q[11:0];
  assign lk_addr  = d_dst[15:0];

  assign rd_sub      = (st_q == SRdB);
  assign rd_addr     = (st_q == SRdB) ? src_q + 64'(len_a) : src_q;
  assign rd_len      = (st_q == SFetch) ? 16'd32 : (st_q == SRdB) ? 16'(len_b) : 16'(len_a);
  assign rd_ram_addr = (st_q == SFetch) ? DescSlot : (st_q == SRdB) ? src_ram + RamAddrWidth'(len_a) : src_ram;
  assign rd_prfx     = prfx_q;

  always_comb begin
    wr_addr     = dst_q + 64'(cur_off);
    wr_len      = 16'(cur_len);
    wr_ram_addr = is_fill ? dst_ram : src_ram + RamAddrWidth'(cur_off);
    wr_imm_en   = 1'b0;
    wr_imm_data = 128'd0;
    wr_prfx     = prfx_q;
    unique case (st_q)
      SWr: if (is_send) begin
        wr_addr = slot_q + 64'd16;
        wr_prfx = dprfx_q;
      end
      SHdr: begin                     // receive slot header: length, source address, seq = tag
        wr_addr     = slot_q;
        wr_len      = 16'd16;
        wr_imm_en   = 1'b1;
        wr_imm_data = {32'd0, d_tag, 20'd0, port_q[27:16], d_len};
        wr_prfx     = dprfx_q;
      end
      SCpl: begin                     // completion record
        wr_addr     = cpl_q;
        wr_len      = 16'd16;
        wr_imm_en   = 1'b1;
        wr_imm_data = {24'd0, drop_q ? ErrRxFull : err_q, d_tag, done_q, 16'd0, d_op,
                       drop_q ? CplDropped : (err_q == ErrAborted) ? CplAborted
                                           : (err_q != 8'd0) ? CplError : CplSuccess};
      end
      default: ;
    endcase
  end

  assign fill_pattern = d_src;
  assign fill_dst     = dst_q;
  assign fill_len     = 13'(chunk);
  assign lock_rel     = ((st_q == SAllocW) && rsp_valid && !rsp_ok) || ((st_q == SRxDoneW) && rsp_valid);

  // where a stopped or failed descriptor goes: its completion record, or straight to COMPLETE
  // when PASID Enable is clear (the record would need the PASID prefix)
  st_e end_st;
  assign end_st = cut ? SComplete : SCpl;

  always_ff @(posedge clk) begin
    if (rst) begin
      st_q <= SIdle;
    end else begin
      unique case (st_q)
        SIdle:    if (run_gnt) st_q <= SBegin;
        SBegin:   if (op_gnt) st_q <= SBeginW;
        SBeginW:  if (rsp_valid) st_q <= !rsp_ok ? SIdle : rsp_cut ? SComplete : SFetch;
        SFetch:   if (rd_gnt) st_q <= SFetchW;
        SFetchW:  if (rd_sts_valid) st_q <= ab ? end_st : (rd_sts_error != 4'd0) ? SCpl : SDecode;
        SDecode: begin
          if (ab) st_q <= end_st;
          else if (d_op == OpNop) st_q <= SCpl;
          else if (d_op > OpSend || d_len == 32'd0) st_q <= SCpl;
          else if (is_send) st_q <= (d_len > 32'(Chunk) || !port_q[30]) ? SCpl : SLookup;
          else if (d_len > 32'h0010_0000) st_q <= SCpl;
          else st_q <= is_fill ? SFill : SRd;
        end
        SLookup:  if (lk_gnt) st_q <= SLookupW;
        SLookupW: if (lk_valid) st_q <= (lk_hit && !ab) ? SRd : end_st;
        SRd:      if (rd_gnt) st_q <= (len_b != 21'd0 && !ab) ? SRdB : SRdW;
        SRdB:     if (rd_gnt) st_q <= SRdW;
        SRdW: if (a_hit) begin
          if (a_err != 4'd0 || ab) st_q <= bpend_q ? SWaitB : end_st;
          else st_q <= is_send ? SLock : SWr;
        end
        SWaitB: if (bdone_q || (rd_sts_valid && rd_sts_sub)) begin
          if (err_q != 8'd0 || ab || (bdone_q ? berr_q : rd_sts_error) != 4'd0) st_q <= end_st;
          else st_q <= SWr;                                 // second half
        end
        SFill:    if (fill_gnt) st_q <= SFillW;
        SFillW:   if (fill_done) st_q <= ab ? end_st : SWr;
        SWr:      if (wr_gnt) st_q <= SWrW;
        SWrW: if (wr_sts_valid) begin
          if (!phase_q && len_b != 21'd0) st_q <= SWaitB;   // first half written (or failed)
          else if (wr_sts_error != 4'd0 || ab) st_q <= is_send ? SRxDone : end_st;  // SEND: RX_DONE
          else if (is_send) st_q <= SHdr;                          // ends the receive (err_q set)
          else if (rem_q == chunk) st_q <= SCpl;
          else st_q <= is_fill ? SWr : SRd;
        end
        SLock:    if (lock_gnt) st_q <= SAlloc;
        SAlloc:   if (op_gnt) st_q <= SAllocW;
        SAllocW:  if (rsp_valid) st_q <= rsp_ok ? (ab ? SRxDone : SWr) : end_st;
        SHdr:     if (wr_gnt) st_q <= SHdrW;
        SHdrW:    if (wr_sts_valid) st_q <= SRxDone;
        SRxDone:  if (op_gnt) st_q <= SRxDoneW;
        SRxDoneW: if (rsp_valid) st_q <= end_st;
        SCpl:     if (wr_gnt) st_q <= SCplW;
        SCplW:    if (wr_sts_valid) st_q <= SComplete;
        SComplete: if (op_gnt) st_q <= SCompleteW;
        SCompleteW: if (rsp_valid) st_q <= SIdle;
        default:  st_q <= SIdle;
      endcase
    end
  end

  // datapath
  always_ff @(posedge clk) begin
    if (st_q == SIdle && run_gnt) adi_q <= run_adi;
    // ABORT: the abort code, unless an error was found first (or in this same step)
    if (ab_safe && abort_q && err_q == 8'd0) err_q <= ErrAborted;
    if (st_q == SBeginW && rsp_valid) begin
      src_q  <= rsp_addr;            // descriptor address
      cpl_q  <= rsp_cpl;
      idx_q  <= rsp_idx;
      prfx_q <= rsp_prfx;
      port_q <= rsp_port;
      desc_q <= 256'd0;
      err_q  <= rsp_cut ? ErrPasidOff : 8'd0;
      drop_q <= 1'b0;
      done_q <= 32'd0;
      phase_q <= 1'b0;
    end
    if (desc_we) begin
      for (int i = 0; i < 32; i++) if (desc_be[i]) desc_q[8*i +: 8] <= desc_wdata[8*i +: 8];
    end
    if (st_q == SFetchW && rd_sts_valid && !rd_sts_sub && rd_sts_error != 4'd0) begin
      err_q <= {4'd0, rd_sts_error};
    end
    if (st_q == SRdW && a_hit && a_err != 4'd0) err_q <= {4'd0, a_err};
    if (st_q == SWaitB && (bdone_q || (rd_sts_valid && rd_sts_sub)) && err_q == 8'd0) begin
      if ((bdone_q ? berr_q : rd_sts_error) != 4'd0) err_q <= {4'd0, bdone_q ? berr_q : rd_sts_error};
      else phase_q <= 1'b1;
    end
    if (st_q == SWrW && wr_sts_valid && wr_sts_error != 4'd0) err_q <= {4'd0, wr_sts_error};
    if (st_q == SDecode) begin
      src_q <= d_src;
      dst_q <= d_dst;
      rem_q <= d_len[20:0];
      if (d_op > OpSend) err_q <= ErrBadOp;
      else if (d_op != OpNop && d_len == 32'd0) err_q <= ErrZeroLen;
      else if (is_send && d_len > 32'(Chunk)) err_q <= ErrHugeLen;
      else if (is_send && !port_q[30]) err_q <= ErrDenied;
      else if (!is_send && d_len > 32'h0010_0000) err_q <= ErrHugeLen;
    end
    if (st_q == SLookupW && lk_valid) begin
      dadi_q <= lk_adi;
      if (!lk_hit) err_q <= ErrDenied;
    end
    if (st_q == SAllocW && rsp_valid) begin
      slot_q  <= rsp_addr;
      dprfx_q <= rsp_prfx;
      if (rsp_full) drop_q <= 1'b1;
      else if (rsp_big) err_q <= ErrHugeLen;
      else if (!rsp_ok) err_q <= ErrDenied;
    end
    if (st_q == SWrW && wr_sts_valid && wr_sts_error == 4'd0) begin
      done_q <= done_q + 32'(cur_len);
      if (phase_q || len_b == 21'd0) begin               // chunk finished
        src_q   <= src_q + 64'(chunk);
        dst_q   <= dst_q + 64'(chunk);
        rem_q   <= rem_q - chunk;
        phase_q <= 1'b0;
      end
    end
    // PASID Enable clear wins over every other reason (DMA statuses of the gated requests)
    if (cut_safe && cut) err_q <= ErrPasidOff;
  end

  // abort flags: per descriptor, cleared when the context goes idle
  always_ff @(posedge clk) begin
    if (rst || st_q == SIdle) begin
      abort_q <= 1'b0;
      cut_q   <= 1'b0;
    end else begin
      if (owned && abort_valid && abort_adi == adi_q) abort_q <= 1'b1;
      if (pcut) cut_q <= 1'b1;
    end
  end

  // second-half read bookkeeping (its status may come before the first half's)
  always_ff @(posedge clk) begin
    if (rst) begin
      bpend_q <= 1'b0;
      bdone_q <= 1'b0;
    end else begin
      if (st_q == SRdB && rd_gnt) begin
        bpend_q <= 1'b1;
        bdone_q <= 1'b0;
      end else if (rd_sts_valid && rd_sts_sub) begin
        bpend_q <= 1'b0;
        bdone_q <= (st_q != SWaitB);                     // consumed at once in SWaitB
      end else if (st_q == SWaitB && bdone_q) begin
        bdone_q <= 1'b0;
      end
    end
  end
  always_ff @(posedge clk) if (rd_sts_valid && rd_sts_sub) berr_q <= rd_sts_error;

  // first-half read bookkeeping: its status may come while the second-half read request still
  // waits for the DMA engine to accept it (SRdB, e.g. held back for completion credits)
  always_ff @(posedge clk) begin
    if (rst) begin
      adone_q <= 1'b0;
    end else if (st_q == SRdB && rd_sts_valid && !rd_sts_sub) begin
      adone_q <= 1'b1;
    end else if (st_q == SRdW) begin
      adone_q <= 1'b0;                                   // consumed in SRdW
    end
  end
  always_ff @(posedge clk) if (st_q == SRdB && rd_sts_valid && !rd_sts_sub) aerr_q <= rd_sts_error;

`ifndef SYNTHESIS
  // ---- invariants: after an abort (ABORT or PASID Enable clear) no new DMA request of the
  // descriptor is presented (the record of an ABORT excepted); with PASID Enable clear not even
  // the record
  st_e  prev_st_q;
  logic prev_ab_q, prev_cut_q;
  always_ff @(posedge clk) begin
    if (rst) begin
      prev_st_q  <= SIdle;
      prev_ab_q  <= 1'b0;
      prev_cut_q <= 1'b0;
    end else begin
      prev_st_q  <= st_q;
      prev_ab_q  <= ab;
      prev_cut_q <= cut;
      if (prev_ab_q && st_q != prev_st_q && (st_q == SFetch || st_q == SRd || st_q == SRdB
                                             || st_q == SWr || st_q == SHdr || st_q == SLookup))
        $error("ep_adi_ctx %0d: new DMA request (state %0d) for ADI %0d after its abort (%m)",
               CtxId, st_q, adi_q);
      if (prev_cut_q && st_q == SCpl && prev_st_q != SCpl)
        $error("ep_adi_ctx %0d: completion record for ADI %0d after PASID Enable cleared (%m)",
               CtxId, adi_q);
    end
  end
`endif

  wire unused_ok = &{1'b0, d_flags[7:1], port_q[31], port_q[29:28], port_q[15:12], desc_q[255:224],
                     desc_q[31:16]};
endmodule
`resetall
