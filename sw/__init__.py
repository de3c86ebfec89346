"""siov_sim.sw: the host software (IOMMU driver, PF driver, VDCM, VFIO, guest/user drivers).

Never imports cocotb: everything reaches hardware through :class:`siov_sim.sw.bus.HostBus`.
"""
