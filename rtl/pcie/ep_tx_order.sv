// SPDX-License-Identifier: Apache-2.0
/// ep_tx_order: PCIe ordering between the endpoint's independent TX streams. A completion (tx_cpl)
/// or a read request (tx_rd) must not pass a posted write (tx_wr) the endpoint presented before
/// it (PCIe Base 6.0 §2.4.1, table 2-40: rows C/B, column Posted; no Relaxed Ordering is used).
/// The link side (hard IP / testbench) may take the three streams in any order, so this gate
/// holds a new frame of the guarded stream back until every MWr frame that was on tx_wr in an
/// earlier clock has been taken (its eop beat accepted). A frame already presented is never
/// withdrawn (valid stays up until ready). Posted writes are never held (they may pass).
/// Docs: rtl/pcie/README.md (TX ordering).
`resetall
`default_nettype none
module ep_tx_order (
  input  wire logic clk,
  input  wire logic rst,               // synchronous, active-high
  /// the posted stream, observed at the link (handshake only)
  input  wire logic wr_valid,
  input  wire logic wr_ready,
  input  wire logic wr_eop,
  /// guarded stream: from the source (sink side) ...
  input  wire logic s_valid,
  output logic      s_ready,
  input  wire logic s_eop,
  /// ... to the link (source side); the payload bypasses this module
  output logic      m_valid,
  input  wire logic m_ready
);
  logic wr_mid_q;    // a tx_wr frame has started (sop taken) and its eop is not taken yet
  logic wr_old_q;    // a tx_wr frame presented in an earlier clock is still open
  logic pres_q;      // the guarded stream is presenting a frame (gate stays open until eop)
  logic wr_open, wr_done, gate;

  // separate assignments, not one always_comb: m_valid must not even look as if it depended on
  // wr_ready (a wrapper that derives wr_ready from m_valid, e.g. one TX stream, would see a loop)
  assign wr_done = wr_valid && wr_ready && wr_eop;
  assign wr_open = (wr_valid || wr_mid_q) && !wr_done;
`ifdef MUTANT_TX_ORDER_BYPASS  // planted bug (make mutants): completions/reads may pass posted writes
  assign gate    = 1'b1;
`else
  assign gate    = pres_q || !wr_old_q;
`endif
  assign m_valid = s_valid && gate;
  assign s_ready = m_ready && gate;

  always_ff @(posedge clk) begin
    if (rst) begin
      wr_mid_q <= 1'b0;
      wr_old_q <= 1'b0;
      pres_q   <= 1'b0;
    end else begin
      if (wr_valid && wr_ready) wr_mid_q <= !wr_eop;
      wr_old_q <= wr_open;
      if (m_valid) pres_q <= !(m_ready && s_eop);
    end
  end

`ifndef SYNTHESIS
  // once presented, a frame stays presented until taken (no withdrawal by the gate)
  logic m_hold_q;
  always_ff @(posedge clk) begin
    if (rst) m_hold_q <= 1'b0;
    else     m_hold_q <= m_valid && !m_ready;
    if (!rst && m_hold_q && !m_valid) $error("ep_tx_order: valid dropped before ready (%m)");
  end
`endif
endmodule
`resetall
