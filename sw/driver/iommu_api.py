"""What the PF driver, the VDCM and the VFIO model need from the host IOMMU driver.

These protocols mirror the API of :mod:`siov_sim.sw.iommu` (see its package docstring): the
real :class:`~siov_sim.sw.iommu.IommuDriver` satisfies them, and unit tests pass a fake. The
enums and the fault record are the IOMMU driver's own types, re-exported.
"""

from __future__ import annotations

from typing import Protocol

from siov_sim.sw.iommu import DomainKind, FaultRecord, IommuError

__all__ = ["DomainKind", "FaultRecord", "IoDomain", "IommuApi", "IommuError"]


class IoDomain(Protocol):
    """One I/O page table with its domain ID (second-stage, first-stage, nested or pass-through).

    ``map`` writes PTEs into host memory (not-present -> present needs no invalidation);
    ``unmap`` clears them, invalidates the IOTLB of every attached (sid, pasid) and waits.
    """

    def map(self, iova: int, hpa: int, size: int, *, write: bool = True, user: bool = True) -> None: ...

    async def unmap(self, iova: int, size: int) -> None: ...


class IommuApi(Protocol):
    async def bring_up(self) -> None: ...

    def alloc_domain(
        self, kind: DomainKind, *, parent: IoDomain | None = None, levels: int = 4
    ) -> IoDomain: ...

    async def attach_device(self, sid: int, domain: IoDomain) -> None: ...

    async def bind_pasid(
        self, sid: int, pasid: int, domain: IoDomain, *, supervisor: bool = False
    ) -> None: ...

    async def unbind_pasid(self, sid: int, pasid: int) -> None:
        """Clear the PASID entry, invalidate PASID cache + IOTLB + dev-TLB, wait for completion."""

    async def drain_faults(self) -> list[FaultRecord]: ...
