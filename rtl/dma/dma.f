// rtl/dma: one file per line, relative to this list
ep_dma_wr.sv
ep_dma_rd.sv
ep_dma.sv
