// rtl/hip: hard-IP wrappers, one file per line, relative to this list
ep_ptile_top.sv
