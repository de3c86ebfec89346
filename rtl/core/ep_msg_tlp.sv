// SPDX-License-Identifier: Apache-2.0
/// ep_msg_tlp: interrupt messages (MSI-X of the PF, IMS of the ADIs) as one-DW memory write
/// TLPs on a write-request stream: 3-DW header below 4 GiB, 4-DW above, first BE 0xF, no
/// prefix (interrupts are PF-owned, rtl/README.md). Two sources, round-robin by priority flip.
`resetall
`default_nettype none
module ep_msg_tlp #(
  parameter int unsigned DataWidth = 256   /// TLP data width (bits)
) (
  input  wire logic                   clk,
  input  wire logic                   rst,           // synchronous, active-high
  input  wire logic [15:0]            cfg_requester_id,
  input  wire logic [63:0]            s_a_addr,      // source A (PF MSI-X)
  input  wire logic [31:0]            s_a_data,
  input  wire logic                   s_a_valid,
  output logic                        s_a_ready,
  input  wire logic [63:0]            s_b_addr,      // source B (IMS)
  input  wire logic [31:0]            s_b_data,
  input  wire logic                   s_b_valid,
  output logic                        s_b_ready,
  output logic [127:0]                m_tlp_hdr,     // one-beat TLPs (source)
  output logic [DataWidth-1:0]        m_tlp_data,
  output logic [DataWidth/32-1:0]     m_tlp_strb,
  output logic                        m_tlp_valid,
  input  wire logic                   m_tlp_ready
);
  logic        last_a_q;
  wire  free  = !m_tlp_valid || m_tlp_ready;
  wire  pick_a = s_a_valid && (!s_b_valid || !last_a_q);
  assign s_a_ready = free && pick_a;
  assign s_b_ready = free && s_b_valid && !pick_a;
  wire  [63:0] addr = pick_a ? s_a_addr : s_b_addr;
  wire  [31:0] data = pick_a ? s_a_data : s_b_data;
  wire         wide = (addr[63:32] != 32'd0);

  always_ff @(posedge clk) begin
    if (rst) begin
      m_tlp_valid <= 1'b0;
      last_a_q    <= 1'b0;
    end else begin
      if (m_tlp_valid && m_tlp_ready) m_tlp_valid <= 1'b0;
      if (s_a_ready || s_b_ready) begin
        m_tlp_valid <= 1'b1;
        last_a_q    <= s_a_ready;
      end
    end
  end
  always_ff @(posedge clk) begin
    if (s_a_ready || s_b_ready) begin
      // DW0: Fmt 010/011 (3/4 DW with data), Type 00000, Length 1
      m_tlp_hdr[127:96] <= {wide ? 3'b011 : 3'b010, 5'b00000, 14'd0, 10'd1};
      // DW1: requester ID, tag 0, last BE 0, first BE F
      m_tlp_hdr[95:64]  <= {cfg_requester_id, 8'd0, 4'h0, 4'hF};
      m_tlp_hdr[63:32]  <= wide ? addr[63:32] : {addr[31:2], 2'b00};
      m_tlp_hdr[31:0]   <= wide ? {addr[31:2], 2'b00} : 32'd0;
      m_tlp_data        <= {{(DataWidth - 32){1'b0}}, data};
      m_tlp_strb        <= {{(DataWidth / 32 - 1){1'b0}}, 1'b1};
    end
  end
  wire unused_ok = &{1'b0, addr[1:0]};
endmodule
`resetall
