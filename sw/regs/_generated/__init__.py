"""DO NOT EDIT: generated from rtl/regs/ep_regs.rdl by `make regs` (python -m siov_sim.tb.regs)."""
