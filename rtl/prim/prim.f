// rtl/prim: one file per line, relative to this list
