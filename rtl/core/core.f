// rtl/core: one file per line, relative to this list
