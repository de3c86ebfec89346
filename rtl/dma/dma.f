// rtl/dma: one file per line, relative to this list
ep_dma_wr.sv
