// rtl/pkg: one file per line, relative to this list
