// SPDX-License-Identifier: Apache-2.0
/// ep_spill_reg: full-throughput register slice on a valid/ready stream. Cuts the timing paths
/// of data/valid AND of ready (two entries: an output register and a skid register), so
/// `s_ready` is a flop and `m_valid`/`m_data` are flops. One transfer per clock sustained;
/// latency one cycle. Order preserved.
`resetall
`default_nettype none
module ep_spill_reg #(
  parameter int unsigned Width = 32   /// payload bits
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
  logic             a_valid_q, b_valid_q;    // a = output register, b = skid register
  logic [Width-1:0] a_data_q, b_data_q;

  assign m_valid = a_valid_q;
  assign m_data  = a_data_q;
  assign s_ready = !b_valid_q;

  logic s_fire, m_fire;
  assign s_fire = s_valid && s_ready;
  assign m_fire = a_valid_q && m_ready;

  always_ff @(posedge clk) begin
    if (rst) begin
      a_valid_q <= 1'b0;
      b_valid_q <= 1'b0;
    end else begin
      if (!a_valid_q || m_fire) begin
        // output register free at the edge: refill from skid first, else from input
        a_valid_q <= b_valid_q || s_fire;
        b_valid_q <= 1'b0;
      end else if (s_fire) begin
        b_valid_q <= 1'b1;                     // output stalled: park the new word
      end
    end
  end

  always_ff @(posedge clk) begin
    if (!a_valid_q || m_fire) begin
      a_data_q <= b_valid_q ? b_data_q : s_data;
    end
    if (s_fire && a_valid_q && !m_fire) b_data_q <= s_data;
  end
endmodule
`resetall
