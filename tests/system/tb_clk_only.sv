// SPDX-License-Identifier: Apache-2.0
/// tb_clk_only: empty HDL toplevel for cocotb tests whose whole bench is Python (IOMMU root complex).
`resetall
`default_nettype none
module tb_clk_only (
  input wire logic clk
);
  logic unused_clk;
  assign unused_clk = clk;
endmodule
`resetall
