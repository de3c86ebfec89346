// SPDX-License-Identifier: Apache-2.0
/// reset_release (stub): stands in for the Intel "Reset Release" IP (fpga/ip/reset_release.tcl) in
/// `make lint` only, so fpga/board_top.sv can be checked by Verilator and Yosys without Quartus.
/// The real IP drives ninit_done low once the device has entered user mode; the stub says "done".
`resetall
`default_nettype none
module reset_release (
  output logic ninit_done
);
  assign ninit_done = 1'b0;
endmodule
`resetall
