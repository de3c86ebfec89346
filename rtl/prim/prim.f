// rtl/prim: one file per line, relative to this list
ep_ram_sdp.sv
ep_spill_reg.sv
ep_fifo.sv
ep_rr_arb.sv
ep_prio_enc.sv
