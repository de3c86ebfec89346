// SPDX-License-Identifier: Apache-2.0
/// ep_rr_arb: round-robin arbiter over NumReq requesters.
/// Semantics (like a valid/ready stream mux, rr_arb_tree style):
///  * `grant`/`grant_idx`/`grant_valid` are combinational from `req` and a priority pointer.
///    The winner is the first requesting index at or after the pointer (wrapping).
///  * The pointer moves only on `ack` (the grant was used: typically
///    `grant_valid && downstream_ready`), to one past the granted index. So the grant is stable
///    while `req` is stable and not acked: a requester must hold `req` until acked (like `valid`).
///  * Each requester is served at most once per NumReq acks while it keeps requesting (fair).
/// `ack` without `grant_valid` is ignored.
`resetall
`default_nettype none
module ep_rr_arb #(
  parameter int unsigned NumReq = 4   /// requesters (>= 1)
) (
  input  wire logic                              clk,
  input  wire logic                              rst,          // synchronous, active-high
  input  wire logic [NumReq-1:0]                 req,
  input  wire logic                              ack,          // grant consumed this cycle
  output logic      [NumReq-1:0]                 grant,        // one-hot, 0 when no request
  output logic      [$clog2(NumReq > 1 ? NumReq : 2)-1:0] grant_idx,
  output logic                                   grant_valid
);
  localparam int unsigned IdxWidth = $clog2(NumReq > 1 ? NumReq : 2);

  logic [IdxWidth-1:0] ptr_q;          // highest-priority index
  logic [NumReq-1:0]   mask;           // indices >= ptr_q
  logic [NumReq-1:0]   masked;

  always_comb begin
    for (int unsigned i = 0; i < NumReq; i++) mask[i] = (IdxWidth'(i) >= ptr_q);
    masked = req & mask;
    grant_idx = '0;
    // lowest set bit of masked, else lowest set bit of req (loop from the top: last hit wins)
    for (int i = NumReq - 1; i >= 0; i--) begin
      if (req[i]) grant_idx = IdxWidth'(i);
    end
    if (masked != '0) begin
      for (int i = NumReq - 1; i >= 0; i--) begin
        if (masked[i]) grant_idx = IdxWidth'(i);
      end
    end
    grant_valid = (req != '0);
    grant = '0;
    if (grant_valid) grant[grant_idx] = 1'b1;
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      ptr_q <= '0;
    end else if (ack && grant_valid) begin
`ifdef MUTANT_ARB_FIXED_PRIORITY  // planted bug (make mutants): the pointer never moves, index 0 starves the rest
      ptr_q <= '0;
`else
      ptr_q <= (32'(grant_idx) == NumReq - 1) ? '0 : grant_idx + 1'b1;
`endif
    end
  end
endmodule
`resetall
