"""siov_sim.model: pure-Python models of the hardware outside the DUT (never imports cocotb)."""
