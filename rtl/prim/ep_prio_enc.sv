// SPDX-License-Identifier: Apache-2.0
/// ep_prio_enc: index of the lowest set bit of `req` (find-first-set), as a balanced tree.
/// A `for` loop "last hit wins" encoder elaborates to a chain of Width 2:1 muxes, which the
/// mapper does not always rebalance: in ep_dma_rd the 64-tag free search was ~15 LUT levels of
/// the MRd issue path (rtl/README.md "Timing"). Here node n of a heap-ordered binary tree holds
/// (any request below it, index of its lowest one); the left child covers the lower indices and
/// wins, so the depth is log2(Width) 2:1 mux stages (3..4 LUT levels for 64 inputs).
/// `any` = |req; `idx` = lowest set index, 0 when no bit is set (same as the loop form).
`resetall
`default_nettype none
module ep_prio_enc #(
  parameter int unsigned Width = 64,                          /// request bits (>= 1)
  localparam int unsigned IdxWidth = $clog2(Width > 1 ? Width : 2),
  localparam int unsigned Leaves = 2 ** IdxWidth              /// padded to a power of two
) (
  input  wire logic [Width-1:0]    req,
  output logic                     any,
  output logic [IdxWidth-1:0]      idx
);
  logic [2*Leaves-1:1]              node_any;
  logic [2*Leaves-1:1][IdxWidth-1:0] node_idx;

  always_comb begin
    for (int unsigned i = 0; i < Leaves; i++) begin
      node_any[Leaves + i] = (i < Width) ? req[i] : 1'b0;
      node_idx[Leaves + i] = IdxWidth'(i);
    end
    for (int unsigned n = Leaves - 1; n >= 1; n--) begin
      node_any[n] = node_any[2 * n] | node_any[2 * n + 1];
      node_idx[n] = node_any[2 * n] ? node_idx[2 * n] : node_idx[2 * n + 1];
    end
    any = node_any[1];
    idx = node_any[1] ? node_idx[1] : '0;
  end
endmodule
`resetall
