// Test-only DUT for the Python link adapter (tb/pcie/ep_device.py): rx_req loops back to
// tx_wr_req, rx_cpl to tx_cpl, through one register stage with correct valid/ready handling.
`default_nettype none
module tb_tlp_loopback #(
  parameter int unsigned DataWidth = 256
) (
  input  wire logic                   clk,
  input  wire logic                   rst,
  input  wire logic [127:0]           rx_req_tlp_hdr,
  input  wire logic [DataWidth-1:0]   rx_req_tlp_data,
  input  wire logic [DataWidth/32-1:0] rx_req_tlp_strb,
  input  wire logic [31:0]            rx_req_tlp_prfx,
  input  wire logic                   rx_req_tlp_valid,
  input  wire logic                   rx_req_tlp_sop,
  input  wire logic                   rx_req_tlp_eop,
  output logic                        rx_req_tlp_ready,
  output logic [127:0]                tx_wr_req_tlp_hdr,
  output logic [DataWidth-1:0]        tx_wr_req_tlp_data,
  output logic [DataWidth/32-1:0]     tx_wr_req_tlp_strb,
  output logic [31:0]                 tx_wr_req_tlp_prfx,
  output logic                        tx_wr_req_tlp_valid,
  output logic                        tx_wr_req_tlp_sop,
  output logic                        tx_wr_req_tlp_eop,
  input  wire logic                   tx_wr_req_tlp_ready,
  input  wire logic [127:0]           rx_cpl_tlp_hdr,
  input  wire logic [DataWidth-1:0]   rx_cpl_tlp_data,
  input  wire logic [DataWidth/32-1:0] rx_cpl_tlp_strb,
  input  wire logic                   rx_cpl_tlp_valid,
  input  wire logic                   rx_cpl_tlp_sop,
  input  wire logic                   rx_cpl_tlp_eop,
  output logic                        rx_cpl_tlp_ready,
  output logic [127:0]                tx_cpl_tlp_hdr,
  output logic [DataWidth-1:0]        tx_cpl_tlp_data,
  output logic [DataWidth/32-1:0]     tx_cpl_tlp_strb,
  output logic                        tx_cpl_tlp_valid,
  output logic                        tx_cpl_tlp_sop,
  output logic                        tx_cpl_tlp_eop,
  input  wire logic                   tx_cpl_tlp_ready,
  output logic [127:0]                tx_rd_req_tlp_hdr,
  output logic [31:0]                 tx_rd_req_tlp_prfx,
  output logic                        tx_rd_req_tlp_valid,
  output logic                        tx_rd_req_tlp_sop,
  output logic                        tx_rd_req_tlp_eop,
  input  wire logic                   tx_rd_req_tlp_ready
);
  assign rx_req_tlp_ready = !tx_wr_req_tlp_valid || tx_wr_req_tlp_ready;
  assign rx_cpl_tlp_ready = !tx_cpl_tlp_valid || tx_cpl_tlp_ready;
  always_ff @(posedge clk) begin
    if (rx_req_tlp_ready) begin
      tx_wr_req_tlp_valid <= rx_req_tlp_valid;
      tx_wr_req_tlp_hdr <= rx_req_tlp_hdr;   tx_wr_req_tlp_data <= rx_req_tlp_data;
      tx_wr_req_tlp_strb <= rx_req_tlp_strb; tx_wr_req_tlp_prfx <= rx_req_tlp_prfx;
      tx_wr_req_tlp_sop <= rx_req_tlp_sop;   tx_wr_req_tlp_eop <= rx_req_tlp_eop;
    end
    if (rx_cpl_tlp_ready) begin
      tx_cpl_tlp_valid <= rx_cpl_tlp_valid;
      tx_cpl_tlp_hdr <= rx_cpl_tlp_hdr;   tx_cpl_tlp_data <= rx_cpl_tlp_data;
      tx_cpl_tlp_strb <= rx_cpl_tlp_strb;
      tx_cpl_tlp_sop <= rx_cpl_tlp_sop;   tx_cpl_tlp_eop <= rx_cpl_tlp_eop;
    end
    if (rst) begin
      tx_wr_req_tlp_valid <= 1'b0;
      tx_cpl_tlp_valid <= 1'b0;
    end
  end
  assign tx_rd_req_tlp_hdr = '0;
  assign tx_rd_req_tlp_prfx = '0;
  assign tx_rd_req_tlp_valid = 1'b0;
  assign tx_rd_req_tlp_sop = 1'b0;
  assign tx_rd_req_tlp_eop = 1'b0;
endmodule
`default_nettype wire
