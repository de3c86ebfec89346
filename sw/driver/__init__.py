"""PF driver of the SIOV endpoint: probe, DVSEC/PASID discovery, IOMMU bring-up, ADI control.

::

    pf = PfDriver(bus, bdf, iommu, adi_factory)   # adi_factory builds the AdiControl on BAR0
    caps = await pf.probe()                        # SiovCaps: DVSEC, PASID cap, IMS, page sizes
    adis = pf.alloc_adis(4); pf.portal_addr(adis[0]); await pf.adi.configure(...)
"""

from __future__ import annotations

from siov_sim.sw.driver.adi import AdiConfig, AdiControl, AdiSnapshot, AdiState, AdiStatus, PfEvent
from siov_sim.sw.driver.pf import PfDriver, PfError, PfResources, SiovCaps

__all__ = [
    "AdiConfig",
    "AdiControl",
    "AdiSnapshot",
    "AdiState",
    "AdiStatus",
    "PfDriver",
    "PfError",
    "PfEvent",
    "PfResources",
    "SiovCaps",
]
