// rtl/dma: one file per line, relative to this list
