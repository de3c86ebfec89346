// fpga/board_top for Verilator / Yosys checks (`make lint`): the endpoint, then the board top.
// The Quartus build (fpga/build.sh) reads ../rtl/ep_top.f the same way but takes the generated IP
// instead of the sim/ stubs.
-F ../rtl/ep_top.f
board_top.sv
