# qsys-script: the Reset Release IP (ninit_done for the P-tile), variant "reset_release".
# fpga/build.sh runs: qsys-script --script=ip/reset_release.tcl --quartus-project=board_top
package require -exact qsys 21.3

create_system reset_release
set_project_property DEVICE {AGFB014R24B2E2V}
set_project_property DEVICE_FAMILY {Agilex 7}
set_project_property HIDE_FROM_IP_CATALOG {true}
set_use_testbench_naming_pattern 0 {}

add_instance s10_user_rst_clkgate_0 altera_s10_user_rst_clkgate
set_instance_parameter_value s10_user_rst_clkgate_0 {outputType} {Reset Interface}
set_interface_property ninit_done EXPORT_OF s10_user_rst_clkgate_0.ninit_done

save_system {ip/reset_release.ip}
