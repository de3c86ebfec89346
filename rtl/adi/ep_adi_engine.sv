// SPDX-License-Identifier: Apache-2.0
/// ep_adi_engine: NumCtx descriptor contexts (ep_adi_ctx) sharing the run queue, the state ops,
/// the switch lookup, the DMA engine's read and write channels, a fill unit and the local buffer
/// RAM. Each shared port has a round-robin arbiter over the contexts; answers are routed back
/// by owner register (state ops, lookups: one in flight) or by DMA tag (= context number).
/// Local buffer (byte addresses): context c owns [c*8 KiB, c*8 KiB + 8 KiB) for data; the
/// descriptor slot of context c is at DescBase + c*B and is captured into the context, not
/// stored in the RAM. DMA client interface: rtl/dma/README.md.
`resetall
`default_nettype none
module ep_adi_engine #(
  parameter int unsigned NumAdi    = 4,    /// ADIs
  parameter int unsigned DataWidth = 256,  /// DMA/buffer word width (>= 256)
  parameter int unsigned NumCtx    = 8,    /// descriptor contexts (power of two)
  parameter int unsigned RamAddrWidth = $clog2(NumCtx * 8192) + 1  /// DO NOT OVERWRITE
) (
  input  wire logic                          clk,
  input  wire logic                          rst,          // synchronous, active-high
  input  wire logic                          enable,       // pf_ctrl.enable: start new descriptors
  input  wire logic                          cfg_pasid_en, // PASID Enable: prefixed descriptors stop
  // ABORT of an ADI with a descriptor in flight (status: pulse, no ready; ep_adi_state)
  input  wire logic                          s_abort_valid,
  input  wire logic [$clog2(NumAdi)-1:0]     s_abort_adi,
  // run queue (sink)
  input  wire logic [$clog2(NumAdi)-1:0]     s_run_adi,
  input  wire logic                          s_run_valid,
  output logic                               s_run_ready,
  // state ops (source) and responses (status)
  output logic                               m_op_valid,
  input  wire logic                          m_op_ready,
  output logic [1:0]                         m_op_code,
  output logic [$clog2(NumAdi)-1:0]          m_op_adi,
  output logic [7:0]                         m_op_err,
  output logic [31:0]                        m_op_bytes,
  output logic                               m_op_irq,
  output logic [11:0]                        m_op_group,
  input  wire logic                          s_rsp_valid,
  input  wire logic                          s_rsp_ok,
  input  wire logic                          s_rsp_full,
  input  wire logic                          s_rsp_big,
  input  wire logic [63:0]                   s_rsp_addr,
  input  wire logic [63:0]                   s_rsp_cpl,
  input  wire logic [15:0]                   s_rsp_idx,
  input  wire logic [31:0]                   s_rsp_prfx,
  input  wire logic [31:0]                   s_rsp_port,
  // switch lookup (source) and result (status)
  output logic                               m_lookup_valid,
  input  wire logic                          m_lookup_ready,
  output logic [15:0]                        m_lookup_addr,
  input  wire logic                          s_result_valid,
  input  wire logic                          s_result_hit,
  input  wire logic [$clog2(NumAdi)-1:0]     s_result_adi,
  // DMA read requests (source) and statuses (status)
  output logic [63:0]                        m_rd_req_addr,
  output logic [15:0]                        m_rd_req_len,
  output logic [RamAddrWidth-1:0]            m_rd_req_ram_addr,
  output logic                               m_rd_req_pasid_valid,
  output logic [19:0]                        m_rd_req_pasid,
  output logic                               m_rd_req_pmr,
  output logic [7:0]                         m_rd_req_tag,
  output logic                               m_rd_req_valid,
  input  wire logic                          m_rd_req_ready,
  input  wire logic [7:0]                    s_rd_sts_tag,
  input  wire logic [3:0]                    s_rd_sts_error,
  input  wire logic                          s_rd_sts_valid,
  // local buffer write port from the DMA read channel (sink)
  input  wire logic [RamAddrWidth-$clog2(DataWidth/8)-1:0] s_ram_wr_addr,
  input  wire logic [DataWidth/8-1:0]        s_ram_wr_be,
  input  wire logic [DataWidth-1:0]          s_ram_wr_data,
  input  wire logic                          s_ram_wr_valid,
  output logic                               s_ram_wr_ready,
  // DMA write requests (source) and statuses (status)
  output logic [63:0]                        m_wr_req_addr,
  output logic [15:0]                        m_wr_req_len,
  output logic [RamAddrWidth-1:0]            m_wr_req_ram_addr,
  output logic                               m_wr_req_imm_en,
  output logic [DataWidth-1:0]               m_wr_req_imm_data,
  output logic                               m_wr_req_pasid_valid,
  output logic [19:0]                        m_wr_req_pasid,
  output logic                               m_wr_req_pmr,
  output logic [7:0]                         m_wr_req_tag,
  output logic                               m_wr_req_valid,
  input  wire logic                          m_wr_req_ready,
  input  wire logic [7:0]                    s_wr_sts_tag,
  input  wire logic [3:0]                    s_wr_sts_error,
  input  wire logic                          s_wr_sts_valid,
  // local buffer read port for the DMA write channel: command (sink) + response (source)
  input  wire logic [RamAddrWidth-$clog2(DataWidth/8)-1:0] s_ram_rd_cmd_addr,
  input  wire logic                          s_ram_rd_cmd_valid,
  output logic                               s_ram_rd_cmd_ready,
  output logic [DataWidth-1:0]               m_ram_rd_resp_data,
  output logic                               m_ram_rd_resp_valid,
  output logic                               busy          // a context is working
);
  localparam int unsigned AdiW  = $clog2(NumAdi);
  localparam int unsigned CtxW  = $clog2(NumCtx);
  localparam int unsigned B     = DataWidth / 8;
  localparam int unsigned LogB  = $clog2(B);
  localparam int unsigned WordW = RamAddrWidth - LogB;
  localparam int unsigned DescBase = NumCtx * 8192;
  localparam int unsigned DataWords = DescBase / B;
  if (DataWidth < 256 || NumCtx < 2 || NumCtx != 2**CtxW || NumCtx > 64) begin : gen_chk
    $fatal(1, "ep_adi_engine: needs DataWidth >= 256 and NumCtx a power of two in 2..64 (%m)");
  end

  // ---------------------------------------------------------------- contexts
  logic [NumCtx-1:0] run_req, run_gnt, op_req, op_gnt, lk_req, lk_gnt, rd_req, rd_gnt;
  logic [NumCtx-1:0] wr_req, wr_gnt, fill_req, fill_gnt, lock_req, lock_gnt, lock_rel;
  logic [NumCtx-1:0] rsp_v, lk_v, rd_sts_v, wr_sts_v, fill_done_v, desc_we, idle;
  logic [NumCtx-1:0][1:0]   c_op_code;
  logic [NumCtx-1:0][AdiW-1:0] c_op_adi;
  logic [NumCtx-1:0][7:0]   c_op_err;
  logic [NumCtx-1:0][31:0]  c_op_bytes;
  logic [NumCtx-1:0]        c_op_irq;
  logic [NumCtx-1:0][11:0]  c_op_group;
  logic [NumCtx-1:0][15:0]  c_lk_addr;
  logic [NumCtx-1:0][63:0]  c_rd_addr, c_wr_addr, c_fill_pattern, c_fill_dst;
  logic [NumCtx-1:0][15:0]  c_rd_len, c_wr_len;
  logic [NumCtx-1:0][RamAddrWidth-1:0] c_rd_ram, c_wr_ram;
  logic [NumCtx-1:0][31:0]  c_rd_prfx, c_wr_prfx;
  logic [NumCtx-1:0]        c_wr_imm_en, c_rd_sub;
  logic [NumCtx-1:0][127:0] c_wr_imm;
  logic [NumCtx-1:0][12:0]  c_fill_len;

  for (genvar c = 0; c < NumCtx; c++) begin : gen_ctx
    ep_adi_ctx #(
      .NumAdi(NumAdi), .CtxId(c), .DataWidth(DataWidth), .RamAddrWidth(RamAddrWidth),
      .DescBase(DescBase)
    ) u_ctx (
      .clk, .rst, .cfg_pasid_en, .abort_valid(s_abort_valid), .abort_adi(s_abort_adi),
      .run_req(run_req[c]), .run_gnt(run_gnt[c]), .run_adi(s_run_adi),
      .op_req(op_req[c]), .op_gnt(op_gnt[c]), .op_code(c_op_code[c]), .op_adi(c_op_adi[c]),
      .op_err(c_op_err[c]), .op_bytes(c_op_bytes[c]), .op_irq(c_op_irq[c]), .op_group(c_op_group[c]),
      .rsp_valid(rsp_v[c]), .rsp_ok(s_rsp_ok), .rsp_full(s_rsp_full), .rsp_big(s_rsp_big),
      .rsp_addr(s_rsp_addr), .rsp_cpl(s_rsp_cpl), .rsp_idx(s_rsp_idx), .rsp_prfx(s_rsp_prfx),
      .rsp_port(s_rsp_port),
      .lk_req(lk_req[c]), .lk_gnt(lk_gnt[c]), .lk_addr(c_lk_addr[c]), .lk_valid(lk_v[c]),
      .lk_hit(s_result_hit), .lk_adi(s_result_adi),
      .rd_req(rd_req[c]), .rd_gnt(rd_gnt[c]), .rd_addr(c_rd_addr[c]), .rd_len(c_rd_len[c]),
      .rd_ram_addr(c_rd_ram[c]), .rd_prfx(c_rd_prfx[c]), .rd_sub(c_rd_sub[c]), .rd_sts_valid(rd_sts_v[c]),
      .rd_sts_sub(s_rd_sts_tag[CtxW]), .rd_sts_error(s_rd_sts_error),
      .wr_req(wr_req[c]), .wr_gnt(wr_gnt[c]), .wr_addr(c_wr_addr[c]), .wr_len(c_wr_len[c]),
      .wr_ram_addr(c_wr_ram[c]), .wr_imm_en(c_wr_imm_en[c]), .wr_imm_data(c_wr_imm[c]),
      .wr_prfx(c_wr_prfx[c]), .wr_sts_valid(wr_sts_v[c]), .wr_sts_error(s_wr_sts_error),
      .fill_req(fill_req[c]), .fill_gnt(fill_gnt[c]), .fill_pattern(c_fill_pattern[c]),
      .fill_dst(c_fill_dst[c]), .fill_len(c_fill_len[c]), .fill_done(fill_done_v[c]),
      .lock_req(lock_req[c]), .lock_gnt(lock_gnt[c]), .lock_rel(lock_rel[c]),
      .desc_we(desc_we[c]), .desc_be(s_ram_wr_be[31:0]), .desc_wdata(s_ram_wr_data[255:0])
    );
    assign idle[c] = run_req[c];
  end
  assign busy = (idle != '1);

  logic [6:0][NumCtx-1:0] arb_grant;       // one-hot grants (the index is used instead)

  // ---------------------------------------------------------------- run queue
  logic [CtxW-1:0] run_idx;
  logic            run_any;
  ep_rr_arb #(.NumReq(NumCtx)) u_run_arb (
    .clk, .rst, .req(run_req), .ack(s_run_valid && s_run_ready), .grant(arb_grant[0]), .grant_idx(run_idx),
    .grant_valid(run_any)
  );
  assign s_run_ready = run_any && enable;
  always_comb begin
    run_gnt = '0;
    run_gnt[run_idx] = s_run_valid && s_run_ready;
  end

  // ---------------------------------------------------------------- state ops
  logic [CtxW-1:0] op_idx, op_owner_q;
  logic            op_any;
  ep_rr_arb #(.NumReq(NumCtx)) u_op_arb (
    .clk, .rst, .req(op_req), .ack(m_op_valid && m_op_ready), .grant(arb_grant[1]), .grant_idx(op_idx),
    .grant_valid(op_any)
  );
  assign m_op_valid = op_any;
  assign m_op_code  = c_op_code[op_idx];
  assign m_op_adi   = c_op_adi[op_idx];
  assign m_op_err   = c_op_err[op_idx];
  assign m_op_bytes = c_op_bytes[op_idx];
  assign m_op_irq   = c_op_irq[op_idx];
  assign m_op_group = c_op_group[op_idx];
  always_comb begin
    op_gnt = '0;
    op_gnt[op_idx] = m_op_valid && m_op_ready;
    rsp_v = '0;
    rsp_v[op_owner_q] = s_rsp_valid;
  end
  always_ff @(posedge clk) if (m_op_valid && m_op_ready) op_owner_q <= op_idx;

  // ---------------------------------------------------------------- switch lookups
  logic [CtxW-1:0] lk_idx, lk_owner_q;
  logic            lk_any;
  ep_rr_arb #(.NumReq(NumCtx)) u_lk_arb (
    .clk, .rst, .req(lk_req), .ack(m_lookup_valid && m_lookup_ready), .grant(arb_grant[2]), .grant_idx(lk_idx),
    .grant_valid(lk_any)
  );
  assign m_lookup_valid = lk_any;
  assign m_lookup_addr  = c_lk_addr[lk_idx];
  always_comb begin
    lk_gnt = '0;
    lk_gnt[lk_idx] = m_lookup_valid && m_lookup_ready;
    lk_v = '0;
    lk_v[lk_owner_q] = s_result_valid;
  end
  always_ff @(posedge clk) if (m_lookup_valid && m_lookup_ready) lk_owner_q <= lk_idx;

  // ---------------------------------------------------------------- DMA reads
  logic [CtxW-1:0] rd_idx;
  logic            rd_any;
  ep_rr_arb #(.NumReq(NumCtx)) u_rd_arb (
    .clk, .rst, .req(rd_req), .ack(m_rd_req_valid && m_rd_req_ready), .grant(arb_grant[3]), .grant_idx(rd_idx),
    .grant_valid(rd_any)
  );
  assign m_rd_req_valid       = rd_any;
  assign m_rd_req_addr        = c_rd_addr[rd_idx];
  assign m_rd_req_len         = c_rd_len[rd_idx];
  assign m_rd_req_ram_addr    = c_rd_ram[rd_idx];
  assign m_rd_req_pasid_valid = (c_rd_prfx[rd_idx][31:24] == 8'h91);
  assign m_rd_req_pasid       = c_rd_prfx[rd_idx][19:0];
  assign m_rd_req_pmr         = c_rd_prfx[rd_idx][23];
  assign m_rd_req_tag         = 8'({c_rd_sub[rd_idx], rd_idx});   // {half, context}
  always_comb begin
    rd_gnt = '0;
    rd_gnt[rd_idx] = m_rd_req_valid && m_rd_req_ready;
    rd_sts_v = '0;
    rd_sts_v[s_rd_sts_tag[CtxW-1:0]] = s_rd_sts_valid;
  end

  // ---------------------------------------------------------------- DMA writes
  logic [CtxW-1:0] wr_idx;
  logic            wr_any;
  ep_rr_arb #(.NumReq(NumCtx)) u_wr_arb (
    .clk, .rst, .req(wr_req), .ack(m_wr_req_valid && m_wr_req_ready), .grant(arb_grant[4]), .grant_idx(wr_idx),
    .grant_valid(wr_any)
  );
  assign m_wr_req_valid       = wr_any;
  assign m_wr_req_addr        = c_wr_addr[wr_idx];
  assign m_wr_req_len         = c_wr_len[wr_idx];
  assign m_wr_req_ram_addr    = c_wr_ram[wr_idx];
  assign m_wr_req_imm_en      = c_wr_imm_en[wr_idx];
  assign m_wr_req_imm_data    = {{(DataWidth - 128){1'b0}}, c_wr_imm[wr_idx]};
  assign m_wr_req_pasid_valid = (c_wr_prfx[wr_idx][31:24] == 8'h91);
`ifdef MUTANT_WR_PASID_FROM_RD_CTX  // planted bug (make mutants): write carries the read context's PASID
  assign m_wr_req_pasid       = c_wr_prfx[rd_idx][19:0];
`else
  assign m_wr_req_pasid       = c_wr_prfx[wr_idx][19:0];
`endif
  assign m_wr_req_pmr         = c_wr_prfx[wr_idx][23];
  assign m_wr_req_tag         = 8'(wr_idx);
  always_comb begin
    wr_gnt = '0;
    wr_gnt[wr_idx] = m_wr_req_valid && m_wr_req_ready;
    wr_sts_v = '0;
    wr_sts_v[s_wr_sts_tag[CtxW-1:0]] = s_wr_sts_valid;
  end

  // ---------------------------------------------------------------- SEND lock
  logic [CtxW-1:0] lock_idx;
  logic            lock_any, locked_q;
  ep_rr_arb #(.NumReq(NumCtx)) u_lock_arb (
    .clk, .rst, .req(lock_req), .ack(lock_any && !locked_q), .grant(arb_grant[5]), .grant_idx(lock_idx),
    .grant_valid(lock_any)
  );
  always_comb begin
    lock_gnt = '0;
    lock_gnt[lock_idx] = lock_any && !locked_q;
  end
  always_ff @(posedge clk) begin
    if (rst) locked_q <= 1'b0;
    else if (lock_any && !locked_q) locked_q <= 1'b1;
    else if (lock_rel != '0) locked_q <= 1'b0;
  end

  // ---------------------------------------------------------------- fill unit + buffer RAM
  logic [CtxW-1:0]  fill_idx, fill_owner_q;
  logic             fill_any, fill_active_q, fill_done_q;
  logic [WordW-1:0] fill_addr_q;
  logic [8:0]       fill_left_q;           // words still to write (<= 4096/B + 1)
  logic [63:0]      fill_word_q;
  ep_rr_arb #(.NumReq(NumCtx)) u_fill_arb (
    .clk, .rst, .req(fill_req), .ack(fill_any && !fill_active_q), .grant(arb_grant[6]), .grant_idx(fill_idx),
    .grant_valid(fill_any)
  );
  wire [63:0] f_pat = c_fill_pattern[fill_idx];
  wire [63:0] f_dst = c_fill_dst[fill_idx];
  wire [5:0]  f_rot = {f_dst[2:0], 3'b000};
  wire [63:0] f_word = (f_rot == 6'd0) ? f_pat : ((f_pat << f_rot) | (f_pat >> (7'd64 - {1'b0, f_rot})));
  wire [13:0] f_end = 14'(f_dst[LogB-1:0]) + {1'b0, c_fill_len[fill_idx]} + 14'(B - 1);

  always_comb begin
    fill_gnt = '0;
    fill_gnt[fill_idx] = fill_any && !fill_active_q;
    fill_done_v = '0;
    fill_done_v[fill_owner_q] = fill_done_q;
  end
  always_ff @(posedge clk) begin
    if (rst) begin
      fill_active_q <= 1'b0;
      fill_done_q   <= 1'b0;
    end else begin
      fill_done_q <= 1'b0;
      if (fill_any && !fill_active_q) begin
        fill_active_q <= 1'b1;
      end else if (fill_active_q && fill_left_q == 9'd1) begin
        fill_active_q <= 1'b0;
        fill_done_q   <= 1'b1;
      end
    end
  end
  always_ff @(posedge clk) begin
    if (fill_any && !fill_active_q) begin
      fill_owner_q <= fill_idx;
      fill_addr_q  <= WordW'(fill_idx) << (13 - LogB);
      fill_left_q  <= 9'(f_end >> LogB);
      fill_word_q  <= f_word;
    end else if (fill_active_q) begin
      fill_addr_q <= fill_addr_q + 1'b1;
      fill_left_q <= fill_left_q - 9'd1;
    end
  end

  // write port: fill unit or DMA read data; descriptor slots go to the contexts
  wire ram_wr_desc = s_ram_wr_addr >= WordW'(DataWords);
  assign s_ram_wr_ready = !fill_active_q;
  always_comb begin
    desc_we = '0;
    desc_we[s_ram_wr_addr[CtxW-1:0]] = s_ram_wr_valid && s_ram_wr_ready && ram_wr_desc;
  end
  logic             ram_we;
  logic [WordW-1:0] ram_wa;
  logic [B-1:0]     ram_be;
  logic [DataWidth-1:0] ram_wd;
  always_comb begin
    if (fill_active_q) begin
      ram_we = 1'b1;  ram_wa = fill_addr_q;  ram_be = '1;  ram_wd = {(B / 8){fill_word_q}};
    end else begin
      ram_we = s_ram_wr_valid && !ram_wr_desc;  ram_wa = s_ram_wr_addr;
      ram_be = s_ram_wr_be;  ram_wd = s_ram_wr_data;
    end
  end

  logic [DataWidth-1:0] ram_rd;
  ep_ram_sdp #(.Width(DataWidth), .Depth(DataWords), .BeWidth(B)) u_buf (
    .clk, .wr_en(ram_we), .wr_addr(ram_wa[WordW-2:0]), .wr_be(ram_be), .wr_data(ram_wd),
    .rd_en(s_ram_rd_cmd_valid), .rd_addr(s_ram_rd_cmd_addr[WordW-2:0]), .rd_data(ram_rd)
  );
  assign s_ram_rd_cmd_ready = 1'b1;
  assign m_ram_rd_resp_data = ram_rd;
  always_ff @(posedge clk) begin
    if (rst) m_ram_rd_resp_valid <= 1'b0;
    else     m_ram_rd_resp_valid <= s_ram_rd_cmd_valid;
  end

  wire unused_ok = &{1'b0, s_rd_sts_tag[7:CtxW+1], s_wr_sts_tag[7:CtxW], s_ram_rd_cmd_addr[WordW-1],
                     f_end[LogB-1:0], arb_grant, f_dst[63:3], ram_wa[WordW-1]};
endmodule
`resetall
