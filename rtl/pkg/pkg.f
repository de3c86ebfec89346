// rtl/pkg: one file per line, relative to this list
ep_pcie_pkg.sv
ep_dma_pkg.sv
