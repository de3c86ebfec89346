# Timing constraints of fpga/board_top (Agilex 7 F-Series dev kit, P-tile Gen3 x8, 256 bit).
# The P-tile IP's own SDC (generated with ip/ptile_ep.ip) creates coreclkout_hip (250 MHz for the
# Gen3 2x8 256-bit topology) from the reference clocks; everything of the endpoint runs on it, so
# the only user constraints are the board clocks and the asynchronous pins.

set_time_format -unit ns -decimal_places 3

# 100 MHz PCIe reference clocks from the slot (HCSL); both P-tile refclk inputs
create_clock -name pcie_refclk0 -period 10.000 [get_ports pcie_refclk_p0]
create_clock -name pcie_refclk1 -period 10.000 [get_ports pcie_refclk_p1]
set_clock_groups -asynchronous -group [get_clocks pcie_refclk0]
set_clock_groups -asynchronous -group [get_clocks pcie_refclk1]

derive_clock_uncertainty

# The application clock: the IP's SDC names it after the tile's clock-out pin. It must come out
# at 250 MHz (4.000 ns); fpga/build.sh fails the build when the report says otherwise, so a wrong
# topology (Gen4 = 350..500 MHz, which this RTL does not close: rtl/README.md "Timing") is caught.

# PERST# is asynchronous (the tile synchronises it); the LEDs are slow status outputs
set_false_path -from [get_ports pcie_perst_n]
set_false_path -to [get_ports {fpga_led[*]}]
