// rtl/gen: one file per line, relative to this list
ep_regs.sv
