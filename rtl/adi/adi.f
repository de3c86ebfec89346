// rtl/adi: one file per line, relative to this list
ep_adi_state.sv
ep_adi_switch.sv
ep_adi_ctx.sv
ep_adi_engine.sv
ep_adi.sv
