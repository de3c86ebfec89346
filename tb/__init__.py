"""siov_sim.tb: cocotb glue (adapter, IOMMU-equipped root complex, runner, scoreboards)."""
