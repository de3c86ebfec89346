// SPDX-License-Identifier: Apache-2.0
/// ep_adi_switch: the embedded switch's forwarding table (RAM, one entry per switch address).
/// Entry A = {valid, dst ADI}: a SEND naming switch address A goes to that ADI, subject to the
/// group check done by ep_adi_state (RX_ALLOC). Only the PF writes the table (BAR0 `switch`
/// external block); lookups come from the op engine. Cleared by an init walk after reset.
`resetall
`default_nettype none
module ep_adi_switch #(
  parameter int unsigned NumAdi = 4   /// table entries (= ADIs), power of two
) (
  input  wire logic                      clk,
  input  wire logic                      rst,            // synchronous, active-high
  output logic                           init_done,
  // BAR0 `switch` block (etana external: request pulse, ack later)
  input  wire logic                      s_csr_req,
  input  wire logic [13:0]               s_csr_addr,
  input  wire logic                      s_csr_wr,
  input  wire logic [31:0]               s_csr_wdata,
  output logic                           s_csr_wr_ack,
  output logic                           s_csr_rd_ack,
  output logic [31:0]                    s_csr_rdata,
  // lookup (sink) and result (status, no ready; one per lookup, in order)
  input  wire logic                      s_lookup_valid,
  output logic                           s_lookup_ready,
  input  wire logic [15:0]               s_lookup_addr,  // switch address from the descriptor
  output logic                           m_result_valid,
  output logic                           m_result_hit,   // entry valid and in range
  output logic [$clog2(NumAdi)-1:0]      m_result_adi
);
  localparam int unsigned AdiW = $clog2(NumAdi);

  logic            init_q;
  logic [AdiW-1:0] init_adi_q;
  logic            csr_pend_q, csr_wr_q, csr_oob_q;
  logic [AdiW-1:0] csr_idx_q;
  logic [31:0]     csr_wdata_q;
  logic            rd_csr_q, rd_lookup_q, lookup_oob_q;
  logic [31:0]     rd_data;
  logic            wr_en, rd_en;
  logic [AdiW-1:0] wr_addr, rd_addr;
  logic [31:0]     wr_data;

  ep_ram_sdp #(.Width(32), .Depth(NumAdi), .BeWidth(1)) u_ram (
    .clk, .wr_en, .wr_addr, .wr_be(1'b1), .wr_data, .rd_en, .rd_addr, .rd_data
  );

  assign init_done = !init_q;

  logic csr_oob;                            // entry >= NumAdi (none when NumAdi = 4096)
  if (NumAdi < 4096) begin : gen_oob
    assign csr_oob = (s_csr_addr[13:2] >= 12'(NumAdi));
  end else begin : gen_no_oob
    assign csr_oob = 1'b0;
  end
  wire busy       = init_q || rd_csr_q;
  wire take_csr   = !busy && csr_pend_q;
  assign s_lookup_ready = !init_q && !take_csr && !csr_pend_q;
  wire take_lookup = s_lookup_valid && s_lookup_ready;

  always_comb begin
    wr_en   = init_q || (take_csr && csr_wr_q && !csr_oob_q);
    wr_addr = init_q ? init_adi_q : csr_idx_q;
    wr_data = init_q ? 32'd0 : {csr_wdata_q[31], 15'd0, csr_wdata_q[15:0]};
    rd_en   = (take_csr && !csr_wr_q) || take_lookup;
    rd_addr = take_csr ? csr_idx_q : s_lookup_addr[AdiW-1:0];
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      init_q       <= 1'b1;
      init_adi_q   <= '0;
      csr_pend_q   <= 1'b0;
      rd_csr_q     <= 1'b0;
      rd_lookup_q  <= 1'b0;
      s_csr_wr_ack <= 1'b0;
      s_csr_rd_ack <= 1'b0;
    end else begin
      if (init_q) begin
        init_adi_q <= init_adi_q + 1'b1;
        if (init_adi_q == AdiW'(NumAdi - 1)) init_q <= 1'b0;
      end
      if (s_csr_req) csr_pend_q <= 1'b1;
      else if (take_csr) csr_pend_q <= 1'b0;
      s_csr_wr_ack <= take_csr && csr_wr_q;
      rd_csr_q     <= take_csr && !csr_wr_q;
      s_csr_rd_ack <= rd_csr_q;
      rd_lookup_q  <= take_lookup;
    end
  end

  always_ff @(posedge clk) begin
    if (s_csr_req) begin
      csr_wr_q    <= s_csr_wr;
      csr_idx_q   <= s_csr_addr[2 +: AdiW];
      csr_oob_q   <= csr_oob;
      csr_wdata_q <= s_csr_wdata;
    end
    if (take_lookup) lookup_oob_q <= (s_lookup_addr >= 16'(NumAdi));
    s_csr_rdata <= csr_oob_q ? 32'd0 : rd_data;
  end

  // rd_data holds the read word from the cycle after rd_en
  assign m_result_valid = rd_lookup_q;
`ifdef MUTANT_SWITCH_IGNORES_VALID  // planted bug (make mutants): a cleared forwarding entry still forwards
  assign m_result_hit   = !lookup_oob_q && (rd_data[15:0] < 16'(NumAdi));
`elsif MUTANT_SWITCH_NO_RANGE_CHECK  // planted bug (make mutants): switch address >= NumAdi aliases an entry
  assign m_result_hit   = rd_data[31] && (rd_data[15:0] < 16'(NumAdi));
`else
  assign m_result_hit   = rd_data[31] && !lookup_oob_q && (rd_data[15:0] < 16'(NumAdi));
`endif
  assign m_result_adi   = rd_data[AdiW-1:0];
  wire unused_ok = &{1'b0, s_csr_addr[1:0], csr_wdata_q[30:16]};
endmodule
`resetall
