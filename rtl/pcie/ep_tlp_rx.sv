// SPDX-License-Identifier: Apache-2.0
/// ep_tlp_rx: host request receiver of the front end (docs: rtl/pcie/README.md).
/// Takes one TLP at a time from rx_req_tlp_*, checks it (type, framing, byte enables, 4 KiB
/// crossing, MPS, prefix), and then:
///  * CfgRd0/CfgWr0 to function 0 -> ep_cfg_space (one DW) + Cpl/CplD job for ep_tlp_tx;
///  * MRd hitting BAR0/BAR2   -> one register-bus read per DW, data to ep_tlp_tx, CplD job;
///  * MWr hitting BAR0/BAR2   -> payload stored, then one register-bus write per DW;
///  * anything non-posted it cannot serve (Cfg0 to functions 1-7, Cfg1, IO, MRdLk (CplLk),
///    AtomicOps, BAR miss, MSE=0, malformed, unsupported prefix, PASID prefix while PASID Enable
///    is clear) -> UR completion job; posted ones are dropped and recorded (Vendor-Defined Type 0
///    message: Unsupported Request; Type 1: silently dropped).
/// Register requests go out in TLP order on one in-order bus. A posted write does not wait for
/// its register responses (the next TLP is taken in the cycle of its last DW); a read, a config
/// request or a zero-length read waits until every earlier write has been answered. Completion
/// data space is reserved (credits) before a read is issued, so the response channel never has
/// to stall. A non-posted request that cannot get its completion resources (completion job slot
/// or data credits busy because tx_cpl is back-pressured) is parked in a one-entry side slot
/// and posted requests behind it are served (PCIe ordering: posted must be able to pass
/// non-posted); a further non-posted request waits on the stream until the parked one goes.
`resetall
`default_nettype none
module ep_tlp_rx #(
  parameter int unsigned DataWidth    = 256,  /// TLP data width, power of two, 64 .. 1024
  parameter int unsigned Bar0SizeLog2 = 20,   /// BAR0 size = 2**Bar0SizeLog2 bytes
  parameter int unsigned CplBufDw     = 32,   /// completion data FIFO depth in ep_tlp_tx (DWs)
  localparam int unsigned S = DataWidth / 32  /// DWs per beat (derived, do not override)
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
  /// config space access (source; ep_cfg_space is always ready, rdata the next cycle)
  output logic                      m_cfg_valid,
  output logic                      m_cfg_write,
  output logic [9:0]                m_cfg_dw,
  output logic [31:0]               m_cfg_wdata,
  output logic [3:0]                m_cfg_be,
  output logic [15:0]               m_cfg_target_id,
  input  wire logic [31:0]          s_cfg_rdata,
  /// configuration state
  input  wire logic                 cfg_mem_en,
  input  wire logic [63:0]          cfg_bar0_addr,
  input  wire logic [63:0]          cfg_bar2_addr,
  input  wire logic [63:0]          cfg_bar2_mask,
  input  wire logic [2:0]           cfg_max_payload,
  input  wire logic                 cfg_pasid_en,   // PASID Control.PASID Enable
  /// register bus to ep_core (source): one DW per request
  output logic                      m_reg_valid,
  input  wire logic                 m_reg_ready,
  output logic                      m_reg_bar,
  output logic [31:0]               m_reg_addr,
  output logic                      m_reg_write,
  output logic [31:0]               m_reg_wdata,
  output logic [3:0]                m_reg_be,
  /// register responses (status: one per request, in order, no ready)
  input  wire logic                 s_reg_rsp_valid,
  input  wire logic [31:0]          s_reg_rsp_rdata,
  /// completion jobs to ep_tlp_tx (source)
  output logic                      m_job_valid,
  input  wire logic                 m_job_ready,
  output logic [2:0]                m_job_status,
  output logic                      m_job_data,   // CplD (1) or Cpl (0)
  output logic [10:0]               m_job_len,    // DWs of data (1 .. 1024)
  output logic [12:0]               m_job_bc,     // byte count of the whole request
  output logic [11:0]               m_job_addr,   // request address [11:2] + first-byte offset
  output logic [15:0]               m_job_rid,
  output logic [9:0]                m_job_tag,
  output logic [2:0]                m_job_tc,
  output logic [2:0]                m_job_attr,
  output logic                      m_job_lk,     // CplLk (answer to MRdLk)
  /// completion data DWs to ep_tlp_tx (status: space reserved by credits, no ready)
  output logic                      m_dat_valid,
  output logic [31:0]               m_dat_data,
  input  wire logic                 s_dat_pop,    // ep_tlp_tx consumed one DW: credit back
  /// no register request outstanding (FLR may reset ep_core now)
  output logic                      m_reg_idle,
  /// header and prefix of the TLP behind this cycle's ev_* pulse (AER Header / Prefix Log)
  output logic [127:0]              m_ev_hdr,
  output logic [31:0]               m_ev_prfx,
  /// error events (single-cycle pulses) for ep_cfg_space
  output logic                      ev_ur_np,
  output logic                      ev_ur_p,
  output logic                      ev_malformed,
  output logic                      ev_poisoned
);
  localparam int unsigned BufBeats = ep_pcie_pkg::MAX_PAYLOAD_DW / S;  // MWr payload buffer
  localparam int unsigned BeatIdxW = $clog2(BufBeats);
  localparam int unsigned LaneW    = $clog2(S);
  localparam int unsigned CrW      = $clog2(CplBufDw) + 1;
  if (DataWidth < 64 || DataWidth > 1024 || DataWidth != 2 ** $clog2(DataWidth)) begin : gen_chk_dw
    $fatal(1, "DataWidth must be a power of two in 64 .. 1024 (%m)");
  end
  if (CplBufDw < 2 || CplBufDw != 2 ** $clog2(CplBufDw)) begin : gen_chk_buf
    $fatal(1, "CplBufDw must be a power of two >= 2 (%m)");
  end
  localparam logic [63:0] Bar0Mask = ~((64'd1 << Bar0SizeLog2) - 64'd1);

  typedef enum logic [2:0] {StIdle, StBody, StCheck, StDecide, StCfg, StCfgRsp, StIssue, StWait} state_e;
  typedef enum logic [2:0] {ActDrop, ActUr, ActCfg, ActRead, ActWrite, ActZeroRd} act_e;

  state_e        state_q, state_d;
  // TLP being handled
  logic [127:0]  hdr_q;
  logic [31:0]   prfx_q;
  logic [11:0]   cnt_q;        // payload DWs received (saturating)
  logic          frame_bad_q;  // strobes not contiguous / extra beats / truncated
  logic [BeatIdxW:0] beat_q;   // beats received (saturating at BufBeats)
  logic [DataWidth-1:0] buf_mem [BufBeats];
  // issue state
  logic          rd_q, bar_q, first_q;
  logic [31:0]   off_q;
  logic [10:0]   left_q;       // DWs still to request
  logic [6:0]    dwi_q;        // payload DW index (writes)
  logic [11:0]   os_q;         // register requests not answered yet
  logic [CrW-1:0] cr_q;        // completion data slots reserved
  // outputs held in registers
  logic          reg_valid_q;
  logic [31:0]   reg_addr_q, reg_wdata_q;
  logic [3:0]    reg_be_q;
  logic          reg_bar_q, reg_write_q;
  logic          job_valid_q;

  // ---- header fields ------------------------------------------------------------------------
  logic [2:0]  fmt;
  logic [4:0]  typ;
  logic        has_data, is4, ep;
  logic [2:0]  tc, attr;
  logic [10:0] len_dw;
  logic [15:0] rid;
  logic [9:0]  tag;
  logic [3:0]  fbe, lbe;
  logic [63:0] addr;
  assign fmt      = hdr_q[ep_pcie_pkg::HDR_FMT_LSB +: 3];
  assign typ      = hdr_q[ep_pcie_pkg::HDR_TYPE_LSB +: 5];
  assign has_data = fmt[1];
  assign is4      = fmt[0];
  assign ep       = hdr_q[ep_pcie_pkg::HDR_EP];
  assign tc       = hdr_q[ep_pcie_pkg::HDR_TC_LSB +: 3];
  assign attr     = {hdr_q[ep_pcie_pkg::HDR_ATTR2], hdr_q[ep_pcie_pkg::HDR_ATTR_LSB +: 2]};
  assign len_dw   = {hdr_q[ep_pcie_pkg::HDR_LEN_LSB +: 10] == 10'd0, hdr_q[ep_pcie_pkg::HDR_LEN_LSB +: 10]};
  assign rid      = hdr_q[ep_pcie_pkg::HDR_RID_LSB +: 16];
  assign tag      = {hdr_q[ep_pcie_pkg::HDR_T9], hdr_q[ep_pcie_pkg::HDR_T8], hdr_q[ep_pcie_pkg::HDR_TAG_LSB +: 8]};
  assign lbe      = hdr_q[ep_pcie_pkg::HDR_LBE_LSB +: 4];
  assign fbe      = hdr_q[ep_pcie_pkg::HDR_FBE_LSB +: 4];
  assign addr     = is4 ? {hdr_q[63:32], hdr_q[31:2], 2'b00} : {32'h0, hdr_q[63:34], 2'b00};

  // ---- classification -------------------------------------------------------------------------
  logic t_mem, t_memlk, t_io, t_cfg0, t_cfg1, t_msg, t_atomic, t_cpl, known, np;
  logic t_vdm0, t_vdm1, fn_absent;
  always_comb begin
    t_mem    = typ == ep_pcie_pkg::TYPE_MEM && !fmt[2];
    t_memlk  = typ == ep_pcie_pkg::TYPE_MEM_LK && fmt[2:1] == 2'b00;
    t_io     = typ == ep_pcie_pkg::TYPE_IO && !fmt[2];
    t_cfg0   = typ == ep_pcie_pkg::TYPE_CFG0 && !fmt[2];
    t_cfg1   = typ == ep_pcie_pkg::TYPE_CFG1 && !fmt[2];
    t_msg    = typ[4:3] == ep_pcie_pkg::TYPE_MSG_HI && !fmt[2] && is4;
    t_atomic = (typ == ep_pcie_pkg::TYPE_FETCHADD || typ == ep_pcie_pkg::TYPE_SWAP
                || typ == ep_pcie_pkg::TYPE_CAS) && fmt[2:1] == 2'b01;
    t_cpl    = (typ == ep_pcie_pkg::TYPE_CPL || typ == ep_pcie_pkg::TYPE_CPL_LK) && !fmt[2] && !is4;
    known    = t_mem || t_memlk || t_io || t_cfg0 || t_cfg1 || t_msg || t_atomic || t_cpl;
    np       = (t_mem && !has_data) || t_memlk || t_io || t_cfg0 || t_cfg1 || t_atomic;
    // Vendor-Defined Messages (message code in byte 7)
    t_vdm0   = t_msg && hdr_q[71:64] == ep_pcie_pkg::MSG_VDM_TYPE0;
    t_vdm1   = t_msg && hdr_q[71:64] == ep_pcie_pkg::MSG_VDM_TYPE1;
    // single-function device without ARI: functions 1..7 do not exist
    fn_absent = hdr_q[ep_pcie_pkg::HDR_CFG_TID_LSB +: 3] != 3'd0;
  end

  // ---- checks ---------------------------------------------------------------------------------
  logic [7:0]  mps_dw;
  logic        frame_bad, be_bad, cross4k, too_long, mem_bad, cfgio_bad;
  logic        prfx_present, prfx_not_e2e, prfx_pasid, prfx_bad, prfx_unsup, malformed;
  logic        prfx_pasid_off;
  logic        fbe_contig, lbe_contig, contig_needed;
  always_comb begin
    mps_dw        = 8'd32 << (cfg_max_payload > 3'd2 ? 3'd2 : cfg_max_payload);  // <= 512 B supported
    frame_bad     = frame_bad_q || (has_data && cnt_q != {1'b0, len_dw});
    fbe_contig    = fbe == 4'b1111 || fbe == 4'b1110 || fbe == 4'b1100 || fbe == 4'b1000;
    lbe_contig    = lbe == 4'b1111 || lbe == 4'b0111 || lbe == 4'b0011 || lbe == 4'b0001;
    contig_needed = len_dw > 11'd2 || (len_dw == 11'd2 && addr[2]);
    be_bad        = (len_dw == 11'd1 && lbe != 4'h0)
                    || (len_dw > 11'd1 && (fbe == 4'h0 || lbe == 4'h0))
                    || (contig_needed && !(fbe_contig && lbe_contig));
    cross4k       = ({1'b0, addr[11:2]} + len_dw) > 11'd1024;
    too_long      = has_data && len_dw > {3'b0, mps_dw};
    mem_bad       = be_bad || cross4k || too_long;
    cfgio_bad     = is4 || len_dw != 11'd1 || lbe != 4'h0 || tc != 3'h0 || attr != 3'h0;
    prfx_present  = prfx_q != 32'h0;
    prfx_not_e2e  = prfx_present && (prfx_q[31:29] != ep_pcie_pkg::FMT_PREFIX || !prfx_q[28]);
    prfx_pasid    = prfx_q[31:24] == ep_pcie_pkg::PRFX_PASID;
    // PASID is allowed on memory requests (and messages); on Cfg/IO/Cpl it is malformed
    prfx_bad      = prfx_not_e2e || (prfx_pasid && (t_io || t_cfg0 || t_cfg1 || t_cpl));
    prfx_unsup    = prfx_present && !prfx_not_e2e && !prfx_pasid;  // other End-End prefix: UR
    // a PASID prefix while PASID Enable is clear is not accepted either: UR / dropped
    prfx_pasid_off = prfx_present && !prfx_not_e2e && prfx_pasid && !cfg_pasid_en;
    malformed     = frame_bad || prfx_bad
                    || ((t_mem || t_memlk) && mem_bad)
                    || ((t_cfg0 || t_cfg1 || t_io) && cfgio_bad);
  end

  // ---- BAR decode -----------------------------------------------------------------------------
  logic        bar0_hit, bar2_hit;
  logic [31:0] bar_off;
  assign bar0_hit = ((addr ^ cfg_bar0_addr) & Bar0Mask) == 64'h0;
  assign bar2_hit = ((addr ^ cfg_bar2_addr) & cfg_bar2_mask) == 64'h0;
  assign bar_off  = bar0_hit ? addr[31:0] & ~Bar0Mask[31:0] : addr[31:0] & ~cfg_bar2_mask[31:0];

  // ---- action ---------------------------------------------------------------------------------
  act_e act;
  logic a_ev_ur_np, a_ev_ur_p, a_ev_mal, a_ev_poison;
  always_comb begin
    act = ActDrop;
    {a_ev_ur_np, a_ev_ur_p, a_ev_mal, a_ev_poison} = 4'b0;
    if (!known) begin
      a_ev_mal = !t_cpl;                    // stray completions are dropped silently
    end else if (malformed) begin
      a_ev_mal = 1'b1;
      act = np ? ActUr : ActDrop;           // UR completion so the requester never hangs
    end else if (prfx_unsup || prfx_pasid_off) begin
      a_ev_ur_np = np;
      a_ev_ur_p = !np && !t_msg;
      act = np ? ActUr : ActDrop;
    end else if (t_msg) begin
      // no message is meaningful to this endpoint: Vendor-Defined Type 0 is an Unsupported
      // Request (posted: logged, no completion), Type 1 and all others are silently dropped
      a_ev_ur_p = t_vdm0;
      act = ActDrop;
    end else if (t_cfg0) begin
      if (fn_absent) begin                  // enumeration probe of a function that does not
        act = ActUr;                        // exist: UR, not logged as an error
      end else if (has_data && ep) begin    // poisoned CfgWr: not applied, UR
        a_ev_poison = 1'b1;
        act = ActUr;
      end else begin
        act = ActCfg;
      end
    end else if (t_cfg1 || t_io || t_memlk || t_atomic) begin
      a_ev_ur_np = 1'b1;
      act = ActUr;
    end else if (!has_data) begin           // MRd
      if ((bar0_hit || bar2_hit) && cfg_mem_en) begin
        act = (len_dw == 11'd1 && fbe == 4'h0) ? ActZeroRd : ActRead;
      end else begin
        a_ev_ur_np = 1'b1;
        act = ActUr;
      end
    end else begin                          // MWr
      if (ep) begin
        a_ev_poison = 1'b1;
      end else if ((bar0_hit || bar2_hit) && cfg_mem_en) begin
        act = (len_dw == 11'd1 && fbe == 4'h0) ? ActDrop : ActWrite;  // zero-length write: no-op
      end else begin
        a_ev_ur_p = 1'b1;
      end
    end
  end

  // byte count and first-byte offset of a memory read
  logic [1:0]  fbe_off, fbe_last, lbe_pad;
  logic [12:0] rd_bc;
  always_comb begin
    fbe_off  = fbe[0] ? 2'd0 : fbe[1] ? 2'd1 : fbe[2] ? 2'd2 : fbe[3] ? 2'd3 : 2'd0;
    fbe_last = fbe[3] ? 2'd3 : fbe[2] ? 2'd2 : fbe[1] ? 2'd1 : 2'd0;
    lbe_pad  = lbe[3] ? 2'd0 : lbe[2] ? 2'd1 : lbe[1] ? 2'd2 : 2'd3;
    if (len_dw == 11'd1) begin
      rd_bc = fbe == 4'h0 ? 13'd1 : 13'(fbe_last) - 13'(fbe_off) + 13'd1;
    end else begin
      rd_bc = {len_dw, 2'b00} - 13'(fbe_off) - 13'(lbe_pad);
    end
  end
  logic mem_rd_req;
  assign mem_rd_req = t_mem && !has_data && !malformed;

  // ---- decide / issue control -------------------------------------------------------------------
  // the decision is registered in StCheck (timing cut), acted on in StDecide; a non-posted
  // request whose completion resources are busy is parked in the np_* slot (see header)
  act_e        act_q;
  logic        bar_sel_q, mem_rd_req_q;
  logic [31:0] bar_off_q;
  logic [12:0] rd_bc_q;
  logic [1:0]  fbe_off_q;
  logic [3:0]  ev_q;  // {ur_np, ur_p, malformed, poisoned}
  logic [31:0] dw0_q; // first payload DW (CfgWr data)
  // parked non-posted request
  logic        np_v_q;
  logic [127:0] np_hdr_q;
  act_e        np_act_q;
  logic        np_bar_sel_q, np_mem_rd_req_q;
  logic [31:0] np_bar_off_q, np_dw0_q, np_prfx_q;
  logic [12:0] np_rd_bc_q;
  logic [1:0]  np_fbe_off_q;
  logic [3:0]  np_ev_q;

  logic needs_job, needs_credit, credit_ok, rd_credit_ok, blk_cpl, blk_os, decide_go, park;
  logic restore;
  logic [CrW-1:0] cr_free;
  logic [10:0]    rd_need;
  assign needs_job    = act_q == ActUr || act_q == ActCfg || act_q == ActRead || act_q == ActZeroRd;
  assign needs_credit = (act_q == ActCfg && !has_data) || act_q == ActZeroRd;
  assign credit_ok    = cr_q < CrW'(CplBufDw);
  assign cr_free      = CrW'(CplBufDw) - cr_q;
  assign rd_need      = len_dw > 11'(CplBufDw) ? 11'(CplBufDw) : len_dw;
  assign rd_credit_ok = 11'(cr_free) >= rd_need;
  // blocked on the completion path (may stay so while tx_cpl is back-pressured): park
  assign blk_cpl      = (needs_job && job_valid_q) || (needs_credit && !credit_ok)
                        || (act_q == ActRead && !rd_credit_ok);
  // a non-posted request waits until every earlier posted write has been answered
  assign blk_os       = needs_job && (os_q != 12'd0 || reg_valid_q);
  assign decide_go    = state_q == StDecide && !blk_cpl && !blk_os;
  assign park         = state_q == StDecide && blk_cpl && !np_v_q;
  // the parked request goes again once the job slot is free and all data credits are back
  assign restore      = state_q == StIdle && np_v_q && !job_valid_q && cr_q == '0;

  always_ff @(posedge clk) begin
    if (state_q == StCheck) begin
      act_q        <= act;
      bar_sel_q    <= !bar0_hit;
      bar_off_q    <= bar_off;
      rd_bc_q      <= rd_bc;
      fbe_off_q    <= fbe_off;
      mem_rd_req_q <= mem_rd_req;
      ev_q         <= {a_ev_ur_np, a_ev_ur_p, a_ev_mal, a_ev_poison};
    end else if (restore) begin
      act_q        <= np_act_q;
      bar_sel_q    <= np_bar_sel_q;
      bar_off_q    <= np_bar_off_q;
      rd_bc_q      <= np_rd_bc_q;
      fbe_off_q    <= np_fbe_off_q;
      mem_rd_req_q <= np_mem_rd_req_q;
      ev_q         <= np_ev_q;
    end
    if (park) begin
      np_hdr_q        <= hdr_q;
      np_act_q        <= act_q;
      np_bar_sel_q    <= bar_sel_q;
      np_bar_off_q    <= bar_off_q;
      np_rd_bc_q      <= rd_bc_q;
      np_fbe_off_q    <= fbe_off_q;
      np_mem_rd_req_q <= mem_rd_req_q;
      np_ev_q         <= ev_q;
      np_dw0_q        <= dw0_q;
      np_prfx_q       <= prfx_q;
    end
  end

  logic beat_fire, issue, reg_fire, last_issue, take_sop, in_posted, rdy_idle, rdy_issue;
  assign beat_fire  = rx_req_tlp_valid && rx_req_tlp_ready;
  assign reg_fire   = reg_valid_q && m_reg_ready;
  assign issue      = state_q == StIssue && left_q != 11'd0 && (!reg_valid_q || m_reg_ready)
                      && (!rd_q || credit_ok);
  assign last_issue = left_q == 11'd1;
  // the offered TLP is posted (MWr, Msg/MsgD): it may pass a parked non-posted request
  assign in_posted  = (rx_req_tlp_hdr[ep_pcie_pkg::HDR_TYPE_LSB +: 5] == ep_pcie_pkg::TYPE_MEM
                       && rx_req_tlp_hdr[ep_pcie_pkg::HDR_FMT_LSB + 1]
                       && !rx_req_tlp_hdr[ep_pcie_pkg::HDR_FMT_LSB + 2])
                      || rx_req_tlp_hdr[ep_pcie_pkg::HDR_TYPE_LSB + 3 +: 2] == ep_pcie_pkg::TYPE_MSG_HI;
  assign rdy_idle   = state_q == StIdle && !restore && (!np_v_q || in_posted || !rx_req_tlp_sop);
  // the next TLP is taken in the cycle the last DW of a write goes to the register bus
  assign rdy_issue  = state_q == StIssue && !rd_q && issue && last_issue && rx_req_tlp_sop
                      && (!np_v_q || in_posted);
  assign take_sop   = beat_fire && rx_req_tlp_sop && state_q != StBody;

  always_comb begin
    rx_req_tlp_ready = rdy_idle || rdy_issue || (state_q == StBody && !rx_req_tlp_sop);
  end

  // popcount / contiguity of the beat's strobes
  logic [LaneW:0] strb_cnt;
  logic           strb_contig, strb_full;
  always_comb begin
    strb_cnt = '0;
    for (int i = 0; i < S; i++) strb_cnt = strb_cnt + (LaneW + 1)'(rx_req_tlp_strb[i]);
    strb_contig = (rx_req_tlp_strb & (rx_req_tlp_strb + 1'b1)) == '0;
    strb_full   = &rx_req_tlp_strb;
  end

  always_comb begin
    state_d = state_q;
    unique case (state_q)
      StIdle:   if (restore) state_d = StDecide;
                else if (take_sop) state_d = rx_req_tlp_eop ? StCheck : StBody;
      StBody:   if (rx_req_tlp_valid && (rx_req_tlp_sop || rx_req_tlp_eop)) state_d = StCheck;
      StCheck:  state_d = StDecide;
      StDecide: if (decide_go) begin
        unique case (act_q)
          ActCfg:             state_d = StCfg;
          ActRead, ActWrite:  state_d = StIssue;
          default:            state_d = StIdle;
        endcase
      end else if (park) begin
        state_d = StIdle;
      end
      StCfg:    state_d = StCfgRsp;
      StCfgRsp: state_d = StIdle;
      StIssue:  if (issue && last_issue) begin
        if (rd_q)          state_d = StWait;
        else if (take_sop) state_d = rx_req_tlp_eop ? StCheck : StBody;
        else               state_d = StIdle;
      end
      StWait:   if (os_q == 12'd0 && !reg_valid_q) state_d = StIdle;
      default:  state_d = StIdle;
    endcase
  end

  // ---- sequential ---------------------------------------------------------------------------------
  logic [DataWidth-1:0] buf_rd;
  assign buf_rd = buf_mem[BeatIdxW'(dwi_q >> LaneW)];

  logic [BeatIdxW:0] wr_beat;  // buffer slot of the beat being accepted
  assign wr_beat = state_q == StBody ? beat_q : '0;
  always_ff @(posedge clk) begin
    if (beat_fire && wr_beat < (BeatIdxW + 1)'(BufBeats)) buf_mem[wr_beat[BeatIdxW-1:0]] <= rx_req_tlp_data;
  end

  always_ff @(posedge clk) begin
    state_q <= state_d;
    // receive
    if (take_sop) begin
      hdr_q       <= rx_req_tlp_hdr;
      prfx_q      <= rx_req_tlp_prfx;
      dw0_q       <= rx_req_tlp_data[31:0];
      cnt_q       <= 12'(strb_cnt);
      frame_bad_q <= !strb_contig || (!rx_req_tlp_eop && !strb_full);
      if (!rx_req_tlp_hdr[126] && !rx_req_tlp_eop) frame_bad_q <= 1'b1;  // no-data TLP, >1 beat
      beat_q      <= (BeatIdxW + 1)'(1);
    end else if (state_q == StBody && beat_fire) begin
      cnt_q  <= cnt_q > 12'd2047 - 12'(S) ? 12'd2047 : cnt_q + 12'(strb_cnt);
      if (!strb_contig || (!rx_req_tlp_eop && !strb_full) || !has_data) frame_bad_q <= 1'b1;
      if (beat_q < (BeatIdxW + 1)'(BufBeats)) beat_q <= beat_q + 1'b1;
    end else if (state_q == StBody && rx_req_tlp_valid && rx_req_tlp_sop) begin
      frame_bad_q <= 1'b1;  // next TLP started before this one's eop: truncated
    end else if (restore) begin
      hdr_q  <= np_hdr_q;
      dw0_q  <= np_dw0_q;
      prfx_q <= np_prfx_q;
    end
    if (park) np_v_q <= 1'b1;
    if (restore) np_v_q <= 1'b0;
    // decide: set up issue state and completion job
    if (decide_go) begin
      rd_q    <= act_q == ActRead;
      bar_q   <= bar_sel_q;
      off_q   <= bar_off_q;
      left_q  <= len_dw;
      first_q <= 1'b1;
      dwi_q   <= 7'd0;
      if (needs_job) begin
        job_valid_q  <= 1'b1;
        m_job_status <= act_q == ActUr ? ep_pcie_pkg::CPL_UR : ep_pcie_pkg::CPL_SC;
        m_job_data   <= act_q == ActRead || act_q == ActZeroRd || (act_q == ActCfg && !has_data);
        m_job_len    <= (act_q == ActRead) ? len_dw : 11'd1;
        m_job_bc     <= (act_q == ActCfg || !mem_rd_req_q) ? 13'd4 : rd_bc_q;
        m_job_addr   <= (act_q == ActCfg || !mem_rd_req_q) ? 12'h0 : {addr[11:2], fbe_off_q};
        m_job_rid    <= rid;
        m_job_tag    <= tag;
        m_job_tc     <= tc;
        m_job_attr   <= attr;
        m_job_lk     <= t_memlk;
      end
    end
    if (job_valid_q && m_job_ready) job_valid_q <= 1'b0;
    // issue register requests
    if (reg_fire) reg_valid_q <= 1'b0;
    if (issue) begin
      reg_valid_q <= 1'b1;
      reg_bar_q   <= bar_q;
      reg_addr_q  <= off_q;
      reg_write_q <= !rd_q;
      reg_wdata_q <= buf_rd[32 * dwi_q[LaneW-1:0] +: 32];
      reg_be_q    <= first_q ? fbe : (last_issue ? lbe : 4'hF);
      off_q       <= off_q + 32'd4;
      left_q      <= left_q - 11'd1;
      first_q     <= 1'b0;
      dwi_q       <= dwi_q + 7'd1;
    end
    os_q <= os_q + 12'(issue) - 12'(s_reg_rsp_valid);
    cr_q <= cr_q + CrW'((issue && rd_q) || (decide_go && needs_credit)) - CrW'(s_dat_pop);

    if (rst) begin
      state_q     <= StIdle;
      job_valid_q <= 1'b0;
      reg_valid_q <= 1'b0;
      os_q        <= 12'd0;
      cr_q        <= '0;
      frame_bad_q <= 1'b0;
      beat_q      <= '0;
      np_v_q      <= 1'b0;
      rd_q        <= 1'b0;
    end
  end

  // ---- outputs ------------------------------------------------------------------------------------
  assign m_cfg_valid     = state_q == StCfg;
  assign m_cfg_write     = has_data;
  assign m_cfg_dw        = hdr_q[ep_pcie_pkg::HDR_CFG_REG_LSB +: 10];
  assign m_cfg_wdata     = dw0_q;
  assign m_cfg_be        = fbe;
  assign m_cfg_target_id = hdr_q[ep_pcie_pkg::HDR_CFG_TID_LSB +: 16];

  assign m_reg_valid = reg_valid_q;
  assign m_reg_bar   = reg_bar_q;
  assign m_reg_addr  = reg_addr_q;
  assign m_reg_write = reg_write_q;
  assign m_reg_wdata = reg_wdata_q;
  assign m_reg_be    = reg_be_q;

  assign m_job_valid = job_valid_q;
  assign m_reg_idle  = os_q == 12'd0 && !reg_valid_q && state_q != StIssue;
  assign m_ev_hdr    = hdr_q;
  assign m_ev_prfx   = prfx_q;

  // completion data: register read responses, config read data, or the zero-length read's DW
  assign m_dat_valid = (s_reg_rsp_valid && rd_q) || (state_q == StCfgRsp && !has_data)
                       || (decide_go && act_q == ActZeroRd);
  assign m_dat_data  = state_q == StCfgRsp ? s_cfg_rdata
                       : (s_reg_rsp_valid ? s_reg_rsp_rdata : 32'h0);

  assign ev_ur_np     = decide_go && ev_q[3];
  assign ev_ur_p      = decide_go && ev_q[2];
  assign ev_malformed = decide_go && ev_q[1];
  assign ev_poisoned  = decide_go && ev_q[0];

  logic unused_rx;
  assign unused_rx = ^{hdr_q[113:111], hdr_q[107:106], hdr_q[47:44], hdr_q[33:32], t_cpl, t_vdm1};

`ifndef SYNTHESIS
  // ---- invariants, checked in every simulation ---------------------------------------------------
  logic        chk_reg_hold_q, chk_job_hold_q;
  logic [31:0] chk_reg_addr_q, chk_reg_wdata_q;
  logic [9:0]  chk_job_tag_q;
  always_ff @(posedge clk) begin
    chk_reg_hold_q  <= !rst && reg_valid_q && !m_reg_ready;
    chk_job_hold_q  <= !rst && job_valid_q && !m_job_ready;
    chk_reg_addr_q  <= reg_addr_q;
    chk_reg_wdata_q <= reg_wdata_q;
    chk_job_tag_q   <= m_job_tag;
    if (!rst) begin
      // valid held (and its payload stable) until ready
      if (chk_reg_hold_q && !(reg_valid_q && reg_addr_q == chk_reg_addr_q
                              && reg_wdata_q == chk_reg_wdata_q))
        $error("ep_tlp_rx: m_reg request dropped or changed before m_reg_ready (%m)");
      if (chk_job_hold_q && !(job_valid_q && m_job_tag == chk_job_tag_q))
        $error("ep_tlp_rx: completion job dropped or changed before m_job_ready (%m)");
      // completion data FIFO in ep_tlp_tx never overflows; counters never wrap
      if (cr_q > CrW'(CplBufDw)) $error("ep_tlp_rx: completion data credits overrun (%m)");
      if (s_reg_rsp_valid && os_q == 12'd0 && !issue)
        $error("ep_tlp_rx: register response without an outstanding request (%m)");
      // exactly one completion per non-posted request, none for posted ones
      if (decide_go && needs_job != np) $error("ep_tlp_rx: completion job count != non-posted (%m)");
      if (park && np_v_q) $error("ep_tlp_rx: second non-posted request parked (%m)");
    end
  end
`endif
endmodule
`resetall
