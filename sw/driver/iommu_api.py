"""The host IOMMU driver as seen by the PF driver, the VDCM and the VFIO model.

One seam so that the rest of ``sw/`` names the IOMMU through these aliases only: the real
implementation is :mod:`siov_sim.sw.iommu` (Linux ``drivers/iommu/intel`` style), and the
calls used are ``bring_up``, ``alloc_domain``/``free_domain``, ``Domain.map``/``unmap``,
``attach_device``, ``bind_pasid``/``unbind_pasid`` and ``drain_faults``.
"""

from __future__ import annotations

from siov_sim.sw.iommu import Domain, DomainKind, FaultRecord, IommuDriver, IommuError

IoDomain = Domain
IommuApi = IommuDriver

__all__ = ["DomainKind", "FaultRecord", "IoDomain", "IommuApi", "IommuError"]
