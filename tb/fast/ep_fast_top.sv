// SPDX-License-Identifier: Apache-2.0
/// ep_fast_top: simulation-only top of the fast link mode (tb/fast/README.md). Not synthesizable
/// (DPI-C, a delay-generated clock); the endpoint inside is the unmodified ep_top.
///
/// * the clock is generated here (Verilator --timing), so no Python runs per clock edge;
/// * the five TLP streams of ep_top end in tb/fast/hostport.cpp, called once per clock: the host
///   port serves DMA from the shared host-memory buffer through its IOTLB mirror and queues
///   whatever needs Python (completions for host reads, interrupts, faults it cannot decide);
/// * `py_notify` flips whenever the host port queued something for Python: the one signal the
///   Python side waits on;
/// * `rst` is the only input driven by Python (synchronous, active-high, as for ep_top); with
///   `ExtClock = 1` (a benchmark variant) the clock comes from the `ext_clk` input instead, for a
///   cocotb `Clock` to drive.
`resetall
`default_nettype none
module ep_fast_top #(
  parameter int unsigned DataWidth    = 256,        /// as ep_top
  parameter int unsigned NumAdi       = 4,          /// as ep_top
  parameter logic [15:0] VendorId     = 16'h1DEA,   /// as ep_top
  parameter logic [15:0] DeviceId     = 16'h5105,   /// as ep_top
  parameter int unsigned Bar0SizeLog2 = 20,         /// as ep_top
  parameter int unsigned ClkHalfPs    = 2000,       /// half clock period (2 ns: 250 MHz)
  parameter bit          ExtClock     = 1'b0,       /// 1: clock from ext_clk (cocotb Clock), not HDL
  localparam int unsigned S = DataWidth / 32        /// DWs per beat (derived, do not override)
) (
  input wire logic rst /*verilator public_flat_rw*/,
  input wire logic ext_clk /*verilator public_flat_rw*/
);
  import "DPI-C" function void siov_hp_init(input int lanes);
  import "DPI-C" function int siov_hp_poll(input longint cycle, input bit rst);
  import "DPI-C" function void siov_hp_tx_beat(input int stream, input bit [127:0] hdr,
    input bit [DataWidth-1:0] data, input bit [S-1:0] strb, input int prfx, input bit sop, input bit eop);
  import "DPI-C" function void siov_hp_rx_beat(input int stream, output bit [127:0] hdr,
    output bit [DataWidth-1:0] data, output bit [S-1:0] strb, output int prfx, output bit valid,
    output bit sop, output bit eop);
  import "DPI-C" function void siov_hp_tx_stall(input int stream);
  import "DPI-C" function void siov_hp_rx_stall(input int stream);
  import "DPI-C" function bit siov_hp_notify();

  initial siov_hp_init(S);

  logic clk /*verilator public_flat_rw*/;
  if (ExtClock) begin : gen_ext_clk
    assign clk = ext_clk;
  end else begin : gen_hdl_clk
    logic hdl_clk = 1'b0;
    always #(ClkHalfPs * 1ps) hdl_clk = ~hdl_clk;
    assign clk = hdl_clk;
  end

  logic       py_notify /*verilator public_flat_rw*/ = 1'b0;
  longint     cycle_q = 0;

  // host -> EP streams (driven from the host port, registered)
  logic [127:0]         rx_req_hdr = '0, rx_cpl_hdr = '0;
  logic [DataWidth-1:0] rx_req_data = '0, rx_cpl_data = '0;
  logic [S-1:0]         rx_req_strb = '0, rx_cpl_strb = '0;
  logic [31:0]          rx_req_prfx = '0;
  logic                 rx_req_valid = 1'b0, rx_req_sop = 1'b0, rx_req_eop = 1'b0, rx_req_ready;
  logic                 rx_cpl_valid = 1'b0, rx_cpl_sop = 1'b0, rx_cpl_eop = 1'b0, rx_cpl_ready;
  // EP -> host streams
  logic [127:0]         tx_cpl_hdr, tx_wr_hdr, tx_rd_hdr;
  logic [DataWidth-1:0] tx_cpl_data, tx_wr_data;
  logic [S-1:0]         tx_cpl_strb, tx_wr_strb;
  logic [31:0]          tx_wr_prfx, tx_rd_prfx;
  logic                 tx_cpl_valid, tx_cpl_sop, tx_cpl_eop, tx_cpl_ready = 1'b1;
  logic                 tx_wr_valid, tx_wr_sop, tx_wr_eop, tx_wr_ready = 1'b1;
  logic                 tx_rd_valid, tx_rd_sop, tx_rd_eop, tx_rd_ready = 1'b1;

  ep_top #(
    .DataWidth   (DataWidth),
    .NumAdi      (NumAdi),
    .VendorId    (VendorId),
    .DeviceId    (DeviceId),
    .Bar0SizeLog2(Bar0SizeLog2)
  ) u_ep (
    .clk                (clk),
    .rst                (rst),
    .rx_req_tlp_hdr     (rx_req_hdr),
    .rx_req_tlp_data    (rx_req_data),
    .rx_req_tlp_strb    (rx_req_strb),
    .rx_req_tlp_prfx    (rx_req_prfx),
    .rx_req_tlp_valid   (rx_req_valid),
    .rx_req_tlp_sop     (rx_req_sop),
    .rx_req_tlp_eop     (rx_req_eop),
    .rx_req_tlp_ready   (rx_req_ready),
    .tx_cpl_tlp_hdr     (tx_cpl_hdr),
    .tx_cpl_tlp_data    (tx_cpl_data),
    .tx_cpl_tlp_strb    (tx_cpl_strb),
    .tx_cpl_tlp_valid   (tx_cpl_valid),
    .tx_cpl_tlp_sop     (tx_cpl_sop),
    .tx_cpl_tlp_eop     (tx_cpl_eop),
    .tx_cpl_tlp_ready   (tx_cpl_ready),
    .tx_wr_req_tlp_hdr  (tx_wr_hdr),
    .tx_wr_req_tlp_data (tx_wr_data),
    .tx_wr_req_tlp_strb (tx_wr_strb),
    .tx_wr_req_tlp_prfx (tx_wr_prfx),
    .tx_wr_req_tlp_valid(tx_wr_valid),
    .tx_wr_req_tlp_sop  (tx_wr_sop),
    .tx_wr_req_tlp_eop  (tx_wr_eop),
    .tx_wr_req_tlp_ready(tx_wr_ready),
    .tx_rd_req_tlp_hdr  (tx_rd_hdr),
    .tx_rd_req_tlp_prfx (tx_rd_prfx),
    .tx_rd_req_tlp_valid(tx_rd_valid),
    .tx_rd_req_tlp_sop  (tx_rd_sop),
    .tx_rd_req_tlp_eop  (tx_rd_eop),
    .tx_rd_req_tlp_ready(tx_rd_ready),
    .rx_cpl_tlp_hdr     (rx_cpl_hdr),
    .rx_cpl_tlp_data    (rx_cpl_data),
    .rx_cpl_tlp_strb    (rx_cpl_strb),
    .rx_cpl_tlp_valid   (rx_cpl_valid),
    .rx_cpl_tlp_sop     (rx_cpl_sop),
    .rx_cpl_tlp_eop     (rx_cpl_eop),
    .rx_cpl_tlp_ready   (rx_cpl_ready)
  );

  // One call into the host port per clock, then one per beat that moved. Values read here are
  // the ones before this edge (ep_top's outputs and our registered inputs to it), so a beat
  // moved at this edge iff valid && ready; what we assign takes effect after the edge.
  always_ff @(posedge clk) begin
    automatic int m = siov_hp_poll(cycle_q, rst);
    automatic bit [127:0] h;
    automatic bit [DataWidth-1:0] d;
    automatic bit [S-1:0] sb;
    automatic int p;
    automatic bit v, so, eo;
    cycle_q <= cycle_q + 1;
    if (tx_wr_valid) begin
      if (tx_wr_ready) siov_hp_tx_beat(3, tx_wr_hdr, tx_wr_data, tx_wr_strb, tx_wr_prfx, tx_wr_sop, tx_wr_eop);
      else siov_hp_tx_stall(3);
    end
    if (tx_rd_valid) begin
      if (tx_rd_ready) siov_hp_tx_beat(4, tx_rd_hdr, '0, '0, tx_rd_prfx, tx_rd_sop, tx_rd_eop);
      else siov_hp_tx_stall(4);
    end
    if (tx_cpl_valid) begin
      if (tx_cpl_ready) siov_hp_tx_beat(2, tx_cpl_hdr, tx_cpl_data, tx_cpl_strb, 0, tx_cpl_sop, tx_cpl_eop);
      else siov_hp_tx_stall(2);
    end
    if (rx_req_valid && !rx_req_ready) begin
      siov_hp_rx_stall(0);
    end else if (rx_req_valid || m[0]) begin
      siov_hp_rx_beat(0, h, d, sb, p, v, so, eo);
      rx_req_hdr <= h;
      rx_req_data <= d;
      rx_req_strb <= sb;
      rx_req_prfx <= p;
      rx_req_valid <= v;
      rx_req_sop <= so;
      rx_req_eop <= eo;
    end
    if (rx_cpl_valid && !rx_cpl_ready) begin
      siov_hp_rx_stall(1);
    end else if (rx_cpl_valid || m[1]) begin
      siov_hp_rx_beat(1, h, d, sb, p, v, so, eo);
      rx_cpl_hdr <= h;
      rx_cpl_data <= d;
      rx_cpl_strb <= sb;
      rx_cpl_valid <= v;
      rx_cpl_sop <= so;
      rx_cpl_eop <= eo;
    end
    tx_cpl_ready <= m[2];
    tx_wr_ready <= m[3];
    tx_rd_ready <= m[4];
    py_notify <= siov_hp_notify();
  end
endmodule
`resetall
