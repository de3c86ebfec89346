"""Host IOMMU driver for the VT-d scalable-mode model (Linux ``drivers/iommu/intel`` style).

Everything goes through :class:`siov_sim.sw.bus.HostBus`: registers via ``bus.mmio_read/mmio_write``
at the IOMMU register base (default ``0xFED9_0000``), tables in host RAM via ``bus.mem`` and
``bus.alloc``, the fault-event interrupt via ``bus.alloc_irq``. Nothing is set up behind the
hardware's back.

API (what VFIO / VDCM / PF-driver code uses)::

    from siov_sim.sw.iommu import IommuDriver, DomainKind, IommuError

    drv = IommuDriver(bus, base=0xFED9_0000)
    await drv.bring_up()                       # root table, RTADDR|TTM=01 -> SRTP -> poll RTPS,
                                               # QI (IQA|DW=1|QS=1, IQT=0, QIE), fault event MSI,
                                               # global cc/pc/iotlb invalidation, TE

    # Domains (one DID each).  Page tables live in host memory; map() is synchronous memory
    # writes (no invalidation needed for not-present -> present), unmap() is async because it
    # invalidates the IOTLB (+ dev-TLB) of every attached (sid, pasid) and waits.
    ss  = drv.alloc_domain(DomainKind.SECOND_STAGE)          # VFIO type1 style: IOVA/GPA -> HPA
    fs  = drv.alloc_domain(DomainKind.FIRST_STAGE)           # SVA style: process VA -> HPA (4-level)
    fs5 = drv.alloc_domain(DomainKind.FIRST_STAGE, levels=5)
    nst = drv.alloc_domain(DomainKind.NESTED, parent=ss)     # guest FS tables at GPAs, parent SS
    pt  = drv.alloc_domain(DomainKind.PASS_THROUGH)

    ss.map(iova, hpa, size, write=True)       # size: multiple of 4 KiB; 2M/1G used when aligned
    fs.map(va, hpa, size, write=True, user=True)
    await ss.unmap(iova, size)                # clears PTEs, invalidates, waits, then frees tables

    # Requests without PASID (RID_PASID = 0) and PASID-tagged requests of a device (sid = bdf):
    await drv.attach_device(sid, domain)      # context entry + PASID-table entry for RID_PASID
    await drv.bind_pasid(sid, pasid, domain, *, supervisor=False)  # PASID entry (SRE if supervisor)
    await drv.unbind_pasid(sid, pasid)        # clear P, pc(PASID) + p_iotlb/iotlb + dev-TLB inv,
                                              # inv-wait, then the PASID may be reused
    await drv.detach_device(sid)              # context entry teardown (cc/pc/iotlb, then free)

    # Dirty tracking for live migration (second stage; iommufd SET_DIRTY_TRACKING/GET_DIRTY_BITMAP):
    await drv.set_dirty_tracking(ss, True)    # SSADE in every PASID entry on ss, pc + iotlb inv
    pages = await drv.read_and_clear_dirty(ss, iova, size)  # D read+cleared, then IOTLB inv + wait

    faults = await drv.drain_faults()         # read + clear FRCDs (list[FaultRecord]), call
                                              # drv.fault_handlers; drv.fault_pending (Event) is
                                              # set by the fault interrupt, cleared here
    await drv.shutdown()                      # TE off, QI off, frees every table

Errors are typed: :class:`IommuError` (hardware did not respond, IQE reported, bad argument).
PASID allocation is the caller's business (the VDCM owns the PASID space); the driver only
checks the range (1..2^20-1; PASID 0 is reserved for RID_PASID).
"""

from __future__ import annotations

from siov_sim.sw.iommu.driver import (
    Domain,
    DomainKind,
    FaultRecord,
    IommuDriver,
    IommuError,
)
from siov_sim.sw.iommu.pagetable import PageTable, PteFormat

__all__ = [
    "Domain",
    "DomainKind",
    "FaultRecord",
    "IommuDriver",
    "IommuError",
    "PageTable",
    "PteFormat",
]
