"""VT-d scalable-mode IOMMU model (pure Python, no simulator needed).

Modules, split like QEMU's ``intel_iommu.c``: ``regs`` (capabilities, register table, masked
register store), ``entries`` (root/context/PASID-dir/PASID entries, FS/SS PTEs), ``walk``
(first-stage, second-stage, nested walkers), ``caches`` (context cache, PASID cache, IOTLB),
``faults`` (fault reasons, primary fault logging, fault event), ``invq`` (queued invalidation),
``iommu`` (the :class:`VtdIommu` facade). Design notes: ``docs/iommu.md``.
"""

from __future__ import annotations

from siov_sim.model.iommu.entries import (
    ContextEntry,
    FsPte,
    PasidDirEntry,
    PasidEntry,
    Pgtt,
    RootEntry,
    SsPte,
)
from siov_sim.model.iommu.faults import Fault, FaultReason, MsiSink
from siov_sim.model.iommu.invq import DescType, DevTlbInvalidation, Iqei
from siov_sim.model.iommu.iommu import VtdIommu
from siov_sim.model.iommu.regs import Caps, Fsts, Gcmd, Reg
from siov_sim.model.iommu.walk import INTR_BASE, INTR_END, Translation

__all__ = [
    "INTR_BASE",
    "INTR_END",
    "Caps",
    "ContextEntry",
    "DescType",
    "DevTlbInvalidation",
    "Fault",
    "FaultReason",
    "FsPte",
    "Fsts",
    "Gcmd",
    "Iqei",
    "MsiSink",
    "PasidDirEntry",
    "PasidEntry",
    "Pgtt",
    "Reg",
    "RootEntry",
    "SsPte",
    "Translation",
    "VtdIommu",
]
