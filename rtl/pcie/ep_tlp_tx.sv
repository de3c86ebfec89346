// SPDX-License-Identifier: Apache-2.0
/// ep_tlp_tx: completion generator of the front end (docs: rtl/pcie/README.md).
/// Takes one completion job at a time from ep_tlp_rx and emits Cpl / CplD TLPs on tx_cpl_tlp_*.
/// Read data arrive one DW at a time into a FIFO (space reserved by ep_tlp_rx's credits; each DW
/// taken out is reported on m_dat_pop). A CplD never exceeds Max_Payload_Size and a read is
/// split at MPS-aligned addresses (multiples of the 64-byte RCB), so every completion but the
/// last ends on an RCB boundary; Byte Count and Lower Address follow the PCIe rules.
`resetall
`default_nettype none
module ep_tlp_tx #(
  parameter int unsigned DataWidth = 256,     /// TLP data width, power of two, 64 .. 1024
  parameter int unsigned CplBufDw  = 32,      /// completion data FIFO depth (DWs)
  localparam int unsigned S = DataWidth / 32  /// DWs per beat (derived, do not override)
) (
  input  wire logic                 clk,
  input  wire logic                 rst,          // synchronous, active-high
  /// completion jobs from ep_tlp_rx (sink)
  input  wire logic                 s_job_valid,
  output logic                      s_job_ready,
  input  wire logic [2:0]           s_job_status,
  input  wire logic                 s_job_lk,     // CplLk / CplDLk (answer to MRdLk)
  input  wire logic                 s_job_data,
  input  wire logic [10:0]          s_job_len,
  input  wire logic [12:0]          s_job_bc,
  input  wire logic [11:0]          s_job_addr,
  input  wire logic [15:0]          s_job_rid,
  input  wire logic [9:0]           s_job_tag,
  input  wire logic [2:0]           s_job_tc,
  input  wire logic [2:0]           s_job_attr,
  /// completion data DWs (status: no ready, space guaranteed by the sender's credits)
  input  wire logic                 s_dat_valid,
  input  wire logic [31:0]          s_dat_data,
  output logic                      m_dat_pop,    // one DW left the FIFO (credit return)
  /// configuration state
  input  wire logic [15:0]          cfg_completer_id,
  input  wire logic [2:0]           cfg_max_payload,
  /// completions to the link (source)
  output logic [127:0]              tx_cpl_tlp_hdr,
  output logic [DataWidth-1:0]      tx_cpl_tlp_data,
  output logic [S-1:0]              tx_cpl_tlp_strb,
  output logic                      tx_cpl_tlp_valid,
  output logic                      tx_cpl_tlp_sop,
  output logic                      tx_cpl_tlp_eop,
  input  wire logic                 tx_cpl_tlp_ready
);
  localparam int unsigned LaneW = $clog2(S);

  typedef enum logic [1:0] {StIdle, StChunk, StFill, StSend} state_e;
  state_e state_q;

  // job
  logic [2:0]  status_q;
  logic        lk_q;
  logic        data_q;
  logic [10:0] rem_dw_q;      // DWs still to send
  logic [12:0] rem_bc_q;      // Byte Count of the next completion
  logic [11:0] addr_q;        // address of the next completion ([1:0] first-byte offset)
  logic [15:0] rid_q;
  logic [9:0]  tag_q;
  logic [2:0]  tc_q, attr_q;
  // current completion and beat
  logic [7:0]  chunk_q;       // DWs of the current CplD
  logic [7:0]  chunk_left_q;  // DWs of it still to take from the FIFO
  logic [LaneW-1:0] lane_q;
  logic        first_beat_q;
  // output register
  logic [127:0]         hdr_q;
  logic [DataWidth-1:0] dat_q;
  logic [S-1:0]         strb_q;
  logic                 valid_q, sop_q, eop_q;

  // ---- data FIFO ------------------------------------------------------------------------------
  logic [31:0] fifo_data;
  logic        fifo_valid, fifo_ready, fifo_s_ready;
  ep_fifo #(
    .Width(32),
    .Depth(CplBufDw)
  ) u_dat_fifo (
    .clk    (clk),
    .rst    (rst),
    .s_data (s_dat_data),
    .s_valid(s_dat_valid),
    .s_ready(fifo_s_ready),
    .m_data (fifo_data),
    .m_valid(fifo_valid),
    .m_ready(fifo_ready)
  );
  logic unused_fifo;  // never full: the sender reserves a slot before it asks for a DW
  assign unused_fifo = fifo_s_ready;

  assign fifo_ready = state_q == StFill;
  assign m_dat_pop  = fifo_valid && fifo_ready;

  // ---- next completion ----------------------------------------------------------------------------
  logic [7:0]  mps_dw, to_boundary, chunk;
  logic [127:0] hdr;
  always_comb begin
    mps_dw      = 8'd32 << (cfg_max_payload > 3'd2 ? 3'd2 : cfg_max_payload);
    to_boundary = mps_dw - (addr_q[9:2] & (mps_dw - 8'd1));
    chunk       = (rem_dw_q < {3'b0, to_boundary}) ? rem_dw_q[7:0] : to_boundary;
    hdr = '0;
    hdr[127:125] = data_q ? ep_pcie_pkg::FMT_3DW_DATA : ep_pcie_pkg::FMT_3DW;
    hdr[124:120] = lk_q ? ep_pcie_pkg::TYPE_CPL_LK : ep_pcie_pkg::TYPE_CPL;
    hdr[119]     = tag_q[9];
    hdr[118:116] = tc_q;
    hdr[115]     = tag_q[8];
    hdr[114]     = attr_q[2];
    hdr[109:108] = attr_q[1:0];
    hdr[105:96]  = data_q ? 10'(chunk) : 10'd0;
    hdr[95:80]   = cfg_completer_id;
    hdr[79:77]   = status_q;
    hdr[75:64]   = rem_bc_q[11:0];     // 4096 is encoded as 0
    hdr[63:48]   = rid_q;
    hdr[47:40]   = tag_q[7:0];
    hdr[38:32]   = addr_q[6:0];
  end

  assign s_job_ready = state_q == StIdle;

  logic fill_last;  // this FIFO pop completes the beat
  assign fill_last = chunk_left_q == 8'd1 || lane_q == LaneW'(S - 1);

  always_ff @(posedge clk) begin
    unique case (state_q)
      StIdle: if (s_job_valid) begin
        status_q <= s_job_status;
        lk_q     <= s_job_lk;
        data_q   <= s_job_data;
        rem_dw_q <= s_job_len;
        rem_bc_q <= s_job_bc;
        addr_q   <= s_job_addr;
        rid_q    <= s_job_rid;
        tag_q    <= s_job_tag;
        tc_q     <= s_job_tc;
        attr_q   <= s_job_attr;
        state_q  <= StChunk;
      end
      StChunk: begin
        hdr_q        <= hdr;
        chunk_q      <= chunk;
        chunk_left_q <= chunk;
        lane_q       <= '0;
        first_beat_q <= 1'b1;
        dat_q        <= '0;
        if (data_q) begin
          state_q <= StFill;
        end else begin
          valid_q <= 1'b1;
          sop_q   <= 1'b1;
          eop_q   <= 1'b1;
          strb_q  <= '0;
          state_q <= StSend;
        end
      end
      StFill: if (fifo_valid) begin
        dat_q[32 * lane_q +: 32] <= fifo_data;
        lane_q       <= lane_q + 1'b1;
        chunk_left_q <= chunk_left_q - 8'd1;
        if (fill_last) begin
          valid_q <= 1'b1;
          sop_q   <= first_beat_q;
          eop_q   <= chunk_left_q == 8'd1;
          strb_q  <= S'((64'd2 << lane_q) - 64'd1);
          state_q <= StSend;
        end
      end
      StSend: if (tx_cpl_tlp_ready) begin
        valid_q      <= 1'b0;
        first_beat_q <= 1'b0;
        lane_q       <= '0;
        if (!eop_q) begin
          dat_q   <= '0;
          state_q <= StFill;
        end else begin
          // completion done: advance to the rest of the request
          rem_dw_q <= data_q ? rem_dw_q - {3'b0, chunk_q} : 11'd0;
          rem_bc_q <= rem_bc_q - {3'b0, chunk_q, 2'b00} + 13'(addr_q[1:0]);
          addr_q   <= {addr_q[11:2] + {2'b0, chunk_q}, 2'b00};
          state_q  <= (data_q && rem_dw_q != {3'b0, chunk_q}) ? StChunk : StIdle;
        end
      end
      default: state_q <= StIdle;
    endcase
    if (rst) begin
      state_q <= StIdle;
      valid_q <= 1'b0;
    end
  end

  assign tx_cpl_tlp_hdr   = hdr_q;
  assign tx_cpl_tlp_data  = dat_q;
  assign tx_cpl_tlp_strb  = strb_q;
  assign tx_cpl_tlp_valid = valid_q;
  assign tx_cpl_tlp_sop   = sop_q;
  assign tx_cpl_tlp_eop   = eop_q;
endmodule
`resetall
