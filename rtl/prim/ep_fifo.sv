// SPDX-License-Identifier: Apache-2.0
/// ep_fifo: synchronous FIFO on valid/ready streams, first-word-fall-through, one transfer per
/// clock in and out sustained.
///  * Depth <= FlopMaxDepth: register array, `m_data` read combinationally (LUTRAM/flops);
///    latency input -> output one cycle.
///  * Depth >  FlopMaxDepth: ep_ram_sdp (block RAM) + read register + ep_spill_reg, so
///    `m_data`/`m_valid` come from flops; latency three cycles; holds up to Depth + 3 words.
/// `s_ready` never depends on `s_valid`, `m_valid` never on `m_ready`. Depth: power of two, >= 2.
`resetall
`default_nettype none
module ep_fifo #(
  parameter int unsigned Width        = 32,  /// payload bits
  parameter int unsigned Depth        = 16,  /// words (power of two, >= 2)
  parameter int unsigned FlopMaxDepth = 16   /// largest depth built from registers
) (
  input  wire logic             clk,
  input  wire logic             rst,      // synchronous, active-high
  input  wire logic [Width-1:0] s_data,   // input stream (sink)
  input  wire logic             s_valid,
  output logic                  s_ready,
  output logic      [Width-1:0] m_data,   // output stream (source)
  output logic                  m_valid,
  input  wire logic             m_ready
);
  localparam int unsigned AddrWidth = $clog2(Depth);
  if (Depth < 2 || Depth != 2**AddrWidth) begin : gen_chk_depth
    $fatal(1, "ep_fifo: Depth must be a power of two >= 2 (%m)");
  end

  logic [AddrWidth:0] wr_ptr_q, rd_ptr_q;   // one extra bit tells full from empty
  logic               s_fire;
  logic [AddrWidth:0] fill;
  assign fill    = wr_ptr_q - rd_ptr_q;
`ifdef MUTANT_FIFO_OVERFLOW  // planted bug (make mutants): full test off by one, a full FIFO takes a word
  assign s_ready = (fill <= (AddrWidth+1)'(Depth));
`else
  assign s_ready = (fill != (AddrWidth+1)'(Depth));
`endif
  assign s_fire  = s_valid && s_ready;

  if (Depth <= FlopMaxDepth) begin : gen_flop
    logic [Width-1:0] mem_q [Depth];
    logic             m_fire;
    assign m_valid = (fill != '0);
    assign m_data  = mem_q[rd_ptr_q[AddrWidth-1:0]];
    assign m_fire  = m_valid && m_ready;

    always_ff @(posedge clk) begin
      if (rst) begin
        wr_ptr_q <= '0;
        rd_ptr_q <= '0;
      end else begin
        if (s_fire) wr_ptr_q <= wr_ptr_q + 1'b1;
        if (m_fire) rd_ptr_q <= rd_ptr_q + 1'b1;
      end
    end
    always_ff @(posedge clk) begin
      if (s_fire) mem_q[wr_ptr_q[AddrWidth-1:0]] <= s_data;
    end
  end else begin : gen_ram
    logic             rd_valid_q;   // rd_data of the RAM holds a word
    logic             out_ready;    // spill register takes a word
    logic             advance, rd_en;
    logic [Width-1:0] rd_data;

    assign advance = !rd_valid_q || out_ready;
    assign rd_en   = advance && (fill != '0);

    ep_ram_sdp #(.Width(Width), .Depth(Depth), .BeWidth(1)) u_ram (
      .clk,
      .wr_en   (s_fire),
      .wr_addr (wr_ptr_q[AddrWidth-1:0]),
      .wr_be   (1'b1),
      .wr_data (s_data),
      .rd_en,
      .rd_addr (rd_ptr_q[AddrWidth-1:0]),
      .rd_data
    );

    ep_spill_reg #(.Width(Width)) u_out (
      .clk, .rst,
      .s_data  (rd_data),
      .s_valid (rd_valid_q),
      .s_ready (out_ready),
      .m_data, .m_valid, .m_ready
    );

    always_ff @(posedge clk) begin
      if (rst) begin
        wr_ptr_q   <= '0;
        rd_ptr_q   <= '0;
        rd_valid_q <= 1'b0;
      end else begin
        if (s_fire) wr_ptr_q <= wr_ptr_q + 1'b1;
        if (rd_en)  rd_ptr_q <= rd_ptr_q + 1'b1;
        if (advance) rd_valid_q <= rd_en;
      end
    end
  end
`ifndef SYNTHESIS
  // a write when full would overwrite the oldest word; a read when empty would repeat one
  always_ff @(posedge clk) begin
    if (!rst && 32'(fill) > Depth) $error("ep_fifo: fill %0d beyond Depth (%m)", fill);
  end
`endif
endmodule
`resetall
