// SPDX-License-Identifier: Apache-2.0
/// ep_ram_sdp: simple dual-port RAM (one write port, one read port, one clock).
/// Registered read: `rd_data` shows mem[rd_addr] one cycle after `rd_en`, and holds its value
/// while `rd_en` is low. Write-before-read on the same address returns the OLD data.
/// Byte/lane enables: `wr_be` has `BeWidth` lanes of `Width/BeWidth` bits each (BeWidth = 1:
/// whole word). Written as Yosys/Vivado infer block RAM (synth_xilinx maps it to RAMB18/36).
/// No reset: the contents are undefined after power-up (clients clear it with an init walk).
`resetall
`default_nettype none
module ep_ram_sdp #(
  parameter int unsigned Width   = 32,   /// bits per word
  parameter int unsigned Depth   = 512,  /// words
  parameter int unsigned BeWidth = 1     /// write-enable lanes per word (Width % BeWidth == 0)
) (
  input  wire logic                       clk,
  // write port
  input  wire logic                       wr_en,
  input  wire logic [$clog2(Depth)-1:0]   wr_addr,
  input  wire logic [BeWidth-1:0]         wr_be,
  input  wire logic [Width-1:0]           wr_data,
  // read port: rd_data valid the cycle after rd_en
  input  wire logic                       rd_en,
  input  wire logic [$clog2(Depth)-1:0]   rd_addr,
  output logic      [Width-1:0]           rd_data
);
  localparam int unsigned LaneWidth = Width / BeWidth;
  if (Width % BeWidth != 0) begin : gen_chk_be
    $fatal(1, "ep_ram_sdp: Width must be a multiple of BeWidth (%m)");
  end

  logic [Width-1:0] mem [Depth];

  always_ff @(posedge clk) begin
    for (int unsigned i = 0; i < BeWidth; i++) begin
      if (wr_en && wr_be[i]) mem[wr_addr][i*LaneWidth +: LaneWidth] <= wr_data[i*LaneWidth +: LaneWidth];
    end
  end

  always_ff @(posedge clk) begin
    if (rd_en) rd_data <= mem[rd_addr];
  end
endmodule
`resetall
