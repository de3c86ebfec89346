// rtl/core: one file per line, relative to this list
ep_msix.sv
ep_core.sv
