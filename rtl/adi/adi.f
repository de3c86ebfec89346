// rtl/adi: one file per line, relative to this list
