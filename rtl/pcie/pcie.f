// rtl/pcie: one file per line, relative to this list
