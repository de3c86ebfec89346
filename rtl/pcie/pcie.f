// rtl/pcie: one file per line, relative to this list
ep_cfg_space.sv
