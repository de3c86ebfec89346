// SPDX-License-Identifier: Apache-2.0
/// ep_dma_wr: DMA write engine. Turns write requests (data from the client's local buffer RAM or
/// immediate data) and interrupt message requests into MWr TLPs on tx_wr_req_tlp, in acceptance
/// order: split at MPS-aligned boundaries (never across 4 KiB), 3-DW/4-DW header, byte-exact
/// first/last BE, PASID prefix per request. Docs: rtl/dma/README.md.
/// Pipeline: request FIFO -> planner (one TLP header per clock) -> plan FIFO;
///           planner -> job FIFO -> RAM word reader (credit-based) -> word FIFO;
///           plan FIFO + word FIFO -> aligner (two-word window, byte rotate) -> output stage (BME gate,
///           register slice, status) -> link.
`resetall
`default_nettype none
module ep_dma_wr #(
  parameter int unsigned DataWidth    = 256,  /// TLP data / RAM word width (multiple of 64)
  parameter int unsigned RamAddrWidth = 16,   /// local buffer byte address width
  parameter int unsigned LenWidth     = 16,   /// request length width (bytes)
  parameter int unsigned TagWidth     = 8,    /// client tag width
  parameter int unsigned WordFifoDepth = 8,   /// RAM read credits (covers the RAM read latency)
  parameter int unsigned MsiTagWidth  = 1     /// interrupt message source tag width
) (
  input  wire logic                       clk,
  input  wire logic                       rst,
  /// config (quasi-static)
  input  wire logic [15:0]                cfg_requester_id,
  input  wire logic                       cfg_bus_master_en,
  input  wire logic [2:0]                 cfg_max_payload,
  input  wire logic                       cfg_pasid_en,
  input  wire logic                       cfg_pasid_priv_en,
  /// write request (sink)
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
  /// write status (NO ready)
  output logic [TagWidth-1:0]             m_wr_sts_tag,
  output logic [3:0]                      m_wr_sts_error,
  output logic                            m_wr_sts_valid,
  /// interrupt message request (sink), no status
  input  wire logic [63:0]                s_msi_req_addr,
  input  wire logic [31:0]                s_msi_req_data,
  input  wire logic [MsiTagWidth-1:0]     s_msi_req_tag,    // source of the message (client's)
  input  wire logic                       s_msi_req_valid,
  output logic                            s_msi_req_ready,
  /// message drop (status, NO ready): pulse per message dropped because BME = 0, with its tag
  output logic                            m_stat_msi_drop,
  output logic [MsiTagWidth-1:0]          m_stat_msi_drop_tag,
  /// local buffer read port: command (source), response (in order, NO ready)
  output logic [RamAddrWidth-$clog2(DataWidth/8)-1:0] m_ram_rd_cmd_addr,
  output logic                            m_ram_rd_cmd_valid,
  input  wire logic                       m_ram_rd_cmd_ready,
  input  wire logic [DataWidth-1:0]       s_ram_rd_resp_data,
  input  wire logic                       s_ram_rd_resp_valid,
  /// link: DMA writes
  output logic [127:0]                    tx_wr_req_tlp_hdr,
  output logic [DataWidth-1:0]            tx_wr_req_tlp_data,
  output logic [DataWidth/32-1:0]         tx_wr_req_tlp_strb,
  output logic [31:0]                     tx_wr_req_tlp_prfx,
  output logic                            tx_wr_req_tlp_valid,
  output logic                            tx_wr_req_tlp_sop,
  output logic                            tx_wr_req_tlp_eop,
  input  wire logic                       tx_wr_req_tlp_ready,
  output logic                            m_wr_busy
);
  localparam int unsigned B   = DataWidth / 8;       // bytes per word
  localparam int unsigned BW  = $clog2(B);           // byte-in-word bits
  localparam int unsigned S   = DataWidth / 32;      // DW lanes
  localparam int unsigned WAW = RamAddrWidth - BW;   // word address bits
  localparam int unsigned CntW = LenWidth + 1;       // word / DW counts of a request

  if (DataWidth % 64 != 0 || DataWidth < 64) begin : gen_chk_dw
    $fatal(1, "ep_dma_wr: DataWidth must be a multiple of 64 (%m)");
  end
  if (RamAddrWidth <= BW) begin : gen_chk_ram
    $fatal(1, "ep_dma_wr: RamAddrWidth too small (%m)");
  end

  // ============================ request FIFO (writes + messages, one order) ================
  typedef struct packed {
    logic [63:0]             addr;
    logic [LenWidth-1:0]     len;
    logic [RamAddrWidth-1:0] ram_addr;
    logic                    imm;
    logic [DataWidth-1:0]    imm_data;
    logic                    pasid_valid;
    logic [19:0]             pasid;
    logic                    pmr;
    logic [TagWidth-1:0]     tag;
    logic                    msi;      // interrupt message: no prefix, no status
    logic [MsiTagWidth-1:0]  mtag;     // message source tag (reported if it is dropped)
  } req_t;

  req_t req_in, req_head;
  logic req_in_valid, req_in_ready, req_head_valid, req_head_ready;
  logic [1:0] arb_grant;
  logic       arb_idx, arb_valid;

  ep_rr_arb #(.NumReq(2)) u_arb (
    .clk, .rst,
    .req         ({s_msi_req_valid, s_wr_req_valid}),
    .ack         (req_in_valid && req_in_ready),
    .grant       (arb_grant),
    .grant_idx   (arb_idx),
    .grant_valid (arb_valid)
  );

  always_comb begin
    req_in = '0;
    if (arb_idx) begin
      req_in.addr     = {s_msi_req_addr[63:2], 2'b00};
      req_in.len      = LenWidth'(4);
      req_in.imm      = 1'b1;
      req_in.imm_data = DataWidth'(s_msi_req_data);
      req_in.msi      = 1'b1;
      req_in.mtag     = s_msi_req_tag;
    end else begin
      req_in.addr        = s_wr_req_addr;
      req_in.len         = s_wr_req_len;
      req_in.ram_addr    = s_wr_req_ram_addr;
      req_in.imm         = s_wr_req_imm_en;
      req_in.imm_data    = s_wr_req_imm_data;
      req_in.pasid_valid = s_wr_req_pasid_valid;
      req_in.pasid       = s_wr_req_pasid;
      req_in.pmr         = s_wr_req_pmr;
      req_in.tag         = s_wr_req_tag;
    end
  end
  assign req_in_valid    = arb_valid;
  assign s_wr_req_ready  = req_in_ready && arb_grant[0];
  assign s_msi_req_ready = req_in_ready && arb_grant[1];

  ep_fifo #(.Width($bits(req_in)), .Depth(4)) u_req_fifo (
    .clk, .rst,
    .s_data (req_in),   .s_valid (req_in_valid),   .s_ready (req_in_ready),
    .m_data (req_head), .m_valid (req_head_valid), .m_ready (req_head_ready)
  );

  // ============================ planner: one TLP per clock ==================================
  typedef struct packed {
    logic [127:0]     hdr;
    logic [31:0]      prfx;
    logic [10:0]      dw;        // payload DWs of this TLP (1..1024)
    logic             first;     // first TLP of the request: load p_off
    logic             last;      // last TLP of the request
    logic [BW-1:0]    p_off;     // byte offset of the stream start in its first RAM word
    logic             skip;      // no TLP: status only (len 0 or BME clear)
    logic [3:0]       err;
    logic [TagWidth-1:0] tag;
    logic             sts_en;
    logic             msi;
    logic [MsiTagWidth-1:0] mtag;
  } plan_t;

  typedef struct packed {
    logic [WAW-1:0]       w0;      // first RAM word
    logic [CntW-1:0]      nwords;  // words to read (>= 1)
    logic                 imm;
    logic [DataWidth-1:0] imm_word;
  } job_t;

  plan_t plan_in, plan_head;
  job_t  job_in, job_head;
  logic  plan_in_valid, plan_in_ready, plan_head_valid, plan_head_ready;
  logic  job_in_valid, job_in_ready, job_head_valid, job_head_ready;

  logic [LenWidth-1:0] off_q, off_d;     // bytes of the head request already planned
  logic [12:0]  mps;
  logic [63:0]  a;
  logic [LenWidth-1:0] rem;
  logic [12:0]  to_bound;
  logic [12:0]  n;
  logic         is_last, is_first, start_skip;
  logic [14:0]  dw_full;
  logic [1:0]   a_lo, e_lo;
  logic [3:0]   fbe, lbe;
  logic [RamAddrWidth-1:0] p0;
  logic [CntW-1:0] totdw;
  logic [CntW+1:0] p_end;                // p0[BW-1:0] + 4*totdw - 1
  logic         do_plan;

  always_comb begin
    mps      = 13'd128 << ((cfg_max_payload > ep_pcie_pkg::MPS_SUPPORTED) ? ep_pcie_pkg::MPS_SUPPORTED
                                                                          : cfg_max_payload);
    a        = req_head.addr + 64'(off_q);
    rem      = req_head.len - off_q;
`ifdef MUTANT_WR_SPLIT_OFF_BY_ONE  // planted bug (make mutants): a write TLP runs one DW past its MPS/4 KiB boundary
    to_bound = mps - (13'(a[11:0]) & (mps - 13'd1)) + 13'd4;
`else
    to_bound = mps - (13'(a[11:0]) & (mps - 13'd1));
`endif
    is_last  = (32'(rem) <= 32'(to_bound));
    n        = is_last ? 13'(rem) : to_bound;
    is_first = (off_q == '0);
    // a request with a PASID sends no TLP while PASID Enable is clear (DMA_ERR_PASID, like BME);
    // one that loses PASID Enable midway is cut at the output gate
    start_skip = is_first && (req_head.len == '0 || !cfg_bus_master_en
                              || (req_head.pasid_valid && !req_head.msi && !cfg_pasid_en));
    a_lo     = a[1:0];
    e_lo     = 2'(a[1:0] + n[1:0] - 2'd1);
    dw_full  = (15'(a_lo) + 15'(n) + 15'd3) >> 2;
    fbe      = 4'hF << a_lo;
    lbe      = 4'hF >> (2'd3 - e_lo);
    if (dw_full == 15'd1) begin
      fbe = fbe & lbe;
      lbe = 4'h0;
    end
    // job of the whole request (issued with its first TLP)
    p0       = req_head.imm ? '0 : (req_head.ram_addr - RamAddrWidth'(req_head.addr[1:0]));
    totdw    = (CntW'(req_head.addr[1:0]) + CntW'(req_head.len) + CntW'(3)) >> 2;
    p_end    = (CntW+2)'(p0[BW-1:0]) + ((CntW+2)'(totdw) << 2) - (CntW+2)'(1);

    plan_in = '0;
    plan_in.dw     = 11'(dw_full);
    plan_in.first  = is_first;
    plan_in.last   = is_last || start_skip;
    plan_in.p_off  = p0[BW-1:0];
    plan_in.skip   = start_skip;
    plan_in.err    = (req_head.len == '0) ? ep_dma_pkg::DMA_OK
                   : !cfg_bus_master_en ? ep_dma_pkg::DMA_ERR_BME
                   : (req_head.pasid_valid && !req_head.msi && !cfg_pasid_en) ? ep_dma_pkg::DMA_ERR_PASID
                   : ep_dma_pkg::DMA_OK;
    plan_in.tag    = req_head.tag;
    plan_in.sts_en = !req_head.msi;
    plan_in.msi    = req_head.msi;
    plan_in.mtag   = req_head.mtag;
    plan_in.prfx   = (req_head.pasid_valid && !req_head.msi)
                     ? {ep_pcie_pkg::PRFX_PASID, req_head.pmr && cfg_pasid_priv_en, 1'b0, 2'b00, req_head.pasid}
                     : 32'h0;
    plan_in.hdr[127:125] = (a[63:32] != 32'h0) ? ep_pcie_pkg::FMT_4DW_DATA : ep_pcie_pkg::FMT_3DW_DATA;
    plan_in.hdr[124:120] = ep_pcie_pkg::TYPE_MEM;
    plan_in.hdr[105:96]  = dw_full[9:0];                 // 1024 DW encodes as 0
    plan_in.hdr[95:80]   = cfg_requester_id;
    plan_in.hdr[71:68]   = lbe;
    plan_in.hdr[67:64]   = fbe;
    if (a[63:32] != 32'h0) begin
      plan_in.hdr[63:32] = a[63:32];
      plan_in.hdr[31:0]  = {a[31:2], 2'b00};
    end else begin
      plan_in.hdr[63:32] = {a[31:2], 2'b00};
    end

    job_in = '0;
    job_in.w0       = p0[RamAddrWidth-1:BW];
    job_in.nwords   = CntW'(p_end >> BW) + CntW'(1);
    job_in.imm      = req_head.imm;
    job_in.imm_word = req_head.imm_data << (8 * req_head.addr[1:0]);

    do_plan        = req_head_valid && plan_in_ready && (!is_first || start_skip || job_in_ready);
    plan_in_valid  = req_head_valid && (!is_first || start_skip || job_in_ready);
    job_in_valid   = req_head_valid && is_first && !start_skip && plan_in_ready;
    req_head_ready = do_plan && (is_last || start_skip);
    off_d = off_q;
    if (do_plan) off_d = (is_last || start_skip) ? '0 : off_q + LenWidth'(n);
  end

  always_ff @(posedge clk) begin
    if (rst) off_q <= '0;
    else     off_q <= off_d;
  end

  ep_fifo #(.Width($bits(plan_in)), .Depth(4)) u_plan_fifo (
    .clk, .rst,
    .s_data (plan_in),   .s_valid (plan_in_valid),   .s_ready (plan_in_ready),
    .m_data (plan_head), .m_valid (plan_head_valid), .m_ready (plan_head_ready)
  );
  ep_fifo #(.Width($bits(job_in)), .Depth(4)) u_job_fifo (
    .clk, .rst,
    .s_data (job_in),   .s_valid (job_in_valid),   .s_ready (job_in_ready),
    .m_data (job_head), .m_valid (job_head_valid), .m_ready (job_head_ready)
  );

  // ============================ RAM word reader ============================================
  localparam int unsigned CredW = $clog2(WordFifoDepth) + 1;
  logic             rd_active_q;
  logic [WAW-1:0]   rd_addr_q;
  logic [CntW-1:0]  rd_left_q;        // words still to issue of the active job
  logic             rd_imm_q;
  logic [DataWidth-1:0] rd_imm_word_q;
  logic [CredW-1:0] inflight_q;       // issued, not yet taken by the aligner
  logic [CredW-1:0] pending_q;        // RAM commands without response yet
  logic             credit_ok, issue_ram, issue_imm, issue, issue_last;
  logic [DataWidth-1:0] word_in_data, word_head;
  logic             word_in_valid, word_head_valid, word_head_ready, word_in_ready;

  assign credit_ok          = (inflight_q < CredW'(WordFifoDepth));
  assign m_ram_rd_cmd_valid = rd_active_q && !rd_imm_q && credit_ok;
  assign m_ram_rd_cmd_addr  = rd_addr_q;
  assign issue_ram  = m_ram_rd_cmd_valid && m_ram_rd_cmd_ready;
  assign issue_imm  = rd_active_q && rd_imm_q && credit_ok && (pending_q == '0);
  assign issue      = issue_ram || issue_imm;
  assign issue_last = issue && (rd_left_q == CntW'(1));
  assign job_head_ready = !rd_active_q || issue_last;

  assign word_in_valid = s_ram_rd_resp_valid || issue_imm;
  assign word_in_data  = s_ram_rd_resp_valid ? s_ram_rd_resp_data : rd_imm_word_q;

  always_ff @(posedge clk) begin
    if (rst) begin
      rd_active_q <= 1'b0;
      inflight_q  <= '0;
      pending_q   <= '0;
    end else begin
      if (job_head_valid && job_head_ready) rd_active_q <= 1'b1;
      else if (issue_last)                  rd_active_q <= 1'b0;
      inflight_q <= inflight_q + CredW'(issue) - CredW'(word_head_valid && word_head_ready);
      pending_q  <= pending_q + CredW'(issue_ram) - CredW'(s_ram_rd_resp_valid);
    end
  end
  always_ff @(posedge clk) begin
    if (job_head_valid && job_head_ready) begin
      rd_addr_q     <= job_head.w0;
      rd_left_q     <= job_head.nwords;
      rd_imm_q      <= job_head.imm;
      rd_imm_word_q <= job_head.imm_word;
    end else if (issue) begin
      rd_addr_q <= rd_addr_q + WAW'(1);
      rd_left_q <= rd_left_q - CntW'(1);
    end
  end

  ep_fifo #(.Width(DataWidth), .Depth(WordFifoDepth)) u_word_fifo (
    .clk, .rst,
    .s_data (word_in_data), .s_valid (word_in_valid), .s_ready (word_in_ready),
    .m_data (word_head),    .m_valid (word_head_valid), .m_ready (word_head_ready)
  );

  // ============================ aligner + TLP output =======================================
  typedef struct packed {
    logic [127:0]          hdr;
    logic [DataWidth-1:0]  data;
    logic [S-1:0]          strb;
    logic [31:0]           prfx;
    logic                  sop;
    logic                  eop;
  } beat_t;

  // aligner -> output stage: a beat, or a status-only token (skip plan: no TLP)
  typedef struct packed {
    beat_t               beat;
    logic                tok;      // no beat: status / message drop only
    logic                req_end;  // last beat (or the token) of its request
    logic                sts_en;
    logic                msi;
    logic [MsiTagWidth-1:0] mtag;  // message source tag
    logic [TagWidth-1:0] tag;
    logic [3:0]          err;      // planner error (BME at start) or DMA_OK
  } oitem_t;

  logic                 lo_v_q, hi_v_q, lo_v_d, hi_v_d;
  logic [DataWidth-1:0] lo_q, hi_q, lo_d, hi_d;
  logic [BW-1:0]        off_al_q, off_al_d;
  logic [10:0]          dw_rem_q, dw_rem_d;    // 0: next beat starts a TLP
  logic                 sop, eop, need_hi, fire, fire_beat, end_req, drop_lo, drop_hi;
  logic [10:0]          dw_cur;
  logic [BW-1:0]        off_cur;
  logic [BW:0]          nbytes;
  logic [BW+1:0]        new_off;
  logic [2*DataWidth-1:0] window;
  oitem_t               item;
  logic                 out_ready, out_valid;

  always_comb begin
    sop     = (dw_rem_q == 11'd0);
    dw_cur  = sop ? plan_head.dw : dw_rem_q;
    off_cur = (sop && plan_head.first) ? plan_head.p_off : off_al_q;
    eop     = (dw_cur <= 11'(S));
    nbytes  = eop ? (BW+1)'({dw_cur[BW-2:0], 2'b00}) : (BW+1)'(B);
    need_hi = ((BW+2)'(off_cur) + (BW+2)'(nbytes)) > (BW+2)'(B);
    end_req = eop && plan_head.last;

    out_valid = plan_head_valid && (plan_head.skip || (lo_v_q && (!need_hi || hi_v_q)));
    fire      = out_valid && out_ready;
    fire_beat = fire && !plan_head.skip;
    plan_head_ready = fire && (plan_head.skip || eop);

    window = {hi_q, lo_q} >> (8 * off_cur);
    item.beat.hdr  = plan_head.hdr;
    item.beat.prfx = plan_head.prfx;
    item.beat.data = window[DataWidth-1:0];
    item.beat.strb = eop ? S'((1 << dw_cur) - 1) : '1;
    if (eop && dw_cur == 11'(S)) item.beat.strb = '1;
    item.beat.sop  = sop;
    item.beat.eop  = eop;
    item.tok     = plan_head.skip;
    item.req_end = plan_head.skip || end_req;
    item.sts_en  = plan_head.sts_en;
    item.msi     = plan_head.msi;
    item.mtag    = plan_head.mtag;
    item.tag     = plan_head.tag;
    item.err     = plan_head.err;

    new_off  = (BW+2)'(off_cur) + (BW+2)'(nbytes);
    drop_lo  = fire_beat && (new_off >= (BW+2)'(B) || end_req);
    drop_hi  = fire_beat && end_req && need_hi;
    off_al_d = fire_beat ? new_off[BW-1:0] : off_al_q;
    dw_rem_d = dw_rem_q;
    if (fire_beat) dw_rem_d = eop ? 11'd0 : dw_cur - 11'(S);

    // consume words: shift the window
    lo_v_d = lo_v_q;  hi_v_d = hi_v_q;  lo_d = lo_q;  hi_d = hi_q;
    if (drop_lo && drop_hi) begin
      lo_v_d = 1'b0;  hi_v_d = 1'b0;
    end else if (drop_lo) begin
      lo_v_d = hi_v_q;  lo_d = hi_q;  hi_v_d = 1'b0;
    end
    // take a word from the word FIFO into the first free slot
    word_head_ready = !lo_v_d || !hi_v_d;
    if (word_head_valid) begin
      if (!lo_v_d) begin
        lo_v_d = 1'b1;  lo_d = word_head;
      end else if (!hi_v_d) begin
        hi_v_d = 1'b1;  hi_d = word_head;
      end
    end
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      lo_v_q   <= 1'b0;
      hi_v_q   <= 1'b0;
      dw_rem_q <= '0;
    end else begin
      lo_v_q   <= lo_v_d;
      hi_v_q   <= hi_v_d;
      dw_rem_q <= dw_rem_d;
    end
  end
  always_ff @(posedge clk) begin
    lo_q     <= lo_d;
    hi_q     <= hi_d;
    off_al_q <= off_al_d;
  end

  // ============================ output stage: BME gate + register slice ====================
  // Two entries like ep_spill_reg: a = the link output register, b = skid (s_ready = !b, a flop).
  // The item next in line for `a` (b if full, else the aligner's) is the *candidate*. A TLP is
  // committed when its sop beat is loaded into `a` (presented on the link; from then on it
  // completes, never cut). A candidate sop while cfg_bus_master_en = 0 — or of a request that
  // already lost a TLP — is discarded with the rest of its TLP; discards and tokens need no
  // link slot. The write status of a request rides in `a` with its last beat and is raised the
  // clock after the link has taken that beat (tx_wr valid && ready), never while the MWr may
  // still be passed by a later completion or read (PCIe ordering, rtl/dma/README.md); a request
  // whose last item is discarded reports at once, but only when `a` carries no status, so
  // statuses stay in request order. It reports DMA_ERR_BME if any TLP of the request was
  // discarded. The message drop pulse is raised when a message is discarded, with the message's
  // source tag, so the client can make the interrupt pending again (ep_core: IMS / MSI-X PBA).
  logic      a_valid_q, b_valid_q, a_free, cand_v, cand_drop, take;
  beat_t     a_q;
  oitem_t    b_q, cand;
  logic      tlp_drop_q, tlp_drop_d;   // discarding the rest of a TLP whose sop was discarded
  logic      req_drop_q, req_drop_d;   // a TLP of the current request was discarded
  logic      sts_v_d, msi_drop_d, cand_sts, a_sts_q, a_sts_fire;
  logic [3:0] sts_err_d, a_sts_err_q;
  logic [TagWidth-1:0] a_sts_tag_q;

  always_comb begin
    out_ready = !b_valid_q;
    a_free    = !a_valid_q || tx_wr_req_tlp_ready;
    cand_v    = b_valid_q || out_valid;
    cand      = b_valid_q ? b_q : item;
    // PASID Enable gate likewise: a TLP with a PASID prefix starts only while PASID Enable is set
    // (a prefix is 0 or 8'h91 in bits 31:24, so bit 31 tells, one LUT input instead of 32)
    cand_drop = cand.tok || (cand.beat.sop ? (!cfg_bus_master_en || req_drop_q
                                              || (cand.beat.prfx[31] && !cfg_pasid_en))
                                           : tlp_drop_q);
    cand_sts  = cand.req_end && cand.sts_en;
    a_sts_fire = a_valid_q && tx_wr_req_tlp_ready && a_sts_q;
    // a discarded last item reports at once: not in the clock a status leaves `a`, and not
    // ahead of a status still waiting in `a`
    take      = cand_v && (cand_drop ? !(cand_sts && a_valid_q && a_sts_q) : a_free);

    tlp_drop_d = tlp_drop_q;
    if (take && !cand.tok) tlp_drop_d = cand_drop && !cand.beat.eop;
    req_drop_d = req_drop_q;
    if (take && cand.req_end)          req_drop_d = 1'b0;
    else if (take && cand_drop)        req_drop_d = 1'b1;

    sts_v_d    = take && cand_drop && cand_sts;
    sts_err_d  = cand.err;
    if (cand.err == ep_dma_pkg::DMA_OK && (req_drop_q || (cand_drop && !cand.tok))) begin
      sts_err_d = cfg_bus_master_en ? ep_dma_pkg::DMA_ERR_PASID : ep_dma_pkg::DMA_ERR_BME;
    end
    msi_drop_d = take && cand.msi && cand_drop && (!cand.tok || cand.err != ep_dma_pkg::DMA_OK);
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      a_valid_q       <= 1'b0;
      a_sts_q         <= 1'b0;
      b_valid_q       <= 1'b0;
      tlp_drop_q      <= 1'b0;
      req_drop_q      <= 1'b0;
      m_wr_sts_valid  <= 1'b0;
      m_stat_msi_drop <= 1'b0;
    end else begin
      if (a_free) a_valid_q <= take && !cand_drop;
      if (a_free) a_sts_q   <= take && !cand_drop && cand_sts;
      if (b_valid_q)                 b_valid_q <= !take;
      else if (out_valid && !take)   b_valid_q <= 1'b1;   // aligner item parked (link stalled)
      tlp_drop_q      <= tlp_drop_d;
      req_drop_q      <= req_drop_d;
      m_wr_sts_valid  <= sts_v_d || a_sts_fire;
      m_stat_msi_drop <= msi_drop_d;
    end
  end
  always_ff @(posedge clk) begin
    if (a_free && take && !cand_drop) begin
      a_q         <= cand.beat;
      a_sts_tag_q <= cand.tag;
      a_sts_err_q <= sts_err_d;
    end
    if (!b_valid_q && out_valid && !take) b_q <= item;
    m_wr_sts_tag   <= a_sts_fire ? a_sts_tag_q : cand.tag;
    m_wr_sts_error <= a_sts_fire ? a_sts_err_q : sts_err_d;
    m_stat_msi_drop_tag <= cand.mtag;
  end

  assign tx_wr_req_tlp_valid = a_valid_q;
  assign tx_wr_req_tlp_hdr   = a_q.hdr;
  assign tx_wr_req_tlp_data  = a_q.data;
  assign tx_wr_req_tlp_strb  = a_q.strb;
  assign tx_wr_req_tlp_prfx  = a_q.prfx;
  assign tx_wr_req_tlp_sop   = a_q.sop;
  assign tx_wr_req_tlp_eop   = a_q.eop;

  assign m_wr_busy = req_head_valid || plan_head_valid || rd_active_q || (inflight_q != '0)
                     || a_valid_q || b_valid_q;

`ifndef SYNTHESIS
  // ---- invariants, checked in every simulation ($error stops Verilator)
  beat_t prev_a_q;
  logic  prev_hold_q;
  always_ff @(posedge clk) begin
    if (rst) begin
      prev_hold_q <= 1'b0;
    end else begin
      prev_hold_q <= tx_wr_req_tlp_valid && !tx_wr_req_tlp_ready;
      prev_a_q    <= a_q;
      if (a_free && take && !cand_drop && cand.beat.sop && !cfg_bus_master_en)
        $error("ep_dma_wr: MWr started with Bus Master Enable clear (%m)");
      if (a_free && take && !cand_drop && cand.beat.sop && cand.beat.prfx != 32'h0 && !cfg_pasid_en)
        $error("ep_dma_wr: MWr with a PASID prefix started with PASID Enable clear (%m)");
      if (prev_hold_q && (!tx_wr_req_tlp_valid || a_q != prev_a_q))
        $error("ep_dma_wr: MWr beat withdrawn or changed before ready (%m)");
      if (a_sts_fire && sts_v_d)
        $error("ep_dma_wr: two write statuses in one clock (%m)");
      // a message is one item: it is either loaded into the link register or dropped (and
      // reported with its tag), never both, never split
      if (take && cand.msi && !(cand.tok || (cand.beat.sop && cand.beat.eop)))
        $error("ep_dma_wr: interrupt message of more than one beat (%m)");
      if (take && cand.msi && cand_drop && !msi_drop_d)
        $error("ep_dma_wr: interrupt message discarded without a drop report (%m)");
    end
  end
  // every accepted message is accounted for: in the engine, sent (loaded) or reported dropped;
  // at most MsiMaxInside are inside at once (request FIFO 4 + plan FIFO 4 + skid 1), the bound a
  // client's drop buffer relies on (rtl/dma/README.md)
  localparam int MsiMaxInside = 9;
  int msi_in_q;
  always_ff @(posedge clk) begin
    if (rst) begin
      msi_in_q <= 0;
    end else begin
      msi_in_q <= msi_in_q + int'(s_msi_req_valid && s_msi_req_ready) - int'(take && cand.msi);
      if (msi_in_q < 0 || msi_in_q > MsiMaxInside)
        $error("ep_dma_wr: %0d interrupt messages inside the engine (%m)", msi_in_q);
    end
  end
`endif

  logic unused_ok;
  assign unused_ok = ^{word_in_ready, p_end, s_msi_req_addr[1:0], window[2*DataWidth-1:DataWidth]};
endmodule
`resetall
