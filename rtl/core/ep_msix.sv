// SPDX-License-Identifier: Apache-2.0
/// ep_msix: the PF's MSI-X vectors (table in ep_regs at BAR0 0x2000, PBA at 0x3000).
/// An event sets the vector's pending bit; a pending vector is sent as soon as it is
/// deliverable (MSI-X Enable, Function Mask clear, vector unmasked, Bus Master Enable) and its
/// pending bit then clears. So the PBA shows a bit only while the vector cannot be delivered,
/// and unmasking a pending vector sends it (PCIe Base 6.1.4.5).
`resetall
`default_nettype none
module ep_msix #(
  parameter int unsigned NumVec = 8   /// vectors (table entries)
) (
  input  wire logic                clk,
  input  wire logic                rst,           // synchronous, active-high
  input  wire logic                cfg_msix_en,
  input  wire logic                cfg_msix_func_mask,
  input  wire logic                cfg_bus_master_en,
  input  wire logic [NumVec*64-1:0] tbl_addr,     // entry i address in [64i +: 64]
  input  wire logic [NumVec*32-1:0] tbl_data,
  input  wire logic [NumVec-1:0]   tbl_mask,
  input  wire logic [NumVec-1:0]   evt,           // one-cycle event per vector (also: a message
                                                  // of the vector dropped by ep_dma, BME = 0)
  output logic      [NumVec-1:0]   pending,       // PBA
  output logic      [63:0]         m_msg_addr,    // interrupt messages (source)
  output logic      [31:0]         m_msg_data,
  output logic      [$clog2(NumVec)-1:0] m_msg_vec, // vector of the message (its source tag)
  output logic                     m_msg_valid,
  input  wire logic                m_msg_ready
);
  localparam int unsigned VecW = $clog2(NumVec);
  logic [NumVec-1:0] deliverable;
  logic [VecW-1:0]   sel;
  logic              any;

`ifdef MUTANT_MSIX_IGNORES_MASK  // planted bug (make mutants): a masked vector is still sent
  assign deliverable = (cfg_msix_en && !cfg_msix_func_mask && cfg_bus_master_en) ? pending : '0;
`elsif MUTANT_MSIX_IGNORES_BME  // planted bug (make mutants): MSI-X sent with Bus Master Enable clear
  assign deliverable = (cfg_msix_en && !cfg_msix_func_mask) ? (pending & ~tbl_mask) : '0;
`else
  assign deliverable = (cfg_msix_en && !cfg_msix_func_mask && cfg_bus_master_en)
                     ? (pending & ~tbl_mask) : '0;
`endif
  always_comb begin
    sel = '0;
    any = 1'b0;
    for (int i = NumVec - 1; i >= 0; i--) begin
      if (deliverable[i]) begin sel = VecW'(i); any = 1'b1; end
    end
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      pending     <= '0;
      m_msg_valid <= 1'b0;
    end else begin
      if (m_msg_valid && m_msg_ready) m_msg_valid <= 1'b0;
      if ((!m_msg_valid || m_msg_ready) && any) begin
        m_msg_valid <= 1'b1;
        m_msg_addr  <= {tbl_addr[64 * sel + 2 +: 62], 2'b00};
        m_msg_data  <= tbl_data[32 * sel +: 32];
        m_msg_vec   <= sel;
        pending     <= (pending & ~(NumVec'(1) << sel)) | evt;
      end else begin
        pending     <= pending | evt;
      end
    end
  end
endmodule
`resetall
