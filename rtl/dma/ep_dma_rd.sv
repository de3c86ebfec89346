// SPDX-License-Identifier: Apache-2.0
/// ep_dma_rd: DMA read engine. Splits read requests into MRd TLPs (MRRS-aligned, so never across
/// 4 KiB), keeps up to NumTags of them outstanding, takes their completions in any legal order
/// (split at RCB, interleaved across tags), writes the data byte-exact into the client's local
/// buffer RAM and reports one status per request after its last RAM write. UR/CA/CRS/poisoned/
/// malformed completions and completion timeouts end the request with an error status; a timed-out
/// tag is quarantined for another timeout period before reuse. Completion credits: an MRd goes
/// out only when the completer's worst-case split of it (RCB) fits in the completion buffer
/// (CplhFcLimit headers, CpldFcLimit 16-byte data credits); credits return as completions are
/// consumed, so the buffer never overflows and completions are never stalled for space.
/// Docs: rtl/dma/README.md.
`resetall
`default_nettype none
module ep_dma_rd #(
  parameter int unsigned DataWidth    = 256,      /// TLP data / RAM word width (multiple of 64)
  parameter int unsigned RamAddrWidth = 16,       /// local buffer byte address width
  parameter int unsigned LenWidth     = 16,       /// request length width (bytes)
  parameter int unsigned TagWidth     = 8,        /// client tag width
  parameter int unsigned NumTags      = 64,       /// PCIe tags (32..256, power of two)
  parameter int unsigned NumOps       = 16,       /// client requests in flight (power of two)
  parameter int unsigned CplhFcLimit  = 572,      /// completion header credits (P-tile x8 port)
  parameter int unsigned CpldFcLimit  = 1444,     /// completion data credits, 16 B each (23 KiB)
  parameter int unsigned RcbBytes     = 64        /// completer RCB assumed for splits (64/128)
) (
  input  wire logic                       clk,
  input  wire logic                       rst,
  /// config (quasi-static)
  input  wire logic [15:0]                cfg_requester_id,
  input  wire logic                       cfg_bus_master_en,
  input  wire logic [2:0]                 cfg_max_read_req,
  input  wire logic                       cfg_ext_tag_en,
  input  wire logic                       cfg_pasid_en,
  input  wire logic                       cfg_pasid_priv_en,
  input  wire logic [27:0]                cfg_cpl_timeout,   // completion timeout, clock cycles
  /// read request (sink)
  input  wire logic [63:0]                s_rd_req_addr,
  input  wire logic [LenWidth-1:0]        s_rd_req_len,
  input  wire logic [RamAddrWidth-1:0]    s_rd_req_ram_addr,
  input  wire logic                       s_rd_req_pasid_valid,
  input  wire logic [19:0]                s_rd_req_pasid,
  input  wire logic                       s_rd_req_pmr,
  input  wire logic [TagWidth-1:0]        s_rd_req_tag,
  input  wire logic                       s_rd_req_valid,
  output logic                            s_rd_req_ready,
  /// read status (NO ready)
  output logic [TagWidth-1:0]             m_rd_sts_tag,
  output logic [3:0]                      m_rd_sts_error,
  output logic                            m_rd_sts_valid,
  /// local buffer write port (source)
  output logic [RamAddrWidth-$clog2(DataWidth/8)-1:0] m_ram_wr_addr,
  output logic [DataWidth/8-1:0]          m_ram_wr_be,
  output logic [DataWidth-1:0]            m_ram_wr_data,
  output logic                            m_ram_wr_valid,
  input  wire logic                       m_ram_wr_ready,
  /// link: MRd out
  output logic [127:0]                    tx_rd_req_tlp_hdr,
  output logic [31:0]                     tx_rd_req_tlp_prfx,
  output logic                            tx_rd_req_tlp_valid,
  output logic                            tx_rd_req_tlp_sop,
  output logic                            tx_rd_req_tlp_eop,
  input  wire logic                       tx_rd_req_tlp_ready,
  /// link: completions in
  input  wire logic [127:0]               rx_cpl_tlp_hdr,
  input  wire logic [DataWidth-1:0]       rx_cpl_tlp_data,
  input  wire logic [DataWidth/32-1:0]    rx_cpl_tlp_strb,
  input  wire logic                       rx_cpl_tlp_valid,
  input  wire logic                       rx_cpl_tlp_sop,
  input  wire logic                       rx_cpl_tlp_eop,
  output logic                            rx_cpl_tlp_ready,
  /// statistics
  output logic                            m_stat_unexp_cpl,   // pulse: completion dropped
  output logic                            m_stat_cpl_timeout, // pulse: a tag timed out
  output logic                            m_rd_busy
);
  localparam int unsigned B    = DataWidth / 8;
  localparam int unsigned BW   = $clog2(B);
  localparam int unsigned WAW  = RamAddrWidth - BW;
  localparam int unsigned TW   = $clog2(NumTags);
  localparam int unsigned OW   = $clog2(NumOps);
  localparam int unsigned CntW = TW + 1;
  localparam int unsigned TimeW = 30;   // > max cfg_cpl_timeout + one scan round: no wrap
  localparam int unsigned FcW   = 16;
  localparam int unsigned MaxCplh = 4096 / RcbBytes + 1;   // completions of a 4 KiB MRd, worst
  localparam int unsigned MaxCpld = 4096 / 16 + 1;         // data credits of a 4 KiB MRd, worst

  if (NumTags < 32 || NumTags > 256 || NumTags != 2**TW) begin : gen_chk_tags
    $fatal(1, "ep_dma_rd: NumTags must be a power of two in 32..256 (%m)");
  end
  if (NumOps < 2 || NumOps != 2**OW) begin : gen_chk_ops
    $fatal(1, "ep_dma_rd: NumOps must be a power of two >= 2 (%m)");
  end
  if (RcbBytes != 64 && RcbBytes != 128) begin : gen_chk_rcb
    $fatal(1, "ep_dma_rd: RcbBytes must be 64 or 128 (%m)");
  end
  if (CplhFcLimit < MaxCplh || CpldFcLimit < MaxCpld || CplhFcLimit >= 2**FcW
      || CpldFcLimit >= 2**FcW) begin : gen_chk_fc
    $fatal(1, "ep_dma_rd: completion credit limits must hold one 4 KiB read (%m)");
  end
  if (DataWidth % 64 != 0 || RamAddrWidth <= BW) begin : gen_chk_w
    $fatal(1, "ep_dma_rd: bad DataWidth / RamAddrWidth (%m)");
  end

  typedef enum logic [1:0] {TagFree, TagBusy, TagRetiring, TagQuar} tag_state_e;

  // ============================ state tables ===============================================
  // ops (client requests)
  logic [NumOps-1:0]   op_busy_q;
  logic [NumOps-1:0]   op_issued_q;
  logic [CntW-1:0]     op_cnt_q   [NumOps];
  logic [3:0]          op_err_q   [NumOps];
  logic [TagWidth-1:0] op_tag_q   [NumOps];
  // tags (MRd TLPs in flight)
  tag_state_e          tag_state_q [NumTags];
  logic [RamAddrWidth-1:0] tag_ram_q [NumTags];   // local byte address of the MRd's first byte
  logic [12:0]         tag_len_q   [NumTags];     // MRd length in bytes (1..4096)
  logic [OW-1:0]       tag_op_q    [NumTags];
  logic [TimeW-1:0]    tag_time_q  [NumTags];
  logic [NumTags-1:0]  tag_old_q;                   // scanner saw the tag past its deadline
  logic [7:0]          tag_cplh_q  [NumTags];       // header credits still reserved by the tag
  logic [9:0]          tag_cpld_q  [NumTags];       // data credits still reserved by the tag
  logic [FcW-1:0]      fc_h_used_q, fc_d_used_q;    // credits reserved, all tags
  logic [NumTags-1:0]  tag_poison_q;                // a poisoned completion of the tag was seen
  logic [TimeW-1:0]    now_q;

  // ============================ request intake =============================================
  typedef struct packed {
    logic [OW-1:0]           op;
    logic [63:0]             addr;
    logic [LenWidth-1:0]     len;
    logic [RamAddrWidth-1:0] ram_addr;
    logic                    pasid_valid;
    logic [19:0]             pasid;
    logic                    pmr;
  } req_t;

  req_t  req_in, req_head;
  logic  req_in_ready, req_head_valid, req_head_ready;
  logic  op_free_any;
  logic [OW-1:0] op_free_idx;
  logic  alloc;

  // lowest free op (tree priority encoder: a loop encoder is a NumOps-deep mux chain)
  ep_prio_enc #(.Width(NumOps)) u_op_free (.req(~op_busy_q), .any(op_free_any), .idx(op_free_idx));

  always_comb begin
    req_in.op          = op_free_idx;
    req_in.addr        = s_rd_req_addr;
    req_in.len         = s_rd_req_len;
    req_in.ram_addr    = s_rd_req_ram_addr;
    req_in.pasid_valid = s_rd_req_pasid_valid;
    req_in.pasid       = s_rd_req_pasid;
    req_in.pmr         = s_rd_req_pmr;
  end
  assign s_rd_req_ready = op_free_any && req_in_ready;
  assign alloc          = s_rd_req_valid && s_rd_req_ready;

  ep_fifo #(.Width($bits(req_in)), .Depth(4)) u_req_fifo (
    .clk, .rst,
    .s_data (req_in),   .s_valid (s_rd_req_valid && op_free_any), .s_ready (req_in_ready),
    .m_data (req_head), .m_valid (req_head_valid), .m_ready (req_head_ready)
  );

  // ============================ MRd planner ================================================
  logic [LenWidth-1:0] off_q, off_d;
  logic [12:0]  mrrs, to_bound, n;
  logic [63:0]  a;
  logic [LenWidth-1:0] rem;
  logic         is_last, stop, out_free, issue, tag_any;
  logic [TW-1:0] tag_idx;
  logic [14:0]  dw_full;
  logic [1:0]   e_lo;
  logic [3:0]   fbe, lbe;
  logic [127:0] mrd_hdr;
  logic [31:0]  mrd_prfx;
  logic         plan_err_bme, plan_err_pasid, pasid_off;
  logic [7:0]   need_h;
  logic [9:0]   need_d;
  logic         fc_ok;
  logic [NumTags-1:0] tag_free;

  // free tag: lowest index in TagFree (only 0..31 without extended tags); a tree encoder, as the
  // 64-deep loop form was most of the MRd issue path's logic depth (rtl/README.md "Timing")
  always_comb begin
    for (int i = 0; i < NumTags; i++) tag_free[i] = tag_state_q[i] == TagFree && (cfg_ext_tag_en || i < 32);
  end
  ep_prio_enc #(.Width(NumTags)) u_tag_free (.req(tag_free), .any(tag_any), .idx(tag_idx));

  always_comb begin
    mrrs     = 13'd128 << ((cfg_max_read_req > 3'd5) ? 3'd5 : cfg_max_read_req);
    a        = req_head.addr + 64'(off_q);
    rem      = req_head.len - off_q;
    to_bound = mrrs - (13'(a[11:0]) & (mrrs - 13'd1));
    is_last  = (32'(rem) <= 32'(to_bound));
    n        = is_last ? 13'(rem) : to_bound;
    e_lo     = 2'(a[1:0] + n[1:0] - 2'd1);
    dw_full  = (15'(a[1:0]) + 15'(n) + 15'd3) >> 2;
    fbe      = 4'hF << a[1:0];
    lbe      = 4'hF >> (2'd3 - e_lo);
    if (dw_full == 15'd1) begin
      fbe = fbe & lbe;
      lbe = 4'h0;
    end
    mrd_hdr = '0;
    mrd_hdr[127:125] = (a[63:32] != 32'h0) ? ep_pcie_pkg::FMT_4DW : ep_pcie_pkg::FMT_3DW;
    mrd_hdr[124:120] = ep_pcie_pkg::TYPE_MEM;
    mrd_hdr[105:96]  = dw_full[9:0];
    mrd_hdr[95:80]   = cfg_requester_id;
    mrd_hdr[79:72]   = 8'(tag_idx);
    mrd_hdr[71:68]   = lbe;
    mrd_hdr[67:64]   = fbe;
    if (a[63:32] != 32'h0) begin
      mrd_hdr[63:32] = a[63:32];
      mrd_hdr[31:0]  = {a[31:2], 2'b00};
    end else begin
      mrd_hdr[63:32] = {a[31:2], 2'b00};
    end
    mrd_prfx = (req_head.pasid_valid && cfg_pasid_en)
               ? {ep_pcie_pkg::PRFX_PASID, req_head.pmr && cfg_pasid_priv_en, 1'b0, 2'b00, req_head.pasid}
               : 32'h0;

    // worst-case completions: one per RCB block touched; data credits: 16-byte blocks touched
    // (completers split only at RCB boundaries, which are 16-byte aligned)
    need_h   = 8'((13'(a[6:0] & 7'(RcbBytes - 1)) + n + 13'(RcbBytes - 1)) / 13'(RcbBytes));
    need_d   = 10'((13'(a[3:0]) + n + 13'd15) >> 4);
    fc_ok    = (32'(fc_h_used_q) + 32'(need_h) <= CplhFcLimit)
               && (32'(fc_d_used_q) + 32'(need_d) <= CpldFcLimit);

    out_free = !tx_rd_req_tlp_valid || tx_rd_req_tlp_ready;
    // a request with a PASID sends no MRd while PASID Enable is clear (neither with the prefix
    // nor without it, which would reach the PF's RID_PASID domain): DMA_ERR_PASID, as for BME
    pasid_off = req_head.pasid_valid && !cfg_pasid_en;
    stop     = req_head_valid && (op_err_q[req_head.op] != ep_dma_pkg::DMA_OK || !cfg_bus_master_en
                                  || pasid_off || req_head.len == '0);
    plan_err_bme = stop && !cfg_bus_master_en && req_head.len != '0
                   && op_err_q[req_head.op] == ep_dma_pkg::DMA_OK;
    plan_err_pasid = stop && cfg_bus_master_en && pasid_off && req_head.len != '0
                     && op_err_q[req_head.op] == ep_dma_pkg::DMA_OK;
    issue    = req_head_valid && !stop && tag_any && out_free && fc_ok;
    req_head_ready = stop || (issue && is_last);
    off_d = off_q;
    if (req_head_ready)  off_d = '0;
    else if (issue)      off_d = off_q + LenWidth'(n);
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      off_q               <= '0;
      tx_rd_req_tlp_valid <= 1'b0;
    end else begin
      off_q <= off_d;
      if (out_free) tx_rd_req_tlp_valid <= issue;
    end
  end
  always_ff @(posedge clk) begin
    if (issue) begin
      tx_rd_req_tlp_hdr  <= mrd_hdr;
      tx_rd_req_tlp_prfx <= mrd_prfx;
    end
  end
  assign tx_rd_req_tlp_sop = 1'b1;
  assign tx_rd_req_tlp_eop = 1'b1;

  // ============================ completion ingest ==========================================
  typedef struct packed {
    logic                 wr;
    logic [WAW-1:0]       waddr;
    logic [B-1:0]         be;
    logic [DataWidth-1:0] data;
    logic                 retire;
    logic [TW-1:0]        tag;
    logic [3:0]           err;
  } item_t;

  item_t item, item_out;
  logic  item_valid, item_ready, item_out_valid, item_out_ready;

  // header fields (valid on sop)
  logic [2:0]  c_fmt;
  logic [2:0]  c_status;
  logic        c_ep;
  logic [9:0]  c_len;
  logic [11:0] c_bc_raw;
  logic [7:0]  c_tag;
  logic [6:0]  c_la;
  logic [12:0] c_bc, c_avail, c_nbytes;
  logic [TW-1:0] c_tidx;
  logic        c_known, c_has_data;
  logic [3:0]  c_err;
  logic [RamAddrWidth-1:0] c_x;

  // context of the completion being written
  logic                 mid_q, drop_q, flush_q;
  logic [TW-1:0]        ctx_tag_q;
  logic                 ctx_retire_q, ctx_poison_q;
  logic [BW-1:0]        ctx_sh_q;
  logic [WAW-1:0]       ctx_waddr_q;
  logic [13:0]          ctx_jb_q;          // stream byte index of lane 0 of this beat
  logic [1:0]           ctx_lo_q;          // first valid stream byte
  logic [13:0]          ctx_hi_q;          // end (exclusive) of valid stream bytes
  logic [DataWidth-1:0] carry_data_q;
  logic [B-1:0]         carry_be_q;

  logic                 cpl_fire, unexp_d;
  logic                 set_retiring;
  logic [TW-1:0]        set_retiring_tag;
  // per beat
  logic [BW-1:0]        b_sh;
  logic [WAW-1:0]       b_waddr;
  logic [13:0]          b_jb, b_hi;
  logic [1:0]           b_lo;
  logic [B-1:0]         b_mask;
  logic [2*DataWidth-1:0] b_sdata;
  logic [2*B-1:0]       b_sbe;
  logic                 b_retire, b_poison;
  logic [TW-1:0]        b_tag;
  // next context
  logic                 mid_d, drop_d, flush_d, ctx_retire_d, ctx_poison_d;
  logic [TW-1:0]        ctx_tag_d;
  logic [BW-1:0]        ctx_sh_d;
  logic [WAW-1:0]       ctx_waddr_d;
  logic [13:0]          ctx_jb_d, ctx_hi_d;
  logic [1:0]           ctx_lo_d;
  logic [DataWidth-1:0] carry_data_d;
  logic [B-1:0]         carry_be_d;

  always_comb begin
    c_fmt    = rx_cpl_tlp_hdr[127:125];
    c_ep     = rx_cpl_tlp_hdr[110];
    c_len    = rx_cpl_tlp_hdr[105:96];
    c_status = rx_cpl_tlp_hdr[79:77];
    c_bc_raw = rx_cpl_tlp_hdr[75:64];
    c_tag    = rx_cpl_tlp_hdr[47:40];
    c_la     = rx_cpl_tlp_hdr[38:32];
    c_tidx   = TW'(c_tag);
    // a completion for another requester (RID mismatch) or an unknown tag is unexpected
    c_known  = (32'(c_tag) < NumTags) && (tag_state_q[c_tidx] == TagBusy)
               && (rx_cpl_tlp_hdr[63:48] == cfg_requester_id);
    c_has_data = c_fmt[1];
    c_bc     = (c_bc_raw == 12'd0) ? 13'd4096 : {1'b0, c_bc_raw};
    c_avail  = ((c_len == 10'd0) ? 13'd4096 : {1'b0, c_len, 2'b00}) - 13'(c_la[1:0]);
    c_nbytes = (c_bc < c_avail) ? c_bc : c_avail;
    c_err    = ep_dma_pkg::DMA_OK;
    if (c_status == ep_pcie_pkg::CPL_UR)         c_err = ep_dma_pkg::DMA_ERR_UR;
    else if (c_status == ep_pcie_pkg::CPL_CA)    c_err = ep_dma_pkg::DMA_ERR_CA;
    else if (c_status != ep_pcie_pkg::CPL_SC)    c_err = ep_dma_pkg::DMA_ERR_CPL_OTHER;
    else if (!c_has_data || c_bc > tag_len_q[c_tidx]) c_err = ep_dma_pkg::DMA_ERR_MALFORMED;
    c_x = tag_ram_q[c_tidx] + RamAddrWidth'(tag_len_q[c_tidx] - c_bc) - RamAddrWidth'(c_la[1:0]);

    // defaults: hold context
    mid_d = mid_q;  drop_d = drop_q;  flush_d = flush_q;  ctx_retire_d = ctx_retire_q;
    ctx_poison_d = ctx_poison_q;
    ctx_tag_d = ctx_tag_q;  ctx_sh_d = ctx_sh_q;  ctx_waddr_d = ctx_waddr_q;  ctx_jb_d = ctx_jb_q;
    ctx_hi_d = ctx_hi_q;  ctx_lo_d = ctx_lo_q;  carry_data_d = carry_data_q;  carry_be_d = carry_be_q;
    unexp_d = 1'b0;
    set_retiring = 1'b0;
    set_retiring_tag = c_tidx;
    item = '0;
    item_valid = 1'b0;

    rx_cpl_tlp_ready = !flush_q && item_ready;
    cpl_fire = rx_cpl_tlp_valid && rx_cpl_tlp_ready;

    // beat parameters: from the header on sop, else from the context
    if (rx_cpl_tlp_sop) begin
      b_sh = c_x[BW-1:0];  b_waddr = c_x[RamAddrWidth-1:BW];  b_jb = '0;
      b_lo = c_la[1:0];    b_hi = 14'(c_la[1:0]) + 14'(c_nbytes);
      b_retire = (c_nbytes == c_bc);  b_tag = c_tidx;
      b_poison = c_ep || tag_poison_q[c_tidx];   // poisoned data is dropped, the tag lives on
    end else begin
      b_sh = ctx_sh_q;  b_waddr = ctx_waddr_q;  b_jb = ctx_jb_q;
      b_lo = ctx_lo_q;  b_hi = ctx_hi_q;  b_retire = ctx_retire_q;  b_tag = ctx_tag_q;
      b_poison = ctx_poison_q;
    end
    for (int i = 0; i < B; i++) begin
      b_mask[i] = (b_jb + 14'(i) >= 14'(b_lo)) && (b_jb + 14'(i) < b_hi) && !b_poison;
    end
    b_sdata = {{DataWidth{1'b0}}, rx_cpl_tlp_data} << (8 * b_sh);
    b_sbe   = {{B{1'b0}}, b_mask} << b_sh;

    if (flush_q) begin
      // the last bytes of a completion spilled into one more RAM word
      item.wr     = 1'b1;
      item.waddr  = ctx_waddr_q;
      item.be     = carry_be_q;
      item.data   = carry_data_q;
      item.retire = ctx_retire_q;
      item.tag    = ctx_tag_q;
      item_valid  = 1'b1;
      if (item_ready) flush_d = 1'b0;
    end else if (rx_cpl_tlp_valid) begin
      if (rx_cpl_tlp_sop && !c_known) begin
        unexp_d = cpl_fire;                           // unknown / expired tag: drop the TLP
        drop_d  = cpl_fire ? !rx_cpl_tlp_eop : drop_q;
      end else if (rx_cpl_tlp_sop && c_err != ep_dma_pkg::DMA_OK) begin
        item.retire = 1'b1;                            // error: end the tag, drop the data
        item.tag    = c_tidx;
        item.err    = c_err;
        item_valid  = 1'b1;
        set_retiring = cpl_fire;
        drop_d = cpl_fire ? !rx_cpl_tlp_eop : drop_q;
      end else if (!rx_cpl_tlp_sop && drop_q) begin
        drop_d = cpl_fire ? !rx_cpl_tlp_eop : drop_q;
      end else if (rx_cpl_tlp_sop || mid_q) begin
        item.wr     = 1'b1;
        item.waddr  = b_waddr;
        item.be     = b_sbe[B-1:0] | (rx_cpl_tlp_sop ? '0 : carry_be_q);
        item.data   = b_sdata[DataWidth-1:0] | (rx_cpl_tlp_sop ? '0 : carry_data_q);
        item.tag    = b_tag;
        item.err    = b_poison ? ep_dma_pkg::DMA_ERR_POISONED : ep_dma_pkg::DMA_OK;
        item.retire = b_retire && rx_cpl_tlp_eop && (b_sbe[2*B-1:B] == '0);
        item_valid  = 1'b1;
        if (cpl_fire) begin
          if (rx_cpl_tlp_sop) begin
            ctx_tag_d = c_tidx;  ctx_sh_d = b_sh;  ctx_lo_d = b_lo;  ctx_hi_d = b_hi;
            ctx_retire_d = b_retire;
            ctx_poison_d = b_poison;
            set_retiring = b_retire;
          end
          ctx_waddr_d  = b_waddr + WAW'(1);
          ctx_jb_d     = b_jb + 14'(B);
          carry_data_d = b_sdata[2*DataWidth-1:DataWidth];
          carry_be_d   = b_sbe[2*B-1:B];
          mid_d        = !rx_cpl_tlp_eop;
          flush_d      = rx_cpl_tlp_eop && (b_sbe[2*B-1:B] != '0);
        end
      end
    end
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      mid_q   <= 1'b0;
      drop_q  <= 1'b0;
      flush_q <= 1'b0;
      m_stat_unexp_cpl <= 1'b0;
    end else begin
      mid_q   <= mid_d;
      drop_q  <= drop_d;
      flush_q <= flush_d;
      m_stat_unexp_cpl <= unexp_d;
    end
  end
  always_ff @(posedge clk) begin
    ctx_tag_q    <= ctx_tag_d;
    ctx_retire_q <= ctx_retire_d;
    ctx_poison_q <= ctx_poison_d;
    ctx_sh_q     <= ctx_sh_d;
    ctx_waddr_q  <= ctx_waddr_d;
    ctx_jb_q     <= ctx_jb_d;
    ctx_lo_q     <= ctx_lo_d;
    ctx_hi_q     <= ctx_hi_d;
    carry_data_q <= carry_data_d;
    carry_be_q   <= carry_be_d;
  end

  ep_spill_reg #(.Width($bits(item))) u_item (
    .clk, .rst,
    .s_data (item),     .s_valid (item_valid),     .s_ready (item_ready),
    .m_data (item_out), .m_valid (item_out_valid), .m_ready (item_out_ready)
  );
  assign m_ram_wr_valid = item_out_valid && item_out.wr;
  assign m_ram_wr_addr  = item_out.waddr;
  assign m_ram_wr_be    = item_out.be;
  assign m_ram_wr_data  = item_out.data;
  assign item_out_ready = !item_out.wr || m_ram_wr_ready;

  // ============================ retire, timeout, status ====================================
  // Two retire sources per cycle: the RAM-write pipeline (retire_fire, item_out.tag) and the
  // timeout scanner (tmo_fire, scan_q). They never name the same tag (a retiring tag is not Busy).
  // The scanner advances every cycle, so every tag is checked once per NumTags cycles; a tag it
  // must skip (a completion of it is being taken) is marked old once past its deadline, so its
  // age never has to grow further (no wrap) and the next visit retires it.
  logic          retire_fire, tmo_fire, quar_free, scan_blocked, scan_expired;
  logic [TW-1:0] retire_tag, scan_q;
  logic [3:0]    retire_err;
  logic [OW-1:0] retire_op, tmo_op;
  logic [TimeW-1:0] scan_age;

  always_comb begin
    retire_fire = item_out_valid && item_out_ready && item_out.retire;
    retire_tag  = item_out.tag;
    retire_err  = item_out.err;
    scan_age    = now_q - tag_time_q[scan_q];
    scan_expired = tag_old_q[scan_q] || scan_age >= TimeW'(cfg_cpl_timeout);
    scan_blocked = (mid_q && ctx_tag_q == scan_q)
                   || (rx_cpl_tlp_valid && rx_cpl_tlp_sop && c_tidx == scan_q);
    tmo_fire    = !scan_blocked && tag_state_q[scan_q] == TagBusy && scan_expired;
    quar_free   = tag_state_q[scan_q] == TagQuar && scan_expired;
    retire_op   = tag_op_q[retire_tag];
    tmo_op      = tag_op_q[scan_q];
  end

  // ---- completion credits: reserve at issue, return per completion consumed, rest at retire
  logic          cr_valid_q, cr_valid_d;    // the completion being taken has credits to return
  logic [TW-1:0] cr_tag_q, cr_tag_d;
  logic [9:0]    cr_d_q, cr_d_d, c_cpld;
  logic          ret_valid;
  logic [TW-1:0] ret_tag;
  logic [9:0]    ret_d;
  logic          ret_eh;                    // header credit returned by the consumed completion
  logic [9:0]    ret_ed;                    // data credits returned by it
  logic [7:0]    rel_rh, rel_th;            // rest released by retire / timeout
  logic [9:0]    rel_rd, rel_td;
  // A tag retired (error) while one of its completions is still streaming in: the retire releases
  // everything else, the credits of that completion stay reserved here, apart from the tag (which
  // may be reissued at once), and go back at its eop (BUGS.md #6: they were returned twice, the
  // second time out of the reissued tag's reservation).
  logic          cr_orph_q, cr_orph_d;
  logic          cr_oh_q, cr_oh_d;          // its header credit
  logic [9:0]    cr_od_q, cr_od_d;          // its data credits
  logic          keep_h;
  logic [9:0]    keep_d;
  logic          ret_oh;                    // orphaned credits returned at that eop
  logic [9:0]    ret_od;
  logic [FcW-1:0] fc_h_used_d, fc_d_used_d;

  always_comb begin
    c_cpld = !c_has_data ? 10'd0 : (c_len == 10'd0) ? 10'd256 : 10'((c_len + 10'd3) >> 2);
    cr_valid_d = cr_valid_q;  cr_tag_d = cr_tag_q;  cr_d_d = cr_d_q;
    cr_orph_d = cr_orph_q;  cr_oh_d = cr_oh_q;  cr_od_d = cr_od_q;
    ret_valid = 1'b0;
    ret_tag   = cr_tag_q;
    ret_d     = cr_d_q;
    ret_oh    = 1'b0;
    ret_od    = 10'd0;
    if (cpl_fire && rx_cpl_tlp_sop) begin
      cr_orph_d = 1'b0;
      if (c_known) begin
        ret_valid = rx_cpl_tlp_eop;
        ret_tag   = c_tidx;
        ret_d     = c_cpld;
        cr_valid_d = !rx_cpl_tlp_eop;
        cr_tag_d   = c_tidx;
        cr_d_d     = c_cpld;
      end else begin
        cr_valid_d = 1'b0;
      end
    end else if (cpl_fire && rx_cpl_tlp_eop) begin
      ret_valid  = cr_valid_q && !cr_orph_q;
      ret_oh     = cr_valid_q && cr_orph_q && cr_oh_q;
      ret_od     = (cr_valid_q && cr_orph_q) ? cr_od_q : 10'd0;
      cr_valid_d = 1'b0;
      cr_orph_d  = 1'b0;
    end
    ret_eh = ret_valid && tag_cplh_q[ret_tag] != 8'd0;
    ret_ed = !ret_valid ? 10'd0 : (ret_d < tag_cpld_q[ret_tag]) ? ret_d : tag_cpld_q[ret_tag];
    rel_rh = 8'd0;  rel_rd = 10'd0;  rel_th = 8'd0;  rel_td = 10'd0;
`ifndef MUTANT_CPL_CREDIT_LEAK  // planted bug (make mutants): a retiring tag never returns its unused credits
    if (retire_fire) begin
      rel_rh = tag_cplh_q[retire_tag] - ((ret_valid && ret_tag == retire_tag) ? 8'(ret_eh) : 8'd0);
      rel_rd = tag_cpld_q[retire_tag] - ((ret_valid && ret_tag == retire_tag) ? ret_ed : 10'd0);
    end
`endif
    keep_h = 1'b0;
    keep_d = 10'd0;
`ifndef MUTANT_CPL_CREDIT_TWICE  // planted bug (make mutants): BUGS.md #6 back
    if (retire_fire && cr_valid_q && !cr_orph_q && cr_tag_q == retire_tag && !(cpl_fire && rx_cpl_tlp_eop)) begin
      keep_h = tag_cplh_q[retire_tag] != 8'd0;
      keep_d = (cr_d_q < tag_cpld_q[retire_tag]) ? cr_d_q : tag_cpld_q[retire_tag];
      rel_rh = rel_rh - 8'(keep_h);
      rel_rd = rel_rd - keep_d;
      cr_orph_d = 1'b1;
      cr_oh_d   = keep_h;
      cr_od_d   = keep_d;
    end
`endif
    if (tmo_fire) begin
      rel_th = tag_cplh_q[scan_q];
      rel_td = tag_cpld_q[scan_q];
    end
    fc_h_used_d = fc_h_used_q + (issue ? FcW'(need_h) : '0) - FcW'(ret_eh) - FcW'(rel_rh)
                  - FcW'(rel_th) - FcW'(ret_oh);
    fc_d_used_d = fc_d_used_q + (issue ? FcW'(need_d) : '0) - FcW'(ret_ed) - FcW'(rel_rd)
                  - FcW'(rel_td) - FcW'(ret_od);
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      cr_valid_q  <= 1'b0;
      cr_orph_q   <= 1'b0;
      fc_h_used_q <= '0;
      fc_d_used_q <= '0;
    end else begin
      cr_valid_q  <= cr_valid_d;
      cr_orph_q   <= cr_orph_d;
      fc_h_used_q <= fc_h_used_d;
      fc_d_used_q <= fc_d_used_d;
    end
  end
  always_ff @(posedge clk) begin
    cr_tag_q <= cr_tag_d;
    cr_d_q   <= cr_d_d;
    cr_oh_q  <= cr_oh_d;
    cr_od_q  <= cr_od_d;
    if (ret_valid) begin
      tag_cplh_q[ret_tag] <= tag_cplh_q[ret_tag] - 8'(ret_eh);
      tag_cpld_q[ret_tag] <= tag_cpld_q[ret_tag] - ret_ed;
    end
    if (retire_fire) begin
      tag_cplh_q[retire_tag] <= 8'd0;
      tag_cpld_q[retire_tag] <= 10'd0;
    end
    if (tmo_fire) begin
      tag_cplh_q[scan_q] <= 8'd0;
      tag_cpld_q[scan_q] <= 10'd0;
    end
    if (issue) begin
      tag_cplh_q[tag_idx] <= need_h;
      tag_cpld_q[tag_idx] <= need_d;
    end
  end

  logic          sts_any;
  logic [OW-1:0] sts_idx;
  logic [NumOps-1:0] op_done;
  always_comb begin
    for (int i = 0; i < NumOps; i++) op_done[i] = op_busy_q[i] && op_issued_q[i] && op_cnt_q[i] == '0;
  end
  ep_prio_enc #(.Width(NumOps)) u_op_done (.req(op_done), .any(sts_any), .idx(sts_idx));

  always_ff @(posedge clk) begin
    if (rst) begin
      op_busy_q      <= '0;
      m_rd_sts_valid <= 1'b0;
      scan_q         <= '0;
      now_q          <= '0;
      m_stat_cpl_timeout <= 1'b0;
      for (int i = 0; i < NumTags; i++) tag_state_q[i] <= TagFree;
    end else begin
      now_q <= now_q + TimeW'(1);
      scan_q <= scan_q + TW'(1);
      m_stat_cpl_timeout <= tmo_fire;
      // tag states
      if (issue)        tag_state_q[tag_idx] <= TagBusy;
      if (set_retiring) tag_state_q[set_retiring_tag] <= TagRetiring;
      if (retire_fire)  tag_state_q[item_out.tag] <= TagFree;
      if (tmo_fire)     tag_state_q[scan_q] <= TagQuar;
      else if (quar_free) tag_state_q[scan_q] <= TagFree;
      // ops
      if (alloc) op_busy_q[op_free_idx] <= 1'b1;
      if (sts_any) op_busy_q[sts_idx] <= 1'b0;
      m_rd_sts_valid <= sts_any;
    end
  end

  logic [NumOps-1:0] op_inc, op_dec, op_dect;
  always_comb begin
    for (int i = 0; i < NumOps; i++) begin
      op_inc[i] = issue && req_head.op == OW'(i);
      op_dec[i]  = retire_fire && retire_op == OW'(i);
      op_dect[i] = tmo_fire && tmo_op == OW'(i);
    end
  end

  always_ff @(posedge clk) begin
    // op counters: +1 per MRd issued, -1 per tag retired (both may hit one op in one cycle)
    for (int i = 0; i < NumOps; i++) begin
      if (alloc && op_free_idx == OW'(i)) begin
        op_cnt_q[i]    <= '0;
        op_issued_q[i] <= 1'b0;
        op_err_q[i]    <= ep_dma_pkg::DMA_OK;
        op_tag_q[i]    <= s_rd_req_tag;
      end else begin
        op_cnt_q[i] <= op_cnt_q[i] + CntW'(op_inc[i]) - CntW'(op_dec[i]) - CntW'(op_dect[i]);
        if (req_head_ready && req_head.op == OW'(i)) op_issued_q[i] <= 1'b1;
        if (op_dec[i] && retire_err != ep_dma_pkg::DMA_OK && op_err_q[i] == ep_dma_pkg::DMA_OK) begin
          op_err_q[i] <= retire_err;
        end else if (op_dect[i] && op_err_q[i] == ep_dma_pkg::DMA_OK) begin
          op_err_q[i] <= ep_dma_pkg::DMA_ERR_TIMEOUT;
        end else if (plan_err_bme && req_head.op == OW'(i)) begin
          op_err_q[i] <= ep_dma_pkg::DMA_ERR_BME;
        end else if (plan_err_pasid && req_head.op == OW'(i)) begin
          op_err_q[i] <= ep_dma_pkg::DMA_ERR_PASID;
        end
      end
    end
    // tag tables
    if (issue) begin
      tag_ram_q[tag_idx]  <= req_head.ram_addr + RamAddrWidth'(off_q);
      tag_len_q[tag_idx]  <= n;
      tag_op_q[tag_idx]   <= req_head.op;
      tag_time_q[tag_idx] <= now_q;
    end
    if (tmo_fire) tag_time_q[scan_q] <= now_q;
    // a tag past its deadline stays expired (quarantine too) even if its age would wrap
    if ((tag_state_q[scan_q] == TagBusy || tag_state_q[scan_q] == TagQuar) && scan_expired
        && !tmo_fire) begin
      tag_old_q[scan_q] <= 1'b1;
    end
    if (tmo_fire) tag_old_q[scan_q] <= 1'b0;
    if (issue) tag_old_q[tag_idx] <= 1'b0;
    if (issue) tag_poison_q[tag_idx] <= 1'b0;
    if (cpl_fire && rx_cpl_tlp_sop && c_known && c_ep) tag_poison_q[c_tidx] <= 1'b1;
    m_rd_sts_tag   <= op_tag_q[sts_idx];
    m_rd_sts_error <= op_err_q[sts_idx];
  end

  assign m_rd_busy = (op_busy_q != '0);

`ifndef SYNTHESIS
  // ---- invariants, checked in every simulation ($error stops Verilator)
  logic [127:0] prev_hdr_q;
  logic         prev_hold_q;
  int unsigned  busy_tags;
  always_comb begin
    busy_tags = 0;
    for (int i = 0; i < NumTags; i++) busy_tags += (tag_state_q[i] != TagFree) ? 1 : 0;
  end
  always_ff @(posedge clk) begin
    if (rst) begin
      prev_hold_q <= 1'b0;
    end else begin
      prev_hold_q <= tx_rd_req_tlp_valid && !tx_rd_req_tlp_ready;
      prev_hdr_q  <= tx_rd_req_tlp_hdr;
      if (issue && !cfg_bus_master_en)
        $error("ep_dma_rd: MRd issued with Bus Master Enable clear (%m)");
      if (issue && tag_state_q[tag_idx] != TagFree)
        $error("ep_dma_rd: tag %0d issued while in use (%m)", tag_idx);
      if (issue && req_head.pasid_valid && cfg_pasid_en
          && mrd_prfx != {ep_pcie_pkg::PRFX_PASID, req_head.pmr && cfg_pasid_priv_en, 1'b0, 2'b00, req_head.pasid})
        $error("ep_dma_rd: ADI read without its PASID prefix (%m)");
      if (issue && req_head.pasid_valid && !cfg_pasid_en)
        $error("ep_dma_rd: MRd of a PASID request issued with PASID Enable clear (%m)");
      if (prev_hold_q && (!tx_rd_req_tlp_valid || tx_rd_req_tlp_hdr != prev_hdr_q))
        $error("ep_dma_rd: MRd withdrawn or changed before ready (%m)");
      if (32'(fc_h_used_q) > CplhFcLimit || 32'(fc_d_used_q) > CpldFcLimit)
        $error("ep_dma_rd: completion credits out of range (h %0d, d %0d) (%m)", fc_h_used_q, fc_d_used_q);
      if (busy_tags == 0 && !cr_orph_q && (fc_h_used_q != '0 || fc_d_used_q != '0))
        $error("ep_dma_rd: completion credits leaked (h %0d, d %0d) (%m)", fc_h_used_q, fc_d_used_q);
      if (busy_tags == 0 && cr_orph_q && (fc_h_used_q != FcW'(cr_oh_q) || fc_d_used_q != FcW'(cr_od_q)))
        $error("ep_dma_rd: completion credits leaked (h %0d, d %0d) beside an orphan (%m)", fc_h_used_q, fc_d_used_q);
      if (cr_orph_q && !cr_valid_q)
        $error("ep_dma_rd: orphaned completion credits without a completion in progress (%m)");
      // BUGS.md #6: a reissued tag's reservation is never charged for an earlier completion
      if (cpl_fire && rx_cpl_tlp_eop && !rx_cpl_tlp_sop && cr_orph_q && ret_valid)
        $error("ep_dma_rd: orphaned completion returned through its (reissued) tag (%m)");
      if (alloc && !op_free_any)
        $error("ep_dma_rd: op table overflow (%m)");
    end
  end
`endif

  logic unused_ok;
  assign unused_ok = ^{rx_cpl_tlp_strb, c_la[6:2], c_fmt[2], c_fmt[0], rx_cpl_tlp_hdr[124:111],
                       rx_cpl_tlp_hdr[109:106], rx_cpl_tlp_hdr[95:80], rx_cpl_tlp_hdr[76],
                       rx_cpl_tlp_hdr[39], rx_cpl_tlp_hdr[31:0]};
endmodule
`resetall
